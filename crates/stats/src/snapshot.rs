//! The model `GET /` serves: what every input, file, server and filter is
//! doing, as one [`Snapshot`].

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// What the forward inputs received.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Receiver {
    /// Listen addresses.
    pub address: Vec<String>,
    /// Events accepted.
    pub messages: u64,
    /// Bytes of accepted frames.
    pub bytes: u64,
    /// Events held in hydra's buffer right now.
    pub buffered: u64,
    /// Events that were invalid and skipped.
    pub disposed: u64,
    /// Frames dropped whole (bad shape, too large when inflated).
    pub dropped_frames: u64,
    /// Connections closed because their stream was corrupt or over a limit.
    pub rejected_connections: u64,
    /// Connections open now.
    pub connections: u64,
    /// Acks sent back to clients.
    pub acks: u64,
    /// Chunks a client sent again while the first copy was still
    /// undelivered (`ack: delivered`): acked with it, not buffered twice.
    pub resent_chunks: u64,
    /// Connections closed because they found no room in
    /// `max_pending_bytes` in time (their clients send again).
    pub over_budget: u64,
    /// Clients refused in the shared-key handshake.
    pub auth_failures: u64,
    /// TLS handshakes that failed.
    pub tls_failures: u64,
    /// Events accepted per second, over the last second.
    pub events_per_sec: f64,
    /// Frames dropped whole, by cause (`bad_tag`, `malformed`,
    /// `unsupported_compression`, `inflate_failed`, `inflated_too_large`).
    pub dropped_by_cause: BTreeMap<String, u64>,
    /// Connections hydra closed, by cause (`corrupt`, `over_budget`,
    /// `too_slow`, `idle`, `acks_unread`, `unexpected_ping`, `tls`,
    /// `auth`).
    pub closed_by_cause: BTreeMap<String, u64>,
    /// Dropped frames not written to `output.dead_letter`: their cause had
    /// written its 4 MiB of the hour.
    pub dropped_not_kept: u64,
}

impl Receiver {
    /// The sum of several listeners' counters, with `buffered` events held.
    pub fn total(listeners: &[Receiver], buffered: u64) -> Receiver {
        let mut t = Receiver {
            buffered,
            ..Receiver::default()
        };
        for l in listeners {
            t.address.extend(l.address.iter().cloned());
            t.messages += l.messages;
            t.bytes += l.bytes;
            t.disposed += l.disposed;
            t.dropped_frames += l.dropped_frames;
            t.rejected_connections += l.rejected_connections;
            t.connections += l.connections;
            t.acks += l.acks;
            t.resent_chunks += l.resent_chunks;
            t.over_budget += l.over_budget;
            t.dropped_not_kept += l.dropped_not_kept;
            for (cause, n) in &l.dropped_by_cause {
                *t.dropped_by_cause.entry(cause.clone()).or_default() += n;
            }
            for (cause, n) in &l.closed_by_cause {
                *t.closed_by_cause.entry(cause.clone()).or_default() += n;
            }
            t.auth_failures += l.auth_failures;
            t.tls_failures += l.tls_failures;
            t.events_per_sec += l.events_per_sec;
        }
        t
    }
}

/// One output server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Server {
    /// `host:port`.
    pub address: String,
    /// Connected.
    pub alive: bool,
    /// The last error, empty when none.
    pub error: String,
    /// Used only when the others are down.
    pub standby: bool,
    /// Events delivered.
    pub messages: u64,
    /// Chunks delivered.
    pub chunks: u64,
    /// Chunks sent again after a failure.
    pub retries: u64,
    /// Chunks sent and not yet acked.
    pub acks_pending: u64,
    /// Unix time of the last delivery.
    pub last_delivery: Option<u64>,
    /// Getting traffic now: in failover, the first live server (standbys
    /// only when no other is live); in round robin, every live one.
    pub active: bool,
    /// Events delivered per second, over the last second.
    pub events_per_sec: f64,
}

/// One tailed file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct File {
    /// The tag its lines are sent with.
    pub tag: String,
    /// Offset after the last line read.
    pub position: u64,
    /// Offset delivered and committed.
    pub committed: u64,
    /// Bytes not yet read (size − position).
    pub behind: u64,
    /// Lines read.
    pub lines: u64,
    /// Multiline events cut at `max_lines` or `max_bytes`.
    #[serde(skip_serializing_if = "is_zero")]
    pub multiline_cuts: u64,
    /// Why it cannot be read, empty when it can.
    pub error: String,
    /// Lines read per second, over the last second.
    pub lines_per_sec: f64,
}

/// What one filter did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Filter {
    /// Its `match` pattern.
    #[serde(rename = "match")]
    pub pattern: String,
    /// `grep`, `record` or `throttle`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Events it let through.
    pub passed: u64,
    /// Events it dropped (committed: they do not come back).
    pub dropped: u64,
    /// Events it could not judge, passed unchanged.
    pub errors: u64,
    /// Milliseconds inputs were held back (throttle).
    pub held_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Per tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sent {
    /// Events delivered.
    pub messages: u64,
    /// Bytes delivered.
    pub bytes: u64,
}

/// The buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Buffer {
    /// Bytes held.
    pub bytes: u64,
    /// Events held.
    pub events: u64,
    /// The ceiling.
    pub max_bytes: u64,
    /// Chunks waiting to be sent.
    pub queued_chunks: u64,
    /// Chunks sent again after a failure.
    pub retried_chunks: u64,
    /// Times producers waited for room.
    pub producer_waits: u64,
    /// Events delivered by the output since the start.
    pub delivered: u64,
    /// Events of chunks the servers kept refusing, written to the
    /// dead-letter file instead (counted in `delivered` too).
    pub dead_lettered: u64,
}

/// What a tail input's parser could not parse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Parsing {
    /// Lines that did not match the format.
    pub unmatched: u64,
    /// Of those, lines dropped (`unmatched: drop`).
    pub dropped: u64,
    /// Values kept as strings because they did not convert.
    pub type_errors: u64,
    /// Lines whose time did not parse (they carry the read time).
    pub time_errors: u64,
}

/// Everything `GET /` shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Snapshot {
    /// Forward inputs.
    pub receiver: Receiver,
    /// Each forward input on its own (`receiver` is their sum).
    pub listeners: Vec<Receiver>,
    /// Output servers.
    pub servers: Vec<Server>,
    /// Tailed files by path.
    pub files: BTreeMap<String, File>,
    /// Delivered per tag.
    pub sent: BTreeMap<String, Sent>,
    /// What the buffer holds, and its ceiling.
    pub buffer: Buffer,
    /// Per tag of a tail input with a `format`, what did not parse.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub parsing: BTreeMap<String, Parsing>,
    /// Per tag of a tail input with `path_fields`, files whose path did
    /// not match (read all the same, without those fields).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub path_unmatched: BTreeMap<String, u64>,
    /// Each configured filter, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
    /// Problems not tied to one file or server (for example, positions
    /// that cannot be saved).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Events the output delivered per second, over the last second.
    pub delivered_per_sec: f64,
    /// `delivered_per_sec` once a second over the last minute, oldest
    /// first.
    pub delivered_history: Vec<f64>,
    /// `GET /tap` readers.
    pub tap: TapStats,
    /// SIGHUP reloads refused since hydra started (the new configuration
    /// could not start; the running one went on).
    pub reload_failures: u64,
    /// SIGHUP reloads that brought the new configuration in.
    pub reloads: u64,
    /// What `GET /health` says is wrong; empty while healthy.
    pub health: Vec<crate::Reason>,
    /// The disk buffer, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<Disk>,
}

/// The disk buffer (`buffer.disk`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Disk {
    /// Its directory.
    pub path: String,
    /// Bytes its chunk files hold.
    pub bytes: u64,
    /// `disk.max_bytes`.
    pub max_bytes: u64,
    /// Chunks on disk, open or waiting or being sent.
    pub chunks: u64,
    /// Age of the oldest chunk, in seconds.
    pub oldest_secs: u64,
    /// Syncs made.
    pub syncs: u64,
    /// The last sync's duration, in milliseconds.
    pub sync_ms: f64,
    /// The longest sync, in milliseconds.
    pub sync_max_ms: f64,
    /// Appends that waited for room under `max_bytes`.
    pub full_waits: u64,
    /// Appends that waited for the file system (no room, over quota, an
    /// I/O error).
    pub failing_waits: u64,
    /// Appends wait for room now.
    pub full: bool,
    /// The last write or sync failed, and none has succeeded since.
    pub failing: bool,
    /// Damaged records set aside under `corrupt/`.
    pub corrupt_records: u64,
    /// Files whose last record a crash cut short.
    pub torn_tails: u64,
    /// Writes, syncs or removals that failed.
    pub write_errors: u64,
}

/// `GET /tap` readers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TapStats {
    /// Readers connected now.
    pub readers: u64,
    /// Events that readers missed because they read too slowly.
    pub missed: u64,
}

/// Produces the current snapshot.
pub type SnapshotFn = Arc<dyn Fn() -> Snapshot + Send + Sync>;
