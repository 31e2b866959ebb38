//! The disk buffer in the pipeline. Forward inputs (and embedder inputs
//! that ask for it, [`crate::Input::durable`]) append through a durable
//! view of the buffer ([`hydra_buffer::Buffer::with_sink`]) into
//! `hydra-disk`'s store; a pump takes the chunks it keeps, in order, into
//! memory as sealed chunks with their own ids, within `buffer.max_bytes`.
//! A chunk's file goes once it was delivered; one a stop or a reload
//! leaves undelivered goes back in line for the next pipeline.
//!
//! The store outlives a pipeline: a reload hands it over, with its lock.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use hydra_buffer::{BoxFuture, Buffer, Commit, Sink};
use hydra_config::Config;
use hydra_disk::{DirLock, Store, SyncPolicy, fs::RealFs};
use hydra_forward::ChunkId;
use tracing::{info, warn};

use crate::error::Error;

/// The store, with commits (the acks and positions owed) riding along
/// with each chunk.
pub(crate) type DiskStore = Store<Commit>;

/// An open disk buffer: its store and its directory's lock.
#[derive(Clone)]
pub struct Disk {
    pub(crate) store: DiskStore,
    _lock: Arc<DirLock>,
    pub(crate) path: PathBuf,
}

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disk").field("path", &self.path).finish()
    }
}

impl Disk {
    /// Seals what is open, syncs, and stops the store's thread: for the
    /// end of the process (what it holds stays for the next start).
    pub fn close(&self) {
        self.store.close();
    }
}

/// Opens `config`'s disk buffer (locked, recovered), if it has one.
/// Blocking: recovery reads every chunk file.
pub(crate) fn open(config: &Config) -> Result<Option<Disk>, Error> {
    let Some(d) = &config.buffer.disk else {
        return Ok(None);
    };
    let lock = DirLock::acquire(&d.path)?;
    let buffer = crate::mapping::buffer_config(config);
    let policy = match d.sync {
        hydra_config::Sync::Always => SyncPolicy::Always,
        hydra_config::Sync::Every(every) => SyncPolicy::Every(every),
    };
    let (store, recovery) = Store::open(
        Arc::new(RealFs),
        hydra_disk::Config {
            dir: d.path.clone(),
            max_bytes: d.max_bytes.0,
            chunk_bytes: buffer.chunk_bytes,
            flush_interval: buffer.flush_interval,
        },
        policy,
    )?;
    let events: u64 = recovery.chunks.iter().map(|c| c.events).sum();
    info!(path = %d.path.display(), chunks = recovery.chunks.len(), events, corrupt_records = recovery.corrupt_records, torn_tails = recovery.torn_tails, "Disk buffer open.");
    if recovery.corrupt_records > 0 {
        warn!(path = %d.path.display(), records = recovery.corrupt_records, "Damaged records in the disk buffer were set aside under corrupt/; every other record is delivered.");
    }
    Ok(Some(Disk {
        store,
        _lock: Arc::new(lock),
        path: d.path.clone(),
    }))
}

/// The durable view's appends into the store: records of at most 64 KiB of
/// events each.
pub(crate) struct DiskSink {
    pub(crate) store: DiskStore,
}

impl Sink for DiskSink {
    fn append(
        &self,
        tag: &str,
        entries: Bytes,
        events: usize,
        commit: Option<Commit>,
        stored: Option<Commit>,
    ) -> BoxFuture<'_, Result<(), hydra_buffer::Error>> {
        let tag = tag.to_owned();
        Box::pin(async move {
            let pieces =
                hydra_forward::entry_pieces(&entries, events, hydra_disk::format::RECORD_EVENTS)
                    .into_iter()
                    .map(|(b, n)| (b, u32::try_from(n).unwrap_or(u32::MAX)))
                    .collect();
            self.store
                .append(&tag, pieces, commit, stored)
                .await
                .map(|_| ())
                .map_err(|_| hydra_buffer::Error::Closed)
        })
    }

    fn flush(&self, tag: &str) {
        self.store.flush(tag);
    }
}

/// A chunk taken from the store: delivered, its file goes; dropped
/// undelivered, it goes back in line.
struct Lease {
    store: DiskStore,
    seq: u64,
    back: Option<(String, u64)>,
}

impl Lease {
    fn delivered(mut self) {
        self.back = None;
        self.store.delivered(self.seq);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some((tag, events)) = self.back.take() {
            self.store.returned(self.seq, tag, events);
        }
    }
}

/// Chunks read ahead from disk into memory, waiting for the output: enough
/// to keep its connections busy, and no more, so what waits on disk during
/// an outage costs no memory.
const READ_AHEAD: usize = 4;

/// Takes the store's chunks, in order, into `buffer` until it closes.
pub(crate) async fn pump(store: DiskStore, buffer: Buffer) {
    loop {
        buffer.queued_below(READ_AHEAD).await;
        let Some(taken) = store.next().await else {
            break;
        };
        let lease = Lease {
            store: store.clone(),
            seq: taken.seq,
            back: Some((taken.tag.clone(), taken.events)),
        };
        let attached = taken.attached;
        let commit: Commit = Box::new(move || {
            lease.delivered();
            for c in attached {
                c();
            }
        });
        let events = usize::try_from(taken.events).unwrap_or(usize::MAX);
        let id = ChunkId::from_id(&taken.id);
        let entries = Bytes::from(taken.entries);
        if buffer
            .append_sealed(&taken.tag, entries, events, id, Some(commit))
            .await
            .is_err()
        {
            // Closed for a stop: the commit went with the refusal, and the
            // chunk back in line.
            break;
        }
    }
}
