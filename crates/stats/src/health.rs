//! The verdicts `GET /health` and `GET /live` give: whether hydra
//! delivers, and whether it is alive at all, each with fixed reason codes.
//!
//! Both answer without the monitor's token, so a reason names a kind of
//! trouble and never a path, a tag or an address.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Why hydra is unhealthy or wedged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Chunks have waited longer than `monitor.unhealthy_after` with
    /// nothing delivered.
    NotDelivering,
    /// The disk buffer reached its `max_bytes` or the filesystem is full:
    /// clients wait.
    DiskFull,
    /// Writing or syncing the disk buffer fails.
    DiskFailing,
    /// The positions file cannot be written: a restart would read lines
    /// again from an older place.
    PositionsUnwritable,
    /// The thread that reads files ended while hydra runs.
    TailReaderDied,
    /// The thread that reads files stopped turning.
    TailReaderStalled,
    /// The task that takes read lines into the buffer stopped turning.
    TailConsumerStalled,
    /// The forward output's dispatcher stopped turning.
    SenderStalled,
    /// A forward input's accepting task stopped turning.
    InputStalled,
    /// The checks themselves stopped running: the runtime is wedged.
    ChecksStalled,
}

impl Reason {
    /// Every reason, in the order verdicts list them.
    pub const ALL: [Reason; 10] = [
        Reason::NotDelivering,
        Reason::DiskFull,
        Reason::DiskFailing,
        Reason::PositionsUnwritable,
        Reason::TailReaderDied,
        Reason::TailReaderStalled,
        Reason::TailConsumerStalled,
        Reason::SenderStalled,
        Reason::InputStalled,
        Reason::ChecksStalled,
    ];

    /// The code `/health` and `/live` give it.
    pub fn code(self) -> &'static str {
        match self {
            Reason::NotDelivering => "not_delivering",
            Reason::DiskFull => "disk_full",
            Reason::DiskFailing => "disk_failing",
            Reason::PositionsUnwritable => "positions_unwritable",
            Reason::TailReaderDied => "tail_reader_died",
            Reason::TailReaderStalled => "tail_reader_stalled",
            Reason::TailConsumerStalled => "tail_consumer_stalled",
            Reason::SenderStalled => "sender_stalled",
            Reason::InputStalled => "input_stalled",
            Reason::ChecksStalled => "checks_stalled",
        }
    }

    /// Whether this reason means hydra itself is wedged (`/live`), rather
    /// than not delivering (`/health` only).
    pub fn wedged(self) -> bool {
        matches!(
            self,
            Reason::TailReaderDied
                | Reason::TailReaderStalled
                | Reason::TailConsumerStalled
                | Reason::SenderStalled
                | Reason::InputStalled
                | Reason::ChecksStalled
        )
    }
}

/// What is wrong now, every reason at most once, in a fixed order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Empty when healthy.
    pub reasons: Vec<Reason>,
}

impl Health {
    /// Healthy: everything delivers and turns.
    pub fn ok() -> Health {
        Health::default()
    }

    /// Adds `reason`, keeping the list sorted and without repeats.
    pub fn add(&mut self, reason: Reason) {
        if let Err(at) = self.reasons.binary_search(&reason) {
            self.reasons.insert(at, reason);
        }
    }

    /// The reasons that make `/live` fail.
    pub fn wedged(&self) -> Vec<Reason> {
        self.reasons
            .iter()
            .copied()
            .filter(|r| r.wedged())
            .collect()
    }

    /// Whether `/live` passes.
    pub fn live(&self) -> bool {
        self.wedged().is_empty()
    }

    /// Whether `/health` passes.
    pub fn healthy(&self) -> bool {
        self.reasons.is_empty()
    }
}

/// Returns the current [`Health`].
pub type HealthFn = Arc<dyn Fn() -> Health + Send + Sync>;

/// The body of `/health` and `/live`.
#[derive(Debug, Serialize)]
pub(crate) struct Verdict {
    status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reasons: Vec<Reason>,
}

/// `/health`: 200 while hydra delivers, 503 with every reason otherwise.
pub(crate) fn health_verdict(h: &Health) -> (bool, Verdict) {
    let ok = h.healthy();
    (
        ok,
        Verdict {
            status: if ok { "ok" } else { "unhealthy" },
            reasons: h.reasons.clone(),
        },
    )
}

/// `/live`: 503 only for the reasons that mean hydra is wedged.
pub(crate) fn live_verdict(h: &Health) -> (bool, Verdict) {
    let reasons = h.wedged();
    let ok = reasons.is_empty();
    (
        ok,
        Verdict {
            status: if ok { "ok" } else { "wedged" },
            reasons,
        },
    )
}
