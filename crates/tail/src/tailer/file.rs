//! One open file: reading what is new, splitting it into lines (and
//! events), and handing batches out with backpressure.

use std::fs::{File, Metadata};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use tracing::{debug, warn};

use super::Engine;
use super::handout::send_within;
use super::live::{Live, lock};
use crate::Batch;
use crate::LineMeta;
use crate::checkpoint::{FINGERPRINT_BYTES, FileId, FileKey, Fingerprint};
use crate::events::{Grouped, Grouping};
use crate::lines::{LineSplitter, Lines, Split};

/// One open file.
/// Why a file stopped being read before its end: nothing more can be
/// handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Halt {
    /// A stop was asked for.
    Stopping,
    /// The consumer let go of its end of the channel.
    Closed,
}

pub(super) struct Tracked {
    pub(super) id: FileId,
    pub(super) key: FileKey,
    pub(super) file: File,
    pub(super) path: PathBuf,
    pub(super) source: usize,
    pub(super) splitter: LineSplitter,
    /// The source's container format and multiline rules at work on this
    /// file.
    pub(super) grouping: Option<Grouping>,
    /// The end offset of the last batch handed out. Behind `line_offset`
    /// while a multiline event is pending.
    pub(super) sent_offset: u64,
    /// The last event of contents a truncation replaced, sent before the
    /// new contents' lines.
    pub(super) held: Option<Batch>,
    /// Where the file cursor is: bytes read so far.
    pub(super) read_offset: u64,
    /// Offset just past the last line handed out: where a restart resumes.
    pub(super) line_offset: u64,
    pub(super) fingerprint: Fingerprint,
    /// Its birth time, kept with its positions (see [`Position::born`]).
    pub(super) born: Option<u64>,
    /// When it stopped being at any followed path (renamed away or deleted).
    pub(super) gone_since: Option<Instant>,
    /// Last time bytes arrived, for the partial-line flush timeout.
    pub(super) last_data: Instant,
    pub(super) last_size: u64,
    /// Modification time at the last check, in nanoseconds.
    pub(super) last_mtime: i128,
    /// The first bytes of the contents a truncation replaced: their copy
    /// is no copy of these (see `copies`).
    pub(super) previous: Option<Fingerprint>,
    /// The last bytes handed out, ending at `line_offset`: recognizes the
    /// copy that copytruncate leaves.
    pub(super) window: Vec<u8>,
    /// The last bytes read, ending at `read_offset` (at most [`EDGE`]):
    /// still there at the next read unless the file was rewritten.
    pub(super) edge: Vec<u8>,
    /// The last read stopped at its budget with more to read.
    pub(super) more: bool,
    pub(super) live: Arc<Live>,
}

/// While reading waits on a full channel, how often paths are looked after
/// and a stop request noticed.
pub(super) const BACKPRESSURE_LOOK: Duration = Duration::from_millis(50);

/// The longest a stopping tailer waits to hand out a last pending
/// multiline event.
pub(super) const FINAL_SEND: Duration = Duration::from_secs(2);

/// Bytes kept in [`Tracked::edge`].
pub(super) const EDGE: usize = 16;

/// Whether the bytes of `file` just before `offset` are still `edge`.
pub(super) fn edge_intact(file: &File, offset: u64, edge: &[u8]) -> bool {
    use std::os::unix::fs::FileExt;
    let mut now = [0u8; EDGE];
    let now = &mut now[..edge.len()];
    // A read error is not taken for a rewrite: the read that follows
    // reports it.
    offset
        .checked_sub(edge.len() as u64)
        .is_none_or(|at| file.read_exact_at(now, at).map_or(true, |()| now == edge))
}

/// Whether `got`, read at `start` for `asked` bytes the file's size
/// promised, may not be the file read so far (`edge`, `fingerprint`): the file
/// shrank since its size was taken (a short read), the bytes before the
/// offset changed, or the first bytes no longer match its fingerprint. Any
/// of these means it was emptied since; a file only ever grows otherwise.
fn torn(
    file: &File,
    start: u64,
    edge: &[u8],
    fingerprint: &Fingerprint,
    asked: usize,
    got: &[u8],
) -> bool {
    if got.len() < asked
        && file
            .metadata()
            .is_ok_and(|m| m.len() < start + asked as u64)
    {
        return true;
    }
    if !edge.is_empty() && !edge_intact(file, start, edge) {
        return true;
    }
    if start < fingerprint.len {
        let intact = if start == 0 {
            fingerprint.matches_prefix(got)
        } else {
            None
        };
        return !intact.unwrap_or_else(|| fingerprint.matches(file).unwrap_or(true));
    }
    false
}

/// Keeps the last [`EDGE`] bytes of what was read, `new` last.
pub(super) fn remember_edge(edge: &mut Vec<u8>, new: &[u8]) {
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
pub(super) const WINDOW: usize = 256;

pub(super) fn mtime(meta: &Metadata) -> i128 {
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

/// The file's identity, following symlinks.
pub(crate) fn identity(meta: &Metadata) -> FileKey {
    FileKey {
        dev: meta.dev(),
        ino: meta.ino(),
    }
}

pub(super) fn mark_gone(t: &mut Tracked) {
    if t.gone_since.is_none() {
        debug!(path = %t.path.display(), "File rotated or removed; draining it.");
        t.gone_since = Some(Instant::now());
        t.live.rotations.fetch_add(1, Ordering::Relaxed);
        t.live.rotated.store(true, Ordering::Relaxed);
    }
}

/// The offset just after the last newline before `size` (within 64 KiB), so
/// starting at a file's end never starts in the middle of a line.
pub(super) fn line_start_before(file: &mut File, size: u64) -> u64 {
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

impl Engine {
    /// Reads what is new in `t` and sends its lines. `Ok(true)` if there is
    /// more to read right away.
    pub(super) fn read(&mut self, t: &mut Tracked) -> Result<bool, Halt> {
        let budget = self.cfg.read_buffer * 4;
        let mut read_now = 0;
        loop {
            // The open handle's size (fstat): cheap, right for renamed and
            // deleted files too, and it spares a quiet file both the read
            // and a buffer.
            let meta = t.file.metadata();
            let size = meta.as_ref().map_or(u64::MAX, Metadata::len);
            if let Ok(meta) = &meta
                && (size != t.last_size || mtime(meta) != t.last_mtime)
            {
                // Changed since the last look (at its path, or here):
                // emptied (smaller), or emptied and written past the
                // offset, when reading on would take the new contents for
                // the rest of the old ones. One small read of its first
                // bytes tells.
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
            if torn(
                &t.file,
                t.read_offset,
                &t.edge,
                &t.fingerprint,
                chunk,
                &buf[len..],
            ) {
                // Emptied (and perhaps written again) since the look at its
                // size, before or while this read ran: what it returned may
                // be the new contents read at the old offset. Not handed
                // out: read again as the new contents, from their start. (A
                // last size past any makes the check take it for
                // truncated.)
                buf.truncate(len);
                read_now += n;
                t.last_size = u64::MAX;
                if let Ok(meta) = t.file.metadata() {
                    self.check_truncation(t, &meta);
                }
                if read_now >= budget {
                    return Ok(true);
                }
                continue;
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
            if t.read_offset >= size && t.gone_since.is_none() {
                // All the look found is read. What was written since comes
                // with an event of its own, or the next look. Not so for a
                // file that left its path: writers still finishing with it
                // raise no event hydra follows, and it is let go once a
                // read finds nothing more, so it is read to its very end.
                break;
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
    pub(super) fn emit_pending_at_stop(&mut self) {
        let keys: Vec<FileKey> = self.files.keys().copied().collect();
        for key in keys {
            let Some(mut t) = self.files.remove(&key) else {
                continue;
            };
            let batches = [t.held.take(), self.pending_batch(&mut t)];
            self.pending.extend(batches.into_iter().flatten());
            self.files.insert(key, t);
        }
        if !self.pending.is_empty() {
            self.pending_bytes = 0;
            let _ = send_within(&self.tx, std::mem::take(&mut self.pending), FINAL_SEND);
        }
    }

    /// Hands out the pending multiline event of `t`.
    pub(super) fn emit_pending(&mut self, t: &mut Tracked) -> Result<(), Halt> {
        match self.pending_batch(t) {
            Some(batch) => self.send(batch),
            None => Ok(()),
        }
    }

    /// The batch of `t`'s pending multiline event, if there is one.
    pub(super) fn pending_batch(&mut self, t: &mut Tracked) -> Option<Batch> {
        let g = t.grouping.as_mut()?;
        g.pending_since()?;
        let mut out = Grouped::default();
        g.flush(&mut out);
        let (lines, meta) = out.finish();
        self.batch(t, lines, meta, t.line_offset)
    }

    /// A batch of `lines` ending at `end`, recorded with the ledger; `None`
    /// when it would hand out nothing (no line, no progress).
    pub(super) fn batch(
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

    pub(super) fn emit(&mut self, t: &mut Tracked, split: Split) -> Result<(), Halt> {
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
            && let Ok(Some(fp)) = Fingerprint::of(&t.file, t.line_offset)
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

    /// Queues a batch for the next handout; hands out at once what is
    /// queued when it reaches a read's worth of bytes, so the channel's
    /// bound (in handouts) still bounds memory as it did in batches.
    pub(super) fn send(&mut self, batch: Batch) -> Result<(), Halt> {
        let bytes = batch.lines.bytes() + BATCH_OVERHEAD;
        if !self.pending.is_empty() && self.pending_bytes + bytes > self.cfg.read_buffer {
            self.hand_out()?;
        }
        self.pending.push(batch);
        self.pending_bytes += bytes;
        if self.pending_bytes >= self.cfg.read_buffer {
            self.hand_out()?;
        }
        Ok(())
    }

    /// Sends the queued batches, waiting while the channel is full
    /// (backpressure), but not past a stop request: then they get the
    /// time a stop gives its last batches ([`FINAL_SEND`]). While it waits,
    /// paths are still looked after: a file created and rotated away during
    /// a long wait is opened (not read) so its lines can be read later
    /// through its handle.
    pub(super) fn hand_out(&mut self) -> Result<(), Halt> {
        use tokio::sync::mpsc::error::SendTimeoutError;
        if self.handing_out || self.pending.is_empty() {
            // Batches made while a handout waits go out after it, in the
            // order they were read.
            return Ok(());
        }
        let mut handout = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        self.handing_out = true;
        let sent = loop {
            if self.stopping() {
                // Read before the stop, so out if the consumer takes them
                // now. Dropped, they would be read again by the next run,
                // but only from a file it can still find: one emptied or
                // deleted meanwhile is found by the lines delivered from it
                // (its copy, its saved position), and these may be all of
                // them.
                let _ = send_within(&self.tx, handout, FINAL_SEND);
                break Err(Halt::Stopping);
            }
            match send_within(&self.tx, handout, BACKPRESSURE_LOOK) {
                Ok(()) => break Ok(()),
                Err(SendTimeoutError::Closed(_)) => break Err(Halt::Closed),
                Err(SendTimeoutError::Timeout(h)) => {
                    handout = h;
                    self.beat();
                    self.observe_paths();
                }
            }
        };
        self.handing_out = false;
        sent?;
        if self.pending_bytes >= self.cfg.read_buffer {
            self.hand_out()?;
        }
        Ok(())
    }
}

/// What a queued batch counts for besides its lines' bytes (its path and
/// bookkeeping), so many small batches still fill a handout.
const BATCH_OVERHEAD: usize = 128;

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn lines(from: u64, to: u64) -> Vec<u8> {
        (from..to)
            .flat_map(|n| format!("line {n}\n").into_bytes())
            .collect()
    }

    /// `path` emptied and written with `text`, as copytruncate and a
    /// writer do, through another handle than the reader's.
    fn rewrite(path: &std::path::Path, text: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .unwrap();
        f.write_all(text).unwrap();
    }

    /// A file holding lines `from..to`, open for reading, and its
    /// fingerprint.
    fn written(
        from: u64,
        to: u64,
    ) -> (
        tempfile::TempDir,
        std::path::PathBuf,
        Vec<u8>,
        File,
        Fingerprint,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let old = lines(from, to);
        std::fs::write(&path, &old).unwrap();
        let file = File::open(&path).unwrap();
        let fp = Fingerprint::of(&file, old.len() as u64).unwrap().unwrap();
        (dir, path, old, file, fp)
    }

    #[test]
    fn a_read_of_a_file_emptied_since_its_size_was_taken_is_torn() {
        let (_dir, path, old, file, fp) = written(0, 13);
        let asked = old.len();

        // Nothing changed: the read is the file's.
        assert!(!torn(&file, 0, &[], &fp, asked, &old));

        // Emptied and written shorter between the size and the read: the
        // read came back short, with the new lines.
        let new = lines(13, 21);
        rewrite(&path, &new);
        assert!(torn(&file, 0, &[], &fp, asked, &new));

        // Written longer than the size that was taken: a full read, but
        // not of the fingerprinted bytes.
        let new = lines(13, 40);
        rewrite(&path, &new);
        assert!(torn(&file, 0, &[], &fp, asked, &new[..asked]));
    }

    #[test]
    fn a_read_past_the_start_is_torn_when_the_bytes_before_it_changed() {
        let (_dir, path, old, file, fp) = written(0, 100);
        let start = 500usize;
        let mut edge = Vec::new();
        remember_edge(&mut edge, &old[..start]);
        let rest = &old[start..];

        assert!(!torn(&file, start as u64, &edge, &fp, rest.len(), rest));

        // Emptied and written past the offset: the size only grew.
        let new = lines(1000, 1200);
        rewrite(&path, &new);
        let got = &new[start..start + rest.len()];
        assert!(torn(&file, start as u64, &edge, &fp, rest.len(), got));
    }

    #[test]
    fn a_read_within_the_fingerprint_checks_the_file_itself() {
        let (_dir, path, old, file, fp) = written(0, 10);
        // A resume at a saved offset inside the fingerprinted bytes, with
        // no edge remembered yet.
        let start = 14usize;
        let rest = &old[start..];
        assert!((start as u64) < fp.len);
        assert!(!torn(&file, start as u64, &[], &fp, rest.len(), rest));

        let new = lines(50, 60);
        rewrite(&path, &new);
        let got = &new[start..start + rest.len()];
        assert!(torn(&file, start as u64, &[], &fp, rest.len(), got));
    }
}
