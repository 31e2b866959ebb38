//! The stdout output: each event as a JSON line
//! `{"tag": .., "time": "<RFC 3339>", "record": {..}}`.

use std::io::Write;

use hydra_buffer::Buffer;
use hydra_forward::{ForwardDecoder, Limits};
use tracing::error;

pub(crate) async fn run(buffer: Buffer) {
    // The chunks are hydra's own frames, as large as a chunk plus the
    // largest frame a client may send: no limit meant for untrusted input
    // applies.
    let mut decoder = ForwardDecoder::with_limits(Limits {
        max_frame_bytes: usize::MAX,
        max_decompressed_bytes: usize::MAX,
        ..Limits::default()
    });
    while let Some(chunk) = buffer.next_chunk().await {
        let mut out = Vec::with_capacity(chunk.frame().len() * 2);
        let printed = hydra_forward::json_lines(&mut decoder, chunk.frame(), &mut out);
        if printed != chunk.events() {
            // Never marked delivered: its clients are not acked, its lines'
            // positions do not advance past it.
            error!(
                events = chunk.events(),
                printed, "A chunk could not be turned into JSON lines; retrying it."
            );
            buffer.retry(chunk);
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            continue;
        }
        let written = tokio::task::spawn_blocking(move || {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&out).and_then(|()| stdout.flush())
        })
        .await;
        match written {
            Ok(Ok(())) => buffer.delivered(chunk),
            // stdout is gone (closed pipe): nothing can be delivered; keep
            // the chunk undelivered so its commits never run.
            _ => {
                buffer.retry(chunk);
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}
