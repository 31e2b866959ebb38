//! A bounded in-memory buffer of Forward chunks.
//!
//! Producers append events per tag; the buffer collects them into one open
//! chunk per tag, encoded as a PackedForward frame as they arrive (no
//! intermediate records), and seals a chunk when it reaches `chunk_bytes` or
//! has been open for `flush_interval`. A consumer (the sender) takes sealed
//! chunks, and reports each one delivered or not.
//!
//! Memory has a hard ceiling in every state: bytes and events are counted
//! from the moment they are appended until their chunk is delivered, whether
//! open, sealed, in flight or being retried. When the ceiling is reached,
//! [`Buffer::append`] waits: producers slow down, nothing is dropped.
//!
//! Each chunk carries the [`Commit`]s of its sources (a tail offset to save,
//! an ack to send back to a forward client). They run when the chunk is
//! delivered, and never otherwise: data that was not delivered is never
//! marked as such.
//!
//! # Example
//!
//! ```
//! use hydra_buffer::{Buffer, BufferConfig};
//! use hydra_forward::EventTime;
//! use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let buffer = Buffer::new(BufferConfig::default());
//! let committed = Arc::new(AtomicBool::new(false));
//! let flag = committed.clone();
//! buffer
//!     .append("app.access", 64, 1, Some(Box::new(move || flag.store(true, Ordering::SeqCst))), |frame| {
//!         frame.push_line(EventTime::new(1_700_000_000, 0), "message", b"GET / 200");
//!     })
//!     .await?;
//! buffer.close(); // seals what is open
//! let chunk = buffer.next_chunk().await.expect("a sealed chunk");
//! assert_eq!((chunk.tag(), chunk.events()), ("app.access", 1));
//! assert!(!committed.load(Ordering::SeqCst));
//! buffer.delivered(chunk); // runs the commits
//! assert!(committed.load(Ordering::SeqCst));
//! # Ok::<(), hydra_buffer::Error>(())
//! # }).unwrap();
//! ```

#![deny(clippy::too_many_lines)]

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use hydra_forward::{BatchMode, ChunkId, FrameBuilder};
use tokio::sync::Notify;

/// Room a chunk's frame may grow to beyond `chunk_bytes` (or beyond the
/// first batch, when that is larger): estimates fall short by a little, by
/// a per-event header, never by a whole batch.
const CHUNK_SLACK: usize = 64 << 10;

/// What a chunk costs beyond its events' bytes, counted against
/// `max_bytes` like them: its bookkeeping, its commits (an ack owed to a
/// client, a file's position), the allocator's slack. Clients that wait for
/// their acks make one small chunk per frame; counted by their events alone,
/// 64 MiB of 200-byte chunks held ten times that in memory.
pub const CHUNK_COST: usize = 2 << 10;

/// The room a new chunk's frame starts with (more if its first batch needs
/// it); it doubles from there. Started at a full chunk's room, the many
/// small chunks of clients that wait for their acks each cost a full
/// chunk's worth of the allocator's heap, not what they hold.
const FIRST_ROOM: usize = 16 << 10;

/// What the buffer can refuse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The buffer is closed for shutdown; nothing more is accepted.
    #[error("the buffer is closed")]
    Closed,
}

mod chunk;
mod config;
mod sink;
mod stats;
#[cfg(test)]
mod tests;

pub use chunk::{Chunk, Commit, split_commit};
pub use config::BufferConfig;
pub use sink::{BoxFuture, Sink};
pub use stats::BufferStats;

struct Open {
    builder: FrameBuilder,
    commits: Vec<Commit>,
    opened: Instant,
    bytes: usize,
}

#[derive(Default)]
struct State {
    open: HashMap<Arc<str>, Open>,
    sealed: VecDeque<Chunk>,
    bytes: usize,
    events: usize,
    closed: bool,
}

/// The buffer. Cheap to clone: clones share it.
#[derive(Clone)]
pub struct Buffer {
    inner: Arc<Inner>,
    /// Where this view's appends go instead of memory ([`Buffer::with_sink`]).
    sink: Option<Arc<dyn Sink>>,
}

struct Inner {
    config: BufferConfig,
    state: Mutex<State>,
    /// Room was freed.
    room: Notify,
    /// A chunk was sealed, or the buffer closed.
    sealed: Notify,
    /// Everything was delivered.
    drained: Notify,
    /// The buffer was closed.
    closing: Notify,
    /// A sealed chunk was taken.
    taken: Notify,
    events_in: AtomicU64,
    events_delivered: AtomicU64,
    chunks_delivered: AtomicU64,
    chunks_retried: AtomicU64,
    producer_waits: AtomicU64,
    observer: std::sync::OnceLock<Observer>,
}

/// Sees each chunk as it is sealed: its tag, its frame, its event count.
/// It runs under the buffer's lock, so it must only hand the frame on (the
/// bytes are reference-counted), never wait.
pub type Observer = Arc<dyn Fn(&str, &bytes::Bytes, usize) + Send + Sync>;

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffer")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Buffer {
    /// An empty buffer.
    pub fn new(config: BufferConfig) -> Self {
        Buffer {
            sink: None,
            inner: Arc::new(Inner {
                config,
                state: Mutex::default(),
                room: Notify::new(),
                sealed: Notify::new(),
                drained: Notify::new(),
                closing: Notify::new(),
                taken: Notify::new(),
                events_in: AtomicU64::new(0),
                events_delivered: AtomicU64::new(0),
                chunks_delivered: AtomicU64::new(0),
                chunks_retried: AtomicU64::new(0),
                producer_waits: AtomicU64::new(0),
                observer: std::sync::OnceLock::new(),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BufferConfig {
        &self.inner.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Closed, with nothing open or sealed left to hand out (chunks taken
    /// and not yet delivered or retried are the taker's to count).
    pub fn is_finished(&self) -> bool {
        let state = self.lock();
        state.closed && state.open.is_empty() && state.sealed.is_empty()
    }

    /// Sets the one observer of sealed chunks; `false` if one was set
    /// already.
    pub fn set_observer(&self, observer: Observer) -> bool {
        self.inner.observer.set(observer).is_ok()
    }

    /// Appends `events` events to the open chunk of `tag`: `write` encodes
    /// them into the chunk's frame. `bytes` is an estimate of their encoded
    /// size, used to wait for room first; the actual size is what counts.
    ///
    /// Waits while the buffer is full. A batch larger than the whole ceiling
    /// is let in once the buffer is empty, so it cannot wait forever.
    pub async fn append(
        &self,
        tag: &str,
        bytes: usize,
        events: usize,
        commit: Option<Commit>,
        write: impl FnOnce(&mut FrameBuilder),
    ) -> Result<(), Error> {
        if let Some(sink) = &self.sink {
            return self.to_sink(sink, tag, bytes, commit, None, write).await;
        }
        self.when_room(
            |state| self.room_for(state, tag, bytes, events),
            |state| {
                self.append_locked(state, tag, bytes, commit, write);
            },
        )
        .await
    }

    /// Waits until `fits` says there is room, then does `then` under the
    /// same lock. Counts one producer wait if it had to wait.
    async fn when_room(
        &self,
        fits: impl Fn(&State) -> bool,
        then: impl FnOnce(&mut State),
    ) -> Result<(), Error> {
        let mut waited = false;
        loop {
            // Register interest before checking, so a release between the
            // check and the wait is not missed.
            let room = self.inner.room.notified();
            {
                let mut state = self.lock();
                if state.closed {
                    return Err(Error::Closed);
                }
                if fits(&state) {
                    then(&mut state);
                    return Ok(());
                }
            }
            if !waited {
                waited = true;
                self.inner.producer_waits.fetch_add(1, Ordering::Relaxed);
            }
            room.await;
        }
    }

    /// Like [`Buffer::append`], without waiting (in memory, even on a
    /// durable view: a sink may wait): `Ok(false)` when there is
    /// no room (the events were not taken). For callers that must never
    /// block, such as a logging layer.
    pub fn try_append(
        &self,
        tag: &str,
        bytes: usize,
        events: usize,
        commit: Option<Commit>,
        write: impl FnOnce(&mut FrameBuilder),
    ) -> Result<bool, Error> {
        let mut state = self.lock();
        if state.closed {
            return Err(Error::Closed);
        }
        if !self.room_for(&state, tag, bytes, events) {
            return Ok(false);
        }
        self.append_locked(&mut state, tag, bytes, commit, write);
        Ok(true)
    }

    /// Whether `bytes` and `events` fit now. An empty buffer takes anything,
    /// so a batch larger than the whole ceiling cannot wait forever.
    /// A batch that opens a chunk of `tag` needs room for the chunk's
    /// cost too.
    fn room_for(&self, state: &State, tag: &str, bytes: usize, events: usize) -> bool {
        let config = &self.inner.config;
        let opens = state.open.get(tag).is_none_or(|o| {
            !o.builder.is_empty()
                && o.builder.entries_len().saturating_add(bytes) > config.chunk_bytes
        });
        let bytes = bytes + if opens { CHUNK_COST } else { 0 };
        state.bytes == 0
            || (state.bytes + bytes <= config.max_bytes
                && state.events + events <= config.max_events)
    }

    fn append_locked(
        &self,
        state: &mut State,
        tag: &str,
        bytes: usize,
        commit: Option<Commit>,
        write: impl FnOnce(&mut FrameBuilder),
    ) {
        let config = &self.inner.config;
        let now = Instant::now();
        if state.open.get(tag).is_some_and(|open| {
            !open.builder.is_empty()
                && open.builder.entries_len().saturating_add(bytes) > config.chunk_bytes
        }) {
            // Sealed before it would cross `chunk_bytes`: a chunk stays
            // within what downstreams accept, and its frame within the room
            // reserved for it (grown past it, a Vec doubles).
            self.seal(state, tag);
        }
        let open = match state.open.get_mut(tag) {
            Some(open) => open,
            None => {
                // A consumer idle in `next_chunk` has no flush deadline yet:
                // wake it to arm one for this new chunk.
                self.inner.sealed.notify_one();
                let tag: Arc<str> = Arc::from(tag);
                state.bytes += CHUNK_COST;
                state.open.entry(tag.clone()).or_insert_with(|| Open {
                    builder: FrameBuilder::with_capacity(
                        &tag,
                        BatchMode::PackedForward,
                        config.time_format,
                        FIRST_ROOM.max(bytes.saturating_add(bytes / 8)),
                    ),
                    commits: Vec::new(),
                    opened: now,
                    bytes: CHUNK_COST,
                })
            }
        };
        let (before, before_events) = (open.builder.entries_len(), open.builder.len());
        // Room for a full chunk at most, and for the estimate of a batch
        // falling a little short of what it writes.
        let most = config.chunk_bytes.max(bytes).saturating_add(CHUNK_SLACK);
        open.builder
            .reserve_within(bytes.saturating_add(bytes / 8), most);
        write(&mut open.builder);
        let added = open.builder.entries_len() - before;
        // What was written counts, not what was announced: a parser may drop
        // lines it was told to drop.
        let events = open.builder.len() - before_events;
        open.bytes += added;
        if let Some(c) = commit {
            open.commits.push(c);
        }
        let full = open.builder.entries_len() >= config.chunk_bytes;
        state.bytes += added;
        state.events += events;
        self.inner
            .events_in
            .fetch_add(events as u64, Ordering::Relaxed);
        if full {
            self.seal(state, tag);
        }
    }

    /// Seals `tag`'s open chunk now, without waiting for `flush_interval`
    /// or `chunk_bytes`: for events whose sender waits on their delivery
    /// (a Forward client acked once delivered).
    pub fn flush(&self, tag: &str) {
        if let Some(sink) = &self.sink {
            sink.flush(tag);
            return;
        }
        let mut state = self.lock();
        self.seal(&mut state, tag);
    }

    fn seal(&self, state: &mut State, tag: &str) {
        let Some((tag, open)) = state.open.remove_entry(tag) else {
            return;
        };
        if open.builder.is_empty() {
            // Nothing to send, but commits may wait on it (a batch that only
            // moved an offset past a skipped line): they are delivered.
            state.bytes -= open.bytes.min(state.bytes);
            for c in open.commits {
                c();
            }
            self.inner.room.notify_waiters();
            return;
        }
        let config = &self.inner.config;
        let id = config.require_ack.then(ChunkId::generate);
        let events = open.builder.len();
        let frame = open.builder.finish(id.as_ref(), config.compress);
        if let Some(observe) = self.inner.observer.get() {
            observe(&tag, &frame, events);
        }
        state.sealed.push_back(Chunk {
            tag,
            frame,
            id,
            events,
            bytes: open.bytes,
            commits: open.commits,
            attempts: 0,
            refusals: 0,
        });
        self.inner.sealed.notify_one();
    }

    /// Seals chunks open for `flush_interval` or longer; returns when the
    /// next one will be due.
    fn seal_due(&self, state: &mut State, now: Instant) -> Option<Instant> {
        let interval = self.inner.config.flush_interval;
        let due: Vec<Arc<str>> = state
            .open
            .iter()
            .filter(|(_, o)| now.duration_since(o.opened) >= interval || state.closed)
            .map(|(t, _)| t.clone())
            .collect();
        for tag in due {
            self.seal(state, &tag);
        }
        state.open.values().map(|o| o.opened + interval).min()
    }

    /// The next sealed chunk, waiting for one (sealing open chunks as their
    /// flush interval passes). `None` once the buffer is closed and empty.
    pub async fn next_chunk(&self) -> Option<Chunk> {
        loop {
            let sealed = self.inner.sealed.notified();
            let wait = {
                let mut state = self.lock();
                let next_due = self.seal_due(&mut state, Instant::now());
                if let Some(chunk) = state.sealed.pop_front() {
                    self.inner.taken.notify_waiters();
                    return Some(chunk);
                }
                if state.closed && state.open.is_empty() {
                    return None;
                }
                next_due
            };
            match wait {
                Some(at) => {
                    tokio::select! {
                        () = sealed => {}
                        () = tokio::time::sleep_until(at.into()) => {}
                    }
                }
                None => sealed.await,
            }
        }
    }

    /// Takes a sealed chunk without waiting, sealing what is due first.
    pub fn try_next_chunk(&self) -> Option<Chunk> {
        let mut state = self.lock();
        self.seal_due(&mut state, Instant::now());
        let chunk = state.sealed.pop_front();
        if chunk.is_some() {
            self.inner.taken.notify_waiters();
        }
        chunk
    }

    /// Waits until fewer than `n` sealed chunks wait to be taken (or the
    /// buffer closed): a producer of whole chunks reads ahead no further
    /// than the output needs.
    pub async fn queued_below(&self, n: usize) {
        loop {
            let taken = self.inner.taken.notified();
            {
                let state = self.lock();
                if state.sealed.len() < n || state.closed {
                    return;
                }
            }
            taken.await;
        }
    }

    /// The chunk reached a receiver (and was acked, when acks are on): runs
    /// its commits and frees its room.
    pub fn delivered(&self, chunk: Chunk) {
        for c in chunk.commits {
            c();
        }
        self.inner
            .events_delivered
            .fetch_add(chunk.events as u64, Ordering::Relaxed);
        self.inner.chunks_delivered.fetch_add(1, Ordering::Relaxed);
        let empty = {
            let mut state = self.lock();
            state.bytes -= chunk.bytes.min(state.bytes);
            state.events -= chunk.events.min(state.events);
            state.bytes == 0
                && state.events == 0
                && state.sealed.is_empty()
                && state.open.is_empty()
        };
        self.inner.room.notify_waiters();
        if empty {
            self.inner.drained.notify_waiters();
        }
    }

    /// The chunk was not delivered: it goes back to the front of the queue,
    /// to be sent again (possibly elsewhere). Its room stays taken.
    pub fn retry(&self, mut chunk: Chunk) {
        chunk.attempts += 1;
        self.inner.chunks_retried.fetch_add(1, Ordering::Relaxed);
        self.lock().sealed.push_front(chunk);
        self.inner.sealed.notify_one();
    }

    /// Stops accepting events and seals every open chunk. What was accepted
    /// is still handed out by [`Buffer::next_chunk`].
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        let tags: Vec<Arc<str>> = state.open.keys().cloned().collect();
        for tag in tags {
            self.seal(&mut state, &tag);
        }
        drop(state);
        self.inner.sealed.notify_waiters();
        self.inner.room.notify_waiters();
        self.inner.closing.notify_waiters();
        self.inner.taken.notify_waiters();
    }

    /// Resolves once the buffer is closed ([`Buffer::close`]).
    pub async fn closed(&self) {
        loop {
            // Registered before the check: a close in between still wakes it.
            let closing = self.inner.closing.notified();
            if self.lock().closed {
                return;
            }
            closing.await;
        }
    }

    /// Waits until everything appended was delivered, or `deadline` passes.
    /// Returns what is left: `(events, bytes)`, zero when all was delivered.
    pub async fn drain(&self, deadline: Instant) -> (usize, usize) {
        loop {
            let drained = self.inner.drained.notified();
            {
                let state = self.lock();
                if state.events == 0
                    && state.bytes == 0
                    && state.open.is_empty()
                    && state.sealed.is_empty()
                {
                    return (0, 0);
                }
                if Instant::now() >= deadline {
                    return (state.events, state.bytes);
                }
            }
            tokio::select! {
                () = drained => {}
                () = tokio::time::sleep_until(deadline.into()) => {}
            }
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> BufferStats {
        let state = self.lock();
        BufferStats {
            bytes: state.bytes,
            events: state.events,
            max_bytes: self.inner.config.max_bytes,
            queued_chunks: state.sealed.len(),
            events_in: self.inner.events_in.load(Ordering::Relaxed),
            events_delivered: self.inner.events_delivered.load(Ordering::Relaxed),
            chunks_delivered: self.inner.chunks_delivered.load(Ordering::Relaxed),
            chunks_retried: self.inner.chunks_retried.load(Ordering::Relaxed),
            producer_waits: self.inner.producer_waits.load(Ordering::Relaxed),
        }
    }
}
