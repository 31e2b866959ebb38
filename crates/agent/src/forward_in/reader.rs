//! Reading frames within the input's memory budget, fairly.
//!
//! - A frame's first [`READ`] bytes hold room in `max_pending_bytes` only
//!   for what came and the next read, never for what its header merely
//!   claims: a client that announces a large frame and sends it slowly
//!   holds almost nothing.
//! - Past them, a frame holds room for all of itself at once, taken only
//!   when it is all there: frames that each hold part of the budget never
//!   wait on each other for the rest of it.
//! - A connection's room is capped ([`Held::share`]), so a few connections
//!   never hold the whole budget.
//! - A frame's body must keep up with `min_frame_rate` once its first bytes
//!   came (after [`RATE_GRACE`]), or the connection is closed and its room
//!   given back.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use hydra_forward::{ForwardDecoder, Request};
use tokio::io::AsyncReadExt;
use tokio_util::codec::Decoder;

use hydra_io::Conn;

use super::Settings;
use super::budget::{FREE, Held, Room};

/// The most read from a connection at once.
pub(super) const READ: usize = 64 << 10;

/// How long closing a connection may take.
pub(super) const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// How long a connection waits for room in the memory budget before it is
/// closed (its client sends again), so connections holding part of it
/// cannot wait on each other for ever.
pub(super) const BUDGET_WAIT: Duration = Duration::from_secs(10);

/// How long a frame's first bytes may come before `min_frame_rate` is
/// held against it: a connect, a TCP window's ramp-up, a retransmission.
pub(super) const RATE_GRACE: Duration = Duration::from_secs(2);

/// Room beyond what the decoder asks for, for the options map that ends a
/// frame: read a byte at a time, the buffer would be copied for each.
const OPTIONS: usize = 1 << 10;

/// A compressed batch is first inflated within this much room; one that
/// needs more waits for room for `max_decompressed_bytes`.
pub(super) const INFLATE_FIRST: usize = 8 << 20;

/// Frames from this size on are read into a buffer mapped on its own
/// ([`hydra_forward::transient_capacity`]), whose pages become resident only
/// as they are written: such a buffer costs what it holds.
const MAPPED: usize = 1 << 20;

/// Why a connection's reading stopped.
#[derive(Debug)]
pub(super) enum Next {
    Request(Request),
    /// Closed by the client, or a read failed.
    Closed,
    Idle,
    Corrupt(hydra_forward::Error),
    /// No room in the memory budget within [`BUDGET_WAIT`].
    OverBudget,
    /// A frame's body came slower than the minimum rate.
    TooSlow {
        /// Bytes of the frame that came.
        got: usize,
        /// Since its first bytes.
        after: Duration,
    },
}

/// The frame being read: since when, for the minimum rate.
#[derive(Debug, Clone, Copy)]
struct Frame {
    started: Instant,
}

/// A connection's frames, read within its input's memory budget.
pub(super) struct Reader {
    pub(super) read: tokio::io::ReadHalf<Conn>,
    pub(super) buf: BytesMut,
    pub(super) decoder: ForwardDecoder,
    pub(super) held: Held,
    /// The buffer grew for a frame: moved to a small one once the frame was
    /// handled.
    pub(super) large: bool,
    /// Bytes per second a frame's body must keep up with; 0: no minimum.
    pub(super) min_rate: u64,
    /// [`RATE_GRACE`], shorter in tests.
    pub(super) grace: Duration,
    frame: Option<Frame>,
}

impl Reader {
    pub(super) fn new(
        read: tokio::io::ReadHalf<Conn>,
        decoder: ForwardDecoder,
        held: Held,
        min_rate: u64,
    ) -> Reader {
        Reader {
            read,
            buf: BytesMut::with_capacity(FREE),
            decoder,
            held,
            large: false,
            min_rate,
            grace: RATE_GRACE,
            frame: None,
        }
    }

    /// A reader for `settings`' input.
    pub(super) fn for_input(read: tokio::io::ReadHalf<Conn>, settings: &Settings) -> Reader {
        Reader::new(
            read,
            ForwardDecoder::with_limits(settings.limits)
                .defer_inflation()
                .caller_reserves(),
            Held::new(settings.budget.clone(), settings.share),
            settings.min_rate,
        )
    }

    /// When the frame being read falls behind the minimum rate if no more
    /// of it comes: its start, the grace, and the time its bytes so far
    /// are worth.
    fn rate_deadline(&self) -> Option<Instant> {
        let frame = self.frame?;
        if self.min_rate == 0 {
            return None;
        }
        let earned = Duration::from_secs_f64(self.buf.len() as f64 / self.min_rate as f64);
        Some(frame.started + self.grace + earned)
    }

    /// The next request, reading as much as it needs.
    pub(super) async fn next(&mut self, idle: Duration) -> Next {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Err(e) => return Next::Corrupt(e),
                Ok(Some(r)) => {
                    // What is left starts the next frame, from now.
                    self.frame = None;
                    return Next::Request(r);
                }
                Ok(None) => {}
            }
            if !self.buf.is_empty() && self.frame.is_none() {
                self.frame = Some(Frame {
                    started: Instant::now(),
                });
            }
            let wanted = self.decoder.wanted().max(self.buf.len() + 1);
            let read = match self.make_room(wanted).await {
                Some(n) => n,
                None => return Next::OverBudget,
            };
            let now = Instant::now();
            let deadline = self.rate_deadline();
            let wait = deadline.map_or(idle, |d| d.saturating_duration_since(now).min(idle));
            let mut limited = (&mut self.read).take(read as u64);
            match tokio::time::timeout(wait, limited.read_buf(&mut self.buf)).await {
                Err(_) => {
                    return match (deadline, self.frame) {
                        (Some(d), Some(f)) if d <= Instant::now() + Duration::from_millis(1) => {
                            Next::TooSlow {
                                got: self.buf.len(),
                                after: f.started.elapsed(),
                            }
                        }
                        _ => Next::Idle,
                    };
                }
                Ok(Ok(0) | Err(_)) => return Next::Closed,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Room to read the next part of a frame of `wanted` bytes: held in
    /// the budget, and in the buffer. How much to read; `None` when no room
    /// came in time.
    async fn make_room(&mut self, wanted: usize) -> Option<usize> {
        let len = self.buf.len();
        let cap = self.buf.capacity();
        let mapped = wanted >= MAPPED;
        // Its first bytes came: room for all of it (and its options, which
        // come after the part `wanted` counts).
        let whole = len >= READ;
        let target = if whole {
            wanted + OPTIONS
        } else {
            (len + READ).min(wanted + OPTIONS)
        };
        let capacity = if mapped {
            cap.max(hydra_forward::transient_capacity(wanted))
        } else if target <= cap {
            cap
        } else if whole {
            target
        } else {
            // Doubling, as a vector grows, but never past the frame.
            target.max(cap.saturating_mul(2).min(wanted + OPTIONS))
        };
        let mut read = (capacity - len).clamp(1, READ);
        // A mapped buffer costs what it holds; another, its capacity.
        let buffered = if mapped { len + read } else { capacity };
        let need = if whole {
            buffered.max(wanted)
        } else {
            buffered
        };
        if !self.held.try_reserve(need) {
            if wanted <= FREE && len < FREE {
                // A small frame: read within what needs no room, so small
                // clients go on while large frames wait.
                if cap < FREE {
                    let mut grown = BytesMut::with_capacity(FREE);
                    grown.extend_from_slice(&self.buf);
                    self.buf = grown;
                }
                read = FREE - len;
                return Some(read);
            }
            let waited = Instant::now();
            if !self.held.reserve(need, BUDGET_WAIT).await {
                return None;
            }
            // Waiting for room is hydra's doing, not the client's.
            if let Some(f) = self.frame.as_mut() {
                f.started += waited.elapsed();
            }
        }
        if capacity > cap {
            // Given back once the frame was handled (`settle`).
            self.large |= capacity > READ;
            if mapped {
                // At once: only the pages written become resident.
                self.buf.reserve(capacity - len);
            } else {
                let mut grown = BytesMut::with_capacity(capacity);
                grown.extend_from_slice(&self.buf);
                self.buf = grown;
            }
        }
        Some(read)
    }

    /// The request taken out was handled: give back its room.
    pub(super) fn settle(&mut self) {
        if std::mem::take(&mut self.large) || self.buf.capacity() > READ {
            // The buffer grew for a frame. The frame taken out of it shared
            // its allocation, and so would the rest of the buffer after the
            // frame is gone: it is moved to a small one, so the room given
            // back is memory given back.
            let mut rest = BytesMut::with_capacity(self.buf.len().max(FREE));
            rest.extend_from_slice(&self.buf);
            self.buf = rest;
        }
        self.held.keep(self.buf.capacity());
    }
}

/// Inflates `c` on a blocking thread, with room for it in the memory
/// budget (held until the events are appended). `None` when no room came
/// in time.
///
/// An inflation gets at most what the connection's share leaves beside its
/// own compressed frame (`held`): asking for more, a batch would wait for
/// ever on its own frame, or on other connections holding part of the
/// budget while they wait too. A batch that needs more is dropped as too
/// large.
pub(super) async fn inflate(
    c: hydra_forward::Compressed,
    settings: &Settings,
    held: usize,
) -> Option<(Request, Room)> {
    let mut c = c;
    let max = c
        .max_inflated()
        .min(settings.budget.total() / 2)
        .min(settings.share.saturating_sub(held))
        .max(1);
    let mut limit = INFLATE_FIRST.min(max);
    loop {
        let room = Room::take(&settings.budget, limit, BUDGET_WAIT).await?;
        let Ok(turn) = settings.inflating.clone().acquire_owned().await else {
            return None;
        };
        let inflated = tokio::task::spawn_blocking(move || {
            let r = c.inflate_within(limit);
            drop(turn);
            r
        });
        match inflated.await {
            Ok(Ok(request)) => return Some((request, room)),
            // Inflates past the first guess: wait for room for all of it.
            Ok(Err(back)) if limit < max => {
                drop(room);
                c = *back;
                limit = max;
            }
            // Past all the room this connection can have.
            Ok(Err(back)) => return Some((back.too_large(limit), room)),
            Err(_) => return None,
        }
    }
}
