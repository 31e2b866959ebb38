//! Feeds arbitrary bytes to the Forward decoders, in pieces whose size the
//! input chooses. The decoders must never panic, and whatever events they
//! accept must iterate cleanly.
#![no_main]

use bytes::BytesMut;
use hydra_forward::{ForwardDecoder, Limits, ReplyDecoder, Request};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&piece, data)) = data.split_first() else {
        return;
    };
    let piece = usize::from(piece).max(1);
    let mut decoder = ForwardDecoder::with_limits(Limits {
        max_frame_bytes: 1 << 16,
        max_decompressed_bytes: 1 << 18,
        max_depth: 32,
    });
    let mut buf = BytesMut::new();
    'feed: for part in data.chunks(piece) {
        buf.extend_from_slice(part);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(Request::Events(batch))) => {
                    assert_eq!(batch.events().count(), batch.len());
                    for e in batch.events() {
                        let _ = e.record();
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    assert!(!e.can_continue());
                    break 'feed;
                }
            }
        }
    }
    let mut replies = ReplyDecoder::new();
    let mut buf = BytesMut::from(data);
    while let Ok(Some(_)) = replies.decode(&mut buf) {}
});
