//! The forward output: chunks from a [`hydra_buffer::Buffer`] to one or more
//! Fluentd or Fluent Bit servers, with acks and failover.
//!
//! - Servers are tried in order (failover) or share the load by weight
//!   (round robin); `standby` servers are used only while every other one is
//!   down. A server that comes back is used again after `recover_wait` of
//!   health, so a flapping primary does not take traffic back at once.
//! - With `require_ack` (the default), a chunk is delivered only when the
//!   server answers `{"ack": chunk}`. No ack within `ack_timeout`, a failed
//!   write, or a lost connection: the connection is dropped and every chunk
//!   it held goes back to the buffer, to be sent again, to the next healthy
//!   server. Delivered chunks run their commits; others never do.
//! - Several chunks are in flight per connection (`max_in_flight`), so acks
//!   cost no throughput.
//! - Reconnection waits with exponential [`Backoff`] and jitter; each attempt
//!   re-resolves the host name. The shared-key handshake runs when a server
//!   has `shared_key`.
//!
//! # Example
//!
//! ```
//! use hydra_buffer::{Buffer, BufferConfig};
//! use hydra_forward::EventTime;
//! use hydra_sender::{Sender, SenderConfig, ServerConfig};
//! use hydra_test_support::{Behaviour, Receiver};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // Two Fluentd (or hydra) servers that ack what they keep; the first is
//! // the primary, the second takes over if it fails.
//! let (primary, secondary) = (Receiver::start(Behaviour::Ack).await, Receiver::start(Behaviour::Ack).await);
//! let buffer = Buffer::new(BufferConfig::default());
//! let config = SenderConfig {
//!     servers: vec![
//!         ServerConfig::new("127.0.0.1", primary.port()),
//!         ServerConfig::new("127.0.0.1", secondary.port()),
//!     ],
//!     ..SenderConfig::default()
//! };
//! let sender = Sender::spawn(config, buffer.clone()).expect("valid config");
//! buffer
//!     .append("app", 32, 1, None, |f| f.push_line(EventTime::now(), "message", b"hello"))
//!     .await
//!     .expect("room in the buffer");
//! buffer.close();
//! sender.finished().await; // every chunk was acked
//! assert_eq!(buffer.stats().events_delivered, 1);
//! # drop((primary, secondary));
//! # }
//! ```

#![deny(clippy::too_many_lines)]

mod backoff;
mod config;
mod dispatch;
mod link;
mod select;
mod stats;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hydra_buffer::Buffer;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use backoff::{Backoff, InvalidBackoff};
pub use config::{
    DEFAULT_ACK_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_IN_FLIGHT, DEFAULT_RECOVER_WAIT,
    DEFAULT_SEND_TIMEOUT, DEFAULT_WEIGHT, DeadLetter, SenderConfig, ServerConfig,
};
use dispatch::{Dispatcher, LinkState};
pub use select::{Balance, Health, Selector};
pub use stats::{SenderStats, ServerStats, TagStats};

/// A bad sender configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No server configured.
    #[error("the forward output needs at least one server")]
    NoServers,
    /// Backoff bounds that do not make sense.
    #[error(transparent)]
    Backoff(#[from] InvalidBackoff),
    /// A server's TLS settings do not work (a file, a name).
    #[error("server {server}: {source}")]
    Tls {
        /// `host:port`.
        server: String,
        /// What is wrong.
        source: hydra_tls::Error,
    },
}

struct Shared {
    stats: Mutex<SenderStats>,
    /// [`SenderStats::beats`], counted without the lock.
    beats: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn stats(&self) -> SenderStats {
        let mut s = self
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        s.beats = self.beats.load(std::sync::atomic::Ordering::Relaxed);
        s
    }
}

/// A running sender.
pub struct Sender {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl Sender {
    /// Starts sending `buffer`'s chunks, on the current tokio runtime.
    pub fn spawn(config: SenderConfig, buffer: Buffer) -> Result<Sender, Error> {
        if config.servers.is_empty() {
            return Err(Error::NoServers);
        }
        let backoff = Backoff::try_new(config.backoff_min, config.backoff_max, 0.2)?;
        let config = Arc::new(config);
        let shared = Arc::new(Shared {
            stats: Mutex::new(SenderStats {
                servers: config
                    .servers
                    .iter()
                    .map(|s| ServerStats {
                        address: s.address(),
                        standby: s.standby,
                        error: Some("not connected yet".to_owned()),
                        ..ServerStats::default()
                    })
                    .collect(),
                sent: BTreeMap::new(),
                dead_lettered_chunks: 0,
                dead_lettered_events: 0,
                beats: 0,
            }),
            beats: std::sync::atomic::AtomicU64::new(0),
        });
        let (events_tx, events) = mpsc::unbounded_channel();
        let mut links = Vec::new();
        let mut link_tasks = Vec::new();
        for (index, server) in config.servers.iter().enumerate() {
            // TLS settings are checked here, so a bad file stops the start
            // with its name rather than failing every connection later.
            let tls = server.tls_connector()?;
            let (tx, rx) = mpsc::channel(config.max_in_flight.max(1));
            link_tasks.push(tokio::spawn(
                link::Link {
                    index,
                    server: server.clone(),
                    config: config.clone(),
                    chunks: rx,
                    events: events_tx.clone(),
                    backoff: backoff.clone(),
                    tls,
                }
                .run(),
            ));
            links.push(LinkState { tx, in_flight: 0 });
        }
        drop(events_tx);
        let selector = Selector::new(
            &config
                .servers
                .iter()
                .map(|s| (s.standby, s.weight))
                .collect::<Vec<_>>(),
            config.balance,
            config.recover_wait,
        );
        let selector_len = links.len();
        let dispatcher = Dispatcher {
            config,
            buffer,
            links,
            active: vec![false; selector_len],
            selector,
            events,
            shared: shared.clone(),
        };
        let task = tokio::spawn(async move {
            dispatcher.run().await;
            // Its end closes every link's queue: each closes its
            // connection. Awaited, so that happens before the process ends.
            let until = tokio::time::Instant::now() + Duration::from_secs(2);
            for t in link_tasks {
                let _ = tokio::time::timeout_at(until, t).await;
            }
        });
        Ok(Sender { shared, task })
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SenderStats {
        self.shared.stats()
    }

    /// A function returning [`Sender::stats`], usable after the sender is
    /// gone.
    pub fn stats_fn(&self) -> Arc<dyn Fn() -> SenderStats + Send + Sync> {
        let shared = self.shared.clone();
        Arc::new(move || shared.stats())
    }

    /// Waits until the buffer is closed and everything in it was delivered.
    pub async fn finished(mut self) {
        self.wait().await;
    }

    /// Like [`Sender::finished`], keeping the sender: a caller whose wait
    /// is cancelled can still [`Sender::abort`] it.
    pub async fn wait(&mut self) {
        let _ = (&mut self.task).await;
    }

    /// Stops sending now; what was not delivered stays undelivered (its
    /// commits never run).
    pub fn abort(&self) {
        self.task.abort();
    }
}
