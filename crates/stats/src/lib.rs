//! The stats monitor: what hydra is doing, over HTTP.
//!
//! - `GET /`: JSON in fluent-agent-hydra's shape (`receiver`, `servers`
//!   with `alive`/`error`/`address`, `files` with `position`/`tag`/`error`,
//!   `sent` per tag with `messages`/`bytes`), plus hydra's additions
//!   (`buffer`, acks, retries, drops).
//! - `GET /system`: process figures (RSS, CPU seconds, threads, open file
//!   descriptors, uptime, version), read from `/proc`.
//! - `GET /metrics`: the same figures in Prometheus text format.
//! - `GET /health`, `GET /live`: verdicts for probes ([`Health`]), without
//!   the token.
//!
//! This crate knows nothing of the rest of hydra: the caller supplies a
//! function that returns a [`Snapshot`].
//!
//! ```
//! use std::sync::Arc;
//! use axum::body::Body;
//! use axum::http::Request;
//! use hydra_stats::{router, Snapshot};
//! use tower::ServiceExt;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut snapshot = Snapshot::default();
//! snapshot.receiver.messages = 42;
//! let app = router(Arc::new(move || snapshot.clone()));
//! let request = Request::get("/metrics").body(Body::empty()).unwrap();
//! let response = app.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! # }
//! ```

mod health;
mod http;
mod process;
mod prometheus;
mod rates;
mod snapshot;
mod tap;
mod zabbix;

pub use health::{Health, HealthFn, Reason};
pub use http::{Monitor, monitor_router, router, router_with_token};
pub use hydra_forward::TagPattern;
pub use process::{Process, System, read_process, read_system};
pub use prometheus::prometheus;
pub use rates::{HISTORY, RateSampler};
pub use snapshot::*;
pub use tap::{Subscription, TapHub};
pub use zabbix::zabbix_item;

#[cfg(test)]
mod tests;
