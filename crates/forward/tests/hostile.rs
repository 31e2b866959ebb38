//! Hostile input: truncated frames, wrong types, lengths that claim
//! gigabytes, a gzip bomb, deep nesting. Each gives an error or a dropped
//! frame, never a panic and never an unbounded allocation.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

use std::io::Write;

use bytes::BytesMut;
use hydra_forward::{
    BatchMode, ChunkId, Compression, Error, EventTime, ForwardDecoder, FrameBuilder, Limits,
    Request, TimeFormat,
};
use tokio_util::codec::Decoder;

/// `["t", <bin32 gzip body>, {"compressed": "gzip", "chunk"?: chunk}]`.
fn gzip_frame(body: &[u8], chunk: Option<&str>) -> Vec<u8> {
    let mut frame = vec![0x93, 0xa1, b't', 0xc6];
    frame.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(body);
    frame.push(if chunk.is_some() { 0x82 } else { 0x81 });
    frame.push(0xaa);
    frame.extend_from_slice(b"compressed");
    frame.extend_from_slice(&[0xa4, b'g', b'z', b'i', b'p']);
    if let Some(c) = chunk {
        frame.push(0xa5);
        frame.extend_from_slice(b"chunk");
        frame.push(0xa0 | u8::try_from(c.len()).unwrap());
        frame.extend_from_slice(c.as_bytes());
    }
    frame
}

fn good_frame() -> Vec<u8> {
    let mut b = FrameBuilder::new("good", BatchMode::PackedForward, TimeFormat::EventTime);
    b.push_line(EventTime::new(1_700_000_000, 0), "message", b"hello");
    b.finish(Some(&ChunkId::from_id("ok")), None).to_vec()
}

fn decode(decoder: &mut ForwardDecoder, bytes: &[u8]) -> (Vec<Request>, Option<Error>, BytesMut) {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(r)) => out.push(r),
            Ok(None) => return (out, None, buf),
            Err(e) => return (out, Some(e), buf),
        }
    }
}

/// The records of `frame`, which must decode without an error into one
/// batch of events.
fn records_of_one_batch(frame: &[u8]) -> Vec<rmpv::Value> {
    let (requests, err, _) = decode(&mut ForwardDecoder::new(), frame);
    assert!(err.is_none(), "{err:?}");
    let [Request::Events(batch)] = &requests[..] else {
        panic!("{requests:?}")
    };
    batch.to_events().into_iter().map(|e| e.record).collect()
}

fn dropped(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .filter_map(|r| match r {
            Request::Dropped(d) => {
                assert!(d.error.can_continue());
                Some(d.error.to_string())
            }
            _ => None,
        })
        .collect()
}

/// After a dropped frame, the next good one on the same connection decodes.
fn assert_dropped_then_good(bad: &[u8], reason: &str) {
    let mut bytes = bad.to_vec();
    bytes.extend_from_slice(&good_frame());
    let (requests, err, rest) = decode(&mut ForwardDecoder::new(), &bytes);
    assert!(err.is_none(), "{err:?}");
    assert!(rest.is_empty());
    let reasons = dropped(&requests);
    assert_eq!(reasons.len(), 1, "{requests:?}");
    assert!(
        reasons[0].contains(reason),
        "{} does not mention {reason}",
        reasons[0]
    );
    assert!(matches!(requests.last(), Some(Request::Events(b)) if b.tag() == "good"));
}

#[test]
fn every_prefix_of_a_frame_waits_for_more() {
    let frame = good_frame();
    for n in 0..frame.len() {
        let (requests, err, rest) = decode(&mut ForwardDecoder::new(), &frame[..n]);
        assert!(requests.is_empty() && err.is_none(), "prefix {n}");
        assert_eq!(rest.len(), n);
    }
}

#[test]
fn wrong_types_drop_only_their_frame() {
    // Tag is an integer.
    assert_dropped_then_good(&[0x93, 0x01, 0xc4, 0x00, 0x80], "tag");
    // Entries are neither str, bin nor array.
    assert_dropped_then_good(&[0x92, 0xa1, b't', 0xc3], "record");
    // Option is not a map.
    assert_dropped_then_good(&[0x93, 0xa1, b't', 0xc4, 0x00, 0x01], "option");
    // A top-level value that is not an array.
    assert_dropped_then_good(&[0x2a], "not an array");
    // Too many elements.
    assert_dropped_then_good(&[0x95, 0xa1, b't', 0x01, 0x80, 0x80, 0x80], "elements");
    // An unknown compression.
    assert_dropped_then_good(
        &[
            0x93, 0xa1, b't', 0xc4, 0x00, 0x81, 0xaa, b'c', b'o', b'm', b'p', b'r', b'e', b's',
            b's', b'e', b'd', 0xa4, b'z', b's', b't', b'd',
        ],
        "zstd",
    );
}

#[test]
fn invalid_events_are_skipped_and_counted() {
    // Forward mode: a good entry, one with a string time, one with a
    // non-map record, one with a negative time, and one with a bad arity.
    let t = EventTime::new(1_700_000_000, 0).to_msgpack();
    let mut entries = vec![0x95];
    entries.push(0x92);
    entries.extend_from_slice(&t);
    entries.extend_from_slice(&[0x81, 0xa1, b'k', 0x01]);
    entries.extend_from_slice(&[0x92, 0xa1, b'x', 0x80]);
    entries.push(0x92);
    entries.extend_from_slice(&t);
    entries.push(0x07);
    entries.extend_from_slice(&[0x92, 0xff, 0x80]);
    entries.extend_from_slice(&[0x91, 0x80]);
    let mut frame = vec![0x92, 0xa1, b't'];
    frame.extend_from_slice(&entries);
    let (requests, err, _) = decode(&mut ForwardDecoder::new(), &frame);
    assert!(err.is_none());
    let [Request::Events(batch)] = &requests[..] else {
        panic!("{requests:?}")
    };
    assert_eq!(batch.len(), 1);
    assert_eq!(batch.skipped(), 4);
    let events = batch.to_events();
    assert_eq!(events[0].record["k"].as_i64(), Some(1));
    // The kept entries stand alone: forwarding them gives one valid event.
    let mut again = FrameBuilder::new("t", BatchMode::PackedForward, TimeFormat::EventTime);
    again.extend_entries(batch.entries(), batch.len());
    let (requests, _, _) = decode(&mut ForwardDecoder::new(), &again.finish(None, None));
    assert!(matches!(&requests[..], [Request::Events(b)] if b.len() == 1 && b.skipped() == 0));
}

#[test]
fn lengths_claiming_gigabytes_fail_before_buffering() {
    for claim in [
        &[0x93, 0xa1, b't', 0xc6, 0xff, 0xff, 0xff, 0xff][..], // bin32
        &[0x93, 0xa1, b't', 0xdb, 0xff, 0xff, 0xff, 0xf0],     // str32
        &[0x93, 0xa1, b't', 0xdd, 0xff, 0xff, 0xff, 0xff],     // array32
        &[0x93, 0xa1, b't', 0xdf, 0x7f, 0xff, 0xff, 0xff],     // map32
        &[0xdd, 0x10, 0x00, 0x00, 0x00],                       // top-level array32
    ] {
        let (requests, err, buf) = decode(&mut ForwardDecoder::new(), claim);
        assert!(requests.is_empty());
        assert!(
            matches!(err, Some(Error::FrameTooLarge { .. })),
            "{claim:02x?}: {err:?}"
        );
        assert!(!err.unwrap().can_continue());
        assert!(
            buf.capacity() < 1 << 16,
            "buffer grew to {}",
            buf.capacity()
        );
    }
}

#[test]
fn a_large_claim_within_the_limit_does_not_allocate_it_up_front() {
    // 15 MiB promised, 16 MiB allowed: the decoder waits without
    // reserving the 15 MiB.
    let claim = [0x93, 0xa1, b't', 0xc6, 0x00, 0xf0, 0x00, 0x00];
    let (requests, err, buf) = decode(&mut ForwardDecoder::new(), &claim);
    assert!(requests.is_empty() && err.is_none());
    assert!(
        buf.capacity() <= (64 << 10) + 64,
        "reserved {}",
        buf.capacity()
    );
}

#[test]
fn frame_limit_is_exact() {
    let frame = good_frame();
    let limits = |max_frame_bytes| Limits {
        max_frame_bytes,
        ..Limits::default()
    };
    let (ok, err, _) = decode(
        &mut ForwardDecoder::with_limits(limits(frame.len())),
        &frame,
    );
    assert!(err.is_none() && ok.len() == 1);
    let (none, err, _) = decode(
        &mut ForwardDecoder::with_limits(limits(frame.len() - 1)),
        &frame,
    );
    assert!(none.is_empty() && matches!(err, Some(Error::FrameTooLarge { .. })));
}

#[test]
fn a_gzip_bomb_is_dropped_without_inflating_it() {
    // 64 MiB of zeros inflate from about 64 KiB; the limit is 1 MiB.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    let mut frame = gzip_frame(&bomb, Some("b"));
    frame.extend_from_slice(&good_frame());
    let limits = Limits {
        max_decompressed_bytes: 1 << 20,
        ..Limits::default()
    };
    let (requests, err, _) = decode(&mut ForwardDecoder::with_limits(limits), &frame);
    assert!(err.is_none());
    let [Request::Dropped(d), Request::Events(good)] = &requests[..] else {
        panic!("{requests:?}")
    };
    assert!(matches!(d.error, Error::DecompressedTooLarge { limit } if limit == 1 << 20));
    // The chunk is known: a server answers it, and keeps the frame for a
    // dead-letter file.
    assert_eq!(d.chunk, Some(ChunkId::from_id("b")));
    assert_eq!(d.ack(), Some(ChunkId::from_id("b").ack()));
    assert_eq!(&d.frame[..], &frame[..frame.len() - good_frame().len()]);
    assert_eq!(good.tag(), "good");
}

#[test]
fn corrupt_gzip_drops_the_frame() {
    let mut b = FrameBuilder::new("t", BatchMode::PackedForward, TimeFormat::EventTime);
    b.push_line(EventTime::new(1, 0), "m", b"x");
    let mut frame = b.finish(None, Some(Compression::Gzip)).to_vec();
    // Corrupt the deflate stream (after the 10-byte gzip header).
    let at = 3 + 5 + 12;
    frame[at] ^= 0xff;
    frame[at + 1] ^= 0xff;
    assert_dropped_then_good(&frame, "gzip");
}

#[test]
fn deep_nesting_is_refused_without_recursion() {
    // A million nested arrays: refused at the depth limit, no stack overflow.
    let mut deep = vec![0x92, 0xa1, b't'];
    deep.extend(std::iter::repeat_n(0x91, 1_000_000));
    let (requests, err, _) = decode(&mut ForwardDecoder::new(), &deep);
    assert!(requests.is_empty());
    assert!(matches!(err, Some(Error::TooDeep { limit: 64 })), "{err:?}");
    // Inside a gzip body, too: the entries are scanned with the same limit.
    let mut inner = vec![0x92, 0xd7, 0x00, 0, 0, 0, 1, 0, 0, 0, 0, 0x81, 0xa1, b'k'];
    inner.extend(std::iter::repeat_n(0x91, 10_000));
    inner.push(0x01);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&inner).unwrap();
    let body = gz.finish().unwrap();
    let frame = gzip_frame(&body, None);
    let (requests, err, _) = decode(&mut ForwardDecoder::new(), &frame);
    assert!(err.is_none());
    let [Request::Events(batch)] = &requests[..] else {
        panic!("{requests:?}")
    };
    assert_eq!((batch.len(), batch.skipped()), (0, 1));
}

#[test]
fn the_unused_marker_closes_the_connection() {
    let (requests, err, _) = decode(&mut ForwardDecoder::new(), &[0x92, 0xc1]);
    assert!(requests.is_empty());
    let err = err.unwrap();
    assert!(!err.can_continue());
}

#[test]
fn heartbeats_are_consumed_silently() {
    let mut bytes = vec![0xc0, 0xc0];
    bytes.extend_from_slice(&good_frame());
    bytes.push(0xc0);
    let mut decoder = ForwardDecoder::new();
    let (requests, err, rest) = decode(&mut decoder, &bytes);
    assert!(err.is_none() && rest.is_empty());
    assert_eq!(requests.len(), 1);
    assert_eq!(decoder.heartbeats(), 3);
}

#[test]
fn message_mode_with_metadata_time_and_zero_time() {
    // Fluent Bit's [EventTime, metadata] time, in Message mode.
    let t = EventTime::new(1_700_000_005, 9);
    let mut frame = vec![0x93, 0xa1, b't', 0x92];
    frame.extend_from_slice(&t.to_msgpack());
    frame.extend_from_slice(&[0x81, 0xa1, b'm', 0x01, 0x81, 0xa1, b'k', 0x02]);
    // A time of 0 means "now".
    frame.extend_from_slice(&[0x93, 0xa1, b't', 0x00, 0x81, 0xa1, b'k', 0x03]);
    let before = EventTime::now();
    let (requests, err, _) = decode(&mut ForwardDecoder::new(), &frame);
    assert!(err.is_none());
    let [Request::Events(a), Request::Events(b)] = &requests[..] else {
        panic!("{requests:?}")
    };
    assert_eq!(a.to_events()[0].time, t);
    assert_eq!(a.to_events()[0].record["k"].as_i64(), Some(2));
    let now = b.to_events()[0].time;
    assert!(now >= before && now.secs < before.secs + 60);
}

#[test]
fn several_gzip_members_are_one_entries_blob() {
    let entry = |n: u8| {
        let mut e = vec![0x92];
        e.extend_from_slice(&EventTime::new(1_700_000_000, 0).to_msgpack());
        e.extend_from_slice(&[0x81, 0xa1, b'n', n]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&e).unwrap();
        gz.finish().unwrap()
    };
    let body: Vec<u8> = [entry(1), entry(2), entry(3)].concat();
    let mut frame = vec![0x93, 0xa1, b't', 0xc4, u8::try_from(body.len()).unwrap()];
    frame.extend_from_slice(&body);
    frame.extend_from_slice(&[0x81, 0xaa]);
    frame.extend_from_slice(b"compressed");
    frame.extend_from_slice(&[0xa4, b'g', b'z', b'i', b'p']);
    let ns: Vec<_> = records_of_one_batch(&frame)
        .iter()
        .map(|r| r["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, [1, 2, 3]);
}

#[test]
fn push_fields_writes_a_map_of_strings() {
    let mut b = FrameBuilder::new("t", BatchMode::PackedForward, TimeFormat::EventTime);
    b.push_fields(
        EventTime::new(5, 0),
        &[("message", b"hello"), ("path", b"/var/log/a.log")],
    );
    let (requests, err, _) = decode(&mut ForwardDecoder::new(), &b.finish(None, None));
    assert!(err.is_none());
    let [Request::Events(batch)] = &requests[..] else {
        panic!("{requests:?}")
    };
    let e = &batch.to_events()[0];
    assert_eq!(e.record["message"].as_str(), Some("hello"));
    assert_eq!(e.record["path"].as_str(), Some("/var/log/a.log"));
}

/// `["t", <bin32 zstd body>, {"compressed": "zstd", "chunk": chunk}]`.
fn zstd_frame(body: &[u8], chunk: &str) -> Vec<u8> {
    let mut frame = gzip_frame(body, Some(chunk));
    let at = frame
        .windows(4)
        .rposition(|w| w == b"gzip")
        .expect("the compressed option");
    frame[at..at + 4].copy_from_slice(b"zstd");
    frame
}

#[test]
fn a_zstd_bomb_is_dropped_without_inflating_it() {
    // 64 MiB of zeros compress to a few KiB; the limit is 1 MiB, and
    // inflating stops one byte past it.
    let bomb = zstd::stream::encode_all(&vec![0u8; 64 << 20][..], 19).unwrap();
    assert!(bomb.len() < 64 << 10, "{}", bomb.len());
    let mut frame = zstd_frame(&bomb, "z");
    frame.extend_from_slice(&good_frame());
    let limits = Limits {
        max_decompressed_bytes: 1 << 20,
        ..Limits::default()
    };
    for deferred in [false, true] {
        let mut decoder = ForwardDecoder::with_limits(limits);
        if deferred {
            decoder = decoder.defer_inflation();
        }
        let (requests, err, _) = decode(&mut decoder, &frame);
        assert!(err.is_none());
        let dropped = match &requests[..] {
            [Request::Dropped(d), Request::Events(_)] => d.error.to_string(),
            [Request::Compressed(_), Request::Events(_)] if deferred => {
                let Some(Request::Compressed(c)) = requests.into_iter().next() else {
                    unreachable!()
                };
                let Request::Dropped(d) = c.inflate() else {
                    panic!("inflated a bomb")
                };
                d.error.to_string()
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(
            dropped,
            Error::DecompressedTooLarge { limit: 1 << 20 }.to_string()
        );
    }
}

#[test]
fn zstd_frames_round_trip_and_corrupt_zstd_drops_the_frame() {
    let mut b = FrameBuilder::new("t", BatchMode::PackedForward, TimeFormat::EventTime);
    for n in 0..100u32 {
        b.push_line(EventTime::new(1, n), "m", format!("line {n}").as_bytes());
    }
    let frame = b
        .finish(Some(&ChunkId::from_id("c")), Some(Compression::Zstd))
        .to_vec();
    let (requests, err, _) = decode(&mut ForwardDecoder::new(), &frame);
    assert!(err.is_none());
    let [Request::Events(batch)] = &requests[..] else {
        panic!("{requests:?}")
    };
    assert_eq!(batch.len(), 100);
    assert_eq!(batch.to_events()[99].record["m"].as_str(), Some("line 99"));
    assert_eq!(batch.ack(), Some(ChunkId::from_id("c").ack()));
    // The zstd frame's magic number and header, spoiled.
    let mut bad = frame;
    let at = bad
        .windows(4)
        .position(|w| w == [0x28, 0xb5, 0x2f, 0xfd])
        .expect("a zstd frame");
    for byte in &mut bad[at + 4..at + 12] {
        *byte ^= 0xff;
    }
    assert_dropped_then_good(&bad, "zstd");
}

#[test]
fn concatenated_zstd_frames_inflate_as_one_entries_stream() {
    // A sender that compresses each piece it appends (as fluentd does with
    // gzip members) sends several zstd frames back to back.
    let entry = |n: u32| {
        let mut b = Vec::new();
        let record = rmpv::Value::Map(vec![("m".into(), format!("piece {n}").into())]);
        rmpv::encode::write_value(
            &mut b,
            &rmpv::Value::Array(vec![1_700_000_000u32.into(), record]),
        )
        .unwrap();
        b
    };
    let mut body = Vec::new();
    for n in 0..3 {
        body.extend(zstd::stream::encode_all(&entry(n)[..], 3).unwrap());
    }
    let pieces: Vec<_> = records_of_one_batch(&zstd_frame(&body, "c"))
        .iter()
        .map(|r| r["m"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(pieces, ["piece 0", "piece 1", "piece 2"]);
}

#[test]
fn an_unsupported_compression_keeps_the_chunk_id_wherever_it_comes() {
    // Before the chunk option or after it: either way the frame can be
    // answered.
    for chunk_first in [true, false] {
        let mut frame = vec![0x93, 0xa1, b't', 0xc4, 0x01, 0x00, 0x82];
        let chunk = [&[0xa5][..], b"chunk", &[0xa1, b'c']].concat();
        let compressed = [&[0xaa][..], b"compressed", &[0xa3], b"lz4"].concat();
        if chunk_first {
            frame.extend_from_slice(&chunk);
            frame.extend_from_slice(&compressed);
        } else {
            frame.extend_from_slice(&compressed);
            frame.extend_from_slice(&chunk);
        }
        let mut next = frame.clone();
        next.extend_from_slice(&good_frame());
        let (requests, err, _) = decode(&mut ForwardDecoder::new(), &next);
        assert!(err.is_none());
        let [Request::Dropped(d), Request::Events(_)] = &requests[..] else {
            panic!("{requests:?}")
        };
        assert!(matches!(d.error, Error::UnsupportedCompression { .. }));
        assert_eq!(
            d.chunk,
            Some(ChunkId::from_id("c")),
            "chunk first: {chunk_first}"
        );
        assert_eq!(&d.frame[..], &frame[..]);
    }
}
