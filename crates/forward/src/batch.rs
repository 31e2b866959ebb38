//! One frame's events, validated and kept as raw msgpack entries.

use bytes::Bytes;

use crate::EventTime;
use crate::msgpack::{self, TimeField};
use crate::options::ChunkId;
use crate::options::Options;
use crate::scan::Scanner;
use crate::scan::{skip_validated, value_len};

/// The events of one frame, validated and normalized.
///
/// Whatever the mode, the events are kept as concatenated msgpack
/// `[time, record]` entries, which is exactly what a PackedForward frame
/// carries. A plain PackedForward frame whose entries are all valid is not
/// copied at all: [`EventBatch::entries`] is a slice of the received bytes,
/// and a sender can forward it without re-encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBatch {
    pub(crate) tag: String,
    pub(crate) mode: Mode,
    pub(crate) entries: Bytes,
    pub(crate) count: usize,
    pub(crate) skipped: usize,
    pub(crate) options: Options,
}

impl EventBatch {
    /// The tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }
    /// The mode the client used.
    pub fn mode(&self) -> Mode {
        self.mode
    }
    /// Concatenated msgpack `[time, record]` entries, uncompressed.
    pub fn entries(&self) -> &Bytes {
        &self.entries
    }
    /// Number of valid events.
    pub fn len(&self) -> usize {
        self.count
    }
    /// Whether the frame held no valid event.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// Invalid events skipped in this frame (bad time, non-map record).
    pub fn skipped(&self) -> usize {
        self.skipped
    }
    /// The request's options.
    pub fn options(&self) -> &Options {
        &self.options
    }
    /// The ack to send once the events are safe, when the client asked for one.
    pub fn ack(&self) -> Option<Bytes> {
        self.options.chunk.as_ref().map(ChunkId::ack)
    }
    /// Borrowed events: time and raw msgpack record, without allocating.
    pub fn events(&self) -> Events<'_> {
        Events {
            rest: &self.entries,
        }
    }
    /// The entries cut at event boundaries into pieces of at most
    /// `max_bytes` each (an event larger than that is a piece of its own),
    /// with their event counts: a large frame forwarded as chunks a
    /// downstream accepts. One piece when the entries fit.
    pub fn pieces(&self, max_bytes: usize) -> Vec<(Bytes, usize)> {
        entry_pieces(&self.entries, self.count, max_bytes)
    }

    /// Decodes every record into an owned `rmpv::Value`.
    pub fn to_events(&self) -> Vec<Event> {
        self.events()
            .map(|e| Event {
                time: e.time,
                record: e.record(),
            })
            .collect()
    }
}

/// `entries` (`count` valid msgpack `[time, record]` entries back to back,
/// as [`EventBatch::entries`] or a [`crate::FrameBuilder`] holds them) cut at
/// event boundaries into pieces of at most `max_bytes` each (an event
/// larger than that is a piece of its own), with their event counts.
pub fn entry_pieces(entries: &Bytes, count: usize, max_bytes: usize) -> Vec<(Bytes, usize)> {
    if entries.len() <= max_bytes {
        return vec![(entries.clone(), count)];
    }
    let total = entries.len();
    let mut pieces = Vec::new();
    let (mut start, mut end, mut n) = (0, 0, 0);
    let mut events = Events { rest: entries };
    while events.next().is_some() {
        let next = total - events.rest.len();
        if n > 0 && next - start > max_bytes {
            pieces.push((entries.slice(start..end), n));
            (start, n) = (end, 0);
        }
        end = next;
        n += 1;
    }
    if n > 0 {
        pieces.push((entries.slice(start..end), n));
    }
    pieces
}

/// One event, borrowed from an [`EventBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// The event time.
    pub time: EventTime,
    /// The record, a msgpack map, as raw bytes.
    pub raw_record: &'a [u8],
}

impl EventRef<'_> {
    /// Decodes the record.
    pub fn record(&self) -> rmpv::Value {
        // The batch holds only entries that passed validation, whose depth
        // is bounded, so this cannot fail; a Nil would show a bug.
        msgpack::read_value(self.raw_record, "record").unwrap_or(rmpv::Value::Nil)
    }
}

/// One event with an owned record.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event time.
    pub time: EventTime,
    /// The record (a msgpack map).
    pub record: rmpv::Value,
}

/// Iterator over the events of a batch.
#[derive(Debug, Clone)]
pub struct Events<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Events<'a> {
    type Item = EventRef<'a>;

    fn next(&mut self) -> Option<EventRef<'a>> {
        // Entries were validated and normalized by the decoder:
        // `[time, record]` with the time as an integer or an 8-byte
        // EventTime.
        let (_, hdr) = msgpack::array_header(self.rest)?;
        let body = &self.rest[hdr..];
        let time_len = match body.first()? {
            0xd7 => 10,
            0xc7 => 11,
            0x00..=0x7f => 1,
            0xcc | 0xd0 => 2,
            0xcd | 0xd1 => 3,
            0xce | 0xd2 => 5,
            _ => 9,
        };
        let time = match msgpack::time_field(body.get(..time_len)?, &mut EventTime::now) {
            TimeField::Keep(t) | TimeField::Rewrite(t) => t,
            TimeField::Invalid => return None,
        };
        let after_time = body.get(time_len..)?;
        let record_len = skip_validated(after_time)?;
        let (raw_record, rest) = after_time.split_at(record_len);
        self.rest = rest;
        Some(EventRef { time, raw_record })
    }
}

/// The four request modes of Forward protocol v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `[tag, time, record, option?]`: one event per frame.
    Message,
    /// `[tag, [[time, record], ...], option?]`.
    Forward,
    /// `[tag, entries, option?]`: entries as one str or bin of concatenated
    /// msgpack `[time, record]` arrays.
    PackedForward,
    /// PackedForward whose entries are gzip (`compressed: "gzip"`).
    CompressedPackedForward,
}

pub(crate) fn lazy_now() -> impl FnMut() -> EventTime {
    let mut now = None;
    move || *now.get_or_insert_with(EventTime::now)
}

pub(crate) struct Checked {
    pub(crate) entries: Bytes,
    pub(crate) count: usize,
    pub(crate) skipped: usize,
}

impl Checked {
    pub(crate) fn one(entry: Vec<u8>) -> Self {
        Checked {
            entries: entry.into(),
            count: 1,
            skipped: 0,
        }
    }
    pub(crate) fn none(skipped: usize) -> Self {
        Checked {
            entries: Bytes::new(),
            count: 0,
            skipped,
        }
    }
}

/// Validates concatenated `[time, record]` entries, skipping invalid ones.
/// Returns a slice of `data` when every entry is kept as it is, and a new
/// buffer only when something had to be dropped or rewritten.
pub(crate) fn check_entries(
    scanner: &mut Scanner,
    data: &Bytes,
    now: &mut impl FnMut() -> EventTime,
) -> Checked {
    let mut out: Option<Vec<u8>> = None;
    let (mut pos, mut count, mut skipped) = (0, 0, 0);
    while pos < data.len() {
        let Ok(len) = value_len(scanner, &data[pos..]) else {
            // The rest cannot be delimited: count it as one bad event.
            skipped += 1;
            out.get_or_insert_with(|| data[..pos].to_vec());
            break;
        };
        let entry = &data[pos..pos + len];
        match check_entry(entry, now) {
            Some((TimeField::Keep(_), _)) => {
                if let Some(o) = out.as_mut() {
                    o.extend_from_slice(entry);
                }
                count += 1;
            }
            Some((TimeField::Rewrite(t), record)) => {
                let o = out.get_or_insert_with(|| data[..pos].to_vec());
                o.push(0x92);
                o.extend_from_slice(&t.to_msgpack());
                o.extend_from_slice(&entry[record..]);
                count += 1;
            }
            _ => {
                out.get_or_insert_with(|| data[..pos].to_vec());
                skipped += 1;
            }
        }
        pos += len;
    }
    Checked {
        entries: out.map_or_else(|| data.clone(), Bytes::from),
        count,
        skipped,
    }
}

/// Checks one complete entry; returns its time and where its record starts.
#[inline]
fn check_entry(entry: &[u8], now: &mut impl FnMut() -> EventTime) -> Option<(TimeField, usize)> {
    let (2, hdr) = msgpack::array_header(entry)? else {
        return None;
    };
    let body = &entry[hdr..];
    // Fast path for what nearly every client sends: fixext8 EventTime.
    let time_len = if body.first() == Some(&0xd7) {
        10
    } else {
        skip_validated(body)?
    };
    let record = hdr + time_len;
    if !msgpack::is_map(entry.get(record..)?) {
        return None;
    }
    match msgpack::time_field(body.get(..time_len)?, now) {
        TimeField::Invalid => None,
        t => Some((t, record)),
    }
}
