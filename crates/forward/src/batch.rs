//! One frame's events, validated and kept as raw msgpack entries.

use bytes::Bytes;

use crate::EventTime;
use crate::decode::Mode;
use crate::msgpack::{self, TimeField};
use crate::options::ChunkId;
use crate::options::Options;
use crate::scan::skip_validated;

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
        if self.entries.len() <= max_bytes {
            return vec![(self.entries.clone(), self.count)];
        }
        let total = self.entries.len();
        let mut pieces = Vec::new();
        let (mut start, mut end, mut count) = (0, 0, 0);
        let mut events = self.events();
        while events.next().is_some() {
            let next = total - events.rest.len();
            if count > 0 && next - start > max_bytes {
                pieces.push((self.entries.slice(start..end), count));
                (start, count) = (end, 0);
            }
            end = next;
            count += 1;
        }
        if count > 0 {
            pieces.push((self.entries.slice(start..end), count));
        }
        pieces
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
