//! The reading thread: one [`Engine`] loop per tailer, on its own thread.
//!
//! The loop waits for file events or the next timer, then looks at the
//! paths and reads. Its parts, one per file: `paths` (the paths provider:
//! which paths are followed and which file is at each), `file` (one open
//! file: reading, splitting, handing batches out), `rotation` (rotated,
//! truncated and copied files) and `live` (the counters the monitor reads).

mod copies;
mod file;
mod handout;
mod live;
mod paths;
mod rotation;
mod watch;

use std::collections::{HashMap, HashSet};
use std::fs::{File, Metadata};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::warn;

use crate::checkpoint::{FileKey, Position, Saved, store_positions};
use crate::discover::Matcher;
use crate::restart::History;
use crate::{Batch, Error, TailConfig};

use file::Tracked;
pub use live::Pulse;
use live::lock;
pub(crate) use live::{Running, Shared, committer};
use watch::FileEvent;

/// How long file events are gathered before reading.
const COALESCE: Duration = Duration::from_millis(20);

/// The longest the reading loop sleeps, whatever the intervals: its
/// [`Pulse`] must move while it is well.
const BEAT: Duration = Duration::from_secs(1);

/// The most file events taken in after one gathering window; the rest wait
/// for the next.
const MAX_GATHERED: usize = 1 << 16;

/// The longest a stop waits for the kernel's queued file events.
const FLUSH_WAIT: Duration = Duration::from_millis(500);

#[derive(Default)]
struct PathState {
    source: usize,
    current: Option<FileKey>,
}

pub(crate) struct Engine {
    cfg: TailConfig,
    matchers: Vec<Matcher>,
    files: HashMap<FileKey, Tracked>,
    paths: HashMap<PathBuf, PathState>,
    saved: HashMap<FileKey, Position>,
    next_id: u64,
    tx: mpsc::Sender<Vec<Batch>>,
    /// Batches read and not handed out yet: handed out together, so one
    /// wakeup of the consumer takes the lines of many files.
    pending: Vec<Batch>,
    /// Their lines' bytes, and a little per batch.
    pending_bytes: usize,
    /// A handout is waiting on a full channel: batches made meanwhile wait
    /// behind it.
    handing_out: bool,
    shared: Arc<Shared>,
    wake: std_mpsc::Receiver<Vec<PathBuf>>,
    watcher: Option<watch::Watcher>,
    wake_tx: std_mpsc::Sender<Vec<PathBuf>>,
    first_discovery: bool,
    /// What the run before this one left (positions file or a reload's
    /// handoff); `None` on a first run.
    history: Option<History>,
    /// Open files handed over by the tailer this one replaces.
    handed: HashMap<FileKey, File>,
    /// The file being read right now (checked out of `files`).
    reading: Option<FileKey>,
    /// Names outside every pattern now holding a file that left a followed
    /// path, with its source: see `catch_renamed`.
    moved: HashMap<PathBuf, (usize, Instant)>,
    /// Files let go within [`MOVED_KEPT`]: a rename chain may still name
    /// them.
    closed: HashMap<FileKey, Instant>,
    /// Paths changed around the file being read while it was checked out
    /// (left its path, or renamed to another followed one): its paths are
    /// looked at again when it is put back.
    reading_moved: bool,
}

impl Engine {
    pub(crate) fn new(
        cfg: TailConfig,
        tx: mpsc::Sender<Vec<Batch>>,
        shared: Arc<Shared>,
        wake: std_mpsc::Receiver<Vec<PathBuf>>,
        prior: Option<(Saved, Vec<(FileKey, File)>)>,
    ) -> Result<Self, Error> {
        let matchers = cfg
            .sources
            .iter()
            .map(|s| Matcher::new(&s.include, &s.exclude))
            .collect::<Result<Vec<_>, _>>()?;
        let (history, saved, handed) = match prior {
            Some((saved, files)) => (
                Some(History::new(saved.sources)),
                saved.files.into_iter().map(|p| (p.key, p)).collect(),
                files.into_iter().collect(),
            ),
            None => (None, HashMap::new(), HashMap::new()),
        };
        {
            let mut ledger = lock(&shared.ledger);
            ledger.carry(saved.values().cloned());
            ledger.set_sources(
                cfg.sources
                    .iter()
                    .flat_map(|s| s.include.iter().cloned())
                    .collect(),
            );
        }
        let wake_tx = lock(&shared.wake).clone();
        Ok(Engine {
            cfg,
            matchers,
            files: HashMap::new(),
            paths: HashMap::new(),
            saved,
            next_id: 1,
            tx,
            pending: Vec::new(),
            pending_bytes: 0,
            handing_out: false,
            shared,
            wake,
            watcher: None,
            wake_tx,
            first_discovery: true,
            history,
            handed,
            reading: None,
            moved: HashMap::new(),
            closed: HashMap::new(),
            reading_moved: false,
        })
    }

    /// Watches the followed directories and opens every file present, on
    /// the caller's thread: once the tailer has started, a file that is
    /// renamed or deleted is one it knows.
    pub(crate) fn prepare(&mut self) {
        if self.cfg.use_inotify {
            let wake = self.wake_tx.clone();
            let shared = self.shared.clone();
            match watch::Watcher::start(move |ev| match ev {
                FileEvent::Written(path) => {
                    // One wake for all the writes gathered until the engine
                    // takes them.
                    let mut written = lock(&shared.written);
                    let first = written.is_empty();
                    written.insert(path);
                    drop(written);
                    if first {
                        let _ = wake.send(Vec::new());
                    }
                }
                FileEvent::Changed(paths) => {
                    let _ = wake.send(paths);
                }
                FileEvent::Lost => {
                    shared.rescan.store(true, Ordering::Release);
                    let _ = wake.send(Vec::new());
                }
            }) {
                Ok(w) => self.watcher = Some(w),
                Err(e) => warn!(error = %e, "Cannot watch for file events; polling only."),
            }
        }
        self.discover();
        // Saved at once, even with no file to follow yet: from here on, a
        // restart (even after a crash) knows this was not a first run, and
        // reads files that appear meanwhile from their head.
        lock(&self.shared.ledger).mark_dirty();
        self.checkpoint();
    }

    /// Reads until stopped; returns the files still open, for a reload's
    /// handoff.
    pub(crate) fn run(mut self) -> Vec<(FileKey, File)> {
        let mut next_discovery = Instant::now() + self.cfg.refresh_interval;
        let mut next_poll = Instant::now();
        let mut next_checkpoint = Instant::now() + self.cfg.checkpoint_interval;
        let mut busy = false;
        while !self.stopping() {
            self.beat();
            let now = Instant::now();
            let mut deadline = next_poll
                .min(next_discovery)
                .min(next_checkpoint)
                .min(now + BEAT);
            if let Some(flush) = self.next_partial_flush() {
                deadline = deadline.min(flush);
            }
            let wait = if busy {
                Duration::ZERO
            } else {
                deadline.saturating_duration_since(now)
            };
            let hints = match self.wake.recv_timeout(wait) {
                Ok(first) => {
                    self.catch_renamed(&first);
                    let mut hints: HashSet<PathBuf> = first.into_iter().collect();
                    // A writer makes one event per write: gather what comes
                    // within a short window and read once, instead of waking
                    // for every line. Asleep for the whole window, not
                    // waiting on the queue: each event would wake the
                    // thread, which costs more than the event.
                    std::thread::sleep(COALESCE);
                    // Bounded: under a flood of events the queue is never
                    // empty, and draining it would never end.
                    for _ in 0..MAX_GATHERED {
                        let Ok(more) = self.wake.try_recv() else {
                            break;
                        };
                        self.catch_renamed(&more);
                        hints.extend(more);
                    }
                    // Taken after the other events: a write to a path
                    // renamed or created since is then among them too.
                    let written = std::mem::take(&mut *lock(&self.shared.written));
                    Some((hints, written))
                }
                Err(std_mpsc::RecvTimeoutError::Timeout) => None,
                Err(std_mpsc::RecvTimeoutError::Disconnected) => None,
            };
            self.adopt_moved();
            if self.stopping() {
                break;
            }
            let now = Instant::now();
            // File events were lost (the kernel's queue overflowed): every
            // path and pattern is looked at, as if no event had come.
            let hints = if self.shared.rescan.swap(false, Ordering::AcqRel) {
                warn!("File events were lost; looking at every path.");
                next_discovery = now;
                None
            } else {
                hints
            };
            if now >= next_discovery {
                self.discover();
                next_discovery = now + self.cfg.refresh_interval;
            }
            busy = if now >= next_poll || hints.is_none() {
                next_poll = now + self.cfg.poll_interval;
                let all: Vec<PathBuf> = self.paths.keys().cloned().collect();
                self.poll(&all, &[], true)
            } else {
                let (mut hints, written) = hints.unwrap_or_default();
                // A file only written to is read without a look at its
                // path, which holds it still: had another file taken the
                // path, that came as an event of its own (created, moved
                // to), and the path is looked at.
                let mut writes = Vec::new();
                for path in written {
                    if self.paths.contains_key(&path) && !hints.contains(&path) {
                        writes.push(path);
                    } else {
                        // Not followed yet: looked at as any other event.
                        hints.insert(path);
                    }
                }
                let mut targets = Vec::new();
                for hint in hints {
                    if self.paths.contains_key(&hint) {
                        targets.push(hint);
                    } else if let Some(source) = self.matchers.iter().position(|m| m.matches(&hint))
                    {
                        // Created since the last discovery: followed now, and
                        // read from the head.
                        self.paths.insert(
                            hint.clone(),
                            PathState {
                                source,
                                ..Default::default()
                            },
                        );
                        targets.push(hint);
                    }
                }
                self.poll(&targets, &writes, false)
            };
            // Before the loop waits again: nothing read waits for a timer.
            // A halt here is a stop or a consumer gone, which the loop
            // sees.
            let _ = self.hand_out();
            if now >= next_checkpoint {
                self.checkpoint();
                next_checkpoint = now + self.cfg.checkpoint_interval;
            }
        }
        if !self.shared.crashed.load(Ordering::Acquire) {
            // File events still queued may name a file created and rotated
            // away since the last look: it is opened (not read) so that the
            // saved positions, or the next tailer, know of it.
            self.flush_events();
            self.observe_paths();
            if self.cfg.positions.is_none() {
                self.emit_pending_at_stop();
            }
        }
        self.checkpoint();
        self.files.into_iter().map(|(k, t)| (k, t.file)).collect()
    }

    /// Takes in every file event the kernel has queued so far. inotify
    /// keeps one ordered queue for all of a watcher's directories: once the
    /// event of a file created now arrives, every earlier event has too.
    /// The file is made in a directory of hydra's own, never among the
    /// logs.
    fn flush_events(&mut self) {
        static FLUSHES: AtomicU64 = AtomicU64::new(0);
        let Some(w) = self.watcher.as_mut() else {
            return;
        };
        let dir = std::env::temp_dir().join(format!(
            "hydra-tail-flush-{}-{}",
            std::process::id(),
            FLUSHES.fetch_add(1, Ordering::Relaxed)
        ));
        if std::fs::create_dir(&dir).is_err() {
            return;
        }
        let marker = dir.join("flush");
        if w.watch(&dir, false).is_ok() && std::fs::write(&marker, b"").is_ok() {
            let until = Instant::now() + FLUSH_WAIT;
            let mut hints = Vec::new();
            while let Ok(event) = self
                .wake
                .recv_timeout(until.saturating_duration_since(Instant::now()))
            {
                if event.contains(&marker) {
                    break;
                }
                self.catch_renamed(&event);
                hints.extend(event);
            }
            if let Some(w) = self.watcher.as_mut() {
                w.unwatch(&dir);
            }
            self.adopt_moved();
            hints.extend(std::mem::take(&mut *lock(&self.shared.written)));
            self.follow_new(hints);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Paths named by events that a pattern matches start being followed.
    fn follow_new(&mut self, hints: impl IntoIterator<Item = PathBuf>) {
        for hint in hints {
            if !self.paths.contains_key(&hint)
                && let Some(source) = self.matchers.iter().position(|m| m.matches(&hint))
            {
                self.paths.insert(
                    hint,
                    PathState {
                        source,
                        ..Default::default()
                    },
                );
            }
        }
    }

    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::Acquire)
    }

    /// One turn of the reading thread, for [`Pulse`]. Under the test
    /// fault, it stops here until the fault's file goes away.
    fn beat(&self) {
        self.shared.beats.fetch_add(1, Ordering::Relaxed);
        if let Some(wedge) = &self.cfg.test_wedge {
            while wedge.exists() && !self.stopping() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    fn next_partial_flush(&self) -> Option<Instant> {
        let lines = self
            .files
            .values()
            .filter(|t| t.splitter.pending() > 0)
            .filter_map(|t| Some(t.last_data + self.cfg.sources[t.source].partial_flush?));
        let events = self.files.values().filter_map(|t| {
            let g = t.grouping.as_ref()?;
            g.pending_since()?;
            Some(t.last_data + g.flush_after())
        });
        lines.chain(events).min()
    }

    /// The saved position of the file `meta` describes, taken. One for its
    /// inode but another birth time names another file, and is left for
    /// `recover_rotated` (its file may be gone, its copy not).
    fn take_saved(&mut self, key: FileKey, meta: &Metadata) -> Option<Position> {
        if self.saved.get(&key)?.same_birth(meta) {
            self.saved.remove(&key)
        } else {
            None
        }
    }

    /// Open, or being read right now.
    fn is_tracked(&self, key: FileKey) -> bool {
        self.files.contains_key(&key) || self.reading == Some(key)
    }

    /// The positions file or its temporary file: never a log's copy.
    fn is_own(&self, path: &Path) -> bool {
        self.cfg
            .positions
            .as_deref()
            .is_some_and(|p| path == p || path == crate::checkpoint::tmp_path(p))
    }

    /// The followed path a file is at, if any.
    fn path_of(&self, key: FileKey) -> Option<PathBuf> {
        self.paths
            .iter()
            .find(|(_, s)| s.current == Some(key))
            .map(|(p, _)| p.clone())
    }

    fn set_error(&self, path: &Path, source: usize, error: Option<String>) {
        let mut errors = lock(&self.shared.path_errors);
        match error {
            Some(error) => {
                if errors.get(path).is_none_or(|(_, e)| *e != error) {
                    warn!(path = %path.display(), %error, "Cannot follow path; will retry.");
                    errors.insert(path.to_owned(), (source, error));
                }
            }
            // Called after every successful read: no hashing when there
            // is nothing to clear.
            None if errors.is_empty() => {}
            None => {
                errors.remove(path);
            }
        }
    }

    fn checkpoint(&mut self) {
        let Some(path) = self.cfg.positions.clone() else {
            return;
        };
        if self.shared.crashed.load(Ordering::Acquire) {
            return;
        }
        let dirty = lock(&self.shared.ledger).take_dirty();
        if let Some(positions) = dirty {
            let result = store_positions(&path, &positions);
            let mut err = lock(&self.shared.positions_error);
            match result {
                Ok(()) => *err = None,
                Err(e) => {
                    if err.is_none() {
                        warn!(error = %e, "Cannot write positions; retrying. Reading goes on.");
                    }
                    *err = Some(e.to_string());
                    // Try again next time.
                    lock(&self.shared.ledger).mark_dirty();
                }
            }
        }
    }
}
