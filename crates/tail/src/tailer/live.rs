//! The counters of every open file, read by the monitor at any time, even
//! while the reading thread waits on a full channel.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use crate::checkpoint::{FileId, FileKey, Ledger};
use crate::{Committer, FileStats};

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
    /// Paths written to since the engine last looked: gathered here, not
    /// sent one event at a time (a writer makes one event per write).
    pub(crate) written: Mutex<HashSet<PathBuf>>,
    /// File events were lost: the engine looks at every path.
    pub(crate) rescan: AtomicBool,
    /// Turns of the reading loop (and of its waits on the consumer): a
    /// count that stops moving means the thread is wedged.
    pub(crate) beats: AtomicU64,
    /// The reading thread runs; false once it ended, panic or not.
    pub(crate) running: AtomicBool,
}

/// Whether the reading thread turns, for liveness checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pulse {
    /// Turns so far: it moves at least once a second while the thread
    /// runs.
    pub beats: u64,
    /// The thread ended without being asked to stop.
    pub died: bool,
    /// The last save of the positions file failed.
    pub positions_failing: bool,
}

impl Shared {
    pub(crate) fn pulse(&self) -> Pulse {
        Pulse {
            beats: self.beats.load(Ordering::Relaxed),
            died: !self.running.load(Ordering::Acquire) && !self.stop.load(Ordering::Acquire),
            positions_failing: lock(&self.positions_error).is_some(),
        }
    }
}

/// Marks the reading thread ended when dropped: at its return, and when a
/// panic unwinds it.
pub(crate) struct Running(pub(crate) Arc<Shared>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
    }
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

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn committer(shared: &Shared) -> Committer {
    Committer {
        ledger: shared.ledger.clone(),
    }
}
