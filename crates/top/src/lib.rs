//! See a running hydra live, from its monitor endpoint.
//!
//! - [`top`]: a full-screen view of every tailed file, forward input and
//!   output server, the buffer's fill and a minute of delivered events/s;
//!   `s` sorts, `/` filters, `q` quits. It keeps running while the agent
//!   restarts (showing "disconnected") and follows terminal resizes.
//! - [`top_once`]: the same figures as plain text, once, for scripts.
//! - [`tap`]: the events flowing through the agent, as JSON lines.
//!
//! ```no_run
//! let client = hydra_top::Client::new("http://127.0.0.1:24220", None)?;
//! let rt = tokio::runtime::Runtime::new().expect("runtime");
//! print!("{}", rt.block_on(hydra_top::top_once(&client, &Default::default()))?);
//! # Ok::<(), hydra_top::Error>(())
//! ```

mod client;
mod tui;
pub mod view;

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::BodyExt;

pub use client::{Client, Sample};

/// Why `hydra top` or `hydra tap` stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The monitor URL does not parse.
    #[error("invalid monitor URL {url}: {source}")]
    Url {
        /// The URL as given.
        url: String,
        /// Why.
        source: hyper::http::uri::InvalidUri,
    },
    /// A URL that is not `http://HOST:PORT`.
    #[error(
        "invalid monitor URL {url}: expected http://HOST:PORT (the monitor's `listen` address)"
    )]
    NotHttp {
        /// The URL as given.
        url: String,
    },
    /// A request that cannot be made (a token that is not a valid header).
    #[error("invalid request: {0}")]
    Request(hyper::http::Error),
    /// The monitor did not answer.
    #[error("{url}: {source}")]
    Unreachable {
        /// What was asked for.
        url: String,
        /// Why.
        source: hyper_util::client::legacy::Error,
    },
    /// The monitor answered with an error status.
    #[error("{url}: HTTP {status}")]
    Status {
        /// What was asked for.
        url: String,
        /// The HTTP status it answered.
        status: hyper::StatusCode,
    },
    /// The answer broke off.
    #[error("{url}: {source}")]
    Body {
        /// What was asked for.
        url: String,
        /// Why.
        source: hyper::Error,
    },
    /// The answer is not hydra's monitor JSON.
    #[error("{url}: not hydra's monitor JSON: {source}")]
    Json {
        /// What was asked for.
        url: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The terminal could not be set up or written.
    #[error("terminal: {0}")]
    Terminal(std::io::Error),
    /// Standard output was closed.
    #[error("writing: {0}")]
    Write(std::io::Error),
}

/// How `hydra top` runs.
#[derive(Debug, Clone)]
pub struct TopOptions {
    /// Time between refreshes.
    pub interval: Duration,
    /// Sort and filter.
    pub view: view::Options,
}

impl Default for TopOptions {
    fn default() -> Self {
        TopOptions {
            interval: Duration::from_secs(1),
            view: view::Options::default(),
        }
    }
}

/// The full-screen view, until `q` or Ctrl-C.
pub fn top(client: &Client, opts: &TopOptions) -> Result<(), Error> {
    tui::run(client, opts)
}

/// The view as plain text, once.
pub async fn top_once(client: &Client, opts: &TopOptions) -> Result<String, Error> {
    let sample = client.sample().await?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(view::render_text(client.url(), &sample, &opts.view, now))
}

/// Streams the events whose tag matches `glob` (Fluentd's `*`, `**`,
/// `{a,b}`; every tag when empty) to `out` as JSON lines, until the agent
/// stops. A `{"missed": N}` line says events were skipped because this
/// reader fell behind.
pub async fn tap(client: &Client, glob: &str, mut out: impl Write) -> Result<(), Error> {
    let mut body = client.tap(glob).await?;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|source| Error::Body {
            url: format!("{}/tap", client.url()),
            source,
        })?;
        if let Ok(data) = frame.into_data() {
            out.write_all(&data).map_err(Error::Write)?;
            out.flush().map_err(Error::Write)?;
        }
    }
    Ok(())
}
