//! Receivers for the sender's tests: an in-process Forward server with
//! chosen faults, and the npm FluentServer.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)] // a panic is how a test fails

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use hydra_buffer::{Buffer, BufferConfig};
use hydra_forward::{EventTime, ForwardDecoder, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::codec::Decoder;

/// How the test receiver treats what it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Ack,
    NeverAck,
    CloseAfterRead,
    /// Accepts, never reads.
    Stall,
}

/// A Forward server on a loopback port, recording the `n` of each event.
pub struct Receiver {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<u64>>>,
    pub connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

pub async fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Receiver {
    pub async fn start(behaviour: Behaviour) -> Receiver {
        Self::start_on(0, behaviour).await
    }

    pub async fn start_on(port: u16, behaviour: Behaviour) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
        let connections = Arc::new(AtomicUsize::new(0));
        let (s, c) = (seen.clone(), connections.clone());
        let task = tokio::spawn(async move {
            // Dropping the set (when the task is aborted) closes every
            // connection.
            let mut conns = JoinSet::new();
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                c.fetch_add(1, Ordering::SeqCst);
                let seen = s.clone();
                conns.spawn(async move {
                    if behaviour == Behaviour::Stall {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    }
                    let mut decoder = ForwardDecoder::new();
                    let mut buf = BytesMut::with_capacity(1 << 16);
                    loop {
                        match sock.read_buf(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        while let Ok(Some(req)) = decoder.decode(&mut buf) {
                            let Request::Events(batch) = req else {
                                continue;
                            };
                            match behaviour {
                                Behaviour::CloseAfterRead => return,
                                Behaviour::NeverAck => continue,
                                _ => {}
                            }
                            {
                                let mut seen = seen.lock().unwrap();
                                for e in batch.events() {
                                    seen.push(e.record()["n"].as_u64().unwrap());
                                }
                            }
                            if let Some(ack) = batch.ack()
                                && sock.write_all(&ack).await.is_err()
                            {
                                return;
                            }
                        }
                    }
                });
            }
        });
        Receiver {
            addr,
            seen,
            connections,
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Stops listening and closes every connection.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Appends events numbered `from..to`, one per append, each committing by
/// counting.
pub async fn produce(buffer: &Buffer, from: u64, to: u64, committed: &Arc<AtomicUsize>) {
    for n in from..to {
        let c = committed.clone();
        let record = rmpv::Value::Map(vec![
            (
                rmpv::Value::from("message"),
                rmpv::Value::from(format!("event number {n}")),
            ),
            (rmpv::Value::from("n"), rmpv::Value::from(n)),
        ]);
        buffer
            .append(
                "test.tag",
                48,
                1,
                Some(Box::new(move || {
                    c.fetch_add(1, Ordering::SeqCst);
                })),
                |f| {
                    f.push_record(EventTime::new(1_700_000_000, 0), &record);
                },
            )
            .await
            .unwrap();
    }
}

pub fn small_chunks() -> BufferConfig {
    BufferConfig {
        chunk_bytes: 4096,
        flush_interval: Duration::from_millis(20),
        ..BufferConfig::default()
    }
}

/// Waits (at most `secs`) for `f` to hold.
pub async fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}

/// Each number in `0..n` seen at least once? Returns (missing, duplicated).
pub fn tally(seen: &[u64], n: u64) -> (Vec<u64>, usize) {
    let mut counts: HashMap<u64, usize> = HashMap::new();
    for s in seen {
        *counts.entry(*s).or_default() += 1;
    }
    let missing = (0..n).filter(|i| !counts.contains_key(i)).collect();
    let dups = counts.values().filter(|&&c| c > 1).count();
    (missing, dups)
}

#[allow(unused_imports)] // not every test file uses it
pub use hydra_test_support::FluentServer as NodeServer;
