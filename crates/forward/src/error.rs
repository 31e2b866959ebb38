use thiserror::Error;

/// Everything that can go wrong while decoding or encoding Forward protocol
/// data.
///
/// Decoding errors fall into two groups, told apart by
/// [`Error::can_continue`]: either only the offending frame is dropped and the
/// connection goes on (the frame's boundaries were known), or the byte stream
/// itself can no longer be trusted and the connection must close.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A frame claims, or has grown to, more bytes than the configured limit.
    /// Checked before the bytes are buffered.
    #[error("frame of at least {needed} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// Bytes the frame needs at least.
        needed: u64,
        /// The configured limit.
        limit: usize,
    },
    /// msgpack nesting deeper than the configured limit.
    #[error("msgpack nesting deeper than {limit} levels")]
    TooDeep {
        /// The configured limit.
        limit: usize,
    },
    /// A byte that msgpack never uses as a type marker (0xc1).
    #[error("invalid msgpack marker 0x{marker:02x} at byte {offset}")]
    InvalidMarker {
        /// The marker byte.
        marker: u8,
        /// Offset within the value being scanned.
        offset: usize,
    },
    /// The stream ended in the middle of a value.
    #[error("msgpack value truncated: {0}")]
    Truncated(&'static str),
    /// A top-level value that is not an array (and not the `nil` heartbeat).
    #[error("top-level value is not an array")]
    NotAnArray,
    /// An array that matches none of the Forward request modes.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// The tag is not a UTF-8 string.
    #[error("tag is not a UTF-8 string")]
    BadTag,
    /// A `compressed` option hydra does not support.
    #[error("unsupported compression {name:?}")]
    UnsupportedCompression {
        /// The name the client gave.
        name: String,
    },
    /// gzip data that does not inflate.
    #[error("gzip data is corrupt: {0}")]
    Gzip(std::io::Error),
    /// zstd data that does not inflate.
    #[error("zstd data is corrupt: {0}")]
    Zstd(std::io::Error),
    /// Inflated data larger than the configured limit.
    #[error("decompressed entries exceed the limit of {limit} bytes")]
    DecompressedTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// A handshake message (HELO, PING, PONG) or ack of the wrong shape.
    #[error("malformed {what}: {reason}")]
    BadMessage {
        /// Which message.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The peer's digest does not match the shared key.
    #[error("{0}")]
    AuthFailed(&'static str),
    /// An I/O error from the transport (only through the tokio-util traits).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Whether the connection can go on after this error.
    ///
    /// `true` means the decoder consumed exactly the offending frame and is
    /// positioned at the start of the next one; `false` means the stream is
    /// corrupt (or over a hard limit) and must be closed.
    pub fn can_continue(&self) -> bool {
        matches!(
            self,
            Error::NotAnArray
                | Error::Malformed(_)
                | Error::BadTag
                | Error::UnsupportedCompression { .. }
                | Error::Gzip(_)
                | Error::Zstd(_)
                | Error::DecompressedTooLarge { .. }
        )
    }
}
