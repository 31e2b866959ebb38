//! `inputs:`: tail inputs (files, their formats and multiline rules) and
//! forward inputs (listeners and their limits).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::{
    Format, LongLines, ParserSpec, Rule, Security, Size, TlsServer, Types, Unmatched, yes,
};

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
    /// Fields read from each file's path: `kubernetes` (the kubelet's
    /// layouts, as a `kubernetes` map), or a regex whose named groups
    /// become fields. The tag may use their names: `${pod_name}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_fields: Option<hydra_parse::path::PathFields>,
}

impl TailInput {
    /// The compiled `path_fields` and the tag's template, if the tag has
    /// `${...}` parts.
    pub fn path_rules(
        &self,
    ) -> Result<
        (
            Option<hydra_parse::path::PathRules>,
            Option<hydra_parse::path::TagTemplate>,
        ),
        Rule,
    > {
        let rules = self
            .path_fields
            .as_ref()
            .map(hydra_parse::path::PathRules::new)
            .transpose()
            .map_err(|e| Rule::Key("path_fields", e))?;
        let names = rules
            .as_ref()
            .map(hydra_parse::path::PathRules::names)
            .unwrap_or_default();
        let template = hydra_parse::path::TagTemplate::new(&self.tag, &names)
            .map_err(|e| Rule::Key("tag", e))?;
        Ok((rules, template))
    }
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
    /// With `listen: unix:PATH`: the socket file's owner, a user name or
    /// a number. By default, the user hydra runs as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// With `listen: unix:PATH`: the socket file's group, a group name or
    /// a number. By default, hydra's group (or the directory's, setgid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// When a client's chunk is acked: once `delivered`, `stored` (on
    /// disk, synced) or `buffered`. Resolved when the file is read:
    /// `stored` with `buffer.disk`, `delivered` without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<AckWhen>,
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
    /// Bytes per second a frame's body must keep up with once its first
    /// bytes came (after a 2 s grace), or its connection is closed and its
    /// room in `max_pending_bytes` given back; `0` turns the check off.
    #[serde(default = "default_min_frame_rate")]
    pub min_frame_rate: Size,
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

impl ForwardInput {
    /// When the input acks, as resolved ([`crate::Config`] resolves it when
    /// it reads the file).
    pub fn ack(&self) -> AckWhen {
        self.ack.unwrap_or_default()
    }

    /// `mode` as permission bits, when it is set and valid.
    pub fn socket_mode(&self) -> Option<u32> {
        let m = self.mode.as_deref()?;
        u32::from_str_radix(m.strip_prefix("0o").unwrap_or(m), 8)
            .ok()
            .filter(|m| *m <= 0o7777)
    }
}

impl ForwardInput {
    /// `owner` and `group` as ids: a number as it is, a name looked up in
    /// `/etc/passwd` or `/etc/group`.
    pub fn socket_owner(&self) -> Result<(Option<u32>, Option<u32>), Rule> {
        let uid = match &self.owner {
            Some(o) => {
                Some(lookup_id("/etc/passwd", o).ok_or_else(|| Rule::UnknownUser(o.clone()))?)
            }
            None => None,
        };
        let gid = match &self.group {
            Some(g) => {
                Some(lookup_id("/etc/group", g).ok_or_else(|| Rule::UnknownGroup(g.clone()))?)
            }
            None => None,
        };
        Ok((uid, gid))
    }
}

/// `name` as a number, or the id (third field) of its line in `file`
/// (`/etc/passwd`, `/etc/group`).
fn lookup_id(file: &str, name: &str) -> Option<u32> {
    if let Ok(id) = name.parse() {
        return Some(id);
    }
    std::fs::read_to_string(file)
        .ok()?
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            (fields.next()? == name).then_some(())?;
            fields.nth(1)?.parse().ok()
        })
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

fn default_min_frame_rate() -> Size {
    Size(64 << 10)
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
    /// Once the events are in the disk buffer's file and synced: an acked
    /// chunk survives `kill -9` and power loss. Needs `buffer.disk`.
    Stored,
    /// Once the events are in hydra's memory (in the disk buffer's file,
    /// with `buffer.disk`): faster for the client; lost if hydra dies before
    /// delivering them (with the disk buffer: survives `kill -9`, not power
    /// loss).
    Buffered,
}
