//! The Go fluent-agent-hydra's configuration: its TOML file and its
//! command-line form, read into hydra's [`Config`] with the Go agent's
//! defaults, so replacing it is a binary swap.
//!
//! `docs/migrating.md` has the side-by-side table.

use std::net::{SocketAddr, ToSocketAddrs};

use serde::Deserialize;

use crate::{
    Balance, BufferConfig, Config, Error, ForwardInput, ForwardOutput, Input, Monitor, OneOrMany,
    Output, Rule, Server, TailInput,
};

const DEFAULT_PORT: u16 = 24224;
const DEFAULT_MONITOR_PORT: u16 = 24223;
/// The Go agent's `MaxBufferMessages` default.
const DEFAULT_MAX_BUFFER_MESSAGES: usize = 1024 * 1024;
/// Go's `time.RFC3339`, the Go agent's default `TimeFormat`.
const GO_RFC3339: &str = "2006-01-02T15:04:05Z07:00";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct GoConfig {
    tag_prefix: Option<String>,
    field_name: Option<String>,
    read_buffer_size: Option<i64>,
    #[serde(default)]
    server_round_robin: bool,
    #[serde(default)]
    sub_second_time: bool,
    #[serde(default)]
    logs: Vec<GoLog>,
    #[serde(default)]
    servers: Vec<GoServer>,
    receiver: Option<GoReceiver>,
    monitor: Option<GoMonitor>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct GoLog {
    file: String,
    tag: String,
    field_name: Option<String>,
    format: Option<String>,
    regexp: Option<String>,
    types: Option<String>,
    #[serde(default)]
    time_parse: bool,
    time_key: Option<String>,
    time_format: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct GoServer {
    host: String,
    port: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct GoReceiver {
    host: Option<String>,
    port: Option<u16>,
    max_buffer_messages: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct GoMonitor {
    host: Option<String>,
    port: Option<u16>,
}

/// Whether `text` looks like the Go agent's TOML rather than YAML: its first
/// meaningful line is a `[table]` or a `Key = value`.
pub(crate) fn looks_like_toml(text: &str) -> bool {
    let Some(line) = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
    else {
        return false;
    };
    if line.starts_with('[') {
        return true;
    }
    line.split_once('=').is_some_and(|(k, _)| {
        let k = k.trim();
        !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Reads the Go agent's TOML configuration.
pub(crate) fn from_toml(text: &str) -> Result<Config, Error> {
    let go: GoConfig = toml::from_str(text).map_err(Error::Toml)?;
    convert(go)
}

/// The Go agent's command-line form: `TAG FILE PRIMARY [SECONDARY...]`,
/// with `-f FIELD` and `-m HOST:PORT`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoArgs {
    /// The tag of the tailed file.
    pub tag: String,
    /// The file to follow.
    pub file: String,
    /// Servers as `host` or `host:port`, primary first.
    pub servers: Vec<String>,
    /// The record key of a line (`-f`).
    pub field_name: Option<String>,
    /// The monitor's address (`-m`).
    pub monitor: Option<String>,
}

impl Config {
    /// The configuration the Go agent built from its command-line form.
    pub fn from_go_args(args: &GoArgs) -> Result<Config, Error> {
        let servers = args
            .servers
            .iter()
            .map(|s| {
                let (host, port) = split_host_port(s)?;
                Ok(GoServer {
                    host,
                    port: Some(port.unwrap_or(DEFAULT_PORT)),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let monitor = match &args.monitor {
            Some(m) => {
                let (host, port) = split_host_port(m)?;
                let Some(port) = port else {
                    return Err(Error::invalid(format!("-m {m}"), Rule::MonitorPort));
                };
                Some(GoMonitor {
                    host: Some(host),
                    port: Some(port),
                })
            }
            None => None,
        };
        convert(GoConfig {
            field_name: args.field_name.clone(),
            logs: vec![GoLog {
                file: args.file.clone(),
                tag: args.tag.clone(),
                ..GoLog::default()
            }],
            servers,
            monitor,
            ..GoConfig::default()
        })
    }
}

/// `host:port`, `[v6]:port` or a bare host.
fn split_host_port(s: &str) -> Result<(String, Option<u16>), Error> {
    let bad = || Error::invalid("address", Rule::HostPort(s.to_owned()));
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((host.to_owned(), Some(p.parse().map_err(|_| bad())?))),
            None if after.is_empty() => Ok((host.to_owned(), None)),
            None => Err(bad()),
        };
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            Ok((host.to_owned(), Some(port.parse().map_err(|_| bad())?)))
        }
        Some(_) if s.parse::<std::net::Ipv6Addr>().is_ok() => Ok((s.to_owned(), None)),
        Some(_) => Err(bad()),
        None if s.is_empty() => Err(bad()),
        None => Ok((s.to_owned(), None)),
    }
}

fn resolve(host: &str, port: u16, what: &str) -> Result<SocketAddr, Error> {
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| Error::invalid(what, Rule::Unresolvable(format!("{host}:{port}"))))
}

fn convert(go: GoConfig) -> Result<Config, Error> {
    let mut config = Config::embedded_default();
    config.inputs.clear();
    config.monitor = None;
    if let Some(f) = go.field_name.filter(|f| !f.is_empty()) {
        config.field_name = f;
    }
    if go.read_buffer_size.is_some_and(|n| n < 0) {
        return Err(Error::invalid("ReadBufferSize", Rule::Negative));
    }
    for (i, log) in go.logs.into_iter().enumerate() {
        let what = format!("[[Logs]] #{}", i + 1);
        if log.file.is_empty() || log.tag.is_empty() {
            return Err(Error::invalid(what, Rule::FileAndTag));
        }
        if log.file == "-" {
            return Err(Error::invalid(what, Rule::Stdin));
        }
        // The Go agent put TagPrefix on tailed files only, not on what its
        // receiver accepted: so does this translation.
        let tag = match go.tag_prefix.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => format!("{p}.{}", log.tag),
            None => log.tag,
        };
        let format = match log
            .format
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("" | "none") => crate::Format::None,
            Some("ltsv") => crate::Format::Ltsv,
            Some("json") => crate::Format::Json,
            Some("regexp") => crate::Format::Regexp,
            Some(other) => {
                return Err(Error::invalid(what, Rule::GoFormat(other.to_owned())));
            }
        };
        let types = match log.types.as_deref() {
            Some(t) => t
                .parse()
                .map_err(|e| Error::invalid(format!("{what}: Types"), Rule::Parser(e)))?,
            None => crate::Types::default(),
        };
        let time_format = match log.time_format.as_deref() {
            None | Some("") => None,
            Some(f) => Some(go_time_format(f)),
        };
        let mut tail: TailInput = serde_yaml::from_str(&format!(
            "{{path: {}, tag: {}}}",
            yaml_str(&log.file),
            yaml_str(&tag)
        ))
        .map_err(|error| Error::invalid(&what, Rule::Template(error)))?;
        tail.path = OneOrMany::One(log.file);
        tail.tag = tag;
        tail.field_name = log.field_name.filter(|f| !f.is_empty());
        tail.format = format;
        tail.regexp = log.regexp;
        // The Go agent ignored these on unparsed lines; so does this
        // translation, rather than refuse the file.
        let parsed = format != crate::Format::None;
        tail.types = if parsed {
            types
        } else {
            crate::Types::default()
        };
        tail.time_parse = parsed && log.time_parse;
        if let Some(k) = log.time_key.filter(|k| !k.is_empty()) {
            tail.time_key = k;
        }
        tail.time_format = time_format;
        config.inputs.push(Input::Tail(tail));
    }
    if go.servers.is_empty() {
        return Err(Error::invalid("[[Servers]]", Rule::GoServers));
    }
    let servers = go
        .servers
        .into_iter()
        .map(|s| {
            if s.host.is_empty() {
                return Err(Error::invalid("[[Servers]]", Rule::Empty("Host")));
            }
            let mut server: Server =
                serde_yaml::from_str(&format!("{{host: {}}}", yaml_str(&s.host)))
                    .map_err(|error| Error::invalid("[[Servers]]", Rule::Template(error)))?;
            server.port = Some(s.port.filter(|p| *p != 0).unwrap_or(DEFAULT_PORT));
            Ok(server)
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let mut output: ForwardOutput =
        serde_yaml::from_str("servers: []").map_err(|error| Error::Yaml { line: None, error })?;
    output.servers = servers;
    output.balance = if go.server_round_robin {
        Balance::RoundRobin
    } else {
        Balance::Failover
    };
    // The Go agent sent whole seconds unless SubSecondTime was set.
    output.time_as_integer = !go.sub_second_time;
    config.output = Output::Forward(output);
    if let Some(r) = go.receiver {
        let host = r
            .host
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "0.0.0.0".into());
        let port = r.port.filter(|p| *p != 0).unwrap_or(DEFAULT_PORT);
        let mut input: ForwardInput =
            serde_yaml::from_str("{}").map_err(|error| Error::Yaml { line: None, error })?;
        input.listen = crate::Listen::Tcp(resolve(&host, port, "[Receiver]")?);
        config.inputs.push(Input::Forward(input));
        config.buffer = BufferConfig {
            max_events: match r.max_buffer_messages {
                None | Some(0) => DEFAULT_MAX_BUFFER_MESSAGES,
                // -1 meant "no limit" in the Go agent; hydra always has a
                // ceiling, so it keeps its default.
                Some(n) if n < 0 => BufferConfig::default().max_events,
                Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            },
            ..BufferConfig::default()
        };
    }
    if let Some(m) = go.monitor {
        let host = m
            .host
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        let port = m.port.filter(|p| *p != 0).unwrap_or(DEFAULT_MONITOR_PORT);
        let mut monitor: Monitor =
            serde_yaml::from_str("{}").map_err(|error| Error::Yaml { line: None, error })?;
        monitor.listen = resolve(&host, port, "[Monitor]")?;
        config.monitor = Some(monitor);
    }
    config.validate()?;
    Ok(config.resolve())
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// A Go time layout (`02/Jan/2006:15:04:05 -0700`) as hydra's
/// `time_format`: a name where one fits, else a strftime pattern.
pub(crate) fn go_time_format(layout: &str) -> String {
    match layout {
        GO_RFC3339 | "2006-01-02T15:04:05.999999999Z07:00" | "rfc3339" => return "rfc3339".into(),
        "02/Jan/2006:15:04:05 -0700" | "apache" | "nginx" => return "apache".into(),
        "Jan _2 15:04:05" | "syslog" => return "syslog".into(),
        "unix" | "epoch" => return "unix".into(),
        _ => {}
    }
    // Longest tokens first, so `2006` is not read as `2` then `006`.
    const TOKENS: &[(&str, &str)] = &[
        ("January", "%B"),
        ("Monday", "%A"),
        ("Z07:00", "%#z"),
        ("Z0700", "%#z"),
        ("-07:00", "%:z"),
        ("-0700", "%z"),
        ("2006", "%Y"),
        (".000000000", "%.f"),
        (".999999999", "%.f"),
        (".000000", "%.f"),
        (".999999", "%.f"),
        (".000", "%.f"),
        (".999", "%.f"),
        ("Jan", "%b"),
        ("Mon", "%a"),
        ("MST", "%Z"),
        ("002", "%j"),
        ("_2", "%e"),
        ("01", "%m"),
        ("02", "%d"),
        ("03", "%I"),
        ("04", "%M"),
        ("05", "%S"),
        ("06", "%y"),
        ("15", "%H"),
        ("PM", "%p"),
        ("pm", "%P"),
        ("-07", "%z"),
        ("1", "%m"),
        ("2", "%d"),
        ("3", "%I"),
        ("4", "%M"),
        ("5", "%S"),
    ];
    let mut out = String::new();
    let mut rest = layout;
    'outer: while !rest.is_empty() {
        for (go, strf) in TOKENS {
            if let Some(r) = rest.strip_prefix(go) {
                out.push_str(strf);
                rest = r;
                continue 'outer;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            if c == '%' {
                out.push_str("%%");
            } else {
                out.push(c);
            }
        }
        rest = chars.as_str();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_layouts() {
        assert_eq!(go_time_format(GO_RFC3339), "rfc3339");
        assert_eq!(go_time_format("02/Jan/2006:15:04:05 -0700"), "apache");
        assert_eq!(
            go_time_format("02/Jan/2006:15:04:05 Z0700"),
            "%d/%b/%Y:%H:%M:%S %#z"
        );
        assert_eq!(
            go_time_format("2006-01-02 15:04:05.000 MST"),
            "%Y-%m-%d %H:%M:%S%.f %Z"
        );
        assert_eq!(
            go_time_format("Mon Jan _2 15:04:05 2006"),
            "%a %b %e %H:%M:%S %Y"
        );
        assert_eq!(go_time_format("100%"), "%m00%%");
    }

    #[test]
    fn host_and_port() {
        assert_eq!(split_host_port("a:1").ok(), Some(("a".into(), Some(1))));
        assert_eq!(split_host_port("a").ok(), Some(("a".into(), None)));
        assert_eq!(
            split_host_port("[::1]:5").ok(),
            Some(("::1".into(), Some(5)))
        );
        assert_eq!(split_host_port("::1").ok(), Some(("::1".into(), None)));
        assert!(split_host_port("a:x").is_err());
        assert!(split_host_port("host:port:x").is_err());
        assert!(split_host_port("").is_err());
    }

    #[test]
    fn toml_is_told_from_yaml() {
        assert!(looks_like_toml("# c\n\nTagPrefix = \"x\"\n"));
        assert!(looks_like_toml("[[Logs]]\nFile = \"a\""));
        assert!(!looks_like_toml("inputs:\n  - type: tail\n"));
        assert!(!looks_like_toml("# only a comment\n"));
        assert!(!looks_like_toml("output: {type: stdout}\n"));
    }
}
