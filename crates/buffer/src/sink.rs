//! A durable view of the buffer ([`Buffer::with_sink`]): its appends go to
//! a [`Sink`] (hydra's disk buffer) instead of memory, and what the sink
//! keeps comes back, chunk by chunk, as sealed chunks with their own ids
//! ([`Buffer::append_sealed`]), within the memory ceiling like any other.
//! The output sees chunks and their commits, whichever way they came.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use hydra_forward::{BatchMode, ChunkId, FrameBuilder};

use crate::chunk::{Chunk, Commit};
use crate::{Buffer, CHUNK_COST, Error, State};

/// A future a [`Sink`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a durable view's appends go.
pub trait Sink: Send + Sync + 'static {
    /// Keeps `events` events of `tag` (`entries`, msgpack `[time, record]`
    /// arrays back to back) until they are delivered: `commit` runs then,
    /// and `stored` once they are durable. Resolves once they are written,
    /// waiting for room as long as it takes; fails only when the sink is
    /// closed.
    fn append(
        &self,
        tag: &str,
        entries: Bytes,
        events: usize,
        commit: Option<Commit>,
        stored: Option<Commit>,
    ) -> BoxFuture<'_, Result<(), Error>>;

    /// Ends `tag`'s open chunk now: its sender waits for the delivery.
    fn flush(&self, tag: &str);
}

impl Buffer {
    /// The same buffer, whose appends go to `sink` instead of memory.
    pub fn with_sink(&self, sink: Arc<dyn Sink>) -> Buffer {
        Buffer {
            inner: self.inner.clone(),
            sink: Some(sink),
        }
    }

    /// Whether appends go to a sink ([`Buffer::with_sink`]).
    pub fn is_durable(&self) -> bool {
        self.sink.is_some()
    }

    /// Like [`Buffer::append`], with `stored`, which runs once the events
    /// are durable. On a buffer without a sink nothing is ever durable:
    /// `stored` is dropped without running.
    pub async fn append_stored(
        &self,
        tag: &str,
        bytes: usize,
        events: usize,
        commit: Option<Commit>,
        stored: Option<Commit>,
        write: impl FnOnce(&mut FrameBuilder),
    ) -> Result<(), Error> {
        match &self.sink {
            Some(sink) => self.to_sink(sink, tag, bytes, commit, stored, write).await,
            None => self.append(tag, bytes, events, commit, write).await,
        }
    }

    /// Encodes the events as `write` does and hands them to `sink`.
    pub(crate) async fn to_sink(
        &self,
        sink: &Arc<dyn Sink>,
        tag: &str,
        bytes: usize,
        commit: Option<Commit>,
        stored: Option<Commit>,
        write: impl FnOnce(&mut FrameBuilder),
    ) -> Result<(), Error> {
        if self.lock().closed {
            return Err(Error::Closed);
        }
        let config = &self.inner.config;
        let mut f =
            FrameBuilder::with_capacity(tag, BatchMode::PackedForward, config.time_format, bytes);
        write(&mut f);
        let (entries, count) = f.into_entries();
        if count == 0 {
            // Nothing kept (a parser dropped every line): delivered as is.
            if let Some(c) = stored {
                c();
            }
            if let Some(c) = commit {
                c();
            }
            return Ok(());
        }
        sink.append(tag, entries, count, commit, stored).await
    }

    /// A chunk the sink kept, into memory to be sent: sealed as it is, with
    /// its own id (when the output asks for acks), once there is room for
    /// it. `commit` runs once it was delivered.
    pub async fn append_sealed(
        &self,
        tag: &str,
        entries: Bytes,
        events: usize,
        id: ChunkId,
        commit: Option<Commit>,
    ) -> Result<(), Error> {
        let bytes = entries.len() + CHUNK_COST;
        let config = &self.inner.config;
        let fits = |state: &State| {
            state.bytes == 0
                || (state.bytes + bytes <= config.max_bytes
                    && state.events + events <= config.max_events)
        };
        self.when_room(fits, |state| {
            let mut f = FrameBuilder::with_capacity(
                tag,
                BatchMode::PackedForward,
                config.time_format,
                entries.len(),
            );
            f.extend_entries(&entries, events);
            // Without acks, no id: a server would ack it to a sender that
            // never reads its acks.
            let id = config.require_ack.then_some(id);
            let frame = f.finish(id.as_ref(), config.compress);
            state.bytes += bytes;
            state.events += events;
            self.inner
                .events_in
                .fetch_add(events as u64, Ordering::Relaxed);
            if let Some(observe) = self.inner.observer.get() {
                observe(tag, &frame, events);
            }
            state.sealed.push_back(Chunk {
                tag: Arc::from(tag),
                frame,
                id,
                events,
                bytes,
                commits: commit.into_iter().collect(),
                attempts: 0,
                refusals: 0,
            });
            self.inner.sealed.notify_one();
        })
        .await
    }
}
