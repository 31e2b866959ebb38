//! The snapshot and process figures in Prometheus text format: one table
//! row per metric, in the order they are printed.

use std::fmt::Write as _;

use crate::{Disk, File, Filter, Sent, Server, Snapshot, System};

/// What a metric's samples are taken from.
enum Samples {
    /// One unlabelled sample.
    One(fn(&Snapshot, &System) -> f64),
    /// One per output server, labelled `server`.
    Server(fn(&Server) -> f64),
    /// One per delivered tag, labelled `tag`.
    Tag(fn(&Sent) -> f64),
    /// One per tailed file, labelled `path` and `tag`.
    File(fn(&File) -> f64),
    /// Samples with labels of their own.
    Labelled(fn(&Snapshot) -> Vec<(String, f64)>),
}

/// A metric: its name after `hydra_`, its type, its help text, its samples.
struct Metric(&'static str, &'static str, &'static str, Samples);

const COUNTER: &str = "counter";
const GAUGE: &str = "gauge";

#[rustfmt::skip]
const METRICS: &[Metric] = &[
    Metric("receiver_events_total", COUNTER, "Events accepted by forward inputs.",
        Samples::One(|s, _| s.receiver.messages as f64)),
    Metric("receiver_bytes_total", COUNTER, "Bytes of frames accepted by forward inputs.",
        Samples::One(|s, _| s.receiver.bytes as f64)),
    Metric("receiver_invalid_events_total", COUNTER, "Invalid events skipped.",
        Samples::One(|s, _| s.receiver.disposed as f64)),
    Metric("receiver_dropped_frames_total", COUNTER, "Frames dropped whole.",
        Samples::One(|s, _| s.receiver.dropped_frames as f64)),
    Metric("receiver_rejected_connections_total", COUNTER, "Connections closed for corrupt input.",
        Samples::One(|s, _| s.receiver.rejected_connections as f64)),
    Metric("receiver_connections", GAUGE, "Open forward connections.",
        Samples::One(|s, _| s.receiver.connections as f64)),
    Metric("receiver_acks_total", COUNTER, "Acks sent to forward clients.",
        Samples::One(|s, _| s.receiver.acks as f64)),
    Metric("receiver_dropped_frames_by_cause_total", COUNTER, "Frames dropped whole, by cause; acked when they had a chunk id.",
        Samples::Labelled(|s| by_cause(&s.receiver.dropped_by_cause))),
    Metric("receiver_closed_connections_total", COUNTER, "Connections hydra closed, by cause; their clients send again what was not acked.",
        Samples::Labelled(|s| by_cause(&s.receiver.closed_by_cause))),
    Metric("disk_bytes", GAUGE, "Bytes the disk buffer's chunk files hold.",
        Samples::One(|s, _| disk(s, |d| d.bytes as f64))),
    Metric("disk_max_bytes", GAUGE, "The disk buffer's ceiling (buffer.disk.max_bytes).",
        Samples::One(|s, _| disk(s, |d| d.max_bytes as f64))),
    Metric("disk_chunks", GAUGE, "Chunks in the disk buffer.",
        Samples::One(|s, _| disk(s, |d| d.chunks as f64))),
    Metric("disk_oldest_seconds", GAUGE, "Age of the disk buffer's oldest chunk.",
        Samples::One(|s, _| disk(s, |d| d.oldest_secs as f64))),
    Metric("disk_syncs_total", COUNTER, "Syncs of the disk buffer's files.",
        Samples::One(|s, _| disk(s, |d| d.syncs as f64))),
    Metric("disk_sync_seconds", GAUGE, "The disk buffer's last sync's duration.",
        Samples::One(|s, _| disk(s, |d| d.sync_ms / 1000.0))),
    Metric("disk_full_waits_total", COUNTER, "Appends that waited for room in the disk buffer.",
        Samples::One(|s, _| disk(s, |d| d.full_waits as f64))),
    Metric("disk_failing_waits_total", COUNTER, "Appends that waited for the file system (no room, quota, I/O errors).",
        Samples::One(|s, _| disk(s, |d| d.failing_waits as f64))),
    Metric("disk_corrupt_records_total", COUNTER, "Damaged records of the disk buffer, set aside.",
        Samples::One(|s, _| disk(s, |d| d.corrupt_records as f64))),
    Metric("receiver_over_budget_total", COUNTER, "Connections closed for want of room in max_pending_bytes.",
        Samples::One(|s, _| s.receiver.over_budget as f64)),
    Metric("receiver_resent_chunks_total", COUNTER, "Chunks resent while their first copy was undelivered; buffered once.",
        Samples::One(|s, _| s.receiver.resent_chunks as f64)),
    Metric("receiver_auth_failures_total", COUNTER, "Clients refused in the shared-key handshake.",
        Samples::One(|s, _| s.receiver.auth_failures as f64)),
    Metric("receiver_tls_failures_total", COUNTER, "Failed TLS handshakes.",
        Samples::One(|s, _| s.receiver.tls_failures as f64)),
    Metric("reload_failures_total", COUNTER, "SIGHUP reloads refused: the running configuration went on.",
        Samples::One(|s, _| s.reload_failures as f64)),
    Metric("reloads_total", COUNTER, "SIGHUP reloads that brought the new configuration in.",
        Samples::One(|s, _| s.reloads as f64)),
    Metric("healthy", GAUGE, "1 while GET /health answers 200.",
        Samples::One(|s, _| f64::from(u8::from(s.health.is_empty())))),
    Metric("buffer_bytes", GAUGE, "Bytes held in the buffer.",
        Samples::One(|s, _| s.buffer.bytes as f64)),
    Metric("buffer_events", GAUGE, "Events held in the buffer.",
        Samples::One(|s, _| s.buffer.events as f64)),
    Metric("buffer_max_bytes", GAUGE, "The buffer's ceiling.",
        Samples::One(|s, _| s.buffer.max_bytes as f64)),
    Metric("dead_lettered_events_total", COUNTER, "Events of chunks every server kept refusing, written to the dead-letter file.",
        Samples::One(|s, _| s.buffer.dead_lettered as f64)),
    Metric("buffer_retried_chunks_total", COUNTER, "Chunks sent again after a failure.",
        Samples::One(|s, _| s.buffer.retried_chunks as f64)),
    Metric("server_up", GAUGE, "Whether the output server is connected.",
        Samples::Server(|sv| f64::from(u8::from(sv.alive)))),
    Metric("server_events_total", COUNTER, "Events delivered to the server.",
        Samples::Server(|sv| sv.messages as f64)),
    Metric("server_retries_total", COUNTER, "Chunks the server failed to take.",
        Samples::Server(|sv| sv.retries as f64)),
    Metric("server_acks_pending", GAUGE, "Chunks sent and not yet acked.",
        Samples::Server(|sv| sv.acks_pending as f64)),
    Metric("sent_events_total", COUNTER, "Events delivered, per tag.",
        Samples::Tag(|v| v.messages as f64)),
    Metric("sent_bytes_total", COUNTER, "Bytes delivered, per tag.",
        Samples::Tag(|v| v.bytes as f64)),
    Metric("filter_events_total", COUNTER, "Events each filter let through, dropped, or could not judge (passed unchanged).",
        Samples::Labelled(filter_events)),
    Metric("filter_held_seconds_total", COUNTER, "Time inputs waited in each throttle.",
        Samples::Labelled(filter_held)),
    Metric("parse_errors_total", COUNTER, "Tailed lines or values that did not parse as configured, per tag and kind.",
        Samples::Labelled(parse_errors)),
    Metric("path_unmatched_files_total", COUNTER, "Tailed files whose path path_fields did not match, per input tag.",
        Samples::Labelled(path_unmatched)),
    Metric("file_position_bytes", GAUGE, "Offset after the last line read.",
        Samples::File(|f| f.position as f64)),
    Metric("file_behind_bytes", GAUGE, "Bytes written and not yet read.",
        Samples::File(|f| f.behind as f64)),
    Metric("file_lines_total", COUNTER, "Lines read.",
        Samples::File(|f| f.lines as f64)),
    Metric("file_multiline_cuts_total", COUNTER, "Multiline events cut at max_lines or max_bytes.",
        Samples::File(|f| f.multiline_cuts as f64)),
    Metric("process_resident_memory_bytes", GAUGE, "Resident memory.",
        Samples::One(|_, sys| sys.rss_bytes as f64)),
    Metric("process_cpu_seconds_total", COUNTER, "User and system CPU time.",
        Samples::One(|_, sys| sys.cpu_seconds)),
    Metric("process_open_fds", GAUGE, "Open file descriptors.",
        Samples::One(|_, sys| sys.open_fds as f64)),
    Metric("process_threads", GAUGE, "Threads.",
        Samples::One(|_, sys| sys.threads as f64)),
];

/// Renders the snapshot and process figures in Prometheus text format.
pub fn prometheus(s: &Snapshot, sys: &System) -> String {
    let mut out = String::new();
    for Metric(name, kind, help, samples) in METRICS {
        let _ = writeln!(
            out,
            "# HELP hydra_{name} {help}\n# TYPE hydra_{name} {kind}"
        );
        let samples: Vec<(String, f64)> = match samples {
            Samples::One(f) => vec![(String::new(), f(s, sys))],
            Samples::Server(f) => s
                .servers
                .iter()
                .map(|sv| (format!("{{server=\"{}\"}}", escape(&sv.address)), f(sv)))
                .collect(),
            Samples::Tag(f) => s
                .sent
                .iter()
                .map(|(t, v)| (format!("{{tag=\"{}\"}}", escape(t)), f(v)))
                .collect(),
            Samples::File(f) => s
                .files
                .iter()
                .map(|(p, v)| {
                    let labels = format!("{{path=\"{}\",tag=\"{}\"}}", escape(p), escape(&v.tag));
                    (labels, f(v))
                })
                .collect(),
            Samples::Labelled(f) => f(s),
        };
        for (labels, v) in samples {
            let _ = writeln!(out, "hydra_{name}{labels} {v}");
        }
    }
    out
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A disk buffer figure, 0 without one.
fn disk(s: &Snapshot, figure: impl Fn(&Disk) -> f64) -> f64 {
    s.disk.as_ref().map_or(0.0, figure)
}

fn by_cause(counts: &std::collections::BTreeMap<String, u64>) -> Vec<(String, f64)> {
    counts
        .iter()
        .map(|(cause, n)| (format!("{{cause=\"{}\"}}", escape(cause)), *n as f64))
        .collect()
}

fn filter_events(s: &Snapshot) -> Vec<(String, f64)> {
    let each = |(i, f): (usize, &Filter)| {
        [
            ("passed", f.passed),
            ("dropped", f.dropped),
            ("error", f.errors),
        ]
        .map(|(result, v)| {
            let labels = format!(
                "{{filter=\"{i}\",match=\"{}\",type=\"{}\",result=\"{result}\"}}",
                escape(&f.pattern),
                escape(&f.kind)
            );
            (labels, v as f64)
        })
    };
    s.filters.iter().enumerate().flat_map(each).collect()
}

fn filter_held(s: &Snapshot) -> Vec<(String, f64)> {
    s.filters
        .iter()
        .enumerate()
        .filter(|(_, f)| f.kind == "throttle")
        .map(|(i, f)| {
            let labels = format!("{{filter=\"{i}\",match=\"{}\"}}", escape(&f.pattern));
            (labels, f.held_ms as f64 / 1000.0)
        })
        .collect()
}

fn parse_errors(s: &Snapshot) -> Vec<(String, f64)> {
    s.parsing
        .iter()
        .flat_map(|(t, p)| {
            [
                ("unmatched", p.unmatched),
                ("dropped", p.dropped),
                ("type", p.type_errors),
                ("time", p.time_errors),
            ]
            .map(|(kind, v)| {
                let labels = format!("{{tag=\"{}\",kind=\"{kind}\"}}", escape(t));
                (labels, v as f64)
            })
        })
        .collect()
}

fn path_unmatched(s: &Snapshot) -> Vec<(String, f64)> {
    s.path_unmatched
        .iter()
        .map(|(t, n)| (format!("{{tag=\"{}\"}}", escape(t)), *n as f64))
        .collect()
}
