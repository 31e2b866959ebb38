//! Reading frames within the input's memory budget: partly read frames
//! and inflated events hold room in `max_pending_bytes`.

use std::sync::Arc;

use bytes::BytesMut;
use hydra_forward::{ForwardDecoder, Request};
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;
use tokio_util::codec::Decoder;

use hydra_io::Conn;

use super::Settings;

/// Bytes a connection may buffer outside the memory budget: a frame this
/// small never waits for it (read this much at a time while the budget is
/// spent). Times `max_connections`, this is all that the budget does not
/// bound.
pub(super) const FREE: usize = 8 << 10;

/// The most read from a connection at once.
pub(super) const READ: usize = 64 << 10;

/// How long closing a connection may take.
pub(super) const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a connection waits for room in the memory budget before it is
/// closed (its client sends again), so connections holding part of it
/// cannot wait on each other for ever.
pub(super) const BUDGET_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A compressed batch is first inflated within this much room; one that
/// needs more waits for room for `max_decompressed_bytes`.
pub(super) const INFLATE_FIRST: usize = 8 << 20;

/// Permits of the memory budget held by one connection.
pub(super) struct Held {
    pub(super) budget: Arc<Semaphore>,
    pub(super) total: usize,
    pub(super) n: usize,
}

impl Held {
    /// Holds room for `bytes` buffered (beyond [`FREE`]) if it is there
    /// now.
    pub(super) fn try_reserve(&mut self, bytes: usize) -> bool {
        let need = bytes.saturating_sub(FREE).min(self.total);
        if need <= self.n {
            return true;
        }
        let more = u32::try_from(need - self.n).unwrap_or(u32::MAX);
        match self.budget.try_acquire_many(more) {
            Ok(p) => {
                p.forget();
                self.n += more as usize;
                true
            }
            Err(_) => false,
        }
    }

    /// Holds room for `bytes` buffered (beyond [`FREE`]), waiting at most
    /// [`BUDGET_WAIT`] for it.
    pub(super) async fn reserve(&mut self, bytes: usize) -> bool {
        let need = bytes.saturating_sub(FREE).min(self.total);
        if need <= self.n {
            return true;
        }
        let more = u32::try_from(need - self.n).unwrap_or(u32::MAX);
        match tokio::time::timeout(BUDGET_WAIT, self.budget.acquire_many(more)).await {
            Ok(Ok(p)) => {
                p.forget();
                self.n += more as usize;
                true
            }
            _ => false,
        }
    }

    /// Gives back what `bytes` buffered no longer need.
    pub(super) fn keep(&mut self, bytes: usize) {
        let need = bytes.saturating_sub(FREE).min(self.total);
        if need < self.n {
            self.budget.add_permits(self.n - need);
            self.n = need;
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.add_permits(self.n);
    }
}

/// Why a connection's reading stopped.
pub(super) enum Next {
    Request(Request),
    /// Closed by the client, or a read failed.
    Closed,
    Idle,
    Corrupt(hydra_forward::Error),
    /// No room in the memory budget within [`BUDGET_WAIT`].
    OverBudget,
}

/// A connection's frames, read within its input's memory budget.
pub(super) struct Reader {
    pub(super) read: tokio::io::ReadHalf<Conn>,
    pub(super) buf: BytesMut,
    pub(super) decoder: ForwardDecoder,
    pub(super) held: Held,
    /// The buffer was grown for a large frame.
    pub(super) large: bool,
}

impl Reader {
    pub(super) async fn next(&mut self, idle: std::time::Duration) -> Next {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Err(e) => return Next::Corrupt(e),
                Ok(Some(r)) => return Next::Request(r),
                Ok(None) => {}
            }
            // Room first, then the bytes: a frame's size is known from its
            // header, before its body is read.
            let want = self.decoder.wanted().max(self.buf.len() + READ);
            let (mut read, mut upto) = (READ, want);
            if !self.held.try_reserve(want) {
                if self.decoder.wanted() <= FREE && self.buf.len() < FREE {
                    // A small frame: read within what needs no room, so
                    // small clients go on while large frames wait.
                    (read, upto) = (FREE - self.buf.len(), FREE);
                } else if !self.held.reserve(want).await {
                    return Next::OverBudget;
                }
            }
            if upto > self.buf.capacity() {
                // At once, to the size reserved: grown read by read, the
                // buffer would double past it.
                let room = hydra_forward::transient_capacity(upto);
                self.large |= room > 2 * READ;
                self.buf.reserve(room - self.buf.len());
            }
            let mut limited = (&mut self.read).take(read as u64);
            match tokio::time::timeout(idle, limited.read_buf(&mut self.buf)).await {
                Err(_) => return Next::Idle,
                Ok(Ok(0) | Err(_)) => return Next::Closed,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The request taken out was handled: give back its room.
    pub(super) fn settle(&mut self) {
        if std::mem::take(&mut self.large) {
            // The buffer grew for a large frame. The frame taken out of it
            // shared its allocation, and so would the rest of the buffer
            // after the frame is gone: it is moved to a small one, so the
            // room given back is memory given back.
            let mut rest = BytesMut::with_capacity(self.buf.len().max(8 << 10));
            rest.extend_from_slice(&self.buf);
            self.buf = rest;
        }
        self.held.keep(self.buf.len());
    }
}

/// Inflates `c` on a blocking thread, with room for it in the memory
/// budget (held until the events are appended). `None` when no room came
/// in time.
///
/// An inflation gets at most half the budget, and never more than what
/// the connection's own compressed frame (`held`) leaves: asking for all
/// of it, a batch would wait for ever on its own frame, or on any other
/// connection holding part of the budget while it waits too. A batch that
/// needs more is dropped as too large.
pub(super) async fn inflate(
    c: hydra_forward::Compressed,
    settings: &Settings,
    held: usize,
) -> Option<(Request, tokio::sync::OwnedSemaphorePermit)> {
    let mut c = c;
    let max = c
        .max_inflated()
        .min(settings.budget_total / 2)
        .min(settings.budget_total.saturating_sub(held))
        .max(1);
    let mut limit = INFLATE_FIRST.min(max);
    loop {
        let permits = u32::try_from(limit).unwrap_or(u32::MAX);
        let permit = tokio::time::timeout(
            BUDGET_WAIT,
            settings.budget.clone().acquire_many_owned(permits),
        )
        .await
        .ok()?
        .ok()?;
        let Ok(turn) = settings.inflating.clone().acquire_owned().await else {
            return None;
        };
        let inflated = tokio::task::spawn_blocking(move || {
            let r = c.inflate_within(limit);
            drop(turn);
            r
        });
        match inflated.await {
            Ok(Ok(request)) => return Some((request, permit)),
            // Inflates past the first guess: wait for room for all of it.
            Ok(Err(back)) if limit < max => {
                drop(permit);
                c = *back;
                limit = max;
            }
            // Past all the room this connection can have.
            Ok(Err(back)) => return Some((back.too_large(limit), permit)),
            Err(_) => return None,
        }
    }
}
