//! Following many log files the way `tail -F` does, without losing or
//! doubling a line across rotations, and remembering positions only for
//! lines the consumer says it delivered.
//!
//! - Paths and globs (`*`, `**`, `{a,b}`, and exclude patterns); a path that
//!   does not exist yet is waited for, and files matching later are picked
//!   up (at once through inotify, or within the refresh interval).
//! - Files are tracked by identity (device, inode) and a fingerprint of
//!   their first bytes, not by path: a renamed file is drained to its end
//!   through its open handle and closed after `rotate_wait`; a file smaller
//!   than what was read, or whose first bytes changed, was truncated and is
//!   read again from the start; a deleted file is drained and closed.
//! - Lines are split on `\n` with a bounded length; a last line without its
//!   newline is held until the newline arrives.
//! - Lines go out in [`Batch`]es through a bounded channel: when the
//!   consumer stops taking them, reading stops, and memory stays flat.
//! - [`Committer::commit`] advances a file's position; the positions file is
//!   written (tmp → fsync → rename) only with committed offsets.
//!
//! Reading happens on a thread of its own, never on an async runtime's
//! workers.
//!
//! # Example
//!
//! ```
//! use hydra_tail::{Source, TailConfig, Tailer};
//! # let dir = tempfile::tempdir()?;
//! # let log = dir.path().join("app.log");
//! # std::fs::write(&log, "first\nsecond\n")?;
//! let config = TailConfig {
//!     sources: vec![Source::new(log.to_str().unwrap()).read_from_head(true)],
//!     ..TailConfig::default()
//! };
//! let (tailer, mut batches) = Tailer::start(config)?;
//! let batch = batches.blocking_recv().expect("lines");
//! let lines: Vec<&[u8]> = batch.lines.iter().collect();
//! assert_eq!(lines, [&b"first"[..], b"second"]);
//! // Once the lines are safely delivered, their offset can be saved.
//! tailer.committer().commit(batch.file, batch.end_offset);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(clippy::too_many_lines)]

mod batches;
mod checkpoint;
mod discover;
mod error;
mod events;
mod lines;
pub mod multiline;
mod open;
mod restart;
mod tailer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

pub use batches::{Batches, TryRecvError};
pub use checkpoint::{
    Committer, FileId, FileKey, Fingerprint, POSITIONS_VERSION, Position, Saved, load_positions,
    store_positions,
};
pub use error::Error;
pub use events::group_lines;
pub use hydra_parse::container::{Container, Stream};
pub use lines::{Lines, LongLines};
pub use multiline::{Joiner, Multiline};
pub use tailer::Pulse;

/// Splits `input`, fed in pieces of `piece` bytes, as the tailer would, and
/// returns the lines and the bytes consumed (everything up to the last
/// newline). For fuzzing and for tests of the splitting rules.
pub fn split_lines(
    input: &[u8],
    piece: usize,
    max_line: usize,
    long_lines: LongLines,
    strip_cr: bool,
) -> (Vec<Vec<u8>>, u64) {
    let mut s = lines::LineSplitter::new(max_line, long_lines, strip_cr);
    let (mut out, mut consumed) = (Vec::new(), 0);
    for part in input.chunks(piece.max(1)) {
        s.read_buf(part.len()).extend_from_slice(part);
        let split = s.split();
        consumed += split.consumed;
        out.extend(split.lines.iter().map(<[u8]>::to_vec));
    }
    (out, consumed)
}

/// A group of paths and globs followed the same way (one tail input), with
/// the rules for splitting its files into lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Paths and glob patterns to follow.
    pub include: Vec<String>,
    /// Glob patterns to leave out. One without a `/` matches file names.
    pub exclude: Vec<String>,
    /// On the first run (no positions saved yet, or a source that was not
    /// followed when they were), read files already present from their
    /// beginning instead of their end. Files that appear later, and files
    /// that appeared or changed while hydra was stopped, are always read
    /// from the beginning.
    pub read_from_head: bool,
    /// Longest line kept whole, in bytes.
    pub max_line_bytes: usize,
    /// What happens to longer lines. Either way they are counted and the
    /// file goes on being read.
    pub long_lines: LongLines,
    /// Remove a `\r` before the `\n`.
    pub strip_cr: bool,
    /// Emit a last line that has no newline after this long without new
    /// data. `None`: hold it until its newline (or until the file is closed
    /// after a rotation).
    pub partial_flush: Option<Duration>,
    /// How long a rotated or deleted file is still read after it left its
    /// path, for writers that have not reopened yet.
    pub rotate_wait: Duration,
    /// Join lines into multiline events (stack traces). A batch then holds
    /// events, their lines joined with `\n`, and ends before the event
    /// still pending: its offset is committed only once the whole event
    /// is delivered.
    pub multiline: Option<Multiline>,
    /// The lines are a container runtime's: its envelope is taken off
    /// (the batch's `meta` keeps each event's runtime time and stream) and
    /// its partial lines joined, before multiline rules apply.
    pub container: Option<Container>,
}

impl Source {
    /// A source following one path or glob.
    pub fn new(pattern: &str) -> Self {
        Source {
            include: vec![pattern.to_owned()],
            exclude: Vec::new(),
            read_from_head: false,
            max_line_bytes: 256 << 10,
            long_lines: LongLines::Truncate,
            strip_cr: false,
            partial_flush: None,
            rotate_wait: Duration::from_secs(5),
            multiline: None,
            container: None,
        }
    }

    /// Sets [`Source::read_from_head`].
    pub fn read_from_head(mut self, yes: bool) -> Self {
        self.read_from_head = yes;
        self
    }
}

/// How to tail.
#[derive(Debug, Clone)]
pub struct TailConfig {
    /// What to follow. A [`Batch`] says which source its file belongs to by
    /// index; a file matching several sources belongs to the first.
    pub sources: Vec<Source>,
    /// How often globs are expanded again.
    pub refresh_interval: Duration,
    /// How often every file is checked with `stat`, whatever inotify says
    /// (inotify does not work on NFS and in some containers).
    pub poll_interval: Duration,
    /// Use inotify to notice changes at once.
    pub use_inotify: bool,
    /// Bytes per read, and so the most a [`Batch`] holds.
    pub read_buffer: usize,
    /// Handouts the channel holds before reading waits for the consumer.
    /// A handout is the batches of one look at the files, up to
    /// `read_buffer` bytes of lines (or one batch).
    pub channel_batches: usize,
    /// Where positions are saved; `None`: not saved.
    pub positions: Option<PathBuf>,
    /// How often positions are saved when they changed.
    pub checkpoint_interval: Duration,
    /// A fault for liveness tests: while this file exists, the reading
    /// thread stops turning, as a thread stuck in a read would.
    #[doc(hidden)]
    pub test_wedge: Option<PathBuf>,
}

impl Default for TailConfig {
    fn default() -> Self {
        TailConfig {
            sources: Vec::new(),
            refresh_interval: Duration::from_secs(5),
            poll_interval: Duration::from_secs(1),
            use_inotify: true,
            read_buffer: 256 << 10,
            channel_batches: 4,
            positions: None,
            // Short, so a crash repeats little: a write is a few hundred
            // bytes and one fsync, and happens only when positions moved.
            checkpoint_interval: Duration::from_millis(250),
            test_wedge: None,
        }
    }
}

/// Lines read from one file in one go.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The file generation the lines come from; commit with it.
    pub file: FileId,
    /// The file's path when it was read.
    pub path: PathBuf,
    /// Index of the [`Source`] the file belongs to.
    pub source: usize,
    /// The lines, without newlines.
    pub lines: Lines,
    /// The offset just after the last line: commit it once the lines are
    /// delivered. A batch can hold no line (an over-long line was skipped)
    /// and still move the offset.
    pub end_offset: u64,
    /// When the lines were read.
    pub read_at: SystemTime,
    /// For a container source, each line's runtime time and stream (one
    /// per line); empty otherwise.
    pub meta: Vec<LineMeta>,
}

/// What a container runtime said of a line besides the line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineMeta {
    /// When the runtime wrote it (of a joined line: its first piece).
    pub time: Option<hydra_forward::EventTime>,
    /// Where the container wrote it.
    pub stream: Stream,
}

/// What the tailer knows about one file or path.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FileStats {
    /// Where the file is now (its last path, for a rotated file).
    pub path: PathBuf,
    /// The file's inode (0 for a path that cannot be followed): tells two
    /// files that were at the same path apart.
    pub inode: u64,
    /// Index of its [`Source`].
    pub source: usize,
    /// Offset after the last line read.
    pub position: u64,
    /// Offset committed as delivered.
    pub committed: u64,
    /// The file's size when last checked.
    pub size: u64,
    /// Lines read.
    pub lines: u64,
    /// Lines cut or skipped for being too long.
    pub long_lines: u64,
    /// Times the file was found truncated.
    pub truncations: u64,
    /// Times the file left its path (rotated or deleted).
    pub rotations: u64,
    /// Multiline events cut at `max_lines` or `max_bytes`.
    pub multiline_cuts: u64,
    /// Renamed or deleted and being drained.
    pub rotated: bool,
    /// Why the path cannot be followed right now.
    pub error: Option<String>,
}

/// What a stopped tailer hands to the one that replaces it (a reload): its
/// committed positions and its open files. The next tailer resumes every
/// file where delivery stopped, including a rotated or deleted file that
/// no path leads to any more, so a reload neither skips nor repeats a line,
/// with or without a positions file.
#[derive(Debug, Default)]
pub struct Handoff {
    saved: Saved,
    files: Vec<(FileKey, std::fs::File)>,
}

impl Handoff {
    /// The committed positions handed over.
    pub fn positions(&self) -> &[Position] {
        &self.saved.files
    }
}

/// A running tailer. Dropping it stops reading and saves positions.
pub struct Tailer {
    shared: Arc<tailer::Shared>,
    thread: Option<JoinHandle<Vec<(FileKey, std::fs::File)>>>,
    /// The open files, once the reading thread is done with them.
    files: Vec<(FileKey, std::fs::File)>,
    positions: Option<PathBuf>,
    /// Stopped as by a crash: nothing more is saved.
    crashed: bool,
}

impl std::fmt::Debug for Tailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tailer")
            .field("positions", &self.positions)
            .finish_non_exhaustive()
    }
}

impl Tailer {
    /// Starts following `config.sources`. Fails on a bad pattern or an
    /// unreadable positions file; paths that cannot be read yet are
    /// reported in [`Tailer::stats`] and retried.
    pub fn start(config: TailConfig) -> Result<(Tailer, Batches), Error> {
        Self::start_after(config, &mut None)
    }

    /// Like [`Tailer::start`], taking over from a stopped tailer: its
    /// [`Handoff`] replaces what the positions file says. The handoff is
    /// taken only when the configuration is usable; after an error it is
    /// still in `handoff`.
    pub fn start_after(
        config: TailConfig,
        handoff: &mut Option<Handoff>,
    ) -> Result<(Tailer, Batches), Error> {
        for s in &config.sources {
            discover::Matcher::new(&s.include, &s.exclude)?;
        }
        let (tx, rx) = mpsc::channel(config.channel_batches.max(1));
        let (wake_tx, wake_rx) = std::sync::mpsc::channel();
        let shared = Arc::new(tailer::Shared {
            stop: AtomicBool::new(false),
            crashed: AtomicBool::new(false),
            ledger: Arc::default(),
            files: Mutex::default(),
            path_errors: Mutex::default(),
            positions_error: Mutex::default(),
            wake: Mutex::new(wake_tx),
            written: Mutex::default(),
            rescan: AtomicBool::new(false),
            beats: AtomicU64::new(0),
            running: AtomicBool::new(true),
        });
        let positions = config.positions.clone();
        let prior = match handoff.take() {
            Some(h) => Some((h.saved, h.files)),
            None => match &config.positions {
                Some(p) => load_positions(p)?.map(|s| (s, Vec::new())),
                None => None,
            },
        };
        let mut engine = tailer::Engine::new(config, tx, shared.clone(), wake_rx, prior)?;
        engine.prepare();
        let running = tailer::Running(shared.clone());
        let thread = std::thread::Builder::new()
            .name("hydra-tail".into())
            .spawn(move || {
                let _running = running;
                engine.run()
            })
            .map_err(Error::Thread)?;
        Ok((
            Tailer {
                shared,
                thread: Some(thread),
                files: Vec::new(),
                positions,
                crashed: false,
            },
            Batches::new(rx),
        ))
    }

    /// The handle to commit delivered offsets with.
    pub fn committer(&self) -> Committer {
        tailer::committer(&self.shared)
    }

    /// Open files and the paths that cannot be followed, as they are now.
    pub fn stats(&self) -> Vec<FileStats> {
        self.shared.stats()
    }

    /// A function returning [`Tailer::stats`] and the last error writing
    /// the positions file, usable after the tailer is gone.
    #[allow(clippy::type_complexity)]
    pub fn stats_fn(&self) -> Arc<dyn Fn() -> (Vec<FileStats>, Option<String>) + Send + Sync> {
        let shared = self.shared.clone();
        Arc::new(move || {
            let error = shared
                .positions_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            (shared.stats(), error)
        })
    }

    /// A function returning the reading thread's [`Pulse`], usable after
    /// the tailer is gone.
    pub fn pulse_fn(&self) -> Arc<dyn Fn() -> Pulse + Send + Sync> {
        let shared = self.shared.clone();
        Arc::new(move || shared.pulse())
    }

    /// Stops reading. Commits still work afterwards; [`Tailer::save`] writes
    /// them.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let _ = self
            .shared
            .wake
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(Vec::new());
        if let Some(t) = self.thread.take()
            && let Ok(files) = t.join()
        {
            self.files = files;
        }
    }

    /// Stops as a crash would: no positions are written from here on, so
    /// the positions file keeps what the last periodic save wrote. For
    /// tests of crash recovery.
    pub fn crash(mut self) {
        self.crashed = true;
        self.shared.crashed.store(true, Ordering::Release);
        self.stop();
    }

    /// Stops reading and hands the committed positions and the open files
    /// to the next tailer ([`Tailer::start_after`]). Positions are saved
    /// first, as at any stop.
    pub fn handoff(mut self) -> Handoff {
        self.stop();
        if let Err(e) = self.save() {
            tracing::warn!(error = %e, "Cannot save positions at a reload; they are handed over in memory.");
        }
        let saved = self
            .shared
            .ledger
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .snapshot();
        Handoff {
            saved,
            files: std::mem::take(&mut self.files),
        }
    }

    /// Writes the committed positions now.
    pub fn save(&self) -> Result<(), Error> {
        let Some(path) = &self.positions else {
            return Ok(());
        };
        if self.crashed {
            return Ok(());
        }
        let mut ledger = self
            .shared
            .ledger
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        ledger.mark_dirty();
        match ledger.take_dirty() {
            Some(p) => store_positions(path, &p),
            None => Ok(()),
        }
    }
}

impl Drop for Tailer {
    fn drop(&mut self) {
        self.stop();
        if let Err(e) = self.save() {
            tracing::warn!(error = %e, "Cannot save positions at shutdown.");
        }
    }
}
