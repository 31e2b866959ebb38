//! Splitting a byte stream into lines, with a bounded line length.

use bytes::{Bytes, BytesMut};

/// What to do with a line longer than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LongLines {
    /// Emit the first `max_line_bytes` bytes and drop the rest of the line.
    #[default]
    Truncate,
    /// Drop the whole line.
    Skip,
}

/// One line's position within [`Lines::data`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

/// Complete lines split from a file: one shared buffer and the
/// spans of the lines in it (without their newlines).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lines {
    data: Bytes,
    spans: Vec<Span>,
}

impl Lines {
    /// The lines, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.spans
            .iter()
            .map(|s| &self.data[s.start as usize..s.end as usize])
    }
    /// Number of lines.
    pub fn len(&self) -> usize {
        self.spans.len()
    }
    /// Whether there is no line.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
    /// Every byte the lines were cut from, newlines included.
    pub(crate) fn raw(&self) -> &[u8] {
        &self.data
    }
    /// Total bytes of the lines, without newlines.
    pub fn bytes(&self) -> usize {
        self.spans.iter().map(|s| (s.end - s.start) as usize).sum()
    }

    /// Each line with the offset of its first byte among the bytes the
    /// split consumed.
    pub(crate) fn iter_at(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        self.spans.iter().map(|s| {
            (
                u64::from(s.start),
                &self.data[s.start as usize..s.end as usize],
            )
        })
    }
}

/// Builds [`Lines`] out of lines copied in (multiline events).
#[derive(Debug, Default)]
pub(crate) struct LinesBuilder {
    data: BytesMut,
    spans: Vec<Span>,
}

impl LinesBuilder {
    pub(crate) fn push(&mut self, line: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(line);
        self.spans.push(span(start, self.data.len()));
    }

    pub(crate) fn finish(self) -> Lines {
        Lines {
            data: self.data.freeze(),
            spans: self.spans,
        }
    }
}

/// What a [`LineSplitter::split`] call produced.
#[derive(Debug, Default)]
pub(crate) struct Split {
    pub(crate) lines: Lines,
    /// Bytes consumed from the stream (complete lines, including newlines,
    /// and the discarded parts of long lines). The read offset after them is
    /// a line boundary.
    pub(crate) consumed: u64,
    /// Lines that were cut or skipped for being too long.
    pub(crate) long_lines: u64,
}

/// Splits appended bytes into lines. A trailing part without a newline is
/// held until its newline arrives (or [`LineSplitter::flush`]).
#[derive(Debug)]
pub(crate) struct LineSplitter {
    buf: BytesMut,
    /// How far `buf` has been searched for a newline, so a long partial line
    /// is not searched again on every read.
    searched: usize,
    /// Inside an over-long line: drop bytes until the next newline.
    discarding: bool,
    max_line: usize,
    long_lines: LongLines,
    strip_cr: bool,
}

impl LineSplitter {
    pub(crate) fn new(max_line: usize, long_lines: LongLines, strip_cr: bool) -> Self {
        LineSplitter {
            buf: BytesMut::new(),
            searched: 0,
            discarding: false,
            max_line: max_line.clamp(1, u32::MAX as usize / 2),
            long_lines,
            strip_cr,
        }
    }

    /// The buffer to read into: its spare capacity is at least `n` bytes.
    pub(crate) fn read_buf(&mut self, n: usize) -> &mut BytesMut {
        self.buf.reserve(n);
        &mut self.buf
    }

    /// Frees the buffer when it holds nothing: an idle file should cost no
    /// memory.
    pub(crate) fn release_if_empty(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 0 {
            self.buf = BytesMut::new();
        }
    }

    /// Bytes held as an incomplete line.
    pub(crate) fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Forgets everything held (the file was truncated or replaced).
    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.searched = 0;
        self.discarding = false;
    }

    /// Takes every complete line out of the buffer.
    pub(crate) fn split(&mut self) -> Split {
        let mut out = Split::default();
        let mut spans = Vec::new();
        let mut start = 0usize;
        let mut pos = self.searched;
        // Split with memchr over the whole buffer once; each line is a span.
        while let Some(i) = memchr::memchr(b'\n', &self.buf[pos..]) {
            let nl = pos + i;
            if self.discarding {
                // The rest of an over-long line that was already handled.
                self.discarding = false;
            } else {
                let mut end = nl;
                if self.strip_cr && end > start && self.buf[end - 1] == b'\r' {
                    end -= 1;
                }
                if end - start > self.max_line {
                    out.long_lines += 1;
                    if self.long_lines == LongLines::Truncate {
                        spans.push(span(start, start + self.max_line));
                    }
                } else {
                    spans.push(span(start, end));
                }
            }
            start = nl + 1;
            pos = start;
        }
        // A partial line longer than the limit: deal with it now rather than
        // buffering without bound.
        if self.buf.len() - start > self.max_line && !self.discarding {
            out.long_lines += 1;
            if self.long_lines == LongLines::Truncate {
                spans.push(span(start, start + self.max_line));
            }
            self.discarding = true;
            start = self.buf.len();
        } else if self.discarding {
            start = self.buf.len();
        }
        out.consumed = start as u64;
        let data = self.buf.split_to(start).freeze();
        self.searched = self.buf.len();
        out.lines = Lines { data, spans };
        out
    }

    /// Emits a held partial line as a line (its writer is done with it: the
    /// file was closed after rotation, or the flush timeout passed).
    pub(crate) fn flush(&mut self) -> Split {
        let mut out = Split::default();
        if self.buf.is_empty() {
            return out;
        }
        let len = self.buf.len();
        out.consumed = len as u64;
        if !self.discarding {
            out.lines.spans.push(span(0, len.min(self.max_line)));
            if len > self.max_line {
                out.long_lines = 1;
            }
        }
        out.lines.data = self.buf.split().freeze();
        self.searched = 0;
        self.discarding = false;
        out
    }
}

fn span(start: usize, end: usize) -> Span {
    // Buffers are bounded by the read size plus one line, far below 4 GiB.
    Span {
        start: u32::try_from(start).unwrap_or(u32::MAX),
        end: u32::try_from(end).unwrap_or(u32::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(s: &mut LineSplitter, bytes: &[u8]) -> (Vec<Vec<u8>>, u64, u64) {
        s.read_buf(bytes.len()).extend_from_slice(bytes);
        let out = s.split();
        (
            out.lines.iter().map(<[u8]>::to_vec).collect(),
            out.consumed,
            out.long_lines,
        )
    }

    #[test]
    fn holds_partial_lines_until_their_newline() {
        let mut s = LineSplitter::new(100, LongLines::Truncate, false);
        assert_eq!(feed(&mut s, b"a\nbc"), (vec![b"a".to_vec()], 2, 0));
        assert_eq!(s.pending(), 2);
        assert_eq!(
            feed(&mut s, b"d\n\n"),
            (vec![b"bcd".to_vec(), b"".to_vec()], 5, 0)
        );
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn strips_cr_only_when_asked() {
        let mut s = LineSplitter::new(100, LongLines::Truncate, true);
        assert_eq!(
            feed(&mut s, b"a\r\n\r\n").0,
            vec![b"a".to_vec(), b"".to_vec()]
        );
        let mut s = LineSplitter::new(100, LongLines::Truncate, false);
        assert_eq!(feed(&mut s, b"a\r\n").0, vec![b"a\r".to_vec()]);
    }

    #[test]
    fn long_lines_are_cut_or_skipped_and_the_offset_moves_past_them() {
        for (mode, first) in [
            (LongLines::Truncate, vec![b"abcd".to_vec()]),
            (LongLines::Skip, vec![]),
        ] {
            let mut s = LineSplitter::new(4, mode, false);
            // Complete long line in one read.
            let (lines, consumed, long) = feed(&mut s, b"abcdefg\nok\n");
            let mut expected = first.clone();
            expected.push(b"ok".to_vec());
            assert_eq!((lines, consumed, long), (expected, 11, 1));
            // A long line arriving in pieces: handled once, never buffered
            // past the limit.
            let (lines, consumed, long) = feed(&mut s, b"abcdef");
            assert_eq!((lines, consumed, long), (first.clone(), 6, 1));
            assert_eq!(s.pending(), 0);
            let (lines, consumed, long) = feed(&mut s, b"ghij");
            assert_eq!((lines.len(), consumed, long), (0, 4, 0));
            let (lines, consumed, long) = feed(&mut s, b"kl\nnext\n");
            assert_eq!((lines, consumed, long), (vec![b"next".to_vec()], 8, 0));
        }
    }

    #[test]
    fn invalid_utf8_passes_through() {
        let mut s = LineSplitter::new(100, LongLines::Truncate, false);
        assert_eq!(
            feed(&mut s, b"\xff\xfe\x00x\n").0,
            vec![b"\xff\xfe\x00x".to_vec()]
        );
    }

    #[test]
    fn flush_emits_the_partial_line() {
        let mut s = LineSplitter::new(100, LongLines::Truncate, false);
        feed(&mut s, b"a\npartial");
        let out = s.flush();
        assert_eq!(out.lines.iter().collect::<Vec<_>>(), vec![&b"partial"[..]]);
        assert_eq!(out.consumed, 7);
        assert_eq!(s.flush().consumed, 0);
    }
}
