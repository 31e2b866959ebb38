//! Buffer + sender throughput: events appended as log lines, sent as
//! PackedForward chunks with acks to a local receiver that validates, counts
//! and acks. Prints events/s, MB/s and the process's peak RSS (sender and
//! receiver share the process).
//!
//! `cargo bench --bench sender` sends 10,000,000 events; under `cargo test`
//! a smoke run sends 100,000 and checks the count.
#![allow(clippy::print_stderr, clippy::unwrap_used)] // a benchmark prints; a broken one stops

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use hydra_buffer::{Buffer, BufferConfig};
use hydra_forward::{EventTime, ForwardDecoder, Request};
use hydra_sender::{Sender, SenderConfig, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::codec::Decoder;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<f64>()
        .unwrap()
        / 1024.0
}

async fn receiver(counted: Arc<AtomicU64>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut decoder = ForwardDecoder::new();
                let mut buf = BytesMut::with_capacity(1 << 20);
                while sock.read_buf(&mut buf).await.unwrap_or(0) > 0 {
                    while let Ok(Some(Request::Events(batch))) = decoder.decode(&mut buf) {
                        counted.fetch_add(batch.len() as u64, Ordering::Relaxed);
                        if let Some(ack) = batch.ack() {
                            sock.write_all(&ack).await.unwrap();
                        }
                    }
                }
            });
        }
    });
    port
}

async fn run(events: u64) {
    let counted = Arc::new(AtomicU64::new(0));
    let port = receiver(counted.clone()).await;
    let buffer = Buffer::new(BufferConfig {
        max_bytes: 8 << 20,
        chunk_bytes: 1 << 20,
        ..BufferConfig::default()
    });
    let config = SenderConfig {
        servers: vec![ServerConfig::new("127.0.0.1", port)],
        max_in_flight: 4,
        ..SenderConfig::default()
    };
    let sender = Sender::spawn(config, buffer.clone()).unwrap();
    let lines: Vec<Vec<u8>> = (0..1000)
        .map(|i| format!("127.0.0.1 - - [25/Nov/2026:10:00:00 +0000] \"GET /index/{i:05}.html HTTP/1.1\" 200 {}", 1000 + i).into_bytes())
        .collect();
    let line_bytes: usize = lines.iter().map(|l| l.len() + 25).sum();
    let start = Instant::now();
    let mut sent = 0;
    while sent < events {
        let t = EventTime::now();
        buffer
            .append("bench.access", line_bytes, lines.len(), None, |f| {
                for l in &lines {
                    f.push_line(t, "message", l);
                }
            })
            .await
            .unwrap();
        sent += lines.len() as u64;
    }
    buffer.close();
    tokio::time::timeout(Duration::from_secs(300), sender.finished())
        .await
        .unwrap();
    let elapsed = start.elapsed().as_secs_f64();
    let bytes: u64 = buffer.stats().events_delivered;
    assert_eq!(bytes, events);
    assert_eq!(counted.load(Ordering::Relaxed), events);
    let mb = events as f64 * (line_bytes as f64 / lines.len() as f64) / 1e6;
    eprintln!(
        "sender/acked {events} events in {elapsed:.2} s: {:.2} M events/s, {:.0} MB/s, peak RSS {:.1} MiB (sender and receiver in one process)",
        events as f64 / elapsed / 1e6,
        mb / elapsed,
        peak_rss_mib(),
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(if full { 10_000_000 } else { 100_000 }));
}
