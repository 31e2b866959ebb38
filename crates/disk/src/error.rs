//! What the disk buffer can fail with.

use std::io;
use std::path::PathBuf;

/// What the disk buffer can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The buffer directory cannot be created, listed or locked.
    #[error("buffer directory {}", dir.display())]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Another process holds the buffer directory.
    #[error("buffer directory {} is in use by another hydra (pid {pid})", dir.display())]
    Locked {
        /// The directory.
        dir: PathBuf,
        /// The holder's pid, as its lock file says.
        pid: String,
    },
    /// The buffer holds `disk.max_bytes` already: the append waits for
    /// deliveries.
    #[error("the disk buffer is full ({max_bytes} bytes)")]
    Full {
        /// `disk.max_bytes`.
        max_bytes: u64,
    },
    /// A write, sync, or a file's creation failed (no room on the file
    /// system, a quota, an I/O error). Nothing half-written is kept as a
    /// record; the append can be tried again.
    #[error("writing {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A chunk file cannot be read.
    #[error("reading {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The buffer was closed.
    #[error("the disk buffer is closed")]
    Closed,
}
