//! The stats monitor: what hydra is doing, over HTTP.
//!
//! - `GET /`: JSON in fluent-agent-hydra's shape (`receiver`, `servers`
//!   with `alive`/`error`/`address`, `files` with `position`/`tag`/`error`,
//!   `sent` per tag with `messages`/`bytes`), plus hydra's additions
//!   (`buffer`, acks, retries, drops).
//! - `GET /system`: process figures (RSS, CPU seconds, threads, open file
//!   descriptors, uptime, version), read from `/proc`.
//! - `GET /metrics`: the same figures in Prometheus text format.
//!
//! This crate knows nothing of the rest of hydra: the caller supplies a
//! function that returns a [`Snapshot`].
//!
//! ```
//! use hydra_stats::{router, Snapshot};
//! use std::sync::Arc;
//! let app = router(Arc::new(|| Snapshot::default()));
//! # let _ = app;
//! ```

mod rates;
mod tap;

pub use hydra_forward::TagPattern;
pub use rates::{HISTORY, RateSampler};
pub use tap::{Subscription, TapHub};

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde::{Deserialize, Serialize};

/// What the forward inputs received.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Receiver {
    /// Listen addresses.
    pub address: Vec<String>,
    /// Events accepted.
    pub messages: u64,
    /// Bytes of accepted frames.
    pub bytes: u64,
    /// Events held in hydra's buffer right now.
    pub buffered: u64,
    /// Events that were invalid and skipped.
    pub disposed: u64,
    /// Frames dropped whole (bad shape, too large when inflated).
    pub dropped_frames: u64,
    /// Connections closed because their stream was corrupt or over a limit.
    pub rejected_connections: u64,
    /// Connections open now.
    pub connections: u64,
    /// Acks sent back to clients.
    pub acks: u64,
    /// Chunks a client sent again while the first copy was still
    /// undelivered (`ack: delivered`): acked with it, not buffered twice.
    pub resent_chunks: u64,
    /// Connections closed because they found no room in
    /// `max_pending_bytes` in time (their clients send again).
    pub over_budget: u64,
    /// Clients refused in the shared-key handshake.
    pub auth_failures: u64,
    /// TLS handshakes that failed.
    pub tls_failures: u64,
    /// Events accepted per second, over the last second.
    pub events_per_sec: f64,
}

impl Receiver {
    /// The sum of several listeners' counters, with `buffered` events held.
    pub fn total(listeners: &[Receiver], buffered: u64) -> Receiver {
        let mut t = Receiver {
            buffered,
            ..Receiver::default()
        };
        for l in listeners {
            t.address.extend(l.address.iter().cloned());
            t.messages += l.messages;
            t.bytes += l.bytes;
            t.disposed += l.disposed;
            t.dropped_frames += l.dropped_frames;
            t.rejected_connections += l.rejected_connections;
            t.connections += l.connections;
            t.acks += l.acks;
            t.resent_chunks += l.resent_chunks;
            t.over_budget += l.over_budget;
            t.auth_failures += l.auth_failures;
            t.tls_failures += l.tls_failures;
            t.events_per_sec += l.events_per_sec;
        }
        t
    }
}

/// One output server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Server {
    /// `host:port`.
    pub address: String,
    /// Connected.
    pub alive: bool,
    /// The last error, empty when none.
    pub error: String,
    /// Used only when the others are down.
    pub standby: bool,
    /// Events delivered.
    pub messages: u64,
    /// Chunks delivered.
    pub chunks: u64,
    /// Chunks sent again after a failure.
    pub retries: u64,
    /// Chunks sent and not yet acked.
    pub acks_pending: u64,
    /// Unix time of the last delivery.
    pub last_delivery: Option<u64>,
    /// Getting traffic now: in failover, the first live server (standbys
    /// only when no other is live); in round robin, every live one.
    pub active: bool,
    /// Events delivered per second, over the last second.
    pub events_per_sec: f64,
}

/// One tailed file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct File {
    /// Its tag.
    pub tag: String,
    /// Offset after the last line read.
    pub position: u64,
    /// Offset delivered and committed.
    pub committed: u64,
    /// Bytes not yet read (size − position).
    pub behind: u64,
    /// Lines read.
    pub lines: u64,
    /// Multiline events cut at `max_lines` or `max_bytes`.
    #[serde(skip_serializing_if = "is_zero")]
    pub multiline_cuts: u64,
    /// Why it cannot be read, empty when it can.
    pub error: String,
    /// Lines read per second, over the last second.
    pub lines_per_sec: f64,
}

/// What one filter did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Filter {
    /// Its `match` pattern.
    #[serde(rename = "match")]
    pub pattern: String,
    /// `grep`, `record` or `throttle`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Events it let through.
    pub passed: u64,
    /// Events it dropped (committed: they do not come back).
    pub dropped: u64,
    /// Events it could not judge, passed unchanged.
    pub errors: u64,
    /// Milliseconds inputs were held back (throttle).
    pub held_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Per tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sent {
    /// Events delivered.
    pub messages: u64,
    /// Bytes delivered.
    pub bytes: u64,
}

/// The buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Buffer {
    /// Bytes held.
    pub bytes: u64,
    /// Events held.
    pub events: u64,
    /// The ceiling.
    pub max_bytes: u64,
    /// Chunks waiting to be sent.
    pub queued_chunks: u64,
    /// Chunks sent again after a failure.
    pub retried_chunks: u64,
    /// Times producers waited for room.
    pub producer_waits: u64,
    /// Events delivered by the output since the start.
    pub delivered: u64,
    /// Events of chunks the servers kept refusing, written to the
    /// dead-letter file instead (counted in `delivered` too).
    pub dead_lettered: u64,
}

/// What a tail input's parser could not parse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Parsing {
    /// Lines that did not match the format.
    pub unmatched: u64,
    /// Of those, lines dropped (`unmatched: drop`).
    pub dropped: u64,
    /// Values kept as strings because they did not convert.
    pub type_errors: u64,
    /// Lines whose time did not parse (they carry the read time).
    pub time_errors: u64,
}

/// Everything `GET /` shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Snapshot {
    /// Forward inputs.
    pub receiver: Receiver,
    /// Each forward input on its own (`receiver` is their sum).
    pub listeners: Vec<Receiver>,
    /// Output servers.
    pub servers: Vec<Server>,
    /// Tailed files by path.
    pub files: BTreeMap<String, File>,
    /// Delivered per tag.
    pub sent: BTreeMap<String, Sent>,
    /// The buffer.
    pub buffer: Buffer,
    /// Per tag of a tail input with a `format`, what did not parse.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub parsing: BTreeMap<String, Parsing>,
    /// Each configured filter, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
    /// Problems not tied to one file or server (for example, positions
    /// that cannot be saved).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Events the output delivered per second, over the last second.
    pub delivered_per_sec: f64,
    /// `delivered_per_sec` once a second over the last minute, oldest
    /// first.
    pub delivered_history: Vec<f64>,
    /// `GET /tap` readers.
    pub tap: TapStats,
    /// SIGHUP reloads refused since hydra started (the new configuration
    /// could not start; the running one went on).
    pub reload_failures: u64,
}

/// `GET /tap` readers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TapStats {
    /// Readers connected now.
    pub readers: u64,
    /// Events that readers missed because they read too slowly.
    pub missed: u64,
}

/// Produces the current snapshot.
pub type SnapshotFn = Arc<dyn Fn() -> Snapshot + Send + Sync>;

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
    monitor_router(snapshot, None, Some(token))
}

/// The monitor's routes: `GET /tap` too when there is a `tap` hub (403
/// without one), and a bearer token required on every request when there
/// is a `token`.
pub fn monitor_router(snapshot: SnapshotFn, tap: Option<TapHub>, token: Option<String>) -> Router {
    let app = routes(snapshot, tap);
    let Some(token) = token else {
        return app;
    };
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

/// Process figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct System {
    /// hydra's version.
    pub version: String,
    /// Seconds since the monitor started.
    pub uptime_seconds: f64,
    /// Resident memory, bytes.
    pub rss_bytes: u64,
    /// Peak resident memory, bytes.
    pub peak_rss_bytes: u64,
    /// User + system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Threads.
    pub threads: u64,
    /// Open file descriptors.
    pub open_fds: u64,
}

/// Reads this process's figures from `/proc`.
pub fn read_system(started: Instant) -> System {
    let p = read_process("self");
    System {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_seconds: started.elapsed().as_secs_f64(),
        rss_bytes: p.rss_bytes,
        peak_rss_bytes: p.peak_rss_bytes,
        cpu_seconds: p.cpu_seconds,
        threads: p.threads,
        open_fds: p.open_fds,
    }
}

/// A process's figures from `/proc`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Process {
    /// Resident memory, bytes (`VmRSS`).
    pub rss_bytes: u64,
    /// Peak resident memory, bytes (`VmHWM`).
    pub peak_rss_bytes: u64,
    /// User + system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Threads.
    pub threads: u64,
    /// Open file descriptors.
    pub open_fds: u64,
}

/// Reads `/proc/<pid>` (`pid` a number, or `self`); zeros for what cannot
/// be read.
pub fn read_process(pid: &str) -> Process {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // The command name may hold spaces and parentheses: fields are counted
    // from the last `)`.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Process {
        rss_bytes: kib("VmRSS:") * 1024,
        peak_rss_bytes: kib("VmHWM:") * 1024,
        // utime and stime, in clock ticks of 1/100 s on Linux.
        cpu_seconds: (ticks(11) + ticks(12)) / 100.0,
        threads: kib("Threads:"),
        open_fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count() as u64)
            .unwrap_or(0),
    }
}

async fn system(State(s): State<AppState>) -> Json<System> {
    Json(read_system(s.started))
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let text = prometheus(&(s.snapshot)(), &read_system(s.started));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders the snapshot and process figures in Prometheus text format.
pub fn prometheus(s: &Snapshot, sys: &System) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>| {
        let _ = writeln!(
            out,
            "# HELP hydra_{name} {help}\n# TYPE hydra_{name} {kind}"
        );
        for (labels, v) in samples {
            let _ = writeln!(out, "hydra_{name}{labels} {v}");
        }
    };
    let one = |v: u64| vec![(String::new(), v as f64)];
    let r = &s.receiver;
    metric(
        "receiver_events_total",
        "counter",
        "Events accepted by forward inputs.",
        one(r.messages),
    );
    metric(
        "receiver_bytes_total",
        "counter",
        "Bytes of frames accepted by forward inputs.",
        one(r.bytes),
    );
    metric(
        "receiver_invalid_events_total",
        "counter",
        "Invalid events skipped.",
        one(r.disposed),
    );
    metric(
        "receiver_dropped_frames_total",
        "counter",
        "Frames dropped whole.",
        one(r.dropped_frames),
    );
    metric(
        "receiver_rejected_connections_total",
        "counter",
        "Connections closed for corrupt input.",
        one(r.rejected_connections),
    );
    metric(
        "receiver_connections",
        "gauge",
        "Open forward connections.",
        one(r.connections),
    );
    metric(
        "receiver_acks_total",
        "counter",
        "Acks sent to forward clients.",
        one(r.acks),
    );
    metric(
        "receiver_over_budget_total",
        "counter",
        "Connections closed for want of room in max_pending_bytes.",
        one(r.over_budget),
    );
    metric(
        "receiver_resent_chunks_total",
        "counter",
        "Chunks resent while their first copy was undelivered; buffered once.",
        one(r.resent_chunks),
    );
    metric(
        "receiver_auth_failures_total",
        "counter",
        "Clients refused in the shared-key handshake.",
        one(r.auth_failures),
    );
    metric(
        "receiver_tls_failures_total",
        "counter",
        "Failed TLS handshakes.",
        one(r.tls_failures),
    );
    metric(
        "reload_failures_total",
        "counter",
        "SIGHUP reloads refused: the running configuration went on.",
        one(s.reload_failures),
    );
    metric(
        "buffer_bytes",
        "gauge",
        "Bytes held in the buffer.",
        one(s.buffer.bytes),
    );
    metric(
        "buffer_events",
        "gauge",
        "Events held in the buffer.",
        one(s.buffer.events),
    );
    metric(
        "buffer_max_bytes",
        "gauge",
        "The buffer's ceiling.",
        one(s.buffer.max_bytes),
    );
    metric(
        "dead_lettered_events_total",
        "counter",
        "Events of chunks every server kept refusing, written to the dead-letter file.",
        one(s.buffer.dead_lettered),
    );
    metric(
        "buffer_retried_chunks_total",
        "counter",
        "Chunks sent again after a failure.",
        one(s.buffer.retried_chunks),
    );
    let by_server = |f: &dyn Fn(&Server) -> f64| {
        s.servers
            .iter()
            .map(|sv| (format!("{{server=\"{}\"}}", escape(&sv.address)), f(sv)))
            .collect()
    };
    metric(
        "server_up",
        "gauge",
        "Whether the output server is connected.",
        by_server(&|sv| f64::from(u8::from(sv.alive))),
    );
    metric(
        "server_events_total",
        "counter",
        "Events delivered to the server.",
        by_server(&|sv| sv.messages as f64),
    );
    metric(
        "server_retries_total",
        "counter",
        "Chunks the server failed to take.",
        by_server(&|sv| sv.retries as f64),
    );
    metric(
        "server_acks_pending",
        "gauge",
        "Chunks sent and not yet acked.",
        by_server(&|sv| sv.acks_pending as f64),
    );
    let by_tag = |f: &dyn Fn(&Sent) -> f64| {
        s.sent
            .iter()
            .map(|(t, v)| (format!("{{tag=\"{}\"}}", escape(t)), f(v)))
            .collect()
    };
    metric(
        "sent_events_total",
        "counter",
        "Events delivered, per tag.",
        by_tag(&|v| v.messages as f64),
    );
    metric(
        "sent_bytes_total",
        "counter",
        "Bytes delivered, per tag.",
        by_tag(&|v| v.bytes as f64),
    );
    let parse_errors = s
        .parsing
        .iter()
        .flat_map(|(t, p)| {
            [
                ("unmatched", p.unmatched),
                ("dropped", p.dropped),
                ("type", p.type_errors),
                ("time", p.time_errors),
            ]
            .map(|(kind, v)| {
                (
                    format!("{{tag=\"{}\",kind=\"{kind}\"}}", escape(t)),
                    v as f64,
                )
            })
        })
        .collect();
    let filter_events = s
        .filters
        .iter()
        .enumerate()
        .flat_map(|(i, f)| {
            [
                ("passed", f.passed),
                ("dropped", f.dropped),
                ("error", f.errors),
            ]
            .map(|(result, v)| {
                (
                    format!(
                        "{{filter=\"{i}\",match=\"{}\",type=\"{}\",result=\"{result}\"}}",
                        escape(&f.pattern),
                        escape(&f.kind)
                    ),
                    v as f64,
                )
            })
        })
        .collect();
    metric(
        "filter_events_total",
        "counter",
        "Events each filter let through, dropped, or could not judge (passed unchanged).",
        filter_events,
    );
    let held = s
        .filters
        .iter()
        .enumerate()
        .filter(|(_, f)| f.kind == "throttle")
        .map(|(i, f)| {
            (
                format!("{{filter=\"{i}\",match=\"{}\"}}", escape(&f.pattern)),
                f.held_ms as f64 / 1000.0,
            )
        })
        .collect();
    metric(
        "filter_held_seconds_total",
        "counter",
        "Time inputs waited in each throttle.",
        held,
    );
    metric(
        "parse_errors_total",
        "counter",
        "Tailed lines or values that did not parse as configured, per tag and kind.",
        parse_errors,
    );
    let by_file = |f: &dyn Fn(&File) -> f64| {
        s.files
            .iter()
            .map(|(p, v)| {
                (
                    format!("{{path=\"{}\",tag=\"{}\"}}", escape(p), escape(&v.tag)),
                    f(v),
                )
            })
            .collect()
    };
    metric(
        "file_position_bytes",
        "gauge",
        "Offset after the last line read.",
        by_file(&|f| f.position as f64),
    );
    metric(
        "file_behind_bytes",
        "gauge",
        "Bytes written and not yet read.",
        by_file(&|f| f.behind as f64),
    );
    metric(
        "file_lines_total",
        "counter",
        "Lines read.",
        by_file(&|f| f.lines as f64),
    );
    metric(
        "file_multiline_cuts_total",
        "counter",
        "Multiline events cut at max_lines or max_bytes.",
        by_file(&|f| f.multiline_cuts as f64),
    );
    metric(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory.",
        one(sys.rss_bytes),
    );
    metric(
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time.",
        vec![(String::new(), sys.cpu_seconds)],
    );
    metric(
        "process_open_fds",
        "gauge",
        "Open file descriptors.",
        one(sys.open_fds),
    );
    metric("process_threads", "gauge", "Threads.", one(sys.threads));
    out
}

/// The value of a Zabbix item key about hydra, for passive checks, or
/// `None` for a key hydra does not know.
///
/// Keys: `agent.ping`, `hydra.receiver.{messages,bytes,buffered,disposed,
/// connections,acks}`, `hydra.buffer.{bytes,events,max_bytes}`,
/// `hydra.reload_failures`,
/// `hydra.sent.messages[TAG]`, `hydra.sent.bytes[TAG]`,
/// `hydra.server.alive[ADDR]` (1 or 0), `hydra.server.messages[ADDR]`,
/// `hydra.file.position[PATH]`, `hydra.file.behind[PATH]`,
/// `hydra.file.error[PATH]`.
pub fn zabbix_item(s: &Snapshot, key: &str) -> Option<String> {
    let (name, param) = match key.split_once('[') {
        Some((n, rest)) => (n, Some(rest.strip_suffix(']')?.trim_matches('"'))),
        None => (key, None),
    };
    let r = &s.receiver;
    let b = &s.buffer;
    let v = match (name, param) {
        ("agent.ping", None) => 1.to_string(),
        ("hydra.receiver.messages", None) => r.messages.to_string(),
        ("hydra.receiver.bytes", None) => r.bytes.to_string(),
        ("hydra.receiver.buffered", None) => r.buffered.to_string(),
        ("hydra.receiver.disposed", None) => r.disposed.to_string(),
        ("hydra.receiver.connections", None) => r.connections.to_string(),
        ("hydra.receiver.acks", None) => r.acks.to_string(),
        ("hydra.buffer.bytes", None) => b.bytes.to_string(),
        ("hydra.buffer.events", None) => b.events.to_string(),
        ("hydra.buffer.max_bytes", None) => b.max_bytes.to_string(),
        ("hydra.reload_failures", None) => s.reload_failures.to_string(),
        ("hydra.sent.messages", Some(tag)) => s.sent.get(tag).map_or(0, |t| t.messages).to_string(),
        ("hydra.sent.bytes", Some(tag)) => s.sent.get(tag).map_or(0, |t| t.bytes).to_string(),
        ("hydra.server.alive", Some(addr)) => {
            u8::from(s.servers.iter().find(|sv| sv.address == addr)?.alive).to_string()
        }
        ("hydra.server.messages", Some(addr)) => s
            .servers
            .iter()
            .find(|sv| sv.address == addr)?
            .messages
            .to_string(),
        ("hydra.file.position", Some(path)) => s.files.get(path)?.position.to_string(),
        ("hydra.file.behind", Some(path)) => s.files.get(path)?.behind.to_string(),
        ("hydra.file.error", Some(path)) => s.files.get(path)?.error.clone(),
        _ => return None,
    };
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn sample() -> Snapshot {
        let mut s = Snapshot::default();
        s.receiver.messages = 42;
        s.servers.push(Server {
            address: "127.0.0.1:24224".into(),
            alive: true,
            messages: 40,
            ..Server::default()
        });
        s.files.insert(
            "/var/log/a.log".into(),
            File {
                tag: "app.a".into(),
                position: 100,
                ..File::default()
            },
        );
        s.sent.insert(
            "app.a".into(),
            Sent {
                messages: 40,
                bytes: 4000,
            },
        );
        s
    }

    async fn get(path: &str) -> (u16, String) {
        let app = router(Arc::new(sample));
        let resp = app
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn root_has_the_go_shape() {
        let (status, body) = get("/").await;
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["receiver"]["messages"], 42);
        assert_eq!(v["servers"][0]["alive"], true);
        assert_eq!(v["servers"][0]["address"], "127.0.0.1:24224");
        assert_eq!(v["servers"][0]["error"], "");
        assert_eq!(v["files"]["/var/log/a.log"]["position"], 100);
        assert_eq!(v["files"]["/var/log/a.log"]["tag"], "app.a");
        assert_eq!(v["sent"]["app.a"]["messages"], 40);
        assert_eq!(v["sent"]["app.a"]["bytes"], 4000);
    }

    #[test]
    fn zabbix_items() {
        let s = sample();
        assert_eq!(zabbix_item(&s, "agent.ping").as_deref(), Some("1"));
        assert_eq!(
            zabbix_item(&s, "hydra.receiver.messages").as_deref(),
            Some("42")
        );
        assert_eq!(
            zabbix_item(&s, "hydra.sent.messages[app.a]").as_deref(),
            Some("40")
        );
        assert_eq!(
            zabbix_item(&s, "hydra.sent.messages[\"app.a\"]").as_deref(),
            Some("40")
        );
        assert_eq!(
            zabbix_item(&s, "hydra.sent.messages[other]").as_deref(),
            Some("0")
        );
        assert_eq!(
            zabbix_item(&s, "hydra.server.alive[127.0.0.1:24224]").as_deref(),
            Some("1")
        );
        assert_eq!(zabbix_item(&s, "hydra.server.alive[10.0.0.9:1]"), None);
        assert_eq!(
            zabbix_item(&s, "hydra.file.position[/var/log/a.log]").as_deref(),
            Some("100")
        );
        assert_eq!(zabbix_item(&s, "no.such.key"), None);
        assert_eq!(zabbix_item(&s, "hydra.sent.messages[unclosed"), None);
    }

    #[tokio::test]
    async fn a_token_is_required_when_configured() {
        let app = || router_with_token(Arc::new(sample), "t0ken".to_owned());
        let call = |auth: Option<&'static str>| {
            let mut req = Request::get("/metrics");
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            app().oneshot(req.body(Body::empty()).unwrap())
        };
        assert_eq!(call(None).await.unwrap().status().as_u16(), 401);
        assert_eq!(
            call(Some("Bearer nope!")).await.unwrap().status().as_u16(),
            401
        );
        // Same length, one byte off; a prefix; the token and more.
        for wrong in [
            "Bearer t0kem",
            "Bearer t0ke",
            "Bearer t0ken!",
            "Basic t0ken",
        ] {
            assert_eq!(call(Some(wrong)).await.unwrap().status().as_u16(), 401);
        }
        assert_eq!(
            call(Some("Bearer t0ken")).await.unwrap().status().as_u16(),
            200
        );
    }

    #[tokio::test]
    async fn system_and_metrics() {
        let (status, body) = get("/system").await;
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(v["rss_bytes"].as_u64().unwrap() > 0);
        assert!(v["open_fds"].as_u64().unwrap() > 0);
        let (status, text) = get("/metrics").await;
        assert_eq!(status, 200);
        assert!(text.contains("hydra_receiver_events_total 42\n"), "{text}");
        assert!(text.contains("hydra_server_up{server=\"127.0.0.1:24224\"} 1\n"));
        assert!(text.contains("hydra_sent_events_total{tag=\"app.a\"} 40\n"));
        assert!(text.contains("# TYPE hydra_buffer_bytes gauge"));
        assert_eq!(get("/nope").await.0, 404);
    }

    #[tokio::test]
    async fn tap_streams_matching_events_as_json_lines() {
        assert_eq!(get("/tap").await.0, 403, "no tap hub, no /tap");
        let hub = TapHub::new();
        let locked = monitor_router(Arc::new(sample), Some(hub.clone()), Some("t0ken".into()));
        let resp = locked
            .oneshot(Request::get("/tap").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            401,
            "the log stream needs the token"
        );
        let app = monitor_router(Arc::new(sample), Some(hub.clone()), None);
        let resp = app
            .oneshot(Request::get("/tap?tag=app.*").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let mut frame = hydra_forward::FrameBuilder::new(
            "app.a",
            hydra_forward::BatchMode::PackedForward,
            hydra_forward::TimeFormat::EventTime,
        );
        frame.push_line(
            hydra_forward::EventTime::new(1_700_000_000, 5),
            "message",
            b"hello",
        );
        let frame = frame.finish(None, None);
        hub.observe("other", &frame, 1);
        hub.observe("app.a", &frame, 1);
        hub.close();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            "{\"tag\":\"app.a\",\"time\":\"2023-11-14T22:13:20.000000005Z\",\"record\":{\"message\":\"hello\"}}\n"
        );
    }
}
