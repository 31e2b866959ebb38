//! Reading a buffer directory without changing it, as `hydra buffer check`
//! and `hydra buffer dump` do, safely while a hydra writes it: the record
//! being written (a partial record at the end of a file) is not damage.

use std::path::{Path, PathBuf};

use crate::Error;
use crate::format::{self, Tail};
use crate::fs::Fs;

/// One chunk file as it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkReport {
    /// The file.
    pub path: PathBuf,
    /// Its sequence number, from its name.
    pub seq: u64,
    /// Its chunk id, from its name.
    pub id: String,
    /// Its records' tag.
    pub tag: Option<String>,
    /// The file's bytes.
    pub bytes: u64,
    /// Events in its whole records.
    pub events: u64,
    /// Its whole records.
    pub records: usize,
    /// When it was created (seconds since the epoch), if its header says.
    pub created: Option<u64>,
    /// Damaged ranges: offset and length.
    pub damaged: Vec<(usize, usize)>,
    /// Bytes at its end that are no record and no record's start.
    pub garbage_tail: Option<(usize, usize)>,
}

impl ChunkReport {
    /// Whether anything in it is damaged.
    pub fn is_damaged(&self) -> bool {
        !self.damaged.is_empty() || self.garbage_tail.is_some()
    }
}

/// A buffer directory as it reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The chunk files, in order.
    pub chunks: Vec<ChunkReport>,
    /// Files that are not the buffer's.
    pub strays: Vec<String>,
}

impl Report {
    /// Events in every chunk.
    pub fn events(&self) -> u64 {
        self.chunks.iter().map(|c| c.events).sum()
    }

    /// Bytes of every chunk file.
    pub fn bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.bytes).sum()
    }

    /// When the oldest chunk was created.
    pub fn oldest(&self) -> Option<u64> {
        self.chunks.iter().filter_map(|c| c.created).min()
    }

    /// Whether any chunk is damaged.
    pub fn is_damaged(&self) -> bool {
        self.chunks.iter().any(ChunkReport::is_damaged)
    }
}

/// A chunk file: its sequence number, id and name.
pub type ChunkFile = (u64, String, String);

/// The chunk files of `dir`, in order; and the names that are not chunks.
pub fn chunk_files(fs: &dyn Fs, dir: &Path) -> Result<(Vec<ChunkFile>, Vec<String>), Error> {
    let names = fs.list(dir).map_err(|source| Error::Dir {
        dir: dir.to_owned(),
        source,
    })?;
    let mut chunks = Vec::new();
    let mut strays = Vec::new();
    for name in names {
        match format::parse_name(&name) {
            Some((seq, id)) => chunks.push((seq, id, name)),
            None if ["lock", "dead", "corrupt"].contains(&name.as_str()) => {}
            None => strays.push(name),
        }
    }
    chunks.sort();
    Ok((chunks, strays))
}

/// Reads every chunk file of `dir`. A file that vanished meanwhile (a
/// chunk delivered) is skipped; one that cannot be read fails the check.
pub fn inspect(fs: &dyn Fs, dir: &Path) -> Result<Report, Error> {
    let (chunks, strays) = chunk_files(fs, dir)?;
    let mut report = Report {
        strays,
        ..Report::default()
    };
    for (seq, id, name) in chunks {
        let path = dir.join(&name);
        let data = match fs.read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(Error::Read { path, source }),
        };
        let scan = format::scan(&data);
        let garbage_tail = match scan.tail {
            Tail::Garbage { offset } => Some((offset, data.len() - offset)),
            Tail::Clean | Tail::Partial { .. } => None,
        };
        report.chunks.push(ChunkReport {
            path,
            seq,
            id,
            tag: scan.records.first().map(|r| r.tag.clone()),
            bytes: data.len() as u64,
            events: scan.records.iter().map(|r| u64::from(r.events)).sum(),
            records: scan.records.len(),
            created: format::created(&data),
            damaged: scan.damaged.iter().map(|d| (d.offset, d.len)).collect(),
            garbage_tail,
        });
    }
    Ok(report)
}
