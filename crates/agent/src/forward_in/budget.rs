//! `max_pending_bytes`: the memory all connections of an input may hold
//! in partly read frames and inflated events.
//!
//! Room is taken only when it is there, never queued for: a connection
//! waiting for a large frame's room does not stand in front of one that
//! needs a little (a queue would hand every byte freed to the first in
//! line, and small frames would wait behind large ones).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

/// Bytes a connection may buffer outside the memory budget: a frame this
/// small never waits for it (read this much at a time while the budget is
/// spent). Times `max_connections`, this is all that the budget does not
/// bound.
pub(super) const FREE: usize = 8 << 10;

/// The budget of one input.
#[derive(Debug)]
pub(super) struct Budget {
    free: Semaphore,
    /// Room was given back.
    room: Notify,
    total: usize,
}

impl Budget {
    pub(super) fn new(total: usize) -> Arc<Budget> {
        Arc::new(Budget {
            free: Semaphore::new(total.min(Semaphore::MAX_PERMITS)),
            room: Notify::new(),
            total,
        })
    }

    pub(super) fn total(&self) -> usize {
        self.total
    }

    /// Bytes not held by anyone.
    pub(super) fn available(&self) -> usize {
        self.free.available_permits()
    }

    /// Takes `n` bytes if they are free now.
    pub(super) fn try_take(&self, n: usize) -> bool {
        let Ok(n) = u32::try_from(n) else {
            return false;
        };
        match self.free.try_acquire_many(n) {
            Ok(p) => {
                p.forget();
                true
            }
            Err(_) => false,
        }
    }

    /// Takes `n` bytes, waiting at most `wait` for them to be free at once.
    pub(super) async fn take(&self, n: usize, wait: Duration) -> bool {
        tokio::time::timeout(wait, async {
            loop {
                let freed = self.room.notified();
                tokio::pin!(freed);
                // Registered before looking: room given back in between
                // still wakes it.
                freed.as_mut().enable();
                if self.try_take(n) {
                    return;
                }
                freed.await;
            }
        })
        .await
        .is_ok()
    }

    /// Waits until any room is free.
    pub(super) async fn any(&self) {
        loop {
            let freed = self.room.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.available() > 0 {
                return;
            }
            freed.await;
        }
    }

    /// Gives back `n` bytes.
    pub(super) fn give(&self, n: usize) {
        if n > 0 {
            self.free.add_permits(n);
            self.room.notify_waiters();
        }
    }
}

/// Room held until dropped: an inflated batch's.
#[derive(Debug)]
pub(super) struct Room {
    budget: Arc<Budget>,
    n: usize,
}

impl Room {
    /// `n` bytes of `budget`, waiting at most `wait`.
    pub(super) async fn take(budget: &Arc<Budget>, n: usize, wait: Duration) -> Option<Room> {
        budget.take(n, wait).await.then(|| Room {
            budget: budget.clone(),
            n,
        })
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        self.budget.give(self.n);
    }
}

/// The room one connection holds for what it buffers.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) budget: Arc<Budget>,
    /// The most one connection may hold.
    pub(super) share: usize,
    pub(super) n: usize,
}

impl Held {
    pub(super) fn new(budget: Arc<Budget>, share: usize) -> Held {
        Held {
            budget,
            share,
            n: 0,
        }
    }

    /// A connection's share of a budget of `total` bytes: enough for the
    /// largest frame and the next read, at least a quarter of the budget,
    /// and never all of it unless one frame needs it.
    pub(super) fn share(total: usize, max_frame_bytes: usize) -> usize {
        max_frame_bytes
            .saturating_add(super::reader::READ)
            .max(total / 4)
            .min(total)
    }

    /// Room for `bytes` buffered, beyond [`FREE`] and within the share:
    /// the bytes still to take (0 when they are held already).
    fn more(&self, bytes: usize) -> usize {
        bytes
            .saturating_sub(FREE)
            .min(self.share)
            .saturating_sub(self.n)
    }

    /// Holds room for `bytes` buffered if it is there now.
    pub(super) fn try_reserve(&mut self, bytes: usize) -> bool {
        let more = self.more(bytes);
        if more == 0 || self.budget.try_take(more) {
            self.n += more;
            return true;
        }
        false
    }

    /// Holds room for `bytes` buffered, waiting at most `wait`.
    pub(super) async fn reserve(&mut self, bytes: usize, wait: Duration) -> bool {
        let more = self.more(bytes);
        if more == 0 || self.budget.take(more, wait).await {
            self.n += more;
            return true;
        }
        false
    }

    /// Gives back what `bytes` buffered no longer need.
    pub(super) fn keep(&mut self, bytes: usize) {
        let need = bytes.saturating_sub(FREE).min(self.share);
        if need < self.n {
            self.budget.give(self.n - need);
            self.n = need;
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.give(self.n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_small_request_is_not_held_behind_a_large_one() {
        let budget = Budget::new(1 << 20);
        assert!(budget.try_take(900 << 10));
        let large = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.take(512 << 10, Duration::from_secs(5)).await })
        };
        tokio::task::yield_now().await;
        // 124 KiB are free: the small request takes them now, though the
        // large one waited first.
        assert!(budget.take(100 << 10, Duration::from_millis(100)).await);
        budget.give(900 << 10);
        assert!(
            large.await.unwrap(),
            "the large request got its room once freed"
        );
    }

    #[tokio::test]
    async fn held_room_is_capped_by_the_share_and_given_back() {
        let budget = Budget::new(1 << 20);
        let mut held = Held::new(budget.clone(), 256 << 10);
        assert!(held.try_reserve(10 << 20));
        assert_eq!(held.n, 256 << 10);
        held.keep(FREE + 10);
        assert_eq!(held.n, 10);
        drop(held);
        assert_eq!(budget.available(), 1 << 20);
    }
}
