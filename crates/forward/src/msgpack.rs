//! Small msgpack readers and writers for the hot paths, where building an
//! `rmpv::Value` per event would cost an allocation per field.

use crate::{Error, EventTime};

/// Reads a container header at the start of `b`: (element count, header length).
#[inline]
pub(crate) fn array_header(b: &[u8]) -> Option<(usize, usize)> {
    match *b.first()? {
        m @ 0x90..=0x9f => Some((usize::from(m & 0x0f), 1)),
        0xdc => Some((usize::from(u16::from_be_bytes([*b.get(1)?, *b.get(2)?])), 3)),
        0xdd => Some((be32(b.get(1..5)?)?, 5)),
        _ => None,
    }
}

/// Reads a map header: (pair count, header length).
#[inline]
pub(crate) fn map_header(b: &[u8]) -> Option<(usize, usize)> {
    match *b.first()? {
        m @ 0x80..=0x8f => Some((usize::from(m & 0x0f), 1)),
        0xde => Some((usize::from(u16::from_be_bytes([*b.get(1)?, *b.get(2)?])), 3)),
        0xdf => Some((be32(b.get(1..5)?)?, 5)),
        _ => None,
    }
}

/// Whether the value at the start of `b` is a map.
#[inline]
pub(crate) fn is_map(b: &[u8]) -> bool {
    matches!(b.first(), Some(0x80..=0x8f | 0xde | 0xdf))
}

/// A str or bin value at the start of `b`: (is_str, body start, body end).
#[inline]
pub(crate) fn str_or_bin(b: &[u8]) -> Option<(bool, usize, usize)> {
    let (is_str, len, hdr): (bool, usize, usize) = match *b.first()? {
        m @ 0xa0..=0xbf => (true, usize::from(m & 0x1f), 1),
        0xd9 => (true, usize::from(*b.get(1)?), 2),
        0xda => (
            true,
            usize::from(u16::from_be_bytes([*b.get(1)?, *b.get(2)?])),
            3,
        ),
        0xdb => (true, be32(b.get(1..5)?)?, 5),
        0xc4 => (false, usize::from(*b.get(1)?), 2),
        0xc5 => (
            false,
            usize::from(u16::from_be_bytes([*b.get(1)?, *b.get(2)?])),
            3,
        ),
        0xc6 => (false, be32(b.get(1..5)?)?, 5),
        _ => return None,
    };
    let end = len.checked_add(hdr)?;
    (end <= b.len()).then_some((is_str, hdr, end))
}

/// A non-negative integer value that is the whole of `b`.
pub(crate) fn uint(b: &[u8]) -> Option<u64> {
    let v: i128 = match *b.first()? {
        m @ 0x00..=0x7f => i128::from(m),
        0xcc => i128::from(*b.get(1)?),
        0xcd => i128::from(u16::from_be_bytes(b.get(1..3)?.try_into().ok()?)),
        0xce => i128::from(u32::from_be_bytes(b.get(1..5)?.try_into().ok()?)),
        0xcf => i128::from(u64::from_be_bytes(b.get(1..9)?.try_into().ok()?)),
        0xd0 => i128::from(i8::from_be_bytes([*b.get(1)?])),
        0xd1 => i128::from(i16::from_be_bytes(b.get(1..3)?.try_into().ok()?)),
        0xd2 => i128::from(i32::from_be_bytes(b.get(1..5)?.try_into().ok()?)),
        0xd3 => i128::from(i64::from_be_bytes(b.get(1..9)?.try_into().ok()?)),
        _ => return None,
    };
    u64::try_from(v).ok()
}

fn be32(b: &[u8]) -> Option<usize> {
    usize::try_from(u32::from_be_bytes(b.try_into().ok()?)).ok()
}

/// What an event's time field says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeField {
    /// A valid time whose bytes can be forwarded unchanged.
    Keep(EventTime),
    /// A valid time that must be rewritten before forwarding: `nil` or 0
    /// ("now"), a float, or Fluent Bit's `[EventTime, metadata]` pair.
    Rewrite(EventTime),
    /// Not a time.
    Invalid,
}

/// Classifies the complete time value `b`. `now` is evaluated at most once.
#[inline]
pub(crate) fn time_field(b: &[u8], now: &mut impl FnMut() -> EventTime) -> TimeField {
    match b {
        [0xd7, 0x00, payload @ ..] | [0xc7, 0x08, 0x00, payload @ ..] => {
            match EventTime::from_ext_payload(payload) {
                Some(EventTime { secs: 0, nanos: 0 }) => TimeField::Rewrite(now()),
                Some(t) => TimeField::Keep(t),
                None => TimeField::Invalid,
            }
        }
        [0xc0] => TimeField::Rewrite(now()),
        [0xca, rest @ ..] => match <[u8; 4]>::try_from(rest) {
            Ok(f) => float_time(f64::from(f32::from_be_bytes(f)), now),
            Err(_) => TimeField::Invalid,
        },
        [0xcb, rest @ ..] => match <[u8; 8]>::try_from(rest) {
            Ok(f) => float_time(f64::from_be_bytes(f), now),
            Err(_) => TimeField::Invalid,
        },
        [0x90..=0x9f | 0xdc | 0xdd, ..] => {
            // [time, metadata]: only the time goes downstream, since receivers
            // that predate the pair form reject it.
            let Some((n, hdr)) = array_header(b) else {
                return TimeField::Invalid;
            };
            let inner = &b[hdr..];
            let inner_len = match inner.first() {
                Some(0xd7) => 10,
                Some(0xc7) => 11,
                Some(0x00..=0x7f) => 1,
                Some(0xcc) => 2,
                Some(0xcd) => 3,
                Some(0xce | 0xd2) => 5,
                Some(0xcf | 0xd3) => 9,
                _ => return TimeField::Invalid,
            };
            if n != 2 || inner.len() < inner_len || !is_map(&inner[inner_len..]) {
                return TimeField::Invalid;
            }
            match time_field(&inner[..inner_len], now) {
                TimeField::Keep(t) | TimeField::Rewrite(t) => TimeField::Rewrite(t),
                TimeField::Invalid => TimeField::Invalid,
            }
        }
        _ => match uint(b) {
            Some(0) => TimeField::Rewrite(now()),
            Some(secs) => match u32::try_from(secs) {
                Ok(secs) => TimeField::Keep(EventTime::new(secs, 0)),
                Err(_) => TimeField::Invalid,
            },
            None => TimeField::Invalid,
        },
    }
}

fn float_time(f: f64, now: &mut impl FnMut() -> EventTime) -> TimeField {
    if !f.is_finite() || f < 0.0 || f >= f64::from(u32::MAX) {
        return TimeField::Invalid;
    }
    if f < 1.0 {
        return TimeField::Rewrite(now());
    }
    let secs = f.trunc();
    // In range: checked above.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let t = EventTime::new(secs as u32, ((f - secs) * 1e9) as u32);
    TimeField::Rewrite(t)
}

/// Appends a msgpack str header for `len` bytes.
#[inline]
#[allow(clippy::cast_possible_truncation)] // each arm's range fits its cast
pub(crate) fn write_str_header(out: &mut Vec<u8>, len: usize) {
    // u32 is the largest msgpack length; callers never pass more because
    // frames are bounded far below 4 GiB.
    match len {
        0..=31 => out.push(0xa0 | len as u8),
        32..=0xff => out.extend_from_slice(&[0xd9, len as u8]),
        0x100..=0xffff => {
            out.push(0xda);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0xdb);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
}

/// Appends a msgpack map header for `n` pairs.
#[allow(clippy::cast_possible_truncation)] // each arm's range fits its cast
pub(crate) fn write_map_header(out: &mut Vec<u8>, n: usize) {
    match n {
        0..=15 => out.push(0x80 | n as u8),
        16..=0xffff => {
            out.push(0xde);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out.push(0xdf);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
}

/// Appends a msgpack str.
#[inline]
pub(crate) fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    write_str_header(out, s.len());
    out.extend_from_slice(s);
}

/// Appends a msgpack unsigned integer in its shortest form.
#[allow(clippy::cast_possible_truncation)] // each arm's range fits its cast
pub(crate) fn write_uint(out: &mut Vec<u8>, v: u64) {
    match v {
        0..=0x7f => out.push(v as u8),
        0x80..=0xff => out.extend_from_slice(&[0xcc, v as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(v as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xce);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        }
        _ => {
            out.push(0xcf);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

/// Encodes a whole `rmpv::Value`.
pub(crate) fn write_value(out: &mut Vec<u8>, v: &rmpv::Value) {
    // Writing to a Vec cannot fail.
    let _ = rmpv::encode::write_value(out, v);
}

/// Decodes a complete small value (handshake messages, acks).
pub(crate) fn read_value(mut b: &[u8], what: &'static str) -> Result<rmpv::Value, Error> {
    rmpv::decode::read_value(&mut b).map_err(|_| Error::BadMessage {
        what,
        reason: "not valid msgpack",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> EventTime {
        panic!("now() must not be called")
    }

    #[test]
    fn time_forms() {
        let t = EventTime::new(1_700_000_001, 5);
        assert_eq!(time_field(&t.to_msgpack(), &mut never), TimeField::Keep(t));
        let mut ext8 = vec![0xc7, 0x08, 0x00];
        ext8.extend_from_slice(&t.to_msgpack()[2..]);
        assert_eq!(time_field(&ext8, &mut never), TimeField::Keep(t));
        let go_int32 = [0xd2, 0x65, 0x53, 0xf1, 0x01];
        assert_eq!(
            time_field(&go_int32, &mut never),
            TimeField::Keep(EventTime::new(1_700_000_001, 0))
        );
        let now = EventTime::new(7, 7);
        assert_eq!(time_field(&[0x00], &mut || now), TimeField::Rewrite(now));
        assert_eq!(time_field(&[0xc0], &mut || now), TimeField::Rewrite(now));
        assert_eq!(time_field(&[0xff], &mut never), TimeField::Invalid);
        assert_eq!(time_field(&[0xa1, b'x'], &mut never), TimeField::Invalid);
        let mut pair = vec![0x92];
        pair.extend_from_slice(&t.to_msgpack());
        pair.push(0x80);
        assert_eq!(time_field(&pair, &mut never), TimeField::Rewrite(t));
        let mut f = vec![0xcb];
        f.extend_from_slice(&1.5f64.to_be_bytes());
        assert_eq!(
            time_field(&f, &mut never),
            TimeField::Rewrite(EventTime::new(1, 500_000_000))
        );
    }

    #[test]
    fn str_headers_match_rmpv() {
        for len in [0usize, 31, 32, 255, 256, 65_535, 65_536] {
            let s = "x".repeat(len);
            let mut ours = Vec::new();
            write_str(&mut ours, s.as_bytes());
            let mut theirs = Vec::new();
            rmpv::encode::write_value(&mut theirs, &rmpv::Value::from(s.as_str())).unwrap();
            assert_eq!(ours, theirs, "len {len}");
        }
        for v in [0u64, 127, 128, 255, 256, 65_535, 65_536, 1 << 32, u64::MAX] {
            let mut ours = Vec::new();
            write_uint(&mut ours, v);
            let mut theirs = Vec::new();
            rmpv::encode::write_value(&mut theirs, &rmpv::Value::from(v)).unwrap();
            assert_eq!(ours, theirs, "v {v}");
        }
    }
}
