//! Tailed lines into the buffer, one record per line: the line as it is,
//! or parsed by the input's `format`.

use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hydra_buffer::Buffer;
use hydra_config::{Config, Input, TailInput};
use hydra_forward::EventTime;
use hydra_parse::{Parsed, Parser};
use hydra_tail::{Source, TailConfig, Tailer};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::{hostname, join_tag};

struct Meta {
    tag: String,
    field: String,
    path_key: Option<String>,
    host_key: Option<String>,
    /// A filter matches the tag: lines become records for the filters.
    filtered: bool,
}

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
}

/// An input's multiline rules, compiled.
pub(crate) fn multiline(t: &TailInput) -> Result<Option<hydra_tail::Multiline>, crate::Error> {
    let Some(m) = &t.multiline else {
        return Ok(None);
    };
    let rules = m.rules().map_err(|source| crate::Error::Parser {
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
    extra: &[(&str, &[u8])],
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
fn publish(parsers: &[Option<(Parser, usize)>], counters: &ParseCounters, source: usize) {
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

pub(crate) fn start(
    config: &Config,
    inputs: &[&TailInput],
    buffer: Buffer,
    handoff: &mut Option<hydra_tail::Handoff>,
    filters: Arc<hydra_filter::Chain>,
) -> Result<(Tailer, JoinHandle<()>, Arc<ParseCounters>), crate::Error> {
    let multilines = inputs
        .iter()
        .map(|t| multiline(t))
        .collect::<Result<Vec<_>, _>>()?;
    // One tailer for all inputs. Line rules are each input's own; of the
    // polling settings, which are the tailer's, the most frequent serves
    // every input (looking more often never loses a line), and inotify is
    // used only if every input allows it.
    let tail_config = TailConfig {
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
        ..TailConfig::default()
    };
    // Parsers before the tailer: a bad pattern stops the start here.
    let mut parsers = Vec::with_capacity(inputs.len());
    let mut counters = ParseCounters::default();
    for t in inputs {
        let parser = Parser::new(&t.parser_spec(&config.field_name)).map_err(|source| {
            crate::Error::Parser {
                tag: t.tag.clone(),
                source,
            }
        })?;
        // `format: none` stays on the fast path, without a parser, unless
        // a filter needs the record.
        let filtered = filters.applies(&join_tag(config.tag_prefix.as_deref(), &t.tag));
        let slot = (!parser.is_passthrough() || filtered).then(|| {
            counters.inputs.push((
                join_tag(config.tag_prefix.as_deref(), &t.tag),
                Default::default(),
            ));
            (parser, counters.inputs.len() - 1)
        });
        parsers.push(slot);
    }
    let counters = Arc::new(counters);
    let published = counters.clone();
    let (tailer, mut batches) = Tailer::start_after(tail_config, handoff)?;
    let committer = tailer.committer();
    let host = hostname();
    let metas: Vec<Meta> = inputs
        .iter()
        .map(|t| Meta {
            tag: join_tag(config.tag_prefix.as_deref(), &t.tag),
            field: t
                .field_name
                .clone()
                .unwrap_or_else(|| config.field_name.clone()),
            path_key: t.path_key.clone(),
            host_key: t.host_key.clone(),
            filtered: filters.applies(&join_tag(config.tag_prefix.as_deref(), &t.tag)),
        })
        .collect();
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
    let task = tokio::spawn(async move {
        let mut record = Vec::with_capacity(512);
        // The time the next line gets, at least: one nanosecond past the
        // line before it.
        let mut next_time = EventTime::default();
        while let Some(batch) = batches.recv().await {
            let (Some(meta), Some((quota_max, quota))) =
                (metas.get(batch.source), quotas.get(batch.source))
            else {
                continue;
            };
            // One clock reading per batch, not per line; the lines of one
            // read get times one nanosecond apart, and never earlier than
            // the lines before them, so a downstream that sorts by time
            // (Elasticsearch, Loki) keeps them in order.
            let start = EventTime::from_system_time(batch.read_at).max(next_time);
            let n = batch.lines.len();
            let estimate = batch.lines.bytes() + n * (24 + meta.field.len());
            let (file, end) = (batch.file, batch.end_offset);
            let want = u32::try_from(estimate.min(*quota_max)).unwrap_or(u32::MAX);
            let permit = match quota.clone().try_acquire_many_owned(want) {
                Ok(p) => p,
                Err(_) => {
                    // What holds the quota may sit in open chunks that fill
                    // no further while this waits: sealed, they can be
                    // delivered now, not at their flush interval.
                    for m in &metas {
                        buffer.flush(&m.tag);
                    }
                    let Ok(p) = quota.clone().acquire_many_owned(want).await else {
                        break;
                    };
                    p
                }
            };
            let c = committer.clone();
            // The room is given back when the chunk is delivered, or when
            // it is dropped undelivered (its commits with it).
            let commit: hydra_buffer::Commit = Box::new(move || {
                c.commit(file, end);
                drop(permit);
            });
            let path = batch.path.as_os_str().as_bytes().to_vec();
            let mut extra: Vec<(&str, &[u8])> = Vec::new();
            if let Some(k) = &meta.path_key {
                extra.push((k, &path));
            }
            if let Some(k) = &meta.host_key {
                extra.push((k, host.as_bytes()));
            }
            let parser = parsers.get_mut(batch.source).and_then(Option::as_mut);
            if meta.filtered
                && let Some((parser, _)) = parser
            {
                let mut events = Vec::with_capacity(n);
                let mut time = start;
                for (i, line) in batch.lines.iter().enumerate() {
                    events.extend(event(
                        parser,
                        line,
                        &extra,
                        batch.meta.get(i),
                        time,
                        &mut record,
                    ));
                    time = time.next();
                }
                next_time = time;
                publish(&parsers, &counters, batch.source);
                // A throttle waits here: the tailer's channel fills and
                // reading stops. Dropped lines are committed in turn (the
                // ledger advances over delivered prefixes only).
                if !crate::filtered::append(&buffer, &filters, &meta.tag, events, Some(commit))
                    .await
                {
                    break;
                }
                continue;
            }
            let appended = buffer
                .append(&meta.tag, estimate, n, Some(commit), |f| {
                    // A local, not the captured variable, so it stays in a
                    // register while the frame is written.
                    let mut time = start;
                    if !batch.meta.is_empty() {
                        // A container's lines: `{field: log, stream}` at the
                        // runtime's time.
                        let mut fields: Vec<(&str, &[u8])> =
                            vec![(&meta.field, &[]), ("stream", &[])];
                        fields.extend_from_slice(&extra);
                        for (line, m) in batch.lines.iter().zip(&batch.meta) {
                            fields[0].1 = line;
                            fields[1].1 = m.stream.as_str().as_bytes();
                            f.push_fields(m.time.unwrap_or(time), &fields);
                            time = time.next();
                        }
                    } else if let Some((parser, _)) = parser {
                        for line in batch.lines.iter() {
                            record.clear();
                            if let Parsed::Record { time: own } =
                                parser.parse(line, &extra, &mut record)
                            {
                                f.push_raw(own.unwrap_or(time), &record);
                            }
                            time = time.next();
                        }
                    } else if extra.is_empty() {
                        for line in batch.lines.iter() {
                            f.push_line(time, &meta.field, line);
                            time = time.next();
                        }
                    } else {
                        let mut fields: Vec<(&str, &[u8])> = vec![(&meta.field, &[])];
                        fields.extend_from_slice(&extra);
                        for line in batch.lines.iter() {
                            fields[0].1 = line;
                            f.push_fields(time, &fields);
                            time = time.next();
                        }
                    }
                    next_time = time;
                })
                .await;
            publish(&parsers, &counters, batch.source);
            if appended.is_err() {
                // The buffer closed for shutdown: these lines were not
                // accepted, so their offset is not committed.
                break;
            }
        }
    });
    Ok((tailer, task, published))
}
