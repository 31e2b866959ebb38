//! hydra's pipeline inside a tokio service, with an output and an input of
//! the service's own.
//!
//! The output hands every event to the service over a channel and marks
//! its chunk delivered only then: that is what sends a Forward client its
//! ack. The input appends the service's own events, each batch with a
//! commit that runs once they were delivered.
//!
//! Run it with `cargo run -p hydra-agent --example embedded`: it sends a
//! chunk as a Forward client would, waits for its ack, and prints what
//! reached the service.
#![allow(clippy::print_stdout, clippy::unwrap_used)] // an example reports and panics

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use hydra_agent::{Agent, Input, Output, Plugins};
use hydra_buffer::Buffer;
use hydra_forward::{
    BatchMode, ChunkId, EventTime, ForwardDecoder, FrameBuilder, Request, TimeFormat,
};
use tokio::sync::{mpsc, watch};

/// Hands each event to the service as `(tag, record as JSON)`.
struct ToChannel(mpsc::UnboundedSender<(String, serde_json::Value)>);

#[async_trait]
impl Output for ToChannel {
    async fn run(&self, buffer: Buffer) {
        let mut decoder = ForwardDecoder::new();
        while let Some(chunk) = buffer.next_chunk().await {
            let Ok(Some(Request::Events(batch))) = decoder.decode_frame(chunk.frame()) else {
                buffer.retry(chunk);
                continue;
            };
            for event in batch.events() {
                let record = hydra_forward::to_json(&event.record());
                let _ = self.0.send((batch.tag().to_owned(), record));
            }
            // Safe with the service now: commits run, clients get acks.
            buffer.delivered(chunk);
        }
    }
}

/// The service's own events: `count` heartbeats, one batch each.
struct Heartbeats {
    count: usize,
    committed: Arc<AtomicUsize>,
}

#[async_trait]
impl Input for Heartbeats {
    async fn run(&self, buffer: Buffer, mut stop: watch::Receiver<bool>) {
        for n in 0..self.count {
            if *stop.borrow_and_update() {
                return;
            }
            let committed = self.committed.clone();
            let commit = Box::new(move || {
                committed.fetch_add(1, Ordering::SeqCst);
            });
            let line = format!("heartbeat {n}");
            let appended = buffer
                .append("service.heartbeat", line.len() + 32, 1, Some(commit), |f| {
                    f.push_line(EventTime::now(), "message", line.as_bytes());
                })
                .await;
            if appended.is_err() {
                return;
            }
        }
    }
}

/// What a run saw.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    /// Events the output handed to the service, per tag.
    pub(crate) app: usize,
    /// Heartbeats the output handed to the service.
    pub(crate) heartbeats: usize,
    /// Heartbeats whose commits ran.
    pub(crate) committed: usize,
    /// Whether the Forward client got its ack.
    pub(crate) acked: bool,
}

/// Starts the agent with a forward input on `port`, sends 3 events as a
/// Forward client, and waits until the client's ack and 5 heartbeats came
/// through.
pub(crate) async fn run(port: u16) -> Seen {
    let config = hydra_config::Config::from_yaml(&format!(
        "inputs:\n  - {{ type: forward, listen: 127.0.0.1:{port} }}\noutput:\n  type: stdout\n"
    ))
    .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let committed = Arc::new(AtomicUsize::new(0));
    let plugins = Plugins {
        output: Some(Arc::new(ToChannel(tx))),
        inputs: vec![Arc::new(Heartbeats {
            count: 5,
            committed: committed.clone(),
        })],
    };
    let agent = Agent::start_with(config, plugins).await.unwrap();

    // A Forward client: it gets its ack once the service has the events.
    let target = hydra_io::Target::Tcp {
        host: "127.0.0.1".into(),
        port,
    };
    let timeout = Duration::from_secs(10);
    let conn = hydra_io::connect(&target, None, timeout).await.unwrap();
    let mut client = hydra_io::Client::new(conn);
    let mut frame = FrameBuilder::new("app", BatchMode::PackedForward, TimeFormat::EventTime);
    for n in 0..3 {
        frame.push_line(
            EventTime::now(),
            "message",
            format!("request {n}").as_bytes(),
        );
    }
    let chunk = ChunkId::generate();
    let frame = frame.finish(Some(&chunk), None);
    let acked = client.send(&frame, Some(&chunk), timeout).await.is_ok();
    client.close().await;

    let (mut app, mut heartbeats) = (0, 0);
    let deadline = tokio::time::Instant::now() + timeout;
    while app < 3 || heartbeats < 5 {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((tag, _record))) if tag == "app" => app += 1,
            Ok(Some(_)) => heartbeats += 1,
            Ok(None) | Err(_) => break,
        }
    }
    // A chunk's commits run just after the output handed its events over.
    while committed.load(Ordering::SeqCst) < 5 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let report = agent.stop().await;
    assert_eq!(report.undelivered_events, 0);
    Seen {
        app,
        heartbeats,
        committed: committed.load(Ordering::SeqCst),
        acked,
    }
}

#[allow(dead_code)] // the test calls `run`
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let seen = run(port).await;
    println!(
        "the client's chunk acked: {}; events to the service: {} from the client, {} heartbeats; heartbeat commits run: {}",
        seen.acked, seen.app, seen.heartbeats, seen.committed
    );
    assert_eq!(
        seen,
        Seen {
            app: 3,
            heartbeats: 5,
            committed: 5,
            acked: true
        }
    );
}
