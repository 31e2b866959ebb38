//! Log line parsers that write msgpack records directly.
//!
//! A [`Parser`] turns one line into one msgpack map appended to a buffer,
//! ready to go into a Forward frame: LTSV columns, a JSON object, or the
//! named groups of a regular expression (with `apache`, `nginx` and `syslog`
//! presets). Named fields can be converted to integers, floats or booleans,
//! and the event time can be taken from a field of the line.
//!
//! Nothing is lost on the way: a line that does not match its format becomes
//! `{field_name: line}` (or is dropped, when asked, and counted); a value
//! that does not convert stays a string; a time that does not parse leaves
//! the read time. Each case is counted in [`ParseStats`].
//!
//! ```
//! use hydra_parse::{Format, Parser, ParserSpec, Parsed};
//!
//! let spec = ParserSpec {
//!     format: Format::Ltsv,
//!     types: "status:integer".parse()?,
//!     ..ParserSpec::default()
//! };
//! let mut parser = Parser::new(&spec)?;
//! let mut record = Vec::new();
//! let parsed = parser.parse(b"path:/\tstatus:200", &hydra_forward::ExtraFields::new(), &mut record);
//! assert_eq!(parsed, Parsed::Record { time: None });
//! // {"path": "/", "status": 200}
//! assert_eq!(record, b"\x82\xa4path\xa1/\xa6status\xcc\xc8");
//! # Ok::<(), hydra_parse::Error>(())
//! ```

#![deny(clippy::too_many_lines)]

pub mod container;
mod json;
pub mod multiline;
pub mod path;
pub mod samples;
mod spec;
mod time;
mod write;

use hydra_forward::EventTime;
use regex::bytes::{CaptureLocations, Regex};

pub use spec::{FieldType, Format, ParserSpec, Types, Unmatched};
pub use time::TimeFormat;

use write::MapWriter;

/// A parser specification that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The regular expression does not compile.
    #[error("invalid regexp: {0}")]
    Regexp(Box<regex::Error>),
    /// `format: regexp` without `regexp`.
    #[error("format regexp needs `regexp`: a pattern with named groups, or apache, nginx, syslog")]
    NoPattern,
    /// A pattern without named groups: it would make empty records.
    #[error(
        "the regexp {pattern:?} has no named groups (?<name>...), so it would make empty records"
    )]
    NoNamedGroups {
        /// The pattern as configured.
        pattern: String,
    },
    /// `time_parse` or `types` with a format that has no fields.
    #[error("`time_parse` and `types` work on fields: set `format` to ltsv, json or regexp")]
    NoFields,
    /// A `types` entry that is not `name:type`.
    #[error("invalid types entry {entry:?} (expected name:integer|float|bool|string)")]
    Types {
        /// The entry as written.
        entry: String,
    },
    /// An unknown time format name or a bad strftime pattern.
    #[error("invalid time_format {format:?}")]
    TimeFormat {
        /// The format as written.
        format: String,
    },
    /// A multiline pattern that does not compile.
    #[error("invalid multiline.{key}: {source}")]
    Multiline {
        /// `start`, `continue` (or `preset`, for a built-in pattern).
        key: &'static str,
        /// Why. Boxed: the regex error is large.
        source: Box<regex::Error>,
    },
    /// Custom multiline rules need `start`, `continue`, or both.
    #[error("multiline needs a preset, a start pattern or a continue pattern")]
    MultilineRule,
    /// A tag's `${name}` that `path_fields` does not give.
    #[error("the tag's ${{{name}}} is not a name path_fields gives (it gives: {names})")]
    TagName {
        /// The name in the tag.
        name: String,
        /// The names there are.
        names: String,
    },
}

/// What happened to one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A record was appended; `time` is the event time taken from the line,
    /// when `time_parse` is on and it parsed.
    Record {
        /// The line's own time.
        time: Option<EventTime>,
    },
    /// The line did not match and `unmatched: drop` is set; nothing was
    /// appended.
    Dropped,
}

/// Counts of lines and values that did not parse as configured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseStats {
    /// Lines that did not match the format (emitted whole or dropped).
    pub unmatched: u64,
    /// Of those, lines dropped because of `unmatched: drop`.
    pub dropped: u64,
    /// Values kept as strings because they did not convert to their type.
    pub type_errors: u64,
    /// Lines whose time field was missing or did not parse; they carry the
    /// read time.
    pub time_errors: u64,
}

/// The named groups of the presets: the formats these names mean in Fluentd.
const APACHE: &str = r#"^(?<host>[^ ]*) [^ ]* (?<user>[^ ]*) \[(?<time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>[^ ]*) +\S*)?" (?<code>[^ ]*) (?<size>[^ ]*)(?: "(?<referer>[^"]*)" "(?<agent>[^"]*)")?$"#;
const NGINX: &str = r#"^(?<remote>[^ ]*) (?<host>[^ ]*) (?<user>[^ ]*) \[(?<time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>[^"]*?)(?: +\S*)?)?" (?<code>[^ ]*) (?<size>[^ ]*)(?: "(?<referer>[^"]*)" "(?<agent>[^"]*)"(?:\s+(?<http_x_forwarded_for>[^ ]+))?)?$"#;
const SYSLOG: &str = r"^(?<time>[^ ]*\s*[^ ]* [^ ]*) (?<host>[^ ]*) (?<ident>[^ :\[]*)(?:\[(?<pid>[0-9]+)\])?(?:[^:]*:)? *(?<message>.*)$";

/// The pattern and default time format of a preset name.
pub fn preset(name: &str) -> Option<(&'static str, TimeFormat)> {
    match name {
        "apache" | "apache2" => Some((APACHE, TimeFormat::Apache)),
        "nginx" => Some((NGINX, TimeFormat::Apache)),
        "syslog" => Some((SYSLOG, TimeFormat::Syslog)),
        _ => None,
    }
}

#[derive(Debug)]
enum Kind {
    None,
    Ltsv,
    Json,
    Regexp {
        regex: Regex,
        locs: CaptureLocations,
        /// (group index, name) of each named group.
        names: Vec<(usize, String)>,
    },
}

/// Everything a field writer needs besides the output.
#[derive(Debug)]
pub(crate) struct Fields {
    types: Vec<(String, FieldType)>,
    time_key: Option<String>,
    keep_time_key: bool,
    time_format: TimeFormat,
}

impl Fields {
    fn type_of(&self, key: &[u8]) -> Option<FieldType> {
        self.types
            .iter()
            .find(|(k, _)| k.as_bytes() == key)
            .map(|(_, t)| *t)
    }

    fn is_time_key(&self, key: &[u8]) -> bool {
        self.time_key
            .as_deref()
            .is_some_and(|k| k.as_bytes() == key)
    }
}

/// Parses lines of one format into msgpack records. One per input; it keeps
/// scratch space and counters, so it is used from one task at a time.
#[derive(Debug)]
pub struct Parser {
    kind: Kind,
    field_name: String,
    unmatched: Unmatched,
    fields: Fields,
    stats: ParseStats,
}

/// The outcome of parsing one line's fields, before the unmatched policy.
pub(crate) struct LineResult {
    pub(crate) matched: bool,
    pub(crate) time: Option<Result<EventTime, ()>>,
}

impl Parser {
    /// A parser for `spec`, with its pattern compiled and its time format
    /// checked.
    pub fn new(spec: &ParserSpec) -> Result<Parser, Error> {
        let mut time_format = match &spec.time_format {
            Some(t) => Some(t.parse::<TimeFormat>()?),
            None => None,
        };
        if matches!(spec.format, Format::None | Format::Cri | Format::Docker)
            && (spec.time_parse || !spec.types.is_empty())
        {
            return Err(Error::NoFields);
        }
        let kind = match spec.format {
            // The tailer takes the container's envelope off: what is left
            // is the line as it is.
            Format::None | Format::Cri | Format::Docker => Kind::None,
            Format::Ltsv => Kind::Ltsv,
            Format::Json => Kind::Json,
            Format::Regexp => {
                let Some(pattern) = spec.regexp.as_deref() else {
                    return Err(Error::NoPattern);
                };
                let pattern = match preset(pattern) {
                    Some((p, t)) => {
                        time_format.get_or_insert(t);
                        p
                    }
                    None => pattern,
                };
                let regex = Regex::new(pattern).map_err(|e| Error::Regexp(Box::new(e)))?;
                let names: Vec<(usize, String)> = regex
                    .capture_names()
                    .enumerate()
                    .filter_map(|(i, n)| n.map(|n| (i, n.to_owned())))
                    .collect();
                if names.is_empty() {
                    return Err(Error::NoNamedGroups {
                        pattern: pattern.to_owned(),
                    });
                }
                let locs = regex.capture_locations();
                Kind::Regexp { regex, locs, names }
            }
        };
        Ok(Parser {
            kind,
            field_name: spec.field_name.clone(),
            unmatched: spec.unmatched,
            fields: Fields {
                types: spec.types.0.clone(),
                time_key: spec.time_parse.then(|| spec.time_key.clone()),
                keep_time_key: spec.keep_time_key,
                time_format: time_format.unwrap_or(TimeFormat::Rfc3339),
            },
            stats: ParseStats::default(),
        })
    }

    /// True for `format: none`, where a line is the record as it is and
    /// callers can skip the parser altogether.
    pub fn is_passthrough(&self) -> bool {
        matches!(self.kind, Kind::None)
    }

    /// What did not parse so far.
    pub fn stats(&self) -> ParseStats {
        self.stats
    }

    /// Appends the record for `line` to `out`: its fields, then the
    /// `extra` fields its input adds (such as the file's path).
    pub fn parse(
        &mut self,
        line: &[u8],
        extra: &hydra_forward::ExtraFields,
        out: &mut Vec<u8>,
    ) -> Parsed {
        let start = out.len();
        let mut map = MapWriter::begin(out);
        let result = match &mut self.kind {
            Kind::None => {
                map.str_field(out, self.field_name.as_bytes(), line);
                LineResult {
                    matched: true,
                    time: None,
                }
            }
            Kind::Ltsv => ltsv(line, &self.fields, &mut map, out, &mut self.stats),
            Kind::Json => json::object(line, &self.fields, &mut map, out, &mut self.stats),
            Kind::Regexp { regex, locs, names } => {
                if regex.captures_read(locs, line).is_some() {
                    let mut time = None;
                    for (i, name) in names.iter() {
                        if let Some((s, e)) = locs.get(*i) {
                            let t = map.field(
                                out,
                                name.as_bytes(),
                                &line[s..e],
                                &self.fields,
                                &mut self.stats,
                            );
                            time = time.or(t);
                        }
                    }
                    LineResult {
                        matched: true,
                        time,
                    }
                } else {
                    LineResult {
                        matched: false,
                        time: None,
                    }
                }
            }
        };
        if !result.matched {
            out.truncate(start);
            self.stats.unmatched += 1;
            if self.unmatched == Unmatched::Drop {
                self.stats.dropped += 1;
                return Parsed::Dropped;
            }
            map = MapWriter::begin(out);
            map.str_field(out, self.field_name.as_bytes(), line);
        }
        map.extra(out, extra);
        map.finish(out);
        let time = match result.time {
            Some(Ok(t)) => Some(t),
            Some(Err(())) => {
                self.stats.time_errors += 1;
                None
            }
            None if result.matched && self.fields.time_key.is_some() => {
                // time_parse is on and the line had no time field.
                self.stats.time_errors += 1;
                None
            }
            None => None,
        };
        Parsed::Record { time }
    }
}

/// LTSV: tab-separated `label:value` columns. Empty columns are skipped; a
/// column without `:` makes the whole line unmatched.
fn ltsv(
    line: &[u8],
    fields: &Fields,
    map: &mut MapWriter,
    out: &mut Vec<u8>,
    stats: &mut ParseStats,
) -> LineResult {
    let mut time = None;
    let mut any = false;
    for col in line.split(|b| *b == b'\t') {
        if col.is_empty() {
            continue;
        }
        let Some(colon) = memchr::memchr(b':', col) else {
            return LineResult {
                matched: false,
                time: None,
            };
        };
        any = true;
        let t = map.field(out, &col[..colon], &col[colon + 1..], fields, stats);
        time = time.or(t);
    }
    LineResult { matched: any, time }
}

#[cfg(test)]
mod tests;
