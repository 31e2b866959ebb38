//! Finding where a msgpack value ends, without decoding it.
//!
//! The decoder has to know a frame's length before it can take the frame out
//! of the read buffer, and it must refuse an oversized or over-deep frame
//! before buffering it. [`Scanner`] walks msgpack headers only: string, binary
//! and extension bodies are skipped by their length, so a 4 MiB PackedForward
//! frame costs a handful of steps. It is resumable: when the buffer ends in
//! the middle of a value it remembers where it was, so a frame that arrives in
//! many small reads is scanned once in total, not once per read.

use crate::Error;

/// Where a scan stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// The value ends at this offset (exclusive).
    Complete(usize),
    /// The buffer must hold at least this many bytes before scanning again.
    NeedMore(usize),
}

/// A resumable msgpack value scanner.
#[derive(Debug, Clone)]
pub(crate) struct Scanner {
    /// Offset of the next header to read. May run past the buffer while a
    /// string body is still arriving.
    pos: usize,
    /// Elements still expected in each open array or map (map entries count
    /// twice). Its length is the current depth.
    open: Vec<u64>,
    /// The value's structure is complete; only body bytes may be missing.
    done: bool,
    max_depth: usize,
    max_len: usize,
}

impl Scanner {
    /// A scanner for values of at most `max_len` bytes and `max_depth` levels.
    pub(crate) fn new(max_len: usize, max_depth: usize) -> Self {
        Scanner {
            pos: 0,
            open: Vec::new(),
            done: false,
            max_depth,
            max_len,
        }
    }

    /// Forgets the value in progress; the next scan starts at offset 0.
    pub(crate) fn reset(&mut self) {
        self.pos = 0;
        self.open.clear();
        self.done = false;
    }

    /// Continues scanning the value that starts at `buf[0]`.
    ///
    /// `buf` must be the same bytes as on the previous call, possibly with
    /// more appended. After `Complete` or an error the scanner is reset.
    pub(crate) fn scan(&mut self, buf: &[u8]) -> Result<Scan, Error> {
        let result = self.run(buf);
        if !matches!(result, Ok(Scan::NeedMore(_))) {
            self.reset();
        }
        result
    }

    fn run(&mut self, buf: &[u8]) -> Result<Scan, Error> {
        if self.done {
            return self.finish(buf);
        }
        loop {
            let Some(&marker) = buf.get(self.pos) else {
                return self.need(self.pos + 1);
            };
            let (header, body, children) = match classify(marker, &buf[self.pos..]) {
                Header::Known {
                    header,
                    body,
                    children,
                } => (header, body, children),
                Header::Short(header) => return self.need(self.pos + header),
                Header::Invalid => {
                    return Err(Error::InvalidMarker {
                        marker,
                        offset: self.pos,
                    });
                }
            };
            let end = (self.pos as u64)
                .saturating_add(header as u64)
                .saturating_add(body);
            // Every child needs at least one byte, so a huge element count is
            // refused as soon as it is read, before anything is buffered.
            if end.saturating_add(children) > self.max_len as u64 {
                return Err(Error::FrameTooLarge {
                    needed: end.saturating_add(children),
                    limit: self.max_len,
                });
            }
            // Fits in usize: bounded by max_len above.
            self.pos = usize::try_from(end).unwrap_or(usize::MAX);
            if children > 0 {
                if self.open.len() >= self.max_depth {
                    return Err(Error::TooDeep {
                        limit: self.max_depth,
                    });
                }
                self.open.push(children);
                continue;
            }
            // A scalar (or empty container) finished: close every container
            // whose last element this was.
            loop {
                match self.open.last_mut() {
                    None => {
                        self.done = true;
                        return self.finish(buf);
                    }
                    Some(remaining) => {
                        *remaining -= 1;
                        if *remaining > 0 {
                            break;
                        }
                        self.open.pop();
                    }
                }
            }
        }
    }

    fn finish(&self, buf: &[u8]) -> Result<Scan, Error> {
        if self.pos <= buf.len() {
            Ok(Scan::Complete(self.pos))
        } else {
            self.need(self.pos)
        }
    }

    fn need(&self, n: usize) -> Result<Scan, Error> {
        if n > self.max_len {
            Err(Error::FrameTooLarge {
                needed: n as u64,
                limit: self.max_len,
            })
        } else {
            Ok(Scan::NeedMore(n))
        }
    }
}

/// Scans one complete value at the start of `buf`, returning its length.
pub(crate) fn value_len(scanner: &mut Scanner, buf: &[u8]) -> Result<usize, Error> {
    scanner.reset();
    match scanner.scan(buf) {
        Ok(Scan::Complete(n)) => Ok(n),
        Ok(Scan::NeedMore(_)) => {
            scanner.reset();
            Err(Error::Truncated("value runs past the end of its container"))
        }
        Err(e) => Err(e),
    }
}

/// The length of the complete value at the start of `b`, for bytes a
/// [`Scanner`] has already validated (so recursion depth is bounded).
/// `None` if `b` is not one complete value's worth.
#[inline]
pub(crate) fn skip_validated(b: &[u8]) -> Option<usize> {
    let &marker = b.first()?;
    match classify(marker, b) {
        Header::Known {
            header,
            body,
            children,
        } => {
            let mut pos = header.checked_add(usize::try_from(body).ok()?)?;
            for _ in 0..children {
                pos += skip_validated(b.get(pos..)?)?;
            }
            (pos <= b.len()).then_some(pos)
        }
        Header::Short(_) | Header::Invalid => None,
    }
}

enum Header {
    Known {
        header: usize,
        body: u64,
        children: u64,
    },
    /// The header itself is longer than the bytes available.
    Short(usize),
    Invalid,
}

#[inline]
fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

#[inline]
fn classify(marker: u8, at: &[u8]) -> Header {
    let scalar = |header: usize| Header::Known {
        header,
        body: 0,
        children: 0,
    };
    // Reads a length of `n` bytes after the marker, then builds the header.
    let sized = |n: usize, extra: usize, f: fn(u64) -> (u64, u64)| {
        if at.len() < 1 + n {
            return Header::Short(1 + n + extra);
        }
        let (body, children) = f(be(&at[1..1 + n]));
        Header::Known {
            header: 1 + n + extra,
            body,
            children,
        }
    };
    match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => scalar(1),
        0x80..=0x8f => Header::Known {
            header: 1,
            body: 0,
            children: u64::from(marker & 0x0f) * 2,
        },
        0x90..=0x9f => Header::Known {
            header: 1,
            body: 0,
            children: u64::from(marker & 0x0f),
        },
        0xa0..=0xbf => Header::Known {
            header: 1,
            body: u64::from(marker & 0x1f),
            children: 0,
        },
        0xc1 => Header::Invalid,
        0xc4 | 0xd9 => sized(1, 0, |n| (n, 0)),
        0xc5 | 0xda => sized(2, 0, |n| (n, 0)),
        0xc6 | 0xdb => sized(4, 0, |n| (n, 0)),
        // ext: length, then one type byte, then the body.
        0xc7 => sized(1, 1, |n| (n, 0)),
        0xc8 => sized(2, 1, |n| (n, 0)),
        0xc9 => sized(4, 1, |n| (n, 0)),
        0xca => scalar(5),
        0xcb => scalar(9),
        0xcc | 0xd0 => scalar(2),
        0xcd | 0xd1 => scalar(3),
        0xce | 0xd2 => scalar(5),
        0xcf | 0xd3 => scalar(9),
        0xd4 => scalar(3),
        0xd5 => scalar(4),
        0xd6 => scalar(6),
        0xd7 => scalar(10),
        0xd8 => scalar(18),
        0xdc => sized(2, 0, |n| (0, n)),
        0xdd => sized(4, 0, |n| (0, n)),
        0xde => sized(2, 0, |n| (0, n * 2)),
        0xdf => sized(4, 0, |n| (0, n * 2)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(v: &rmpv::Value) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, v).expect("encode to a Vec cannot fail");
        out
    }

    #[test]
    fn finds_the_end_of_nested_values() {
        use rmpv::Value;
        let v = Value::Array(vec![
            Value::from("tag"),
            Value::Map(vec![(Value::from("k"), Value::Array(vec![Value::from(1)]))]),
            Value::Binary(vec![0; 300]),
            Value::Ext(0, vec![1; 8]),
            Value::F64(1.5),
            Value::Nil,
        ]);
        let mut bytes = encode(&v);
        let len = bytes.len();
        bytes.extend_from_slice(&[0xc0, 0xc0]);
        let mut s = Scanner::new(1 << 20, 16);
        assert_eq!(s.scan(&bytes).unwrap(), Scan::Complete(len));
    }

    #[test]
    fn resumes_byte_by_byte() {
        let v = rmpv::Value::Array(vec![
            rmpv::Value::from("a"),
            rmpv::Value::String("x".repeat(70_000).into()),
        ]);
        let bytes = encode(&v);
        let mut s = Scanner::new(1 << 20, 16);
        for n in 0..bytes.len() {
            match s.scan(&bytes[..n]).unwrap() {
                Scan::NeedMore(m) => assert!(m > n && m <= bytes.len(), "n={n} m={m}"),
                Scan::Complete(_) => panic!("complete at {n} of {}", bytes.len()),
            }
        }
        assert_eq!(s.scan(&bytes).unwrap(), Scan::Complete(bytes.len()));
    }

    #[test]
    fn refuses_claimed_lengths_before_they_arrive() {
        // str32 claiming 4 GiB.
        let mut s = Scanner::new(1 << 20, 16);
        assert!(matches!(
            s.scan(&[0xdb, 0xff, 0xff, 0xff, 0xff]),
            Err(Error::FrameTooLarge { .. })
        ));
        // array32 claiming 4 billion elements.
        assert!(matches!(
            s.scan(&[0xdd, 0xff, 0xff, 0xff, 0xff]),
            Err(Error::FrameTooLarge { .. })
        ));
        // map32: element count is doubled; must not overflow.
        assert!(matches!(
            s.scan(&[0xdf, 0xff, 0xff, 0xff, 0xff]),
            Err(Error::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn bounds_depth() {
        let deep = vec![0x91u8; 100];
        let mut s = Scanner::new(1 << 20, 64);
        assert!(matches!(s.scan(&deep), Err(Error::TooDeep { limit: 64 })));
        let mut s = Scanner::new(1 << 20, 200);
        assert!(matches!(s.scan(&deep), Ok(Scan::NeedMore(101))));
    }

    #[test]
    fn rejects_the_unused_marker() {
        let mut s = Scanner::new(1 << 20, 16);
        assert!(matches!(
            s.scan(&[0x92, 0x01, 0xc1]),
            Err(Error::InvalidMarker {
                marker: 0xc1,
                offset: 2
            })
        ));
    }
}
