//! The sender's counters, for the monitor.

use std::collections::BTreeMap;

/// One server's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServerStats {
    /// `host:port`.
    pub address: String,
    /// Connected.
    pub alive: bool,
    /// A standby server.
    pub standby: bool,
    /// The last error, while it is down.
    pub error: Option<String>,
    /// Chunks delivered.
    pub chunks: u64,
    /// Events delivered.
    pub events: u64,
    /// Bytes delivered.
    pub bytes: u64,
    /// Chunks handed back undelivered (to be sent again).
    pub retries: u64,
    /// Chunks sent and not yet acked.
    pub in_flight: usize,
    /// Unix time of the last delivery.
    pub last_delivery: Option<u64>,
    /// Taking traffic now (see [`crate::Selector::active`]).
    pub active: bool,
}

/// Delivered events and bytes for one tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TagStats {
    /// Events.
    pub messages: u64,
    /// Bytes of encoded frames.
    pub bytes: u64,
}

/// The sender's counters, as a serde-serializable snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SenderStats {
    /// Per server, in configured order.
    pub servers: Vec<ServerStats>,
    /// Per tag.
    pub sent: BTreeMap<String, TagStats>,
    /// Chunks written to the dead-letter file.
    pub dead_lettered_chunks: u64,
    /// Their events.
    pub dead_lettered_events: u64,
    /// Turns of the dispatcher: at least one a second while it runs, so a
    /// count that stops moving means it is wedged.
    pub beats: u64,
}
