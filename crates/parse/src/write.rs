//! Writing msgpack maps whose size is known only at the end.

use hydra_forward::EventTime;

use crate::{FieldType, Fields, ParseStats};

/// A map being written: a map32 header is reserved, and [`MapWriter::finish`]
/// rewrites it in the smallest form once the count is known. Records are
/// small, so moving their bytes back by four is cheaper than counting the
/// fields in a first pass.
#[derive(Debug)]
pub(crate) struct MapWriter {
    at: usize,
    count: u32,
}

impl MapWriter {
    pub(crate) fn begin(out: &mut Vec<u8>) -> MapWriter {
        let at = out.len();
        out.extend_from_slice(&[0xdf, 0, 0, 0, 0]);
        MapWriter { at, count: 0 }
    }

    pub(crate) fn key(&mut self, out: &mut Vec<u8>, key: &[u8]) {
        self.count += 1;
        write_str(out, key);
    }

    pub(crate) fn str_field(&mut self, out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
        self.key(out, key);
        write_str(out, value);
    }

    /// Writes `key: value` with `value` converted to its configured type, and
    /// reads the event time from it when `key` is the time key. Returns the
    /// time outcome for the time key, `None` for other keys.
    pub(crate) fn field(
        &mut self,
        out: &mut Vec<u8>,
        key: &[u8],
        value: &[u8],
        fields: &Fields,
        stats: &mut ParseStats,
    ) -> Option<Result<EventTime, ()>> {
        let time = fields
            .is_time_key(key)
            .then(|| fields.time_format.parse(value).ok_or(()));
        if time.is_some() && !fields.keep_time_key {
            return time;
        }
        self.key(out, key);
        write_typed(out, value, fields.type_of(key), stats);
        time
    }

    /// Appends fields encoded beforehand.
    pub(crate) fn extra(&mut self, out: &mut Vec<u8>, extra: &hydra_forward::ExtraFields) {
        self.count += u32::try_from(extra.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(extra.encoded());
    }

    /// Drops a key written last, when its value turns out not to be wanted.
    pub(crate) fn unkey(&mut self, out: &mut Vec<u8>, key_at: usize) {
        out.truncate(key_at);
        self.count -= 1;
    }

    pub(crate) fn finish(self, out: &mut Vec<u8>) {
        finish_header(out, self.at, self.count, 0x80, 0xde, 0xdf);
    }
}

/// Rewrites the 5-byte placeholder at `at` as the smallest header for `n`
/// (fix form below 16, 16-bit below 65,536).
pub(crate) fn finish_header(out: &mut Vec<u8>, at: usize, n: u32, fix: u8, b16: u8, b32: u8) {
    if let Ok(small) = u8::try_from(n)
        && small < 16
    {
        out[at] = fix | small;
        out.drain(at + 1..at + 5);
    } else if let Ok(n16) = u16::try_from(n) {
        out[at] = b16;
        out[at + 1..at + 3].copy_from_slice(&n16.to_be_bytes());
        out.drain(at + 3..at + 5);
    } else {
        out[at] = b32;
        out[at + 1..at + 5].copy_from_slice(&n.to_be_bytes());
    }
}

/// A msgpack str with `bytes` as they are: log lines are passed through
/// even when they are not UTF-8, as Fluentd does.
pub(crate) fn write_str(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    // Writing to a Vec cannot fail.
    let _ = rmp::encode::write_str_len(out, len);
    out.extend_from_slice(&bytes[..len as usize]);
}

pub(crate) fn write_typed(
    out: &mut Vec<u8>,
    value: &[u8],
    ty: Option<FieldType>,
    stats: &mut ParseStats,
) {
    let converted = match ty {
        None | Some(FieldType::String) => false,
        Some(FieldType::Integer) => match parse_int(value) {
            Some(n) => {
                let _ = rmp::encode::write_sint(out, n);
                true
            }
            None => false,
        },
        Some(FieldType::Float) => match std::str::from_utf8(value)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
        {
            Some(f) => {
                let _ = rmp::encode::write_f64(out, f);
                true
            }
            None => false,
        },
        Some(FieldType::Bool) => match parse_bool(value) {
            Some(b) => {
                let _ = rmp::encode::write_bool(out, b);
                true
            }
            None => false,
        },
    };
    if !converted {
        if !matches!(ty, None | Some(FieldType::String)) {
            stats.type_errors += 1;
        }
        write_str(out, value);
    }
}

fn parse_int(value: &[u8]) -> Option<i64> {
    // The common case (plain ASCII digits) without a UTF-8 check.
    let (neg, digits) = match value {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, value),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut n: i64 = 0;
    for d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    Some(if neg { -n } else { n })
}

/// The spellings Go's `strconv.ParseBool` accepts, so configurations moved
/// from the Go agent convert the same values.
fn parse_bool(value: &[u8]) -> Option<bool> {
    match value {
        b"1" | b"t" | b"T" | b"true" | b"TRUE" | b"True" => Some(true),
        b"0" | b"f" | b"F" | b"false" | b"FALSE" | b"False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(parse_int(b"200"), Some(200));
        assert_eq!(parse_int(b"-5"), Some(-5));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int(b"9223372036854775808"), None);
        assert_eq!(parse_int(b"-"), None);
        assert_eq!(parse_int(b""), None);
        assert_eq!(parse_int(b"12a"), None);
    }

    #[test]
    fn headers_take_the_smallest_form() {
        for (n, head) in [
            (0u32, vec![0x80]),
            (15, vec![0x8f]),
            (16, vec![0xde, 0, 16]),
        ] {
            let mut out = vec![9];
            let at = out.len();
            out.extend_from_slice(&[0xdf, 0, 0, 0, 0, 7]);
            finish_header(&mut out, at, n, 0x80, 0xde, 0xdf);
            let mut want = vec![9];
            want.extend_from_slice(&head);
            want.push(7);
            assert_eq!(out, want);
        }
    }
}
