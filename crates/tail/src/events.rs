//! A file's lines into events: a container runtime's envelope taken off
//! and its partial lines joined, then multiline events joined. Each stage
//! keeps what it holds back with the file offset of its first line, so a
//! batch ends before it and nothing half-joined is ever committed.

use std::borrow::Cow;
use std::time::Duration;

use hydra_parse::container::{Container, decode};

use crate::lines::{Lines, LinesBuilder};
use crate::multiline::Joiner;
use crate::{LineMeta, Source};

/// How long a pending partial line or event waits for more when the source
/// says nothing (no multiline `flush_timeout`, no `partial_flush`).
const DEFAULT_FLUSH: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(crate) struct Grouping {
    container: Option<Container>,
    /// A partial container line is emitted as it is past this size.
    max_line: usize,
    partial: Option<Partial>,
    joiner: Option<Joiner>,
    /// The pending multiline event's first line's runtime time and stream.
    event_meta: LineMeta,
    flush_after: Duration,
}

#[derive(Debug)]
struct Partial {
    log: Vec<u8>,
    start: u64,
    meta: LineMeta,
}

/// Events as they are completed.
#[derive(Debug, Default)]
pub(crate) struct Grouped {
    lines: LinesBuilder,
    meta: Vec<LineMeta>,
}

impl Grouped {
    fn push(&mut self, event: &[u8], meta: Option<LineMeta>) {
        self.lines.push(event);
        if let Some(m) = meta {
            self.meta.push(m);
        }
    }

    pub(crate) fn finish(self) -> (Lines, Vec<LineMeta>) {
        (self.lines.finish(), self.meta)
    }
}

impl Grouping {
    /// `None` for a source whose lines are events as they are.
    pub(crate) fn new(source: &Source) -> Option<Grouping> {
        if source.container.is_none() && source.multiline.is_none() {
            return None;
        }
        let flush_after = source
            .multiline
            .as_ref()
            .map(|m| m.flush_timeout)
            .or(source.partial_flush)
            .unwrap_or(DEFAULT_FLUSH);
        Some(Grouping {
            container: source.container,
            max_line: source.max_line_bytes.max(1),
            partial: None,
            joiner: source.multiline.as_ref().map(Joiner::new),
            event_meta: LineMeta::default(),
            flush_after,
        })
    }

    /// How long what is held back waits for more data.
    pub(crate) fn flush_after(&self) -> Duration {
        self.flush_after
    }

    /// Takes the line that starts at file offset `at`.
    pub(crate) fn push(&mut self, line: &[u8], at: u64, out: &mut Grouped) {
        let Some(container) = self.container else {
            self.line(line, None, at, out);
            return;
        };
        let piece = decode(container, line);
        let meta = LineMeta {
            time: piece.time,
            stream: piece.stream,
        };
        if piece.partial {
            match &mut self.partial {
                Some(p) => p.log.extend_from_slice(&piece.log),
                None => {
                    self.partial = Some(Partial {
                        log: piece.log.into_owned(),
                        start: at,
                        meta,
                    });
                }
            }
            if self
                .partial
                .as_ref()
                .is_some_and(|p| p.log.len() >= self.max_line)
            {
                self.flush_partial(out);
            }
            return;
        }
        let (log, meta, start) = match self.partial.take() {
            Some(mut p) => {
                p.log.extend_from_slice(&piece.log);
                (Cow::Owned(p.log), p.meta, p.start)
            }
            None => (piece.log, meta, at),
        };
        self.line(&log, Some(meta), start, out);
    }

    fn line(&mut self, log: &[u8], meta: Option<LineMeta>, at: u64, out: &mut Grouped) {
        match &mut self.joiner {
            None => out.push(log, meta),
            Some(j) => {
                let first = meta.map(|_| self.event_meta);
                j.push(log, at, |e| out.push(e, first));
                if j.pending_since() == Some(at)
                    && let Some(m) = meta
                {
                    self.event_meta = m;
                }
            }
        }
    }

    fn flush_partial(&mut self, out: &mut Grouped) {
        if let Some(p) = self.partial.take() {
            self.line(&p.log, Some(p.meta), p.start, out);
        }
    }

    /// Emits everything held back.
    pub(crate) fn flush(&mut self, out: &mut Grouped) {
        self.flush_partial(out);
        let first = self.container.map(|_| self.event_meta);
        if let Some(j) = &mut self.joiner {
            j.flush(|e| out.push(e, first));
        }
    }

    /// The offset of the first line held back.
    pub(crate) fn pending_since(&self) -> Option<u64> {
        let partial = self.partial.as_ref().map(|p| p.start);
        let event = self.joiner.as_ref().and_then(Joiner::pending_since);
        match (partial, event) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Multiline events cut so far.
    pub(crate) fn cuts(&self) -> u64 {
        self.joiner.as_ref().map_or(0, Joiner::cuts)
    }
}

/// Groups `lines` as a tailer following `source` would, emitting what is
/// held back at the end: the events and, for a container format, each
/// event's runtime time and stream. For `hydra test` and fuzzing.
pub fn group_lines(source: &Source, lines: &[&[u8]]) -> (Vec<Vec<u8>>, Vec<LineMeta>) {
    let Some(mut g) = Grouping::new(source) else {
        return (lines.iter().map(|l| l.to_vec()).collect(), Vec::new());
    };
    let mut out = Grouped::default();
    let mut at = 0;
    for line in lines {
        g.push(line, at, &mut out);
        at += line.len() as u64 + 1;
    }
    g.flush(&mut out);
    let (lines, meta) = out.finish();
    (lines.iter().map(<[u8]>::to_vec).collect(), meta)
}
