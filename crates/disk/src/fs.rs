//! The file layer: every effect the store has on the disk goes through
//! [`Fs`], so tests can swap in [`crate::sim::SimFs`], which fails or
//! "crashes" at any call and tears unsynced writes.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A file being written: appended to, synced, cut back.
pub trait WriteFile: Send + Sync {
    /// Appends all of `bytes`, or fails having written a part at most.
    fn write_all(&self, bytes: &[u8]) -> io::Result<()>;
    /// Makes what was written durable (fdatasync).
    fn sync(&self) -> io::Result<()>;
    /// Cuts the file back to `len` bytes (after a write that failed).
    fn set_len(&self, len: u64) -> io::Result<()>;
}

/// The calls the store makes on the disk.
pub trait Fs: Send + Sync {
    /// Creates `dir` and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The names of the entries of `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// A new file at `path`, for appending; fails if it exists.
    fn create(&self, path: &Path) -> io::Result<Arc<dyn WriteFile>>;
    /// An existing file, for appending at its end.
    fn append(&self, path: &Path) -> io::Result<Arc<dyn WriteFile>>;
    /// All of a file's bytes.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Writes a whole new file and makes it durable (for files set aside).
    fn write_new(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Renames `from` to `to`, replacing it.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes `dir`'s entries durable (files created, renamed or removed).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

struct RealFile(File);

impl WriteFile for RealFile {
    fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        (&self.0).write_all(bytes)
    }

    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

impl Fs for RealFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect()
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn WriteFile>> {
        let f = std::fs::OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        Ok(Arc::new(RealFile(f)))
    }

    fn append(&self, path: &Path) -> io::Result<Arc<dyn WriteFile>> {
        let f = std::fs::OpenOptions::new().append(true).open(path)?;
        Ok(Arc::new(RealFile(f)))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn write_new(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let f = self.create(path)?;
        f.write_all(bytes)?;
        f.sync()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// The buffer directory's parts.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `DIR`: the chunk files and the lock.
    pub dir: PathBuf,
}

impl Layout {
    /// The parts of `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Layout {
        Layout { dir: dir.into() }
    }

    /// `DIR/lock`: held by the hydra that writes the buffer.
    pub fn lock(&self) -> PathBuf {
        self.dir.join("lock")
    }

    /// `DIR/dead/`: chunks every server refused.
    pub fn dead(&self) -> PathBuf {
        self.dir.join("dead")
    }

    /// `DIR/corrupt/`: damaged records, set aside.
    pub fn corrupt(&self) -> PathBuf {
        self.dir.join("corrupt")
    }

    /// A chunk file.
    pub fn chunk(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}
