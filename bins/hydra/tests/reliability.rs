//! The reliability suite: real hydra processes, writers and receivers,
//! every event numbered so that loss and duplication are counted exactly.
//! Tail inputs run on their defaults (`read_from_head: false`, a positions
//! file, the default polling and `rotate_wait`).
//!
//! Each scenario prints `written, delivered, lost, duplicated, peak RSS`.
//! The short profile runs in the test command; `HYDRA_SOAK=1` runs the long
//! one (`HYDRA_SOAK=1 cargo test -p hydra-log-agent --test reliability -- --nocapture
//! --test-threads 1`).
#![allow(clippy::unwrap_used, clippy::print_stdout)] // a test reports and panics

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use hydra_test_support::{Behaviour, Receiver};

/// Scenarios run one at a time: each reports its own peak RSS, and two
/// heavy scenarios sharing two cores measure neither.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn tail_and_forward_config(
    dir: &Path,
    pattern: &str,
    fwd: Option<u16>,
    servers: &[u16],
    extra: &str,
) -> String {
    let mut inputs = format!(
        "  - type: tail\n    path: \"{}/{pattern}\"\n    tag: app\n",
        dir.display()
    );
    if let Some(p) = fwd {
        inputs.push_str(&format!("  - type: forward\n    listen: 127.0.0.1:{p}\n"));
    }
    let servers: String = servers
        .iter()
        .map(|p| format!("    - {{ host: 127.0.0.1, port: {p} }}\n"))
        .collect();
    format!(
        "positions: {}/pos.json\ninputs:\n{inputs}output:\n  type: forward\n  flush_interval: 100ms\n  connect_timeout: 500ms\n  ack_timeout: 2s\n  recover_wait: 1s\n  servers:\n{servers}{extra}shutdown_timeout: 5s\n",
        dir.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn crash_loop() {
    let _serial = SERIAL.lock().await;
    let kills = 20;
    let lines: u64 = if soak() { 200_000 } else { 20_000 };
    let events: u64 = if soak() { 50_000 } else { 5_000 };
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(Behaviour::Ack).await;
    let fwd = free_port();
    let config = tail_and_forward_config(dir.path(), "app.log", Some(fwd), &[rx.port()], "");
    std::fs::write(dir.path().join("app.log"), "").unwrap();
    let mut h = Hydra::start(dir.path(), &config);

    let writer = {
        let path = dir.path().join("app.log");
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap();
            let per_ms = lines / 8_000 + 1;
            let mut i = 0;
            while i < lines {
                for _ in 0..per_ms.min(lines - i) {
                    writeln!(f, "line {i}").unwrap();
                    i += 1;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let client = std::thread::spawn(move || forward_client(fwd, 0, events));
    let mut peak: f64 = 0.0;
    for _ in 0..kills {
        let pause = 150 + rand::random::<u64>() % 400;
        std::thread::sleep(Duration::from_millis(pause));
        peak = peak.max(peak_rss_mib(h.child.id()));
        h.child.kill().unwrap();
        h.child.wait().unwrap();
        h = Hydra::start(dir.path(), &config);
    }
    writer.join().unwrap();
    client.join().unwrap();
    let expected_lines: Vec<String> = (0..lines).map(|i| format!("line {i}")).collect();
    // Distinct lines and events: the repeats after each kill must not
    // count for the ones still on their way.
    let done = wait(60, || {
        let messages: std::collections::HashSet<String> =
            rx.messages.lock().unwrap().iter().cloned().collect();
        let seen: std::collections::HashSet<u64> =
            rx.seen.lock().unwrap().iter().copied().collect();
        messages.len() as u64 >= lines && seen.len() as u64 >= events
    });
    peak = peak.max(peak_rss_mib(h.child.id()));
    assert!(h.stop().success());
    let got_lines = rx.messages.lock().unwrap().clone();
    let (lost, dups) = report(
        "crash loop: tailed lines",
        &expected_lines,
        &got_lines,
        peak,
    );
    let expected_events: Vec<String> = (0..events).map(|i| i.to_string()).collect();
    let got_events: Vec<String> = rx.seen.lock().unwrap().iter().map(u64::to_string).collect();
    let (lost_fwd, dups_fwd) = report(
        "crash loop: forward events (default ack: delivered)",
        &expected_events,
        &got_events,
        peak,
    );
    assert!(done, "not everything arrived within 60 s");
    assert_eq!(lost, 0, "tailed lines lost");
    assert_eq!(lost_fwd, 0, "acked forward events lost");
    // Repeats come only from what was read but not yet committed at each
    // kill: at most a second of input (the checkpoint interval) per kill.
    assert!(
        dups as u64 <= kills * (lines / 2),
        "{dups} duplicated lines"
    );
    assert!(
        dups_fwd as u64 <= kills * 100,
        "{dups_fwd} duplicated events"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn rotation_storm() {
    let _serial = SERIAL.lock().await;
    let files = 10;
    let per_file: u64 = if soak() { 100_000 } else { 20_000 };
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    for f in 0..files {
        std::fs::write(logs.join(format!("f{f}.log")), "").unwrap();
    }
    let rx = Receiver::start(Behaviour::Ack).await;
    let monitor = free_port();
    let config = tail_and_forward_config(
        &logs,
        "*.log",
        None,
        &[rx.port()],
        &format!("monitor:\n  listen: 127.0.0.1:{monitor}\n"),
    );
    let mut h = Hydra::start(dir.path(), &config);
    let conf = dir.path().join("logrotate.conf");
    std::fs::write(
        &conf,
        format!(
            "{}/*.log {{\n rotate 1000\n create\n missingok\n nomail\n}}\n",
            logs.display()
        ),
    )
    .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let rotations = Arc::new(AtomicU64::new(0));
    let rotator = {
        let (done, rotations, conf, state) = (
            done.clone(),
            rotations.clone(),
            conf,
            dir.path().join("state"),
        );
        std::thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                let out = Command::new("logrotate")
                    .arg("-f")
                    .arg("-s")
                    .arg(&state)
                    .arg(&conf)
                    .output()
                    .expect("logrotate (scripts/install-test-deps)");
                if out.status.success() {
                    rotations.fetch_add(1, Ordering::Relaxed);
                } else {
                    println!("logrotate: {}", String::from_utf8_lossy(&out.stderr).trim());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let writers: Vec<_> = (0..files)
        .map(|f| {
            let path = logs.join(format!("f{f}.log"));
            std::thread::spawn(move || {
                for i in 0..per_file {
                    // Reopens like an application after logrotate's signal.
                    let mut file = loop {
                        match std::fs::OpenOptions::new().append(true).open(&path) {
                            Ok(x) => break x,
                            Err(_) => std::thread::sleep(Duration::from_micros(200)),
                        }
                    };
                    writeln!(file, "f{f} line {i}").unwrap();
                    // Spread over a few seconds, so rotations happen during
                    // the writing.
                    if i % 20 == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::Release);
    rotator.join().unwrap();
    let total = files * per_file;
    let arrived = wait(60, || rx.messages.lock().unwrap().len() as u64 >= total);
    let peak = peak_rss_mib(h.child.id());
    if !arrived {
        // What hydra said last: a stopped reading thread or a file it gave
        // up shows here.
        let log = h.stderr.lock().unwrap().clone();
        println!(
            "hydra's last log lines:\n{}",
            log[log.len().saturating_sub(40)..].join("\n")
        );
        println!(
            "hydra still running: {}",
            h.child.try_wait().ok().flatten().is_none()
        );
        // Where the lines stopped: each file's position and size, the
        // buffer, the servers.
        println!("monitor: {}", http_get(monitor, "/"));
    }
    assert!(h.stop().success());
    let expected: Vec<String> = (0..files)
        .flat_map(|f| (0..per_file).map(move |i| format!("f{f} line {i}")))
        .collect();
    let got = rx.messages.lock().unwrap().clone();
    let (lost, dups) = report(
        &format!(
            "rotation storm ({} logrotate runs)",
            rotations.load(Ordering::Relaxed)
        ),
        &expected,
        &got,
        peak,
    );
    assert!(arrived);
    assert!(rotations.load(Ordering::Relaxed) >= 5);
    assert_eq!((lost, dups), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn receiver_faults_and_long_outage() {
    let _serial = SERIAL.lock().await;
    let outage = if soak() { 60 } else { 5 };
    let lines: u64 = if soak() { 300_000 } else { 30_000 };
    let dir = tempfile::tempdir().unwrap();
    // Every receiver instance's deliveries, kept after it is stopped.
    let mut delivered: Vec<Arc<std::sync::Mutex<Vec<String>>>> = Vec::new();
    let start =
        async |port: u16, b: Behaviour, delivered: &mut Vec<Arc<std::sync::Mutex<Vec<String>>>>| {
            let r = Receiver::start_on(port, b).await;
            delivered.push(r.messages.clone());
            r
        };
    let all = |delivered: &[Arc<std::sync::Mutex<Vec<String>>>]| -> Vec<String> {
        delivered
            .iter()
            .flat_map(|m| m.lock().unwrap().clone())
            .collect()
    };
    let primary_port = free_port();
    let secondary_port = free_port();
    let mut primary = start(primary_port, Behaviour::Ack, &mut delivered).await;
    // The secondary stalls first: it accepts and never reads.
    let mut secondary = start(secondary_port, Behaviour::Stall, &mut delivered).await;
    std::fs::write(dir.path().join("app.log"), "").unwrap();
    let config = tail_and_forward_config(
        dir.path(),
        "app.log",
        None,
        &[primary_port, secondary_port],
        "buffer:\n  max_bytes: 1MiB\n",
    );
    let h = Hydra::start(dir.path(), &config);
    let text: String = (0..lines).map(|i| format!("line {i}\n")).collect();
    let offsets: Vec<usize> = text.match_indices('\n').map(|(i, _)| i + 1).collect();
    let write = |from: u64, to: u64| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("app.log"))
            .unwrap();
        for i in from..to {
            writeln!(f, "line {i}").unwrap();
        }
    };
    let third = lines / 3;
    write(0, third);
    wait(10, || !primary.messages.lock().unwrap().is_empty());
    // The primary dies mid-stream; the secondary stalls, then closes after
    // reading, then is healthy and takes over.
    primary.stop();
    std::thread::sleep(Duration::from_millis(1500));
    secondary.stop();
    secondary = start(secondary_port, Behaviour::CloseAfterRead, &mut delivered).await;
    std::thread::sleep(Duration::from_millis(1000));
    secondary.stop();
    secondary = start(secondary_port, Behaviour::Ack, &mut delivered).await;
    write(third, 2 * third);
    assert!(
        wait(20, || secondary.messages.lock().unwrap().len() > 100),
        "the secondary took over"
    );
    // Long outage: nothing is up while input keeps flowing.
    secondary.stop();
    write(2 * third, lines);
    std::thread::sleep(Duration::from_secs(outage));
    let rss_during = peak_rss_mib(h.child.id());
    // At-least-once: every line before the saved position was delivered.
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("pos.json")).unwrap())
            .unwrap();
    let offset = usize::try_from(saved["files"][0]["offset"].as_u64().unwrap()).unwrap();
    let committed = offsets.iter().take_while(|&&o| o <= offset).count();
    let during: std::collections::HashSet<String> = all(&delivered).into_iter().collect();
    let missing = (0..committed)
        .filter(|i| !during.contains(&format!("line {i}")))
        .count();
    println!(
        "outage of {outage} s: RSS {rss_during:.1} MiB with a 1 MiB buffer; {committed} lines committed, {} delivered, {missing} committed but undelivered",
        during.len()
    );
    assert_eq!(missing, 0, "a position advanced past undelivered lines");
    assert!(
        (committed as u64) < lines,
        "positions advanced through the outage"
    );
    // Both servers come back; everything is delivered.
    primary = start(primary_port, Behaviour::Ack, &mut delivered).await;
    secondary = start(secondary_port, Behaviour::Ack, &mut delivered).await;
    let arrived = wait(60, || {
        all(&delivered)
            .into_iter()
            .collect::<std::collections::HashSet<_>>()
            .len() as u64
            >= lines
    });
    let peak = peak_rss_mib(h.child.id());
    assert!(h.stop().success());
    let expected: Vec<String> = (0..lines).map(|i| format!("line {i}")).collect();
    let (lost, dups) = report(
        "receiver faults + outage",
        &expected,
        &all(&delivered),
        peak,
    );
    println!(
        "duplicates come from chunks a receiver read but did not ack before it failed: {dups}"
    );
    assert!(arrived);
    assert_eq!(lost, 0);
    assert!(rss_during < 64.0, "RSS {rss_during} MiB during the outage");
    drop((primary, secondary));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn tailing_waits_for_deliveries_instead_of_filling_the_buffer() {
    tailing_while_the_only_server_is_down(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_kill_9_while_tailing_waits_on_a_down_server() {
    tailing_while_the_only_server_is_down(true).await;
}

/// Every setting on its default (a positions file, `read_from_head:
/// false`, a 64 MiB buffer, `max_buffered_bytes` 2 MiB, the output's
/// timings): the only server is down while 40 MB are written, with a
/// rename rotation half way. A tail input holds its own small share of the
/// buffer and leaves the rest in the files, rotated one included. With
/// `crash`, hydra is killed with SIGKILL while it waits, and started again
/// before the server comes up.
async fn tailing_while_the_only_server_is_down(crash: bool) {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let (server, mon) = (free_port(), free_port());
    let config = format!(
        "positions: {}/pos.json\ninputs:\n  - type: tail\n    path: {}\n    tag: app\noutput:\n  type: forward\n  servers: [{{ host: 127.0.0.1, port: {server} }}]\nmonitor:\n  listen: 127.0.0.1:{mon}\n",
        dir.path().display(),
        log.display()
    );
    let mut h = Hydra::start(dir.path(), &config);
    assert!(
        wait(10, || !http_get(mon, "/").is_empty()),
        "the monitor came up"
    );
    let lines: u64 = 400_000;
    let pad = "x".repeat(88);
    let write = |from: u64, to: u64| {
        let mut f =
            std::io::BufWriter::new(std::fs::OpenOptions::new().append(true).open(&log).unwrap());
        for i in from..to {
            writeln!(f, "line {i} {pad}").unwrap();
        }
    };
    write(0, lines / 2);
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    std::fs::write(&log, "").unwrap();
    write(lines / 2, lines);
    // Long enough for reading to have filled any ceiling it had.
    let mut held = 0;
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(100));
        let stats: serde_json::Value = serde_json::from_str(&http_get(mon, "/")).unwrap();
        held = held.max(stats["buffer"]["bytes"].as_u64().unwrap());
    }
    let rss_down = peak_rss_mib(h.child.id());
    println!(
        "server down, {} MB written: the buffer held at most {held} bytes, peak RSS {rss_down:.1} MiB",
        lines * 100 / 1_000_000
    );
    // The input's room, and the batch that found it nearly spent.
    assert!(
        held > 0 && held <= (2 << 20) + (256 << 10),
        "{held} bytes held"
    );
    if crash {
        h.child.kill().unwrap();
        h.child.wait().unwrap();
        h = Hydra::start(dir.path(), &config);
    }
    let rx = Receiver::start_on(server, Behaviour::Ack).await;
    let arrived = wait(60, || rx.messages.lock().unwrap().len() as u64 >= lines);
    std::thread::sleep(Duration::from_millis(300));
    let peak = peak_rss_mib(h.child.id());
    assert!(h.stop().success());
    let expected: Vec<String> = (0..lines).map(|i| format!("line {i} {pad}")).collect();
    let got = rx.messages.lock().unwrap().clone();
    let name = if crash {
        "tailing waits while the server is down, kill -9, restart"
    } else {
        "tailing waits while the server is down"
    };
    let (lost, dups) = report(name, &expected, &got, peak);
    assert!(arrived);
    assert_eq!((lost, dups), (0, 0));
    // Each file's lines in order (the rotated file and the new one are
    // read side by side).
    let numbers: Vec<u64> = got
        .iter()
        .map(|m| m.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    for file in [0..lines / 2, lines / 2..lines] {
        let own: Vec<u64> = numbers
            .iter()
            .copied()
            .filter(|n| file.contains(n))
            .collect();
        assert!(own.windows(2).all(|w| w[0] < w[1]), "out of order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn unwritable_positions_are_reported_and_forwarding_goes_on() {
    let _serial = SERIAL.lock().await;
    // root writes anywhere: run hydra as nobody so a read-only directory
    // really refuses the write.
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("work");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    std::fs::set_permissions(
        base.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let state = dir.join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let log = dir.join("app.log");
    std::fs::write(&log, "").unwrap();
    std::fs::set_permissions(&log, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let rx = Receiver::start(Behaviour::Ack).await;
    let mon = free_port();
    let config = format!(
        "positions: {}/pos.json\ninputs:\n  - type: tail\n    path: {}\n    tag: app\noutput:\n  type: forward\n  flush_interval: 100ms\n  servers: [{{ host: 127.0.0.1, port: {} }}]\nmonitor:\n  listen: 127.0.0.1:{mon}\n",
        state.display(),
        log.display(),
        rx.port()
    );
    let conf = dir.join("hydra.yaml");
    std::fs::write(&conf, &config).unwrap();
    let mut child = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(hydra_bin())
        .arg("--config")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("setpriv (util-linux)");
    let append = |from: u64, to: u64| {
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        for i in from..to {
            writeln!(f, "line {i}").unwrap();
        }
    };
    let stats = || -> serde_json::Value {
        std::net::TcpStream::connect(("127.0.0.1", mon)).map_or(serde_json::Value::Null, |_| {
            serde_json::from_str(&http_get(mon, "/")).unwrap_or_default()
        })
    };
    assert!(
        wait(10, || !stats().is_null()),
        "hydra did not start as nobody"
    );
    append(0, 100);
    assert!(wait(10, || rx.messages.lock().unwrap().len() >= 100));
    // The state directory becomes read-only.
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
    append(100, 200);
    assert!(
        wait(10, || rx.messages.lock().unwrap().len() >= 200),
        "forwarding went on"
    );
    assert!(
        wait(10, || stats()["errors"].to_string().contains("positions")),
        "the error is in the stats: {}",
        stats()
    );
    // It recovers.
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    append(200, 300);
    assert!(
        wait(10, || stats()["errors"].is_null()
            && rx.messages.lock().unwrap().len() >= 300),
        "{}",
        stats()
    );
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("pos.json")).unwrap()).unwrap();
    assert!(saved["files"][0]["offset"].as_u64().unwrap() > 0);
    let peak = peak_rss_mib(child.id());
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    assert!(child.wait().unwrap().success());
    let expected: Vec<String> = (0..300).map(|i| format!("line {i}")).collect();
    let got = rx.messages.lock().unwrap().clone();
    let (lost, dups) = report("unwritable positions", &expected, &got, peak);
    assert_eq!((lost, dups), (0, 0));
    let _ = Instant::now();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_gzip_chunk_inflating_past_the_first_guess_is_served() {
    // Defaults throughout. A compressed chunk whose frame is larger than
    // what a connection reads outside max_pending_bytes, and which
    // inflates past the first 8 MiB tried: its connection holds part of
    // the budget while asking for room to inflate. Asking for the whole
    // budget, it waited on itself until it was closed, unacked, for ever.
    use hydra_forward::{BatchMode, ChunkId, Compression, EventTime, FrameBuilder, TimeFormat};
    use rand::Rng;
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (fwd, mon) = (free_port(), free_port());
    let h = Hydra::start(dir.path(), &stdout_config(fwd, mon, ""));
    let events: u64 = 12_000;
    let mut f = FrameBuilder::new("big", BatchMode::PackedForward, TimeFormat::EventTime);
    let pad = "x".repeat(1_000);
    let mut rng = rand::rng();
    for n in 0..events {
        let noise: u64 = rng.random();
        f.push_line(
            EventTime::new(1_700_000_000, 0),
            "message",
            format!("line {n} {noise:016x} {pad}").as_bytes(),
        );
    }
    let frame = f.finish(Some(&ChunkId::from_id("big-1")), Some(Compression::Gzip));
    assert!(
        frame.len() > 256 << 10 && frame.len() < 16 << 20,
        "{}",
        frame.len()
    );
    let started = Instant::now();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", fwd)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(&frame).unwrap();
    let mut ack = [0u8; 64];
    let got = s.read(&mut ack).unwrap_or(0);
    assert!(
        got > 0 && ack[..got].windows(5).any(|w| w == b"big-1"),
        "no ack after {:.1} s: {:?}",
        started.elapsed().as_secs_f64(),
        http_get(mon, "/")
    );
    let printed = h.wait_events(usize::try_from(events).unwrap(), 30);
    let numbers: std::collections::BTreeSet<u64> = printed
        .iter()
        .filter_map(|e| {
            e["record"]["message"]
                .as_str()?
                .split(' ')
                .nth(1)?
                .parse()
                .ok()
        })
        .collect();
    println!(
        "a {} KiB gzip chunk inflating to {} MiB: acked in {:.2} s, {} of {events} printed",
        frame.len() >> 10,
        (events * 1_030) >> 20,
        started.elapsed().as_secs_f64(),
        numbers.len()
    );
    assert_eq!(numbers.len() as u64, events);
    assert!(h.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_keep_their_order_in_time() {
    // Defaults (positions file, read_from_head false). 100,000 lines in
    // writes of 10,000, across a rename rotation: every line's time is
    // later than the line's before it, so a downstream that sorts by time
    // keeps each file's lines in order. Every line of one read used to
    // share one time. The order across the rotation is hydra-tail's
    // (`a_rotated_file_is_read_to_its_end_before_the_new_one`); here each
    // file's lines are checked in order.
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let rx = Receiver::start(Behaviour::Ack).await;
    let mon = free_port();
    let config = format!(
        "positions: {}/pos.json\ninputs:\n  - type: tail\n    path: {}\n    tag: app\noutput:\n  type: forward\n  servers: [{{ host: 127.0.0.1, port: {} }}]\nmonitor:\n  listen: 127.0.0.1:{mon}\n",
        dir.path().display(),
        log.display(),
        rx.port()
    );
    let h = Hydra::start(dir.path(), &config);
    assert!(
        wait(10, || !http_get(mon, "/").is_empty()),
        "the monitor came up"
    );
    let lines = 100_000;
    for w in 0..10 {
        if w == 5 {
            std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
            std::fs::write(&log, "").unwrap();
        }
        let chunk: String = (w * 10_000..(w + 1) * 10_000)
            .map(|i| format!("line {i}\n"))
            .collect();
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(chunk.as_bytes()).unwrap();
    }
    assert!(
        wait(60, || rx.messages.lock().unwrap().len() >= lines),
        "only {} of {lines} lines arrived",
        rx.messages.lock().unwrap().len()
    );
    let messages = rx.messages.lock().unwrap().clone();
    let times = rx.times.lock().unwrap().clone();
    let number = |m: &String| m["line ".len()..].parse::<usize>().unwrap();
    let (old, new): (Vec<usize>, Vec<usize>) =
        messages.iter().map(number).partition(|n| *n < lines / 2);
    assert_eq!(old, (0..lines / 2).collect::<Vec<_>>(), "the rotated file");
    assert_eq!(new, (lines / 2..lines).collect::<Vec<_>>(), "the new file");
    let distinct: std::collections::HashSet<_> = times.iter().collect();
    let backwards = times.windows(2).filter(|w| w[1] <= w[0]).count();
    println!(
        "ordered times: {lines} lines, {} distinct times, {backwards} not later than the line before",
        distinct.len()
    );
    assert_eq!(backwards, 0);
    assert!(h.stop().success());
}
