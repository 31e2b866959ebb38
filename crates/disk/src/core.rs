//! The buffer's state and every effect it has on the disk, synchronous:
//! [`crate::Store`] runs it off the async runtime, the crash tests drive
//! it step by step.
//!
//! Effects come in this order, so that a crash between any two leaves
//! nothing that recovery takes for what it is not:
//! - a chunk file is created with its header, then records are appended;
//!   a record counts as durable once the file was synced, and the file's
//!   entry once its directory was;
//! - a chunk's file is removed only once the chunk was delivered: a
//!   removal a crash undoes delivers it again, never loses it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::Error;
use crate::format::{self, HEADER_LEN};
use crate::fs::{Fs, Layout, WriteFile};
use crate::recover::{self, Recovery};

/// The buffer's limits.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DIR`.
    pub dir: PathBuf,
    /// The most bytes the chunk files may hold; past it, appends wait.
    pub max_bytes: u64,
    /// A chunk is sealed once its events take this many bytes.
    pub chunk_bytes: usize,
    /// A chunk is sealed at the latest this long after it was opened.
    pub flush_interval: Duration,
}

/// Where an append went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The append's number: durable once [`Core::synced`] reaches it.
    pub id: u64,
    /// Its chunk.
    pub seq: u64,
}

/// A chunk being written: one per tag.
struct Open<T> {
    seq: u64,
    id: String,
    file: Arc<dyn WriteFile>,
    /// The file's bytes.
    len: u64,
    events: u64,
    /// Events' bytes.
    entries: usize,
    attached: Vec<T>,
    opened: Instant,
}

/// A whole chunk, waiting to be delivered.
#[derive(Debug)]
pub struct Sealed<T> {
    /// Its sequence number: chunks are delivered in this order.
    pub seq: u64,
    /// Its id, 32 hex digits: the chunk id it is sent with, before and
    /// after a restart.
    pub id: String,
    /// Its events' tag.
    pub tag: String,
    /// Its file's bytes.
    pub bytes: u64,
    /// Events in it.
    pub events: u64,
    /// What the appends to it brought (their commits), until it is taken.
    pub attached: Vec<T>,
    /// When it was opened, in seconds since the epoch.
    pub created: u64,
}

/// A chunk's events as read back from its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Events {
    /// The entries of its whole records, back to back.
    pub entries: Vec<u8>,
    /// Events in them.
    pub events: u64,
    /// Records that no longer read back whole (damaged since recovery).
    pub damaged: usize,
}

/// Counters of the buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Bytes of chunk files.
    pub bytes: u64,
    /// Chunks on disk: open, waiting, and taken but not delivered.
    pub chunks: u64,
    /// Records damaged, set aside under `corrupt/`.
    pub corrupt_records: u64,
    /// Files whose last record was cut short (by a crash): cut back.
    pub torn_tails: u64,
    /// Files in the directory that are not the buffer's.
    pub stray_files: u64,
    /// Writes, syncs or removals that failed.
    pub write_errors: u64,
}

/// The buffer's state. `T` is what an append brings along to its chunk.
pub struct Core<T> {
    fs: Arc<dyn Fs>,
    layout: Layout,
    config: Config,
    open: HashMap<String, Open<T>>,
    /// Sealed chunks, by sequence: handed out in order.
    queue: BTreeMap<u64, Sealed<T>>,
    /// Chunks handed out and not yet delivered or returned: their bytes.
    taken: HashMap<u64, (String, u64, u64)>,
    next_seq: u64,
    written: u64,
    synced: u64,
    /// Files written since the last sync, by chunk.
    dirty: HashMap<u64, Arc<dyn WriteFile>>,
    /// Files a failed sync did not make durable: synced again next time.
    unsynced: Vec<Arc<dyn WriteFile>>,
    dir_dirty: bool,
    counts: Counts,
}

/// What a sync must make durable: taken by [`Core::sync_begin`], done
/// without the core, reported to [`Core::sync_end`].
pub struct SyncJob {
    pub(crate) files: Vec<Arc<dyn WriteFile>>,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) upto: u64,
}

impl SyncJob {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.dir.is_none()
    }

    /// Syncs every file, then the directory.
    pub fn run(&self, fs: &dyn Fs) -> std::io::Result<()> {
        for f in &self.files {
            f.sync()?;
        }
        if let Some(dir) = &self.dir {
            fs.sync_dir(dir)?;
        }
        Ok(())
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl<T> Core<T> {
    /// Opens the buffer in `config.dir` (created if missing) and recovers
    /// what it holds: every whole record of every chunk file is kept;
    /// damage is set aside and counted, a torn tail cut. Never fails on
    /// what the files hold, only when the directory cannot be used.
    pub fn open(fs: Arc<dyn Fs>, config: Config) -> Result<(Core<T>, Recovery), Error> {
        let layout = Layout::new(&config.dir);
        fs.create_dir_all(&layout.dir)
            .map_err(|source| Error::Dir {
                dir: layout.dir.clone(),
                source,
            })?;
        let recovery = recover::recover(fs.as_ref(), &layout)?;
        let mut core = Core {
            fs,
            layout,
            config,
            open: HashMap::new(),
            queue: BTreeMap::new(),
            taken: HashMap::new(),
            next_seq: recovery.next_seq,
            written: 0,
            synced: 0,
            dirty: HashMap::new(),
            unsynced: Vec::new(),
            dir_dirty: false,
            counts: Counts {
                corrupt_records: recovery.corrupt_records,
                torn_tails: recovery.torn_tails,
                stray_files: recovery.stray_files,
                ..Counts::default()
            },
        };
        for c in &recovery.chunks {
            core.counts.bytes += c.bytes;
            core.queue.insert(
                c.seq,
                Sealed {
                    seq: c.seq,
                    id: c.id.clone(),
                    tag: c.tag.clone(),
                    bytes: c.bytes,
                    events: c.events,
                    attached: Vec::new(),
                    created: c.created,
                },
            );
        }
        Ok((core, recovery))
    }

    /// Its configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Its file layer.
    pub fn fs(&self) -> &Arc<dyn Fs> {
        &self.fs
    }

    /// Appends `pieces` (each a record's entries and event count) of `tag`
    /// to its open chunk, in one write. [`Error::Full`] when they do not
    /// fit under `max_bytes`; a failed write is cut back, so no part of it
    /// is ever read as a record.
    pub fn append(
        &mut self,
        tag: &str,
        pieces: &[(&[u8], u32)],
        attach: &mut Option<T>,
    ) -> Result<Written, Error> {
        let mut bytes = Vec::new();
        for (entries, events) in pieces {
            format::encode_record(tag, *events, entries, &mut bytes);
        }
        let opening = !self.open.contains_key(tag);
        let need = bytes.len() as u64 + if opening { HEADER_LEN as u64 } else { 0 };
        // An empty buffer takes anything, so one record larger than the
        // whole ceiling cannot wait for ever.
        if self.counts.bytes > 0 && self.counts.bytes + need > self.config.max_bytes {
            return Err(Error::Full {
                max_bytes: self.config.max_bytes,
            });
        }
        if opening {
            self.open_chunk(tag)?;
        }
        let Some(open) = self.open.get_mut(tag) else {
            return Err(Error::Closed);
        };
        let path = self.layout.chunk(&format::file_name(open.seq, &open.id));
        if let Err(source) = open.file.write_all(&bytes) {
            self.counts.write_errors += 1;
            // Cut back what part of it was written. If even that fails,
            // the chunk takes no more writes: its partial record fails its
            // checksum and is cut when the buffer is next opened.
            if open.file.set_len(open.len).is_err() {
                self.seal(tag);
            }
            return Err(Error::Write { path, source });
        }
        open.len += bytes.len() as u64;
        open.events += pieces.iter().map(|(_, n)| u64::from(*n)).sum::<u64>();
        open.entries += pieces.iter().map(|(e, _)| e.len()).sum::<usize>();
        open.attached.extend(attach.take());
        self.counts.bytes += bytes.len() as u64;
        self.written += 1;
        let written = Written {
            id: self.written,
            seq: open.seq,
        };
        self.dirty.insert(open.seq, open.file.clone());
        if open.entries >= self.config.chunk_bytes {
            self.seal(tag);
        }
        Ok(written)
    }

    fn open_chunk(&mut self, tag: &str) -> Result<(), Error> {
        let seq = self.next_seq;
        let id = hex::encode(rand::random::<[u8; 16]>());
        let path = self.layout.chunk(&format::file_name(seq, &id));
        let created = now_secs();
        let file = match self.fs.create(&path) {
            Ok(f) => f,
            Err(source) => {
                self.counts.write_errors += 1;
                return Err(Error::Write { path, source });
            }
        };
        self.next_seq += 1;
        self.dir_dirty = true;
        self.counts.bytes += HEADER_LEN as u64;
        let mut open = Open {
            seq,
            id,
            file,
            len: 0,
            events: 0,
            entries: 0,
            attached: Vec::new(),
            opened: Instant::now(),
        };
        if let Err(source) = open.file.write_all(&format::header(created)) {
            self.counts.write_errors += 1;
            // A file without a whole header holds no record: removed now,
            // or by recovery if this fails too.
            let _ = open.file.set_len(0);
            let _ = self.fs.remove(&path);
            self.counts.bytes -= HEADER_LEN as u64;
            return Err(Error::Write { path, source });
        }
        open.len = HEADER_LEN as u64;
        self.open.insert(tag.to_owned(), open);
        Ok(())
    }

    /// Seals `tag`'s open chunk now: it takes no more events and can be
    /// delivered.
    pub fn seal(&mut self, tag: &str) {
        let Some(open) = self.open.remove(tag) else {
            return;
        };
        if open.events == 0 {
            // Only a header: nothing to deliver.
            self.remove_file(open.seq, &open.id, open.len);
            return;
        }
        self.queue.insert(
            open.seq,
            Sealed {
                seq: open.seq,
                id: open.id,
                tag: tag.to_owned(),
                bytes: open.len,
                events: open.events,
                attached: open.attached,
                created: now_secs(),
            },
        );
    }

    /// Seals every chunk open for `flush_interval` or longer; when the
    /// next one will be due.
    pub fn seal_due(&mut self, now: Instant) -> Option<Instant> {
        let interval = self.config.flush_interval;
        let due: Vec<String> = self
            .open
            .iter()
            .filter(|(_, o)| now.saturating_duration_since(o.opened) >= interval)
            .map(|(t, _)| t.clone())
            .collect();
        for tag in due {
            self.seal(&tag);
        }
        self.open.values().map(|o| o.opened + interval).min()
    }

    /// Seals every open chunk.
    pub fn seal_all(&mut self) {
        let tags: Vec<String> = self.open.keys().cloned().collect();
        for tag in tags {
            self.seal(&tag);
        }
    }

    /// The first sealed chunk, taken: it is the taker's to deliver or
    /// return.
    pub fn take(&mut self) -> Option<Sealed<T>> {
        let (_, sealed) = self.queue.pop_first()?;
        self.taken.insert(
            sealed.seq,
            (sealed.id.clone(), sealed.bytes, sealed.created),
        );
        Some(sealed)
    }

    /// Whether a sealed chunk waits to be taken.
    pub fn has_sealed(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Reads a taken chunk's events back from its file.
    pub fn read(&self, seq: u64, id: &str, tag: &str) -> Result<Events, Error> {
        self.chunk_file(seq, id).read(tag)
    }

    /// Sealed chunk `seq`'s file, to read without holding the core: a
    /// sealed file is never written again, so appends go on meanwhile.
    pub fn chunk_file(&self, seq: u64, id: &str) -> ChunkFile {
        ChunkFile {
            fs: self.fs.clone(),
            path: self.layout.chunk(&format::file_name(seq, id)),
        }
    }

    /// A taken chunk was delivered: its file goes, and its room with it.
    pub fn delivered(&mut self, seq: u64) {
        if let Some((id, bytes, _)) = self.taken.remove(&seq) {
            self.remove_file(seq, &id, bytes);
        }
    }

    /// A taken chunk was not delivered (hydra stopping): it waits again, in
    /// its place.
    pub fn returned(&mut self, seq: u64, tag: String, events: u64) {
        if let Some((id, bytes, created)) = self.taken.remove(&seq) {
            self.queue.insert(
                seq,
                Sealed {
                    seq,
                    id,
                    tag,
                    bytes,
                    events,
                    attached: Vec::new(),
                    created,
                },
            );
        }
    }

    fn remove_file(&mut self, seq: u64, id: &str, bytes: u64) {
        let path = self.layout.chunk(&format::file_name(seq, id));
        self.dirty.remove(&seq);
        if self.fs.remove(&path).is_err() {
            // Left for the next start, which delivers it again.
            self.counts.write_errors += 1;
        }
        self.counts.bytes = self.counts.bytes.saturating_sub(bytes);
    }

    /// What the next sync must make durable; clears it.
    pub fn sync_begin(&mut self) -> SyncJob {
        let mut files: Vec<_> = self.dirty.drain().map(|(_, f)| f).collect();
        files.append(&mut self.unsynced);
        let dir = std::mem::take(&mut self.dir_dirty).then(|| self.layout.dir.clone());
        SyncJob {
            files,
            dir,
            upto: self.written,
        }
    }

    /// The job ran: appends up to its mark are durable, or, when it
    /// failed, its files wait for the next sync.
    pub fn sync_end(&mut self, job: SyncJob, ok: bool) {
        if ok {
            self.synced = self.synced.max(job.upto);
        } else {
            self.counts.write_errors += 1;
            self.dir_dirty |= job.dir.is_some();
            self.unsynced.extend(job.files);
        }
    }

    /// Appends made durable so far (by number, [`Written::id`]).
    pub fn synced(&self) -> u64 {
        self.synced
    }

    /// Appends made so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Its counters.
    pub fn counts(&self) -> Counts {
        Counts {
            chunks: (self.open.len() + self.queue.len() + self.taken.len()) as u64,
            ..self.counts.clone()
        }
    }

    /// When the oldest chunk on disk was created, in seconds since the
    /// epoch.
    pub fn oldest(&self) -> Option<u64> {
        let sealed = self.queue.values().map(|s| s.created);
        let taken = self.taken.values().map(|t| t.2);
        // 0: a damaged header did not say.
        sealed.chain(taken).filter(|c| *c > 0).min()
    }
}

/// A sealed chunk's file ([`Core::chunk_file`]).
pub struct ChunkFile {
    fs: Arc<dyn Fs>,
    path: std::path::PathBuf,
}

impl ChunkFile {
    /// The chunk's events, read back and checked.
    pub fn read(self, tag: &str) -> Result<Events, Error> {
        let data = self.fs.read(&self.path).map_err(|source| Error::Read {
            path: self.path,
            source,
        })?;
        Ok(events_of(data, tag))
    }
}

/// The events of a chunk file's whole records of `tag`, moved to the front
/// of `data` itself: a chunk is megabytes, and a second buffer of that size
/// would be fresh pages to fault in for every chunk delivered.
pub fn events_of(mut data: Vec<u8>, tag: &str) -> Events {
    let scan = format::scan(&data);
    let mut events = 0;
    let mut end = 0;
    for r in scan.records.iter().filter(|r| r.tag == tag) {
        // Records are in file order, so `end` never passes the next start.
        data.copy_within(r.entries.clone(), end);
        end += r.entries.len();
        events += u64::from(r.events);
    }
    data.truncate(end);
    Events {
        entries: data,
        events,
        damaged: scan.damaged.len(),
    }
}
