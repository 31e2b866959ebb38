//! Opening a buffer directory after a stop, a crash or damage. Whatever the
//! files hold, recovery ends, keeps every whole record, and never refuses:
//! - a chunk file's damaged records are copied to `corrupt/` and the file
//!   is rewritten without them (written aside, synced, renamed over), so
//!   the damage is counted once and every record after it is delivered;
//! - a torn tail (the last write cut by a crash) is cut off;
//! - a file with no whole record is removed;
//! - a file that is not the buffer's is left alone and counted.

use std::path::Path;

use tracing::{error, warn};

use crate::Error;
use crate::format::{self, HEADER_LEN, Header, Tail};
use crate::fs::{Fs, Layout};

/// A chunk found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its sequence number.
    pub seq: u64,
    /// Its chunk id.
    pub id: String,
    /// Its records' tag.
    pub tag: String,
    /// Its file's bytes, after recovery.
    pub bytes: u64,
    /// Events in its whole records.
    pub events: u64,
    /// When it was created, in seconds since the epoch (0 if its header
    /// was damaged).
    pub created: u64,
}

/// What recovery found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The chunks, in order.
    pub chunks: Vec<Found>,
    /// The sequence number the next chunk gets.
    pub next_seq: u64,
    /// Damaged records (and damaged headers) set aside under `corrupt/`.
    pub corrupt_records: u64,
    /// Files whose last record was cut short: cut back.
    pub torn_tails: u64,
    /// Files that are not the buffer's.
    pub stray_files: u64,
    /// Files with no whole record: removed.
    pub empty_files: u64,
}

/// Names in the buffer directory that are the buffer's but not chunks.
const OWN: [&str; 3] = ["lock", "dead", "corrupt"];

/// Recovers the buffer in `layout.dir`.
pub(crate) fn recover(fs: &dyn Fs, layout: &Layout) -> Result<Recovery, Error> {
    let names = fs.list(&layout.dir).map_err(|source| Error::Dir {
        dir: layout.dir.clone(),
        source,
    })?;
    let mut out = Recovery::default();
    let mut chunks = Vec::new();
    let mut changed = false;
    for name in names {
        if let Some((seq, id)) = format::parse_name(&name) {
            chunks.push((seq, id, name));
        } else if name.ends_with(".chunk.tmp") {
            // A rewrite a crash interrupted: the chunk it was for is still
            // whole under its own name.
            let _ = fs.remove(&layout.chunk(&name));
            changed = true;
        } else if !OWN.contains(&name.as_str()) {
            warn!(dir = %layout.dir.display(), file = %name, "A file in the buffer directory that is not the buffer's: left alone.");
            out.stray_files += 1;
        }
    }
    chunks.sort();
    for (seq, id, name) in chunks {
        out.next_seq = out.next_seq.max(seq + 1);
        let path = layout.chunk(&name);
        let data = match fs.read(&path) {
            Ok(d) => d,
            Err(e) => {
                error!(path = %path.display(), error = %e, "Cannot read a chunk file of the buffer; it is left as it is and not delivered.");
                continue;
            }
        };
        if let Some(found) = one(fs, layout, &path, &name, &data, &mut out) {
            out.chunks.push(Found { seq, id, ..found });
        }
        changed = true;
    }
    if changed {
        // Removals and renames, durable before anything new is written.
        let _ = fs.sync_dir(&layout.dir);
    }
    Ok(out)
}

/// Recovers one chunk file; `None` when it holds no whole record (it is
/// removed).
fn one(
    fs: &dyn Fs,
    layout: &Layout,
    path: &Path,
    name: &str,
    data: &[u8],
    out: &mut Recovery,
) -> Option<Found> {
    let scan = format::scan(data);
    if !scan.damaged.is_empty() {
        set_aside(fs, layout, name, data, &scan.damaged);
        out.corrupt_records += scan.damaged.len() as u64;
    }
    if scan.records.is_empty() {
        if scan.header != Header::Short || !data.is_empty() {
            out.empty_files += 1;
        }
        let _ = fs.remove(path);
        return None;
    }
    let torn = !matches!(scan.tail, Tail::Clean);
    if torn {
        out.torn_tails += 1;
    }
    let tag = scan.records[0].tag.clone();
    let events = scan.records.iter().map(|r| u64::from(r.events)).sum();
    let created = format::created(data).unwrap_or(0);
    let bytes = if scan.damaged.is_empty() {
        if torn {
            cut(fs, path, scan.good_len() as u64);
        }
        scan.good_len() as u64
    } else {
        rewrite(fs, path, data, &scan, created)
    };
    Some(Found {
        seq: 0,
        id: String::new(),
        tag,
        bytes,
        events,
        created,
    })
}

/// Copies each damaged range to `corrupt/NAME.OFFSET`, synced, and logs
/// them once.
fn set_aside(fs: &dyn Fs, layout: &Layout, name: &str, data: &[u8], damaged: &[format::Damage]) {
    let dir = layout.corrupt();
    let _ = fs.create_dir_all(&dir);
    let offsets: Vec<usize> = damaged.iter().map(|d| d.offset).collect();
    error!(file = %name, ?offsets, dir = %dir.display(), "Damaged records in the disk buffer: set aside, counted, and every record around them is delivered.");
    for d in damaged {
        let target = dir.join(format!("{name}.{}", d.offset));
        // Already there: set aside by a recovery that a crash cut short.
        let _ = fs.write_new(&target, &data[d.offset..d.offset + d.len]);
    }
    let _ = fs.sync_dir(&dir);
}

/// Cuts a torn tail off.
fn cut(fs: &dyn Fs, path: &Path, len: u64) {
    if let Ok(f) = fs.append(path)
        && f.set_len(len).and_then(|()| f.sync()).is_ok()
    {
        return;
    }
    warn!(path = %path.display(), "Cannot cut a torn tail off a chunk file; its whole records are delivered all the same.");
}

/// Writes the file again with only its whole records, aside, then renames
/// it over: a crash in between leaves one whole version or the other. Its
/// new size (the old one if the rewrite failed; reading skips the damage).
fn rewrite(fs: &dyn Fs, path: &Path, data: &[u8], scan: &format::Scan, created: u64) -> u64 {
    let mut clean = format::header(created).to_vec();
    for r in &scan.records {
        clean.extend_from_slice(&data[r.offset..r.offset + r.len]);
    }
    let tmp = path.with_extension("chunk.tmp");
    let _ = fs.remove(&tmp);
    let done = fs
        .write_new(&tmp, &clean)
        .and_then(|()| fs.rename(&tmp, path));
    match done {
        Ok(()) => clean.len() as u64,
        Err(e) => {
            let _ = fs.remove(&tmp);
            warn!(path = %path.display(), error = %e, "Cannot rewrite a damaged chunk file without its damage; its whole records are delivered all the same.");
            (data.len().max(HEADER_LEN)) as u64
        }
    }
}
