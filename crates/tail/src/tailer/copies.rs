//! A copytruncate that no look at the file itself can see: hydra knew
//! fewer than [`FINGERPRINT_BYTES`] of the file's first bytes (it was
//! empty, or nearly, when last looked at), and it was copied, emptied and
//! written again between two looks. Its size only grew and its first
//! known bytes are still there, so the file looks merely appended to; the
//! lines written before the copy are only in the copy. The copy is what
//! gives it away: a file beside it, named after it, born after it, filled
//! since the last look, holding what the file held, and no longer what
//! the file holds.

use std::fs::{File, Metadata};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::Engine;
use super::file::{Tracked, identity, mtime};
use crate::checkpoint::born;
use crate::open::open_log;

/// The most first bytes compared to tell a copy from the file it was made
/// of.
const COMPARED: usize = 64 << 10;

/// The part of a file name that the names of its copies start with:
/// `app.log` → `app` (`app.log.1`, `app.log-20261206`, `app-1.log`).
fn stem(name: &str) -> &str {
    match name.split_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => name,
    }
}

/// Whether `copy` holds bytes that `file` no longer starts with: then
/// `file` was emptied after the copy was made. A file that was only
/// appended to still starts with every byte of any earlier copy of it.
fn diverged(copy: &File, copy_len: u64, file: &File) -> bool {
    let want = usize::try_from(copy_len)
        .unwrap_or(usize::MAX)
        .min(COMPARED);
    let (mut a, mut b) = (vec![0u8; want], vec![0u8; want]);
    if copy.read_exact_at(&mut a, 0).is_err() {
        return false;
    }
    match file.read_exact_at(&mut b, 0) {
        Ok(()) => a != b,
        // Shorter than the copy: emptied since.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => true,
        Err(_) => false,
    }
}

impl Engine {
    /// The copies of `t` that a copytruncate made since its last look, when
    /// hydra knows too little of its first bytes to see the truncation in
    /// the file itself. `since` is the file's modification time at that
    /// look: anything written to it later, and so any copy holding it, is
    /// modified no earlier (both times come from the file system's clock).
    /// Oldest first: the first holds the rest of what was read, the others
    /// whole generations written and copied since.
    pub(super) fn fresh_copies(&self, t: &Tracked, since: i128) -> Vec<(PathBuf, File, Metadata)> {
        let Some(dir) = t.path.parent() else {
            return Vec::new();
        };
        let Some(name) = t.path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let stem = stem(&name);
        let mut found = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let other = entry.file_name();
            let other = other.to_string_lossy();
            // Named first: a directory of many logs costs one listing.
            if other == name.as_str() || !other.starts_with(stem) {
                continue;
            }
            let path = entry.path();
            if let Some(copy) = self.copy_of(t, &path, since) {
                found.push(copy);
            }
        }
        found.sort_by_key(|(_, _, meta)| mtime(meta));
        found
    }

    /// `path` opened, if it is a copy of `t` made since its last look.
    fn copy_of(&self, t: &Tracked, path: &Path, since: i128) -> Option<(PathBuf, File, Metadata)> {
        let meta = std::fs::metadata(path).ok()?;
        let key = identity(&meta);
        let fresh = meta.is_file()
            && key != t.key
            && meta.len() > t.line_offset
            && !self.is_tracked(key)
            && !self.closed.contains_key(&key)
            && self.path_of(key).is_none()
            && !self.is_own(path)
            // Copied from the file, so made after it (a file renamed away
            // for a new one to take its path is older than the new one).
            && match (born(&meta), t.born) {
                (Some(copy), Some(file)) => copy >= file,
                _ => true,
            }
            && mtime(&meta) >= since;
        if !fresh {
            return None;
        }
        let file = open_log(path).ok()?;
        if !t.fingerprint.matches(&file).unwrap_or(false)
            // The copy of the contents before the last truncation, read
            // (or found read) then.
            || t.previous.is_some_and(|p| p.matches(&file).unwrap_or(true))
        {
            return None;
        }
        let start = t.line_offset.checked_sub(t.window.len() as u64)?;
        let mut before = vec![0u8; t.window.len()];
        let holds_what_was_read =
            file.read_exact_at(&mut before, start).is_ok() && before == t.window;
        (holds_what_was_read && diverged(&file, meta.len(), &t.file))
            .then(|| (path.to_owned(), file, meta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_named_after_the_stem() {
        assert_eq!(stem("app.log"), "app");
        assert_eq!(stem("app"), "app");
        assert_eq!(stem(".hidden"), ".hidden");
        assert_eq!(stem("web-1.access.log"), "web-1");
    }

    #[test]
    fn a_copy_diverges_only_once_the_file_was_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let (file, copy) = (dir.path().join("app.log"), dir.path().join("app.log.1"));
        std::fs::write(&file, b"line 0\nline 1\n").unwrap();
        std::fs::write(&copy, b"line 0\n").unwrap();
        let open = |p: &Path| File::open(p).unwrap();
        // Appended to since the copy: not emptied.
        assert!(!diverged(&open(&copy), 7, &open(&file)));
        // Emptied and written again.
        std::fs::write(&file, b"line 2\nline 3\n").unwrap();
        assert!(diverged(&open(&copy), 7, &open(&file)));
        // Emptied and not written again yet.
        std::fs::write(&file, b"").unwrap();
        assert!(diverged(&open(&copy), 7, &open(&file)));
    }
}
