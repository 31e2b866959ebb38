//! Acks owed to clients: with `ack: delivered`, a chunk's ack waits for
//! its delivery, and a resent chunk joins the first copy's waiters.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hydra_forward::ChunkId;
use tokio::sync::mpsc;

use super::{ReceiverCounters, Settings};

/// What tells a resent chunk from another: a client whose ack timed out
/// sends the same chunk id, tag and events again, from the same host
/// (usually on a new connection). The sizes keep two clients that number
/// their chunks alike apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct ChunkKey {
    pub(super) host: IpAddr,
    pub(super) tag: String,
    pub(super) chunk: ChunkId,
    pub(super) events: usize,
    pub(super) bytes: usize,
}

/// With `ack: delivered`, the chunks appended and not yet delivered, each
/// with the connections waiting for its ack. A resent chunk joins the
/// waiters instead of being buffered twice.
#[derive(Debug, Default)]
pub(super) struct Pending(Mutex<HashMap<ChunkKey, Vec<mpsc::Sender<Bytes>>>>);

impl Pending {
    pub(super) fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<ChunkKey, Vec<mpsc::Sender<Bytes>>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A delivered-ack owed to every connection waiting on one chunk. Dropped
/// without [`Owed::deliver`] (the chunk never delivered: hydra stopping),
/// it forgets the chunk, so that a later resend is buffered anew.
pub(super) struct Owed {
    pub(super) key: Option<ChunkKey>,
    pub(super) ack: Bytes,
    pub(super) settings: Arc<Settings>,
    pub(super) counters: Arc<ReceiverCounters>,
}

impl Owed {
    pub(super) fn deliver(mut self) {
        let Some(key) = self.key.take() else { return };
        let waiters = self
            .settings
            .pending
            .lock()
            .remove(&key)
            .unwrap_or_default();
        for w in waiters {
            // A full queue is a client that stopped reading: its writer
            // times out and closes the connection; the client resends.
            if w.try_send(self.ack.clone()).is_ok() {
                self.counters.acks.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for Owed {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.settings.pending.lock().remove(&key);
        }
    }
}

/// Acks queued for one connection before further ones are dropped (the
/// client resends what it got no ack for).
pub(super) const ACK_QUEUE: usize = 1024;

/// How long one ack may take to write before the connection is closed.
pub(super) const ACK_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
