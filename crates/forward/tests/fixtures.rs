//! Decoding real captures from Fluentd and its client libraries.
//!
//! Each test states what the capture holds (tag, times, options) and checks
//! that hydra decodes exactly that, and that the ack hydra would send is
//! byte for byte the one Fluentd sent.

#![allow(clippy::unwrap_used)] // a panic is how a test fails

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use hydra_forward::{
    ChunkId, EventBatch, EventTime, ForwardDecoder, Mode, Pong, Reply, ReplyDecoder, Request,
    udp_heartbeat_reply,
};
use tokio_util::codec::Decoder;

fn fixture(name: &str) -> Bytes {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .into()
}

/// Decodes a whole client stream three ways (at once, a byte at a time, in
/// 7-byte pieces) and checks the three agree.
fn decode_stream(bytes: &[u8]) -> Vec<Request> {
    let whole = decode_in_pieces(bytes, bytes.len().max(1));
    for piece in [1, 7] {
        let other = decode_in_pieces(bytes, piece);
        assert_eq!(
            format!("{whole:?}"),
            format!("{other:?}"),
            "piece size {piece}"
        );
    }
    whole
}

fn decode_in_pieces(bytes: &[u8], piece: usize) -> Vec<Request> {
    let mut decoder = ForwardDecoder::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for part in bytes.chunks(piece) {
        buf.extend_from_slice(part);
        while let Some(request) = decoder.decode(&mut buf).expect("no fatal error") {
            out.push(request);
        }
    }
    assert!(buf.is_empty(), "{} bytes left undecoded", buf.len());
    out
}

fn replies(bytes: &[u8]) -> Vec<Reply> {
    let mut decoder = ReplyDecoder::new();
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(reply) = decoder.decode(&mut buf).expect("valid reply") {
        out.push(reply);
    }
    assert!(buf.is_empty());
    out
}

fn batches(requests: Vec<Request>) -> Vec<EventBatch> {
    requests
        .into_iter()
        .map(|r| match r {
            Request::Events(b) => b,
            other => panic!("expected events, got {other:?}"),
        })
        .collect()
}

/// The record as a sorted map of its fields (Go writes the keys in a
/// different order each time).
fn fields(record: &rmpv::Value) -> BTreeMap<String, String> {
    record
        .as_map()
        .expect("record is a map")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_owned(), v.to_string()))
        .collect()
}

fn expected_record(n: u32) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("message".to_owned(), format!("\"line {n}\"")),
        ("n".to_owned(), n.to_string()),
    ])
}

/// Checks the five events `{"message": "line N", "n": N}` across `batches`,
/// with `time(N)` as each event's time.
fn assert_five_events(batches: &[EventBatch], tag: &str, time: impl Fn(u32) -> EventTime) {
    let events: Vec<_> = batches.iter().flat_map(EventBatch::to_events).collect();
    assert_eq!(events.len(), 5);
    for (i, event) in events.iter().enumerate() {
        let n = u32::try_from(i).unwrap() + 1;
        assert_eq!(event.time, time(n), "time of event {n}");
        assert_eq!(
            fields(&event.record),
            expected_record(n),
            "record of event {n}"
        );
    }
    for b in batches {
        assert_eq!(b.tag(), tag);
        assert_eq!(b.skipped(), 0);
    }
}

/// The acks hydra would send, concatenated, must equal what Fluentd sent.
fn assert_acks(batches: &[EventBatch], s2c: &[u8]) {
    let ours: Vec<u8> = batches
        .iter()
        .flat_map(|b| b.ack().expect("an ack was asked for").to_vec())
        .collect();
    assert_eq!(ours, s2c);
}

fn relay_time(n: u32) -> EventTime {
    EventTime::new(1_700_000_000 + n, n * 100_000_000)
}
fn js_time(n: u32) -> EventTime {
    EventTime::new(1_700_000_000 + n, n * 1000)
}
fn int_time(n: u32) -> EventTime {
    EventTime::new(1_700_000_000 + n, 0)
}

#[test]
fn fluent_cat_forward_eventtime() {
    let b = batches(decode_stream(&fixture(
        "fluent_cat_forward_eventtime.c2s.bin",
    )));
    assert_eq!(b.len(), 5);
    assert!(
        b.iter()
            .all(|b| b.mode() == Mode::Forward && b.len() == 1 && b.ack().is_none())
    );
    assert!(b.iter().all(|b| b.options() == &Default::default()));
    assert_five_events(&b, "test.fluentcat", |_| {
        EventTime::new(1_700_000_000, 123_456_789)
    });
}

#[test]
fn fluentd_out_forward_packed_ack() {
    let b = batches(decode_stream(&fixture(
        "fluentd_out_forward_packed_ack.c2s.bin",
    )));
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].mode(), Mode::PackedForward);
    assert_eq!(b[0].options().size, Some(5));
    // `compressed: "text"` means not compressed.
    assert_eq!(b[0].options().compressed, None);
    let chunk = b[0].options().chunk.as_ref().unwrap();
    assert_eq!(chunk.id(), Some(&b"ZhGTK1TU2d0avO6tX9zmhw==\n"[..]));
    assert_five_events(&b, "test.relay.ack", relay_time);
    assert_acks(&b, &fixture("fluentd_out_forward_packed_ack.s2c.bin"));
}

#[test]
fn fluentd_out_forward_packed_gzip_ack() {
    let b = batches(decode_stream(&fixture(
        "fluentd_out_forward_packed_gzip_ack.c2s.bin",
    )));
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].mode(), Mode::CompressedPackedForward);
    assert_eq!(b[0].options().size, Some(5));
    assert_five_events(&b, "test.relay.gzip", relay_time);
    assert_acks(&b, &fixture("fluentd_out_forward_packed_gzip_ack.s2c.bin"));
}

/// A handshake capture: HELO from the server, PING then data from the
/// client, PONG and the ack from the server.
fn check_handshake(
    stem: &str,
    client: &str,
    key: &str,
    tag: &str,
    time: fn(u32) -> EventTime,
    mode: Mode,
) {
    let c2s = fixture(&format!("{stem}.c2s.bin"));
    let s2c = fixture(&format!("{stem}.s2c.bin"));
    // The message-by-message files are the same streams cut at frame edges.
    let cut = |parts: &[&str]| -> Vec<u8> {
        parts
            .iter()
            .flat_map(|p| fixture(&format!("{stem}.{p}.bin")).to_vec())
            .collect()
    };
    assert_eq!(cut(&["1_ping.c2s", "2_data.c2s"]), c2s);
    assert_eq!(cut(&["0_helo.s2c", "1_pong.s2c", "2_ack.s2c"]), s2c);

    let [Reply::Helo(helo), Reply::Pong(pong), Reply::Ack(ack)] = &replies(&s2c)[..] else {
        panic!("expected HELO, PONG, ack");
    };
    assert_eq!(helo.nonce.len(), 16);
    assert_eq!(helo.auth.len(), 16);
    assert!(helo.keepalive);
    // hydra's own encodings of these messages are Fluentd's, byte for byte.
    assert_eq!(
        helo.to_msgpack(),
        fixture(&format!("{stem}.0_helo.s2c.bin"))
    );
    assert_eq!(
        pong.to_msgpack(),
        fixture(&format!("{stem}.1_pong.s2c.bin"))
    );

    let mut requests = decode_stream(&c2s).into_iter();
    let Some(Request::Ping(ping)) = requests.next() else {
        panic!("expected PING first")
    };
    assert_eq!(
        ping.to_msgpack(),
        fixture(&format!("{stem}.1_ping.c2s.bin"))
    );
    assert_eq!(ping.client_hostname, client);
    assert!(ping.verify_shared_key(&helo.nonce, key));
    assert!(!ping.verify_shared_key(&helo.nonce, "not-the-key"));
    // The client hashed empty credentials because HELO carried an auth salt.
    assert!(ping.verify_password(&helo.auth, "", ""));
    assert!(pong.auth_result);
    assert_eq!(pong.server_hostname, "fluentd-peer");
    pong.verify(&ping, &helo.nonce, key)
        .expect("server digest verifies");
    assert!(pong.verify(&ping, &helo.nonce, "not-the-key").is_err());
    // What hydra would answer to this PING, given the same nonce, is what
    // fluentd answered.
    assert_eq!(&Pong::accept(&ping, &helo.nonce, "fluentd-peer", key), pong);

    let b = batches(requests.collect());
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].mode(), mode);
    assert_five_events(&b, tag, time);
    assert_eq!(b[0].options().chunk.as_ref(), Some(ack));
    assert_acks(&b, &fixture(&format!("{stem}.2_ack.s2c.bin")));
}

#[test]
fn fluentd_out_forward_shared_key() {
    check_handshake(
        "fluentd_out_forward_shared_key",
        "fluentd-relay",
        "secret123",
        "test.relay.secure",
        relay_time,
        Mode::PackedForward,
    );
}

#[test]
fn fluentorg_logger_shared_key() {
    check_handshake(
        "fluentorg_logger_shared_key",
        "fluentorg-client",
        "secret123",
        "test.fluentorg.packedforward",
        js_time,
        Mode::PackedForward,
    );
}

#[test]
fn fluentorg_logger_shared_key_mismatch() {
    let s2c = fixture("fluentorg_logger_shared_key_mismatch.s2c.bin");
    let [Reply::Helo(helo), Reply::Pong(pong)] = &replies(&s2c)[..] else {
        panic!("expected HELO then PONG");
    };
    let mut requests = decode_stream(&fixture("fluentorg_logger_shared_key_mismatch.c2s.bin"));
    assert_eq!(requests.len(), 1);
    let Some(Request::Ping(ping)) = requests.pop() else {
        panic!("expected PING")
    };
    assert_eq!(ping.client_hostname, "fluentorg-client");
    // The client used "wrongkey"; the server's key is "secret123".
    assert!(!ping.verify_shared_key(&helo.nonce, "secret123"));
    assert!(ping.verify_shared_key(&helo.nonce, "wrongkey"));
    assert_eq!(pong, &Pong::refuse("shared_key mismatch"));
    assert_eq!(
        Pong::refuse("shared_key mismatch").to_msgpack(),
        s2c.slice(helo.to_msgpack().len()..)
    );
    assert!(pong.verify(&ping, &helo.nonce, "wrongkey").is_err());
}

#[test]
fn fluentd_out_forward_udp_heartbeat() {
    let request = fixture("fluentd_out_forward_udp_heartbeat.c2s.bin");
    let reply = fixture("fluentd_out_forward_udp_heartbeat.s2c.bin");
    assert_eq!(udp_heartbeat_reply(&request), &reply[..]);
}

#[test]
fn python_fluent_logger_message_eventtime() {
    let b = batches(decode_stream(&fixture(
        "python_fluent_logger_message_eventtime.c2s.bin",
    )));
    assert_eq!(b.len(), 5);
    assert!(
        b.iter()
            .all(|b| b.mode() == Mode::Message && b.ack().is_none())
    );
    assert_five_events(&b, "test.python.nano", |n| {
        EventTime::new(1_700_000_000 + n, 500_000_000)
    });
}

#[test]
fn python_fluent_logger_message_int() {
    let b = batches(decode_stream(&fixture(
        "python_fluent_logger_message_int.c2s.bin",
    )));
    assert_eq!(b.len(), 5);
    assert!(
        b.iter()
            .all(|b| b.mode() == Mode::Message && b.ack().is_none())
    );
    assert_five_events(&b, "test.python.int", int_time);
}

fn check_message_ack(stem: &str, tag: &str, time: fn(u32) -> EventTime) {
    let b = batches(decode_stream(&fixture(&format!("{stem}.c2s.bin"))));
    assert_eq!(b.len(), 5);
    assert!(b.iter().all(|b| b.mode() == Mode::Message && b.len() == 1));
    assert_five_events(&b, tag, time);
    assert_acks(&b, &fixture(&format!("{stem}.s2c.bin")));
}

#[test]
fn fluentorg_logger_message_ack() {
    check_message_ack(
        "fluentorg_logger_message_ack",
        "test.fluentorg.message",
        js_time,
    );
}

#[test]
fn npm_fluent_logger_message_ack() {
    check_message_ack(
        "npm_fluent_logger_message_ack",
        "test.fluentlogger.message",
        int_time,
    );
}

#[test]
fn go_fluent_logger_message_ack_eventtime() {
    check_message_ack(
        "go_fluent_logger_message_ack_eventtime",
        "test.go.nano",
        js_time,
    );
}

#[test]
fn go_fluent_logger_message_ack_int() {
    // Go sends the integer time as int32 (0xd2), not uint32.
    check_message_ack("go_fluent_logger_message_ack_int", "test.go.int", int_time);
}

fn check_batch_ack(stem: &str, tag: &str, mode: Mode, size: u64, time: fn(u32) -> EventTime) {
    let b = batches(decode_stream(&fixture(&format!("{stem}.c2s.bin"))));
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].mode(), mode);
    assert_eq!(b[0].len(), 5);
    assert_eq!(b[0].options().size, Some(size));
    assert_five_events(&b, tag, time);
    assert_acks(&b, &fixture(&format!("{stem}.s2c.bin")));
}

#[test]
fn fluentorg_logger_forward_ack() {
    check_batch_ack(
        "fluentorg_logger_forward_ack",
        "test.fluentorg.forward",
        Mode::Forward,
        5,
        js_time,
    );
}

#[test]
fn fluentorg_logger_packedforward_ack() {
    check_batch_ack(
        "fluentorg_logger_packedforward_ack",
        "test.fluentorg.packedforward",
        Mode::PackedForward,
        5,
        js_time,
    );
}

#[test]
fn fluentorg_logger_compressedpackedforward_ack() {
    check_batch_ack(
        "fluentorg_logger_compressedpackedforward_ack",
        "test.fluentorg.compressedpackedforward",
        Mode::CompressedPackedForward,
        5,
        js_time,
    );
}

#[test]
fn npm_fluent_logger_packedforward_ack() {
    // npm fluent-logger puts the entries' byte count in `size`.
    check_batch_ack(
        "npm_fluent_logger_packedforward_ack",
        "test.fluentlogger.packedforward",
        Mode::PackedForward,
        150,
        js_time,
    );
}

#[test]
fn npm_fluent_logger_compressedpackedforward_ack() {
    check_batch_ack(
        "npm_fluent_logger_compressedpackedforward_ack",
        "test.fluentlogger.compressedpackedforward",
        Mode::CompressedPackedForward,
        83,
        int_time,
    );
}

#[test]
fn packed_entries_are_forwarded_without_a_copy() {
    let bytes = fixture("fluentd_out_forward_packed_ack.c2s.bin");
    let mut buf = BytesMut::from(&bytes[..]);
    let Some(Request::Events(batch)) = ForwardDecoder::new().decode(&mut buf).unwrap() else {
        panic!("expected events")
    };
    // The entries are the str32 body of the received frame, unchanged.
    let body = &bytes[16 + 5..16 + 5 + 150];
    assert_eq!(&batch.entries()[..], body);
    let parts = hydra_forward::FrameParts::packed(
        batch.tag(),
        batch.entries().clone(),
        batch.len(),
        Some(&ChunkId::from_id("x")),
    );
    let mut again = BytesMut::from(&parts.to_bytes()[..]);
    let Some(Request::Events(copy)) = ForwardDecoder::new().decode(&mut again).unwrap() else {
        panic!("expected events")
    };
    assert_eq!(copy.entries(), batch.entries());
    assert_eq!(copy.tag(), batch.tag());
}

#[test]
fn every_capture_file_is_covered() {
    // Guards against a capture being added to the fixtures without a test
    // above: each stem here has its own test function.
    let covered = [
        "fluent_cat_forward_eventtime",
        "fluentd_out_forward_packed_ack",
        "fluentd_out_forward_packed_gzip_ack",
        "fluentd_out_forward_shared_key",
        "fluentd_out_forward_udp_heartbeat",
        "fluentorg_logger_compressedpackedforward_ack",
        "fluentorg_logger_forward_ack",
        "fluentorg_logger_message_ack",
        "fluentorg_logger_packedforward_ack",
        "fluentorg_logger_shared_key",
        "fluentorg_logger_shared_key_mismatch",
        "go_fluent_logger_message_ack_eventtime",
        "go_fluent_logger_message_ack_int",
        "npm_fluent_logger_compressedpackedforward_ack",
        "npm_fluent_logger_message_ack",
        "npm_fluent_logger_packedforward_ack",
        "python_fluent_logger_message_eventtime",
        "python_fluent_logger_message_int",
    ];
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(stem) = name.strip_suffix(".bin") {
            let stem = stem.split('.').next().unwrap();
            assert!(covered.contains(&stem), "capture {name} has no test");
        }
    }
}
