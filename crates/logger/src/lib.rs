//! Log from a Rust service straight to hydra, Fluentd or Fluent Bit over
//! the Forward protocol.
//!
//! Records are buffered in memory with a hard ceiling, sent in PackedForward
//! chunks, acked by the server, and sent again (to the next server, with
//! several) when a connection fails. `post` waits while the buffer is full;
//! [`Logger::try_post`] and the [`FluentLayer`] for `tracing` never wait and
//! count what they had to drop instead.
//!
//! ```
//! use hydra_logger::Logger;
//! use std::collections::BTreeMap;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), hydra_logger::Error> {
//! # let server = hydra_test_support::Receiver::start(hydra_test_support::Behaviour::Ack).await;
//! # let port = server.port();
//! // A Fluentd (or hydra) on 127.0.0.1:`port`, acking what it keeps.
//! let logger = Logger::builder().address("127.0.0.1", port).build()?;
//! logger.post("app.access", &BTreeMap::from([("path", "/"), ("status", "200")])).await?;
//! // Before exiting: deliver what is buffered (or give up after 5 s).
//! let undelivered = logger.close(std::time::Duration::from_secs(5)).await;
//! assert_eq!(undelivered, 0);
//! # Ok(())
//! # }
//! ```

mod layer;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hydra_buffer::{Buffer, BufferConfig};
use hydra_forward::EventTime;
use hydra_sender::{Sender, SenderConfig, ServerConfig};
use serde::Serialize;

pub use layer::FluentLayer;

/// What can go wrong logging.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The record could not be serialized.
    #[error("a record must serialize to a map: {0}")]
    Serialize(#[from] rmp_serde::encode::Error),
    /// The record serialized to something other than a map (a struct or a
    /// map serializes to one).
    #[error("a record must serialize to a map: it serialized to another type")]
    NotAMap,
    /// The logger was closed.
    #[error("the logger is closed")]
    Closed,
    /// No server was given.
    #[error("no server: call address() at least once")]
    NoServer,
    /// The sender's settings do not work.
    #[error(transparent)]
    Sender(#[from] hydra_sender::Error),
    /// The blocking facade could not start its runtime.
    #[error("cannot start the logger's runtime: {0}")]
    Runtime(std::io::Error),
}

/// Settings for a [`Logger`].
#[derive(Debug, Clone)]
pub struct Builder {
    sender: SenderConfig,
    buffer: BufferConfig,
}

impl Builder {
    /// Adds a server; the first is the primary, the others take over in order.
    pub fn address(mut self, host: &str, port: u16) -> Self {
        self.sender.servers.push(ServerConfig::new(host, port));
        self
    }
    /// Adds a server on a unix socket (fluentd's in_unix, hydra's
    /// `listen: unix:PATH`); in order with those of [`Builder::address`].
    pub fn unix(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.sender.servers.push(ServerConfig::unix(path));
        self
    }
    /// Uses the shared-key handshake with every server added so far.
    pub fn shared_key(mut self, key: &str, self_hostname: &str) -> Self {
        for s in &mut self.sender.servers {
            s.shared_key = Some(key.to_owned());
        }
        self.sender.self_hostname = self_hostname.to_owned();
        self
    }
    /// Wait for the server's ack (default on).
    pub fn require_ack(mut self, yes: bool) -> Self {
        self.sender.require_ack = yes;
        self.buffer.require_ack = yes;
        self
    }
    /// Most bytes held in memory (default 8 MiB).
    pub fn max_buffer_bytes(mut self, bytes: usize) -> Self {
        self.buffer.max_bytes = bytes;
        self.buffer.chunk_bytes = self.buffer.chunk_bytes.min(bytes);
        self
    }
    /// How long records wait before they are sent (default 200 ms).
    pub fn flush_interval(mut self, d: Duration) -> Self {
        self.buffer.flush_interval = d;
        self
    }
    /// How long to wait for an ack before resending (default 30 s).
    pub fn ack_timeout(mut self, d: Duration) -> Self {
        self.sender.ack_timeout = d;
        self
    }

    /// Starts the logger on the current tokio runtime.
    pub fn build(self) -> Result<Logger, Error> {
        if self.sender.servers.is_empty() {
            return Err(Error::NoServer);
        }
        let buffer = Buffer::new(self.buffer);
        let sender = Sender::spawn(self.sender, buffer.clone())?;
        Ok(Logger {
            inner: Arc::new(Inner {
                buffer,
                sender: std::sync::Mutex::new(Some(sender)),
                dropped: AtomicU64::new(0),
            }),
        })
    }
}

struct Inner {
    buffer: Buffer,
    sender: std::sync::Mutex<Option<Sender>>,
    dropped: AtomicU64,
}

/// A Forward logger. Cheap to clone: clones share the buffer and connection.
#[derive(Clone)]
pub struct Logger {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logger")
            .field("buffer", &self.inner.buffer.stats())
            .finish()
    }
}

fn to_record(record: &impl Serialize) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(128);
    record
        .serialize(&mut rmp_serde::Serializer::new(&mut out).with_struct_map())
        .map_err(Error::Serialize)?;
    // fixmap, map16, map32.
    if !matches!(out.first(), Some(0x80..=0x8f | 0xde | 0xdf)) {
        return Err(Error::NotAMap);
    }
    Ok(out)
}

impl Logger {
    /// Settings with no server yet, an 8 MiB buffer, acks on.
    pub fn builder() -> Builder {
        Builder {
            sender: SenderConfig {
                ack_timeout: Duration::from_secs(30),
                ..SenderConfig::default()
            },
            buffer: BufferConfig {
                max_bytes: 8 << 20,
                chunk_bytes: 256 << 10,
                flush_interval: Duration::from_millis(200),
                ..BufferConfig::default()
            },
        }
    }

    /// Buffers one record (anything that serializes to a map), stamped now.
    /// Waits while the buffer is full.
    pub async fn post(&self, tag: &str, record: &impl Serialize) -> Result<(), Error> {
        let raw = to_record(record)?;
        let time = EventTime::now();
        self.inner
            .buffer
            .append(tag, raw.len() + 11, 1, None, |f| f.push_raw(time, &raw))
            .await
            .map_err(|_| Error::Closed)
    }

    /// Buffers one record without waiting: `Ok(false)` if the buffer is
    /// full (the record is dropped and counted in [`Logger::dropped`]).
    pub fn try_post(&self, tag: &str, record: &impl Serialize) -> Result<bool, Error> {
        let raw = to_record(record)?;
        self.try_post_raw(tag, EventTime::now(), &raw)
    }

    pub(crate) fn try_post_raw(
        &self,
        tag: &str,
        time: EventTime,
        raw: &[u8],
    ) -> Result<bool, Error> {
        let taken = self
            .inner
            .buffer
            .try_append(tag, raw.len() + 11, 1, None, |f| f.push_raw(time, raw))
            .map_err(|_| Error::Closed)?;
        if !taken {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
        }
        Ok(taken)
    }

    /// Records dropped by [`Logger::try_post`] (and the tracing layer)
    /// because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Records buffered and not yet delivered.
    pub fn pending(&self) -> usize {
        self.inner.buffer.stats().events
    }

    /// Stops accepting records and delivers what is buffered, for at most
    /// `timeout`. Returns how many records were left undelivered.
    pub async fn close(&self, timeout: Duration) -> usize {
        self.inner.buffer.close();
        let (left, _) = self.inner.buffer.drain(Instant::now() + timeout).await;
        let sender = self
            .inner
            .sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(s) = sender {
            if left == 0 {
                s.finished().await;
            } else {
                s.abort();
            }
        }
        left
    }
}

/// The same logger for code that is not async: it runs its own small
/// runtime on a background thread.
pub struct BlockingLogger {
    runtime: tokio::runtime::Runtime,
    logger: Logger,
}

impl std::fmt::Debug for BlockingLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingLogger")
            .field("logger", &self.logger)
            .finish()
    }
}

impl BlockingLogger {
    /// Starts a logger with `builder`'s settings.
    pub fn new(builder: Builder) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("hydra-logger")
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        let logger = runtime.block_on(async { builder.build() })?;
        Ok(BlockingLogger { runtime, logger })
    }
    /// [`Logger::post`], waiting on this thread.
    pub fn post(&self, tag: &str, record: &impl Serialize) -> Result<(), Error> {
        self.runtime.block_on(self.logger.post(tag, record))
    }
    /// The async logger inside, for a [`FluentLayer`] for instance.
    pub fn logger(&self) -> &Logger {
        &self.logger
    }
    /// [`Logger::close`], waiting on this thread.
    pub fn close(self, timeout: Duration) -> usize {
        self.runtime.block_on(self.logger.close(timeout))
    }
}
