//! What a client sent, frame by frame: events, a PING, a dropped frame,
//! or a compressed batch to inflate where the caller chooses, within
//! limits.

use std::io::Read;

use bytes::Bytes;

use crate::Error;
use crate::batch::{EventBatch, Mode, check_entries, lazy_now};
use crate::handshake::Ping;
use crate::limits::Limits;
use crate::options::{ChunkId, Compression, Options};
use crate::scan::Scanner;

/// What a client sent, frame by frame.
#[derive(Debug)]
#[non_exhaustive]
pub enum Request {
    /// Events to accept.
    Events(EventBatch),
    /// The client's answer to HELO in the shared-key handshake.
    Ping(Ping),
    /// A well-delimited frame that could not be accepted. The connection can
    /// go on. Sending it again cannot make it acceptable: a server answers
    /// it with its ack ([`Dropped::ack`]) when it has a chunk id, so that a
    /// client waiting for one is not left waiting.
    Dropped(Dropped),
    /// A compressed batch left to inflate, from a decoder that defers
    /// inflation ([`crate::ForwardDecoder::defer_inflation`]).
    Compressed(Compressed),
}

/// A CompressedPackedForward batch, not inflated yet: [`Compressed::inflate`]
/// does it, where the caller chooses (a blocking thread, under a memory
/// budget), within the decoder's limits.
#[derive(Debug)]
pub struct Compressed {
    pub(crate) tag: String,
    pub(crate) raw: Bytes,
    pub(crate) options: Options,
    pub(crate) limits: Limits,
    /// The whole frame as it came.
    pub(crate) frame: Bytes,
}

impl Compressed {
    /// The most bytes inflating may produce (the decoder's
    /// `max_decompressed_bytes`).
    pub fn max_inflated(&self) -> usize {
        self.limits.max_decompressed_bytes
    }

    /// Inflates and checks the events: [`Request::Events`], or
    /// [`Request::Dropped`] when the data is not valid gzip or inflates
    /// past the limit.
    pub fn inflate(self) -> Request {
        let max = self.limits.max_decompressed_bytes;
        // Within the decoder's own limit an overflow is already a Dropped
        // request: the batch never comes back.
        self.inflate_within(max)
            .unwrap_or_else(|c| c.too_large(max))
    }

    /// The batch dropped as inflating past `limit`, without inflating it
    /// again: for a caller whose room for it is below the decoder's own
    /// limit, and whose [`Compressed::inflate_within`] gave it back.
    pub fn too_large(self, limit: usize) -> Request {
        Request::Dropped(Dropped {
            error: Error::DecompressedTooLarge { limit },
            chunk: self.options.chunk,
            frame: self.frame,
        })
    }

    /// Like [`Compressed::inflate`], giving up with the batch back when it
    /// inflates past `limit` and `limit` is below the decoder's own: the
    /// caller may try again with room for more.
    pub fn inflate_within(self, limit: usize) -> Result<Request, Box<Compressed>> {
        let max = self.limits.max_decompressed_bytes;
        let chunk = self.options.chunk.clone();
        let kind = self.options.compressed.unwrap_or(Compression::Gzip);
        match inflate(kind, &self.raw, limit.min(max)) {
            Err(Error::DecompressedTooLarge { .. }) if limit < max => Err(Box::new(self)),
            Err(error) => Ok(Request::Dropped(Dropped {
                error,
                chunk,
                frame: self.frame,
            })),
            Ok(inflated) => {
                let mut scanner = Scanner::new(
                    self.limits
                        .max_decompressed_bytes
                        .max(self.limits.max_frame_bytes),
                    self.limits.max_depth,
                );
                let checked = check_entries(&mut scanner, &inflated, &mut lazy_now());
                Ok(Request::Events(EventBatch {
                    tag: self.tag,
                    mode: Mode::CompressedPackedForward,
                    entries: checked.entries,
                    count: checked.count,
                    skipped: checked.skipped,
                    options: self.options,
                }))
            }
        }
    }
}

/// A dropped frame and why.
#[derive(Debug)]
pub struct Dropped {
    /// Why the frame was dropped; [`Error::can_continue`] is true.
    pub error: Error,
    /// The frame's `chunk` option, when it could be read.
    pub chunk: Option<ChunkId>,
    /// The whole frame as it came (for a dead-letter file).
    pub frame: Bytes,
}

impl Dropped {
    /// The ack that answers the frame, when it asked for one: resending
    /// it cannot make it acceptable, so the client is told to stop.
    pub fn ack(&self) -> Option<Bytes> {
        self.chunk.as_ref().map(ChunkId::ack)
    }
}

/// `raw` inflated, refused past `limit` bytes: read one byte past it at
/// most, so a bomb costs `limit` bytes, never its full size.
pub(crate) fn inflate(kind: Compression, raw: &[u8], limit: usize) -> Result<Bytes, Error> {
    // Room for the limit at once (address space only: pages become
    // resident as they are written): grown by doubling, the copy would hold
    // one and a half times the output at its peak.
    let mut out = Vec::with_capacity(crate::transient_capacity(limit.saturating_add(1)));
    let cap = limit as u64 + 1;
    match kind {
        // MultiGzDecoder: clients may concatenate several gzip members.
        Compression::Gzip => flate2::read::MultiGzDecoder::new(raw)
            .take(cap)
            .read_to_end(&mut out)
            .map_err(Error::Gzip)?,
        // The streaming decoder reads concatenated frames too.
        Compression::Zstd => zstd::stream::read::Decoder::with_buffer(raw)
            .map_err(Error::Zstd)?
            .take(cap)
            .read_to_end(&mut out)
            .map_err(Error::Zstd)?,
    };
    if out.len() > limit {
        return Err(Error::DecompressedTooLarge { limit });
    }
    Ok(out.into())
}
