//! The receiving end of a tailer: batches one at a time, handed over by the
//! reading thread several at once.

use std::collections::VecDeque;

use tokio::sync::mpsc;
pub use tokio::sync::mpsc::error::TryRecvError;

use crate::Batch;

/// The batches a [`crate::Tailer`] reads, in the order it read them (per
/// file, the order of the file's lines). The reading thread hands them
/// over in groups, so a consumer woken once takes the lines of every file
/// read in one look; reading waits while the consumer is behind.
#[derive(Debug)]
pub struct Batches {
    rx: mpsc::Receiver<Vec<Batch>>,
    ready: VecDeque<Batch>,
}

impl Batches {
    pub(crate) fn new(rx: mpsc::Receiver<Vec<Batch>>) -> Self {
        Batches {
            rx,
            ready: VecDeque::new(),
        }
    }

    /// The next batch; `None` once the tailer stopped and every batch was
    /// taken.
    pub async fn recv(&mut self) -> Option<Batch> {
        loop {
            if let Some(b) = self.ready.pop_front() {
                return Some(b);
            }
            self.ready.extend(self.rx.recv().await?);
        }
    }

    /// [`Batches::recv`] for a thread outside a tokio runtime.
    pub fn blocking_recv(&mut self) -> Option<Batch> {
        loop {
            if let Some(b) = self.ready.pop_front() {
                return Some(b);
            }
            self.ready.extend(self.rx.blocking_recv()?);
        }
    }

    /// The next batch if one is there now.
    pub fn try_recv(&mut self) -> Result<Batch, TryRecvError> {
        loop {
            if let Some(b) = self.ready.pop_front() {
                return Ok(b);
            }
            self.ready.extend(self.rx.try_recv()?);
        }
    }
}
