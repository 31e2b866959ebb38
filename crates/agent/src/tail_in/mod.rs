//! Tailed lines into the buffer, one record per line: the line as it is,
//! or parsed by the input's `format`.
//!
//! `mod.rs` maps the tail inputs onto one tailer and their parsers;
//! `consumer` is the task that takes the tailer's batches into the buffer.

mod consumer;
mod files;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hydra_buffer::Buffer;
use hydra_config::{Config, Input, TailInput};
use hydra_forward::EventTime;
use hydra_parse::{Parsed, Parser};

use consumer::Consumer;
use files::Meta;
use hydra_tail::{Source, TailConfig, Tailer};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::mapping::{hostname, join_tag};

/// The tag of each tail input, in source order.
pub(crate) fn tags(config: &Config) -> Vec<String> {
    config
        .inputs
        .iter()
        .filter_map(|i| match i {
            Input::Tail(t) => Some(join_tag(config.tag_prefix.as_deref(), &t.tag)),
            Input::Forward(_) => None,
        })
        .collect()
}

/// Per tail input, what its parser could not parse, published for the
/// monitor.
#[derive(Debug, Default)]
pub(crate) struct ParseCounters {
    inputs: Vec<(String, [AtomicU64; 4])>,
    /// Per tail input, by tag: files whose path `path_fields` did not
    /// match.
    path_unmatched: Vec<Option<(String, AtomicU64)>>,
    /// The consumer task's pulse ([`crate::pulse`]).
    pub(crate) beats: AtomicU64,
}

impl ParseCounters {
    /// By tag, the inputs that parse lines (not `format: none`).
    pub(crate) fn snapshot(&self) -> Vec<(String, hydra_stats::Parsing)> {
        self.inputs
            .iter()
            .map(|(tag, c)| {
                let [unmatched, dropped, type_errors, time_errors] =
                    c.each_ref().map(|a| a.load(Ordering::Relaxed));
                (
                    tag.clone(),
                    hydra_stats::Parsing {
                        unmatched,
                        dropped,
                        type_errors,
                        time_errors,
                    },
                )
            })
            .collect()
    }

    /// By tag, the inputs with `path_fields`: files whose path did not
    /// match.
    pub(crate) fn path_unmatched(&self) -> Vec<(String, u64)> {
        self.path_unmatched
            .iter()
            .flatten()
            .map(|(tag, n)| (tag.clone(), n.load(Ordering::Relaxed)))
            .collect()
    }
}

/// An input's multiline rules, compiled.
pub(crate) fn multiline(
    t: &TailInput,
) -> Result<Option<hydra_tail::Multiline>, crate::error::Error> {
    let Some(m) = &t.multiline else {
        return Ok(None);
    };
    let rules = m.rules().map_err(|source| crate::error::Error::Parser {
        tag: t.tag.clone(),
        source,
    })?;
    Ok(Some(hydra_tail::Multiline {
        rules: Arc::new(rules),
        flush_timeout: m.flush_timeout,
        max_lines: m.max_lines,
        max_bytes: m.max_bytes.as_usize(),
    }))
}

/// `line` as an event the filters take: parsed into a record, with a
/// container line's stream and runtime time. `None` when the parser drops
/// it. `record` is scratch space.
pub(crate) fn event(
    parser: &mut Parser,
    line: &[u8],
    extra: &hydra_forward::ExtraFields,
    meta: Option<&hydra_tail::LineMeta>,
    read_time: EventTime,
    record: &mut Vec<u8>,
) -> Option<hydra_forward::Event> {
    record.clear();
    let Parsed::Record { time } = parser.parse(line, extra, record) else {
        return None;
    };
    // The parser writes one valid map (fuzzed); nil would show a bug.
    let mut value = rmpv::decode::read_value(&mut record.as_slice()).unwrap_or(rmpv::Value::Nil);
    if let (Some(m), rmpv::Value::Map(fields)) = (meta, &mut value) {
        // After the line's own field, as the unfiltered path writes it.
        fields.insert(1, ("stream".into(), m.stream.as_str().into()));
    }
    Some(hydra_forward::Event {
        time: time.or(meta.and_then(|m| m.time)).unwrap_or(read_time),
        record: value,
    })
}

/// Publishes what a source's parser could not parse.
pub(super) fn publish(parsers: &[InputParser], counters: &ParseCounters, source: usize) {
    if let Some((parser, i)) = parsers.get(source).and_then(Option::as_ref)
        && let Some((_, c)) = counters.inputs.get(*i)
    {
        let st = parser.stats();
        for (a, v) in c
            .iter()
            .zip([st.unmatched, st.dropped, st.type_errors, st.time_errors])
        {
            a.store(v, Ordering::Relaxed);
        }
    }
}

/// One tailer for all `inputs`. Line rules are each input's own; of the
/// polling settings, which are the tailer's, the most frequent serves
/// every input (looking more often never loses a line), and inotify is
/// used only if every input allows it.
fn tail_config(config: &Config, inputs: &[&TailInput]) -> Result<TailConfig, crate::error::Error> {
    let multilines = inputs
        .iter()
        .map(|t| multiline(t))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TailConfig {
        sources: inputs
            .iter()
            .zip(multilines)
            .map(|(t, multiline)| Source {
                include: t.path.to_vec(),
                exclude: t.exclude.clone(),
                read_from_head: t.read_from_head,
                max_line_bytes: t.max_line_bytes.as_usize(),
                long_lines: t.long_lines,
                strip_cr: t.strip_cr,
                partial_flush: t.partial_flush,
                rotate_wait: t.rotate_wait,
                multiline,
                container: t.format.container(),
            })
            .collect(),
        refresh_interval: inputs
            .iter()
            .map(|t| t.refresh_interval)
            .min()
            .unwrap_or(TailConfig::default().refresh_interval),
        poll_interval: inputs
            .iter()
            .map(|t| t.poll_interval)
            .min()
            .unwrap_or(TailConfig::default().poll_interval),
        use_inotify: inputs.iter().all(|t| t.inotify),
        positions: config.positions.clone(),
        // The liveness tests' fault (see `TailConfig::test_wedge`): inert
        // unless the variable names a file, and then only while it exists.
        test_wedge: std::env::var_os("HYDRA_TEST_WEDGE_TAILER").map(std::path::PathBuf::from),
        ..TailConfig::default()
    })
}

/// An input's parser and the index of its counters; `None` for lines that
/// go out as they are.
type InputParser = Option<(Parser, usize)>;

/// Each input's parser, unless its lines go out as they are: `format:
/// none` stays on the fast path, without a parser, unless a filter needs
/// the record. A bad pattern stops the start here, before the tailer.
fn parsers(
    config: &Config,
    inputs: &[&TailInput],
    filters: &hydra_filter::Chain,
) -> Result<(Vec<InputParser>, ParseCounters), crate::error::Error> {
    let mut parsers = Vec::with_capacity(inputs.len());
    let mut counters = ParseCounters::default();
    for t in inputs {
        let parser = Parser::new(&t.parser_spec(&config.field_name)).map_err(|source| {
            crate::error::Error::Parser {
                tag: t.tag.clone(),
                source,
            }
        })?;
        let tag = join_tag(config.tag_prefix.as_deref(), &t.tag);
        // A tag filled in per file may match a filter for some files.
        let templated = t.tag.contains("${");
        let filtered = filters.applies(&tag) || (templated && !filters.is_empty());
        counters.path_unmatched.push(
            t.path_fields
                .is_some()
                .then(|| (tag.clone(), AtomicU64::new(0))),
        );
        let slot = (!parser.is_passthrough() || filtered).then(|| {
            counters.inputs.push((tag, Default::default()));
            (parser, counters.inputs.len() - 1)
        });
        parsers.push(slot);
    }
    Ok((parsers, counters))
}

fn metas(config: &Config, inputs: &[&TailInput]) -> Result<Vec<Meta>, crate::error::Error> {
    inputs
        .iter()
        .map(|t| {
            // Checked with the configuration; compiled here.
            let (path_rules, template) =
                t.path_rules()
                    .map_err(|rule| hydra_config::Error::Invalid {
                        at: format!("tail input {}", t.tag),
                        rule,
                    })?;
            Ok(Meta {
                tag: join_tag(config.tag_prefix.as_deref(), &t.tag),
                prefix: config.tag_prefix.clone(),
                field: t
                    .field_name
                    .clone()
                    .unwrap_or_else(|| config.field_name.clone()),
                path_key: t.path_key.clone(),
                host_key: t.host_key.clone(),
                path_rules,
                template,
            })
        })
        .collect()
}

/// Starts the tailer of `inputs` and the task that takes its batches into
/// `buffer`.
pub(crate) fn start(
    config: &Config,
    inputs: &[&TailInput],
    buffer: Buffer,
    handoff: &mut Option<hydra_tail::Handoff>,
    filters: Arc<hydra_filter::Chain>,
) -> Result<(Tailer, JoinHandle<()>, Arc<ParseCounters>), crate::error::Error> {
    let tail_config = tail_config(config, inputs)?;
    let (parsers, counters) = parsers(config, inputs, &filters)?;
    let counters = Arc::new(counters);
    let (tailer, batches) = Tailer::start_after(tail_config, handoff)?;
    // Each input's own room in the buffer: a file is its own buffer, so
    // reading waits for deliveries instead of filling the shared ceiling
    // (which forward clients, who cannot be paused for free, need).
    let quotas: Vec<(usize, Arc<Semaphore>)> = inputs
        .iter()
        .map(|t| {
            // Validated to fit a semaphore's u32 permits.
            let n = t.max_buffered_bytes.as_usize().clamp(1, u32::MAX as usize);
            (n, Arc::new(Semaphore::new(n)))
        })
        .collect();
    let consumer = Consumer {
        buffer,
        committer: tailer.committer(),
        metas: metas(config, inputs)?,
        files: files::Files::default(),
        quotas,
        parsers,
        counters: counters.clone(),
        filters,
        host: hostname(),
        record: Vec::with_capacity(512),
        next_time: EventTime::default(),
    };
    let task = tokio::spawn(consumer.run(batches));
    Ok((tailer, task, counters))
}
