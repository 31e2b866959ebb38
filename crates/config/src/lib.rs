//! hydra's configuration: one YAML file.
//!
//! Every key is documented in `docs/configuration.md`. Unknown keys are
//! errors that name the key and its line; durations are written `1s`,
//! `500ms`, `2m`; sizes `64MiB`, `512KiB` or a number of bytes.
//!
//! YAML is read with `serde_yaml`, which is no longer maintained upstream.
//! No other crate of hydra's uses it: the configuration types derive only
//! serde's traits, so moving to a maintained fork is a one-line change in
//! this crate's `Cargo.toml` (and the `Error::Yaml` type it names). The
//! defaults of the servers' settings and the shared enums (`Balance`,
//! `LongLines`, `Compression`) are the library crates' own, re-exported.
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

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use hydra_forward::Compression;
pub use hydra_parse::{Format, ParserSpec, Types, Unmatched};
pub use hydra_sender::Balance;
pub use hydra_tail::LongLines;

mod cases;
mod error;
mod go;
mod inputs;
mod monitor;
mod outputs;
mod secrets;
mod size;
mod validate;
pub use cases::{Case, Event, cases_from_yaml, load_cases};
pub use error::{Error, Rule};
pub use go::GoArgs;
pub use inputs::*;
pub use monitor::*;
pub use outputs::*;
pub use secrets::*;
pub use size::*;
use validate::yaml_error;

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
    /// The buffer between inputs and the output: in memory, and on disk
    /// with `disk`.
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
            read @ Error::Read { .. } => read,
            other => Error::In {
                path: path.to_owned(),
                error: Box::new(other),
            },
        })
    }

    /// Reads the Go fluent-agent-hydra's TOML configuration, with its
    /// defaults.
    pub fn from_go_toml(text: &str) -> Result<Config, Error> {
        go::from_toml(text)
    }

    /// Parses and validates YAML text.
    pub fn from_yaml(text: &str) -> Result<Config, Error> {
        let config: Config = serde_yaml::from_str(text).map_err(|e| yaml_error(e, text))?;
        config.validate()?;
        Ok(config.resolve())
    }

    /// The effective configuration as YAML, secrets left out.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
