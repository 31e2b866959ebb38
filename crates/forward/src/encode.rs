//! The sending side: building Forward frames.

use std::io::Write;

use bytes::Bytes;

use crate::msgpack;
use crate::options::{ChunkId, Compression};
use crate::{EventTime, TimeFormat};

/// How a [`FrameBuilder`] lays out its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BatchMode {
    /// `[tag, entries, option]` with entries as one bin: the default, the
    /// cheapest for both sides.
    #[default]
    PackedForward,
    /// `[tag, [[time, record], ...], option]`, for receivers that predate
    /// PackedForward.
    Forward,
}

/// Builds one Forward frame from many events, writing each event straight
/// into the final frame buffer.
///
/// The frame's header is written first with a placeholder for the entries'
/// byte length (PackedForward) or count (Forward); [`FrameBuilder::finish`]
/// patches it and appends the option map, so an uncompressed frame is never
/// copied.
///
/// ```
/// use hydra_forward::{EventTime, FrameBuilder, BatchMode, TimeFormat};
/// let mut frame = FrameBuilder::new("app.access", BatchMode::PackedForward, TimeFormat::EventTime);
/// frame.push_line(EventTime::new(1_700_000_000, 0), "message", b"GET / 200");
/// let bytes = frame.finish(None, None);
/// assert_eq!(bytes[0], 0x93);
/// ```
#[derive(Debug, Clone)]
pub struct FrameBuilder {
    buf: Vec<u8>,
    mode: BatchMode,
    time_format: TimeFormat,
    /// Offset of the 4-byte big-endian placeholder.
    len_at: usize,
    count: usize,
}

impl FrameBuilder {
    /// A builder for a frame with `tag`.
    pub fn new(tag: &str, mode: BatchMode, time_format: TimeFormat) -> Self {
        Self::with_capacity(tag, mode, time_format, 4096)
    }

    /// Like [`FrameBuilder::new`], with room for `capacity` bytes of entries.
    /// A large frame's room is mapped on its own (see
    /// [`FrameBuilder::reserve_within`]).
    pub fn with_capacity(
        tag: &str,
        mode: BatchMode,
        time_format: TimeFormat,
        capacity: usize,
    ) -> Self {
        let mut buf = Vec::with_capacity(crate::transient_capacity(capacity + tag.len() + 64));
        buf.push(0x93);
        msgpack::write_str(&mut buf, tag.as_bytes());
        // 32-bit forms always, so the placeholder has a fixed size.
        buf.push(match mode {
            BatchMode::PackedForward => 0xc6,
            BatchMode::Forward => 0xdd,
        });
        let len_at = buf.len();
        buf.extend_from_slice(&[0; 4]);
        FrameBuilder {
            buf,
            mode,
            time_format,
            len_at,
            count: 0,
        }
    }

    #[inline]
    fn write_entry_head(&mut self, time: EventTime) {
        match self.time_format {
            TimeFormat::EventTime => {
                let mut head = [0u8; 11];
                head[0] = 0x92;
                head[1..].copy_from_slice(&time.to_msgpack());
                self.buf.extend_from_slice(&head);
            }
            TimeFormat::Integer => {
                self.buf.push(0x92);
                msgpack::write_uint(&mut self.buf, u64::from(time.secs));
            }
        }
        self.count += 1;
    }

    /// Appends the event `{field: line}`. `line` goes out as a msgpack str
    /// even when it is not valid UTF-8, as Fluentd's in_tail does: log bytes
    /// are passed through, never lost.
    #[inline]
    pub fn push_line(&mut self, time: EventTime, field: &str, line: &[u8]) {
        self.write_entry_head(time);
        self.buf.push(0x81);
        msgpack::write_str(&mut self.buf, field.as_bytes());
        msgpack::write_str(&mut self.buf, line);
    }

    /// Appends an event whose record is a map of string fields, such as
    /// `{message: line, path: file}`. Values are written as msgpack str,
    /// passed through byte for byte.
    #[inline]
    pub fn push_fields(&mut self, time: EventTime, fields: &[(&str, &[u8])]) {
        self.write_entry_head(time);
        // A log record has a handful of fields; more than 15 would need
        // map16, which no caller asks for.
        let n = u8::try_from(fields.len().min(15)).unwrap_or(15);
        self.buf.push(0x80 | n);
        for (k, v) in fields.iter().take(15) {
            msgpack::write_str(&mut self.buf, k.as_bytes());
            msgpack::write_str(&mut self.buf, v);
        }
    }

    /// Like [`FrameBuilder::push_fields`], then the `extra` fields: the
    /// record of a line with what its input adds (its path, the host,
    /// fields from the file's name).
    pub fn push_fields_with(
        &mut self,
        time: EventTime,
        fields: &[(&str, &[u8])],
        extra: &crate::ExtraFields,
    ) {
        self.write_entry_head(time);
        msgpack::write_map_header(&mut self.buf, fields.len() + extra.len());
        for (k, v) in fields {
            msgpack::write_str(&mut self.buf, k.as_bytes());
            msgpack::write_str(&mut self.buf, v);
        }
        self.buf.extend_from_slice(extra.encoded());
    }

    /// Appends an event whose record is already msgpack (a map).
    #[inline]
    pub fn push_raw(&mut self, time: EventTime, record: &[u8]) {
        self.write_entry_head(time);
        self.buf.extend_from_slice(record);
    }

    /// Appends an event from an `rmpv::Value` record.
    pub fn push_record(&mut self, time: EventTime, record: &rmpv::Value) {
        self.write_entry_head(time);
        msgpack::write_value(&mut self.buf, record);
    }

    /// Appends `count` entries that are already encoded, such as
    /// [`EventBatch::entries`](crate::EventBatch::entries) of a received frame.
    pub fn extend_entries(&mut self, entries: &[u8], count: usize) {
        self.buf.extend_from_slice(entries);
        self.count += count;
    }

    /// Events so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no event was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Makes room for `bytes` more, ahead of pushing them: the frame's
    /// room doubles, as a vector's does, but never past `most` bytes in all
    /// (unless `bytes` need more). A caller that knows how large a frame
    /// may grow starts it small and never pays for a doubling past that.
    ///
    /// Once the frame is large, it gets all the room it may need at once,
    /// mapped on its own ([`crate::transient_capacity`]): only the pages
    /// written become resident, growing it never copies it, and freeing it
    /// gives the memory back. Large frames taken from the allocator's heaps
    /// stayed there once freed (100 MB held after a burst of 16 MiB
    /// frames had been delivered).
    pub fn reserve_within(&mut self, bytes: usize, most: usize) {
        let len = self.buf.len();
        let cap = self.buf.capacity();
        if cap - len >= bytes {
            return;
        }
        let needed = len.saturating_add(bytes);
        let doubled = cap.saturating_mul(2).min(most).max(needed);
        let target = if doubled >= crate::alloc::LARGE {
            crate::transient_capacity(most.max(needed))
        } else {
            doubled
        };
        self.buf.reserve_exact(target - len);
    }

    /// The entries alone (no frame around them), and their count.
    pub fn into_entries(self) -> (Bytes, usize) {
        let start = self.len_at + 4;
        (Bytes::from(self.buf).slice(start..), self.count)
    }

    /// Bytes of encoded entries so far.
    pub fn entries_len(&self) -> usize {
        self.buf.len() - self.len_at - 4
    }

    /// Completes the frame. With `chunk` the receiver will ack it; with
    /// `compress` the entries are compressed (PackedForward only; a
    /// Forward frame is sent uncompressed).
    pub fn finish(mut self, chunk: Option<&ChunkId>, compress: Option<Compression>) -> Bytes {
        let compress = compress.filter(|_| self.mode == BatchMode::PackedForward);
        if let Some(kind) = compress {
            let entries = &self.buf[self.len_at + 4..];
            let room = Vec::with_capacity(entries.len() / 4 + 64);
            // Writing to a Vec cannot fail.
            let packed = match kind {
                Compression::Gzip => {
                    let mut gz = flate2::write::GzEncoder::new(room, flate2::Compression::fast());
                    let _ = gz.write_all(entries);
                    gz.finish().unwrap_or_default()
                }
                // Level 1: as fast as gzip's fastest, and smaller.
                Compression::Zstd => zstd::stream::encode_all(entries, 1).unwrap_or_default(),
            };
            self.buf.truncate(self.len_at + 4);
            self.buf.extend_from_slice(&packed);
        }
        let patched = match self.mode {
            BatchMode::PackedForward => self.entries_len(),
            BatchMode::Forward => self.count,
        };
        let patched = u32::try_from(patched).unwrap_or(u32::MAX);
        self.buf[self.len_at..self.len_at + 4].copy_from_slice(&patched.to_be_bytes());
        write_options(&mut self.buf, self.count, chunk, compress);
        if self.buf.capacity() - self.buf.len() > self.buf.len() / 8 + 4096 {
            // A frame sealed early (a flush, compression) would keep the
            // room reserved for a full one for as long as it waits to be
            // delivered: give it back (the allocator shrinks it where it
            // is). Frames near their reserved size are left as they are.
            self.buf.shrink_to_fit();
        }
        self.buf.into()
    }
}

fn write_options(
    out: &mut Vec<u8>,
    count: usize,
    chunk: Option<&ChunkId>,
    compress: Option<Compression>,
) {
    let keys = 1 + u8::from(chunk.is_some()) + u8::from(compress.is_some());
    out.push(0x80 | keys);
    msgpack::write_str(out, b"size");
    msgpack::write_uint(out, count as u64);
    if let Some(chunk) = chunk {
        msgpack::write_str(out, b"chunk");
        out.extend_from_slice(chunk.raw());
    }
    if let Some(kind) = compress {
        msgpack::write_str(out, b"compressed");
        msgpack::write_str(out, kind.name().as_bytes());
    }
}

/// A PackedForward frame in three parts, so already-encoded entries (a
/// received frame's, for instance) go out without being copied: write
/// `head`, `entries` and `tail` in order, or as one vectored write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameParts {
    /// Array header, tag and the entries' bin header.
    pub head: Bytes,
    /// The entries, shared with whoever else holds them.
    pub entries: Bytes,
    /// The option map.
    pub tail: Bytes,
}

impl FrameParts {
    /// A PackedForward frame around `entries` holding `count` events.
    pub fn packed(tag: &str, entries: Bytes, count: usize, chunk: Option<&ChunkId>) -> Self {
        let mut head = Vec::with_capacity(tag.len() + 12);
        head.push(0x93);
        msgpack::write_str(&mut head, tag.as_bytes());
        head.push(0xc6);
        head.extend_from_slice(
            &u32::try_from(entries.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        let mut tail = Vec::with_capacity(48);
        write_options(&mut tail, count, chunk, None);
        FrameParts {
            head: head.into(),
            entries,
            tail: tail.into(),
        }
    }

    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.head.len() + self.entries.len() + self.tail.len()
    }

    /// Whether the frame is empty (it never is: the header is always there).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frame as one buffer (copies).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.len());
        out.extend_from_slice(&self.head);
        out.extend_from_slice(&self.entries);
        out.extend_from_slice(&self.tail);
        out.into()
    }
}

/// Encodes one event in Message mode: `[tag, time, record]`, plus
/// `{"chunk": ..}` when an ack is wanted. `record` is a msgpack map.
pub fn encode_message(
    tag: &str,
    time: EventTime,
    time_format: TimeFormat,
    record: &[u8],
    chunk: Option<&ChunkId>,
) -> Bytes {
    let mut out = Vec::with_capacity(tag.len() + record.len() + 48);
    out.push(if chunk.is_some() { 0x94 } else { 0x93 });
    msgpack::write_str(&mut out, tag.as_bytes());
    match time_format {
        TimeFormat::EventTime => out.extend_from_slice(&time.to_msgpack()),
        TimeFormat::Integer => msgpack::write_uint(&mut out, u64::from(time.secs)),
    }
    out.extend_from_slice(record);
    if let Some(chunk) = chunk {
        out.push(0x81);
        msgpack::write_str(&mut out, b"chunk");
        out.extend_from_slice(chunk.raw());
    }
    out.into()
}

/// The msgpack encoding of a record, for [`encode_message`] and
/// [`FrameBuilder::push_raw`].
pub fn encode_record(record: &rmpv::Value) -> Vec<u8> {
    let mut out = Vec::new();
    msgpack::write_value(&mut out, record);
    out
}
