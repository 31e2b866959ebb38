//! hydra's pipeline, wired from a [`hydra_config::Config`].
//!
//! Inputs (files through `hydra-tail`, Forward clients) append to one
//! bounded [`hydra_buffer::Buffer`]; the output (Forward servers through
//! `hydra-sender`, or JSON lines on stdout) delivers its chunks; delivery
//! runs the inputs' commits (tail positions, acks to clients). The monitor
//! serves the stats.
//!
//! [`Agent::start`] starts everything; [`Agent::stop`] stops the inputs,
//! delivers what was accepted within `shutdown_timeout`, saves positions,
//! and reports what was left.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("hydra-agent-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! std::fs::write(dir.join("app.log"), "")?;
//! let config = hydra_config::Config::from_yaml(&format!(
//!     "inputs:\n  - {{ type: tail, path: {}/app.log, tag: app }}\noutput:\n  type: stdout\n",
//!     dir.display()
//! ))?;
//! let agent = hydra_agent::Agent::start(config).await?;
//! // Lines appended to app.log now go to stdout as JSON lines.
//! let report = agent.stop().await;
//! assert_eq!(report.undelivered_events, 0);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

#![deny(clippy::too_many_lines)]

mod agent;
pub mod cases;
mod disk;
mod error;
mod filtered;
mod forward_in;
mod input;
mod listen;
mod log_limit;
mod mapping;
mod monitor;
mod output;
mod prepare;
mod pulse;
mod snapshot;
mod tail_in;
mod zabbix_in;

pub use agent::{Agent, Plugins, Reload, StopReport};
pub use disk::Disk;
pub use error::Error;
pub use forward_in::ReceiverCounters;
pub use input::Input;
pub use mapping::hostname;
pub use output::{ForwardOutput, Output, StdoutOutput};
