//! The receiving side: a streaming decoder for what Forward clients send.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;

use crate::batch::{Checked, EventBatch, Mode, check_entries, lazy_now};
use crate::handshake::Ping;
use crate::limits::Limits;
use crate::msgpack::{self, TimeField};
use crate::options::{ChunkId, Compression, Options};
use crate::request::{Compressed, Dropped, Request, inflate};
use crate::scan::{Scan, Scanner, value_len};
use crate::{Error, EventTime};

/// The answer to a UDP heartbeat datagram.
///
/// Fluentd's out_forward (`heartbeat_type udp`) sends `0x00` to the
/// in_forward port and counts the server alive when the same byte comes
/// back; in_forward answers every datagram that way, whatever it holds.
pub fn udp_heartbeat_reply(_datagram: &[u8]) -> &'static [u8] {
    &[0x00]
}

/// A tokio-util [`Decoder`] for the receiving side of Forward (in_forward).
///
/// `decode` returns `Ok(None)` when it needs more bytes. `nil` heartbeats
/// are consumed silently. A frame that is well-delimited but unacceptable
/// comes out as [`Request::Dropped`]; an `Err` means the stream is corrupt or
/// over a limit, and the connection must close.
#[derive(Debug, Clone)]
pub struct ForwardDecoder {
    limits: Limits,
    frame: Scanner,
    inner: Scanner,
    heartbeats: u64,
    defer_inflation: bool,
    /// Leaves the buffer's capacity to the caller.
    caller_reserves: bool,
    /// What the last `decode` that needed more bytes asked for.
    wanted: usize,
}

impl Default for ForwardDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ForwardDecoder {
    /// A decoder with the default [`Limits`].
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    /// A decoder with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        ForwardDecoder {
            limits,
            frame: Scanner::new(limits.max_frame_bytes, limits.max_depth),
            inner: Scanner::new(
                limits.max_frame_bytes.max(limits.max_decompressed_bytes),
                limits.max_depth,
            ),
            heartbeats: 0,
            defer_inflation: false,
            caller_reserves: false,
            wanted: 0,
        }
    }

    /// Hands compressed batches out as [`Request::Compressed`] instead of
    /// inflating them inside `decode`, so a server can inflate them off
    /// its I/O threads and within a memory budget.
    pub fn defer_inflation(mut self) -> Self {
        self.defer_inflation = true;
        self
    }

    /// Never grows the buffer it decodes from: the caller sizes it from
    /// [`ForwardDecoder::wanted`], within a memory budget of its own. (By
    /// default `decode` reserves up to 64 KiB for the next read, and a
    /// full buffer doubles to make room for even one byte.)
    pub fn caller_reserves(mut self) -> Self {
        self.caller_reserves = true;
        self
    }

    /// After `decode` returned `Ok(None)`: how many bytes the buffer must
    /// hold before decoding can go on. For a PackedForward frame, once its
    /// header is in, that is the whole frame: a server can reserve memory
    /// for it before reading it.
    pub fn wanted(&self) -> usize {
        self.wanted
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// `nil` heartbeats seen so far.
    pub fn heartbeats(&self) -> u64 {
        self.heartbeats
    }

    /// Decodes one complete frame (a whole top-level msgpack value).
    ///
    /// `Ok(None)` is a heartbeat. Useful for callers that already framed the
    /// bytes, such as tests and fuzzers; streams go through [`Decoder`].
    pub fn decode_frame(&mut self, frame: &Bytes) -> Result<Option<Request>, Error> {
        match self.parse(frame) {
            Ok(r) => Ok(r),
            Err((error, chunk)) if error.can_continue() => Ok(Some(Request::Dropped(Dropped {
                error,
                chunk,
                frame: frame.clone(),
            }))),
            Err((error, _)) => Err(error),
        }
    }

    /// The top-level array's elements: how many, and where each is.
    fn elements(&mut self, frame: &Bytes) -> Result<(usize, [(usize, usize); 6]), Error> {
        let (n, hdr) = msgpack::array_header(frame).ok_or(Error::NotAnArray)?;
        let mut bounds = [(0usize, 0usize); 6];
        if !(2..=6).contains(&n) {
            return Err(Error::Malformed("array must have 2 to 4 elements"));
        }
        let mut pos = hdr;
        for b in bounds.iter_mut().take(n) {
            let len = value_len(&mut self.inner, &frame[pos..])?;
            *b = (pos, pos + len);
            pos += len;
        }
        Ok((n, bounds))
    }

    fn parse(&mut self, frame: &Bytes) -> Result<Option<Request>, (Error, Option<ChunkId>)> {
        let plain = |e| (e, None);
        if frame.first() == Some(&0xc0) {
            self.heartbeats += 1;
            return Ok(None);
        }
        let (n, bounds) = self.elements(frame).map_err(plain)?;
        let el = |i: usize| frame.slice(bounds[i].0..bounds[i].1);

        if n == 6 {
            return if &el(0)[..] == b"\xa4PING" {
                Ping::from_msgpack(&frame[..])
                    .map(|p| Some(Request::Ping(p)))
                    .map_err(plain)
            } else {
                Err(plain(Error::Malformed("array must have 2 to 4 elements")))
            };
        }
        if n == 5 {
            return Err(plain(Error::Malformed("array must have 2 to 4 elements")));
        }

        let second = el(1);
        let mode = match second.first() {
            Some(0x90..=0x9f | 0xdc | 0xdd) if forward_entries(&second) => Mode::Forward,
            Some(0xa0..=0xbf | 0xd9 | 0xda | 0xdb | 0xc4 | 0xc5 | 0xc6) => Mode::PackedForward,
            Some(_) if n >= 3 => Mode::Message,
            _ => return Err(plain(Error::Malformed("event without a record"))),
        };
        let option_index = match mode {
            Mode::Message => 3,
            _ => 2,
        };
        if n > option_index + 1 || (mode == Mode::Message && n < 3) {
            return Err(plain(Error::Malformed(
                "wrong number of elements for its mode",
            )));
        }
        let options = if n > option_index {
            parse_options(&mut self.inner, &el(option_index))?
        } else {
            Options::default()
        };
        let chunk = options.chunk.clone();
        let with_chunk = |e| (e, chunk.clone());

        let tag = tag_of(&el(0)).ok_or(with_chunk(Error::BadTag))?;

        let mut now = lazy_now();
        let (mode, checked) = match mode {
            Mode::Message => (Mode::Message, check_message(&el(1), &el(2), &mut now)),
            Mode::Forward => {
                let (_, hdr) = msgpack::array_header(&second).unwrap_or((0, 1));
                let body = second.slice(hdr..);
                (
                    Mode::Forward,
                    check_entries(&mut self.inner, &body, &mut now),
                )
            }
            _ => {
                let (_, s, e) = msgpack::str_or_bin(&second)
                    .ok_or(with_chunk(Error::Malformed("entries are not str or bin")))?;
                let raw = second.slice(s..e);
                match options.compressed {
                    None => (
                        Mode::PackedForward,
                        check_entries(&mut self.inner, &raw, &mut now),
                    ),
                    Some(_) if self.defer_inflation => {
                        return Ok(Some(Request::Compressed(Compressed {
                            tag,
                            raw,
                            options,
                            limits: self.limits,
                            frame: frame.clone(),
                        })));
                    }
                    Some(kind) => {
                        let inflated = inflate(kind, &raw, self.limits.max_decompressed_bytes)
                            .map_err(with_chunk)?;
                        (
                            Mode::CompressedPackedForward,
                            check_entries(&mut self.inner, &inflated, &mut now),
                        )
                    }
                }
            }
        };
        Ok(Some(Request::Events(EventBatch {
            tag,
            mode,
            entries: checked.entries,
            count: checked.count,
            skipped: checked.skipped,
            options,
        })))
    }
}

impl Decoder for ForwardDecoder {
    type Item = Request;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Request>, Error> {
        loop {
            if src.is_empty() {
                self.wanted = 1;
                return Ok(None);
            }
            match self.frame.scan(src)? {
                Scan::NeedMore(n) => {
                    self.wanted = n;
                    // Reserve modestly: a peer's claimed length is not a
                    // reason to allocate it up front.
                    if !self.caller_reserves {
                        src.reserve((n - src.len()).min(64 << 10));
                    }
                    return Ok(None);
                }
                Scan::Complete(n) => {
                    let frame = src.split_to(n).freeze();
                    if let Some(request) = self.decode_frame(&frame)? {
                        return Ok(Some(request));
                    }
                }
            }
        }
    }
}

/// A Message mode event, `time` and `record`, as one PackedForward entry.
fn check_message(time: &[u8], record: &[u8], now: &mut impl FnMut() -> EventTime) -> Checked {
    if !msgpack::is_map(record) {
        return Checked::none(1);
    }
    let mut out = Vec::with_capacity(11 + time.len() + record.len());
    out.push(0x92);
    match msgpack::time_field(time, now) {
        TimeField::Keep(_) => out.extend_from_slice(time),
        TimeField::Rewrite(t) => out.extend_from_slice(&t.to_msgpack()),
        TimeField::Invalid => return Checked::none(1),
    }
    out.extend_from_slice(record);
    Checked::one(out)
}

/// The tag, when it is a UTF-8 string (or binary).
fn tag_of(t: &[u8]) -> Option<String> {
    let (_, s, e) = msgpack::str_or_bin(t)?;
    std::str::from_utf8(&t[s..e]).ok().map(str::to_owned)
}

/// Whether an array in the second position is Forward mode's entry list,
/// rather than Message mode's `[EventTime, metadata]` time.
fn forward_entries(second: &[u8]) -> bool {
    match msgpack::array_header(second) {
        Some((0, _)) => true,
        Some((_, hdr)) => matches!(second.get(hdr), Some(0x90..=0x9f | 0xdc | 0xdd)),
        None => false,
    }
}

/// The options map. An option hydra cannot honour fails the frame with the
/// chunk id when the map has one, wherever it comes in the map: the frame
/// is then answered, not left without an ack.
fn parse_options(scanner: &mut Scanner, raw: &Bytes) -> Result<Options, (Error, Option<ChunkId>)> {
    let mut options = Options::default();
    if raw.first() == Some(&0xc0) {
        return Ok(options);
    }
    let (pairs, hdr) =
        msgpack::map_header(raw).ok_or((Error::Malformed("option is not a map"), None))?;
    let mut pos = hdr;
    let mut refused = None;
    for _ in 0..pairs {
        let klen = value_len(scanner, &raw[pos..]).map_err(|e| (e, None))?;
        let key = &raw[pos..pos + klen];
        pos += klen;
        let vlen = value_len(scanner, &raw[pos..]).map_err(|e| (e, None))?;
        let value = raw.slice(pos..pos + vlen);
        pos += vlen;
        let Some((true, s, e)) = msgpack::str_or_bin(key) else {
            continue;
        };
        match &key[s..e] {
            b"size" => options.size = msgpack::uint(&value),
            b"chunk" => options.chunk = Some(ChunkId::from_raw(value)),
            b"compressed" => {
                let name = msgpack::str_or_bin(&value).map(|(_, s, e)| &value[s..e]);
                options.compressed = match name {
                    Some(b"gzip") => Some(Compression::Gzip),
                    Some(b"zstd") => Some(Compression::Zstd),
                    Some(b"text") | None => None,
                    Some(other) => {
                        refused = Some(Error::UnsupportedCompression {
                            name: String::from_utf8_lossy(other).into_owned(),
                        });
                        None
                    }
                };
            }
            _ => {}
        }
    }
    match refused {
        Some(e) => Err((e, options.chunk)),
        None => Ok(options),
    }
}
