//! An in-process Forward receiver with chosen faults, for delivery tests.
#![allow(clippy::unwrap_used, missing_docs)] // test helper: stops loudly

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use hydra_forward::{ForwardDecoder, Request};
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
    /// Acks frames up to this many bytes; closes the connection on a larger
    /// one, as Fluent Bit does past its `buffer_max_size`.
    RefuseLargerThan(usize),
}

/// A Forward server on a loopback port, recording the `n` of each event.
pub struct Receiver {
    pub addr: SocketAddr,
    /// The `n` field of every event received and acked.
    pub seen: Arc<Mutex<Vec<u64>>>,
    /// The `message` field of every event received and acked.
    pub messages: Arc<Mutex<Vec<String>>>,
    /// The tag of each of `messages`.
    pub message_tags: Arc<Mutex<Vec<String>>>,
    /// The event time of each of `messages`.
    pub times: Arc<Mutex<Vec<hydra_forward::EventTime>>>,
    /// The tag and `n` of every event received and acked, in order.
    pub tagged: Arc<Mutex<Vec<(String, u64)>>>,
    /// The chunk id of every frame received and acked, in order.
    pub chunk_ids: Arc<Mutex<Vec<String>>>,
    pub connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(behaviour: Behaviour) -> Receiver {
        Self::start_on(0, behaviour).await
    }

    pub async fn start_on(port: u16, behaviour: Behaviour) -> Receiver {
        let listener = {
            // A receiver restarted on the same port: the old listener may
            // take a moment to close after its task was aborted.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                match TcpListener::bind(("127.0.0.1", port)).await {
                    Ok(l) => break l,
                    Err(e) if std::time::Instant::now() > deadline => {
                        panic!("bind 127.0.0.1:{port}: {e}")
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        };
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
        let messages: Arc<Mutex<Vec<String>>> = Arc::default();
        let connections = Arc::new(AtomicUsize::new(0));
        let times: Arc<Mutex<Vec<hydra_forward::EventTime>>> = Arc::default();
        let tagged: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
        let chunk_ids: Arc<Mutex<Vec<String>>> = Arc::default();
        let message_tags: Arc<Mutex<Vec<String>>> = Arc::default();
        let mt = message_tags.clone();
        let (s, c, m, t) = (
            seen.clone(),
            connections.clone(),
            messages.clone(),
            times.clone(),
        );
        let (tg, ci) = (tagged.clone(), chunk_ids.clone());
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
                let messages = m.clone();
                let times = t.clone();
                let (tagged, chunk_ids) = (tg.clone(), ci.clone());
                let message_tags = mt.clone();
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
                        loop {
                            let before = buf.len();
                            let Ok(Some(req)) = decoder.decode(&mut buf) else {
                                break;
                            };
                            let Request::Events(batch) = req else {
                                continue;
                            };
                            match behaviour {
                                Behaviour::CloseAfterRead => return,
                                Behaviour::NeverAck => continue,
                                Behaviour::RefuseLargerThan(max) if before - buf.len() > max => {
                                    return;
                                }
                                _ => {}
                            }
                            {
                                let mut seen = seen.lock().unwrap();
                                let mut messages = messages.lock().unwrap();
                                let mut times = times.lock().unwrap();
                                let mut tagged = tagged.lock().unwrap();
                                let mut message_tags = message_tags.lock().unwrap();
                                if let Some(id) =
                                    batch.options().chunk.as_ref().and_then(|c| c.id())
                                {
                                    chunk_ids
                                        .lock()
                                        .unwrap()
                                        .push(String::from_utf8_lossy(id).into_owned());
                                }
                                for e in batch.events() {
                                    let record = e.record();
                                    if let Some(n) = record["n"].as_u64() {
                                        seen.push(n);
                                        tagged.push((batch.tag().to_owned(), n));
                                    }
                                    if let Some(m) = record["message"].as_str() {
                                        messages.push(m.to_owned());
                                        message_tags.push(batch.tag().to_owned());
                                        times.push(e.time);
                                    }
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
            messages,
            message_tags,
            times,
            tagged,
            chunk_ids,
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
