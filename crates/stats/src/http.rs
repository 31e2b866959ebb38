//! The monitor's router: its routes, the bearer token check and the
//! `/tap` stream.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Json};
use axum::routing::get;

use crate::health::{health_verdict, live_verdict};
use crate::{HealthFn, Snapshot, SnapshotFn, System, TapHub, prometheus, read_system};

#[derive(Clone)]
struct AppState {
    snapshot: SnapshotFn,
    started: Instant,
    tap: Option<TapHub>,
}

/// The monitor's routes.
pub fn router(snapshot: SnapshotFn) -> Router {
    routes(snapshot, None)
}

/// The monitor's routes, answering only requests that carry
/// `Authorization: Bearer <token>`; others get 401.
pub fn router_with_token(snapshot: SnapshotFn, token: String) -> Router {
    monitor_router(Monitor {
        token: Some(token),
        ..Monitor::new(snapshot)
    })
}

/// What the monitor serves, and whom to.
#[derive(Clone)]
pub struct Monitor {
    /// `GET /`, `/metrics`.
    pub snapshot: SnapshotFn,
    /// `GET /tap` streams this hub's events; 403 without one.
    pub tap: Option<TapHub>,
    /// Required as `Authorization: Bearer <token>` on every request but
    /// `/health` and `/live`.
    pub token: Option<String>,
    /// `GET /health` and `GET /live`; not served without it.
    pub health: Option<HealthFn>,
}

impl Monitor {
    /// Snapshots only: no tap, no token, no health checks.
    pub fn new(snapshot: SnapshotFn) -> Monitor {
        Monitor {
            snapshot,
            tap: None,
            token: None,
            health: None,
        }
    }
}

/// The monitor's routes. `/health` and `/live` answer without the token:
/// probes rarely carry secrets, and they tell only fixed reason codes.
pub fn monitor_router(m: Monitor) -> Router {
    let app = routes(m.snapshot, m.tap);
    let app = match m.token {
        Some(token) => guarded(app, token),
        None => app,
    };
    match m.health {
        Some(h) => app.merge(
            Router::new()
                .route("/health", get(health))
                .route("/live", get(live))
                .with_state(h),
        ),
        None => app,
    }
}

/// `app`, answering only requests with the bearer `token`.
fn guarded(app: Router, token: String) -> Router {
    let token = Arc::new(token);
    app.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let token = token.clone();
            async move {
                let given = req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "));
                // Compared whole, in constant time for equal lengths (a
                // hand-written fold is the optimiser's to shortcut).
                let ok = given.is_some_and(|g| {
                    bool::from(subtle::ConstantTimeEq::ct_eq(
                        g.as_bytes(),
                        token.as_bytes(),
                    ))
                });
                if ok {
                    next.run(req).await
                } else {
                    (
                        axum::http::StatusCode::UNAUTHORIZED,
                        "a bearer token is required\n",
                    )
                        .into_response()
                }
            }
        },
    ))
}

fn verdict(ok: bool, body: impl serde::Serialize) -> axum::response::Response {
    let status = if ok {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn health(State(h): State<HealthFn>) -> axum::response::Response {
    let (ok, body) = health_verdict(&h());
    verdict(ok, body)
}

async fn live(State(h): State<HealthFn>) -> axum::response::Response {
    let (ok, body) = live_verdict(&h());
    verdict(ok, body)
}

fn routes(snapshot: SnapshotFn, tap: Option<TapHub>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/system", get(system))
        .route("/metrics", get(metrics))
        .route("/tap", get(tap_stream))
        .with_state(AppState {
            snapshot,
            started: Instant::now(),
            tap,
        })
}

async fn root(State(s): State<AppState>) -> Json<Snapshot> {
    let mut snap = (s.snapshot)();
    if let Some(t) = &s.tap {
        snap.tap = t.stats();
    }
    Json(snap)
}

#[derive(Debug, serde::Deserialize)]
struct TapQuery {
    #[serde(default)]
    tag: String,
}

/// JSON lines of the events of matching chunks as they are sealed, and a
/// `{"missed": N}` line before them when the reader fell behind.
async fn tap_stream(
    State(s): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<TapQuery>,
) -> axum::response::Response {
    let Some(hub) = s.tap else {
        return (
            axum::http::StatusCode::FORBIDDEN,
            "/tap streams log contents: a monitor other hosts can reach serves it only with a token\n",
        )
            .into_response();
    };
    let sub = hub.subscribe(&q.tag);
    let decoder = hydra_forward::ForwardDecoder::new();
    let lines = futures_util::stream::unfold((sub, decoder), |(mut sub, mut decoder)| async move {
        let frame = sub.next().await?;
        let mut out = Vec::with_capacity(frame.len() * 2);
        let missed = sub.take_missed();
        if missed > 0 {
            out.extend_from_slice(format!("{{\"missed\":{missed}}}\n").as_bytes());
        }
        hydra_forward::json_lines(&mut decoder, &frame, &mut out);
        Some((
            Ok::<_, std::convert::Infallible>(bytes::Bytes::from(out)),
            (sub, decoder),
        ))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(lines),
    )
        .into_response()
}

async fn system(State(s): State<AppState>) -> Json<System> {
    Json(read_system(s.started))
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let text = prometheus(&(s.snapshot)(), &read_system(s.started));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
