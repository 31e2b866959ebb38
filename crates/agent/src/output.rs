//! Where the buffer's chunks go: the [`Output`] trait, and hydra's own two
//! outputs, Forward servers ([`ForwardOutput`]) and JSON lines on stdout
//! ([`StdoutOutput`]). A service that embeds the agent can bring its own
//! ([`crate::Plugins`]).

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use hydra_buffer::Buffer;
use hydra_forward::{ForwardDecoder, Limits};
use hydra_sender::{Sender, SenderConfig, SenderStats};
use tracing::error;

/// Takes sealed chunks from the buffer and delivers them.
///
/// Delivering means: [`Buffer::next_chunk`] until it returns `None`, and
/// for each chunk [`Buffer::delivered`] once it is safe where it went
/// (which runs its commits: tail positions advance, Forward clients get
/// their acks) or [`Buffer::retry`] to hand it back. A chunk neither
/// delivered nor handed back is held for ever, and so is its room in the
/// buffer.
///
/// `run` is cancelled when the agent stops past its deadline: whatever it
/// had not marked delivered stays undelivered, and nothing is lost.
#[async_trait]
pub trait Output: Send + Sync + 'static {
    /// Delivers `buffer`'s chunks until it is closed and empty.
    async fn run(&self, buffer: Buffer);

    /// The counters of the servers it sends to, for the monitor; `None`
    /// for an output without servers.
    fn servers(&self) -> Option<SenderStats> {
        None
    }
}

/// The forward output: chunks to Fluentd, Fluent Bit or hydra servers,
/// through [`hydra_sender`].
pub struct ForwardOutput {
    config: SenderConfig,
    stats: Mutex<Option<Arc<dyn Fn() -> SenderStats + Send + Sync>>>,
}

impl std::fmt::Debug for ForwardOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardOutput").finish_non_exhaustive()
    }
}

impl ForwardOutput {
    /// An output to the servers of `config`, which [`SenderConfig::check`]
    /// accepted.
    pub fn new(config: SenderConfig) -> ForwardOutput {
        ForwardOutput {
            config,
            stats: Mutex::new(None),
        }
    }
}

/// Aborts the sender when the output's run is cancelled.
struct Running(Sender);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[async_trait]
impl Output for ForwardOutput {
    async fn run(&self, buffer: Buffer) {
        let sender = match Sender::spawn(self.config.clone(), buffer) {
            Ok(s) => s,
            Err(e) => {
                // Checked before the agent started: not reached.
                error!(error = %e, "The forward output cannot start.");
                return;
            }
        };
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner) = Some(sender.stats_fn());
        let mut running = Running(sender);
        running.0.wait().await;
    }

    fn servers(&self) -> Option<SenderStats> {
        let stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        Some(stats.as_ref().map(|f| f()).unwrap_or_default())
    }
}

/// The stdout output: each event as a JSON line
/// `{"tag": .., "time": "<RFC 3339>", "record": {..}}`.
#[derive(Debug, Default)]
pub struct StdoutOutput;

#[async_trait]
impl Output for StdoutOutput {
    async fn run(&self, buffer: Buffer) {
        // The chunks are hydra's own frames, as large as a chunk plus the
        // largest frame a client may send: no limit meant for untrusted
        // input applies.
        let mut decoder = ForwardDecoder::with_limits(Limits {
            max_frame_bytes: usize::MAX,
            max_decompressed_bytes: usize::MAX,
            ..Limits::default()
        });
        while let Some(chunk) = buffer.next_chunk().await {
            let mut out = Vec::with_capacity(chunk.frame().len() * 2);
            let printed = hydra_forward::json_lines(&mut decoder, chunk.frame(), &mut out);
            if printed != chunk.events() {
                // Never marked delivered: its clients are not acked, its
                // lines' positions do not advance past it.
                error!(
                    events = chunk.events(),
                    printed, "A chunk could not be turned into JSON lines; retrying it."
                );
                buffer.retry(chunk);
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
            let written = tokio::task::spawn_blocking(move || {
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(&out).and_then(|()| stdout.flush())
            })
            .await;
            match written {
                Ok(Ok(())) => buffer.delivered(chunk),
                // stdout is gone (closed pipe): nothing can be delivered;
                // keep the chunk undelivered so its commits never run.
                _ => {
                    buffer.retry(chunk);
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }
}
