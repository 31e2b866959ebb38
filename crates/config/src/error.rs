//! Why a configuration cannot be used: one variant per kind of failure,
//! each with what it is about, so callers can match and every message is
//! written once.

use std::path::PathBuf;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read. The OS error is the source, not part
    /// of the message, so a chain of causes names it once.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid YAML, or not the expected shape.
    #[error("{}", yaml_text(error, *line))]
    Yaml {
        /// The line it is about, when known: an unknown key's own line,
        /// or the line holding a bad value.
        line: Option<usize>,
        /// serde_yaml's error.
        error: serde_yaml::Error,
    },
    /// Not valid TOML (the Go agent's configuration), or not its shape.
    #[error("{0}")]
    Toml(toml::de::Error),
    /// An error in the file at `path`.
    #[error("{}: {error}", path.display())]
    In {
        /// The file.
        path: PathBuf,
        /// What is wrong in it.
        error: Box<Error>,
    },
    /// A key whose value breaks a rule.
    #[error("{at}: {rule}")]
    Invalid {
        /// Where: `inputs[0] (tail)`, `output.servers[1]`, `monitor`, ...
        at: String,
        /// What is wrong.
        rule: Rule,
    },
    /// The same address is listened on twice.
    #[error("{address} is used twice (forward inputs and the monitor need their own addresses)")]
    AddressTwice {
        /// The address listened on twice, as configured.
        address: String,
    },
    /// A filter that cannot be built.
    #[error("{0}")]
    Filter(hydra_filter::Error),
}

impl Error {
    /// [`Error::Invalid`] at `at`.
    pub(crate) fn invalid(at: impl Into<String>, rule: Rule) -> Error {
        Error::Invalid {
            at: at.into(),
            rule,
        }
    }
}

/// serde_yaml's message, with `line` in place of its own location.
fn yaml_text(e: &serde_yaml::Error, line: Option<usize>) -> String {
    let msg = e.to_string();
    match line {
        Some(n) => {
            let base = msg.split(" at line ").next().unwrap_or(&msg);
            format!("{base} at line {n}")
        }
        None => msg,
    }
}

/// What is wrong with a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Rule {
    /// A key that must have a value.
    #[error("`{0}` must not be empty")]
    Empty(&'static str),
    /// A tail input without a path.
    #[error("`path` must name a file or a glob")]
    NoPath,
    /// A number or duration that must be above zero.
    #[error("`{0}` must be positive")]
    Positive(&'static str),
    /// Several keys that must all be above zero.
    #[error("{0} must be positive")]
    AllPositive(&'static str),
    /// A value outside its range.
    #[error("`{key}` must be between {range}")]
    Range {
        /// The key whose value is out of range.
        key: &'static str,
        /// The range, as people write it.
        range: &'static str,
    },
    /// A line format or multiline rule that does not compile.
    #[error("{0}")]
    Parser(hydra_parse::Error),
    /// A key's value that hydra-parse refused.
    #[error("`{0}`: {1}")]
    Key(&'static str, hydra_parse::Error),
    /// A multiline preset together with patterns.
    #[error("`multiline` takes a `preset` or `start`/`continue` patterns, not both")]
    PresetAndPatterns,
    /// A shared key given in more than one way, or (where one is needed)
    /// not at all.
    #[error("{} one of `shared_key`, `shared_key_file`, `shared_key_env`", if *.needed { "`security` needs exactly" } else { "use only" })]
    KeySources {
        /// Whether a key is required here.
        needed: bool,
    },
    /// A TCP listener on port 0.
    #[error("`listen` needs a port other than 0")]
    PortZero,
    /// A file mode for a listener that is not a unix socket.
    #[error("`mode` is for `listen: unix:PATH`")]
    ModeNotUnix,
    /// A file mode that is not octal.
    #[error("`mode` {0:?} is not an octal file mode such as \"0660\"")]
    ModeNotOctal(String),
    /// An owner or group for a listener that is not a unix socket.
    #[error("`owner` and `group` are for `listen: unix:PATH`")]
    OwnerNotUnix,
    /// A user name that is not in `/etc/passwd`.
    #[error("`owner` {0:?} is not a user of this host")]
    UnknownUser(String),
    /// A group name that is not in `/etc/group`.
    #[error("`group` {0:?} is not a group of this host")]
    UnknownGroup(String),
    /// No connection allowed, or frames too small to carry anything.
    #[error("`max_connections` must be positive and `max_frame_bytes` at least 1KiB")]
    ConnectionsOrFrame,
    /// A forward output without servers.
    #[error("`servers` must list at least one server")]
    NoServers,
    /// One of two keys that go together, without the other.
    #[error("`{0}` and `{1}` go together")]
    Together(&'static str, &'static str),
    /// Two keys of which only one may be given.
    #[error("use `{0}` or `{1}`, not both")]
    NotBoth(&'static str, &'static str),
    /// A chunk larger than the whole buffer.
    #[error("`chunk_bytes` must not exceed `buffer.max_bytes`")]
    ChunkOverBuffer,
    /// A path that must be absolute.
    #[error("`{0}` must be an absolute path")]
    RelativePath(&'static str),
    /// A size below its least.
    #[error("`{0}` must be at least {1}")]
    AtLeast(&'static str, &'static str),
    /// `ack: stored` without a disk buffer to store in.
    #[error("`ack: stored` needs `buffer.disk`")]
    StoredNeedsDisk,
    /// A buffer too small for anything.
    #[error("`max_bytes` must be at least 1KiB and `max_events` positive")]
    BufferTooSmall,
    /// A secret given inline that is empty or blank.
    #[error("it is empty")]
    EmptySecret,
    /// A secret's file that holds nothing but blanks.
    #[error("{} holds no secret", .0.display())]
    EmptySecretFile(PathBuf),
    /// A secret's environment variable that is not set, or empty.
    #[error("the environment variable {0} is not set")]
    EnvUnset(String),
    /// (Go configuration) an address that is not `host` or `host:port`.
    #[error("{0:?} is not host or host:port")]
    HostPort(String),
    /// (Go configuration) a host name that does not resolve.
    #[error("cannot resolve {0}")]
    Unresolvable(String),
    /// (Go configuration) the monitor's address without a port.
    #[error("the monitor address needs a port (host:port)")]
    MonitorPort,
    /// (Go configuration) a number that must not be negative.
    #[error("must not be negative")]
    Negative,
    /// (Go configuration) a `[[Logs]]` entry without `File` or `Tag`.
    #[error("needs File and Tag")]
    FileAndTag,
    /// (Go configuration) `File = "-"`.
    #[error("File = \"-\" (standard input) is not supported; pipe into `hydra-cat TAG` instead")]
    Stdin,
    /// (Go configuration) an unknown `Format`.
    #[error("Format {0:?} (expected none, ltsv, json or regexp)")]
    GoFormat(String),
    /// (Go configuration) a value that does not fit where it is put.
    #[error("{0}")]
    Template(serde_yaml::Error),
    /// (Go configuration) no `[[Servers]]`.
    #[error("at least one [[Servers]] entry (Host, Port) is needed")]
    GoServers,
}
