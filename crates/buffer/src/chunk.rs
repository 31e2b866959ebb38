//! Sealed chunks, and the commits that run once their events are delivered.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use hydra_forward::ChunkId;

/// Runs once the events it came with are delivered.
pub type Commit = Box<dyn FnOnce() + Send + 'static>;

/// `commit` shared by `n` appends (one batch cut into pieces): each piece
/// gets one of the returned commits, and `commit` runs once every piece
/// was delivered, whatever their order. A piece dropped undelivered keeps
/// it from running; it is dropped with the last piece.
pub fn split_commit(commit: Option<Commit>, n: usize) -> Vec<Option<Commit>> {
    struct Countdown {
        left: AtomicUsize,
        commit: Mutex<Option<Commit>>,
    }
    match commit {
        Some(c) if n > 1 => {
            let shared = Arc::new(Countdown {
                left: AtomicUsize::new(n),
                commit: Mutex::new(Some(c)),
            });
            (0..n)
                .map(|_| {
                    let shared = shared.clone();
                    Some(Box::new(move || {
                        if shared.left.fetch_sub(1, Ordering::AcqRel) == 1 {
                            let c = shared
                                .commit
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .take();
                            if let Some(c) = c {
                                c();
                            }
                        }
                    }) as Commit)
                })
                .collect()
        }
        commit => std::iter::once(commit)
            .chain((1..n).map(|_| None))
            .collect(),
    }
}

/// A sealed chunk: one Forward frame, ready to send and to resend.
pub struct Chunk {
    pub(crate) tag: Arc<str>,
    pub(crate) frame: Bytes,
    pub(crate) id: Option<ChunkId>,
    pub(crate) events: usize,
    pub(crate) bytes: usize,
    pub(crate) commits: Vec<Commit>,
    pub(crate) attempts: u32,
    pub(crate) refusals: u32,
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunk")
            .field("tag", &self.tag)
            .field("events", &self.events)
            .field("bytes", &self.frame.len())
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl Chunk {
    /// The tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }
    /// The Forward frame to write, the same bytes on every attempt.
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }
    /// The id the receiver acks, when acks are on.
    pub fn id(&self) -> Option<&ChunkId> {
        self.id.as_ref()
    }
    /// Events in the chunk.
    pub fn events(&self) -> usize {
        self.events
    }
    /// Times the chunk was handed out before (0 on the first attempt).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
    /// Counts one more send that failed with this chunk first in line (the
    /// one a server that closes or never acks is refusing); the count so
    /// far. Chunks behind it fail with it and are not counted.
    pub fn refused(&mut self) -> u32 {
        self.refusals += 1;
        self.refusals
    }
}
