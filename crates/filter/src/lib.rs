//! Record filters, applied in order before the buffer to the events whose
//! tag matches: `grep` keeps or drops events by their fields, `record` sets,
//! removes and renames fields, `throttle` holds each tag to a rate.
//!
//! A throttle holds events back rather than dropping them: its
//! [`Chain::apply`] waits, and an input waiting there reads nothing more
//! (a tail input's files wait on disk, a forward client's socket fills).
//! Every filter counts what it let through, dropped and could not judge
//! ([`Chain::stats`]); an event a filter cannot judge (a field holding a
//! map where a pattern expects text) passes unchanged and is counted.
//!
//! ```
//! use hydra_filter::{Chain, Spec};
//! use hydra_forward::{Event, EventTime};
//! use rmpv::Value;
//!
//! let specs = vec![Spec::Grep {
//!     pattern: "app.**".into(),
//!     include: [("level".to_owned(), "^(ERROR|WARN)$".to_owned())].into(),
//!     exclude: Default::default(),
//! }];
//! let chain = Chain::new(&specs, "web-1")?;
//! let event = |level: &str| Event {
//!     time: EventTime::default(),
//!     record: Value::Map(vec![("level".into(), level.into())]),
//! };
//! let mut events = vec![event("INFO"), event("ERROR")];
//! chain.apply_now("app.web", &mut events);
//! assert_eq!(events, [event("ERROR")]);
//! assert_eq!(chain.stats()[0].dropped, 1);
//! # Ok::<(), hydra_filter::Error>(())
//! ```

#![deny(clippy::too_many_lines)]

mod spec;
mod throttle;

use std::sync::atomic::{AtomicU64, Ordering};

use hydra_forward::{Event, TagPattern};
use regex::bytes::Regex;
use rmpv::Value;

pub use spec::{Rate, Scalar, Spec};
use throttle::Throttle;

/// A filter that cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A grep pattern that does not compile.
    #[error("filters[{index}] (grep): the pattern for {field:?}: {source}")]
    Pattern {
        /// Which filter.
        index: usize,
        /// The field it is for.
        field: String,
        /// Why. Boxed: the regex error is large.
        source: Box<regex::Error>,
    },
    /// A `${...}` the record filter does not know.
    #[error(
        "filters[{index}] (record): unknown template {template:?} in {field:?} (known: ${{hostname}}, ${{tag}}, ${{env:NAME}})"
    )]
    Template {
        /// Which filter.
        index: usize,
        /// The field being set.
        field: String,
        /// The template as configured.
        template: String,
    },
    /// A rate that is not `N/s`, `N/m` or `N/h` with N > 0.
    #[error("invalid rate {rate:?} (expected N/s, N/m or N/h, N > 0)")]
    Rate {
        /// The rate as written.
        rate: String,
    },
    /// A filter with nothing to do, or a zero burst.
    #[error("filters[{index}] ({kind}): {what}")]
    Empty {
        /// Which filter.
        index: usize,
        /// Its type.
        kind: &'static str,
        /// What is missing.
        what: &'static str,
    },
}

/// What one filter did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterStats {
    /// Its `match` pattern.
    pub pattern: String,
    /// `grep`, `record` or `throttle`.
    pub kind: &'static str,
    /// Events it let through.
    pub passed: u64,
    /// Events it dropped.
    pub dropped: u64,
    /// Events it could not judge (passed unchanged).
    pub errors: u64,
    /// Milliseconds inputs waited in it (throttle).
    pub held_ms: u64,
}

#[derive(Debug, Default)]
struct Counts {
    passed: AtomicU64,
    dropped: AtomicU64,
    errors: AtomicU64,
    held_ms: AtomicU64,
}

impl Counts {
    fn add(a: &AtomicU64, n: usize) {
        if n > 0 {
            a.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

#[derive(Debug)]
struct Filter {
    pattern: TagPattern,
    pattern_text: String,
    kind: &'static str,
    op: Op,
    counts: Counts,
}

#[derive(Debug)]
enum Op {
    Grep {
        include: Vec<(String, Regex)>,
        exclude: Vec<(String, Regex)>,
    },
    Record {
        set: Vec<(String, Setter)>,
        remove: Vec<String>,
        rename: Vec<(String, String)>,
    },
    Throttle(Throttle),
}

#[derive(Debug)]
enum Setter {
    Value(Value),
    /// Text with `${tag}` in it: pieces before and after each tag.
    Tagged(Vec<Piece>),
}

#[derive(Debug)]
enum Piece {
    Text(String),
    Tag,
}

/// The configured filters, in order.
#[derive(Debug, Default)]
pub struct Chain {
    filters: Vec<Filter>,
}

impl Chain {
    /// Builds the filters; `hostname` is what `${hostname}` becomes.
    pub fn new(specs: &[Spec], hostname: &str) -> Result<Chain, Error> {
        let filters = specs
            .iter()
            .enumerate()
            .map(|(index, spec)| {
                Ok(Filter {
                    pattern: TagPattern::new(spec.pattern()),
                    pattern_text: spec.pattern().to_owned(),
                    kind: spec.kind(),
                    op: op(index, spec, hostname)?,
                    counts: Counts::default(),
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok(Chain { filters })
    }

    /// Whether any filter applies to `tag`: inputs keep their fast path
    /// (no record decoded) for tags no filter matches.
    pub fn applies(&self, tag: &str) -> bool {
        self.filters.iter().any(|f| f.pattern.matches(tag))
    }

    /// Whether there is no filter at all.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// How many events to filter at a time for `tag`: a throttle's burst,
    /// so that a large batch goes out at the rate in steps, not all at once
    /// after one long wait. Unbounded without a throttle.
    pub fn step(&self, tag: &str) -> usize {
        self.filters
            .iter()
            .filter(|f| f.pattern.matches(tag))
            .filter_map(|f| match &f.op {
                Op::Throttle(t) => Some(t.step()),
                _ => None,
            })
            .min()
            .unwrap_or(usize::MAX)
    }

    /// Runs the filters that match `tag` over `events`, in order. A
    /// throttle waits here until its rate lets the events through.
    pub async fn apply(&self, tag: &str, events: &mut Vec<Event>) {
        for f in &self.filters {
            if events.is_empty() {
                return;
            }
            if !f.pattern.matches(tag) {
                continue;
            }
            match &f.op {
                Op::Throttle(t) => {
                    let before = events.len();
                    let held = t.admit(tag, events).await;
                    Counts::add(&f.counts.held_ms, held);
                    Counts::add(&f.counts.dropped, before - events.len());
                    Counts::add(&f.counts.passed, events.len());
                }
                op => f.apply_sync(op, tag, events),
            }
        }
    }

    /// Like [`Chain::apply`], with throttles letting everything through at
    /// once (`hydra test`).
    pub fn apply_now(&self, tag: &str, events: &mut Vec<Event>) {
        for f in &self.filters {
            if f.pattern.matches(tag) && !matches!(f.op, Op::Throttle(_)) {
                f.apply_sync(&f.op, tag, events);
            }
        }
    }

    /// Each filter's counts, in order.
    pub fn stats(&self) -> Vec<FilterStats> {
        self.filters
            .iter()
            .map(|f| {
                let c = &f.counts;
                FilterStats {
                    pattern: f.pattern_text.clone(),
                    kind: f.kind,
                    passed: c.passed.load(Ordering::Relaxed),
                    dropped: c.dropped.load(Ordering::Relaxed),
                    errors: c.errors.load(Ordering::Relaxed),
                    held_ms: c.held_ms.load(Ordering::Relaxed),
                }
            })
            .collect()
    }
}

impl Filter {
    fn apply_sync(&self, op: &Op, tag: &str, events: &mut Vec<Event>) {
        let before = events.len();
        let mut errors = 0;
        match op {
            Op::Grep { include, exclude } => {
                events.retain(|e| match grep(include, exclude, &e.record) {
                    Some(keep) => keep,
                    None => {
                        errors += 1;
                        true
                    }
                });
            }
            Op::Record {
                set,
                remove,
                rename,
            } => {
                for e in events.iter_mut() {
                    if !record(set, remove, rename, tag, &mut e.record) {
                        errors += 1;
                    }
                }
            }
            Op::Throttle(_) => {}
        }
        Counts::add(&self.counts.errors, errors);
        Counts::add(&self.counts.dropped, before - events.len());
        Counts::add(&self.counts.passed, events.len());
    }
}

fn op(index: usize, spec: &Spec, hostname: &str) -> Result<Op, Error> {
    let empty = |kind, what| Error::Empty { index, kind, what };
    Ok(match spec {
        Spec::Grep {
            include, exclude, ..
        } => {
            if include.is_empty() && exclude.is_empty() {
                return Err(empty("grep", "needs `include` or `exclude`"));
            }
            let compile = |m: &std::collections::BTreeMap<String, String>| {
                m.iter()
                    .map(|(field, p)| {
                        Regex::new(p)
                            .map(|re| (field.clone(), re))
                            .map_err(|source| Error::Pattern {
                                index,
                                field: field.clone(),
                                source: Box::new(source),
                            })
                    })
                    .collect::<Result<Vec<_>, Error>>()
            };
            Op::Grep {
                include: compile(include)?,
                exclude: compile(exclude)?,
            }
        }
        Spec::Record {
            set,
            remove,
            rename,
            ..
        } => {
            if set.is_empty() && remove.is_empty() && rename.is_empty() {
                return Err(empty("record", "needs `set`, `remove` or `rename`"));
            }
            let set = set
                .iter()
                .map(|(field, v)| Ok((field.clone(), setter(index, field, v, hostname)?)))
                .collect::<Result<_, Error>>()?;
            Op::Record {
                set,
                remove: remove.clone(),
                rename: rename.iter().map(|(a, b)| (a.clone(), b.clone())).collect(),
            }
        }
        Spec::Throttle {
            rate, burst, drop, ..
        } => {
            if *burst == Some(0) {
                return Err(empty("throttle", "`burst` must be positive"));
            }
            Op::Throttle(Throttle::new(rate.per_sec, *burst, *drop))
        }
    })
}

fn setter(index: usize, field: &str, v: &Scalar, hostname: &str) -> Result<Setter, Error> {
    let text = match v {
        Scalar::Bool(b) => return Ok(Setter::Value(Value::Boolean(*b))),
        Scalar::Int(i) => return Ok(Setter::Value(Value::from(*i))),
        Scalar::Float(f) => return Ok(Setter::Value(Value::F64(*f))),
        Scalar::Str(s) => s,
    };
    let mut pieces = vec![Piece::Text(String::new())];
    let mut rest = text.as_str();
    while let Some(open) = rest.find("${") {
        let Some(len) = rest[open..].find('}') else {
            break;
        };
        push_text(&mut pieces, &rest[..open]);
        let name = &rest[open + 2..open + len];
        match name {
            "hostname" => push_text(&mut pieces, hostname),
            "tag" => pieces.push(Piece::Tag),
            _ => match name.strip_prefix("env:") {
                Some(var) => push_text(&mut pieces, &std::env::var(var).unwrap_or_default()),
                None => {
                    return Err(Error::Template {
                        index,
                        field: field.to_owned(),
                        template: format!("${{{name}}}"),
                    });
                }
            },
        }
        rest = &rest[open + len + 1..];
    }
    push_text(&mut pieces, rest);
    Ok(match pieces.as_slice() {
        [Piece::Text(t)] => Setter::Value(Value::from(t.as_str())),
        _ => Setter::Tagged(pieces),
    })
}

fn push_text(pieces: &mut Vec<Piece>, s: &str) {
    match pieces.last_mut() {
        Some(Piece::Text(t)) => t.push_str(s),
        _ => pieces.push(Piece::Text(s.to_owned())),
    }
}

fn key_is(k: &Value, name: &str) -> bool {
    match k {
        Value::String(s) => s.as_bytes() == name.as_bytes(),
        Value::Binary(b) => b == name.as_bytes(),
        _ => false,
    }
}

fn field<'a>(record: &'a Value, name: &str) -> Option<&'a Value> {
    match record {
        Value::Map(m) => m.iter().find(|(k, _)| key_is(k, name)).map(|(_, v)| v),
        _ => None,
    }
}

/// A field's value as text for a pattern: `None` for a value with no text
/// form (a map, an array), which the filter cannot judge.
fn text(v: &Value) -> Option<std::borrow::Cow<'_, [u8]>> {
    use std::borrow::Cow;
    Some(match v {
        Value::String(s) => Cow::Borrowed(s.as_bytes()),
        Value::Binary(b) => Cow::Borrowed(b),
        Value::Integer(i) => Cow::Owned(i.to_string().into_bytes()),
        Value::F32(f) => Cow::Owned(f.to_string().into_bytes()),
        Value::F64(f) => Cow::Owned(f.to_string().into_bytes()),
        Value::Boolean(b) => Cow::Borrowed(if *b { b"true" } else { b"false" }),
        Value::Nil => Cow::Borrowed(b""),
        Value::Array(_) | Value::Map(_) | Value::Ext(..) => return None,
    })
}

/// Whether to keep the event; `None` when a field cannot be judged.
fn grep(include: &[(String, Regex)], exclude: &[(String, Regex)], record: &Value) -> Option<bool> {
    for (name, re) in include {
        match field(record, name) {
            None => return Some(false),
            Some(v) => {
                if !re.is_match(&text(v)?) {
                    return Some(false);
                }
            }
        }
    }
    for (name, re) in exclude {
        if let Some(v) = field(record, name)
            && re.is_match(&text(v)?)
        {
            return Some(false);
        }
    }
    Some(true)
}

/// Applies a record filter; false when the record is not a map.
fn record(
    set: &[(String, Setter)],
    remove: &[String],
    rename: &[(String, String)],
    tag: &str,
    record: &mut Value,
) -> bool {
    let Value::Map(m) = record else {
        return false;
    };
    for (name, setter) in set {
        let v = match setter {
            Setter::Value(v) => v.clone(),
            Setter::Tagged(pieces) => {
                let mut s = String::new();
                for p in pieces {
                    match p {
                        Piece::Text(t) => s.push_str(t),
                        Piece::Tag => s.push_str(tag),
                    }
                }
                Value::from(s)
            }
        };
        match m.iter_mut().find(|(k, _)| key_is(k, name)) {
            Some((_, old)) => *old = v,
            None => m.push((Value::from(name.as_str()), v)),
        }
    }
    if !remove.is_empty() {
        m.retain(|(k, _)| !remove.iter().any(|r| key_is(k, r)));
    }
    for (from, to) in rename {
        if let Some(i) = m.iter().position(|(k, _)| key_is(k, from)) {
            let (_, v) = m.remove(i);
            match m.iter_mut().find(|(k, _)| key_is(k, to)) {
                Some((_, old)) => *old = v,
                None => m.insert(i.min(m.len()), (Value::from(to.as_str()), v)),
            }
        }
    }
    true
}

#[cfg(test)]
mod tests;
