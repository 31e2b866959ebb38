//! Inputs a service that embeds the agent brings ([`crate::Plugins`]):
//! anything that produces events and appends them to the buffer, beside
//! the configuration's tail and forward inputs.

use async_trait::async_trait;
use hydra_buffer::Buffer;
use tokio::sync::watch;

/// Produces events into the pipeline's buffer.
///
/// Appending ([`Buffer::append`]) waits while the buffer is full: that is
/// backpressure, and an input should let it slow its source down. Each
/// append may carry a commit, which runs once those events were delivered
/// (acknowledge the source then, never before, and nothing is lost).
#[async_trait]
pub trait Input: Send + Sync + 'static {
    /// Appends events until `stop` turns true (or the buffer closes).
    /// After a reload it runs again, with the new pipeline's buffer.
    async fn run(&self, buffer: Buffer, stop: watch::Receiver<bool>);

    /// Whether its events are kept on disk until delivered, when the
    /// configuration has `buffer.disk`: the buffer `run` gets then writes
    /// them to the disk buffer's files (and [`Buffer::append_stored`]'s
    /// `stored` commit runs once they are synced). Off by default: such an
    /// input's events live in memory, as a tail input's do.
    fn durable(&self) -> bool {
        false
    }
}
