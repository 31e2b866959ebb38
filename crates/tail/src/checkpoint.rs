//! The positions file and the commit path.
//!
//! A file's position advances only when the consumer commits an offset it
//! has delivered. The positions file is written to a temporary file,
//! fsynced, and renamed over the old one, so a crash leaves either the old
//! or the new positions, never a torn file.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::Error;

/// The positions file format version this build reads and writes.
pub const POSITIONS_VERSION: u32 = 1;

/// Bytes at the start of a file that make its fingerprint.
pub(crate) const FINGERPRINT_BYTES: u64 = FINGERPRINT_LEN as u64;
const FINGERPRINT_LEN: usize = 256;

/// A file's identity: device and inode. Paths change on rotation; these
/// don't.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileKey {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
}

/// A CRC of a file's first bytes. Catches an inode reused by another file,
/// and a file truncated and rewritten while hydra was not looking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// How many bytes were hashed (fewer than 256 while the
    /// file is that small).
    pub len: u64,
    /// CRC-32 of those bytes.
    pub crc: u32,
}

impl Fingerprint {
    /// Fingerprints the first `len` bytes of `file` (its current size, up to
    /// [`FINGERPRINT_BYTES`]). `None` if the file holds fewer than `len`.
    pub(crate) fn of(file: &File, len: u64) -> std::io::Result<Option<Self>> {
        let len = len.min(FINGERPRINT_BYTES);
        let mut buf = [0u8; FINGERPRINT_LEN];
        // Positioned reads: the file's cursor stays where reading left it,
        // and a look at a growing file costs one syscall, not four.
        let mut got = 0usize;
        let want = usize::try_from(len).unwrap_or(0);
        while got < want {
            match file.read_at(&mut buf[got..want], got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok((got == want).then(|| Fingerprint {
            len,
            crc: crc32fast::hash(&buf[..want]),
        }))
    }

    /// Whether `prefix` (a file's first bytes) starts with the bytes this
    /// fingerprint was made of; `None` if it is too short to tell.
    pub(crate) fn matches_prefix(&self, prefix: &[u8]) -> Option<bool> {
        let len = usize::try_from(self.len).ok()?;
        let bytes = prefix.get(..len)?;
        Some(crc32fast::hash(bytes) == self.crc)
    }

    /// Whether `file` still starts with the bytes this fingerprint was made of.
    pub(crate) fn matches(&self, file: &File) -> std::io::Result<bool> {
        Ok(Self::of(file, self.len)? == Some(*self))
    }
}

/// One file's saved position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The path the file was last seen at.
    pub path: PathBuf,
    /// Its identity.
    #[serde(flatten)]
    pub key: FileKey,
    /// Its first bytes, which tell it from a new file at the same inode.
    pub fingerprint: Fingerprint,
    /// Offset of the first byte not yet delivered; always a line start.
    pub offset: u64,
    /// The file's birth time, in nanoseconds since the epoch, where the
    /// file system keeps one. Part of its identity: a freed inode is soon
    /// given to a new file, which is born later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub born: Option<u64>,
    /// The first bytes of the contents a truncation replaced (read, or
    /// found read, before it): a copy of them beside the file is no copy of
    /// what it holds now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Fingerprint>,
}

impl Position {
    /// Whether the file `meta` describes can be the one this position
    /// names: born when it was, where both birth times are known.
    pub(crate) fn same_birth(&self, meta: &std::fs::Metadata) -> bool {
        match (self.born, born(meta)) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }
}

/// A file's birth time in nanoseconds since the epoch, if known.
pub(crate) fn born(meta: &std::fs::Metadata) -> Option<u64> {
    let since = meta
        .created()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    u64::try_from(since.as_nanos()).ok()
}

/// What a positions file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// The patterns followed when it was written. A file matching one of
    /// them and not in `files` appeared while hydra was stopped, and is read
    /// from its head. `None` (written by an older hydra): every pattern
    /// counts as followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
    /// The files and their committed offsets.
    pub files: Vec<Position>,
}

#[derive(Debug, Serialize, Deserialize)]
struct PositionsFile {
    version: u32,
    #[serde(flatten)]
    saved: Saved,
}

/// Reads a positions file. `None` if there is none (a first run); a newer
/// temporary file (a write that was interrupted before its rename) is
/// preferred when it parses.
pub fn load_positions(path: &Path) -> Result<Option<Saved>, Error> {
    let tmp = tmp_path(path);
    let read = |p: &Path| -> Result<Option<(std::time::SystemTime, Saved)>, Error> {
        let bytes = match fs::read(p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("reading positions", p, e)),
        };
        let modified = fs::metadata(p).and_then(|m| m.modified()).ok();
        let file: PositionsFile =
            serde_json::from_slice(&bytes).map_err(|source| Error::Positions {
                path: p.to_owned(),
                source,
            })?;
        if file.version != POSITIONS_VERSION {
            return Err(Error::PositionsVersion {
                path: p.to_owned(),
                version: file.version,
                supported: POSITIONS_VERSION,
            });
        }
        Ok(Some((
            modified.unwrap_or(std::time::UNIX_EPOCH),
            file.saved,
        )))
    };
    let main = read(path)?;
    // A torn temporary file is simply ignored.
    let tmp = read(&tmp).ok().flatten();
    Ok(match (main, tmp) {
        (Some((mt, m)), Some((tt, t))) => Some(if tt > mt { t } else { m }),
        (Some((_, m)), None) => Some(m),
        (None, Some((_, t))) => Some(t),
        (None, None) => None,
    })
}

/// Writes positions: temporary file, fsync, rename, fsync of the directory.
pub fn store_positions(path: &Path, saved: &Saved) -> Result<(), Error> {
    let tmp = tmp_path(path);
    let body = serde_json::to_vec_pretty(&PositionsFile {
        version: POSITIONS_VERSION,
        saved: saved.clone(),
    })
    .map_err(|source| Error::Positions {
        path: path.to_owned(),
        source,
    })?;
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(&body)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| Error::io("writing positions", path, e))
}

pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// A file generation: one file from the moment it is opened, or re-read
/// from the start after a truncation, until it is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub(crate) u64);

#[derive(Debug)]
struct Entry {
    position: Position,
    /// A later generation of the same file replaced this one (truncation):
    /// late commits for it are ignored.
    superseded: bool,
    /// Closed by the tailer; dropped once fully committed.
    closed_at: Option<u64>,
    /// End offsets of batches handed out and not yet committed, in order,
    /// with whether each was delivered. Deliveries can come back out of
    /// order (a retried chunk); the position only moves over a prefix that
    /// was delivered whole.
    pending: std::collections::VecDeque<(u64, bool)>,
}

/// Committed positions shared by the tailer and its consumer.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    entries: HashMap<FileId, Entry>,
    /// Positions loaded at start that no open file has claimed yet. They are
    /// saved as they were: stopping before every file was opened again must
    /// not forget them.
    carried: HashMap<FileKey, Position>,
    /// The patterns followed, saved beside the positions.
    sources: Vec<String>,
    dirty: bool,
}

impl Ledger {
    /// Positions loaded from the positions file.
    pub(crate) fn carry(&mut self, positions: impl IntoIterator<Item = Position>) {
        self.carried
            .extend(positions.into_iter().map(|p| (p.key, p)));
    }

    pub(crate) fn set_sources(&mut self, sources: Vec<String>) {
        self.sources = sources;
    }

    /// A loaded position whose file is gone for good.
    pub(crate) fn forget_carried(&mut self, key: FileKey) {
        if self.carried.remove(&key).is_some() {
            self.dirty = true;
        }
    }

    pub(crate) fn open(&mut self, id: FileId, position: Position) {
        self.carried.remove(&position.key);
        for e in self.entries.values_mut() {
            if e.position.key == position.key {
                e.superseded = true;
            }
        }
        self.gc();
        self.entries.insert(
            id,
            Entry {
                position,
                superseded: false,
                closed_at: None,
                pending: Default::default(),
            },
        );
        self.dirty = true;
    }

    pub(crate) fn rename(&mut self, id: FileId, path: &Path) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.position.path = path.to_owned();
            self.dirty = true;
        }
    }

    /// The rest of generation `id` is now read from another file: the copy
    /// that copytruncate left. Its commits still in flight go on moving
    /// this position, now the copy's.
    pub(crate) fn rekey(&mut self, id: FileId, key: FileKey, path: &Path, born: Option<u64>) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.position.key = key;
            e.position.path = path.to_owned();
            e.position.born = born;
            self.dirty = true;
        }
    }

    pub(crate) fn refingerprint(&mut self, id: FileId, fingerprint: Fingerprint) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.position.fingerprint = fingerprint;
            self.dirty = true;
        }
    }

    /// The tailer is done with `id`, whose last byte is at `end`.
    pub(crate) fn close(&mut self, id: FileId, end: u64) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.closed_at = Some(end);
        }
        self.gc();
    }

    /// A batch ending at `end` was handed out.
    pub(crate) fn emitted(&mut self, id: FileId, end: u64) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.pending.push_back((end, false));
        }
    }

    pub(crate) fn commit(&mut self, id: FileId, offset: u64) {
        if let Some(e) = self.entries.get_mut(&id)
            && !e.superseded
        {
            match e.pending.iter_mut().find(|(end, _)| *end == offset) {
                Some(slot) => slot.1 = true,
                // Not a batch boundary this tailer handed out (a caller
                // committing by hand): taken as is.
                None => e.pending.retain(|(end, _)| *end > offset),
            }
            let mut to = if e.pending.iter().any(|(end, _)| *end == offset) {
                None
            } else {
                Some(offset)
            };
            while let Some(&(end, true)) = e.pending.front() {
                e.pending.pop_front();
                to = Some(to.map_or(end, |t: u64| t.max(end)));
            }
            if let Some(to) = to
                && to > e.position.offset
            {
                e.position.offset = to;
                self.dirty = true;
            }
            // A commit can only finish this one file: checking it alone
            // keeps a commit O(1) however many files are followed.
            if e.closed_at.is_some_and(|end| e.position.offset >= end) {
                self.entries.remove(&id);
                self.dirty = true;
            }
        }
    }

    pub(crate) fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    pub(crate) fn committed(&self, id: FileId) -> Option<u64> {
        self.entries.get(&id).map(|e| e.position.offset)
    }

    /// Drops closed files once everything in them was delivered, and
    /// superseded generations.
    fn gc(&mut self) {
        let before = self.entries.len();
        self.entries
            .retain(|_, e| !e.superseded && e.closed_at.is_none_or(|end| e.position.offset < end));
        self.dirty |= self.entries.len() != before;
    }

    /// The positions to save, if anything changed since the last call.
    pub(crate) fn take_dirty(&mut self) -> Option<Saved> {
        if !std::mem::take(&mut self.dirty) {
            return None;
        }
        Some(self.snapshot())
    }

    /// Every committed position now.
    pub(crate) fn snapshot(&self) -> Saved {
        let mut v: Vec<_> = self
            .entries
            .values()
            .filter(|e| !e.superseded)
            .map(|e| e.position.clone())
            .chain(self.carried.values().cloned())
            .collect();
        v.sort_by(|a, b| a.path.cmp(&b.path).then(a.key.ino.cmp(&b.key.ino)));
        Saved {
            sources: Some(self.sources.clone()),
            files: v,
        }
    }
}

/// A handle the consumer uses to commit delivered offsets.
#[derive(Debug, Clone)]
pub struct Committer {
    pub(crate) ledger: Arc<Mutex<Ledger>>,
}

impl Committer {
    /// Everything in file `id` before `offset` was delivered. Offsets only
    /// move forward; commits for a truncated file's old contents are ignored.
    pub fn commit(&self, id: FileId, offset: u64) {
        self.ledger
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .commit(id, offset);
    }

    /// The committed offset of `id`, while it is tracked.
    pub fn committed(&self, id: FileId) -> Option<u64> {
        self.ledger
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .committed(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(ino: u64, offset: u64) -> Position {
        Position {
            path: PathBuf::from(format!("/var/log/{ino}.log")),
            key: FileKey { dev: 1, ino },
            fingerprint: Fingerprint { len: 10, crc: 7 },
            offset,
            born: None,
            previous: None,
        }
    }

    fn saved(files: Vec<Position>) -> Saved {
        Saved {
            sources: Some(vec!["/var/log/*.log".into()]),
            files,
        }
    }

    #[test]
    fn store_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("positions.json");
        assert_eq!(load_positions(&path).unwrap(), None);
        let both = saved(vec![pos(1, 10), pos(2, 20)]);
        store_positions(&path, &both).unwrap();
        assert_eq!(load_positions(&path).unwrap(), Some(both));
        assert!(!tmp_path(&path).exists());
    }

    #[test]
    fn a_torn_temporary_file_is_ignored_and_a_complete_newer_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("positions.json");
        store_positions(&path, &saved(vec![pos(1, 10)])).unwrap();
        fs::write(tmp_path(&path), b"{\"version\":1,\"fil").unwrap();
        assert_eq!(
            load_positions(&path).unwrap(),
            Some(saved(vec![pos(1, 10)]))
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        let newer = serde_json::to_vec(&PositionsFile {
            version: 1,
            saved: saved(vec![pos(1, 99)]),
        })
        .unwrap();
        fs::write(tmp_path(&path), newer).unwrap();
        assert_eq!(
            load_positions(&path).unwrap(),
            Some(saved(vec![pos(1, 99)]))
        );
    }

    #[test]
    fn a_file_written_before_sources_were_saved_counts_every_pattern_as_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("positions.json");
        fs::write(&path, br#"{"version":1,"files":[]}"#).unwrap();
        let loaded = load_positions(&path).unwrap().unwrap();
        assert_eq!(loaded.sources, None);
        assert!(loaded.files.is_empty());
    }

    #[test]
    fn unknown_versions_and_garbage_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("positions.json");
        fs::write(&path, b"{\"version\":9,\"files\":[]}").unwrap();
        let e = load_positions(&path).unwrap_err().to_string();
        assert!(e.contains("version 9"), "{e}");
        fs::write(&path, b"not json").unwrap();
        assert!(load_positions(&path).is_err());
    }

    #[test]
    fn commits_only_move_forward_and_superseded_generations_are_ignored() {
        let mut l = Ledger::default();
        l.open(FileId(1), pos(1, 0));
        l.commit(FileId(1), 50);
        l.commit(FileId(1), 40);
        assert_eq!(l.committed(FileId(1)), Some(50));
        // Truncated: generation 2 of the same file starts at 0.
        l.open(FileId(2), pos(1, 0));
        l.commit(FileId(1), 80);
        assert_eq!(l.take_dirty().unwrap().files, vec![pos(1, 0)]);
        // Closed files go once fully delivered.
        l.close(FileId(2), 30);
        l.commit(FileId(2), 29);
        assert_eq!(l.take_dirty().unwrap().files.len(), 1);
        l.commit(FileId(2), 30);
        assert_eq!(l.take_dirty().unwrap().files, vec![]);
    }

    #[test]
    fn loaded_positions_survive_a_save_before_their_files_are_opened() {
        let mut l = Ledger::default();
        l.carry([pos(7, 70)]);
        l.mark_dirty();
        assert_eq!(l.take_dirty().unwrap().files, vec![pos(7, 70)]);
        l.open(FileId(1), pos(7, 70));
        l.commit(FileId(1), 80);
        l.mark_dirty();
        assert_eq!(l.take_dirty().unwrap().files, vec![pos(7, 80)]);
        l.forget_carried(FileKey { dev: 1, ino: 9 });
    }

    #[test]
    fn out_of_order_deliveries_advance_only_over_a_delivered_prefix() {
        let mut l = Ledger::default();
        l.open(FileId(1), pos(1, 0));
        for end in [10, 20, 30, 40] {
            l.emitted(FileId(1), end);
        }
        // The chunk holding 20..30 was delivered first (the one before it
        // is being retried): nothing before 10 is known delivered... yet.
        l.commit(FileId(1), 30);
        assert_eq!(l.committed(FileId(1)), Some(0));
        l.commit(FileId(1), 10);
        assert_eq!(l.committed(FileId(1)), Some(10));
        l.commit(FileId(1), 20);
        assert_eq!(l.committed(FileId(1)), Some(30));
        l.commit(FileId(1), 40);
        assert_eq!(l.committed(FileId(1)), Some(40));
    }
}
