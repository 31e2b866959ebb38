//! The on-disk format, version 1. docs/disk-buffer.md is its spec; this
//! module is the only code that reads or writes it.
//!
//! A chunk is one file, `<seq:016x>-<id:32 hex>.chunk`: a 16-byte header,
//! then records. Each record is self-contained (its own tag, event count
//! and checksum), so a damaged one costs only itself: the reader finds the
//! next record by its magic and checksum and goes on.

use std::ops::Range;

/// The first bytes of every chunk file.
pub const FILE_MAGIC: [u8; 8] = *b"HYDRABUF";

/// The format's version, in every file's header.
pub const VERSION: u16 = 1;

/// Bytes of a file's header: magic, version, flags (0), the creation time
/// (seconds since the epoch), CRC-32 of the twenty bytes before it.
pub const HEADER_LEN: usize = 24;

/// The first bytes of every record.
pub const RECORD_MAGIC: [u8; 4] = *b"HREC";

/// Bytes of a record's header: magic, payload length, CRC-32 of the
/// length's four bytes and the payload.
pub const RECORD_HEADER: usize = 12;

/// Events' bytes in one record at most (unless one event alone is larger):
/// what one damaged record can cost.
pub const RECORD_EVENTS: usize = 64 << 10;

/// The longest payload a reader believes: anything longer is a damaged
/// length, not a record.
pub const MAX_PAYLOAD: usize = 256 << 20;

/// The one kind of record in version 1.
const KIND_EVENTS: u8 = 1;

/// Bytes of a payload before its tag: kind, event count, tag length.
const PAYLOAD_FIXED: usize = 1 + 4 + 2;

/// A chunk file's header, for a file created at `created` (seconds since
/// the epoch).
pub fn header(created: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&FILE_MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&created.to_le_bytes());
    let crc = crc32fast::hash(&h[..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// When a file with a good header was created, in seconds since the epoch.
pub fn created(data: &[u8]) -> Option<u64> {
    (check_header(data) == Header::Good)
        .then(|| u64::from_le_bytes(data[12..20].try_into().unwrap_or_default()))
}

/// What a file's first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// A version 1 header.
    Good,
    /// Fewer bytes than a header: the file was being created.
    Short,
    /// Not a version 1 header (damaged, or another version).
    Bad,
}

/// Reads a file's header.
pub fn check_header(data: &[u8]) -> Header {
    let Some(h) = data.get(..HEADER_LEN) else {
        return Header::Short;
    };
    let crc = u32::from_le_bytes([h[20], h[21], h[22], h[23]]);
    if h[..8] == FILE_MAGIC && h[8..10] == VERSION.to_le_bytes() && crc32fast::hash(&h[..20]) == crc
    {
        Header::Good
    } else {
        Header::Bad
    }
}

/// Appends a record of `events` events (`entries`, msgpack `[time,
/// record]` arrays back to back) of `tag` to `out`.
pub fn encode_record(tag: &str, events: u32, entries: &[u8], out: &mut Vec<u8>) {
    let tag = &tag.as_bytes()[..tag.len().min(u16::MAX as usize)];
    let payload_len = PAYLOAD_FIXED + tag.len() + entries.len();
    let len = u32::try_from(payload_len).unwrap_or(u32::MAX);
    let start = out.len();
    out.reserve(RECORD_HEADER + payload_len);
    out.extend_from_slice(&RECORD_MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(KIND_EVENTS);
    out.extend_from_slice(&events.to_le_bytes());
    out.extend_from_slice(&u16::try_from(tag.len()).unwrap_or(u16::MAX).to_le_bytes());
    out.extend_from_slice(tag);
    out.extend_from_slice(entries);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len.to_le_bytes());
    crc.update(&out[start + RECORD_HEADER..]);
    out[start + 8..start + 12].copy_from_slice(&crc.finalize().to_le_bytes());
}

/// A whole record found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Where it starts in the file.
    pub offset: usize,
    /// Its bytes in all, header included.
    pub len: usize,
    /// Its events' tag.
    pub tag: String,
    /// Events in it.
    pub events: u32,
    /// Where its entries are in the file.
    pub entries: Range<usize>,
}

/// Bytes that are not a whole record, between two that are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Where the damage starts.
    pub offset: usize,
    /// Its bytes.
    pub len: usize,
}

/// How a file's bytes after its last whole record end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// The file ends with a whole record.
    Clean,
    /// The start of a record whose rest is not written yet: a write in
    /// progress, or cut by a crash.
    Partial {
        /// Where the partial record starts.
        offset: usize,
    },
    /// Bytes no record starts with (a write torn by a crash, or damage).
    Garbage {
        /// Where the garbage starts.
        offset: usize,
    },
}

/// Everything found in a file's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// What the header says.
    pub header: Header,
    /// The whole records, in order.
    pub records: Vec<Record>,
    /// Damage between them.
    pub damaged: Vec<Damage>,
    /// How the file ends.
    pub tail: Tail,
}

impl Scan {
    /// Where the file's whole records end: what a recovery keeps.
    pub fn good_len(&self) -> usize {
        match self.tail {
            Tail::Clean => self
                .records
                .last()
                .map_or(HEADER_LEN, |r| r.offset + r.len)
                .max(self.damaged.last().map_or(0, |d| d.offset + d.len)),
            Tail::Partial { offset } | Tail::Garbage { offset } => offset,
        }
    }
}

/// What starts at `at`: a whole record, the start of one that runs past
/// the end, or neither.
enum At {
    Record(Record),
    Partial,
    Nothing,
}

fn record_at(data: &[u8], at: usize) -> At {
    let Some(head) = data.get(at..at + RECORD_HEADER) else {
        // Fewer bytes than a header: a header being written, if what is
        // there is its beginning.
        let rest = &data[at..];
        let n = rest.len().min(4);
        return if rest[..n] == RECORD_MAGIC[..n] {
            At::Partial
        } else {
            At::Nothing
        };
    };
    if head[..4] != RECORD_MAGIC {
        return At::Nothing;
    }
    let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
    if !(PAYLOAD_FIXED..=MAX_PAYLOAD).contains(&len) {
        return At::Nothing;
    }
    let Some(payload) = data.get(at + RECORD_HEADER..at + RECORD_HEADER + len) else {
        return At::Partial;
    };
    let crc = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    let mut h = crc32fast::Hasher::new();
    h.update(&head[4..8]);
    h.update(payload);
    if h.finalize() != crc || payload[0] != KIND_EVENTS {
        return At::Nothing;
    }
    let events = u32::from_le_bytes([payload[1], payload[2], payload[3], payload[4]]);
    let tag_len = u16::from_le_bytes([payload[5], payload[6]]) as usize;
    let Some(tag) = payload.get(PAYLOAD_FIXED..PAYLOAD_FIXED + tag_len) else {
        return At::Nothing;
    };
    let Ok(tag) = std::str::from_utf8(tag) else {
        return At::Nothing;
    };
    let entries = at + RECORD_HEADER + PAYLOAD_FIXED + tag_len..at + RECORD_HEADER + len;
    At::Record(Record {
        offset: at,
        len: RECORD_HEADER + len,
        tag: tag.to_owned(),
        events,
        entries,
    })
}

/// The next offset after `from` where a whole record starts.
fn next_record(data: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = data.get(at..)?.windows(4).position(|w| w == RECORD_MAGIC) {
        let candidate = at + i;
        if let At::Record(_) = record_at(data, candidate) {
            return Some(candidate);
        }
        at = candidate + 1;
    }
    None
}

/// Every whole record in a chunk file's bytes, the damage between them,
/// and how the file ends. Never fails and never loops: every step moves
/// forward by at least one byte.
pub fn scan(data: &[u8]) -> Scan {
    let header = check_header(data);
    let mut out = Scan {
        header,
        records: Vec::new(),
        damaged: Vec::new(),
        tail: Tail::Clean,
    };
    let mut at = match header {
        Header::Short => {
            if !data.is_empty() && data.len() < HEADER_LEN {
                out.tail = if FILE_MAGIC.starts_with(&data[..data.len().min(8)]) {
                    Tail::Partial { offset: 0 }
                } else {
                    Tail::Garbage { offset: 0 }
                };
            }
            return out;
        }
        // A damaged header costs nothing but itself: the records are read
        // as usual (the file's name carries its identity).
        Header::Good | Header::Bad => HEADER_LEN,
    };
    if header == Header::Bad {
        out.damaged.push(Damage {
            offset: 0,
            len: HEADER_LEN,
        });
    }
    while at < data.len() {
        match record_at(data, at) {
            At::Record(r) => {
                at = r.offset + r.len;
                out.records.push(r);
            }
            other => match next_record(data, at + 1) {
                // Damage in the middle: set aside, and read on.
                Some(next) => {
                    out.damaged.push(Damage {
                        offset: at,
                        len: next - at,
                    });
                    at = next;
                }
                None => {
                    out.tail = match other {
                        At::Partial => Tail::Partial { offset: at },
                        _ => Tail::Garbage { offset: at },
                    };
                    break;
                }
            },
        }
    }
    out
}

/// A chunk file's name.
pub fn file_name(seq: u64, id: &str) -> String {
    format!("{seq:016x}-{id}.chunk")
}

/// A chunk file's sequence number and id, from its name; `None` for a name
/// that is not one.
pub fn parse_name(name: &str) -> Option<(u64, String)> {
    let (seq, id) = name.strip_suffix(".chunk")?.split_once('-')?;
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    if !hex(seq, 16) || !hex(id, 32) {
        return None;
    }
    Some((u64::from_str_radix(seq, 16).ok()?, id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(records: &[(&str, u32, &[u8])]) -> Vec<u8> {
        let mut out = header(1_700_000_000).to_vec();
        for (tag, n, e) in records {
            encode_record(tag, *n, e, &mut out);
        }
        out
    }

    #[test]
    fn records_round_trip() {
        let data = file(&[("a", 1, b"\x92\x01\x80"), ("bb", 2, b"xyzxyz")]);
        let s = scan(&data);
        assert_eq!(s.header, Header::Good);
        assert_eq!(created(&data), Some(1_700_000_000));
        assert_eq!(s.tail, Tail::Clean);
        assert!(s.damaged.is_empty());
        assert_eq!(s.records.len(), 2);
        assert_eq!((s.records[1].tag.as_str(), s.records[1].events), ("bb", 2));
        assert_eq!(&data[s.records[1].entries.clone()], b"xyzxyz");
        assert_eq!(s.good_len(), data.len());
    }

    #[test]
    fn damage_in_the_middle_costs_only_its_record() {
        let mut data = file(&[("a", 1, b"one"), ("a", 1, b"two"), ("a", 1, b"three")]);
        let second = scan(&data).records[1].clone();
        data[second.offset + RECORD_HEADER + 3] ^= 0xff;
        let s = scan(&data);
        let tags: Vec<&[u8]> = s.records.iter().map(|r| &data[r.entries.clone()]).collect();
        assert_eq!(tags, [&b"one"[..], b"three"]);
        assert_eq!(
            s.damaged,
            [Damage {
                offset: second.offset,
                len: second.len
            }]
        );
        assert_eq!(s.tail, Tail::Clean);
    }

    #[test]
    fn a_cut_record_is_a_partial_tail_and_garbage_is_not() {
        let data = file(&[("a", 1, b"one"), ("a", 1, b"two")]);
        let last = scan(&data).records[1].clone();
        for cut in last.offset + 1..data.len() {
            let s = scan(&data[..cut]);
            assert_eq!(s.records.len(), 1, "cut at {cut}");
            assert_eq!(
                s.tail,
                Tail::Partial {
                    offset: last.offset
                }
            );
            assert_eq!(s.good_len(), last.offset);
        }
        let mut junk = data.clone();
        junk.extend_from_slice(&[0u8; 100]);
        let s = scan(&junk);
        assert_eq!(s.records.len(), 2);
        assert_eq!(s.tail, Tail::Garbage { offset: data.len() });
    }

    #[test]
    fn a_damaged_header_is_counted_and_the_records_still_read() {
        let mut data = file(&[("a", 1, b"one")]);
        data[3] = b'x';
        let s = scan(&data);
        assert_eq!(s.header, Header::Bad);
        assert_eq!(s.records.len(), 1);
        assert_eq!(s.damaged.len(), 1);
    }

    #[test]
    fn names_round_trip_and_strays_are_not_chunks() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(parse_name(&file_name(42, id)), Some((42, id.to_owned())));
        for stray in ["x.chunk", "0000000000000001-ZZ.chunk", "notes.txt", "lock"] {
            assert_eq!(parse_name(stray), None, "{stray}");
        }
    }
}
