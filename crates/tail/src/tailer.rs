//! The reading thread: discovery, rotation, reading, checkpoints.

use std::collections::{HashMap, HashSet};
use std::fs::{File, Metadata};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::LineMeta;
use crate::checkpoint::{
    FINGERPRINT_BYTES, FileId, FileKey, Fingerprint, Ledger, Position, Saved, born, store_positions,
};
use crate::discover::Matcher;
use crate::events::{Grouped, Grouping};
use crate::lines::{LineSplitter, Lines, Split};
use crate::restart::{History, Resume, find_beside};
use crate::{Batch, Committer, Error, FileStats, TailConfig};

pub(crate) struct Shared {
    pub(crate) stop: AtomicBool,
    /// Stopped as by a crash: the positions file is not written again.
    pub(crate) crashed: AtomicBool,
    pub(crate) ledger: Arc<Mutex<Ledger>>,
    /// Live counters of every open file, read by `Tailer::stats` at any
    /// time, even while reading waits on a full channel.
    pub(crate) files: Mutex<HashMap<FileKey, Arc<Live>>>,
    /// Paths that cannot be followed right now, and why.
    pub(crate) path_errors: Mutex<HashMap<PathBuf, (usize, String)>>,
    pub(crate) positions_error: Mutex<Option<String>>,
    /// Wakes the engine: file events, and stop requests.
    pub(crate) wake: Mutex<std_mpsc::Sender<Vec<PathBuf>>>,
}

/// One open file's counters, updated by the reading thread.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub(crate) path: Mutex<PathBuf>,
    pub(crate) source: usize,
    pub(crate) inode: u64,
    pub(crate) id: AtomicU64,
    pub(crate) position: AtomicU64,
    pub(crate) size: AtomicU64,
    pub(crate) lines: AtomicU64,
    pub(crate) long_lines: AtomicU64,
    pub(crate) truncations: AtomicU64,
    pub(crate) rotations: AtomicU64,
    pub(crate) multiline_cuts: AtomicU64,
    pub(crate) rotated: AtomicBool,
    pub(crate) error: Mutex<Option<String>>,
}

impl Shared {
    pub(crate) fn stats(&self) -> Vec<FileStats> {
        let ledger = lock(&self.ledger);
        let mut out: Vec<FileStats> = lock(&self.files)
            .values()
            .map(|l| FileStats {
                path: lock(&l.path).clone(),
                inode: l.inode,
                source: l.source,
                position: l.position.load(Ordering::Relaxed),
                committed: ledger
                    .committed(FileId(l.id.load(Ordering::Relaxed)))
                    .unwrap_or(0),
                size: l.size.load(Ordering::Relaxed),
                lines: l.lines.load(Ordering::Relaxed),
                long_lines: l.long_lines.load(Ordering::Relaxed),
                truncations: l.truncations.load(Ordering::Relaxed),
                rotations: l.rotations.load(Ordering::Relaxed),
                multiline_cuts: l.multiline_cuts.load(Ordering::Relaxed),
                rotated: l.rotated.load(Ordering::Relaxed),
                error: lock(&l.error).clone(),
            })
            .collect();
        drop(ledger);
        for (path, (source, error)) in lock(&self.path_errors).iter() {
            out.push(FileStats {
                path: path.clone(),
                source: *source,
                error: Some(error.clone()),
                ..Default::default()
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One open file.
struct Tracked {
    id: FileId,
    key: FileKey,
    file: File,
    path: PathBuf,
    source: usize,
    splitter: LineSplitter,
    /// The source's container format and multiline rules at work on this
    /// file.
    grouping: Option<Grouping>,
    /// The end offset of the last batch handed out. Behind `line_offset`
    /// while a multiline event is pending.
    sent_offset: u64,
    /// The last event of contents a truncation replaced, sent before the
    /// new contents' lines.
    held: Option<Batch>,
    /// Where the file cursor is: bytes read so far.
    read_offset: u64,
    /// Offset just past the last line handed out: where a restart resumes.
    line_offset: u64,
    fingerprint: Fingerprint,
    /// Its birth time, kept with its positions (see [`Position::born`]).
    born: Option<u64>,
    /// When it stopped being at any followed path (renamed away or deleted).
    gone_since: Option<Instant>,
    /// Last time bytes arrived, for the partial-line flush timeout.
    last_data: Instant,
    last_size: u64,
    /// Modification time at the last check, in nanoseconds.
    last_mtime: i128,
    /// The last bytes handed out, ending at `line_offset`: recognizes the
    /// copy that copytruncate leaves.
    window: Vec<u8>,
    /// The last bytes read, ending at `read_offset` (at most [`EDGE`]):
    /// still there at the next read unless the file was rewritten.
    edge: Vec<u8>,
    /// The last read stopped at its budget with more to read.
    more: bool,
    live: Arc<Live>,
}

/// Opens a log file for reading without updating its access time where
/// the kernel allows it (the file's owner, or root): a file being written
/// has an access time older than its change time at every read, so each
/// read would otherwise dirty the inode.
pub(crate) fn open_log(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOATIME)
        .open(path)
    {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => File::open(path),
        other => other,
    }
}

/// How long file events are gathered before reading.
const COALESCE: Duration = Duration::from_millis(20);

/// While reading waits on a full channel, how often paths are looked after
/// and a stop request noticed.
const BACKPRESSURE_LOOK: Duration = Duration::from_millis(50);

/// The longest a stopping tailer waits to hand out a last pending
/// multiline event.
const FINAL_SEND: Duration = Duration::from_secs(2);

/// How long a name that a file left a followed path for is still followed
/// through further renames.
const MOVED_KEPT: Duration = Duration::from_secs(1);

/// The longest a stop waits for the kernel's queued file events.
const FLUSH_WAIT: Duration = Duration::from_millis(500);

/// Bytes kept in [`Tracked::edge`].
const EDGE: usize = 16;

/// Whether the bytes of `file` just before `offset` are still `edge`.
fn edge_intact(file: &File, offset: u64, edge: &[u8]) -> bool {
    use std::os::unix::fs::FileExt;
    let mut now = [0u8; EDGE];
    let now = &mut now[..edge.len()];
    // A read error is not taken for a rewrite: the read that follows
    // reports it.
    offset
        .checked_sub(edge.len() as u64)
        .is_none_or(|at| file.read_exact_at(now, at).map_or(true, |()| now == edge))
}

/// Keeps the last [`EDGE`] bytes of what was read, `new` last.
fn remember_edge(edge: &mut Vec<u8>, new: &[u8]) {
    if new.len() >= EDGE {
        edge.clear();
        edge.extend_from_slice(&new[new.len() - EDGE..]);
    } else {
        edge.extend_from_slice(new);
        let excess = edge.len().saturating_sub(EDGE);
        edge.drain(..excess);
    }
}

/// Bytes kept in [`Tracked::window`].
const WINDOW: usize = 256;

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
    tx: mpsc::Sender<Batch>,
    shared: Arc<Shared>,
    wake: std_mpsc::Receiver<Vec<PathBuf>>,
    watcher: Option<notify::RecommendedWatcher>,
    watched_dirs: HashSet<PathBuf>,
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
    /// Waits on the bounded channel with a timeout, so paths are looked
    /// after while the consumer is slow.
    rt: tokio::runtime::Runtime,
}

fn mtime(meta: &Metadata) -> i128 {
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

/// The file's identity, following symlinks.
pub(crate) fn identity(meta: &Metadata) -> FileKey {
    FileKey {
        dev: meta.dev(),
        ino: meta.ino(),
    }
}

impl Engine {
    pub(crate) fn new(
        cfg: TailConfig,
        tx: mpsc::Sender<Batch>,
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
            shared,
            wake,
            watcher: None,
            watched_dirs: HashSet::new(),
            wake_tx,
            first_discovery: true,
            history,
            handed,
            reading: None,
            moved: HashMap::new(),
            closed: HashMap::new(),
            reading_moved: false,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(Error::Thread)?,
        })
    }

    /// Reads until stopped; returns the files still open, for a reload's
    /// handoff.
    /// Watches the followed directories and opens every file present, on
    /// the caller's thread: once the tailer has started, a file that is
    /// renamed or deleted is one it knows.
    pub(crate) fn prepare(&mut self) {
        if self.cfg.use_inotify {
            let wake = self.wake_tx.clone();
            match notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
                if let Ok(ev) = ev {
                    let _ = wake.send(ev.paths);
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

    pub(crate) fn run(mut self) -> Vec<(FileKey, File)> {
        let mut next_discovery = Instant::now() + self.cfg.refresh_interval;
        let mut next_poll = Instant::now();
        let mut next_checkpoint = Instant::now() + self.cfg.checkpoint_interval;
        let mut busy = false;
        while !self.stopping() {
            let now = Instant::now();
            let mut deadline = next_poll.min(next_discovery).min(next_checkpoint);
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
                    // for every line.
                    // The window is a hard limit: under a flood of events the
                    // queue is never empty, and draining it would never end.
                    let until = Instant::now() + COALESCE;
                    loop {
                        let left = until.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        match self.wake.recv_timeout(left) {
                            Ok(more) => {
                                self.catch_renamed(&more);
                                hints.extend(more);
                            }
                            Err(_) => break,
                        }
                    }
                    Some(hints)
                }
                Err(std_mpsc::RecvTimeoutError::Timeout) => None,
                Err(std_mpsc::RecvTimeoutError::Disconnected) => None,
            };
            self.adopt_moved();
            if self.stopping() {
                break;
            }
            let now = Instant::now();
            if now >= next_discovery {
                self.discover();
                next_discovery = now + self.cfg.refresh_interval;
            }
            busy = if now >= next_poll || hints.is_none() {
                next_poll = now + self.cfg.poll_interval;
                let all: Vec<PathBuf> = self.paths.keys().cloned().collect();
                self.poll(&all, true)
            } else {
                let mut targets = Vec::new();
                for hint in hints.unwrap_or_default() {
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
                self.poll(&targets, false)
            };
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
        use notify::Watcher;
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
        if w.watch(&dir, notify::RecursiveMode::NonRecursive).is_ok()
            && std::fs::write(&marker, b"").is_ok()
        {
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
                let _ = w.unwatch(&dir);
            }
            self.adopt_moved();
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

    fn discover(&mut self) {
        let mut seen = HashSet::new();
        for (source, m) in self.matchers.iter().enumerate() {
            for path in m.discover() {
                if seen.insert(path.clone()) {
                    self.paths.entry(path).or_insert_with(|| PathState {
                        source,
                        ..Default::default()
                    });
                }
            }
            for (dir, recursive) in m.watch_dirs() {
                if self.watched_dirs.contains(&dir) || !dir.is_dir() {
                    continue;
                }
                if let Some(w) = self.watcher.as_mut() {
                    use notify::Watcher;
                    let mode = if recursive {
                        notify::RecursiveMode::Recursive
                    } else {
                        notify::RecursiveMode::NonRecursive
                    };
                    match w.watch(&dir, mode) {
                        Ok(()) => {
                            self.watched_dirs.insert(dir);
                        }
                        Err(e) => {
                            debug!(dir = %dir.display(), error = %e, "Cannot watch directory; polling it.");
                        }
                    }
                }
            }
        }
        // Glob matches that vanished stop being followed; literal paths stay.
        self.paths
            .retain(|p, st| seen.contains(p) || st.current.is_some());
        if self.first_discovery {
            // Files seen in this first poll were there when hydra started.
            let paths: Vec<PathBuf> = self.paths.keys().cloned().collect();
            for path in paths {
                self.poll_path(&path);
            }
            self.first_discovery = false;
            self.recover_rotated();
        }
    }

    /// Saved positions of files that are no longer at any followed path
    /// (rotated while hydra was down, or rotated or deleted and handed over
    /// by a reload): take the handed-over handle, or find the file beside
    /// its old path by identity and fingerprint, and drain it from the
    /// saved offset.
    fn recover_rotated(&mut self) {
        let orphans: Vec<Position> = self.saved.drain().map(|(_, p)| p).collect();
        let mut handed = std::mem::take(&mut self.handed);
        for pos in orphans {
            let same_file = self
                .files
                .get(&pos.key)
                .is_none_or(|t| t.born.is_none() || pos.born.is_none() || t.born == pos.born);
            if self.is_tracked(pos.key) && same_file {
                continue;
            }
            // Found below, it is opened (which claims the position); not
            // found, it is gone for good.
            lock(&self.shared.ledger).forget_carried(pos.key);
            let handed_over = handed.remove(&pos.key);
            let was_handed = handed_over.is_some();
            let found = match handed_over {
                Some(file) => file
                    .metadata()
                    .ok()
                    .map(|meta| (pos.path.clone(), file, meta)),
                None => find_beside(&pos.path, |_, meta, _| {
                    identity(meta) == pos.key && pos.same_birth(meta)
                }),
            };
            let source = self.source_of(&pos.path);
            let Some((path, mut file, meta)) = found else {
                // Deleted: a copy beside it (copytruncate, then removal) may
                // still hold what was not delivered.
                self.drain_saved_copy(&pos, source);
                continue;
            };
            let intact =
                pos.offset <= meta.len() && pos.fingerprint.matches(&mut file).unwrap_or(false);
            let start = if intact {
                if pos.offset == meta.len() && !was_handed {
                    // Read to its end before the stop: nothing to drain.
                    continue;
                }
                pos.offset
            } else {
                // Emptied (copytruncate) or rewritten since: the rest of
                // what was saved is in its copy, if there is one; what it
                // holds now is new.
                info!(path = %path.display(), saved_offset = pos.offset, "Rotated file changed while hydra was stopped; reading it from the start.");
                self.drain_saved_copy(&pos, source);
                0
            };
            info!(path = %path.display(), offset = start, "Draining a file rotated while hydra was stopped.");
            if let Some(mut t) = self.track(path, pos.key, file, &meta, source, Resume::At(start)) {
                mark_gone(&mut t);
                self.files.insert(pos.key, t);
            }
        }
    }

    /// The source a path belongs to (the first that matches), or the first.
    fn source_of(&self, path: &Path) -> usize {
        self.matchers
            .iter()
            .position(|m| m.matches(path))
            .unwrap_or(0)
    }

    /// Checks `paths`, then reads: every open file when `all` (the periodic
    /// poll), otherwise only the files at `paths` and those draining or
    /// with more to read. Returns whether any file has more right away.
    fn poll(&mut self, paths: &[PathBuf], all: bool) -> bool {
        for path in paths {
            self.poll_path(path);
        }
        let mut busy = false;
        let mut keys: Vec<FileKey> = if all {
            self.files.keys().copied().collect()
        } else {
            // One written line must not cost a syscall on every other file.
            let mut keys: Vec<FileKey> = paths
                .iter()
                .filter_map(|p| self.paths.get(p).and_then(|s| s.current))
                .collect();
            keys.extend(
                self.files
                    .iter()
                    .filter(|(_, t)| t.gone_since.is_some() || t.more)
                    .map(|(k, _)| *k),
            );
            keys.sort_unstable_by_key(|k| (k.dev, k.ino));
            keys.dedup();
            keys
        };
        // Files left by their path (rotated, removed) first: their lines
        // were written before those of the files that took their place.
        let draining = |k: &FileKey| self.files.get(k).is_some_and(|t| t.gone_since.is_some());
        keys.sort_by_key(|k| !draining(k));
        // Paths whose left file has more to read: the file now at that
        // path waits until it is read to its end, so lines go out in the
        // order they were written across a rotation.
        let mut behind: Vec<PathBuf> = Vec::new();
        let now = Instant::now();
        for key in keys {
            let Some(mut t) = self.files.remove(&key) else {
                continue;
            };
            if t.gone_since.is_none() && behind.contains(&t.path) {
                t.more = true;
                busy = true;
                self.files.insert(key, t);
                continue;
            }
            if t.gone_since.is_some()
                && let Ok(meta) = t.file.metadata()
            {
                // See `check_gone`.
                self.check_truncation(&mut t, &meta);
            }
            self.reading = Some(key);
            let read = self.read(&mut t);
            self.reading = None;
            if std::mem::take(&mut self.reading_moved) {
                // Its paths changed while it was checked out: where is it
                // now?
                match self.path_of(key) {
                    Some(path) => self.renamed_into(&mut t, &path),
                    None => mark_gone(&mut t),
                }
            }
            let more = match read {
                Ok(more) => more,
                Err(()) => {
                    self.files.insert(key, t);
                    return false;
                }
            };
            busy |= more;
            t.more = more;
            if more && t.gone_since.is_some() {
                behind.push(t.path.clone());
            }
            if let Some(since) = t.gone_since
                && !more
                && now.duration_since(since) >= self.cfg.sources[t.source].rotate_wait
                // A file still at a followed path is never let go.
                && self.path_of(key).is_none()
            {
                self.close(t);
                continue;
            }
            self.files.insert(key, t);
        }
        busy
    }

    fn poll_path(&mut self, path: &Path) {
        let Some(state) = self.paths.get_mut(path) else {
            return;
        };
        let meta = match std::fs::metadata(path) {
            Ok(m) if m.is_file() => m,
            Ok(m) => {
                let what = if m.is_dir() {
                    "is a directory"
                } else {
                    "is not a regular file"
                };
                let source = state.source;
                let old = state.current.take();
                self.gone(old);
                self.set_error(path, source, Some(what.to_owned()));
                return;
            }
            Err(e) => {
                let source = state.source;
                let old = state.current.take();
                self.gone(old);
                // A missing path is waited for; that is not an error.
                let error = (e.kind() != std::io::ErrorKind::NotFound).then(|| e.to_string());
                self.set_error(path, source, error);
                return;
            }
        };
        let key = identity(&meta);
        let source = state.source;
        if state.current != Some(key) {
            let old = state.current.replace(key);
            self.gone(old);
            if let Some(mut t) = self.files.remove(&key) {
                // Renamed into this path (a rotation inside a glob, or a
                // move back): same file, same reader.
                self.renamed_into(&mut t, path);
                self.files.insert(key, t);
            } else if self.reading == Some(key) {
                // The same, for the file being read while reading waits on
                // the consumer: opening it again would start a second
                // reader at offset 0.
                self.reading_moved = true;
            } else {
                let file = match open_log(path) {
                    Ok(f) => f,
                    Err(e) => {
                        if let Some(state) = self.paths.get_mut(path) {
                            state.current = None;
                        }
                        self.set_error(path, source, Some(e.to_string()));
                        return;
                    }
                };
                // The path may have been rotated between the stat and the
                // open: what was opened is what gets followed, under its
                // own identity, and the path is looked at again next time.
                let (key, meta) = match file.metadata() {
                    Ok(m) if identity(&m) != key => {
                        if let Some(state) = self.paths.get_mut(path) {
                            state.current = None;
                        }
                        if self.is_tracked(identity(&m)) {
                            return;
                        }
                        (identity(&m), m)
                    }
                    _ => (key, meta),
                };
                self.set_error(path, source, None);
                if let Some(t) =
                    self.track(path.to_owned(), key, file, &meta, source, Resume::Decide)
                {
                    self.files.insert(key, t);
                } else if let Some(state) = self.paths.get_mut(path) {
                    state.current = None;
                }
                return;
            }
        }
        if let Some(mut t) = self.files.remove(&key) {
            self.check_truncation(&mut t, &meta);
            self.files.insert(key, t);
        }
    }

    /// A rename event (`[from, to]`): a file that leaves a followed path
    /// for a name no pattern matches may be one hydra has not opened,
    /// created and rotated away between two looks at the path (while reading
    /// waited, or within one gathering window). Its lines are still there.
    /// Renames are replayed in order (`f.log` → `f.log.1` → `f.log.2` under
    /// logrotate's `rotate N`), and the file is looked up where the last one
    /// took it once the events at hand are taken in ([`Self::adopt_moved`]):
    /// looked up at once, the name may already hold the next generation.
    fn catch_renamed(&mut self, event: &[PathBuf]) {
        let [from, to] = event else { return };
        // A path a pattern matches counts even before it is followed: it
        // may have been created within the same gathering window.
        // A name's time is when its file left the followed path: renames that
        // follow do not extend it.
        let (source, left) = match self.moved.remove(from) {
            Some(moved) => moved,
            None => match self
                .paths
                .get(from)
                .map(|s| s.source)
                .or_else(|| self.matchers.iter().position(|m| m.matches(from)))
            {
                Some(source) => (source, Instant::now()),
                None => return,
            },
        };
        if self.matchers.iter().any(|m| m.matches(to)) {
            // Followed under its new name by the usual path checks.
            return;
        }
        self.moved.insert(to.clone(), (source, left));
    }

    /// Follows, from its head and as a rotated file, each file that left a
    /// followed path (see [`Self::catch_renamed`]) if hydra does not know it.
    fn adopt_moved(&mut self) {
        // Names are kept a moment after they are looked at: the events taken
        // in may stop between two rotations, and the next rename of the same
        // name (`f.log.1` → `f.log.2`) must still be followed.
        self.moved.retain(|_, (_, at)| at.elapsed() < MOVED_KEPT);
        self.closed.retain(|_, at| at.elapsed() < MOVED_KEPT);
        let moved: Vec<(PathBuf, usize)> = self
            .moved
            .iter()
            .map(|(p, (s, _))| (p.clone(), *s))
            .collect();
        for (path, source) in moved {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let key = identity(&meta);
            // A file just drained and let go is not a new one.
            if !meta.is_file()
                || self.is_tracked(key)
                || self.path_of(key).is_some()
                || self.closed.contains_key(&key)
            {
                continue;
            }
            let Ok(file) = open_log(&path) else { continue };
            info!(path = %path.display(), "Draining a file rotated before it was seen.");
            if let Some(mut t) = self.track(path, key, file, &meta, source, Resume::At(0)) {
                mark_gone(&mut t);
                self.files.insert(key, t);
            }
        }
    }

    /// `key` left a followed path.
    fn gone(&mut self, key: Option<FileKey>) {
        let Some(key) = key else { return };
        if self.path_of(key).is_some() {
            // Renamed to another followed path: still followed.
            return;
        }
        if let Some(t) = self.files.get_mut(&key) {
            mark_gone(t);
        } else if self.reading == Some(key) {
            // Checked out for reading: settled when it is put back. A key
            // neither open nor being read is not remembered at all: a new
            // file that reuses its inode must not inherit its fate.
            self.reading_moved = true;
        }
    }

    /// `t` is now at `path`, a followed path.
    fn renamed_into(&self, t: &mut Tracked, path: &Path) {
        if t.path != path {
            t.path = path.to_owned();
            *lock(&t.live.path) = path.to_owned();
            lock(&self.shared.ledger).rename(t.id, path);
        }
        t.gone_since = None;
        t.live.rotated.store(false, Ordering::Relaxed);
    }

    /// Starts following a newly seen file.
    fn track(
        &mut self,
        path: PathBuf,
        key: FileKey,
        mut file: File,
        meta: &Metadata,
        source: usize,
        resume: Resume,
    ) -> Option<Tracked> {
        let size = meta.len();
        // The start-up rules of docs/tailing.md, row by row.
        let start = match resume {
            Resume::At(offset) | Resume::Continue { offset, .. } => offset,
            // A saved position for this inode but another birth time named
            // another file: this one appeared while hydra was stopped.
            Resume::Decide => match self.take_saved(key, meta) {
                Some(p)
                    if p.offset <= size && p.fingerprint.matches(&mut file).unwrap_or(false) =>
                {
                    debug!(path = %path.display(), offset = p.offset, "Resuming from the saved position.");
                    p.offset
                }
                // Same identity, other contents: truncated (copytruncate),
                // rewritten, or a new file that reuses the inode, all while
                // hydra was stopped. Everything in it is new; the old
                // contents' undelivered rest may be in a copy beside it.
                Some(p) => {
                    info!(path = %path.display(), saved_offset = p.offset, size, "File changed while hydra was stopped; reading it from the start.");
                    self.drain_saved_copy(&p, source);
                    0
                }
                // Appeared while hydra was running: from the head, so
                // nothing written to a new file after a rotation is missed.
                None if !self.first_discovery => 0,
                // Appeared while hydra was stopped, at a path it followed:
                // every line in it was written after the last run.
                None if self
                    .history
                    .as_ref()
                    .is_some_and(|h| h.followed(&self.cfg.sources[source])) =>
                {
                    info!(path = %path.display(), "File appeared while hydra was stopped; reading it from the start.");
                    0
                }
                // A first run: like `tail -F`, from the end unless
                // configured otherwise.
                None if self.cfg.sources[source].read_from_head => 0,
                None => line_start_before(&mut file, size),
            },
        };
        let fingerprint = Fingerprint::of(&mut file, size).ok().flatten()?;
        file.seek(SeekFrom::Start(start)).ok()?;
        let born = born(meta);
        let id = match resume {
            Resume::Continue { id, .. } => {
                lock(&self.shared.ledger).rekey(id, key, &path, born);
                id
            }
            Resume::Decide | Resume::At(_) => {
                let id = FileId(self.next_id);
                self.next_id += 1;
                lock(&self.shared.ledger).open(
                    id,
                    Position {
                        path: path.clone(),
                        key,
                        fingerprint,
                        offset: start,
                        born,
                    },
                );
                id
            }
        };
        info!(path = %path.display(), offset = start, "Following file.");
        let live = Arc::new(Live {
            path: Mutex::new(path.clone()),
            source,
            inode: key.ino,
            ..Default::default()
        });
        live.id.store(id.0, Ordering::Relaxed);
        live.position.store(start, Ordering::Relaxed);
        live.size.store(size, Ordering::Relaxed);
        lock(&self.shared.files).insert(key, live.clone());
        let rules = &self.cfg.sources[source];
        Some(Tracked {
            id,
            key,
            file,
            live,
            path,
            source,
            splitter: LineSplitter::new(rules.max_line_bytes, rules.long_lines, rules.strip_cr),
            grouping: Grouping::new(rules),
            sent_offset: start,
            held: None,
            read_offset: start,
            line_offset: start,
            fingerprint,
            born,
            gone_since: None,
            last_data: Instant::now(),
            last_size: size,
            last_mtime: mtime(meta),
            window: Vec::new(),
            edge: Vec::new(),
            more: false,
        })
    }

    /// A file smaller than what was read, or whose first bytes changed, was
    /// truncated (copytruncate) or rewritten: read it again from the start.
    fn check_truncation(&mut self, t: &mut Tracked, meta: &Metadata) {
        let size = meta.len();
        // Truncated and rewritten to the same size between two polls
        // changes only the modification time.
        let changed = size != t.last_size || mtime(meta) != t.last_mtime;
        let previous_size = t.last_size;
        t.last_size = size;
        t.last_mtime = mtime(meta);
        t.live.size.store(size, Ordering::Relaxed);
        // A file shrinks only by truncation, even when its new contents
        // already reach past the read offset.
        let truncated = size < t.read_offset
            || size < previous_size
            || (changed && !t.fingerprint.matches(&mut t.file).unwrap_or(true));
        if truncated {
            // `meta` may predate the truncation (the contents were checked
            // after it was taken): what the file is now is what reading
            // from the start goes by. A stale, larger size would make the
            // next look take the file for truncated again and read it twice.
            let size = match t.file.metadata() {
                Ok(now) => {
                    t.last_size = now.len();
                    t.last_mtime = mtime(&now);
                    t.live.size.store(now.len(), Ordering::Relaxed);
                    now.len()
                }
                Err(_) => size,
            };
            info!(path = %t.path.display(), size, offset = t.read_offset, "File truncated; reading from the start.");
            self.drain_copy(t);
            // Without a copy to go on with it, the old contents' last event
            // is complete: sent before the new contents.
            if let Some(held) = self.pending_batch(t) {
                t.held = Some(held);
            }
            t.live.truncations.fetch_add(1, Ordering::Relaxed);
            t.live.position.store(0, Ordering::Relaxed);
            t.splitter.reset();
            t.read_offset = 0;
            t.line_offset = 0;
            t.sent_offset = 0;
            t.window.clear();
            t.edge.clear();
            if t.file.seek(SeekFrom::Start(0)).is_err() {
                return;
            }
            t.fingerprint = Fingerprint::of(&mut t.file, size)
                .ok()
                .flatten()
                .unwrap_or(Fingerprint { len: 0, crc: 0 });
            // A new generation: commits still in flight for the old
            // contents must not move the new one.
            t.id = FileId(self.next_id);
            self.next_id += 1;
            t.live.id.store(t.id.0, Ordering::Relaxed);
            lock(&self.shared.ledger).open(
                t.id,
                Position {
                    path: t.path.clone(),
                    key: t.key,
                    fingerprint: t.fingerprint,
                    offset: 0,
                    born: t.born,
                },
            );
        } else if t.fingerprint.len < FINGERPRINT_BYTES
            && size > t.fingerprint.len
            && let Ok(Some(fp)) = Fingerprint::of(&mut t.file, size)
        {
            t.fingerprint = fp;
            lock(&self.shared.ledger).refingerprint(t.id, fp);
        }
    }

    /// copytruncate copies the file, then truncates it: lines written after
    /// the last read and before the copy are only in the copy. Find it
    /// beside the file (same first bytes, same bytes before our offset) and
    /// drain it from where reading stopped, as the same generation: batches
    /// still in flight commit to the copy's position, so a crash before they
    /// are delivered reads them again from the copy.
    fn drain_copy(&mut self, t: &mut Tracked) {
        if t.line_offset == 0 && t.fingerprint.len < FINGERPRINT_BYTES {
            // Not one whole line of it was handed out: its first bytes may
            // be part of a line only (`2026-12-01 1`), which the next
            // contents start with too. No copy can be told from any file.
            return;
        }
        let offset = t.line_offset;
        let start = offset - t.window.len() as u64;
        let found = find_beside(&t.path, |path, meta, file| {
            let key = identity(meta);
            if key == t.key || meta.len() <= offset || self.is_tracked(key) || self.is_own(path) {
                return false;
            }
            if !t.fingerprint.matches(file).unwrap_or(false) {
                return false;
            }
            let mut before = vec![0u8; t.window.len()];
            file.seek(SeekFrom::Start(start)).is_ok()
                && file.read_exact(&mut before).is_ok()
                && before == t.window
        });
        let Some((path, file, meta)) = found else {
            return;
        };
        info!(path = %path.display(), offset, "Draining the copy a copytruncate left.");
        let key = identity(&meta);
        let resume = Resume::Continue { id: t.id, offset };
        if let Some(mut copy) = self.track(path, key, file, &meta, t.source, resume) {
            mark_gone(&mut copy);
            // The copy goes on where the file stopped: with its pending
            // event, whose first line is in the copy too.
            copy.grouping = t.grouping.take();
            copy.sent_offset = t.sent_offset;
            t.grouping = Grouping::new(&self.cfg.sources[t.source]);
            self.files.insert(key, copy);
        }
    }

    /// The same while hydra was stopped: the saved position `p` names a file
    /// that is now truncated or rewritten. A file beside it with the saved
    /// first bytes and more than the saved offset is its copy: drained from
    /// the saved offset.
    fn drain_saved_copy(&mut self, p: &Position, source: usize) {
        if p.offset == 0 && p.fingerprint.len < FINGERPRINT_BYTES {
            // See `drain_copy`.
            return;
        }
        let found = find_beside(&p.path, |path, meta, file| {
            let key = identity(meta);
            key != p.key
                && meta.len() > p.offset
                && !self.is_tracked(key)
                && !self.is_own(path)
                && p.fingerprint.matches(file).unwrap_or(false)
        });
        let Some((path, file, meta)) = found else {
            return;
        };
        info!(path = %path.display(), offset = p.offset, "Draining the copy a copytruncate left while hydra was stopped.");
        let key = identity(&meta);
        // The copy is a file of its own now: a saved position of its own
        // would be stale.
        self.saved.remove(&key);
        if let Some(mut copy) = self.track(path, key, file, &meta, source, Resume::At(p.offset)) {
            mark_gone(&mut copy);
            self.files.insert(key, copy);
        }
    }

    /// Reads what is new in `t` and sends its lines. `Ok(true)` if there is
    /// more to read right away; `Err` if the consumer is gone or hydra is
    /// stopping.
    fn read(&mut self, t: &mut Tracked) -> Result<bool, ()> {
        let budget = self.cfg.read_buffer * 4;
        let mut read_now = 0;
        loop {
            // The open handle's size (fstat): cheap, right for renamed and
            // deleted files too, and it spares a quiet file both the read
            // and a buffer.
            let meta = t.file.metadata();
            let size = meta.as_ref().map_or(u64::MAX, Metadata::len);
            if (size < t.last_size || read_now > 0 && size != t.last_size)
                && let Ok(meta) = &meta
            {
                // Emptied since the last look (smaller), or changed while
                // this loop read it: emptied and written past the offset
                // between two reads, reading on would take the new contents
                // for the rest of the old ones. One small read of its first
                // bytes per chunk tells.
                self.check_truncation(t, meta);
            }
            if size > t.read_offset
                && !t.edge.is_empty()
                && let Ok(meta) = &meta
                && !edge_intact(&t.file, t.read_offset, &t.edge)
            {
                // Emptied and written past the offset since the last read,
                // too fast for the size to show it: the bytes before the
                // offset are not the ones read there. (A last size past any
                // makes the check below take it for truncated.)
                t.last_size = u64::MAX;
                self.check_truncation(t, meta);
            }
            // A truncation found just now (or while reading waited) left
            // the old contents' last event: out before the new contents.
            if let Some(held) = t.held.take() {
                self.send(held)?;
            }
            if size <= t.read_offset {
                t.splitter.release_if_empty();
                break;
            }
            let chunk = usize::try_from(size - t.read_offset)
                .unwrap_or(usize::MAX)
                .min(self.cfg.read_buffer);
            let buf = t.splitter.read_buf(chunk);
            let len = buf.len();
            buf.resize(len + chunk, 0);
            let n = match t.file.read(&mut buf[len..]) {
                Ok(n) => n,
                Err(e) => {
                    buf.truncate(len);
                    *lock(&t.live.error) = Some(e.to_string());
                    return Ok(false);
                }
            };
            buf.truncate(len + n);
            if n == 0 {
                break;
            }
            remember_edge(&mut t.edge, &buf[len..]);
            t.read_offset += n as u64;
            t.last_data = Instant::now();
            read_now += n;
            let split = t.splitter.split();
            self.emit(t, split)?;
            if read_now >= budget {
                return Ok(true);
            }
        }
        let rules = &self.cfg.sources[t.source];
        let flush_due = rules
            .partial_flush
            .is_some_and(|d| t.last_data.elapsed() >= d);
        let closing = t
            .gone_since
            .is_some_and(|s| s.elapsed() >= rules.rotate_wait);
        let event_due = t
            .grouping
            .as_ref()
            .is_some_and(|g| t.last_data.elapsed() >= g.flush_after());
        if t.splitter.pending() > 0 && (flush_due || closing) {
            let split = t.splitter.flush();
            self.emit(t, split)?;
        }
        // A file that left its path and is read to its end has its last
        // event complete: emitted now, before the file that took its path
        // is read, not after `rotate_wait`.
        let rotated = t.gone_since.is_some();
        if t.grouping
            .as_ref()
            .is_some_and(|g| g.pending_since().is_some())
            && (event_due || closing || rotated)
        {
            self.emit_pending(t)?;
        }
        Ok(false)
    }

    /// Without a positions file, a pending multiline event would not be read
    /// again by the next run: it is handed out now, to a consumer that is
    /// still taking batches (one that is not gets a bounded wait). With
    /// positions, it is left uncommitted, and read again whole.
    fn emit_pending_at_stop(&mut self) {
        let keys: Vec<FileKey> = self.files.keys().copied().collect();
        for key in keys {
            let Some(mut t) = self.files.remove(&key) else {
                continue;
            };
            let batches = [t.held.take(), self.pending_batch(&mut t)];
            for batch in batches.into_iter().flatten() {
                let _ = self.rt.block_on(self.tx.send_timeout(batch, FINAL_SEND));
            }
            self.files.insert(key, t);
        }
    }

    /// Hands out the pending multiline event of `t`.
    fn emit_pending(&mut self, t: &mut Tracked) -> Result<(), ()> {
        match self.pending_batch(t) {
            Some(batch) => self.send(batch),
            None => Ok(()),
        }
    }

    /// The batch of `t`'s pending multiline event, if there is one.
    fn pending_batch(&mut self, t: &mut Tracked) -> Option<Batch> {
        let g = t.grouping.as_mut()?;
        g.pending_since()?;
        let mut out = Grouped::default();
        g.flush(&mut out);
        let (lines, meta) = out.finish();
        self.batch(t, lines, meta, t.line_offset)
    }

    /// A batch of `lines` ending at `end`, recorded with the ledger; `None`
    /// when it would hand out nothing (no line, no progress).
    fn batch(
        &mut self,
        t: &mut Tracked,
        lines: Lines,
        meta: Vec<LineMeta>,
        end: u64,
    ) -> Option<Batch> {
        if lines.is_empty() && end <= t.sent_offset {
            return None;
        }
        t.sent_offset = end;
        lock(&self.shared.ledger).emitted(t.id, end);
        Some(Batch {
            file: t.id,
            path: t.path.clone(),
            source: t.source,
            lines,
            end_offset: end,
            read_at: SystemTime::now(),
            meta,
        })
    }

    fn emit(&mut self, t: &mut Tracked, split: Split) -> Result<(), ()> {
        if split.consumed == 0 {
            return Ok(());
        }
        let base = t.line_offset;
        t.line_offset += split.consumed;
        let raw = split.lines.raw();
        if raw.len() >= WINDOW {
            t.window.clear();
            t.window.extend_from_slice(&raw[raw.len() - WINDOW..]);
        } else {
            t.window.extend_from_slice(raw);
            let excess = t.window.len().saturating_sub(WINDOW);
            t.window.drain(..excess);
        }
        t.live.position.store(t.line_offset, Ordering::Relaxed);
        t.live
            .size
            .store(t.last_size.max(t.read_offset), Ordering::Relaxed);
        t.live
            .lines
            .fetch_add(split.lines.len() as u64, Ordering::Relaxed);
        t.live
            .long_lines
            .fetch_add(split.long_lines, Ordering::Relaxed);
        if split.long_lines > 0 {
            warn!(path = %t.path.display(), count = split.long_lines, limit = self.cfg.sources[t.source].max_line_bytes, "Line longer than the limit.");
        }
        if t.fingerprint.len < FINGERPRINT_BYTES
            && t.line_offset > t.fingerprint.len
            && let Ok(Some(fp)) = Fingerprint::of(&mut t.file, t.line_offset)
        {
            // A saved position must name its file by at least the bytes
            // before it: a fingerprint of fewer bytes would let a new file
            // that reuses the inode resume past its own first lines.
            t.fingerprint = fp;
            lock(&self.shared.ledger).refingerprint(t.id, fp);
        }
        let (lines, meta, end) = match t.grouping.as_mut() {
            None => (split.lines, Vec::new(), t.line_offset),
            Some(g) => {
                let mut out = Grouped::default();
                for (at, line) in split.lines.iter_at() {
                    g.push(line, base + at, &mut out);
                }
                t.live.multiline_cuts.store(g.cuts(), Ordering::Relaxed);
                let (lines, meta) = out.finish();
                // Up to the first line held back: a crash or a restart
                // reads it again whole.
                (lines, meta, g.pending_since().unwrap_or(t.line_offset))
            }
        };
        match self.batch(t, lines, meta, end) {
            Some(batch) => self.send(batch),
            None => Ok(()),
        }
    }

    /// Sends a batch, waiting while the channel is full (backpressure), but
    /// not past a stop request. While it waits, paths are still looked
    /// after: a file created and rotated away during a long wait is opened
    /// (not read) so its lines can be read later through its handle.
    fn send(&mut self, mut batch: Batch) -> Result<(), ()> {
        use tokio::sync::mpsc::error::SendTimeoutError;
        loop {
            if self.stopping() {
                return Err(());
            }
            match self
                .rt
                .block_on(self.tx.send_timeout(batch, BACKPRESSURE_LOOK))
            {
                Ok(()) => return Ok(()),
                Err(SendTimeoutError::Closed(_)) => return Err(()),
                Err(SendTimeoutError::Timeout(b)) => {
                    batch = b;
                    self.observe_paths();
                }
            }
        }
    }

    /// Follows path changes without reading: new files are opened and
    /// tracked, rotated ones marked. Used while reading waits.
    fn observe_paths(&mut self) {
        // Bounded, for the same reason as the gathering window: events may
        // arrive as fast as they are taken.
        for _ in 0..4096 {
            let Ok(hints) = self.wake.try_recv() else {
                break;
            };
            self.catch_renamed(&hints);
            self.follow_new(hints);
        }
        self.adopt_moved();
        let paths: Vec<PathBuf> = self.paths.keys().cloned().collect();
        for path in paths {
            self.poll_path(&path);
        }
        self.check_gone();
    }

    /// Files no path leads to are seen changing only through their handle:
    /// one emptied (copytruncate) since the last read is truncated now, and
    /// its copy found, before anything is saved.
    fn check_gone(&mut self) {
        let gone: Vec<FileKey> = self
            .files
            .iter()
            .filter(|(_, t)| t.gone_since.is_some())
            .map(|(k, _)| *k)
            .collect();
        for key in gone {
            if let Some(mut t) = self.files.remove(&key) {
                if let Ok(meta) = t.file.metadata() {
                    self.check_truncation(&mut t, &meta);
                }
                self.files.insert(key, t);
            }
        }
    }

    fn close(&mut self, t: Tracked) {
        debug!(path = %t.path.display(), "Done with a rotated file.");
        // Kept a moment (see `adopt_moved`): a rename event still on its way
        // may name it.
        self.closed.insert(t.key, Instant::now());
        lock(&self.shared.ledger).close(t.id, t.line_offset);
        let mut files = lock(&self.shared.files);
        if files.get(&t.key).is_some_and(|l| Arc::ptr_eq(l, &t.live)) {
            files.remove(&t.key);
        }
        // Dropping the handle is what frees a deleted file's disk space.
        drop(t);
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

fn mark_gone(t: &mut Tracked) {
    if t.gone_since.is_none() {
        debug!(path = %t.path.display(), "File rotated or removed; draining it.");
        t.gone_since = Some(Instant::now());
        t.live.rotations.fetch_add(1, Ordering::Relaxed);
        t.live.rotated.store(true, Ordering::Relaxed);
    }
}

/// The offset just after the last newline before `size` (within 64 KiB), so
/// starting at a file's end never starts in the middle of a line.
fn line_start_before(file: &mut File, size: u64) -> u64 {
    let window = size.min(64 << 10);
    let mut buf = vec![0u8; usize::try_from(window).unwrap_or(0)];
    if file.seek(SeekFrom::Start(size - window)).is_err() || file.read_exact(&mut buf).is_err() {
        return size;
    }
    match memchr::memrchr(b'\n', &buf) {
        Some(i) => size - window + i as u64 + 1,
        None if window == size => 0,
        None => size,
    }
}

pub(crate) fn committer(shared: &Shared) -> Committer {
    Committer {
        ledger: shared.ledger.clone(),
    }
}
