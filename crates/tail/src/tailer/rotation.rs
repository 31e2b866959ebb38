//! Files that leave their path, are truncated, or are copied away
//! (copytruncate), while hydra runs and while it was stopped.

use std::fs::{File, Metadata};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::Engine;
use super::file::{Tracked, identity, mark_gone, mtime};
use super::live::lock;
use crate::checkpoint::{FINGERPRINT_BYTES, FileId, FileKey, Fingerprint, Position};
use crate::events::Grouping;
use crate::open::open_log;
use crate::restart::{Resume, find_beside};

/// How long a name that a file left a followed path for is still followed
/// through further renames.
pub(super) const MOVED_KEPT: Duration = Duration::from_secs(1);

impl Engine {
    /// Saved positions of files that are no longer at any followed path
    /// (rotated while hydra was down, or rotated or deleted and handed over
    /// by a reload): take the handed-over handle, or find the file beside
    /// its old path by identity and fingerprint, and drain it from the
    /// saved offset.
    pub(super) fn recover_rotated(&mut self) {
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
            let Some((path, file, meta)) = found else {
                // Deleted: a copy beside it (copytruncate, then removal) may
                // still hold what was not delivered.
                self.drain_saved_copy(&pos, source);
                continue;
            };
            let intact =
                pos.offset <= meta.len() && pos.fingerprint.matches(&file).unwrap_or(false);
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
                if !intact && pos.fingerprint.len > 0 {
                    t.previous = Some(pos.fingerprint);
                }
                mark_gone(&mut t);
                self.files.insert(pos.key, t);
            }
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
    pub(super) fn catch_renamed(&mut self, event: &[PathBuf]) {
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
    pub(super) fn adopt_moved(&mut self) {
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
    pub(super) fn gone(&mut self, key: Option<FileKey>) {
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
    pub(super) fn renamed_into(&self, t: &mut Tracked, path: &Path) {
        if t.path != path {
            t.path = path.to_owned();
            *lock(&t.live.path) = path.to_owned();
            lock(&self.shared.ledger).rename(t.id, path);
        }
        t.gone_since = None;
        t.live.rotated.store(false, Ordering::Relaxed);
    }

    /// A file smaller than what was read, or whose first bytes changed, was
    /// truncated (copytruncate) or rewritten: read it again from the start.
    pub(super) fn check_truncation(&mut self, t: &mut Tracked, meta: &Metadata) {
        let size = meta.len();
        // Truncated and rewritten to the same size between two polls
        // changes only the modification time.
        let changed = size != t.last_size || mtime(meta) != t.last_mtime;
        let previous_size = t.last_size;
        let previous_mtime = t.last_mtime;
        t.last_size = size;
        t.last_mtime = mtime(meta);
        t.live.size.store(size, Ordering::Relaxed);
        // A file shrinks only by truncation, even when its new contents
        // already reach past the read offset.
        let truncated = size < t.read_offset
            || size < previous_size
            || (changed && !t.fingerprint.matches(&t.file).unwrap_or(true));
        // Too little of it known to tell from the file: its copy tells.
        let copies = if !truncated && changed && t.fingerprint.len < FINGERPRINT_BYTES {
            self.fresh_copies(t, previous_mtime)
        } else {
            Vec::new()
        };
        if truncated || !copies.is_empty() {
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
            if copies.is_empty() {
                self.drain_copy(t);
            } else {
                self.drain_copies(t, copies);
            }
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
            t.previous = (t.fingerprint.len > 0).then_some(t.fingerprint);
            t.fingerprint = Fingerprint::of(&t.file, size)
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
                    previous: t.previous,
                },
            );
        } else if t.fingerprint.len < FINGERPRINT_BYTES
            && size > t.fingerprint.len
            && let Ok(Some(fp)) = Fingerprint::of(&t.file, size)
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
    pub(super) fn drain_copy(&mut self, t: &mut Tracked) {
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
        if let Some(found) = found {
            self.drain_copies(t, vec![found]);
        }
    }

    /// Drains `copies` of `t`, oldest first: the first from where reading
    /// stopped, as the same generation; any later one (the file was copied
    /// and emptied again before the next look) whole, as a generation of
    /// its own.
    pub(super) fn drain_copies(&mut self, t: &mut Tracked, copies: Vec<(PathBuf, File, Metadata)>) {
        for (i, (path, file, meta)) in copies.into_iter().enumerate() {
            let key = identity(&meta);
            let resume = if i == 0 {
                Resume::Continue {
                    id: t.id,
                    offset: t.line_offset,
                }
            } else {
                Resume::At(0)
            };
            info!(path = %path.display(), offset = t.line_offset, "Draining the copy a copytruncate left.");
            if let Some(mut copy) = self.track(path, key, file, &meta, t.source, resume) {
                mark_gone(&mut copy);
                if i == 0 {
                    // The copy goes on where the file stopped: with its
                    // pending event, whose first line is in the copy too.
                    copy.grouping = t.grouping.take();
                    copy.sent_offset = t.sent_offset;
                    t.grouping = Grouping::new(&self.cfg.sources[t.source]);
                }
                self.files.insert(key, copy);
            }
        }
    }

    /// The same while hydra was stopped: the saved position `p` names a file
    /// that is now truncated or rewritten. A file beside it with the saved
    /// first bytes and more than the saved offset is its copy: drained from
    /// the saved offset.
    pub(super) fn drain_saved_copy(&mut self, p: &Position, source: usize) {
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

    /// Files no path leads to are seen changing only through their handle:
    /// one emptied (copytruncate) since the last read is truncated now, and
    /// its copy found, before anything is saved.
    pub(super) fn check_gone(&mut self) {
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

    pub(super) fn close(&mut self, t: Tracked) {
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
}
