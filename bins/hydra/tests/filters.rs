//! Filters through the real binary, on the defaults operators run
//! (`read_from_head: false`, a positions file, `ack` as shipped): grep and
//! record on tailed and forwarded events, their counts in the monitor,
//! dropped lines staying dropped across a restart, and a throttle holding a
//! tail input to its rate without losing a line.
#![allow(clippy::unwrap_used, clippy::print_stdout)] // a test reports and panics

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;

fn records(h: &Hydra, tag: &str) -> Vec<serde_json::Value> {
    h.events()
        .into_iter()
        .filter(|e| e["tag"] == tag)
        .map(|e| e["record"].clone())
        .collect()
}

/// Sends JSON lines tagged `app.fwd` with hydra-cat (acks on); whether
/// they were acked.
fn cat(port: u16, lines: &str) -> bool {
    let mut cat = std::process::Command::new(hydra_cat_bin())
        .args(["-p", &port.to_string(), "-t", "10", "app.fwd"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    cat.stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    cat.wait().unwrap().success()
}

const FILTERS: &str = "filters:
  - match: 'app.**'
    type: grep
    include: { level: '^(ERROR|WARN)$' }
    exclude: { msg: 'healthcheck' }
  - match: '**'
    type: record
    set: { host: '${hostname}', env: prod, origin: '${tag}' }
    remove: [password]
    rename: { msg: message }
";

/// `n` JSON lines: every third an ERROR, one of those a health check.
fn lines(from: u64, to: u64) -> String {
    (from..to)
        .map(|i| {
            let level = if i % 3 == 0 { "ERROR" } else { "INFO" };
            let msg = if i == 3 {
                "GET /healthcheck".to_owned()
            } else {
                format!("line {i}")
            };
            format!("{{\"level\":\"{level}\",\"msg\":\"{msg}\",\"password\":\"s3cret\"}}\n")
        })
        .collect()
}

#[test]
fn grep_and_record_filter_tailed_and_forwarded_events_and_drops_stay_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("app.log");
    std::fs::write(&log, "").unwrap();
    let (forward, monitor) = (free_port(), free_port());
    let cfg = format!(
        "positions: {pos}/pos.json\ninputs:\n  - type: tail\n    path: {log}\n    tag: app.files\n    format: json\n  - type: forward\n    listen: 127.0.0.1:{forward}\n{FILTERS}output:\n  type: stdout\nmonitor:\n  listen: 127.0.0.1:{monitor}\n",
        pos = d.display(),
        log = log.display()
    );
    let mut h = Hydra::start(d, &cfg);
    append_text(&log, &lines(0, 30));
    // Lines 0, 3, ..., 27 are errors; 3 is a health check: 9 kept.
    assert!(wait(10, || records(&h, "app.files").len() >= 9));
    std::thread::sleep(Duration::from_millis(300));
    let got = records(&h, "app.files");
    let host = hydra_agent::hostname();
    let expected: Vec<serde_json::Value> = (0..30)
        .filter(|i| i % 3 == 0 && *i != 3)
        .map(|i| {
            serde_json::json!({"level": "ERROR", "message": format!("line {i}"), "host": host, "env": "prod", "origin": "app.files"})
        })
        .collect();
    assert_eq!(got, expected);
    // A forwarded chunk: only its `level: WARN` event passes grep; a chunk
    // whose events are all dropped is acked too.
    assert!(
        cat(
            forward,
            "{\"level\":\"WARN\",\"msg\":\"disk\"}\n{\"level\":\"DEBUG\",\"msg\":\"x\"}\n"
        ),
        "the chunk was acked"
    );
    assert!(
        cat(forward, "{\"level\":\"DEBUG\"}\n"),
        "an all-dropped chunk is acked"
    );
    assert!(wait(10, || !records(&h, "app.fwd").is_empty()));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        records(&h, "app.fwd"),
        [
            serde_json::json!({"level": "WARN", "message": "disk", "host": host, "env": "prod", "origin": "app.fwd"})
        ]
    );
    let json: serde_json::Value = serde_json::from_str(&http_get(monitor, "/")).unwrap();
    let f = &json["filters"];
    assert_eq!(
        (f[0]["match"].as_str(), f[0]["type"].as_str()),
        (Some("app.**"), Some("grep"))
    );
    assert_eq!(
        (f[0]["passed"].as_u64(), f[0]["dropped"].as_u64()),
        (Some(10), Some(23)),
        "{f}"
    );
    assert_eq!(f[1]["passed"], 10, "{f}");
    let metrics = http_get(monitor, "/metrics");
    assert!(
        metrics.contains("hydra_filter_events_total{filter=\"0\",match=\"app.**\",type=\"grep\",result=\"dropped\"} 23"),
        "{metrics}"
    );
    // Dropped lines were committed: after a restart, only new lines come.
    assert!(h.stop().success());
    h = Hydra::start(d, &cfg);
    append_text(&log, &lines(30, 33));
    assert!(wait(10, || !records(&h, "app.files").is_empty()));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        records(&h, "app.files")
            .iter()
            .map(|r| r["message"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>(),
        ["line 30"]
    );
    assert!(h.stop().success());
}

#[test]
fn a_throttle_holds_a_tail_input_to_its_rate_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("noisy.log");
    std::fs::write(&log, "").unwrap();
    let cfg = format!(
        "positions: {pos}/pos.json\ninputs:\n  - type: tail\n    path: {log}\n    tag: noisy.app\nfilters:\n  - match: 'noisy.**'\n    type: throttle\n    rate: 200/s\n    burst: 50\noutput:\n  type: stdout\n",
        pos = d.display(),
        log = log.display()
    );
    let h = Hydra::start(d, &cfg);
    let text: String = (0..700).map(|i| format!("line {i}\n")).collect();
    append_text(&log, &text);
    let count = || records(&h, "noisy.app").len();
    let (mut t100, mut t700) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(20);
    while t700.is_none() && Instant::now() < deadline {
        let n = count();
        if n >= 100 && t100.is_none() {
            t100 = Some(Instant::now());
        }
        if n >= 700 {
            t700 = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    let got: Vec<String> = records(&h, "noisy.app")
        .iter()
        .map(|r| r["message"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..700).map(|i| format!("line {i}")).collect();
    assert_eq!(got, expected, "every line, once, in order");
    let secs = t700.unwrap().duration_since(t100.unwrap()).as_secs_f64();
    let rate = 600.0 / secs;
    println!("throttle 200/s: 600 lines in {secs:.2} s, {rate:.0} lines/s");
    assert!((180.0..=220.0).contains(&rate), "{rate} lines/s");
    assert!(h.stop().success());
}

#[test]
fn a_throttle_holds_a_forward_client_back_and_acks_everything() {
    let dir = tempfile::tempdir().unwrap();
    let forward = free_port();
    let cfg = format!(
        "inputs:\n  - type: forward\n    listen: 127.0.0.1:{forward}\nfilters:\n  - match: 'fwd.slow'\n    type: throttle\n    rate: 100/s\n    burst: 10\noutput:\n  type: stdout\n"
    );
    let h = Hydra::start(dir.path(), &cfg);
    let started = Instant::now();
    // 300 events in acked chunks of 10: held to 100/s, the client's
    // socket fills and it waits for its acks.
    let slow = std::thread::spawn(move || send_numbered(forward, 0, 300, 10, 30, "fwd.slow"));
    // Another tag on another connection is not held back meanwhile.
    assert!(send_numbered(forward, 0, 100, 10, 30, "fwd.fast"));
    let fast_done = started.elapsed();
    assert!(slow.join().unwrap(), "every chunk was acked");
    let slow_done = started.elapsed();
    assert!(wait(10, || records(&h, "fwd.slow").len() >= 300));
    std::thread::sleep(Duration::from_millis(300));
    let numbers: Vec<u64> = records(&h, "fwd.slow")
        .iter()
        .map(|r| r["n"].as_u64().unwrap())
        .collect();
    assert_eq!(
        numbers,
        (0..300).collect::<Vec<_>>(),
        "every event once, in order"
    );
    println!(
        "throttle on a forward input: 300 events at 100/s in {slow_done:?}; the other tag's 100 in {fast_done:?}"
    );
    // 10 at once, 290 more at 100/s.
    assert!(
        (2.6..=3.4).contains(&slow_done.as_secs_f64()),
        "{slow_done:?}"
    );
    assert!(fast_done < Duration::from_secs(2), "{fast_done:?}");
    assert!(h.stop().success());
}
