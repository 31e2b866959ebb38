//! The paths provider: which paths are followed, which file is at each,
//! and following a newly seen file from where the start-up rules say.

use std::collections::HashSet;
use std::fs::{File, Metadata};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tracing::{debug, info};

use super::file::{Halt, Tracked, identity, line_start_before, mark_gone, mtime};
use super::live::{Live, lock};
use super::{Engine, PathState};
use crate::checkpoint::{FileId, FileKey, Fingerprint, Position, born};
use crate::events::Grouping;
use crate::lines::LineSplitter;
use crate::open::open_log;
use crate::restart::Resume;

impl Engine {
    pub(super) fn discover(&mut self) {
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
                if let Some(w) = self.watcher.as_mut()
                    && !w.is_watched(&dir)
                    && dir.is_dir()
                    && let Err(e) = w.watch(&dir, recursive)
                {
                    debug!(dir = %dir.display(), error = %e, "Cannot watch directory; polling it.");
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

    /// The source a path belongs to (the first that matches), or the first.
    pub(super) fn source_of(&self, path: &Path) -> usize {
        self.matchers
            .iter()
            .position(|m| m.matches(path))
            .unwrap_or(0)
    }

    /// Checks `paths`, then reads: every open file when `all` (the periodic
    /// poll), otherwise only the files at `paths` and `written` (whose paths
    /// are not checked) and those draining or with more to read. Returns
    /// whether any file has more right away.
    pub(super) fn poll(&mut self, paths: &[PathBuf], written: &[PathBuf], all: bool) -> bool {
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
                .chain(written)
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
                // Stopping, or nobody takes batches: the loop sees which.
                Err(Halt::Stopping | Halt::Closed) => {
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

    pub(super) fn poll_path(&mut self, path: &Path) {
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

    /// Starts following a newly seen file.
    pub(super) fn track(
        &mut self,
        path: PathBuf,
        key: FileKey,
        mut file: File,
        meta: &Metadata,
        source: usize,
        resume: Resume,
    ) -> Option<Tracked> {
        let size = meta.len();
        // The first bytes of contents it held before, read (or found read)
        // already: their copy is no copy of its new contents.
        let mut previous = None;
        // The start-up rules of docs/tailing.md, row by row.
        let start = match resume {
            Resume::At(offset) | Resume::Continue { offset, .. } => offset,
            // A saved position for this inode but another birth time named
            // another file: this one appeared while hydra was stopped.
            Resume::Decide => match self.take_saved(key, meta) {
                Some(p) if p.offset <= size && p.fingerprint.matches(&file).unwrap_or(false) => {
                    debug!(path = %path.display(), offset = p.offset, "Resuming from the saved position.");
                    previous = p.previous;
                    p.offset
                }
                // Same identity, other contents: truncated (copytruncate),
                // rewritten, or a new file that reuses the inode, all while
                // hydra was stopped. Everything in it is new; the old
                // contents' undelivered rest may be in a copy beside it.
                Some(p) => {
                    info!(path = %path.display(), saved_offset = p.offset, size, "File changed while hydra was stopped; reading it from the start.");
                    self.drain_saved_copy(&p, source);
                    previous = (p.fingerprint.len > 0).then_some(p.fingerprint);
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
        let fingerprint = Fingerprint::of(&file, size).ok().flatten()?;
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
                        previous,
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
            previous,
            window: Vec::new(),
            edge: Vec::new(),
            more: false,
        })
    }

    /// Follows path changes without reading: new files are opened and
    /// tracked, rotated ones marked. Used while reading waits.
    pub(super) fn observe_paths(&mut self) {
        // Bounded, for the same reason as the gathering window: events may
        // arrive as fast as they are taken.
        for _ in 0..4096 {
            let Ok(hints) = self.wake.try_recv() else {
                break;
            };
            self.catch_renamed(&hints);
            self.follow_new(hints);
        }
        let written = std::mem::take(&mut *lock(&self.shared.written));
        self.follow_new(written);
        self.adopt_moved();
        let paths: Vec<PathBuf> = self.paths.keys().cloned().collect();
        for path in paths {
            self.poll_path(&path);
        }
        self.check_gone();
    }
}
