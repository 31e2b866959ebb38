//! The buffer as the pipeline uses it: appends that wait for room (on the
//! disk, under `max_bytes`) and report when they are durable, chunks taken
//! in order to be delivered, and a housekeeping thread that syncs and seals.
//! The [`Core`] does the work, off the async runtime's threads.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use tracing::{error, warn};

use crate::Error;
use crate::core::{Config, Core, Counts, Written};
use crate::fs::Fs;
use crate::recover::Recovery;

/// How often the buffer's files are synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// At least this often, and at once when an append waits to be
    /// durable (`ack: stored`).
    Every(Duration),
    /// Every append is durable before it returns; appends waiting at once
    /// share one sync.
    Always,
}

/// Runs once the appends before it are durable.
pub type Callback = Box<dyn FnOnce() + Send + 'static>;

/// How long a failed write waits before it is tried again.
const RETRY: Duration = Duration::from_millis(200);

/// A chunk taken to be delivered: [`Store::delivered`] or
/// [`Store::returned`] it.
#[derive(Debug)]
pub struct Taken<T> {
    /// Its sequence number.
    pub seq: u64,
    /// Its id: the chunk id it is sent with.
    pub id: String,
    /// Its events' tag.
    pub tag: String,
    /// Its events: msgpack `[time, record]` entries back to back.
    pub entries: Vec<u8>,
    /// Events in it.
    pub events: u64,
    /// What the appends to it brought, in order.
    pub attached: Vec<T>,
}

/// The buffer's figures, for the monitor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// What the buffer holds.
    pub counts: Counts,
    /// When the oldest chunk was created, in seconds since the epoch.
    pub oldest: Option<u64>,
    /// Syncs made (each of every file written since the one before, and
    /// of the directory when files were created).
    pub syncs: u64,
    /// The last sync's duration, and the longest, in microseconds.
    pub sync_last_us: u64,
    /// The longest sync, in microseconds.
    pub sync_max_us: u64,
    /// Appends that had to wait: for room under `max_bytes`, or for the
    /// file system (full, over quota, failing).
    pub full_waits: u64,
    /// Appends that waited for the file system.
    pub failing_waits: u64,
    /// Appends are waiting for room now.
    pub full: bool,
    /// The last write or sync failed, and none has succeeded since.
    pub failing: bool,
}

struct Inner<T> {
    core: Mutex<Core<T>>,
    fs: Arc<dyn Fs>,
    policy: SyncPolicy,
    /// Room was made under `max_bytes`.
    room: Notify,
    /// A chunk was sealed or returned.
    sealed: Notify,
    /// Appends made durable, by number.
    synced: watch::Sender<u64>,
    /// Wakes the housekeeper: an append waits to be durable, or the store
    /// closes.
    wake: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    callbacks: Mutex<BTreeMap<u64, Vec<Callback>>>,
    closed: AtomicBool,
    syncs: AtomicU64,
    sync_last_us: AtomicU64,
    sync_max_us: AtomicU64,
    full_waits: AtomicU64,
    failing_waits: AtomicU64,
    waiting_full: AtomicU64,
    failing: AtomicBool,
}

/// The disk buffer. Cheap to clone: clones share it.
pub struct Store<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Store<T> {
    fn clone(&self) -> Self {
        Store {
            inner: self.inner.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Store<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &lock(&self.inner.core).config().dir)
            .finish_non_exhaustive()
    }
}

fn lock<U>(m: &Mutex<U>) -> MutexGuard<'_, U> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: Send + 'static> Store<T> {
    /// Opens (and recovers) the buffer, and starts its housekeeping
    /// thread. Blocking: call it before, or off, the async runtime's
    /// threads.
    pub fn open(
        fs: Arc<dyn Fs>,
        config: Config,
        policy: SyncPolicy,
    ) -> Result<(Store<T>, Recovery), Error> {
        let (core, recovery) = Core::open(fs.clone(), config)?;
        let (synced, _) = watch::channel(0);
        let store = Store {
            inner: Arc::new(Inner {
                core: Mutex::new(core),
                fs,
                policy,
                room: Notify::new(),
                sealed: Notify::new(),
                synced,
                wake: Mutex::new(None),
                callbacks: Mutex::new(BTreeMap::new()),
                closed: AtomicBool::new(false),
                syncs: AtomicU64::new(0),
                sync_last_us: AtomicU64::new(0),
                sync_max_us: AtomicU64::new(0),
                full_waits: AtomicU64::new(0),
                failing_waits: AtomicU64::new(0),
                waiting_full: AtomicU64::new(0),
                failing: AtomicBool::new(false),
            }),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        *lock(&store.inner.wake) = Some(tx);
        let inner = store.inner.clone();
        std::thread::Builder::new()
            .name("hydra-disk".into())
            .spawn(move || housekeep(&inner, &rx))
            .map_err(|source| Error::Dir {
                dir: lock(&store.inner.core).config().dir.clone(),
                source,
            })?;
        Ok((store, recovery))
    }

    fn lock(&self) -> MutexGuard<'_, Core<T>> {
        lock(&self.inner.core)
    }

    /// Appends `pieces` (each one record's entries and event count) of
    /// `tag`. Waits while they do not fit under `max_bytes`, and while the
    /// file system refuses the write (full, over quota, failing): nothing
    /// is dropped. With `attach`, it goes with the chunk to whoever takes
    /// it; `on_durable` runs once the append is synced. With
    /// [`SyncPolicy::Always`], returns once it is durable.
    pub async fn append(
        &self,
        tag: &str,
        pieces: Vec<(bytes::Bytes, u32)>,
        attach: Option<T>,
        on_durable: Option<Callback>,
    ) -> Result<Written, Error> {
        let tag: Arc<str> = Arc::from(tag);
        let mut attach = attach;
        let (mut was_full, mut was_failing) = (false, false);
        let written = loop {
            if self.inner.closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            let room = self.inner.room.notified();
            let (store, tag2, pieces2) = (self.clone(), tag.clone(), pieces.clone());
            let (result, back) = tokio::task::spawn_blocking(move || {
                let refs: Vec<(&[u8], u32)> = pieces2.iter().map(|(b, n)| (&b[..], *n)).collect();
                let mut a = attach;
                let r = store.lock().append(&tag2, &refs, &mut a);
                (r, a)
            })
            .await
            .map_err(|_| Error::Closed)?;
            attach = back;
            match result {
                Ok(w) => break w,
                Err(Error::Full { .. }) => {
                    if !was_full {
                        was_full = true;
                        self.inner.full_waits.fetch_add(1, Ordering::Relaxed);
                        self.inner.waiting_full.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = tokio::time::timeout(Duration::from_secs(1), room).await;
                }
                Err(Error::Write { path, source }) => {
                    if !was_failing {
                        was_failing = true;
                        self.inner.failing_waits.fetch_add(1, Ordering::Relaxed);
                        warn!(path = %path.display(), error = %source, "A write to the disk buffer failed; the append waits and is tried again.");
                    }
                    self.inner.failing.store(true, Ordering::Relaxed);
                    tokio::time::sleep(RETRY).await;
                }
                Err(e) => return Err(e),
            }
        };
        if was_full {
            self.inner.waiting_full.fetch_sub(1, Ordering::Relaxed);
        }
        self.inner.failing.store(false, Ordering::Relaxed);
        if self.lock().has_sealed() {
            self.inner.sealed.notify_one();
        }
        let wants_sync = on_durable.is_some() || self.inner.policy == SyncPolicy::Always;
        if let Some(cb) = on_durable {
            self.on_durable(written.id, cb);
        }
        if wants_sync {
            self.wake();
        }
        if self.inner.policy == SyncPolicy::Always {
            self.durable(written.id).await;
        }
        Ok(written)
    }

    /// Runs `cb` once append `id` is durable (at once if it is).
    fn on_durable(&self, id: u64, cb: Callback) {
        let mut callbacks = lock(&self.inner.callbacks);
        if *self.inner.synced.borrow() >= id {
            drop(callbacks);
            cb();
            return;
        }
        callbacks.entry(id).or_default().push(cb);
    }

    /// Waits until append `id` is durable.
    pub async fn durable(&self, id: u64) {
        let mut rx = self.inner.synced.subscribe();
        let _ = rx.wait_for(|s| *s >= id).await;
    }

    fn wake(&self) {
        if let Some(tx) = lock(&self.inner.wake).as_ref() {
            let _ = tx.send(());
        }
    }

    /// Seals `tag`'s open chunk now, for appends whose sender waits for
    /// its delivery.
    pub fn flush(&self, tag: &str) {
        self.lock().seal(tag);
        self.inner.sealed.notify_one();
    }

    /// The next sealed chunk, in order, with its events read back; waits
    /// for one. `None` once the store is closed.
    pub async fn next(&self) -> Option<Taken<T>> {
        loop {
            let sealed = self.inner.sealed.notified();
            let taken = self.lock().take();
            if let Some(s) = taken {
                // Back in line if this is dropped (cancelled) before it is
                // handed out.
                let mut guard = Unhanded {
                    store: self,
                    chunk: Some((s.seq, s.tag.clone(), s.events)),
                };
                let (seq, tag) = (s.seq, s.tag.clone());
                let file = self.lock().chunk_file(seq, &s.id);
                let read = tokio::task::spawn_blocking(move || file.read(&tag)).await;
                guard.chunk = None;
                match read {
                    Ok(Ok(events)) if events.events > 0 => {
                        return Some(Taken {
                            seq: s.seq,
                            id: s.id,
                            tag: s.tag,
                            entries: events.entries,
                            events: events.events,
                            attached: s.attached,
                        });
                    }
                    other => {
                        error!(seq, result = ?other.map(|r| r.map(|e| e.events)), "A chunk of the disk buffer could not be read back; it is dropped.");
                        self.delivered(seq);
                        continue;
                    }
                }
            }
            if self.inner.closed.load(Ordering::Acquire) {
                return None;
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), sealed).await;
        }
    }

    /// A taken chunk was delivered: its file goes.
    pub fn delivered(&self, seq: u64) {
        self.lock().delivered(seq);
        self.inner.room.notify_waiters();
    }

    /// A taken chunk was not delivered: it waits again, first in line.
    pub fn returned(&self, seq: u64, tag: String, events: u64) {
        self.lock().returned(seq, tag, events);
        self.inner.sealed.notify_one();
    }

    /// The figures, for the monitor.
    pub fn stats(&self) -> DiskStats {
        let core = self.lock();
        DiskStats {
            counts: core.counts(),
            oldest: core.oldest(),
            syncs: self.inner.syncs.load(Ordering::Relaxed),
            sync_last_us: self.inner.sync_last_us.load(Ordering::Relaxed),
            sync_max_us: self.inner.sync_max_us.load(Ordering::Relaxed),
            full_waits: self.inner.full_waits.load(Ordering::Relaxed),
            failing_waits: self.inner.failing_waits.load(Ordering::Relaxed),
            full: self.inner.waiting_full.load(Ordering::Relaxed) > 0,
            failing: self.inner.failing.load(Ordering::Relaxed),
        }
    }

    /// The directory.
    pub fn dir(&self) -> std::path::PathBuf {
        self.lock().config().dir.clone()
    }

    /// Seals every open chunk, syncs, and stops the housekeeping thread;
    /// appends and takes end. What is on disk stays for the next start.
    pub fn close(&self) {
        self.lock().seal_all();
        self.inner.closed.store(true, Ordering::Release);
        if let Some(tx) = lock(&self.inner.wake).take() {
            let _ = tx.send(());
        }
        self.inner.sealed.notify_waiters();
        self.inner.room.notify_waiters();
    }
}

/// A taken chunk not yet handed out: returned if dropped.
struct Unhanded<'a, T: Send + 'static> {
    store: &'a Store<T>,
    chunk: Option<(u64, String, u64)>,
}

impl<T: Send + 'static> Drop for Unhanded<'_, T> {
    fn drop(&mut self) {
        if let Some((seq, tag, events)) = self.chunk.take() {
            self.store.returned(seq, tag, events);
        }
    }
}

/// The housekeeping thread: syncs at the policy's pace (at once when an
/// append waits for it), seals chunks as their flush interval passes.
fn housekeep<T>(inner: &Inner<T>, wake: &std::sync::mpsc::Receiver<()>) {
    let every = match inner.policy {
        SyncPolicy::Every(d) => d,
        SyncPolicy::Always => Duration::from_secs(1),
    };
    let mut next_sync = Instant::now() + every;
    loop {
        let next_seal = lock(&inner.core).seal_due(Instant::now());
        let deadline = next_seal.map_or(next_sync, |s| s.min(next_sync));
        let woken = wake.recv_timeout(deadline.saturating_duration_since(Instant::now()));
        let closing = inner.closed.load(Ordering::Acquire);
        // Everything queued at once shares this one sync.
        while wake.try_recv().is_ok() {}
        let now = Instant::now();
        if woken.is_ok() || now >= next_sync || closing {
            sync_now(inner);
            next_sync = now + every;
        }
        if lock(&inner.core).has_sealed() {
            inner.sealed.notify_one();
        }
        if closing || matches!(woken, Err(std::sync::mpsc::RecvTimeoutError::Disconnected)) {
            sync_now(inner);
            return;
        }
    }
}

fn sync_now<T>(inner: &Inner<T>) {
    let job = lock(&inner.core).sync_begin();
    if job.is_empty() {
        let upto = job.upto;
        lock(&inner.core).sync_end(job, true);
        publish(inner, upto);
        return;
    }
    let started = Instant::now();
    let result = job.run(inner.fs.as_ref());
    inner.syncs.fetch_add(1, Ordering::Relaxed);
    let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    inner.sync_last_us.store(us, Ordering::Relaxed);
    inner.sync_max_us.fetch_max(us, Ordering::Relaxed);
    let upto = job.upto;
    let ok = result.is_ok();
    if let Err(e) = &result {
        inner.failing.store(true, Ordering::Relaxed);
        warn!(error = %e, "Syncing the disk buffer failed; its appends are not yet durable, and it is tried again.");
    }
    lock(&inner.core).sync_end(job, ok);
    if ok {
        publish(inner, upto);
    }
}

/// Appends up to `upto` are durable: waiters and callbacks learn it.
fn publish<T>(inner: &Inner<T>, upto: u64) {
    let due = {
        let mut callbacks = lock(&inner.callbacks);
        inner.synced.send_if_modified(|s| {
            let more = upto > *s;
            *s = (*s).max(upto);
            more
        });
        let later = callbacks.split_off(&(upto + 1));
        std::mem::replace(&mut *callbacks, later)
    };
    for cb in due.into_values().flatten() {
        cb();
    }
}
