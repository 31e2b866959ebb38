//! What a tailer knows of the run before it, and how a file it opens
//! decides where to start reading. The rules are the table in
//! docs/tailing.md; `Engine::track` applies them.

use std::collections::HashSet;
use std::fs::{File, Metadata};
use std::path::{Path, PathBuf};

use crate::Source;
use crate::checkpoint::FileId;
use crate::open::open_log;

/// The run before this one, as its positions file or a reload's handoff
/// tells it.
#[derive(Debug)]
pub(crate) struct History {
    /// The patterns it followed; `None`: unknown (an older positions file),
    /// taken as every pattern.
    patterns: Option<HashSet<String>>,
}

impl History {
    pub(crate) fn new(patterns: Option<Vec<String>>) -> Self {
        History {
            patterns: patterns.map(|p| p.into_iter().collect()),
        }
    }

    /// Whether the last run followed `source`: then a file of it that the
    /// positions do not name appeared while hydra was stopped. A source
    /// added since is new: its files start as on a first run.
    pub(crate) fn followed(&self, source: &Source) -> bool {
        self.patterns
            .as_ref()
            .is_none_or(|p| source.include.iter().any(|i| p.contains(i)))
    }
}

/// Where a newly tracked file starts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Resume {
    /// By the start-up rules: saved position, head or end.
    Decide,
    /// At this offset, as a new generation.
    At(u64),
    /// At this offset, continuing generation `id`: the copy of a file that
    /// copytruncate emptied.
    Continue { id: FileId, offset: u64 },
}

/// The first regular file in `near`'s directory for which `is` holds,
/// opened: its path, handle and metadata.
pub(crate) fn find_beside(
    near: &Path,
    mut is: impl FnMut(&Path, &Metadata, &mut File) -> bool,
) -> Option<(PathBuf, File, Metadata)> {
    let dir = near.parent()?;
    let entries = std::fs::read_dir(dir).ok()?;
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let Ok(mut file) = open_log(&path) else {
            continue;
        };
        if is(&path, &meta, &mut file) {
            return Some((path, file, meta));
        }
    }
    None
}
