//! Each step of a connection's life on its own: the reader's budget and
//! rate rules, then read, decode, append and answer over an in-memory
//! stream.

use std::time::Duration;

use bytes::Bytes;
use hydra_buffer::BufferConfig;
use hydra_forward::{
    BatchMode, ChunkId, EventTime, ForwardDecoder, FrameBuilder, Request, TimeFormat,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::budget::{Budget, FREE, Held};
use super::causes::{Closed, Dropped};
use super::conn::{Answer, Connection, Decoded, End, ack_writer};
use super::reader::{Next, READ, Reader};
use super::*;

/// A reader within a budget of `total` bytes, the client's end of its
/// stream, and the budget.
fn duplex_reader(total: usize) -> (Reader, DuplexStream, Arc<Budget>) {
    let budget = Budget::new(total);
    let (client, server) = tokio::io::duplex(1 << 20);
    let (read, _write) = tokio::io::split(Box::new(server) as Conn);
    (reader(read, &budget), client, budget)
}

fn reader(read: tokio::io::ReadHalf<Conn>, budget: &Arc<Budget>) -> Reader {
    Reader::new(
        read,
        ForwardDecoder::with_limits(Limits::default())
            .defer_inflation()
            .caller_reserves(),
        Held::new(
            budget.clone(),
            Held::share(budget.total(), Limits::default().max_frame_bytes),
        ),
        64 << 10,
    )
}

fn frame(events: usize, pad: usize, chunk: Option<&str>) -> Bytes {
    let mut f = FrameBuilder::new("t", BatchMode::PackedForward, TimeFormat::EventTime);
    let pad = vec![b'x'; pad];
    for _ in 0..events {
        f.push_fields(EventTime::new(1_700_000_000, 0), &[("p", &pad)]);
    }
    f.finish(chunk.map(ChunkId::from_id).as_ref(), None)
}

/// A frame header for tag `t` whose bin32 body claims `len` bytes.
fn header(len: u32) -> Vec<u8> {
    let mut h = vec![0x93, 0xa1, b't', 0xc6];
    h.extend_from_slice(&len.to_be_bytes());
    h
}

#[tokio::test]
async fn a_large_frame_is_freed_when_its_room_goes_back() {
    // A connection that stays open after one large frame: its buffer
    // kept the frame's whole allocation alive (shared with what was
    // left of it) while the frame's room in max_pending_bytes was given
    // back. Idle clients that once sent a large frame held memory the
    // budget no longer counted.
    let total = 8 << 20;
    let (mut reader, client, budget) = duplex_reader(total);
    let frame = frame(2_000, 1000, None);
    assert!(frame.len() > 2 * FREE);
    let mut client = client;
    let send = tokio::spawn(async move {
        client.write_all(&frame).await.unwrap();
        client
    });
    let entries = match reader.next(Duration::from_secs(10)).await {
        Next::Request(Request::Events(batch)) => batch.entries().clone(),
        other => panic!("no events: {other:?}"),
    };
    assert!(budget.available() < total, "the frame held no room");
    reader.settle();
    assert_eq!(budget.available(), total);
    assert!(
        entries.is_unique(),
        "the connection's buffer still holds the frame's allocation"
    );
    let _client = send.await.unwrap();
}

#[tokio::test]
async fn small_frames_are_read_while_the_budget_is_spent() {
    // Every permit is held elsewhere (large frames of other
    // connections): a small frame still comes through, read within
    // what a connection may hold on its own; a larger one waits.
    let total = 1 << 20;
    let budget = Budget::new(total);
    assert!(budget.try_take(total));
    let (client, server) = tokio::io::duplex(1 << 20);
    let (read, _write) = tokio::io::split(Box::new(server) as Conn);
    let mut reader = reader(read, &budget);
    let small = frame(40, 100, None);
    assert!(small.len() < FREE);
    let large = frame(400, 100, None);
    assert!(large.len() > FREE);
    let mut client = client;
    client.write_all(&small).await.unwrap();
    client.write_all(&large).await.unwrap();
    let wait = Duration::from_secs(5);
    let got = tokio::time::timeout(wait, reader.next(wait)).await;
    assert!(
        matches!(got, Ok(Next::Request(Request::Events(ref b))) if b.len() == 40),
        "the small frame was not read"
    );
    reader.settle();
    let short = Duration::from_millis(300);
    assert!(
        tokio::time::timeout(short, reader.next(wait))
            .await
            .is_err(),
        "the large frame was read without room"
    );
    budget.give(total);
    let got = tokio::time::timeout(wait, reader.next(wait)).await;
    assert!(
        matches!(got, Ok(Next::Request(Request::Events(ref b))) if b.len() == 400),
        "the large frame was not read once room came"
    );
}

#[tokio::test]
async fn a_frame_header_holds_no_room_for_what_it_only_claims() {
    // A header claiming almost 16 MiB, then its body one byte at a time:
    // the connection holds room for what it sent and the next read, not
    // for the claim, and is closed once it falls behind the minimum rate.
    let total = 32 << 20;
    let (mut reader, mut client, budget) = duplex_reader(total);
    reader.grace = Duration::from_millis(300);
    client.write_all(&header((16 << 20) - 64)).await.unwrap();
    let trickle = tokio::spawn(async move {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if client.write_all(&[0]).await.is_err() {
                break;
            }
        }
        client
    });
    let got = tokio::time::timeout(Duration::from_secs(5), reader.next(Duration::from_secs(60)))
        .await
        .expect("closed within the grace and the rate");
    let held = total - budget.available();
    assert!(
        matches!(got, Next::TooSlow { got, .. } if got < 100),
        "{got:?}"
    );
    assert!(held <= READ, "held {held} bytes of room for a trickle");
    drop(reader);
    assert_eq!(budget.available(), total, "room not given back");
    drop(trickle.await);
}

#[tokio::test]
async fn a_frame_that_keeps_up_with_the_minimum_rate_is_read() {
    let total = 32 << 20;
    let (mut reader, mut client, _budget) = duplex_reader(total);
    reader.grace = Duration::from_millis(300);
    reader.min_rate = 20_000;
    // 40 KB at about 40 KB/s: twice the minimum.
    let f = frame(400, 80, None);
    let send = tokio::spawn(async move {
        for part in f.chunks(4_000) {
            client.write_all(part).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        client
    });
    let got = reader.next(Duration::from_secs(60)).await;
    assert!(
        matches!(got, Next::Request(Request::Events(ref b)) if b.len() == 400),
        "{got:?}"
    );
    drop(send.await);
}

#[test]
fn one_connection_never_holds_the_whole_budget() {
    // The default 32 MiB budget and 16 MiB frames: half each, so two
    // connections can read at once and a third waits.
    assert_eq!(Held::share(32 << 20, 16 << 20), (16 << 20) + READ);
    // A budget much larger than a frame: a quarter each.
    assert_eq!(Held::share(256 << 20, 1 << 20), 64 << 20);
    // A budget smaller than a frame: a frame still fits alone.
    assert_eq!(Held::share(4 << 20, 16 << 20), 4 << 20);
}

/// A connection of an input on `yaml`'s settings (`ack`, limits), over an
/// in-memory stream; the client's end, and the buffer it appends to.
fn connection(extra: &str) -> (Connection, DuplexStream, Buffer) {
    let config = hydra_config::Config::from_yaml(&format!(
        "inputs:\n  - type: forward\n    listen: unix:/nonexistent/hydra.sock\n{extra}output:\n  type: stdout\n"
    ))
    .unwrap();
    let hydra_config::Input::Forward(input) = &config.inputs[0] else {
        unreachable!()
    };
    let limits = Limits {
        max_frame_bytes: input.max_frame_bytes.as_usize(),
        max_decompressed_bytes: input.max_decompressed_bytes.map_or(
            input.max_frame_bytes.as_usize() * 4,
            hydra_config::Size::as_usize,
        ),
        ..Limits::default()
    };
    let settings = Arc::new(Settings::new(input, None, limits));
    let (client, server) = tokio::io::duplex(1 << 20);
    let (read, write) = tokio::io::split(Box::new(server) as Conn);
    let reader = Reader::for_input(read, &settings);
    let (acks, writer) = ack_writer(write);
    let buffer = Buffer::new(BufferConfig::default());
    let conn = Connection {
        peer: Peer::Unix,
        settings,
        counters: Arc::default(),
        buffer: buffer.clone(),
        reader,
        acks,
        writer,
        writer_done: false,
    };
    (conn, client, buffer)
}

/// The next request `conn` reads after `client` sent `bytes`.
async fn sent(conn: &mut Connection, client: &mut DuplexStream, bytes: &[u8]) -> Request {
    client.write_all(bytes).await.unwrap();
    let (_tx, mut stop) = watch::channel(false);
    conn.read(&mut stop).await.expect("a request")
}

#[tokio::test]
async fn read_ends_on_stop_on_the_clients_close_and_on_corrupt_bytes() {
    let (mut conn, client, _) = connection("");
    let (tx, mut stop) = watch::channel(false);
    tx.send(true).unwrap();
    assert!(matches!(conn.read(&mut stop).await, Err(End::Stopping)));

    let (_tx, mut stop) = watch::channel(false);
    drop(client);
    assert!(matches!(conn.read(&mut stop).await, Err(End::Client)));

    let (mut conn, mut client, _) = connection("");
    client.write_all(&[0xc1, 0xc1, 0xc1]).await.unwrap();
    assert!(matches!(
        conn.read(&mut stop).await,
        Err(End::Closed(Closed::Corrupt, _))
    ));
}

#[tokio::test]
async fn decode_gives_each_dropped_frame_its_cause() {
    let (mut conn, mut client, _) = connection("    max_decompressed_bytes: 64KiB\n");
    // A tag that is not UTF-8.
    let bad_tag = [
        0x93, 0xa2, 0xff, 0xfe, 0xc4, 0x00, 0x81, 0xa5, b'c', b'h', b'u', b'n', b'k', 0xa1, b'x',
    ];
    // gzip data that does not inflate.
    let mut bad_gzip = header(4);
    bad_gzip.extend_from_slice(&[1, 2, 3, 4, 0x81, 0xaa]);
    bad_gzip.extend_from_slice(b"compressed");
    bad_gzip.extend_from_slice(&[0xa4, b'g', b'z', b'i', b'p']);
    // 1 MiB of zeros, past the 64 KiB limit once inflated.
    let mut bomb = FrameBuilder::new("t", BatchMode::PackedForward, TimeFormat::EventTime);
    bomb.push_fields(EventTime::new(1, 0), &[("p", &vec![0u8; 1 << 20])]);
    let bomb = bomb.finish(None, Some(hydra_forward::Compression::Gzip));
    for (bytes, cause) in [
        (&bad_tag[..], Dropped::BadTag),
        (&bad_gzip[..], Dropped::InflateFailed),
        (&bomb[..], Dropped::InflatedTooLarge),
    ] {
        let request = sent(&mut conn, &mut client, bytes).await;
        match conn.decode(request).await {
            Ok(Decoded::Dropped(c, _)) => assert_eq!(c, cause),
            other => panic!("{cause:?}: {other:?}"),
        }
        conn.reader.settle();
    }
}

#[tokio::test]
async fn append_answers_by_the_inputs_ack_setting() {
    // ack: buffered: acked at once.
    let (mut conn, mut client, buffer) = connection("    ack: buffered\n");
    let Request::Events(batch) = sent(&mut conn, &mut client, &frame(3, 10, Some("a"))).await
    else {
        panic!("not events")
    };
    assert_eq!(
        conn.append(&batch).await,
        Some(Answer::Ack(ChunkId::from_id("a").ack()))
    );
    assert_eq!(buffer.stats().events, 3);

    // ack: delivered: nothing now; the ack comes once the chunk is
    // delivered. The same chunk resent meanwhile is not appended again.
    let (mut conn, mut client, buffer) = connection("");
    let f = frame(3, 10, Some("b"));
    let Request::Events(batch) = sent(&mut conn, &mut client, &f).await else {
        panic!("not events")
    };
    assert_eq!(conn.append(&batch).await, Some(Answer::Later));
    conn.reader.settle();
    let Request::Events(again) = sent(&mut conn, &mut client, &f).await else {
        panic!("not events")
    };
    assert_eq!(conn.append(&again).await, Some(Answer::Later));
    assert_eq!(buffer.stats().events, 3);
    let chunk = buffer.try_next_chunk().expect("flushed at once");
    buffer.delivered(chunk);
    let ack = ChunkId::from_id("b").ack();
    let mut got = vec![0u8; 2 * ack.len()];
    tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, [ack.clone(), ack].concat(), "both copies acked");

    // Events all invalid: acked, since sending them again would not help.
    let (mut conn, mut client, buffer) = connection("");
    let invalid = [
        0x93, 0xa1, b't', 0xc4, 0x01, 0x01, 0x81, 0xa5, b'c', b'h', b'u', b'n', b'k', 0xa1, b'c',
    ];
    let Request::Events(batch) = sent(&mut conn, &mut client, &invalid).await else {
        panic!("not events")
    };
    assert_eq!(
        conn.append(&batch).await,
        Some(Answer::Ack(ChunkId::from_id("c").ack()))
    );
    assert_eq!(buffer.stats().events, 0);

    // The buffer closed (hydra stopping): not taken, not answered.
    let (mut conn, mut client, buffer) = connection("");
    buffer.close();
    let Request::Events(batch) = sent(&mut conn, &mut client, &frame(1, 1, Some("d"))).await else {
        panic!("not events")
    };
    assert_eq!(conn.append(&batch).await, None);
}

#[tokio::test]
async fn a_dropped_frame_is_acked_counted_and_kept_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut conn, mut client, _) = connection("");
    let dead = dir.path().join("dead.forward");
    Arc::get_mut(&mut conn.settings).unwrap().dead_letters = Some(DeadLetters::new(dead.clone()));
    let bad_tag = [
        0x93, 0xa2, 0xff, 0xfe, 0xc4, 0x00, 0x81, 0xa5, b'c', b'h', b'u', b'n', b'k', 0xa1, b'x',
    ];
    let request = sent(&mut conn, &mut client, &bad_tag).await;
    let Ok(Decoded::Dropped(cause, d)) = conn.decode(request).await else {
        panic!("not dropped")
    };
    let answer = conn.drop_frame(cause, d).await;
    assert_eq!(answer, Answer::Ack(ChunkId::from_id("x").ack()));
    assert_eq!(conn.counters.causes.dropped_count(Dropped::BadTag), 1);
    assert_eq!(std::fs::read(&dead).unwrap(), bad_tag);
    conn.answer(answer).await.unwrap();
    let mut got = vec![0u8; ChunkId::from_id("x").ack().len()];
    client.read_exact(&mut got).await.unwrap();
    assert_eq!(got, ChunkId::from_id("x").ack());
}

#[tokio::test]
async fn answer_fails_once_the_acks_go_unread() {
    let (mut conn, client, _) = connection("");
    drop(client);
    // The writer fails on the closed stream and ends; the queue closes.
    let ack = Answer::Ack(Bytes::from_static(b"\x81\xa3ack\xa1x"));
    let _ = conn.answer(ack).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let again = Answer::Ack(Bytes::from_static(b"\x81\xa3ack\xa1y"));
    assert!(matches!(
        conn.answer(again).await,
        Err(End::Closed(Closed::AcksUnread, _))
    ));
    assert_eq!(conn.answer(Answer::Later).await.ok(), Some(()));
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_finds_no_room_is_closed_so_its_client_resends() {
    let (mut conn, mut client, _) = connection("    max_pending_bytes: 1MiB\n");
    assert!(conn.settings.budget.try_take(1 << 20));
    client.write_all(&frame(400, 100, Some("z"))).await.unwrap();
    let (_tx, mut stop) = watch::channel(false);
    assert!(matches!(
        conn.read(&mut stop).await,
        Err(End::Closed(Closed::OverBudget, _))
    ));
}

#[tokio::test]
async fn frames_that_each_hold_part_of_the_budget_do_not_wait_on_each_other() {
    // Two clients send a frame of 600 KB each into 1 MiB of budget, a
    // piece at a time, side by side. Held read by read, each would hold
    // half the budget and wait for the other for ever (until closed for
    // want of room); past its first bytes, a frame takes room for all of
    // itself or waits without growing, so one completes, then the other.
    let budget = Budget::new(1 << 20);
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let (read, _write) = tokio::io::split(Box::new(server) as Conn);
        let mut reader = reader(read, &budget);
        let f = frame(6_000, 90, None);
        assert!(f.len() > 512 << 10 && f.len() < 1 << 20);
        let send = tokio::spawn(async move {
            for part in f.chunks(32 << 10) {
                client.write_all(part).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            client
        });
        readers.push(tokio::spawn(async move {
            let got = reader.next(Duration::from_secs(60)).await;
            reader.settle();
            drop(send.await);
            matches!(got, Next::Request(Request::Events(ref b)) if b.len() == 6_000)
        }));
    }
    for r in readers {
        let done = tokio::time::timeout(Duration::from_secs(5), r).await;
        assert!(
            matches!(done, Ok(Ok(true))),
            "a frame was not read: {done:?}"
        );
    }
    assert_eq!(budget.available(), 1 << 20);
}
