//! `GET /tap?tag=GLOB`: the events flowing through hydra, streamed as JSON
//! lines while they pass.
//!
//! The buffer hands each chunk it seals to [`TapHub::observe`]. With no
//! reader that is one atomic load per chunk. With readers, the chunk's frame
//! (reference-counted bytes, not a copy) goes into each matching reader's
//! bounded queue; a reader whose queue is full misses that chunk, and the
//! count of missed events is told to it in the stream and shown in the
//! monitor. Decoding to JSON happens in the reader's own response stream, so
//! the pipeline never waits for a reader.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::mpsc;

use hydra_forward::TagPattern;

use crate::TapStats;

/// Chunks queued per reader before it starts missing them.
const QUEUE_CHUNKS: usize = 64;

/// The readers of `GET /tap`, fed by the buffer.
#[derive(Debug, Clone, Default)]
pub struct TapHub {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    readers: AtomicUsize,
    missed: AtomicU64,
    subs: Mutex<Vec<Sub>>,
}

#[derive(Debug)]
struct Sub {
    pattern: TagPattern,
    tx: mpsc::Sender<Bytes>,
    missed: Arc<AtomicU64>,
}

/// One reader's end: frames of matching chunks, and the events it missed.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<Bytes>,
    missed: Arc<AtomicU64>,
    hub: TapHub,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // The closed queue is noticed and removed at the next chunk; the
        // count goes down now so an idle hub costs nothing again at once.
        self.hub.inner.readers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Subscription {
    /// The next frame, or `None` when the hub is gone.
    pub async fn next(&mut self) -> Option<Bytes> {
        self.rx.recv().await
    }

    /// Events missed since the last call.
    pub fn take_missed(&self) -> u64 {
        self.missed.swap(0, Ordering::Relaxed)
    }
}

impl TapHub {
    /// A hub with no readers.
    pub fn new() -> TapHub {
        TapHub::default()
    }

    /// Called with each sealed chunk: `events` events of `tag` in `frame`.
    pub fn observe(&self, tag: &str, frame: &Bytes, events: usize) {
        if self.inner.readers.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut subs = self
            .inner
            .subs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        subs.retain(|s| {
            if !s.pattern.matches(tag) {
                return !s.tx.is_closed();
            }
            match s.tx.try_send(frame.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    s.missed.fetch_add(events as u64, Ordering::Relaxed);
                    self.inner
                        .missed
                        .fetch_add(events as u64, Ordering::Relaxed);
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    /// A new reader of chunks whose tag matches `glob` (every tag when
    /// empty).
    pub fn subscribe(&self, glob: &str) -> Subscription {
        let (tx, rx) = mpsc::channel(QUEUE_CHUNKS);
        let missed = Arc::new(AtomicU64::new(0));
        self.inner
            .subs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Sub {
                pattern: TagPattern::new(glob),
                tx,
                missed: missed.clone(),
            });
        self.inner.readers.fetch_add(1, Ordering::Relaxed);
        Subscription {
            rx,
            missed,
            hub: self.clone(),
        }
    }

    /// Ends every reader's stream (at shutdown, so open `/tap` responses
    /// do not hold the monitor up).
    pub fn close(&self) {
        self.inner
            .subs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Readers and missed events.
    pub fn stats(&self) -> TapStats {
        TapStats {
            readers: self.inner.readers.load(Ordering::Relaxed) as u64,
            missed: self.inner.missed.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_reader_misses_and_is_told() {
        let hub = TapHub::new();
        let frame = Bytes::from_static(b"frame");
        hub.observe("app.x", &frame, 3);
        assert_eq!(hub.stats(), TapStats::default());
        let mut sub = hub.subscribe("app.*");
        for _ in 0..QUEUE_CHUNKS + 2 {
            hub.observe("app.x", &frame, 3);
            hub.observe("other", &frame, 3);
        }
        assert_eq!(hub.stats().missed, 6);
        assert_eq!(sub.take_missed(), 6);
        assert_eq!(sub.take_missed(), 0);
        assert_eq!(sub.next().await.as_deref(), Some(&b"frame"[..]));
        drop(sub);
        assert_eq!(hub.stats().readers, 0);
        hub.observe("app.x", &frame, 3);
    }
}
