//! Why a frame was dropped or a connection closed: each cause has a fixed
//! code, a counter in the monitor, one log line per [`EVERY`] at most
//! (an attacker sending bad frames as fast as it can gets no more), and,
//! for dropped frames, a capped copy in the dead-letter file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{error, warn};

use crate::listen::Peer;
use crate::log_limit::LogLimit;

/// Why a whole frame was not accepted. Sending it again would not make
/// it acceptable: a frame with a chunk id is acked ("the server has it"),
/// so that its client stops waiting and does not resend it for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dropped {
    /// The tag is not a UTF-8 string.
    BadTag,
    /// Not a Forward request: the wrong shape, options that are not a
    /// map, entries that are not a string or binary.
    Malformed,
    /// A `compressed` option other than gzip or zstd.
    UnsupportedCompression,
    /// gzip or zstd data that does not inflate.
    InflateFailed,
    /// Inflates past `max_decompressed_bytes`, or past the room one
    /// connection may hold in `max_pending_bytes`.
    InflatedTooLarge,
}

impl Dropped {
    pub(crate) const ALL: [Dropped; 5] = [
        Dropped::BadTag,
        Dropped::Malformed,
        Dropped::UnsupportedCompression,
        Dropped::InflateFailed,
        Dropped::InflatedTooLarge,
    ];

    pub(crate) fn of(error: &hydra_forward::Error) -> Dropped {
        use hydra_forward::Error as E;
        match error {
            E::BadTag => Dropped::BadTag,
            E::UnsupportedCompression { .. } => Dropped::UnsupportedCompression,
            E::Gzip(_) | E::Zstd(_) => Dropped::InflateFailed,
            E::DecompressedTooLarge { .. } => Dropped::InflatedTooLarge,
            _ => Dropped::Malformed,
        }
    }

    pub(crate) fn code(self) -> &'static str {
        match self {
            Dropped::BadTag => "bad_tag",
            Dropped::Malformed => "malformed",
            Dropped::UnsupportedCompression => "unsupported_compression",
            Dropped::InflateFailed => "inflate_failed",
            Dropped::InflatedTooLarge => "inflated_too_large",
        }
    }
}

/// Why hydra closed a connection (its client's own close is not counted).
/// Frames not yet answered on it get no ack: their client sends them
/// again, on a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// Bytes that cannot be delimited into frames, or a frame over
    /// `max_frame_bytes` or the nesting limit: nothing after it can be
    /// trusted.
    Corrupt,
    /// No room in `max_pending_bytes` within the wait: transient, the
    /// client sends again.
    OverBudget,
    /// A frame's body came slower than `min_frame_rate`.
    TooSlow,
    /// Silent for `idle_timeout`.
    Idle,
    /// Its acks went unread for the ack write timeout.
    AcksUnread,
    /// A PING on an input without a shared key.
    UnexpectedPing,
    /// The TLS handshake failed or timed out.
    Tls,
    /// The shared-key handshake failed.
    Auth,
}

impl Closed {
    pub(crate) const ALL: [Closed; 8] = [
        Closed::Corrupt,
        Closed::OverBudget,
        Closed::TooSlow,
        Closed::Idle,
        Closed::AcksUnread,
        Closed::UnexpectedPing,
        Closed::Tls,
        Closed::Auth,
    ];

    pub(crate) fn code(self) -> &'static str {
        match self {
            Closed::Corrupt => "corrupt",
            Closed::OverBudget => "over_budget",
            Closed::TooSlow => "too_slow",
            Closed::Idle => "idle",
            Closed::AcksUnread => "acks_unread",
            Closed::UnexpectedPing => "unexpected_ping",
            Closed::Tls => "tls",
            Closed::Auth => "auth",
        }
    }

    /// Whether it is worth a warning: an idle client is not a fault.
    fn warns(self) -> bool {
        !matches!(self, Closed::Idle)
    }
}

/// The counts per cause, and the log limit per cause.
#[derive(Debug, Default)]
pub(crate) struct Causes {
    dropped: [AtomicU64; Dropped::ALL.len()],
    closed: [AtomicU64; Closed::ALL.len()],
    /// Dropped frames not kept in the dead-letter file: their cause's cap
    /// was reached.
    pub(crate) not_kept: AtomicU64,
    dropped_logs: Mutex<[LogLimit; Dropped::ALL.len()]>,
    closed_logs: Mutex<[LogLimit; Closed::ALL.len()]>,
}

impl Causes {
    /// Counts a dropped frame and logs it within the limit.
    pub(crate) fn dropped(&self, cause: Dropped, peer: &Peer, error: &hydra_forward::Error) {
        let i = cause as usize;
        self.dropped[i].fetch_add(1, Ordering::Relaxed);
        let allowed = self
            .dropped_logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)[i]
            .allow(Instant::now());
        if let Some(held_back) = allowed {
            warn!(%peer, cause = cause.code(), %error, held_back, "Dropped a frame that cannot be accepted; acked if it had a chunk id (logged once per 10 s per cause).");
        }
    }

    /// Counts a connection hydra closed and logs it within the limit.
    pub(crate) fn closed(&self, cause: Closed, peer: &Peer, detail: &dyn std::fmt::Display) {
        let i = cause as usize;
        self.closed[i].fetch_add(1, Ordering::Relaxed);
        if !cause.warns() {
            return;
        }
        let allowed = self
            .closed_logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)[i]
            .allow(Instant::now());
        if let Some(held_back) = allowed {
            warn!(%peer, cause = cause.code(), %detail, held_back, "Closed a connection; what it had not been answered for is sent again by its client (logged once per 10 s per cause).");
        }
    }

    pub(crate) fn dropped_count(&self, cause: Dropped) -> u64 {
        self.dropped[cause as usize].load(Ordering::Relaxed)
    }

    pub(crate) fn closed_count(&self, cause: Closed) -> u64 {
        self.closed[cause as usize].load(Ordering::Relaxed)
    }

    /// Every cause's count, by code.
    pub(crate) fn snapshot(&self) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
        let dropped = Dropped::ALL
            .iter()
            .map(|c| (c.code().to_owned(), self.dropped_count(*c)))
            .collect();
        let closed = Closed::ALL
            .iter()
            .map(|c| (c.code().to_owned(), self.closed_count(*c)))
            .collect();
        (dropped, closed)
    }
}

/// The most bytes of dropped frames written to the dead-letter file per
/// cause per [`DEAD_LETTER_WINDOW`]: a client sending bad frames cannot
/// fill the disk, and each cause still leaves samples to look at.
pub(crate) const DEAD_LETTER_CAP: u64 = 4 << 20;

/// The window [`DEAD_LETTER_CAP`] applies to.
pub(crate) const DEAD_LETTER_WINDOW: Duration = Duration::from_secs(3600);

/// Dropped frames written to `output.dead_letter`, within a cap per cause.
#[derive(Debug)]
pub(crate) struct DeadLetters {
    path: PathBuf,
    /// Per cause: when its window started, and the bytes written in it.
    spent: Mutex<[(Option<Instant>, u64); Dropped::ALL.len()]>,
}

impl DeadLetters {
    pub(crate) fn new(path: PathBuf) -> DeadLetters {
        DeadLetters {
            path,
            spent: Mutex::new([(None, 0); Dropped::ALL.len()]),
        }
    }

    /// Whether `bytes` more of `cause` fit in its window now; counts them
    /// if they do.
    pub(crate) fn admit(&self, cause: Dropped, bytes: u64, now: Instant) -> bool {
        let mut spent = self
            .spent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (start, used) = &mut spent[cause as usize];
        if start.is_none_or(|s| now.saturating_duration_since(s) >= DEAD_LETTER_WINDOW) {
            *start = Some(now);
            *used = 0;
        }
        if *used + bytes > DEAD_LETTER_CAP {
            return false;
        }
        *used += bytes;
        true
    }

    /// Appends `frame` as it came, off the I/O threads, if its cause has
    /// room left in its window; false when it had none.
    pub(crate) async fn write(&self, cause: Dropped, frame: Bytes) -> bool {
        use std::io::Write;
        if !self.admit(cause, frame.len() as u64, Instant::now()) {
            return false;
        }
        let path = self.path.clone();
        let written = tokio::task::spawn_blocking(move || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(&frame))
        })
        .await;
        if let Ok(Err(e)) = written {
            error!(path = %self.path.display(), error = %e, "Cannot write a dropped frame to the dead-letter file.");
        }
        true
    }
}

/// The interval of [`Causes`]' log lines, for the docs and tests.
#[cfg(test)]
pub(crate) const LOG_EVERY: Duration = crate::log_limit::EVERY;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_decoder_error_that_drops_a_frame_has_a_cause() {
        use hydra_forward::Error as E;
        let io = || std::io::Error::other("x");
        let cases = [
            (E::BadTag, "bad_tag"),
            (E::NotAnArray, "malformed"),
            (E::Malformed("x"), "malformed"),
            (
                E::UnsupportedCompression { name: "lz4".into() },
                "unsupported_compression",
            ),
            (E::Gzip(io()), "inflate_failed"),
            (E::Zstd(io()), "inflate_failed"),
            (E::DecompressedTooLarge { limit: 1 }, "inflated_too_large"),
        ];
        for (error, code) in cases {
            assert!(error.can_continue());
            assert_eq!(Dropped::of(&error).code(), code);
        }
    }

    #[test]
    fn the_dead_letter_cap_is_per_cause_and_per_window() {
        let dl = DeadLetters::new(PathBuf::from("/nonexistent"));
        let t0 = Instant::now();
        assert!(dl.admit(Dropped::BadTag, DEAD_LETTER_CAP - 10, t0));
        assert!(!dl.admit(Dropped::BadTag, 11, t0));
        // Another cause has its own room.
        assert!(dl.admit(Dropped::InflateFailed, 11, t0));
        // A new window.
        assert!(dl.admit(Dropped::BadTag, 11, t0 + DEAD_LETTER_WINDOW));
    }

    #[test]
    fn counts_go_on_while_logs_wait_for_the_interval() {
        let causes = Causes::default();
        let peer = Peer::Unix;
        for _ in 0..1000 {
            causes.dropped(Dropped::BadTag, &peer, &hydra_forward::Error::BadTag);
            causes.closed(Closed::TooSlow, &peer, &"slow");
        }
        assert_eq!(causes.dropped_count(Dropped::BadTag), 1000);
        assert_eq!(causes.closed_count(Closed::TooSlow), 1000);
        // Only the first of each was let through; the rest wait for
        // LOG_EVERY.
        let mut limits = causes.dropped_logs.lock().unwrap();
        assert_eq!(limits[Dropped::BadTag as usize].allow(Instant::now()), None);
        assert!(
            limits[Dropped::BadTag as usize]
                .allow(Instant::now() + LOG_EVERY)
                .is_some_and(|held| held >= 1000)
        );
    }
}
