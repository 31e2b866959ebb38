//! `output:` (stdout or forward servers) and `buffer:`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Balance, Compression, SharedKey, Size, TlsClient, yes};

/// The output.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Output {
    /// Forward protocol to Fluentd or Fluent Bit servers.
    Forward(ForwardOutput),
    /// JSON lines on standard output.
    Stdout(StdoutOutput),
}

/// `type: stdout`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutOutput {}

/// `type: forward` output.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardOutput {
    /// Primary first, then the others in order.
    pub servers: Vec<Server>,
    /// `failover` or `round_robin`.
    #[serde(default)]
    pub balance: Balance,
    /// Wait for the server's ack before a chunk counts as delivered.
    #[serde(default = "yes")]
    pub require_ack: bool,
    /// How long events wait in a chunk before it is sent.
    #[serde(default = "default_flush", with = "humantime_serde")]
    pub flush_interval: Duration,
    /// `gzip` to compress chunks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compress: Option<Compression>,
    /// Send integer times (seconds) instead of EventTime, for old receivers.
    #[serde(default)]
    pub time_as_integer: bool,
    /// Chunk size.
    #[serde(default = "default_chunk")]
    pub chunk_bytes: Size,
    /// Connect timeout.
    #[serde(default = "default_connect", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Write timeout.
    #[serde(default = "default_send", with = "humantime_serde")]
    pub send_timeout: Duration,
    /// Ack timeout.
    #[serde(default = "default_ack_timeout", with = "humantime_serde")]
    pub ack_timeout: Duration,
    /// Health a returning server needs before it gets traffic again.
    #[serde(default = "default_recover", with = "humantime_serde")]
    pub recover_wait: Duration,
    /// Chunks in flight per connection.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// Host name for the handshake; the machine's by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_hostname: Option<String>,
    /// Where a chunk the servers keep refusing is written, so the rest
    /// flows; without it such a chunk is retried for ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<DeadLetter>,
}

/// `output.dead_letter`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetter {
    /// The file chunks are appended to, as the Forward frames they were
    /// sent as.
    pub path: PathBuf,
    /// Failed sends of one chunk before it is written there.
    #[serde(default = "default_dead_letter_after")]
    pub after: u32,
}

/// `output.dead_letter.after`'s default: failed sends of one chunk before
/// it is set aside.
pub const DEFAULT_DEAD_LETTER_AFTER: u32 = 5;

fn default_dead_letter_after() -> u32 {
    DEFAULT_DEAD_LETTER_AFTER
}

fn default_flush() -> Duration {
    Duration::from_secs(1)
}

fn default_chunk() -> Size {
    Size(1 << 20)
}

fn default_connect() -> Duration {
    hydra_sender::DEFAULT_CONNECT_TIMEOUT
}

fn default_send() -> Duration {
    hydra_sender::DEFAULT_SEND_TIMEOUT
}

fn default_ack_timeout() -> Duration {
    hydra_sender::DEFAULT_ACK_TIMEOUT
}

fn default_recover() -> Duration {
    hydra_sender::DEFAULT_RECOVER_WAIT
}

fn default_in_flight() -> usize {
    hydra_sender::DEFAULT_MAX_IN_FLIGHT
}

/// One destination: `host` (and `port`), or `unix`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// Host name or address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// Port; resolved to 24224 when the file leaves it out (with `host`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// A unix socket to connect to instead of `host` and `port` (fluentd's
    /// in_unix, a hydra listening on `unix:PATH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unix: Option<PathBuf>,
    /// Round-robin weight.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Used only when every other server is down.
    #[serde(default)]
    pub standby: bool,
    /// Shared key for the handshake: `shared_key`, `shared_key_file` or
    /// `shared_key_env`.
    #[serde(flatten)]
    pub key: SharedKey,
    /// TLS to this server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsClient>,
    /// User for the handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password for the handshake.
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
}

/// The port of a server whose `port` is left out.
pub const DEFAULT_SERVER_PORT: u16 = 24224;

fn default_weight() -> u32 {
    hydra_sender::DEFAULT_WEIGHT
}

/// `buffer:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BufferConfig {
    /// Most bytes held in memory, from input to delivery.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: Size,
    /// Most events held.
    #[serde(default = "default_max_events")]
    pub max_events: usize,
    /// Chunks of forward inputs kept on disk until delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskBuffer>,
}

impl Server {
    /// Its port (24224 when left out).
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(DEFAULT_SERVER_PORT)
    }
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            max_bytes: default_max_bytes(),
            max_events: default_max_events(),
            disk: None,
        }
    }
}

/// `buffer.disk`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DiskBuffer {
    /// The buffer's directory: absolute, created at start if missing.
    pub path: PathBuf,
    /// The most its files may hold; past it, clients wait.
    #[serde(default = "default_disk_max_bytes")]
    pub max_bytes: Size,
    /// How often its files are synced.
    #[serde(default)]
    pub sync: Sync,
}

fn default_disk_max_bytes() -> Size {
    Size(1 << 30)
}

/// `buffer.disk.sync`: a duration, or `always`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// At least this often, and at once for `ack: stored`.
    Every(Duration),
    /// Every write, group-committed.
    Always,
}

impl Default for Sync {
    fn default() -> Self {
        Sync::Every(Duration::from_secs(1))
    }
}

impl Serialize for Sync {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Sync::Always => s.serialize_str("always"),
            Sync::Every(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Sync {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text == "always" {
            return Ok(Sync::Always);
        }
        humantime::parse_duration(&text)
            .map(Sync::Every)
            .map_err(|e| serde::de::Error::custom(format!("`sync` is a duration or `always`: {e}")))
    }
}

fn default_max_bytes() -> Size {
    Size(64 << 20)
}

fn default_max_events() -> usize {
    1 << 20
}
