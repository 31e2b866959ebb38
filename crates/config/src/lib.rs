//! hydra's configuration: one YAML file.
//!
//! Every key is documented in `docs/configuration.md`. Unknown keys are
//! errors that name the key and its line; durations are written `1s`,
//! `500ms`, `2m`; sizes `64MiB`, `512KiB` or a number of bytes.
//!
//! ```
//! let config = hydra_config::Config::from_yaml(r#"
//! inputs:
//!   - type: tail
//!     path: /var/log/nginx/access.log
//!     tag: access
//! output:
//!   type: forward
//!   servers:
//!     - { host: 127.0.0.1, port: 24224 }
//! "#)?;
//! assert_eq!(config.field_name, "message");
//! # Ok::<(), hydra_config::Error>(())
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use hydra_parse::{Format, ParserSpec, Types, Unmatched};

mod cases;
mod go;
pub use cases::{Case, Event, cases_from_yaml, load_cases};
pub use go::GoArgs;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid YAML, or not the expected shape.
    #[error("{0}")]
    Parse(String),
    /// Well-formed but not usable.
    #[error("{0}")]
    Invalid(String),
}

/// A byte size: `64MiB`, `1GB`, `512KiB`, or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

impl Size {
    /// As `usize`, saturating.
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Size(n)),
            Raw::S(s) => s
                .trim()
                .parse::<bytesize::ByteSize>()
                .map(|b| Size(b.as_u64()))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "invalid size {s:?} (examples: 64MiB, 512KiB, 1GB)"
                    ))
                }),
        }
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self.0;
        let text = [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
            .iter()
            .find(|(unit, _)| n >= *unit && n.is_multiple_of(*unit))
            .map_or_else(
                || n.to_string(),
                |(unit, name)| format!("{}{name}", n / unit),
            );
        s.serialize_str(&text)
    }
}

fn default_field_name() -> String {
    "message".to_owned()
}
fn yes() -> bool {
    true
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Joined with `.` before every input's tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_prefix: Option<String>,
    /// Record key for a tailed line.
    #[serde(default = "default_field_name")]
    pub field_name: String,
    /// Where tail positions are saved; without it, files start at their
    /// end each time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positions: Option<PathBuf>,
    /// Where events come from.
    #[serde(default)]
    pub inputs: Vec<Input>,
    /// Applied in order, before the buffer, to events whose tag matches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<hydra_filter::Spec>,
    /// Where events go.
    pub output: Output,
    /// The in-memory buffer between inputs and the output.
    #[serde(default)]
    pub buffer: BufferConfig,
    /// The stats endpoint; absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<Monitor>,
    /// Log level (`error`, `warn`, `info`, `debug`, `trace`, or a
    /// tracing filter); `RUST_LOG` wins when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// How long a shutdown may spend delivering what was accepted.
    #[serde(default = "default_shutdown", with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

fn default_shutdown() -> Duration {
    Duration::from_secs(10)
}

/// One input.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Input {
    /// Follow files.
    Tail(TailInput),
    /// Accept Forward protocol clients.
    Forward(ForwardInput),
}

/// `type: tail`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TailInput {
    /// A path or a glob, or a list of them.
    pub path: OneOrMany,
    /// Globs to leave out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// The tag (after `tag_prefix`).
    pub tag: String,
    /// Read files present at start from the beginning.
    #[serde(default)]
    pub read_from_head: bool,
    /// Record key for the line; the top-level `field_name` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_name: Option<String>,
    /// Add the file's path to each record under this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_key: Option<String>,
    /// Add the host name to each record under this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
    /// Longest line kept whole.
    #[serde(default = "default_max_line")]
    pub max_line_bytes: Size,
    /// `truncate` or `skip` longer lines.
    #[serde(default)]
    pub long_lines: LongLines,
    /// Most of this input's lines held in the buffer, read and not yet
    /// delivered; past it, reading waits (the file keeps the rest).
    #[serde(default = "default_tail_buffered")]
    pub max_buffered_bytes: Size,
    /// Remove `\r` before `\n`.
    #[serde(default)]
    pub strip_cr: bool,
    /// Emit a last line without newline after this long.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub partial_flush: Option<Duration>,
    /// How long a rotated file is still read.
    #[serde(default = "default_rotate_wait", with = "humantime_serde")]
    pub rotate_wait: Duration,
    /// How often globs are expanded again.
    #[serde(default = "default_refresh", with = "humantime_serde")]
    pub refresh_interval: Duration,
    /// How often every file is checked whatever inotify says.
    #[serde(default = "default_poll", with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Use inotify (turn off on NFS).
    #[serde(default = "yes")]
    pub inotify: bool,
    /// `none` (the line as it is), `ltsv`, `json` or `regexp`.
    #[serde(default)]
    pub format: Format,
    /// For `format: regexp`: a pattern with named groups, or `apache`,
    /// `nginx`, `syslog`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regexp: Option<String>,
    /// Field conversions: `"size:integer,reqtime:float"` or a map.
    #[serde(default, skip_serializing_if = "Types::is_empty")]
    pub types: Types,
    /// Take each event's time from the line.
    #[serde(default)]
    pub time_parse: bool,
    /// The field holding the time.
    #[serde(default = "default_time_key")]
    pub time_key: String,
    /// `rfc3339`, `apache`, `nginx`, `syslog`, `unix`, or a strftime
    /// pattern; the regexp preset's own by default, else `rfc3339`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_format: Option<String>,
    /// Keep the time field in the record.
    #[serde(default = "yes")]
    pub keep_time_key: bool,
    /// A line that does not match its format: `emit` it as
    /// `{field_name: line}`, or `drop` it (counted either way).
    #[serde(default)]
    pub unmatched: Unmatched,
    /// Join lines into multiline events (stack traces) before parsing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiline: Option<Multiline>,
}

/// How a tail input joins lines into multiline events: a preset, or a
/// `start` and/or `continue` pattern.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Multiline {
    /// `java`, `python`, `go` or `ruby`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<hydra_parse::multiline::Preset>,
    /// A line matching this starts an event; other lines continue it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Only lines matching this continue an event; others start one.
    #[serde(default, rename = "continue", skip_serializing_if = "Option::is_none")]
    pub continue_: Option<String>,
    /// A pending event is emitted after this long without a new line.
    #[serde(default = "default_flush_timeout", with = "humantime_serde")]
    pub flush_timeout: Duration,
    /// An event is cut at this many lines (the cut is counted).
    #[serde(default = "default_max_lines")]
    pub max_lines: usize,
    /// An event is cut before it grows past this size (counted).
    #[serde(default = "default_max_event")]
    pub max_bytes: Size,
}

impl Multiline {
    /// The compiled rules.
    pub fn rules(&self) -> Result<hydra_parse::multiline::Rules, hydra_parse::Error> {
        use hydra_parse::multiline::Rules;
        match self.preset {
            Some(p) => Rules::preset(p),
            None => Rules::custom(self.start.as_deref(), self.continue_.as_deref()),
        }
    }
}

fn default_flush_timeout() -> Duration {
    Duration::from_secs(1)
}
fn default_max_lines() -> usize {
    1000
}
fn default_max_event() -> Size {
    Size(1 << 20)
}

fn default_time_key() -> String {
    "time".to_owned()
}

impl TailInput {
    /// How this input's lines are parsed; `field_name` is the top-level
    /// default for inputs without their own.
    pub fn parser_spec(&self, field_name: &str) -> ParserSpec {
        ParserSpec {
            format: self.format,
            regexp: self.regexp.clone(),
            types: self.types.clone(),
            time_parse: self.time_parse,
            time_key: self.time_key.clone(),
            time_format: self.time_format.clone(),
            keep_time_key: self.keep_time_key,
            field_name: self
                .field_name
                .clone()
                .unwrap_or_else(|| field_name.to_owned()),
            unmatched: self.unmatched,
        }
    }
}

fn default_max_line() -> Size {
    Size(256 << 10)
}
fn default_tail_buffered() -> Size {
    // Two chunks: one in flight while the next fills. One chunk was 10-20%
    // slower when parsing lines; 64 MiB no faster (measured).
    Size(2 << 20)
}
fn default_rotate_wait() -> Duration {
    Duration::from_secs(5)
}
fn default_refresh() -> Duration {
    Duration::from_secs(5)
}
fn default_poll() -> Duration {
    Duration::from_secs(1)
}

/// What happens to an over-long line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LongLines {
    /// Keep the first `max_line_bytes`.
    #[default]
    Truncate,
    /// Drop it.
    Skip,
}

/// One string or a list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl OneOrMany {
    /// All of them.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// Where a forward input listens: a TCP address (`127.0.0.1:24224`), or a
/// unix socket (`unix:/run/hydra/forward.sock`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// TCP; the UDP heartbeat is answered on the same port.
    Tcp(SocketAddr),
    /// A unix stream socket at this path.
    Unix(PathBuf),
}

impl Listen {
    /// The TCP address, if it is one.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            Listen::Tcp(a) => Some(*a),
            Listen::Unix(_) => None,
        }
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Tcp(a) => write!(f, "{a}"),
            Listen::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl std::str::FromStr for Listen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.strip_prefix("unix:") {
            Some("") => Err("`unix:` needs a socket path after it".to_owned()),
            Some(path) => Ok(Listen::Unix(PathBuf::from(path))),
            None => s.parse().map(Listen::Tcp).map_err(|_| {
                format!("invalid listen address {s:?} (expected HOST:PORT or unix:PATH)")
            }),
        }
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Listen {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `type: forward` input.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardInput {
    /// TCP address (the UDP heartbeat is answered on the same port), or
    /// `unix:PATH`.
    #[serde(default = "default_forward_listen")]
    pub listen: Listen,
    /// With `listen: unix:PATH`: the socket file's permissions, in octal
    /// (`"0660"`). By default, what the umask leaves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// When a client's chunk is acked: once `delivered` (the default) or
    /// once `buffered`.
    #[serde(default)]
    pub ack: AckWhen,
    /// Prefixed (with `.`) to the tags clients send; the top-level
    /// `tag_prefix` applies too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_prefix: Option<String>,
    /// Connections at once; more wait in the kernel's backlog.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Largest frame accepted.
    #[serde(default = "default_max_frame")]
    pub max_frame_bytes: Size,
    /// Largest inflated size of a compressed frame's events, per
    /// connection; 4 × `max_frame_bytes` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_decompressed_bytes: Option<Size>,
    /// Bytes of partly read frames and inflated events all connections
    /// of this input may hold at once; past it, connections wait.
    #[serde(default = "default_max_pending")]
    pub max_pending_bytes: Size,
    /// A connection silent this long is closed.
    #[serde(default = "default_idle", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// TLS for this input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsServer>,
    /// The shared-key handshake (and optional user authentication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<Security>,
}

/// TLS on a forward input.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsServer {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
    /// Require client certificates signed by this CA (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
}

/// TLS to an output server.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsClient {
    /// CA certificates to trust (PEM); the system's roots when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// Name expected in the server's certificate; `host` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Client certificate (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// Its key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// Do not verify the server's certificate (logged as a warning).
    #[serde(default)]
    pub insecure: bool,
}

/// Where a shared key comes from: inline, a file, or an environment
/// variable. Exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SharedKey {
    /// The key itself; never printed.
    #[serde(default, skip_serializing)]
    pub shared_key: Option<String>,
    /// A file holding the key (a trailing newline is ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_key_file: Option<PathBuf>,
    /// An environment variable holding the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_key_env: Option<String>,
}

impl SharedKey {
    fn sources(&self) -> usize {
        usize::from(self.shared_key.is_some())
            + usize::from(self.shared_key_file.is_some())
            + usize::from(self.shared_key_env.is_some())
    }

    /// The key, read from wherever it is; `None` when none is configured.
    pub fn resolve(&self) -> Result<Option<String>, Error> {
        if let Some(k) = &self.shared_key {
            return Ok(Some(k.clone()));
        }
        if let Some(path) = &self.shared_key_file {
            let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            let key = text.trim_end_matches(['\n', '\r']).to_owned();
            if key.is_empty() {
                return Err(Error::Invalid(format!(
                    "{}: the shared key file is empty",
                    path.display()
                )));
            }
            return Ok(Some(key));
        }
        if let Some(var) = &self.shared_key_env {
            return match std::env::var(var) {
                Ok(k) if !k.is_empty() => Ok(Some(k)),
                _ => Err(Error::Invalid(format!(
                    "shared_key_env: the environment variable {var} is not set"
                ))),
            };
        }
        Ok(None)
    }
}

/// `security:` on a forward input.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Security {
    /// This server's name in PONG; the machine's by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_hostname: Option<String>,
    /// The shared key clients must know.
    #[serde(flatten)]
    pub key: SharedKey,
    /// When not empty, clients must also log in as one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<User>,
}

/// A user for the handshake's user authentication.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Name.
    pub username: String,
    /// Password; never printed.
    #[serde(skip_serializing)]
    pub password: String,
}

impl ForwardInput {
    /// `mode` as permission bits, when it is set and valid.
    pub fn socket_mode(&self) -> Option<u32> {
        let m = self.mode.as_deref()?;
        u32::from_str_radix(m.strip_prefix("0o").unwrap_or(m), 8)
            .ok()
            .filter(|m| *m <= 0o7777)
    }
}

fn default_forward_listen() -> Listen {
    Listen::Tcp(SocketAddr::from(([127, 0, 0, 1], 24224)))
}
fn default_max_connections() -> usize {
    1024
}
fn default_max_frame() -> Size {
    Size(16 << 20)
}
fn default_max_pending() -> Size {
    Size(32 << 20)
}
fn default_idle() -> Duration {
    Duration::from_secs(300)
}

/// When the forward input acks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AckWhen {
    /// Once the output delivered them (its server acked them, with
    /// `require_ack`): an acked chunk survives hydra being killed.
    #[default]
    Delivered,
    /// Once the events are in hydra's memory: faster for the client, but
    /// lost if hydra dies before delivering them.
    Buffered,
}

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
    pub compress: Option<Compress>,
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

fn default_dead_letter_after() -> u32 {
    5
}

fn default_flush() -> Duration {
    Duration::from_secs(1)
}
fn default_chunk() -> Size {
    Size(1 << 20)
}
fn default_connect() -> Duration {
    Duration::from_secs(5)
}
fn default_send() -> Duration {
    Duration::from_secs(30)
}
fn default_ack_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_recover() -> Duration {
    Duration::from_secs(10)
}
fn default_in_flight() -> usize {
    4
}

/// How chunks spread over servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// The first healthy server.
    #[default]
    Failover,
    /// By weight.
    RoundRobin,
}

/// Compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compress {
    /// gzip.
    Gzip,
}

/// One destination.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// Host name or address.
    pub host: String,
    /// Port.
    #[serde(default = "default_port")]
    pub port: u16,
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

fn default_port() -> u16 {
    24224
}
fn default_weight() -> u32 {
    60
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
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            max_bytes: default_max_bytes(),
            max_events: default_max_events(),
        }
    }
}

fn default_max_bytes() -> Size {
    Size(64 << 20)
}
fn default_max_events() -> usize {
    1 << 20
}

/// `monitor:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Monitor {
    /// Address of the stats endpoint.
    #[serde(default = "default_monitor_listen")]
    pub listen: SocketAddr,
    /// Also answer Zabbix passive checks about hydra on this address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zabbix_listen: Option<SocketAddr>,
    /// Require `Authorization: Bearer <token>` on every request.
    #[serde(default, skip_serializing)]
    pub token: Option<String>,
    /// The same token, read from a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
}

impl Monitor {
    /// The bearer token, if one is configured. An empty or blank one is an
    /// error, never "no token": authentication fails closed.
    pub fn resolve_token(&self) -> Result<Option<String>, Error> {
        match (&self.token, &self.token_file) {
            (Some(_), Some(_)) => Err(Error::Invalid(
                "monitor: use `token` or `token_file`, not both".to_owned(),
            )),
            (Some(t), None) if t.trim().is_empty() => Err(Error::Invalid(
                "monitor.token: the token is empty".to_owned(),
            )),
            (Some(t), None) => Ok(Some(t.clone())),
            (None, Some(p)) => {
                let t = std::fs::read_to_string(p).map_err(|source| Error::Read {
                    path: p.clone(),
                    source,
                })?;
                let t = t.trim_end_matches(['\n', '\r']);
                if t.trim().is_empty() {
                    return Err(Error::Invalid(format!(
                        "monitor.token_file: {} holds no token",
                        p.display()
                    )));
                }
                Ok(Some(t.to_owned()))
            }
            (None, None) => Ok(None),
        }
    }
}

fn default_monitor_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 24220))
}

/// The embedded default configuration's text.
pub const DEFAULT_YAML: &str = include_str!("default.yaml");

impl Config {
    /// The embedded default: a forward input on 127.0.0.1:24224, the
    /// monitor on 127.0.0.1:24220, output to stdout.
    pub fn embedded_default() -> Config {
        // The embedded text is tested to parse.
        Config::from_yaml(DEFAULT_YAML).unwrap_or_else(|e| unreachable!("embedded default: {e}"))
    }

    /// Reads and validates a file.
    pub fn load(path: &std::path::Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        let ext = path.extension().and_then(|e| e.to_str());
        let toml = match ext {
            Some("toml") => true,
            Some("yaml" | "yml") => false,
            _ => go::looks_like_toml(&text),
        };
        let parsed = if toml {
            Config::from_go_toml(&text)
        } else {
            Config::from_yaml(&text)
        };
        parsed.map_err(|e| match e {
            Error::Parse(m) => Error::Parse(format!("{}: {m}", path.display())),
            Error::Invalid(m) => Error::Invalid(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Reads the Go fluent-agent-hydra's TOML configuration, with its
    /// defaults.
    pub fn from_go_toml(text: &str) -> Result<Config, Error> {
        go::from_toml(text)
    }

    /// Parses and validates YAML text.
    pub fn from_yaml(text: &str) -> Result<Config, Error> {
        let config: Config =
            serde_yaml::from_str(text).map_err(|e| Error::Parse(describe(&e, text)))?;
        config.validate()?;
        Ok(config)
    }

    /// The effective configuration as YAML, secrets left out.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_default()
    }

    fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Invalid(m));
        if let Some(m) = &self.monitor {
            m.resolve_token()?;
        }
        if let Err(e) = hydra_filter::Chain::new(&self.filters, "localhost") {
            return bad(e.to_string());
        }
        for (i, input) in self.inputs.iter().enumerate() {
            match input {
                Input::Tail(t) => {
                    if t.tag.trim().is_empty() {
                        return bad(format!("inputs[{i}] (tail): `tag` must not be empty"));
                    }
                    if t.path.to_vec().iter().any(|p| p.trim().is_empty())
                        || t.path.to_vec().is_empty()
                    {
                        return bad(format!(
                            "inputs[{i}] (tail): `path` must name a file or a glob"
                        ));
                    }
                    if t.max_line_bytes.0 == 0 {
                        return bad(format!(
                            "inputs[{i}] (tail): `max_line_bytes` must be positive"
                        ));
                    }
                    if t.max_buffered_bytes.0 == 0 || t.max_buffered_bytes.0 > u64::from(u32::MAX) {
                        return bad(format!(
                            "inputs[{i}] (tail): `max_buffered_bytes` must be between 1 byte and 4GiB"
                        ));
                    }
                    if t.poll_interval.is_zero() || t.refresh_interval.is_zero() {
                        return bad(format!("inputs[{i}] (tail): intervals must be positive"));
                    }
                    if let Err(e) = hydra_parse::Parser::new(&t.parser_spec(&self.field_name)) {
                        return bad(format!("inputs[{i}] (tail): {e}"));
                    }
                    if let Some(m) = &t.multiline {
                        if m.preset.is_some() && (m.start.is_some() || m.continue_.is_some()) {
                            return bad(format!(
                                "inputs[{i}] (tail): `multiline` takes a `preset` or `start`/`continue` patterns, not both"
                            ));
                        }
                        if let Err(e) = m.rules() {
                            return bad(format!("inputs[{i}] (tail): {e}"));
                        }
                        if m.flush_timeout.is_zero() || m.max_lines == 0 || m.max_bytes.0 == 0 {
                            return bad(format!(
                                "inputs[{i}] (tail): `multiline.flush_timeout`, `max_lines` and `max_bytes` must be positive"
                            ));
                        }
                    }
                }
                Input::Forward(f) => {
                    if let Some(s) = &f.security
                        && s.key.sources() != 1
                    {
                        return bad(format!(
                            "inputs[{i}] (forward): `security` needs exactly one of `shared_key`, `shared_key_file`, `shared_key_env`"
                        ));
                    }
                    if f.listen.tcp().is_some_and(|a| a.port() == 0) {
                        return bad(format!(
                            "inputs[{i}] (forward): `listen` needs a port other than 0"
                        ));
                    }
                    if let Some(m) = &f.mode {
                        if !matches!(f.listen, Listen::Unix(_)) {
                            return bad(format!(
                                "inputs[{i}] (forward): `mode` is for `listen: unix:PATH`"
                            ));
                        }
                        if f.socket_mode().is_none() {
                            return bad(format!(
                                "inputs[{i}] (forward): `mode` {m:?} is not an octal file mode such as \"0660\""
                            ));
                        }
                    }
                    if f.max_pending_bytes.0 == 0 || f.max_pending_bytes.0 > u64::from(u32::MAX) {
                        return bad(format!(
                            "inputs[{i}] (forward): `max_pending_bytes` must be between 1 byte and 4GiB"
                        ));
                    }
                    if f.idle_timeout.is_zero() {
                        return bad(format!(
                            "inputs[{i}] (forward): `idle_timeout` must be positive"
                        ));
                    }
                    if f.max_connections == 0 || f.max_frame_bytes.0 < 1024 {
                        return bad(format!(
                            "inputs[{i}] (forward): `max_connections` must be positive and `max_frame_bytes` at least 1KiB"
                        ));
                    }
                }
            }
        }
        let listens: Vec<Listen> = self
            .inputs
            .iter()
            .filter_map(|i| match i {
                Input::Forward(f) => Some(f.listen.clone()),
                Input::Tail(_) => None,
            })
            .chain(self.monitor.iter().map(|m| Listen::Tcp(m.listen)))
            .chain(
                self.monitor
                    .iter()
                    .filter_map(|m| m.zabbix_listen.map(Listen::Tcp)),
            )
            .collect();
        for (i, a) in listens.iter().enumerate() {
            if listens[..i].contains(a) {
                return bad(format!(
                    "{a} is used twice (forward inputs and the monitor need their own addresses)"
                ));
            }
        }
        if let Output::Forward(f) = &self.output {
            if f.servers.is_empty() {
                return bad("output (forward): `servers` must list at least one server".to_owned());
            }
            for (i, s) in f.servers.iter().enumerate() {
                if s.host.trim().is_empty() {
                    return bad(format!("output.servers[{i}]: `host` must not be empty"));
                }
                if s.port == 0 {
                    return bad(format!(
                        "output.servers[{i}]: `port` must be between 1 and 65535"
                    ));
                }
                if s.weight == 0 {
                    return bad(format!("output.servers[{i}]: `weight` must be positive"));
                }
                if s.key.sources() > 1 {
                    return bad(format!(
                        "output.servers[{i}]: use only one of `shared_key`, `shared_key_file`, `shared_key_env`"
                    ));
                }
                if s.username.is_some() != s.password.is_some() {
                    return bad(format!(
                        "output.servers[{i}]: `username` and `password` go together"
                    ));
                }
                if let Some(t) = &s.tls
                    && t.cert.is_some() != t.key.is_some()
                {
                    // A certificate without its key would be dropped
                    // silently, and the server would see no client
                    // certificate at all.
                    return bad(format!(
                        "output.servers[{i}].tls: `cert` and `key` go together"
                    ));
                }
            }
            for (name, d) in [
                ("connect_timeout", f.connect_timeout),
                ("send_timeout", f.send_timeout),
                ("ack_timeout", f.ack_timeout),
            ] {
                if d.is_zero() {
                    // With `ack_timeout: 0` nothing would ever count as
                    // delivered.
                    return bad(format!("output (forward): `{name}` must be positive"));
                }
            }
            if f.chunk_bytes.0 == 0 || f.max_in_flight == 0 {
                return bad(
                    "output (forward): `chunk_bytes` and `max_in_flight` must be positive"
                        .to_owned(),
                );
            }
            if f.dead_letter.as_ref().is_some_and(|d| d.after == 0) {
                return bad("output.dead_letter: `after` must be positive".to_owned());
            }
            if f.chunk_bytes > self.buffer.max_bytes {
                return bad(
                    "output (forward): `chunk_bytes` must not exceed `buffer.max_bytes`".to_owned(),
                );
            }
        }
        if self.buffer.max_bytes.0 < 1024 || self.buffer.max_events == 0 {
            return bad(
                "buffer: `max_bytes` must be at least 1KiB and `max_events` positive".to_owned(),
            );
        }
        Ok(())
    }
}

/// A serde_yaml error with its line. For an unknown key, the line is the
/// key's own: inside a tagged section (`type: ...`) serde_yaml can only
/// point at the section's start.
fn describe(e: &serde_yaml::Error, text: &str) -> String {
    let msg = e.to_string();
    let from = e.location().map_or(0, |l| l.line().saturating_sub(1));
    let unknown = msg
        .split("unknown field `")
        .nth(1)
        .and_then(|rest| rest.split('`').next());
    if let Some(key) = unknown {
        let is_key = |line: &str| {
            line.trim_start()
                .trim_start_matches('-')
                .trim_start()
                .starts_with(&format!("{key}:"))
                || line.contains(&format!("{{ {key}:"))
                || line.contains(&format!(", {key}:"))
        };
        if let Some(n) = text
            .lines()
            .enumerate()
            .skip(from)
            .find(|(_, l)| is_key(l))
            .map(|(n, _)| n)
        {
            let base = msg.split(" at line ").next().unwrap_or(&msg);
            return format!("{base} at line {}", n + 1);
        }
    }
    // A bad value: find the line that holds it (`70000`, "lots").
    let token = msg
        .split('`')
        .nth(1)
        .or_else(|| msg.split('"').nth(1))
        .filter(|t| !t.is_empty() && !t.contains(' '));
    if let Some(token) = token
        && let Some(n) = text
            .lines()
            .enumerate()
            .skip(from)
            .find(|(_, l)| l.contains(token))
            .map(|(n, _)| n)
    {
        let base = msg.split(" at line ").next().unwrap_or(&msg);
        return format!("{base} at line {}", n + 1);
    }
    match e.location() {
        Some(loc) if !msg.contains(" at line ") => format!("{msg} at line {}", loc.line()),
        _ => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_is_valid() {
        let c = Config::embedded_default();
        assert!(matches!(c.output, Output::Stdout(_)));
        assert_eq!(
            c.monitor.unwrap().listen,
            "127.0.0.1:24220".parse().unwrap()
        );
        let [Input::Forward(f)] = &c.inputs[..] else {
            panic!()
        };
        assert_eq!(f.listen, "127.0.0.1:24224".parse().unwrap());
    }

    #[test]
    fn the_documented_shape_parses() {
        let c = Config::from_yaml(
            r#"
tag_prefix: nginx
field_name: message
positions: /var/lib/hydra/positions.json
inputs:
  - type: tail
    path: /var/log/nginx/access.log
    tag: access
    read_from_head: false
  - type: forward
    listen: 127.0.0.1:24224
output:
  type: forward
  servers:
    - { host: 127.0.0.1, port: 24224 }
    - { host: backup.example, port: 24224, standby: true }
  require_ack: true
  flush_interval: 1s
  compress: gzip
buffer: { max_bytes: 64MiB }
monitor: { listen: 127.0.0.1:24220 }
"#,
        )
        .unwrap();
        assert_eq!(c.buffer.max_bytes, Size(64 << 20));
        let Output::Forward(f) = &c.output else {
            panic!()
        };
        assert_eq!(f.flush_interval, Duration::from_secs(1));
        assert!(f.servers[1].standby);
        assert_eq!(f.compress, Some(Compress::Gzip));
        // The effective config round-trips.
        assert_eq!(Config::from_yaml(&c.to_yaml()).unwrap(), c);
    }

    #[test]
    fn errors_name_the_problem_and_its_line() {
        let unknown = Config::from_yaml("output:\n  type: stdout\nbogus: 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            unknown.contains("bogus") && unknown.contains("line 3"),
            "{unknown}"
        );
        let nested = Config::from_yaml("inputs:\n  - type: tail\n    path: /x\n    tag: t\n    colour: red\noutput: {type: stdout}\n")
            .unwrap_err()
            .to_string();
        assert!(
            nested.contains("colour") && nested.contains("line 5"),
            "{nested}"
        );
        let port = Config::from_yaml(
            "output:\n  type: forward\n  servers:\n    - { host: a, port: 70000 }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(port.contains("line 4"), "{port}");
        let zero =
            Config::from_yaml("output:\n  type: forward\n  servers: [{ host: a, port: 0 }]\n")
                .unwrap_err()
                .to_string();
        assert!(zero.contains("port"), "{zero}");
        let dur = Config::from_yaml(
            "output:\n  type: forward\n  flush_interval: soon\n  servers: [{host: a}]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            dur.contains("flush_interval") || dur.contains("line 3"),
            "{dur}"
        );
        let missing =
            Config::from_yaml("inputs:\n  - type: tail\n    tag: t\noutput: {type: stdout}\n")
                .unwrap_err()
                .to_string();
        assert!(missing.contains("path"), "{missing}");
        let size = Config::from_yaml("output: {type: stdout}\nbuffer: { max_bytes: lots }\n")
            .unwrap_err()
            .to_string();
        assert!(size.contains("invalid size"), "{size}");
        let empty = Config::from_yaml("output: {type: forward, servers: []}\n")
            .unwrap_err()
            .to_string();
        assert!(empty.contains("at least one server"), "{empty}");
    }

    #[test]
    fn security_and_tls_shapes() {
        let c = Config::from_yaml(
            r#"
inputs:
  - type: forward
    listen: 0.0.0.0:24224
    tls: { cert: /etc/hydra/server.crt, key: /etc/hydra/server.key, client_ca: /etc/hydra/ca.crt }
    security:
      self_hostname: aggregator-1
      shared_key: secret
      users: [ { username: alice, password: pw } ]
output:
  type: forward
  self_hostname: web-1
  servers:
    - host: agg.example
      port: 24224
      shared_key_env: HYDRA_TEST_UNSET_VARIABLE
      username: alice
      password: pw
      tls: { ca: /etc/hydra/ca.crt, server_name: agg.example }
"#,
        )
        .unwrap();
        let Input::Forward(f) = &c.inputs[0] else {
            panic!()
        };
        let s = f.security.as_ref().unwrap();
        assert_eq!(s.key.resolve().unwrap().as_deref(), Some("secret"));
        assert_eq!(s.users[0].username, "alice");
        let Output::Forward(o) = &c.output else {
            panic!()
        };
        let err = o.servers[0].key.resolve().unwrap_err().to_string();
        assert!(err.contains("HYDRA_TEST_UNSET_VARIABLE"), "{err}");
        let text = c.to_yaml();
        assert!(!text.contains("secret") && !text.contains(": pw"), "{text}");
        assert!(text.contains("shared_key_env"));
        let two = Config::from_yaml(
            "inputs:\n  - type: forward\n    security: { shared_key: a, shared_key_file: /k }\noutput: {type: stdout}\n",
        );
        assert!(two.unwrap_err().to_string().contains("exactly one"));
    }

    #[test]
    fn secrets_are_never_printed() {
        let c = Config::from_yaml("output:\n  type: forward\n  servers: [{ host: a, shared_key: s3cret, username: u, password: pw }]\n").unwrap();
        let text = c.to_yaml();
        assert!(!text.contains("s3cret") && !text.contains("pw"), "{text}");
    }
}
