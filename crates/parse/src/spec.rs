//! What a parser is asked to do, as it appears in configuration files.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// How a line becomes a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `{field_name: line}`, untouched.
    #[default]
    None,
    /// Tab-separated `label:value` columns.
    Ltsv,
    /// One JSON object per line.
    Json,
    /// The named groups of a regular expression.
    Regexp,
    /// A CRI runtime's lines (containerd, CRI-O): `{field_name: log,
    /// stream}`, the runtime's time as the event time, partial lines
    /// joined.
    Cri,
    /// Docker's json-file lines, the same way.
    Docker,
}

impl Format {
    /// The container runtime whose lines these are, for the two container
    /// formats.
    pub fn container(self) -> Option<crate::container::Container> {
        match self {
            Format::Cri => Some(crate::container::Container::Cri),
            Format::Docker => Some(crate::container::Container::Docker),
            _ => None,
        }
    }
}

/// The type a named field is converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Kept as it is.
    String,
    /// A signed 64-bit integer.
    Integer,
    /// A 64-bit float.
    Float,
    /// `true`/`false` (also `1`, `t`, `TRUE`, `0`, `f`, `FALSE`...).
    Bool,
}

impl FieldType {
    fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Integer => "integer",
            FieldType::Float => "float",
            FieldType::Bool => "bool",
        }
    }
}

impl FromStr for FieldType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim() {
            "string" | "str" => Ok(FieldType::String),
            "integer" | "int" => Ok(FieldType::Integer),
            "float" | "double" => Ok(FieldType::Float),
            "bool" | "boolean" => Ok(FieldType::Bool),
            other => Err(Error::Types {
                entry: other.to_owned(),
            }),
        }
    }
}

/// Field conversions: `"reqtime:float,size:integer"` or a map
/// `{reqtime: float, size: integer}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Types(pub Vec<(String, FieldType)>);

impl Types {
    /// No conversions.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for Types {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let mut out = Vec::new();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, ty) = entry.split_once(':').ok_or_else(|| Error::Types {
                entry: entry.to_owned(),
            })?;
            if name.trim().is_empty() {
                return Err(Error::Types {
                    entry: entry.to_owned(),
                });
            }
            let ty = ty.parse().map_err(|_| Error::Types {
                entry: entry.to_owned(),
            })?;
            out.push((name.trim().to_owned(), ty));
        }
        Ok(Types(out))
    }
}

impl fmt::Display for Types {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, ty)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{name}:{}", ty.name())?;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Types {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Map(std::collections::BTreeMap<String, String>),
        }
        match Raw::deserialize(d)? {
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
            Raw::Map(m) => {
                let mut out = Vec::new();
                for (name, ty) in m {
                    let ty = ty.parse().map_err(|_| {
                        serde::de::Error::custom(Error::Types {
                            entry: format!("{name}:{ty}"),
                        })
                    })?;
                    out.push((name, ty));
                }
                Ok(Types(out))
            }
        }
    }
}

impl Serialize for Types {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// What happens to a line that does not match its format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unmatched {
    /// Emit `{field_name: line}`.
    #[default]
    Emit,
    /// Drop it (counted).
    Drop,
}

/// Everything that shapes a [`Parser`](crate::Parser).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParserSpec {
    /// The line format.
    pub format: Format,
    /// For `Format::Regexp`: a pattern with named groups, or a preset name
    /// (`apache`, `nginx`, `syslog`).
    pub regexp: Option<String>,
    /// Field conversions.
    pub types: Types,
    /// Take the event time from the line.
    pub time_parse: bool,
    /// The field holding the time.
    pub time_key: String,
    /// `rfc3339` (the default), `apache`, `nginx`, `syslog`, `unix`, or a
    /// strftime pattern; a regexp preset brings its own default.
    pub time_format: Option<String>,
    /// Keep the time field in the record after reading the time from it.
    pub keep_time_key: bool,
    /// The key of an unparsed line.
    pub field_name: String,
    /// What happens to unmatched lines.
    pub unmatched: Unmatched,
}

impl Default for ParserSpec {
    fn default() -> Self {
        ParserSpec {
            format: Format::None,
            regexp: None,
            types: Types::default(),
            time_parse: false,
            time_key: "time".to_owned(),
            time_format: None,
            keep_time_key: true,
            field_name: "message".to_owned(),
            unmatched: Unmatched::Emit,
        }
    }
}
