//! Property tests: encode → decode round trips for every mode, and the same
//! bytes decoded at once, one at a time or in random pieces give the same
//! result.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

use bytes::{Bytes, BytesMut};
use hydra_forward::{
    BatchMode, ChunkId, Compression, EventTime, ForwardDecoder, FrameBuilder, Limits, Mode,
    Request, TimeFormat, encode_message, encode_record,
};
use proptest::prelude::*;
use rmpv::Value;
use tokio_util::codec::Decoder;

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        ".{0,40}".prop_map(|s: String| Value::from(s)),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Binary),
        Just(Value::Nil),
    ]
}

fn record() -> impl Strategy<Value = Value> {
    let value = scalar().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(("[a-z]{1,8}", inner), 0..4).prop_map(|kv| {
                Value::Map(kv.into_iter().map(|(k, v)| (Value::from(k), v)).collect())
            }),
        ]
    });
    proptest::collection::vec(("[a-z_]{1,12}", value), 0..6)
        .prop_map(|kv| Value::Map(kv.into_iter().map(|(k, v)| (Value::from(k), v)).collect()))
}

fn event() -> impl Strategy<Value = (EventTime, Value)> {
    // Time 0 means "now" on the wire; keep generated times away from it.
    ((1u32.., 0u32..1_000_000_000), record()).prop_map(|((s, n), r)| (EventTime::new(s, n), r))
}

#[derive(Debug, Clone, Copy)]
enum WireMode {
    Message,
    Forward,
    Packed,
    CompressedPacked,
}

fn wire_mode() -> impl Strategy<Value = WireMode> {
    prop_oneof![
        Just(WireMode::Message),
        Just(WireMode::Forward),
        Just(WireMode::Packed),
        Just(WireMode::CompressedPacked),
    ]
}

fn encode(
    tag: &str,
    events: &[(EventTime, Value)],
    mode: WireMode,
    tf: TimeFormat,
    chunk: Option<&ChunkId>,
) -> Vec<Bytes> {
    match mode {
        WireMode::Message => events
            .iter()
            .map(|(t, r)| encode_message(tag, *t, tf, &encode_record(r), chunk))
            .collect(),
        _ => {
            let batch = if matches!(mode, WireMode::Forward) {
                BatchMode::Forward
            } else {
                BatchMode::PackedForward
            };
            let mut b = FrameBuilder::new(tag, batch, tf);
            for (t, r) in events {
                b.push_record(*t, r);
            }
            let gzip = matches!(mode, WireMode::CompressedPacked).then_some(Compression::Gzip);
            vec![b.finish(chunk, gzip)]
        }
    }
}

fn decode_all(bytes: &[u8], pieces: &[usize]) -> Result<Vec<Request>, String> {
    let mut decoder = ForwardDecoder::with_limits(Limits {
        max_frame_bytes: 1 << 20,
        max_decompressed_bytes: 1 << 22,
        max_depth: 32,
    });
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut sizes = pieces.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => break,
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip_every_mode(
        tag in "[a-z]{1,10}(\\.[a-z]{1,10}){0,3}",
        events in proptest::collection::vec(event(), 1..20),
        mode in wire_mode(),
        integer_time in any::<bool>(),
        ack in any::<bool>(),
    ) {
        let tf = if integer_time { TimeFormat::Integer } else { TimeFormat::EventTime };
        let chunk = ack.then(ChunkId::generate);
        let frames = encode(&tag, &events, mode, tf, chunk.as_ref());
        let bytes: Vec<u8> = frames.iter().flat_map(|f| f.to_vec()).collect();
        let decoded = decode_all(&bytes, &[bytes.len()]).unwrap();
        let mut got = Vec::new();
        for r in decoded {
            let Request::Events(batch) = r else { panic!("expected events, got {r:?}") };
            prop_assert_eq!(batch.tag(), tag.as_str());
            prop_assert_eq!(batch.skipped(), 0);
            prop_assert_eq!(batch.options().chunk.as_ref(), chunk.as_ref());
            let expected_mode = match mode {
                WireMode::Message => Mode::Message,
                WireMode::Forward => Mode::Forward,
                WireMode::Packed => Mode::PackedForward,
                WireMode::CompressedPacked => Mode::CompressedPackedForward,
            };
            prop_assert_eq!(batch.mode(), expected_mode);
            prop_assert_eq!(batch.events().count(), batch.len());
            got.extend(batch.to_events().into_iter().map(|e| (e.time, e.record)));
        }
        let expected: Vec<_> = events
            .into_iter()
            .map(|(t, r)| (if integer_time { EventTime::new(t.secs, 0) } else { t }, r))
            .collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn pieces_do_not_change_the_result(
        events in proptest::collection::vec(event(), 1..10),
        modes in proptest::collection::vec(wire_mode(), 1..5),
        pieces in proptest::collection::vec(1usize..64, 1..8),
        heartbeats in any::<bool>(),
    ) {
        let mut bytes = Vec::new();
        for mode in modes {
            if heartbeats {
                bytes.push(0xc0);
            }
            for f in encode("t", &events, mode, TimeFormat::EventTime, Some(&ChunkId::from_id("c"))) {
                bytes.extend_from_slice(&f);
            }
        }
        let at_once = decode_all(&bytes, &[bytes.len()]).unwrap();
        let one_by_one = decode_all(&bytes, &[1]).unwrap();
        let random = decode_all(&bytes, &pieces).unwrap();
        prop_assert_eq!(format!("{at_once:?}"), format!("{one_by_one:?}"));
        prop_assert_eq!(format!("{at_once:?}"), format!("{random:?}"));
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        pieces in proptest::collection::vec(1usize..32, 1..4),
    ) {
        // Any outcome but a panic or a hang is fine; agreement between
        // piece sizes is checked for valid input above.
        let _ = decode_all(&bytes, &pieces);
    }

    #[test]
    fn mutated_frames_never_panic(
        events in proptest::collection::vec(event(), 1..5),
        mode in wire_mode(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut bytes: Vec<u8> = encode("t", &events, mode, TimeFormat::EventTime, None)
            .iter()
            .flat_map(|f| f.to_vec())
            .collect();
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        if let Ok(requests) = decode_all(&bytes, &[bytes.len()]) {
            for r in requests {
                if let Request::Events(batch) = r {
                    prop_assert_eq!(batch.events().count(), batch.len());
                }
            }
        }
    }
}

proptest! {
    /// A large batch cut into pieces for the downstream: the pieces hold
    /// every event once, in order, each within the size unless it is a
    /// single event, and each decodes as events of its own.
    #[test]
    fn pieces_keep_every_event_within_the_size(
        events in proptest::collection::vec(event(), 1..40),
        max in 1usize..400,
    ) {
        let mut frame = FrameBuilder::new("t", BatchMode::PackedForward, TimeFormat::EventTime);
        for (t, r) in &events {
            frame.push_record(*t, r);
        }
        let bytes = frame.finish(None, None);
        let Some(Request::Events(batch)) = ForwardDecoder::new().decode_frame(&bytes).unwrap() else {
            panic!("not events");
        };
        let pieces = batch.pieces(max);
        let joined: Vec<u8> = pieces.iter().flat_map(|(b, _)| b.to_vec()).collect();
        prop_assert_eq!(&joined[..], &batch.entries()[..]);
        prop_assert_eq!(pieces.iter().map(|(_, n)| n).sum::<usize>(), events.len());
        for (piece, n) in &pieces {
            prop_assert!(piece.len() <= max || *n == 1, "{} bytes, {} events", piece.len(), n);
            let mut frame = FrameBuilder::new("t", BatchMode::PackedForward, TimeFormat::EventTime);
            frame.extend_entries(piece, *n);
            let bytes = frame.finish(None, None);
            let Some(Request::Events(b)) = ForwardDecoder::new().decode_frame(&bytes).unwrap() else {
                panic!("a piece is not events");
            };
            prop_assert_eq!(b.len(), *n);
        }
        if batch.entries().len() <= max {
            prop_assert_eq!(pieces.len(), 1);
        }
    }
}

proptest! {
    /// Inflating later, as a server does off its I/O threads, gives the
    /// batch inflating inside `decode` gives.
    #[test]
    fn deferred_inflation_gives_the_same_batch(
        events in proptest::collection::vec(event(), 1..20),
        with_chunk in any::<bool>(),
    ) {
        let chunk = with_chunk.then(ChunkId::generate);
        let frame = encode("t.x", &events, WireMode::CompressedPacked, TimeFormat::EventTime, chunk.as_ref())
            .remove(0);
        let inline = ForwardDecoder::new().decode_frame(&frame).unwrap();
        let deferred = ForwardDecoder::new().defer_inflation().decode_frame(&frame).unwrap();
        let Some(Request::Compressed(c)) = deferred else {
            panic!("not deferred: {deferred:?}");
        };
        prop_assert_eq!(c.max_inflated(), Limits::default().max_decompressed_bytes);
        match (inline, c.inflate()) {
            (Some(Request::Events(a)), Request::Events(b)) => prop_assert_eq!(a, b),
            (a, b) => panic!("{a:?} vs {b:?}"),
        }
    }
}

#[test]
fn a_deferred_bomb_is_dropped_at_the_limit() {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 8 << 20]).unwrap();
    let bomb = gz.finish().unwrap();
    let mut frame = vec![0x93, 0xa1, b't', 0xc6];
    frame.extend_from_slice(&u32::try_from(bomb.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&bomb);
    frame.extend_from_slice(&[0x81, 0xaa]);
    frame.extend_from_slice(b"compressed");
    frame.extend_from_slice(&[0xa4, b'g', b'z', b'i', b'p']);
    let mut decoder = ForwardDecoder::with_limits(Limits {
        max_decompressed_bytes: 1 << 20,
        ..Limits::default()
    })
    .defer_inflation();
    let Some(Request::Compressed(c)) = decoder.decode_frame(&Bytes::from(frame)).unwrap() else {
        panic!("not deferred");
    };
    let Request::Dropped(d) = c.inflate() else {
        panic!("a bomb was accepted");
    };
    assert!(d.error.can_continue(), "{}", d.error);
}
