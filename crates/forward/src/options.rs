//! What a request says besides its events: the chunk id to ack, the
//! compression, the event count.

use bytes::Bytes;

use crate::msgpack;

/// The `compressed` option (and a configuration's `compress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// One or more concatenated gzip members.
    Gzip,
    /// One or more zstd frames (fluentd 1.19's `compress zstd`).
    Zstd,
}

impl Compression {
    /// Its name in the `compressed` option.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// The `chunk` option as it came on the wire: the raw msgpack value, so the
/// ack can echo it byte for byte (Fluentd's ids end in a newline, for
/// instance, and must come back unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChunkId(Bytes);

impl ChunkId {
    /// A chunk id from its text, as a client sends it.
    pub fn from_id(id: &str) -> Self {
        let mut out = Vec::with_capacity(id.len() + 2);
        msgpack::write_str(&mut out, id.as_bytes());
        ChunkId(out.into())
    }

    /// A fresh random id: 16 random bytes in hex, like Fluent Bit's.
    pub fn generate() -> Self {
        ChunkId::from_id(&hex::encode(rand::random::<[u8; 16]>()))
    }

    /// Wraps a raw msgpack value.
    pub(crate) fn from_raw(raw: Bytes) -> Self {
        ChunkId(raw)
    }

    /// The msgpack encoding, exactly as received.
    pub fn raw(&self) -> &[u8] {
        &self.0
    }

    /// The id's bytes when it is a str or bin (every real client's case).
    pub fn id(&self) -> Option<&[u8]> {
        let (_, start, end) = msgpack::str_or_bin(&self.0)?;
        (end == self.0.len()).then(|| &self.0[start..end])
    }

    /// The reply a server sends once the chunk is safe: `{"ack": chunk}`.
    pub fn ack(&self) -> Bytes {
        let mut out = Vec::with_capacity(5 + self.0.len());
        out.extend_from_slice(&[0x81, 0xa3, b'a', b'c', b'k']);
        out.extend_from_slice(&self.0);
        out.into()
    }
}

/// The option map of a request. Unknown keys are ignored, as Fluentd does
/// (npm fluent-logger sends `eventEntryDataSize`, for instance).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `size`: the sender's event count. Informational only: npm
    /// fluent-logger puts a byte count here.
    pub size: Option<u64>,
    /// `chunk`: when present, the sender waits for an ack.
    pub chunk: Option<ChunkId>,
    /// `compressed`: `gzip`; `text` (and absence) mean uncompressed.
    pub compressed: Option<Compression>,
}
