//! The built `hydra` with real processes on loopback: hydra-cat, the Python
//! and npm Forward clients, the npm FluentServer, signals, bad configs.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use hydra_test_support::FluentServer;

/// Runs a Python script that prints SENT once Python's fluent-logger
/// sent everything.
fn python_sends(script: &str) {
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "SENT",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn hydra_cat(args: &[&str], stdin: &str) -> std::process::Output {
    hydra_test_support::run_with_stdin(&hydra_cat_bin(), args, stdin.as_bytes())
}

#[test]
fn hydra_cat_in_every_mode_reaches_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let (fwd, mon) = (free_port(), free_port());
    let h = Hydra::start(dir.path(), &stdout_config(fwd, mon, ""));
    let port = fwd.to_string();
    let input: String = (0..50)
        .map(|i| format!("{{\"n\":{i},\"text\":\"hello {i}\"}}\n"))
        .collect();
    let modes: [&[&str]; 4] = [
        &["--mode", "message"],
        &["--mode", "forward"],
        &["--mode", "packed"],
        &["--compress", "gzip"],
    ];
    for (i, mode) in modes.iter().enumerate() {
        let tag = format!("cat.mode{i}");
        let mut args = vec!["-p", &port, "--batch", "7"];
        args.extend_from_slice(mode);
        args.push(&tag);
        let out = hydra_cat(&args, &input);
        assert!(
            out.status.success(),
            "{mode:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let events = h.wait_events(200, 10);
    assert_eq!(events.len(), 200);
    for i in 0..4 {
        let tag = format!("cat.mode{i}");
        let ns: HashSet<u64> = events
            .iter()
            .filter(|e| e["tag"] == tag.as_str())
            .map(|e| e["record"]["n"].as_u64().unwrap())
            .collect();
        assert_eq!(ns, (0..50).collect::<HashSet<_>>(), "{tag}");
    }
    assert!(
        events
            .iter()
            .all(|e| e["record"]["text"].as_str().unwrap().starts_with("hello "))
    );
    assert!(
        events
            .iter()
            .all(|e| e["time"].as_str().unwrap().ends_with('Z'))
    );
    assert!(h.stop().success());
}

#[test]
fn hydra_cat_takes_fluent_cats_flags() {
    let dir = tempfile::tempdir().unwrap();
    let (fwd, mon) = (free_port(), free_port());
    let h = Hydra::start(dir.path(), &stdout_config(fwd, mon, ""));
    let port = fwd.to_string();
    let cat = |args: &[&str], stdin: &[u8]| {
        hydra_test_support::run_with_stdin(&hydra_cat_bin(), args, stdin)
    };
    let ok = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ok(cat(
        &["-p", &port, "--none", "--message-key", "msg", "cat.none"],
        b"plain one\nplain two\n",
    ));
    ok(cat(&["-p", &port, "--json", "cat.json"], b"{\"a\":1}\n"));
    // {"a": 2}, {"a": 3} as msgpack.
    ok(cat(
        &["-p", &port, "--msgpack", "--time-as-integer", "cat.msgpack"],
        b"\x81\xa1a\x02\x81\xa1a\x03",
    ));
    let events = h.wait_events(5, 10);
    let records = |tag: &str| -> Vec<serde_json::Value> {
        events
            .iter()
            .filter(|e| e["tag"] == tag)
            .map(|e| e["record"].clone())
            .collect()
    };
    assert_eq!(
        records("cat.none"),
        [
            serde_json::json!({"msg": "plain one"}),
            serde_json::json!({"msg": "plain two"})
        ]
    );
    assert_eq!(records("cat.json"), [serde_json::json!({"a": 1})]);
    assert_eq!(
        records("cat.msgpack"),
        [serde_json::json!({"a": 2}), serde_json::json!({"a": 3})]
    );
    // Two input formats at once: bad usage.
    let out = cat(&["-p", &port, "--json", "--none", "t"], b"");
    assert_eq!(out.status.code(), Some(2));
    let out = cat(&["-p", &port, "--msgpack", "--format", "json", "t"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(h.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hydra_cat_sends_over_a_unix_socket() {
    // A Forward server on a unix socket (as fluentd's in_unix): hydra-cat
    // --unix sends to it and exits 0 once its chunks were acked.
    use hydra_forward::{ForwardDecoder, Request};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_util::codec::Decoder;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forward.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut decoder = ForwardDecoder::new();
        let mut buf = bytes::BytesMut::new();
        let mut messages = Vec::new();
        loop {
            match sock.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return messages,
                Ok(_) => {}
            }
            while let Ok(Some(r)) = decoder.decode(&mut buf) {
                if let Request::Events(b) = r {
                    for e in b.events() {
                        messages.push(e.record()["message"].as_str().unwrap().to_owned());
                    }
                    if let Some(ack) = b.ack() {
                        sock.write_all(&ack).await.unwrap();
                    }
                }
            }
        }
    });
    let sock = path.to_str().unwrap().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        hydra_test_support::run_with_stdin(
            &hydra_cat_bin(),
            &["--unix", &sock, "--none", "--batch", "10", "unix.test"],
            (0..25)
                .map(|i| format!("line {i}\n"))
                .collect::<String>()
                .as_bytes(),
        )
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let messages = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    let expected: Vec<String> = (0..25).map(|i| format!("line {i}")).collect();
    assert_eq!(messages, expected);
    // --unix with --host is bad usage.
    let out = hydra_test_support::run_with_stdin(
        &hydra_cat_bin(),
        &["--unix", "/nonexistent.sock", "--host", "127.0.0.1", "t"],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn hydra_cat_fails_clearly() {
    // Refused.
    let port = free_port().to_string();
    let out = hydra_cat(&["-p", &port, "--event", "t", "{}"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused"));
    // A server that reads and never acks: a non-zero exit within the timeout.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let start = Instant::now();
    let out = hydra_cat(&["-p", &port, "-t", "1", "--event", "t", "{\"a\":1}"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no ack"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Bad JSON on line 3 is reported as line 3; the rest is still sent.
    let dir = tempfile::tempdir().unwrap();
    let (fwd, mon) = (free_port(), free_port());
    let h = Hydra::start(dir.path(), &stdout_config(fwd, mon, ""));
    let port = fwd.to_string();
    let out = hydra_cat(
        &["-p", &port, "t.bad"],
        "{\"n\":1}\n{\"n\":2}\n{oops\n{\"n\":4}\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 3"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(h.wait_events(3, 5).len(), 3);
    // --strict sends nothing.
    let out = hydra_cat(&["-p", &port, "--strict", "t.strict"], "{\"n\":1}\n[]\n");
    assert_eq!(out.status.code(), Some(1));
    std::thread::sleep(Duration::from_millis(300));
    assert!(h.events().iter().all(|e| e["tag"] != "t.strict"));
}

fn node(args: &[&str]) -> std::process::Output {
    let script = repo().join("bins/hydra/tests/js/clients.js");
    Command::new("node")
        .arg(script)
        .args(args)
        .env("NODE_PATH", node_modules())
        .output()
        .expect("node runs")
}

#[test]
fn real_clients_reach_stdout_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let (fwd, mon) = (free_port(), free_port());
    let h = Hydra::start(dir.path(), &stdout_config(fwd, mon, ""));
    let port = fwd.to_string();
    let mut expected = 0;
    for mode in [
        "Message",
        "Forward",
        "PackedForward",
        "CompressedPackedForward",
    ] {
        let out = node(&["fluentorg", mode, &port, "org", "25"]);
        assert!(
            out.status.success(),
            "@fluent-org/logger {mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ACKED 25");
        expected += 25;
    }
    for mode in ["Message", "PackedForward", "CompressedPackedForward"] {
        let out = node(&["fluentlogger", mode, &port, "nfl", "25"]);
        assert!(
            out.status.success(),
            "fluent-logger {mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        expected += 25;
    }
    let py = format!(
        "from fluent import sender\ns = sender.FluentSender('py', host='127.0.0.1', port={fwd}, nanosecond_precision=True)\n\
         ok = all(s.emit('test', {{'n': i, 'lib': 'python', 'mode': 'Message'}}) for i in range(25))\ns.close()\nprint('SENT' if ok else s.last_error)\n"
    );
    python_sends(&py);
    expected += 25;

    let events = h.wait_events(expected, 15);
    assert_eq!(events.len(), expected, "every event once");
    let keys: HashSet<(String, String, u64)> = events
        .iter()
        .map(|e| {
            let r = &e["record"];
            (
                r["lib"].as_str().unwrap().to_owned(),
                r["mode"].as_str().unwrap().to_owned(),
                r["n"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(keys.len(), expected, "no duplicates");
    assert!(events.iter().any(|e| e["tag"] == "org"));
    assert!(events.iter().any(|e| e["tag"] == "py.test"));
    let stats: serde_json::Value = serde_json::from_str(&http_get(mon, "/")).unwrap();
    assert_eq!(stats["receiver"]["messages"], expected);
    assert_eq!(stats["receiver"]["rejected_connections"], 0);
    assert!(h.stop().success());
}

#[test]
fn stats_json_and_prometheus_after_known_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let (fwd, mon) = (free_port(), free_port());
    let h = Hydra::start(dir.path(), &stdout_config(fwd, mon, ""));
    let port = fwd.to_string();
    let input: String = (0..30).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let out = hydra_cat(&["-p", &port, "--batch", "10", "stats.tag"], &input);
    assert!(out.status.success());
    h.wait_events(30, 5);
    let v: serde_json::Value = serde_json::from_str(&http_get(mon, "/")).unwrap();
    assert_eq!(v["receiver"]["messages"], 30);
    assert_eq!(v["receiver"]["acks"], 3);
    assert_eq!(v["receiver"]["disposed"], 0);
    assert_eq!(v["receiver"]["address"][0], format!("127.0.0.1:{fwd}"));
    assert_eq!(v["buffer"]["events"], 0);
    assert!(v["servers"].as_array().unwrap().is_empty());
    let m = http_get(mon, "/metrics");
    assert!(m.contains("hydra_receiver_events_total 30\n"), "{m}");
    assert!(m.contains("hydra_receiver_acks_total 3\n"));
    assert!(m.contains("# TYPE hydra_buffer_bytes gauge"));
    let sys: serde_json::Value = serde_json::from_str(&http_get(mon, "/system")).unwrap();
    assert!(sys["rss_bytes"].as_u64().unwrap() > 0);
    assert_eq!(sys["version"], env!("CARGO_PKG_VERSION"));
    assert!(h.stop().success());
}

fn tail_forward_config(
    log: &std::path::Path,
    positions: &std::path::Path,
    server: u16,
    mon: u16,
) -> String {
    format!(
        "tag_prefix: nginx\npositions: {}\ninputs:\n  - type: tail\n    path: {}\n    tag: access\n    read_from_head: true\n    poll_interval: 100ms\noutput:\n  type: forward\n  flush_interval: 100ms\n  servers:\n    - {{ host: 127.0.0.1, port: {server} }}\nmonitor:\n  listen: 127.0.0.1:{mon}\nshutdown_timeout: 10s\n",
        positions.display(),
        log.display()
    )
}

#[test]
fn tail_to_fluent_server_with_the_right_tag_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let lines: String = (0..300).map(|i| format!("GET /page/{i} 200\n")).collect();
    std::fs::write(&log, &lines).unwrap();
    let server = FluentServer::start(&[]);
    let mon = free_port();
    let h = Hydra::start(
        dir.path(),
        &tail_forward_config(&log, &dir.path().join("pos.json"), server.port, mon),
    );
    assert!(
        wait(15, || server.entries().len() >= 300),
        "got {}",
        server.entries().len()
    );
    let records = server.entries();
    assert_eq!(records.len(), 300);
    assert!(records.iter().all(|r| r["tag"] == "nginx.access"));
    let got: Vec<String> = records
        .iter()
        .map(|r| r["record"]["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        got,
        (0..300)
            .map(|i| format!("GET /page/{i} 200"))
            .collect::<Vec<_>>()
    );
    let v: serde_json::Value = serde_json::from_str(&http_get(mon, "/")).unwrap();
    assert_eq!(v["sent"]["nginx.access"]["messages"], 300);
    assert_eq!(v["servers"][0]["alive"], true);
    assert_eq!(v["files"][log.to_str().unwrap()]["tag"], "nginx.access");
    assert!(wait(5, || {
        let v: serde_json::Value = serde_json::from_str(&http_get(mon, "/")).unwrap();
        v["files"][log.to_str().unwrap()]["position"] == lines.len()
    }));
    assert!(h.stop().success());
}

#[test]
fn bad_configs_exit_1_and_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    // An empty token must not switch the monitor's authentication off.
    let empty = dir.path().join("empty-token");
    std::fs::write(&empty, "\n").unwrap();
    let empty_token_file = format!(
        "monitor:\n  token_file: {}\noutput: {{type: stdout}}\n",
        empty.display()
    );
    let cases = [
        ("empty token file", empty_token_file.as_str(), "token_file"),
        (
            "zero ack_timeout",
            "output:\n  type: forward\n  ack_timeout: 0s\n  servers: [{host: a}]\n",
            "ack_timeout",
        ),
        (
            "zero idle_timeout",
            "inputs:\n  - type: forward\n    idle_timeout: 0s\noutput: {type: stdout}\n",
            "idle_timeout",
        ),
        (
            "client cert without key",
            "output:\n  type: forward\n  servers: [{host: a, tls: {cert: /c.pem}}]\n",
            "`cert` and `key` go together",
        ),
        (
            "blank token",
            "monitor: {token: '  '}\noutput: {type: stdout}\n",
            "monitor.token",
        ),
        (
            "unknown key",
            "output: {type: stdout}\ncolour: red\n",
            "colour",
        ),
        (
            "bad port",
            "output:\n  type: forward\n  servers: [{host: a, port: 70000}]\n",
            "70000",
        ),
        (
            "missing path",
            "inputs:\n  - type: tail\n    tag: t\noutput: {type: stdout}\n",
            "path",
        ),
        (
            "bad duration",
            "output:\n  type: forward\n  flush_interval: soon\n  servers: [{host: a}]\n",
            "line 3",
        ),
        (
            "no servers",
            "output: {type: forward, servers: []}\n",
            "at least one server",
        ),
    ];
    for (what, text, needle) in cases {
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, text).unwrap();
        for flag in ["--config", "--check-config"] {
            let out = Command::new(hydra_bin())
                .arg(flag)
                .arg(&path)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{what} with {flag}: {err}");
            assert!(err.contains(needle), "{what} with {flag}: {err}");
        }
    }
    let out = Command::new(hydra_bin())
        .arg("--config")
        .arg(dir.path().join("missing.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.yaml"));
}

#[test]
fn every_example_passes_check_config() {
    let mut n = 0;
    for entry in std::fs::read_dir(repo().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let out = Command::new(hydra_bin())
                .arg("--check-config")
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stdout).contains("output:"));
            n += 1;
        }
    }
    assert!(n >= 3, "only {n} examples");
}

#[test]
fn sigterm_delivers_or_keeps_positions() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let positions = dir.path().join("pos.json");
    let total = 20_000;
    let text: String = (0..total).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&log, &text).unwrap();
    let server = FluentServer::start(&[]);
    let mon = free_port();
    let config = tail_forward_config(&log, &positions, server.port, mon);
    let h = Hydra::start(dir.path(), &config);
    // Stop while lines are in flight.
    wait(10, || !server.entries().is_empty());
    let status = h.stop();
    assert!(status.success(), "exit {status:?}");
    // The receiver prints entries through a pipe: let it settle.
    server.settle();
    let delivered = || -> HashSet<u64> {
        server
            .entries()
            .iter()
            .map(|r| {
                r["record"]["message"].as_str().unwrap()[5..]
                    .parse()
                    .unwrap()
            })
            .collect()
    };
    let before_restart = delivered();
    // Everything before the saved position was delivered.
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&positions).unwrap()).unwrap();
    let offset = usize::try_from(saved["files"][0]["offset"].as_u64().unwrap()).unwrap();
    let committed_lines = text[..offset].lines().count() as u64;
    for n in 0..committed_lines {
        assert!(
            before_restart.contains(&n),
            "line {n} is before the saved position but was not delivered"
        );
    }
    // A restart delivers the rest; nothing is missing.
    let h = Hydra::start(dir.path(), &config);
    assert!(wait(20, || delivered().len() as u64 == total));
    assert!(h.stop().success());
}

#[test]
fn sighup_adds_an_input_and_a_bad_reload_keeps_the_old_config() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    std::fs::write(&a, "").unwrap();
    std::fs::write(&b, "").unwrap();
    let mon = free_port();
    let tail = |p: &std::path::Path, tag: &str| {
        format!(
            "  - type: tail\n    path: {}\n    tag: {tag}\n    poll_interval: 100ms\n",
            p.display()
        )
    };
    let with = |inputs: String| {
        format!("inputs:\n{inputs}output:\n  type: stdout\nmonitor:\n  listen: 127.0.0.1:{mon}\n")
    };
    let h = Hydra::start(dir.path(), &with(tail(&a, "a")));
    wait(2, || false);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&a)
        .unwrap()
        .write_all(b"first\n")
        .unwrap();
    assert_eq!(h.wait_events(1, 10).len(), 1);
    // A broken file: logged, the running config stays.
    std::fs::write(&h.config, "inputs: [\n").unwrap();
    h.signal("HUP");
    assert!(h.wait_log("keeping the running one", 10));
    // Now a valid one with a second input.
    std::fs::write(
        &h.config,
        with(format!("{}{}", tail(&a, "a"), tail(&b, "b"))),
    )
    .unwrap();
    h.signal("HUP");
    assert!(h.wait_log("Reloaded", 15), "{:?}", h.stderr.lock().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    std::fs::OpenOptions::new()
        .append(true)
        .open(&b)
        .unwrap()
        .write_all(b"from b\n")
        .unwrap();
    let events = h.wait_events(2, 10);
    assert!(
        events
            .iter()
            .any(|e| e["tag"] == "b" && e["record"]["message"] == "from b"),
        "{events:?}"
    );
    assert!(h.stop().success());
}

#[test]
fn ack_delivered_waits_for_the_output_and_udp_heartbeats_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let (fwd, mon) = (free_port(), free_port());
    let down = free_port();
    let config = format!(
        "inputs:\n  - type: forward\n    listen: 127.0.0.1:{fwd}\n    ack: delivered\noutput:\n  type: forward\n  flush_interval: 50ms\n  servers: [{{ host: 127.0.0.1, port: {down} }}]\n  connect_timeout: 200ms\nmonitor:\n  listen: 127.0.0.1:{mon}\nshutdown_timeout: 1s\n"
    );
    let h = Hydra::start(dir.path(), &config);
    // UDP heartbeat on the forward port.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    udp.send_to(&[0], ("127.0.0.1", fwd)).unwrap();
    let mut buf = [9u8; 8];
    let (n, _) = udp.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &[0]);
    // The output's server is down: accepted into the buffer, but no ack.
    let port = fwd.to_string();
    let out = hydra_cat(&["-p", &port, "-t", "1", "--event", "t", "{\"n\":1}"], "");
    assert_eq!(out.status.code(), Some(1), "acked before delivery");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no ack"));
    drop(h);
    // The same with the server up: acked once delivered.
    let server = FluentServer::start(&[]);
    let config = config.replace(&format!("port: {down}"), &format!("port: {}", server.port));
    let h = Hydra::start(dir.path(), &config);
    let out = hydra_cat(&["-p", &port, "-t", "5", "--event", "t", "{\"n\":2}"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The server acks before its line reaches the pipe the test reads.
    wait(5, || server.numbers().contains(&2));
    server.settle();
    assert_eq!(
        server
            .entries()
            .iter()
            .filter(|r| r["record"]["n"] == 2)
            .count(),
        1
    );
    assert!(h.stop().success());
}

#[test]
fn a_malformed_connection_is_closed_and_others_are_untouched() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let (fwd, mon) = (free_port(), free_port());
    let h = Hydra::start(dir.path(), &stdout_config(fwd, mon, ""));
    let mut bad = std::net::TcpStream::connect(("127.0.0.1", fwd)).unwrap();
    // 0xc1 is never valid msgpack: this connection must close.
    bad.write_all(&[0x93, 0xc1, 0x00]).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut sink = [0u8; 16];
    assert_eq!(bad.read(&mut sink).unwrap_or(0), 0, "closed by hydra");
    // A frame claiming 4 GiB: closed before anything is buffered.
    let mut huge = std::net::TcpStream::connect(("127.0.0.1", fwd)).unwrap();
    huge.write_all(&[0x93, 0xa1, b't', 0xc6, 0xff, 0xff, 0xff, 0xff])
        .unwrap();
    huge.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(huge.read(&mut sink).unwrap_or(0), 0);
    // A good client is served meanwhile.
    let port = fwd.to_string();
    let out = hydra_cat(&["-p", &port, "--event", "good", "{\"ok\":true}"], "");
    assert!(out.status.success());
    assert_eq!(h.wait_events(1, 5).len(), 1);
    let v: serde_json::Value = serde_json::from_str(&http_get(mon, "/")).unwrap();
    assert_eq!(v["receiver"]["rejected_connections"], 2);
    assert!(h.stop().success());
}

/// Ports (forward, monitor, Zabbix) and a stdout config that answers
/// Zabbix passive checks.
fn zabbix_config() -> (u16, u16, u16, String) {
    let (fwd, mon) = (free_port(), free_port());
    // Zabbix agents' ports are 1024-32767; the real zabbix_get takes any.
    // From a point that differs per call, so tests side by side do not
    // both take the first free one.
    let from = 20000 + (std::time::UNIX_EPOCH.elapsed().unwrap().subsec_nanos() % 12000) as u16;
    let zbx = (from..32000u16)
        .chain(20000..from)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .unwrap();
    let config = stdout_config(fwd, mon, "").replace(
        &format!("  listen: 127.0.0.1:{mon}\n"),
        &format!("  listen: 127.0.0.1:{mon}\n  zabbix_listen: 127.0.0.1:{zbx}\n"),
    );
    (fwd, mon, zbx, config)
}

#[test]
fn zabbix_passive_checks_about_hydra() {
    let dir = tempfile::tempdir().unwrap();
    let (fwd, _, zbx, config) = zabbix_config();
    let h = Hydra::start(dir.path(), &config);
    let port = fwd.to_string();
    let out = hydra_cat(&["-p", &port, "zbx.tag"], "{\"a\":1}\n{\"a\":2}\n");
    assert!(out.status.success());
    h.wait_events(2, 5);
    let zabbix_get = repo().join(".test-deps/zabbix/usr/bin/zabbix_get");
    assert!(zabbix_get.exists(), "run scripts/install-test-deps");
    let ours = hydra_bin().with_file_name("hydra-zabbix-get");
    let zport = zbx.to_string();
    for client in [zabbix_get, ours] {
        let get = |key: &str| {
            let out = Command::new(&client)
                .args(["-s", "127.0.0.1", "-p", &zport, "-k", key])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                client.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        assert_eq!(get("agent.ping"), "1");
        assert_eq!(get("hydra.receiver.messages"), "2");
        assert_eq!(get("hydra.receiver.acks"), "1");
        assert_eq!(get("hydra.buffer.events"), "0");
        assert_eq!(
            get("no.such.key"),
            "ZBX_NOTSUPPORTED: Unsupported item key."
        );
    }
    assert!(h.stop().success());
}

#[test]
fn accept_loops_back_off_when_out_of_file_descriptors() {
    // hydra's descriptor limit lowered to what it holds, then idle
    // connections to its Zabbix and forward listeners: every accept fails
    // with EMFILE while they wait in the backlog. Retried at once, each
    // loop would spin a core; they wait, and serve again once descriptors
    // are free.
    let dir = tempfile::tempdir().unwrap();
    let (fwd, mon, zbx, config) = zabbix_config();
    let h = Hydra::start(dir.path(), &config);
    assert!(wait(10, || !http_get(mon, "/").is_empty()));
    let pid = h.child.id();
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let soft: String = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap()
        .to_owned();
    // The soft limit only: raising it back needs no privilege.
    let set_soft = |n: &str| {
        let set = Command::new("prlimit")
            .args(["--pid", &pid.to_string(), &format!("--nofile={n}:")])
            .status()
            .unwrap();
        assert!(set.success(), "prlimit --nofile={n}:");
    };
    set_soft(&(open + 2).to_string());
    let mut idle = Vec::new();
    for port in [zbx, fwd] {
        for _ in 0..20 {
            idle.push(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
        }
    }
    assert!(
        h.wait_log("Zabbix accept failed", 5),
        "no EMFILE on the Zabbix listener"
    );
    assert!(
        h.wait_log("Accept failed", 5),
        "no EMFILE on the forward listener"
    );
    let cpu_seconds = |pid: u32| hydra_stats::read_process(&pid.to_string()).cpu_seconds;
    let before = cpu_seconds(pid);
    std::thread::sleep(Duration::from_secs(2));
    let spent = cpu_seconds(pid) - before;
    println!("2 s with both accept loops out of descriptors: {spent:.2} CPU seconds");
    assert!(spent < 0.5, "{spent:.2} CPU seconds in 2 s");
    // Retried every 100 ms, logged once per 10 s: one line each so far,
    // not one per retry.
    let lines = |text: &str| {
        h.stderr
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(text))
            .count()
    };
    // "Accept failed" is the forward input's; the Zabbix line has "accept".
    let (zabbix, forward) = (lines("Zabbix accept failed"), lines("Accept failed"));
    println!("log lines after 2 s: Zabbix {zabbix}, forward {forward}");
    assert_eq!((zabbix, forward), (1, 1));
    // Room again: the descriptors come back with the connections.
    drop(idle);
    set_soft(&soft);
    let zport = zbx.to_string();
    let ours = hydra_bin().with_file_name("hydra-zabbix-get");
    assert!(
        wait(15, || {
            Command::new(&ours)
                .args(["-s", "127.0.0.1", "-p", &zport, "-k", "agent.ping"])
                .output()
                .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"1"))
        }),
        "Zabbix served again"
    );
    let out = hydra_cat(
        &["-p", &fwd.to_string(), "--event", "back", "{\"ok\":true}"],
        "",
    );
    assert!(out.status.success());
    assert_eq!(h.wait_events(1, 10).len(), 1);
    assert!(h.stop().success());
}

#[test]
fn a_chunk_past_the_inbound_frame_limit_is_printed_whole() {
    // A frame just under max_frame_bytes (16 MiB) joins a chunk that holds
    // events already: the chunk is larger than any inbound frame may be,
    // and every event of it must still be printed before it counts as
    // delivered.
    let dir = tempfile::tempdir().unwrap();
    let (fwd, mon) = (free_port(), free_port());
    let h = Hydra::start(dir.path(), &stdout_config(fwd, mon, ""));
    let small = padded_frame("big", None, 0, 2_000, 90);
    let large = padded_frame("big", None, 2_000, 18_150, 1_000);
    assert!(
        large.len() < 16 << 20 && small.len() + large.len() > 16 << 20,
        "{} + {}",
        small.len(),
        large.len()
    );
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", fwd)).unwrap();
    conn.write_all(&small).unwrap();
    conn.write_all(&large).unwrap();
    let events = h.wait_events(18_150, 20);
    let stderr = h.stderr.clone();
    assert!(h.stop().success());
    assert_eq!(
        events.len(),
        18_150,
        "printed {} of 18,150; {:?}",
        events.len(),
        stderr
            .lock()
            .unwrap()
            .iter()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
    );
}

fn unix_input_config(sock: &std::path::Path, mon: u16, extra: &str) -> String {
    format!(
        "inputs:\n  - type: forward\n    listen: unix:{}\n{extra}output:\n  type: stdout\nmonitor:\n  listen: 127.0.0.1:{mon}\n",
        sock.display()
    )
}

#[test]
fn a_forward_input_on_a_unix_socket() {
    // As fluentd's in_unix: hydra-cat --unix and Python's fluent-logger
    // (unix://) send over it. A socket file left by a killed hydra is
    // replaced; `mode` sets its permissions; a clean stop removes it.
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("forward.sock");
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(sock.exists(), "the stale socket file stays");
    let mon = free_port();
    let h = Hydra::start(
        dir.path(),
        &unix_input_config(&sock, mon, "    mode: \"0660\"\n"),
    );
    let meta = std::fs::metadata(&sock).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o660);
    let input: String = (0..25).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let out = hydra_cat(&["--unix", sock.to_str().unwrap(), "unix.cat"], &input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let py = format!(
        "from fluent import sender\ns = sender.FluentSender('unix', host='unix://{}', nanosecond_precision=True)\n\
         ok = all(s.emit('py', {{'n': i}}) for i in range(25))\ns.close()\nprint('SENT' if ok else s.last_error)\n",
        sock.display()
    );
    python_sends(&py);
    let events = h.wait_events(50, 15);
    for tag in ["unix.cat", "unix.py"] {
        let ns: Vec<u64> = events
            .iter()
            .filter(|e| e["tag"] == tag)
            .map(|e| e["record"]["n"].as_u64().unwrap())
            .collect();
        assert_eq!(ns, (0..25).collect::<Vec<_>>(), "{tag}");
    }
    let stats = http_get(mon, "/");
    assert!(
        stats.contains(&format!("unix:{}", sock.display())),
        "the monitor names the socket: {stats}"
    );
    // A reload hands the path over: the new pipeline listens on it.
    h.signal("HUP");
    assert!(h.wait_log("Reloaded", 10), "{:?}", h.stderr.lock().unwrap());
    let out = hydra_cat(
        &["--unix", sock.to_str().unwrap(), "unix.again"],
        "{\"n\":0}\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(h.wait_events(51, 10).len(), 51);
    assert!(h.stop().success());
    assert!(!sock.exists(), "a clean stop removes the socket file");
}

/// Runs hydra with `flag` (`--config` or `--check-config`) on `text`;
/// it must exit 1. Its stderr.

#[test]
fn a_unix_socket_path_that_cannot_be_used_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-socket");
    std::fs::write(&path, "data").unwrap();
    let live = dir.path().join("live.sock");
    let _other = std::os::unix::net::UnixListener::bind(&live).unwrap();
    for (sock, why) in [
        (&path, "exists and is not a socket"),
        (&live, "another process listens on it"),
    ] {
        let err = refused(
            dir.path(),
            "--config",
            &unix_input_config(sock, free_port(), ""),
        );
        assert!(
            err.contains(&format!("unix:{}: {why}", sock.display())),
            "{err}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "data",
        "left alone"
    );
    assert!(live.exists(), "the live socket is left alone");
    // `mode` without a unix socket, and a mode that is not octal.
    let sock = dir.path().join("x.sock");
    for (text, needle) in [
        (
            stdout_config(free_port(), free_port(), "    mode: \"0660\"\n"),
            "`mode` is for `listen: unix:PATH`",
        ),
        (
            unix_input_config(&sock, free_port(), "    mode: rw\n"),
            "not an octal file mode",
        ),
        (
            stdout_config(free_port(), free_port(), "    owner: root\n"),
            "`owner` and `group` are for `listen: unix:PATH`",
        ),
        (
            unix_input_config(&sock, free_port(), "    owner: no-such-user-here\n"),
            "`owner` \"no-such-user-here\" is not a user of this host",
        ),
        (
            unix_input_config(&sock, free_port(), "    group: no-such-group-here\n"),
            "`group` \"no-such-group-here\" is not a group of this host",
        ),
    ] {
        let err = refused(dir.path(), "--check-config", &text);
        assert!(err.contains(needle), "{err}");
    }
}

#[test]
fn a_unix_sockets_owner_and_group_are_set() {
    // By name (looked up as hydra does, in /etc/passwd and /etc/group)
    // and by number. The tests run as root, which may give files away.
    use std::os::unix::fs::MetadataExt;
    let id_of = |file: &str, name: &str| -> u32 {
        std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f[0] == name).then(|| f[2].parse().unwrap())
            })
            .unwrap()
    };
    let (nobody, nogroup) = (
        id_of("/etc/passwd", "nobody"),
        id_of("/etc/group", "nogroup"),
    );
    let dir = tempfile::tempdir().unwrap();
    for (extra, uid, gid) in [
        (
            "    owner: nobody\n    group: nogroup\n".to_owned(),
            nobody,
            nogroup,
        ),
        (format!("    owner: \"{nobody}\"\n"), nobody, 0),
    ] {
        let sock = dir.path().join("owned.sock");
        let h = Hydra::start(dir.path(), &unix_input_config(&sock, free_port(), &extra));
        let meta = std::fs::metadata(&sock).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (uid, gid), "{extra}");
        assert!(h.stop().success());
    }
}

#[test]
fn zstd_frames_in_and_out() {
    // In: hydra-cat sends zstd-compressed PackedForward (as fluentd 1.19's
    // `compress zstd`) to an aggregator hydra. Out: an agent hydra with
    // `compress: zstd` forwards to that aggregator, which prints
    // everything.
    let dir = tempfile::tempdir().unwrap();
    let agg_dir = dir.path().join("aggregator");
    std::fs::create_dir_all(&agg_dir).unwrap();
    let (agg_fwd, agg_mon) = (free_port(), free_port());
    let agg = Hydra::start(&agg_dir, &stdout_config(agg_fwd, agg_mon, ""));
    let input: String = (0..300).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let out = hydra_cat(
        &[
            "-p",
            &agg_fwd.to_string(),
            "--compress",
            "zstd",
            "--batch",
            "100",
            "direct",
        ],
        &input,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let agent_fwd = free_port();
    let agent = Hydra::start(
        dir.path(),
        &format!(
            "inputs:\n  - type: forward\n    listen: 127.0.0.1:{agent_fwd}\noutput:\n  type: forward\n  compress: zstd\n  servers: [{{ host: 127.0.0.1, port: {agg_fwd} }}]\n"
        ),
    );
    let out = hydra_cat(
        &["-p", &agent_fwd.to_string(), "--batch", "100", "relayed"],
        &input,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = agg.wait_events(600, 20);
    for tag in ["direct", "relayed"] {
        let mut ns: Vec<u64> = events
            .iter()
            .filter(|e| e["tag"] == tag)
            .map(|e| e["record"]["n"].as_u64().unwrap())
            .collect();
        ns.sort_unstable();
        assert_eq!(ns, (0..300).collect::<Vec<_>>(), "{tag}");
    }
    assert!(agent.stop().success());
    assert!(agg.stop().success());
}
