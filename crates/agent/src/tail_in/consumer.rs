//! The task between the tailer and the buffer: each batch of lines takes
//! room from its input's quota, becomes events (as they are, parsed, or
//! through the filters), and carries the commit that moves the file's
//! position once they are delivered.

use std::sync::Arc;

use hydra_buffer::{Buffer, Commit};
use hydra_forward::{EventTime, ExtraFields, FrameBuilder};
use hydra_parse::{Parsed, Parser};
use hydra_tail::{Batch, Batches, Committer};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::files::{Files, Meta};
use super::{InputParser, ParseCounters, event, publish};
use crate::pulse::beating;

/// Takes the tailer's batches into the buffer.
pub(super) struct Consumer {
    pub(super) buffer: Buffer,
    pub(super) committer: Committer,
    pub(super) metas: Vec<Meta>,
    /// Each file's tag and extra fields.
    pub(super) files: Files,
    /// Each input's `max_buffered_bytes`, and what is left of it.
    pub(super) quotas: Vec<(usize, Arc<Semaphore>)>,
    pub(super) parsers: Vec<InputParser>,
    pub(super) counters: Arc<ParseCounters>,
    pub(super) filters: Arc<hydra_filter::Chain>,
    pub(super) host: String,
    /// Scratch space for a parsed record.
    pub(super) record: Vec<u8>,
    /// The time the next line gets, at least: one nanosecond past the line
    /// before it.
    pub(super) next_time: EventTime,
}

impl Consumer {
    /// Until the tailer stops or the buffer closes.
    pub(super) async fn run(mut self, mut batches: Batches) {
        let counters = self.counters.clone();
        let beats = &counters.beats;
        while let Some(batch) = beating(beats, batches.recv()).await {
            if !beating(beats, self.take(batch)).await {
                break;
            }
        }
    }

    /// One batch into the buffer; false when the buffer closed for
    /// shutdown (the lines were not accepted, so their offset is not
    /// committed) or the quota went away.
    async fn take(&mut self, batch: Batch) -> bool {
        let source = batch.source;
        if source >= self.metas.len() || source >= self.quotas.len() {
            return true;
        }
        // One clock reading per batch, not per line; the lines of one read
        // get times one nanosecond apart, and never earlier than the lines
        // before them, so a downstream that sorts by time (Elasticsearch,
        // Loki) keeps them in order.
        let start = EventTime::from_system_time(batch.read_at).max(self.next_time);
        let meta = &self.metas[source];
        let file = self.files.meta(
            source,
            &batch.path,
            meta,
            &self.host,
            &self.filters,
            &self.counters,
        );
        let estimate = batch.lines.bytes()
            + batch.lines.len() * (24 + meta.field.len() + file.extra.encoded().len());
        let Some(permit) = self.room(source, estimate).await else {
            return false;
        };
        let (c, id, end) = (self.committer.clone(), batch.file, batch.end_offset);
        // The room is given back when the chunk is delivered, or when it is
        // dropped undelivered (its commits with it).
        let commit: Commit = Box::new(move || {
            c.commit(id, end);
            drop(permit);
        });
        let meta = &self.metas[source];
        let extra = &file.extra;
        let parser = self.parsers.get_mut(source).and_then(Option::as_mut);
        match parser {
            Some((parser, _)) if file.filtered => {
                let (events, next_time) = to_events(parser, &batch, extra, start, &mut self.record);
                self.next_time = next_time;
                publish(&self.parsers, &self.counters, source);
                // A throttle waits here: the tailer's channel fills and
                // reading stops. Dropped lines are committed in turn (the
                // ledger advances over delivered prefixes only).
                crate::filtered::append(
                    &self.buffer,
                    &self.filters,
                    &file.tag,
                    events,
                    Some(commit),
                    None,
                )
                .await
            }
            parser => {
                let mut next_time = start;
                let record = &mut self.record;
                let appended = self
                    .buffer
                    .append(&file.tag, estimate, batch.lines.len(), Some(commit), |f| {
                        let parser = parser.map(|(p, _)| p);
                        next_time = write_lines(f, &batch, meta, parser, extra, start, record);
                    })
                    .await;
                self.next_time = next_time;
                publish(&self.parsers, &self.counters, source);
                appended.is_ok()
            }
        }
    }

    /// Room for `estimate` bytes of `source`'s lines in its quota. What
    /// holds the quota may sit in open chunks that fill no further while
    /// this waits: they are sealed first, to be delivered now rather than
    /// at their flush interval.
    async fn room(&self, source: usize, estimate: usize) -> Option<OwnedSemaphorePermit> {
        let (most, quota) = &self.quotas[source];
        let want = u32::try_from(estimate.min(*most)).unwrap_or(u32::MAX);
        if let Ok(p) = quota.clone().try_acquire_many_owned(want) {
            return Some(p);
        }
        for m in &self.metas {
            self.buffer.flush(&m.tag);
        }
        quota.clone().acquire_many_owned(want).await.ok()
    }
}

/// The batch's lines as events for the filters, times from `start` on;
/// and the time the next line gets.
fn to_events(
    parser: &mut Parser,
    batch: &Batch,
    extra: &ExtraFields,
    start: EventTime,
    record: &mut Vec<u8>,
) -> (Vec<hydra_forward::Event>, EventTime) {
    let mut events = Vec::with_capacity(batch.lines.len());
    let mut time = start;
    for (i, line) in batch.lines.iter().enumerate() {
        events.extend(event(parser, line, extra, batch.meta.get(i), time, record));
        time = time.next();
    }
    (events, time)
}

/// Writes the batch's lines into the chunk's frame; the time the next
/// line gets. A local time, not a field, so it stays in a register while
/// the frame is written.
fn write_lines(
    f: &mut FrameBuilder,
    batch: &Batch,
    meta: &Meta,
    parser: Option<&mut Parser>,
    extra: &ExtraFields,
    start: EventTime,
    record: &mut Vec<u8>,
) -> EventTime {
    let mut time = start;
    if !batch.meta.is_empty() {
        // A container's lines: `{field: log, stream}` at the runtime's
        // time.
        for (line, m) in batch.lines.iter().zip(&batch.meta) {
            let fields = [
                (meta.field.as_str(), line),
                ("stream", m.stream.as_str().as_bytes()),
            ];
            f.push_fields_with(m.time.unwrap_or(time), &fields, extra);
            time = time.next();
        }
    } else if let Some(parser) = parser {
        for line in batch.lines.iter() {
            record.clear();
            if let Parsed::Record { time: own } = parser.parse(line, extra, record) {
                f.push_raw(own.unwrap_or(time), record);
            }
            time = time.next();
        }
    } else if extra.is_empty() {
        for line in batch.lines.iter() {
            f.push_line(time, &meta.field, line);
            time = time.next();
        }
    } else {
        for line in batch.lines.iter() {
            f.push_fields_with(time, &[(meta.field.as_str(), line)], extra);
            time = time.next();
        }
    }
    time
}
