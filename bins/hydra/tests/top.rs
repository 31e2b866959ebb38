//! `hydra top` and `hydra tap` against a running hydra: the text view
//! checked field by field against the monitor JSON, tap output checked
//! event by event, a tap that never reads, and the full-screen view driven
//! through tmux.
#![allow(clippy::unwrap_used, clippy::print_stdout)] // a panic is how a test fails

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use hydra_test_support::{Behaviour, Receiver};
use serde_json::Value;

fn monitor_json(mon: u16) -> Value {
    serde_json::from_str(&http_get(mon, "/")).unwrap()
}

fn send_events(port: u16, tag: &str, range: std::ops::Range<u64>) {
    let input: String = range.map(|n| format!("{{\"n\":{n}}}\n")).collect();
    let out = hydra_test_support::run_with_stdin(
        &hydra_cat_bin(),
        &["--port", &port.to_string(), tag],
        input.as_bytes(),
    );
    assert!(out.status.success(), "{out:?}");
}

fn config(dir: &Path, fwd: u16, mon: u16, server: u16, dead: u16, extra_output: &str) -> String {
    format!(
        "inputs:\n  - {{type: tail, path: {d}/*.log, tag: files, read_from_head: true, poll_interval: 100ms}}\n  - {{type: forward, listen: 127.0.0.1:{fwd}}}\noutput:\n  type: forward\n  flush_interval: 50ms\n{extra_output}  servers:\n    - {{host: 127.0.0.1, port: {server}}}\n    - {{host: 127.0.0.1, port: {dead}, standby: true}}\nmonitor: {{listen: 127.0.0.1:{mon}}}\nshutdown_timeout: 2s\n",
        d = dir.display()
    )
}

/// `hydra top --once` rows: the cells of the line starting with `first`.
fn row<'a>(text: &'a str, first: &str) -> Vec<&'a str> {
    text.lines()
        .find(|l| l.starts_with(first))
        .unwrap_or_else(|| panic!("no row {first} in\n{text}"))
        .split_whitespace()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_once_shows_the_monitor_numbers_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let receiver = Receiver::start(Behaviour::Ack).await;
    let (fwd, mon, dead) = (free_port(), free_port(), free_port());
    std::fs::write(
        d.join("a.log"),
        (0..300).map(|i| format!("line {i}\n")).collect::<String>(),
    )
    .unwrap();
    std::fs::write(d.join("b.log"), "one\ntwo\n").unwrap();
    // A second forward input: each listener gets its own row.
    let fwd2 = free_port();
    let yaml = config(d, fwd, mon, receiver.port(), dead, "").replace(
        "output:",
        &format!("  - {{type: forward, listen: 127.0.0.1:{fwd2}}}\noutput:"),
    );
    let h = Hydra::start(d, &yaml);
    let port = fwd;
    tokio::task::spawn_blocking(move || {
        send_events(port, "app.load", 0..400);
        send_events(fwd2, "app.load", 400..500);
    })
    .await
    .unwrap();
    let lines = receiver.messages.clone();
    assert!(
        wait(20, || receiver.count() >= 500
            && lines.lock().unwrap().len() >= 302),
        "delivered {} events and {} lines",
        receiver.count(),
        lines.lock().unwrap().len()
    );
    // Let the counters and a rate sample settle on the finished load.
    assert!(wait(10, || monitor_json(mon)["buffer"]["events"] == 0));
    std::thread::sleep(Duration::from_millis(1200));

    let out = Command::new(hydra_bin())
        .args(["top", "--once", "--url", &format!("http://127.0.0.1:{mon}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let v = monitor_json(mon);
    println!("{text}");

    for name in ["a.log", "b.log"] {
        let path = d.join(name).display().to_string();
        let f = &v["files"][&path];
        let cells = row(&text, &path);
        assert_eq!(cells[1], f["tag"], "{name} tag");
        assert_eq!(cells[2], f["position"].to_string(), "{name} position");
        assert_eq!(cells[3], f["behind"].to_string(), "{name} behind");
        assert_eq!(cells[4], f["lines"].to_string(), "{name} lines");
        assert_eq!(cells[6], "-", "{name} error");
    }
    assert_eq!(row(&text, &d.join("a.log").display().to_string())[4], "300");

    assert_eq!(v["receiver"]["messages"], 500);
    for (i, (port, events)) in [(fwd, "400"), (fwd2, "100")].into_iter().enumerate() {
        let l = &v["listeners"][i];
        let inputs = row(&text, &format!("127.0.0.1:{port}"));
        assert_eq!(inputs[1], l["connections"].to_string());
        assert_eq!(inputs[3], l["messages"].to_string());
        assert_eq!(inputs[3], events);
        assert_eq!(inputs[4], l["dropped_frames"].to_string());
        assert_eq!(inputs[5], l["auth_failures"].to_string());
    }

    let live = row(&text, &format!("127.0.0.1:{}", receiver.port()));
    let s0 = &v["servers"][0];
    assert_eq!(live[1], "up");
    assert_eq!(live[2], "primary*", "the live primary gets the traffic");
    assert_eq!(live[4], s0["messages"].to_string());
    assert_eq!(live[4], "802");
    assert_eq!(live[5], s0["acks_pending"].to_string());
    assert_eq!(live[6], s0["retries"].to_string());
    assert!(live[7].ends_with("s_ago"), "{live:?}");
    let standby = row(&text, &format!("127.0.0.1:{dead}"));
    assert_eq!(&standby[1..3], ["down", "standby"]);
    assert_eq!(standby[7], "never");
    assert_ne!(standby[8], "-", "a down server shows its error");

    let buffer = text.lines().find(|l| l.starts_with("buffer ")).unwrap();
    assert!(
        buffer.contains(&format!("{} events", v["buffer"]["events"])),
        "{buffer}"
    );
    let history = v["delivered_history"].as_array().unwrap();
    assert!(!history.is_empty(), "a minute of delivered events/s: {v}");
    assert!(text.contains("delivered "), "{text}");
    assert!(h.stop().success());
}

/// Reads `hydra tap` output lines as they come.
fn spawn_tap(
    mon: u16,
    glob: &str,
) -> (
    std::process::Child,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use std::io::BufRead;
    let mut child = Command::new(hydra_bin())
        .args(["tap", "--url", &format!("http://127.0.0.1:{mon}"), glob])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let sink = lines.clone();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            sink.lock().unwrap().push(l);
        }
    });
    (child, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tap_prints_exactly_the_matching_events_and_a_stalled_tap_does_not_slow_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let receiver = Receiver::start(Behaviour::Ack).await;
    let (fwd, mon, dead) = (free_port(), free_port(), free_port());
    // Small chunks: many of them, so a stalled reader's queue fills.
    let h = Hydra::start(
        d,
        &config(d, fwd, mon, receiver.port(), dead, "  chunk_bytes: 16KiB\n"),
    );

    let (mut tap, lines) = spawn_tap(mon, "app.*");
    assert!(wait(10, || monitor_json(mon)["tap"]["readers"] == 1));
    let port = fwd;
    tokio::task::spawn_blocking(move || {
        send_events(port, "app.a", 0..50);
        send_events(port, "app.b.c", 1000..1030);
        send_events(port, "other", 2000..2020);
        send_events(port, "app.d", 3000..3010);
    })
    .await
    .unwrap();
    assert!(wait(20, || receiver.count() >= 110));
    assert!(wait(10, || lines.lock().unwrap().len() >= 60));
    std::thread::sleep(Duration::from_millis(500));
    let got: Vec<Value> = lines
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut seen: Vec<(String, u64)> = got
        .iter()
        .map(|e| {
            assert!(e["time"].as_str().unwrap().ends_with('Z'), "{e}");
            (
                e["tag"].as_str().unwrap().to_owned(),
                e["record"]["n"].as_u64().unwrap(),
            )
        })
        .collect();
    seen.sort();
    let want: Vec<(String, u64)> = (0..50)
        .map(|n| ("app.a".to_owned(), n))
        .chain((3000..3010).map(|n| ("app.d".to_owned(), n)))
        .collect();
    assert_eq!(seen, want, "exactly the app.* events, each once");
    let _ = tap.kill();
    let _ = tap.wait();
    assert!(wait(10, || monitor_json(mon)["tap"]["readers"] == 0));

    // Delivery without a tap, then with one that never reads.
    let rate = |from: u64, label: &str| {
        let n: u32 = 100_000;
        let before = receiver.count();
        let start = Instant::now();
        send_events(fwd, "app.load", from..from + u64::from(n));
        assert!(
            wait(60, || receiver.count()
                >= before + usize::try_from(n).unwrap()),
            "{label}: delivered {} of {n}",
            receiver.count() - before
        );
        let r = f64::from(n) / start.elapsed().as_secs_f64();
        println!("{label}: {r:.0} events/s delivered");
        r
    };
    let without = tokio::task::block_in_place(|| rate(10_000_000, "no tap"));
    // A reader that sends its request and then never reads a byte.
    let mut stalled = std::net::TcpStream::connect(("127.0.0.1", mon)).unwrap();
    write!(stalled, "GET /tap HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(wait(10, || monitor_json(mon)["tap"]["readers"] == 1));
    let with = tokio::task::block_in_place(|| rate(20_000_000, "a tap that never reads"));
    // Kernel socket buffers take a few MB before the reader's queue fills:
    // keep the load on until it does (a bounded number of rounds).
    for round in 1..=8u64 {
        if monitor_json(mon)["tap"]["missed"].as_u64().unwrap() > 0 {
            break;
        }
        tokio::task::block_in_place(|| rate(20_000_000 + round * 1_000_000, "more, stalled tap"));
    }
    let v = monitor_json(mon);
    println!(
        "without a tap {without:.0}/s, with a stalled tap {with:.0}/s, tap {}",
        v["tap"]
    );
    assert!(
        v["tap"]["missed"].as_u64().unwrap() > 0,
        "the stalled reader missed events, counted: {}",
        v["tap"]
    );
    drop(stalled);
    // hydra still stops promptly with a tap connected.
    let (_tap2, _) = spawn_tap(mon, "");
    assert!(wait(10, || monitor_json(mon)["tap"]["readers"] == 1));
    assert!(h.stop().success());
}

/// A tmux server of its own, killed when the test ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(cols: u16, rows: u16, command: &str) -> Tmux {
        let socket = format!("hydra-top-{}", std::process::id());
        let t = Tmux { socket };
        let ok = t
            .cmd(&[
                "new-session",
                "-d",
                "-x",
                &cols.to_string(),
                "-y",
                &rows.to_string(),
                command,
            ])
            .success();
        assert!(ok, "tmux new-session");
        t
    }

    fn cmd(&self, args: &[&str]) -> std::process::ExitStatus {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("tmux is installed (scripts/install-test-deps)")
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_screen(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let ok = wait(15, || {
            last = self.screen();
            f(&last)
        });
        assert!(ok, "waiting for {what}; the screen was:\n{last}");
        last
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_screen_view_under_tmux() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let receiver = Receiver::start(Behaviour::Ack).await;
    let (fwd, mon, dead) = (free_port(), free_port(), free_port());
    std::fs::write(d.join("alpha.log"), "a\n".repeat(100)).unwrap();
    std::fs::write(d.join("beta.log"), "b\n".repeat(5)).unwrap();
    let yaml = config(d, fwd, mon, receiver.port(), dead, "");
    let mut h = Hydra::start(d, &yaml);
    assert!(wait(20, || receiver.messages.lock().unwrap().len() >= 105));

    let tmux = Tmux::new(
        160,
        45,
        &format!(
            "{} top --url http://127.0.0.1:{mon} --interval 200ms",
            hydra_bin().display()
        ),
    );
    let alpha = d.join("alpha.log").display().to_string();
    let beta = d.join("beta.log").display().to_string();
    let live = format!("127.0.0.1:{}", receiver.port());
    let screen = tmux.wait_screen("files and servers", |s| {
        s.contains("[connected]") && s.contains(&alpha) && s.contains(&beta) && s.contains(&live)
    });
    let server_line = screen.lines().find(|l| l.contains(&live)).unwrap();
    assert!(
        server_line.contains(" up ") && server_line.contains("primary*"),
        "{server_line}"
    );
    let dead_line = screen
        .lines()
        .find(|l| l.contains(&format!("127.0.0.1:{dead}")))
        .unwrap();
    assert!(
        dead_line.contains("down") && dead_line.contains("standby"),
        "{dead_line}"
    );

    // s: sort by bytes behind; /: filter.
    tmux.keys(&["s"]);
    tmux.wait_screen("sorted by behind", |s| s.contains("sorted by behind"));
    tmux.keys(&["/", "b", "e", "t", "a", "Enter"]);
    tmux.wait_screen("the filter applied", |s| {
        s.contains(&beta) && !s.contains(&alpha) && s.contains("filter \"beta\"")
    });
    tmux.keys(&["Escape"]);
    tmux.wait_screen("the filter cleared", |s| {
        s.contains(&alpha) && s.contains(&beta)
    });

    // A terminal resize: the view follows.
    assert!(
        tmux.cmd(&["resize-window", "-x", "110", "-y", "35"])
            .success()
    );
    tmux.wait_screen("the narrower layout", |s| {
        s.lines().map(|l| l.chars().count()).max() == Some(110) && s.contains(&beta)
    });

    // The agent dies: "disconnected"; it comes back: the view recovers.
    h.child.kill().unwrap();
    h.child.wait().unwrap();
    tmux.wait_screen("disconnected", |s| s.contains("disconnected"));
    let h2 = Hydra::start(d, &yaml);
    tmux.wait_screen("reconnected", |s| {
        s.contains("[connected]") && !s.contains("disconnected") && s.contains(&alpha)
    });

    // q quits: the pane's program ends and with it the session.
    tmux.keys(&["q"]);
    assert!(
        wait(10, || !tmux.cmd(&["has-session"]).success()),
        "still running after q:\n{}",
        tmux.screen()
    );
    assert!(h2.stop().success());
}
