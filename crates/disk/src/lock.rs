//! One hydra per buffer directory: `DIR/lock`, locked (`flock`) for as
//! long as the buffer is open, holds the holder's pid. The lock goes with
//! the process, however it ends, so a crash never leaves it held.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::Error;

/// The held lock of a buffer directory; released when dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    dir: PathBuf,
}

impl DirLock {
    /// Locks `dir` (created if missing) for this process, or says who
    /// holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock, Error> {
        let fail = |source| Error::Dir {
            dir: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(fail)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("lock"))
            .map_err(fail)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(Error::Locked {
                    dir: dir.to_owned(),
                    pid: pid.trim().to_owned(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(fail(e)),
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(fail)?;
        Ok(DirLock {
            _file: file,
            dir: dir.to_owned(),
        })
    }

    /// The directory it locks.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        match DirLock::acquire(dir.path()) {
            Err(Error::Locked { pid, .. }) => assert_eq!(pid, std::process::id().to_string()),
            other => panic!("{other:?}"),
        }
        drop(first);
        assert!(DirLock::acquire(dir.path()).is_ok());
    }
}
