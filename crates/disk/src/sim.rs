//! A simulated disk for crash tests: files and directory entries in
//! memory, with what was made durable kept apart from what was only
//! written. It can fail any call ([`SimFs::fail_at`]), run out of room
//! ([`SimFs::set_capacity`]), or stop as a machine does when it crashes
//! ([`SimFs::crash_before`]); [`SimFs::reboot`] then gives the disk as the
//! crash left it: each write not yet synced dropped, kept or torn, each
//! directory change not yet synced kept or lost, as a chooser decides.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::fs::{Fs, WriteFile};

/// A change to a file not yet synced.
#[derive(Debug, Clone)]
enum Change {
    Write { at: usize, bytes: Vec<u8> },
    SetLen(usize),
}

#[derive(Debug, Clone, Default)]
struct SimFile {
    /// What reads see.
    live: Vec<u8>,
    /// What a crash keeps for sure: the contents at the last sync.
    durable: Vec<u8>,
    /// Changes since, in order.
    pending: Vec<Change>,
}

/// A change to a directory's entries not yet synced.
#[derive(Debug, Clone)]
enum Entry {
    Add(PathBuf, u64),
    Remove(PathBuf),
}

#[derive(Debug, Default)]
struct State {
    files: HashMap<u64, SimFile>,
    next: u64,
    /// The entries reads see: path → file.
    live: BTreeMap<PathBuf, u64>,
    /// The entries a crash keeps for sure.
    durable: BTreeMap<PathBuf, u64>,
    /// Entry changes not yet synced, by directory, in order.
    pending: BTreeMap<PathBuf, Vec<Entry>>,
    dirs: Vec<PathBuf>,
    ops: u64,
    crash_at: Option<u64>,
    failures: HashMap<u64, io::ErrorKind>,
    /// Bytes of file contents the disk holds at most.
    capacity: Option<usize>,
}

/// The simulated disk. Cheap to clone: clones share it.
#[derive(Debug, Clone, Default)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

fn parent(path: &Path) -> PathBuf {
    path.parent().map(Path::to_owned).unwrap_or_default()
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

impl State {
    /// Counts an effectful call; fails it if a crash or a failure is due.
    fn op(&mut self) -> io::Result<()> {
        let n = self.ops;
        self.ops += 1;
        if self.crash_at.is_some_and(|at| n >= at) {
            return Err(io::Error::other("the simulated machine crashed"));
        }
        if let Some(kind) = self.failures.remove(&n) {
            return Err(io::Error::from(kind));
        }
        Ok(())
    }

    fn used(&self) -> usize {
        self.live
            .values()
            .filter_map(|id| self.files.get(id))
            .map(|f| f.live.len())
            .sum()
    }

    fn add_entry(&mut self, path: &Path, id: u64) {
        self.live.insert(path.to_owned(), id);
        self.pending
            .entry(parent(path))
            .or_default()
            .push(Entry::Add(path.to_owned(), id));
    }

    fn remove_entry(&mut self, path: &Path) -> Option<u64> {
        let id = self.live.remove(path)?;
        self.pending
            .entry(parent(path))
            .or_default()
            .push(Entry::Remove(path.to_owned()));
        Some(id)
    }
}

impl SimFs {
    /// An empty disk.
    pub fn new() -> SimFs {
        SimFs::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Effectful calls made so far (writes, syncs, creates, renames,
    /// removes, cuts).
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// From call `op` on (counted from 0), every call fails: the machine
    /// stopped.
    pub fn crash_before(&self, op: u64) {
        self.lock().crash_at = Some(op);
    }

    /// Call `op` fails once with `kind` (ENOSPC, EIO, EDQUOT: the
    /// `io::ErrorKind`s `StorageFull`, `Other`, `QuotaExceeded`).
    pub fn fail_at(&self, op: u64, kind: io::ErrorKind) {
        self.lock().failures.insert(op, kind);
    }

    /// At most `bytes` of file contents fit; a write past it writes what
    /// fits and fails with `StorageFull`. `None`: no limit.
    pub fn set_capacity(&self, bytes: Option<usize>) {
        self.lock().capacity = bytes;
    }

    /// The disk as a crash now leaves it. For each change not synced,
    /// `choose(n)` picks one of `n` fates (below `n`): for a write, 0 drops
    /// it, 1 keeps it, 2 and up tear it after that many bytes less 2 (its
    /// place, if a later write is kept, holding zeros); for a cut or a
    /// directory entry, 0 loses it and 1 keeps it.
    pub fn reboot(&self, choose: &mut dyn FnMut(usize) -> usize) -> SimFs {
        let s = self.lock();
        let mut entries = s.durable.clone();
        for changes in s.pending.values() {
            for change in changes {
                if choose(2) == 0 {
                    continue;
                }
                match change {
                    Entry::Add(path, id) => {
                        entries.insert(path.clone(), *id);
                    }
                    Entry::Remove(path) => {
                        entries.remove(path);
                    }
                }
            }
        }
        let mut files = HashMap::new();
        for id in entries.values() {
            let Some(f) = s.files.get(id) else { continue };
            let mut data = f.durable.clone();
            for change in &f.pending {
                match change {
                    Change::Write { at, bytes } => {
                        let keep = match choose(bytes.len() + 2) {
                            0 => 0,
                            1 => bytes.len(),
                            n => n - 2,
                        };
                        if keep > 0 {
                            if data.len() < at + keep {
                                data.resize(at + keep, 0);
                            }
                            data[*at..at + keep].copy_from_slice(&bytes[..keep]);
                        }
                    }
                    Change::SetLen(len) => {
                        if choose(2) == 1 {
                            data.resize(*len, 0);
                        }
                    }
                }
            }
            files.insert(
                *id,
                SimFile {
                    live: data.clone(),
                    durable: data,
                    pending: Vec::new(),
                },
            );
        }
        SimFs {
            state: Arc::new(Mutex::new(State {
                next: s.next,
                files,
                live: entries.clone(),
                durable: entries,
                dirs: s.dirs.clone(),
                ..State::default()
            })),
        }
    }

    /// A file's bytes as reads see them, for tests.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.lock();
        s.live
            .get(path)
            .and_then(|id| s.files.get(id))
            .map(|f| f.live.clone())
    }

    /// Replaces a file's bytes, durably, as damage does.
    pub fn set_contents(&self, path: &Path, bytes: Vec<u8>) {
        let mut s = self.lock();
        let id = match s.live.get(path) {
            Some(id) => *id,
            None => {
                let id = s.next;
                s.next += 1;
                s.live.insert(path.to_owned(), id);
                s.durable.insert(path.to_owned(), id);
                id
            }
        };
        s.files.insert(
            id,
            SimFile {
                live: bytes.clone(),
                durable: bytes,
                pending: Vec::new(),
            },
        );
    }

    /// The files a directory holds, for tests.
    pub fn names(&self, dir: &Path) -> Vec<String> {
        self.list(dir).unwrap_or_default()
    }
}

struct SimHandle {
    fs: SimFs,
    id: u64,
}

impl WriteFile for SimHandle {
    fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        let mut s = self.fs.lock();
        s.op()?;
        let room = s.capacity.map(|c| c.saturating_sub(s.used()));
        let f = s.files.get_mut(&self.id).ok_or_else(not_found)?;
        let n = room.map_or(bytes.len(), |r| r.min(bytes.len()));
        let at = f.live.len();
        f.live.extend_from_slice(&bytes[..n]);
        f.pending.push(Change::Write {
            at,
            bytes: bytes[..n].to_vec(),
        });
        if n < bytes.len() {
            return Err(io::Error::from(io::ErrorKind::StorageFull));
        }
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut s = self.fs.lock();
        s.op()?;
        let f = s.files.get_mut(&self.id).ok_or_else(not_found)?;
        f.durable = f.live.clone();
        f.pending.clear();
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut s = self.fs.lock();
        s.op()?;
        let f = s.files.get_mut(&self.id).ok_or_else(not_found)?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        f.live.resize(len, 0);
        f.pending.push(Change::SetLen(len));
        Ok(())
    }
}

impl Fs for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.lock();
        if !s.dirs.iter().any(|d| d == dir) {
            s.dirs.push(dir.to_owned());
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.lock();
        if !s.dirs.iter().any(|d| d == dir) {
            return Err(not_found());
        }
        let mut names: Vec<String> = s
            .live
            .keys()
            .filter(|p| parent(p) == dir)
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        names.extend(
            s.dirs
                .iter()
                .filter(|d| parent(d) == dir)
                .filter_map(|d| d.file_name().map(|n| n.to_string_lossy().into_owned())),
        );
        Ok(names)
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn WriteFile>> {
        let mut s = self.lock();
        s.op()?;
        if s.live.contains_key(path) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        let id = s.next;
        s.next += 1;
        s.files.insert(id, SimFile::default());
        s.add_entry(path, id);
        Ok(Arc::new(SimHandle {
            fs: self.clone(),
            id,
        }))
    }

    fn append(&self, path: &Path) -> io::Result<Arc<dyn WriteFile>> {
        let s = self.lock();
        let id = *s.live.get(path).ok_or_else(not_found)?;
        Ok(Arc::new(SimHandle {
            fs: self.clone(),
            id,
        }))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.contents(path).ok_or_else(not_found)
    }

    fn write_new(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let f = self.create(path)?;
        f.write_all(bytes)?;
        f.sync()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.op()?;
        let id = s.remove_entry(from).ok_or_else(not_found)?;
        s.remove_entry(to);
        s.add_entry(to, id);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.op()?;
        s.remove_entry(path).map(|_| ()).ok_or_else(not_found)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.op()?;
        for change in s.pending.remove(dir).unwrap_or_default() {
            match change {
                Entry::Add(path, id) => {
                    s.durable.insert(path, id);
                }
                Entry::Remove(path) => {
                    s.durable.remove(&path);
                }
            }
        }
        Ok(())
    }
}
