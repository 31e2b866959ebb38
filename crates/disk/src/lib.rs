//! hydra's disk buffer: events kept on disk from the moment they are
//! accepted until an aggregator has them, through outages, `kill -9` and
//! power loss, with damage costing only the damaged records.
//!
//! - **Format** ([`format`](mod@format), spec in docs/disk-buffer.md): one file per
//!   chunk, named by its sequence number and chunk id; a header, then
//!   self-contained records (tag, event count, events, CRC-32), each
//!   holding at most 64 KiB of events.
//! - **State from the files alone**: no ledger or manifest that could
//!   disagree with them after a crash. A chunk is delivered once its file
//!   is gone; recovery ([`Recovery`]) keeps every whole record, cuts a torn
//!   tail, sets damaged records aside under `corrupt/` and delivers every
//!   record around them. It never refuses to start and never loops.
//! - **Effects through a file layer** ([`fs::Fs`]): the real one, or
//!   [`sim::SimFs`], which the crash tests stop at any write, sync, rename
//!   or removal, tearing what was not synced.
//! - **One writer per directory** ([`DirLock`]).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use hydra_disk::{Config, Store, SyncPolicy, sim::SimFs};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), hydra_disk::Error> {
//! let fs = SimFs::new();
//! let config = Config {
//!     dir: "/buffer".into(),
//!     max_bytes: 1 << 20,
//!     chunk_bytes: 64 << 10,
//!     flush_interval: Duration::from_millis(100),
//! };
//! let (store, _) = Store::<()>::open(Arc::new(fs.clone()), config.clone(), SyncPolicy::Always)?;
//! // Durable once `append` returns, with `SyncPolicy::Always`.
//! store.append("app", vec![(bytes::Bytes::from_static(b"\x92\x01\x80"), 1)], None, None).await?;
//! store.close();
//!
//! // After a crash: what was synced is there, whatever the rest became.
//! let disk = fs.reboot(&mut |n| n - 1);
//! let (store, recovery) = Store::<()>::open(Arc::new(disk), config, SyncPolicy::Always)?;
//! assert_eq!(recovery.chunks.len(), 1);
//! let chunk = store.next().await.expect("the chunk");
//! assert_eq!((chunk.tag.as_str(), chunk.events), ("app", 1));
//! store.delivered(chunk.seq);
//! # Ok(())
//! # }
//! ```
#![deny(clippy::too_many_lines)]

pub mod check;
mod core;
mod error;
pub mod format;
pub mod fs;
mod lock;
mod recover;
pub mod sim;
mod store;

pub use core::{ChunkFile, Config, Core, Counts, Events, Sealed, SyncJob, Written, events_of};
pub use error::Error;
pub use lock::DirLock;
pub use recover::{Found, Recovery};
pub use store::{Callback, DiskStats, Store, SyncPolicy, Taken};
