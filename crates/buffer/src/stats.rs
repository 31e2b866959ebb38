//! What the buffer counts.

/// Counters, as a serde-serializable snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BufferStats {
    /// Encoded event bytes held (open, queued, in flight), and
    /// [`CHUNK_COST`](crate::CHUNK_COST) for each chunk.
    pub bytes: usize,
    /// Events held.
    pub events: usize,
    /// The byte ceiling.
    pub max_bytes: usize,
    /// Chunks sealed and waiting to be sent.
    pub queued_chunks: usize,
    /// Events appended since start.
    pub events_in: u64,
    /// Events delivered since start.
    pub events_delivered: u64,
    /// Chunks delivered since start.
    pub chunks_delivered: u64,
    /// Chunks handed back to be sent again.
    pub chunks_retried: u64,
    /// Times a producer had to wait for room.
    pub producer_waits: u64,
}
