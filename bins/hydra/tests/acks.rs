//! What an ack to a Forward client promises, tested with the real binary
//! and the forward input on its defaults (`ack: delivered`): an acked
//! event survives `kill -9`, a resent chunk is buffered once, and a reload
//! while nothing can be delivered keeps serving. `ack: buffered` acks
//! before delivery, as documented. The kill -9 scenario runs both with a
//! hand-made client and with the npm `@fluent-org/logger` client.
#![allow(clippy::unwrap_used, clippy::print_stdout)] // a test reports and panics

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use common::*;
use hydra_forward::{BatchMode, ChunkId, EventTime, FrameBuilder, TimeFormat};
use hydra_test_support::{Behaviour, Receiver};

/// A forward input on `fwd` (with `ack` when given) and a forward output
/// to `server`, every other key on its default.
fn config(fwd: u16, server: u16, ack: Option<&str>, monitor: Option<u16>) -> String {
    let ack = ack.map(|a| format!("    ack: {a}\n")).unwrap_or_default();
    let monitor = monitor
        .map(|m| format!("monitor:\n  listen: 127.0.0.1:{m}\n"))
        .unwrap_or_default();
    format!(
        "inputs:\n  - type: forward\n    listen: 127.0.0.1:{fwd}\n{ack}output:\n  type: forward\n  servers: [{{ host: 127.0.0.1, port: {server} }}]\n{monitor}"
    )
}

/// A client that sends 10 chunks of 20 events, each until it is acked
/// (for at most `secs`); the numbers hydra acked, as they are acked.
fn client(port: u16, secs: u64) -> (Arc<Mutex<Vec<u64>>>, std::thread::JoinHandle<()>) {
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let sink = acked.clone();
    let thread = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        for chunk in 0..10 {
            let (from, to) = (chunk * 20, chunk * 20 + 20);
            while !send_numbered(port, from, to, 1000, 2, "app") {
                if std::time::Instant::now() > deadline {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            sink.lock().unwrap().extend(from..to);
        }
    });
    (acked, thread)
}

/// How many numbers `client` had acked, and which of them `rx` never got;
/// printed.
fn acked_and_lost(client: &str, acked: &Mutex<Vec<u64>>, rx: &Receiver) -> (usize, Vec<u64>) {
    let acked = acked.lock().unwrap().clone();
    let seen = rx.seen.lock().unwrap().clone();
    let lost: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|n| !seen.contains(n))
        .collect();
    let mut distinct = seen.clone();
    distinct.sort_unstable();
    distinct.dedup();
    println!(
        "{client}, kill -9 with the server down, ack: delivered: acked {}, delivered {} ({} distinct), acked but lost {}",
        acked.len(),
        seen.len(),
        distinct.len(),
        lost.len()
    );
    (acked.len(), lost)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_events_survive_kill_9_in_the_default_configuration() {
    // The server is down: nothing can be delivered, so nothing is acked.
    let dir = tempfile::tempdir().unwrap();
    let (fwd, server) = (free_port(), free_port());
    let cfg = config(fwd, server, None, None);
    let mut h = Hydra::start(dir.path(), &cfg);
    let (acked, client) = client(fwd, 60);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        acked.lock().unwrap().is_empty(),
        "acked before delivery: {:?}",
        acked.lock().unwrap()
    );
    h.child.kill().unwrap();
    h.child.wait().unwrap();
    let rx = Receiver::start_on(server, Behaviour::Ack).await;
    let h = Hydra::start(dir.path(), &cfg);
    client.join().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(h.stop().success());
    let (acked, lost) = acked_and_lost("hand-made client", &acked, &rx);
    assert_eq!(acked, 200, "the client's chunks were not all acked");
    assert!(lost.is_empty(), "acked but lost: {lost:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_buffered_acks_before_delivery() {
    // The documented trade-off: acked from memory while the server is
    // down, so a kill -9 loses what was acked.
    let dir = tempfile::tempdir().unwrap();
    let (fwd, server) = (free_port(), free_port());
    let cfg = config(fwd, server, Some("buffered"), None);
    let mut h = Hydra::start(dir.path(), &cfg);
    let (acked, client) = client(fwd, 20);
    client.join().unwrap();
    assert_eq!(acked.lock().unwrap().len(), 200, "not acked from memory");
    h.child.kill().unwrap();
    h.child.wait().unwrap();
    let rx = Receiver::start_on(server, Behaviour::Ack).await;
    let h = Hydra::start(dir.path(), &cfg);
    std::thread::sleep(Duration::from_secs(2));
    assert!(h.stop().success());
    println!(
        "kill -9 with the server down, ack: buffered: acked 200, delivered {}",
        rx.count()
    );
}

/// The npm @fluent-org/logger client (ack on, reconnecting, retrying each
/// event until acked) sending `chunks` chunks of 20 events to `port`; the
/// numbers acked so far, as the client reports each ack.
fn npm_until_acked(
    port: u16,
    chunks: u32,
    secs: u32,
) -> (Arc<Mutex<Vec<u64>>>, std::process::Child) {
    let mut child = std::process::Command::new("node")
        .arg(repo().join("bins/hydra/tests/js/until_acked.js"))
        .args([
            &port.to_string(),
            "app",
            &chunks.to_string(),
            "20",
            &secs.to_string(),
        ])
        .env("NODE_PATH", node_modules())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let sink = acked.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("ACKED ").and_then(|n| n.parse().ok()) {
                sink.lock().unwrap().push(n);
            }
        }
    });
    (acked, child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_client_acked_events_survive_kill_9_in_the_default_configuration() {
    // The scenario as an application meets it: @fluent-org/logger with
    // acks sends 10 chunks of 20 while the aggregator is down, hydra is
    // killed holding them, the aggregator comes up, hydra restarts and the
    // client resends what was never acked.
    let dir = tempfile::tempdir().unwrap();
    let (fwd, server) = (free_port(), free_port());
    let cfg = config(fwd, server, None, None);
    let mut h = Hydra::start(dir.path(), &cfg);
    let (acked, mut client) = npm_until_acked(fwd, 10, 90);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        acked.lock().unwrap().is_empty(),
        "acked before delivery: {:?}",
        acked.lock().unwrap()
    );
    h.child.kill().unwrap();
    h.child.wait().unwrap();
    let rx = Receiver::start_on(server, Behaviour::Ack).await;
    let h = Hydra::start(dir.path(), &cfg);
    let status = client.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(h.stop().success());
    let (acked, lost) = acked_and_lost("npm client", &acked, &rx);
    assert!(status.success(), "the npm client gave up: {status}");
    assert_eq!(acked, 200, "the client's events were not all acked");
    assert!(lost.is_empty(), "acked but lost: {lost:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_client_acked_events_are_lost_to_kill_9_with_ack_buffered() {
    // The documented trade-off of `ack: buffered`, with the same client:
    // everything is acked from memory while the aggregator is down, and a
    // kill -9 then loses it; the client has nothing left to resend.
    let dir = tempfile::tempdir().unwrap();
    let (fwd, server) = (free_port(), free_port());
    let cfg = config(fwd, server, Some("buffered"), None);
    let mut h = Hydra::start(dir.path(), &cfg);
    let (acked, mut client) = npm_until_acked(fwd, 10, 30);
    let status = client.wait().unwrap();
    assert!(status.success(), "the npm client gave up: {status}");
    assert_eq!(acked.lock().unwrap().len(), 200, "not acked from memory");
    h.child.kill().unwrap();
    h.child.wait().unwrap();
    let rx = Receiver::start_on(server, Behaviour::Ack).await;
    let h = Hydra::start(dir.path(), &cfg);
    std::thread::sleep(Duration::from_secs(2));
    assert!(h.stop().success());
    println!(
        "npm client, kill -9 with the server down, ack: buffered: acked 200, delivered {}",
        rx.count()
    );
    assert_eq!(rx.count(), 0, "buffered events came back after kill -9");
}

/// One PackedForward frame of events `{"n": from..to}` with chunk id `id`.
fn frame(id: &str, from: u64, to: u64) -> Vec<u8> {
    let mut f = FrameBuilder::new("app", BatchMode::PackedForward, TimeFormat::EventTime);
    for n in from..to {
        let n = u16::try_from(n).unwrap().to_be_bytes();
        // {"n": uint16}
        f.push_raw(
            EventTime::new(1_700_000_000, 0),
            &[0x81, 0xa1, b'n', 0xcd, n[0], n[1]],
        );
    }
    f.finish(Some(&ChunkId::from_id(id)), None).to_vec()
}

/// The N of every `line N ...` message `rx` acked, sorted.
fn line_numbers(rx: &Receiver) -> Vec<u64> {
    let mut seen: Vec<u64> = rx
        .messages
        .lock()
        .unwrap()
        .iter()
        .filter_map(|m| m.strip_prefix("line ")?.split(' ').next()?.parse().ok())
        .collect();
    seen.sort_unstable();
    seen
}

/// The chunk ids acked on `conn` within `secs`, until `want` came.
fn acks(conn: &mut TcpStream, want: usize, secs: u64) -> Vec<String> {
    conn.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = BytesMut::new();
    let mut ids = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while ids.len() < want && std::time::Instant::now() < deadline {
        let mut chunk = [0u8; 256];
        match conn.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => continue,
        }
        // Each ack is {"ack": str}: fixmap 1, "ack", then a fixstr.
        while buf.len() >= 6 && buf.len() >= 6 + usize::from(buf[5] & 0x1f) {
            let len = usize::from(buf[5] & 0x1f);
            ids.push(String::from_utf8_lossy(&buf[6..6 + len]).into_owned());
            buf.advance(6 + len);
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_resent_before_delivery_is_buffered_once_and_acked_on_both_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (fwd, server, mon) = (free_port(), free_port(), free_port());
    let h = Hydra::start(dir.path(), &config(fwd, server, None, Some(mon)));
    // The server is down: the first copy waits in the buffer.
    let mut first = TcpStream::connect(("127.0.0.1", fwd)).unwrap();
    first.write_all(&frame("chunk-a", 0, 20)).unwrap();
    assert!(acks(&mut first, 1, 1).is_empty(), "acked before delivery");
    // The client's ack timed out: it sends the same chunk again on a new
    // connection, and then a chunk of its own.
    let mut second = TcpStream::connect(("127.0.0.1", fwd)).unwrap();
    second.write_all(&frame("chunk-a", 0, 20)).unwrap();
    second.write_all(&frame("chunk-b", 20, 40)).unwrap();
    assert!(
        wait(10, || http_get(mon, "/").contains("\"resent_chunks\":1")),
        "the resend was not seen: {}",
        http_get(mon, "/")
    );
    let rx = Receiver::start_on(server, Behaviour::Ack).await;
    let mut on_second = acks(&mut second, 2, 30);
    on_second.sort();
    assert_eq!(acks(&mut first, 1, 10), ["chunk-a"]);
    assert_eq!(on_second, ["chunk-a", "chunk-b"]);
    std::thread::sleep(Duration::from_millis(300));
    let mut seen = rx.seen.lock().unwrap().clone();
    seen.sort_unstable();
    assert_eq!(seen, (0..40).collect::<Vec<u64>>(), "each event once");
    let stats: serde_json::Value = serde_json::from_str(&http_get(mon, "/")).unwrap();
    assert_eq!(stats["receiver"]["acks"], 3, "{stats}");
    assert!(h.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_while_nothing_can_be_delivered_keeps_serving() {
    // A client waits for its delivered-ack while the server is down; the
    // reload gives up on that chunk after shutdown_timeout, closes the
    // connection unacked and binds the same port again.
    let dir = tempfile::tempdir().unwrap();
    let (fwd, server) = (free_port(), free_port());
    let cfg = config(fwd, server, None, None);
    let mut h = Hydra::start(dir.path(), &cfg);
    let (acked, client) = client(fwd, 60);
    std::thread::sleep(Duration::from_millis(1500));
    h.signal("HUP");
    assert!(
        h.wait_log("Reloaded.", 30),
        "the reload did not finish: {:?}",
        h.stderr.lock().unwrap()
    );
    assert!(h.child.try_wait().unwrap().is_none(), "hydra exited");
    let rx = Receiver::start_on(server, Behaviour::Ack).await;
    client.join().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(h.stop().success());
    let acked = acked.lock().unwrap().clone();
    let seen = rx.seen.lock().unwrap().clone();
    assert_eq!(acked.len(), 200, "the client's chunks were not all acked");
    let lost: Vec<&u64> = acked.iter().filter(|n| !seen.contains(n)).collect();
    assert!(lost.is_empty(), "acked but lost: {lost:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_larger_than_the_downstream_takes_goes_out_in_pieces() {
    // The receiver closes the connection on any frame over 2 MiB, as Fluent
    // Bit does past its buffer_max_size. A client's 10 MB frame is cut
    // into chunks within chunk_bytes (1 MiB); the client's ack comes once
    // every piece was delivered, and the small chunk behind it flows.
    let rx = Receiver::start(Behaviour::RefuseLargerThan(2 << 20)).await;
    let dir = tempfile::tempdir().unwrap();
    let fwd = free_port();
    let h = Hydra::start(dir.path(), &config(fwd, rx.port(), None, None));
    let big = padded_frame("app", Some("big"), 0, 10_000, 1_000);
    assert!(big.len() > 8 << 20, "{}", big.len());
    let mut conn = TcpStream::connect(("127.0.0.1", fwd)).unwrap();
    conn.write_all(&big).unwrap();
    conn.write_all(&padded_frame("app", Some("small"), 10_000, 10_020, 10))
        .unwrap();
    let mut acked = acks(&mut conn, 2, 30);
    acked.sort();
    std::thread::sleep(Duration::from_millis(300));
    let stderr = h.stderr.clone();
    assert!(h.stop().success());
    let seen = line_numbers(&rx);
    assert_eq!(
        acked,
        ["big", "small"],
        "{:?}",
        stderr
            .lock()
            .unwrap()
            .iter()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
    );
    assert_eq!(seen, (0..10_020).collect::<Vec<u64>>(), "each event once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_every_server_refuses_goes_to_the_dead_letter_file_and_the_rest_flows() {
    // One event larger than the receiver takes cannot be cut: after five
    // refusals (the default `after`) its chunk is written to the dead-letter file (and its client
    // acked: it is safe on disk), and the chunks behind it are delivered.
    // Events sharing its chunk (here none: another tag) would go with it.
    let rx = Receiver::start(Behaviour::RefuseLargerThan(100 << 10)).await;
    let dir = tempfile::tempdir().unwrap();
    let (fwd, mon) = (free_port(), free_port());
    let dead = dir.path().join("dead.msgpack");
    let cfg = config(fwd, rx.port(), None, Some(mon)).replace(
        "  servers: [",
        &format!(
            "  dead_letter: {{ path: {} }}\n  servers: [",
            dead.display()
        ),
    );
    let h = Hydra::start(dir.path(), &cfg);
    let mut conn = TcpStream::connect(("127.0.0.1", fwd)).unwrap();
    conn.write_all(&padded_frame("huge", Some("huge"), 0, 1, 300_000))
        .unwrap();
    conn.write_all(&padded_frame("app", Some("small"), 1, 21, 10))
        .unwrap();
    let mut acked = acks(&mut conn, 2, 90);
    acked.sort();
    let stats: serde_json::Value = serde_json::from_str(&http_get(mon, "/")).unwrap();
    let stderr = h.stderr.clone();
    assert!(h.stop().success());
    assert_eq!(
        acked,
        ["huge", "small"],
        "{:?}",
        stderr
            .lock()
            .unwrap()
            .iter()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
    );
    let seen = line_numbers(&rx);
    assert_eq!(seen, (1..21).collect::<Vec<u64>>());
    assert_eq!(stats["buffer"]["dead_lettered"], 1, "{stats}");
    // The file holds the chunk as the Forward frame it was sent as.
    let bytes = bytes::Bytes::from(std::fs::read(&dead).unwrap());
    let Some(hydra_forward::Request::Events(batch)) = hydra_forward::ForwardDecoder::new()
        .decode_frame(&bytes)
        .unwrap()
    else {
        panic!("not a Forward frame");
    };
    let events = batch.to_events();
    assert_eq!(events.len(), 1);
    assert!(
        events[0].record["message"]
            .as_str()
            .unwrap()
            .starts_with("line 0 ")
    );
}
