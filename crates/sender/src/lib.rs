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
//! ```no_run
//! use hydra_buffer::{Buffer, BufferConfig};
//! use hydra_sender::{Sender, SenderConfig, ServerConfig};
//! # async fn run() {
//! let buffer = Buffer::new(BufferConfig::default());
//! let config = SenderConfig {
//!     servers: vec![ServerConfig::new("10.0.0.1", 24224), ServerConfig::new("10.0.0.2", 24224)],
//!     ..SenderConfig::default()
//! };
//! let sender = Sender::spawn(config, buffer.clone()).expect("valid config");
//! // ... producers append to `buffer` ...
//! buffer.close();
//! sender.finished().await;
//! # }
//! ```

mod backoff;
mod link;
mod select;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hydra_buffer::{Buffer, Chunk};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{error, warn};

pub use backoff::{Backoff, InvalidBackoff};
pub use select::{Balance, Health, Selector};

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

/// One destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Host name or address; resolved on each connection attempt.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Share in round robin.
    pub weight: u32,
    /// Used only while every non-standby server is down.
    pub standby: bool,
    /// Shared key for the handshake; none: no handshake.
    pub shared_key: Option<String>,
    /// User for the handshake's user authentication.
    pub username: Option<String>,
    /// Password for it.
    pub password: Option<String>,
    /// TLS to this server; none: plain TCP.
    pub tls: Option<hydra_tls::ClientTls>,
}

impl ServerConfig {
    /// A server at `host:port` with default settings.
    pub fn new(host: &str, port: u16) -> Self {
        ServerConfig {
            host: host.to_owned(),
            port,
            weight: 60,
            standby: false,
            shared_key: None,
            username: None,
            password: None,
            tls: None,
        }
    }

    /// Its TLS connector and expected name, built from the files it names
    /// (`None` without TLS).
    pub fn tls_connector(
        &self,
    ) -> Result<Option<(hydra_tls::TlsConnector, hydra_tls::ServerName<'static>)>, Error> {
        let Some(t) = &self.tls else { return Ok(None) };
        let wrap = |source| Error::Tls {
            server: format!("{}:{}", self.host, self.port),
            source,
        };
        Ok(Some((
            hydra_tls::client_config(t).map_err(wrap)?,
            hydra_tls::server_name(t, &self.host).map_err(wrap)?,
        )))
    }
}

/// How to send.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Destinations, in priority order.
    pub servers: Vec<ServerConfig>,
    /// Failover or round robin.
    pub balance: Balance,
    /// Wait for `{"ack": chunk}` before a chunk counts as delivered.
    pub require_ack: bool,
    /// Give up connecting after this long.
    pub connect_timeout: Duration,
    /// Give up writing a chunk after this long.
    pub send_timeout: Duration,
    /// Give up waiting for an ack after this long: the connection is
    /// dropped and its chunks go elsewhere.
    pub ack_timeout: Duration,
    /// Health a returning server needs before taking traffic back.
    pub recover_wait: Duration,
    /// Chunks sent but not yet acked, per connection.
    pub max_in_flight: usize,
    /// First reconnection delay.
    pub backoff_min: Duration,
    /// Longest reconnection delay.
    pub backoff_max: Duration,
    /// Host name sent in the handshake.
    pub self_hostname: String,
    /// Where a chunk refused `after` times goes; retried for ever without.
    pub dead_letter: Option<DeadLetter>,
}

impl SenderConfig {
    /// Checks what [`Sender::spawn`] would refuse (backoff bounds, each
    /// server's TLS files) without starting anything.
    pub fn check(&self) -> Result<(), Error> {
        Backoff::try_new(self.backoff_min, self.backoff_max, 0.2)?;
        for server in &self.servers {
            server.tls_connector()?;
        }
        Ok(())
    }
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            servers: Vec::new(),
            balance: Balance::Failover,
            require_ack: true,
            connect_timeout: Duration::from_secs(5),
            send_timeout: Duration::from_secs(30),
            ack_timeout: Duration::from_secs(60),
            recover_wait: Duration::from_secs(10),
            max_in_flight: 4,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            self_hostname: "hydra".to_owned(),
            dead_letter: None,
        }
    }
}

/// One server's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServerStats {
    /// `host:port`.
    pub address: String,
    /// Connected.
    pub alive: bool,
    /// A standby server.
    pub standby: bool,
    /// The last error, while it is down.
    pub error: Option<String>,
    /// Chunks delivered.
    pub chunks: u64,
    /// Events delivered.
    pub events: u64,
    /// Bytes delivered.
    pub bytes: u64,
    /// Chunks handed back undelivered (to be sent again).
    pub retries: u64,
    /// Chunks sent and not yet acked.
    pub in_flight: usize,
    /// Unix time of the last delivery.
    pub last_delivery: Option<u64>,
    /// Taking traffic now (see [`Selector::active`]).
    pub active: bool,
}

/// Delivered events and bytes for one tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TagStats {
    /// Events.
    pub messages: u64,
    /// Bytes of encoded frames.
    pub bytes: u64,
}

/// The sender's counters, as a serde-serializable snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SenderStats {
    /// Per server, in configured order.
    pub servers: Vec<ServerStats>,
    /// Per tag.
    pub sent: BTreeMap<String, TagStats>,
    /// Chunks written to the dead-letter file.
    pub dead_lettered_chunks: u64,
    /// Their events.
    pub dead_lettered_events: u64,
}

/// Where chunks the servers keep refusing go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Appended to, one Forward frame per chunk, as it was sent.
    pub path: std::path::PathBuf,
    /// Failed sends with the chunk first in line before it is written
    /// there.
    pub after: u32,
}

struct Shared {
    stats: Mutex<SenderStats>,
    chunks_in_flight: AtomicU64,
    done: AtomicBool,
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
                        address: format!("{}:{}", s.host, s.port),
                        standby: s.standby,
                        error: Some("not connected yet".to_owned()),
                        ..ServerStats::default()
                    })
                    .collect(),
                sent: BTreeMap::new(),
                dead_lettered_chunks: 0,
                dead_lettered_events: 0,
            }),
            chunks_in_flight: AtomicU64::new(0),
            done: AtomicBool::new(false),
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
        self.shared
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A function returning [`Sender::stats`], usable after the sender is
    /// gone.
    pub fn stats_fn(&self) -> Arc<dyn Fn() -> SenderStats + Send + Sync> {
        let shared = self.shared.clone();
        Arc::new(move || {
            shared
                .stats
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        })
    }

    /// Chunks handed to servers and not yet delivered.
    pub fn in_flight(&self) -> u64 {
        self.shared.chunks_in_flight.load(Ordering::Relaxed)
    }

    /// Waits until the buffer is closed and everything in it was delivered.
    pub async fn finished(self) {
        let _ = self.task.await;
    }

    /// Stops sending now; what was not delivered stays undelivered (its
    /// commits never run).
    pub fn abort(&self) {
        self.shared.done.store(true, Ordering::Release);
        self.task.abort();
    }
}

struct LinkState {
    tx: mpsc::Sender<Chunk>,
    in_flight: usize,
}

struct Dispatcher {
    config: Arc<SenderConfig>,
    buffer: Buffer,
    links: Vec<LinkState>,
    selector: Selector,
    events: mpsc::UnboundedReceiver<link::Event>,
    shared: Arc<Shared>,
    /// Which servers the stats show as active.
    active: Vec<bool>,
}

impl Dispatcher {
    fn stats(&self) -> std::sync::MutexGuard<'_, SenderStats> {
        self.shared
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    async fn run(mut self) {
        let max = self.config.max_in_flight.max(1);
        let mut buffer_done = false;
        loop {
            let total: usize = self.links.iter().map(|l| l.in_flight).sum();
            self.shared
                .chunks_in_flight
                .store(total as u64, Ordering::Relaxed);
            if buffer_done && total == 0 {
                return;
            }
            let now = Instant::now();
            self.publish_active(now);
            let links = &self.links;
            let target = self.selector.pick(now, |i| links[i].in_flight < max);
            // With every server down nothing is taken from the buffer, so
            // its end must be noticed here: a shutdown with nothing left to
            // send is not held up by servers that are down.
            if target.is_none() && !buffer_done && total == 0 && self.buffer.is_finished() {
                return;
            }
            // A recovering server becomes eligible without any event: look
            // again shortly.
            let recheck = tokio::time::sleep(Duration::from_millis(100));
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(e) => self.handle(e),
                    None => return,
                },
                chunk = self.buffer.next_chunk(), if target.is_some() && !buffer_done => match chunk {
                    Some(chunk) => self.dispatch(target.unwrap_or(0), chunk),
                    None => buffer_done = true,
                },
                () = recheck => {}
            }
            // A retried chunk re-opens the buffer's queue after it reported
            // the end.
            if buffer_done && self.buffer.stats().queued_chunks > 0 {
                buffer_done = false;
            }
        }
    }

    /// Appends `chunk`'s frame to the dead-letter file and counts it
    /// delivered: it is safe on disk, and its commits (acks, positions)
    /// may run. If the file cannot be written the chunk is retried.
    fn dead_letter(&mut self, dl: &DeadLetter, chunk: Chunk) {
        use std::io::Write;
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&dl.path)
            .and_then(|mut f| {
                f.write_all(chunk.frame())?;
                f.sync_data()
            });
        match written {
            Ok(()) => {
                error!(
                    path = %dl.path.display(),
                    tag = chunk.tag(),
                    events = chunk.events(),
                    refusals = dl.after,
                    "A chunk failed every send; it was written to the dead-letter file."
                );
                {
                    let mut s = self.stats();
                    s.dead_lettered_chunks += 1;
                    s.dead_lettered_events += chunk.events() as u64;
                }
                self.buffer.delivered(chunk);
            }
            Err(e) => {
                error!(path = %dl.path.display(), error = %e, "Cannot write the dead-letter file; the chunk is retried.");
                self.buffer.retry(chunk);
            }
        }
    }

    /// Copies which servers are active into the stats, when it changed.
    fn publish_active(&mut self, now: Instant) {
        let active = self.selector.active(now);
        if active != self.active {
            let mut s = self.stats();
            for (server, a) in s.servers.iter_mut().zip(&active) {
                server.active = *a;
            }
            drop(s);
            self.active = active;
        }
    }

    fn dispatch(&mut self, i: usize, chunk: Chunk) {
        match self.links[i].tx.try_send(chunk) {
            Ok(()) => self.links[i].in_flight += 1,
            Err(mpsc::error::TrySendError::Full(c) | mpsc::error::TrySendError::Closed(c)) => {
                self.buffer.retry(c);
            }
        }
    }

    fn handle(&mut self, event: link::Event) {
        match event {
            link::Event::Up(i) => {
                self.selector.up(i, Instant::now());
                let mut s = self.stats();
                s.servers[i].alive = true;
                s.servers[i].error = None;
            }
            link::Event::Down(i, error) => {
                self.selector.down(i);
                let mut s = self.stats();
                s.servers[i].alive = false;
                s.servers[i].error = Some(error.to_string());
            }
            link::Event::Delivered(i, chunk) => {
                self.links[i].in_flight = self.links[i].in_flight.saturating_sub(1);
                {
                    let mut s = self.stats();
                    let server = &mut s.servers[i];
                    server.chunks += 1;
                    server.events += chunk.events() as u64;
                    server.bytes += chunk.frame().len() as u64;
                    server.in_flight = self.links[i].in_flight;
                    server.last_delivery = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .ok()
                        .map(|d| d.as_secs());
                    let tag = s.sent.entry(chunk.tag().to_owned()).or_default();
                    tag.messages += chunk.events() as u64;
                    tag.bytes += chunk.frame().len() as u64;
                }
                self.buffer.delivered(chunk);
            }
            link::Event::Failed(i, chunks) => {
                self.links[i].in_flight = self.links[i].in_flight.saturating_sub(chunks.len());
                {
                    let mut s = self.stats();
                    s.servers[i].retries += chunks.len() as u64;
                    s.servers[i].in_flight = self.links[i].in_flight;
                }
                // The oldest chunk is the one a server that closes or never
                // acks was refusing, if it refused one: the others failed
                // with it.
                let mut chunks = chunks;
                let mut head = None;
                if !chunks.is_empty() {
                    let mut first = chunks.remove(0);
                    let refusals = first.refused();
                    match self.config.dead_letter.clone() {
                        Some(dl) if refusals >= dl.after => self.dead_letter(&dl, first),
                        _ => {
                            if refusals % 10 == 0 {
                                warn!(
                                    tag = first.tag(),
                                    events = first.events(),
                                    refusals,
                                    "A chunk keeps failing; it holds back the ones behind it (output.dead_letter sets it aside)."
                                );
                            }
                            head = Some(first);
                        }
                    }
                }
                // Back to the front, oldest first.
                for c in chunks.into_iter().rev().chain(head) {
                    self.buffer.retry(c);
                }
            }
        }
    }
}
