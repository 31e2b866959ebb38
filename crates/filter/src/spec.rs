//! What a configuration says about a filter (its `filters:` entries).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// One `filters:` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Spec {
    /// Keeps or drops events by their fields' values.
    Grep {
        /// The tags it applies to (Fluentd patterns: `*`, `**`, `{a,b}`).
        #[serde(rename = "match")]
        pattern: String,
        /// Keep only events where every one of these fields matches its
        /// pattern.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        include: BTreeMap<String, String>,
        /// Drop events where any of these fields matches its pattern.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        exclude: BTreeMap<String, String>,
    },
    /// Changes records: fields set, removed and renamed, in that order.
    Record {
        /// The tags it applies to.
        #[serde(rename = "match")]
        pattern: String,
        /// Fields set. String values may use `${hostname}`, `${tag}` and
        /// `${env:NAME}`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        set: BTreeMap<String, Scalar>,
        /// Fields removed.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        remove: Vec<String>,
        /// Fields renamed, `from: to`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        rename: BTreeMap<String, String>,
    },
    /// Holds events of each tag to a rate. Over it, the input stops reading
    /// (a tail input its files, a forward input its client's socket), so
    /// nothing is lost; with `drop: true` the excess is dropped and counted.
    Throttle {
        /// The tags it applies to; each tag has its own rate.
        #[serde(rename = "match")]
        pattern: String,
        /// Events per second, minute or hour: `1000/s`, `60/m`.
        rate: Rate,
        /// Events let through at once after a quiet spell; by default one
        /// second's worth.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        burst: Option<u64>,
        /// Drop the excess instead of waiting.
        #[serde(default)]
        drop: bool,
    },
}

impl Spec {
    /// The tag pattern.
    pub fn pattern(&self) -> &str {
        match self {
            Spec::Grep { pattern, .. }
            | Spec::Record { pattern, .. }
            | Spec::Throttle { pattern, .. } => pattern,
        }
    }

    /// `grep`, `record` or `throttle`.
    pub fn kind(&self) -> &'static str {
        match self {
            Spec::Grep { .. } => "grep",
            Spec::Record { .. } => "record",
            Spec::Throttle { .. } => "throttle",
        }
    }
}

/// A value `set` puts in a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A number with a fraction.
    Float(f64),
    /// Text, with `${...}` templates.
    Str(String),
}

/// Events per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Per second.
    pub per_sec: f64,
    text_per: char,
    text_n: u64,
}

impl FromStr for Rate {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::Rate { rate: s.to_owned() };
        let (n, per) = s.trim().split_once('/').ok_or_else(bad)?;
        let n: u64 = n.trim().parse().map_err(|_| bad())?;
        let (unit, secs) = match per.trim() {
            "s" | "sec" | "second" => ('s', 1.0),
            "m" | "min" | "minute" => ('m', 60.0),
            "h" | "hour" => ('h', 3600.0),
            _ => return Err(bad()),
        };
        if n == 0 {
            return Err(bad());
        }
        Ok(Rate {
            per_sec: n as f64 / secs,
            text_per: unit,
            text_n: n,
        })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.text_n, self.text_per)
    }
}

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
