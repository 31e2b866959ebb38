//! The buffer's limits and timings.

use std::time::Duration;

use hydra_forward::{Compression, TimeFormat};

/// Buffer limits and chunking.
#[derive(Debug, Clone)]
pub struct BufferConfig {
    /// Ceiling on bytes of encoded events held, from append to delivery.
    pub max_bytes: usize,
    /// Ceiling on events held.
    pub max_events: usize,
    /// A chunk is sealed once its events take this many bytes.
    pub chunk_bytes: usize,
    /// A chunk is sealed at the latest this long after its first event.
    pub flush_interval: Duration,
    /// How event times are written.
    pub time_format: TimeFormat,
    /// Give each chunk a `chunk` id so the receiver acks it.
    pub require_ack: bool,
    /// Compress chunk entries.
    pub compress: Option<Compression>,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            max_bytes: 64 << 20,
            max_events: 1 << 20,
            chunk_bytes: 1 << 20,
            flush_interval: Duration::from_secs(1),
            time_format: TimeFormat::EventTime,
            require_ack: true,
            compress: None,
        }
    }
}
