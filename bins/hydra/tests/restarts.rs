//! Stops, crashes and reloads with the configuration operators run: the
//! default `read_from_head: false`, a `positions` file (none in the reload
//! scenario), stdout output, and a forward output on its defaults stopped
//! while its receiver is down, stalls or never acks. Every line is numbered; each scenario counts
//! what was lost and what came twice, across every hydra process it ran.
//! A clean stop or a reload doubles nothing; after `kill -9` only lines past
//! the last saved position may come again.
#![allow(clippy::unwrap_used, clippy::print_stdout)] // a test reports and panics

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::*;
use hydra_test_support::{Behaviour, Receiver};

fn config(dir: &Path, pattern: &str, positions: bool) -> String {
    let positions = if positions {
        format!("positions: {}/pos.json\n", dir.display())
    } else {
        String::new()
    };
    format!(
        "{positions}inputs:\n  - type: tail\n    path: \"{}/{pattern}\"\n    tag: app\noutput:\n  type: stdout\n",
        dir.display()
    )
}

fn append(path: &Path, from: u64, to: u64) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let text: String = (from..to).map(|i| format!("line {i}\n")).collect();
    f.write_all(text.as_bytes()).unwrap();
}

/// The numbers of the `line N` messages hydra printed.
fn numbers(h: &Hydra) -> Vec<u64> {
    h.events()
        .iter()
        .filter_map(|e| e["record"]["message"].as_str())
        .filter_map(|m| m.strip_prefix("line ")?.parse().ok())
        .collect()
}

/// Waits until hydra printed `n` lines (at most `secs`), then a moment
/// longer for any that should not come.
fn wait_lines(h: &Hydra, n: usize, secs: u64) {
    wait(secs, || numbers(h).len() >= n);
    std::thread::sleep(Duration::from_millis(300));
}

/// SIGHUP, then waits (at most `secs`) until hydra reloaded `nth` times.
fn reload(h: &Hydra, nth: usize, secs: u64) {
    h.signal("HUP");
    assert!(
        wait(secs, || {
            h.stderr
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains("Reloaded."))
                .count()
                >= nth
        }),
        "reload {nth} did not finish: {:?}",
        h.stderr.lock().unwrap()
    );
}

/// Counts `0..expected` in what every run printed: (lost, duplicated
/// numbers).
fn tally(name: &str, expected: u64, runs: &[Vec<u64>]) -> (Vec<u64>, Vec<u64>) {
    let mut counts: HashMap<u64, usize> = HashMap::new();
    for n in runs.iter().flatten() {
        *counts.entry(*n).or_default() += 1;
    }
    let lost: Vec<u64> = (0..expected).filter(|n| !counts.contains_key(n)).collect();
    let mut dups: Vec<u64> = counts
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(n, _)| *n)
        .collect();
    dups.sort_unstable();
    let extra: Vec<&u64> = counts.keys().filter(|n| **n >= expected).collect();
    println!(
        "{name}: written {expected}, delivered {}, lost {}, duplicated {}",
        runs.iter().map(Vec::len).sum::<usize>(),
        lost.len(),
        dups.len()
    );
    assert!(
        extra.is_empty(),
        "{name}: lines never written: {extra:?} in {runs:?}"
    );
    (lost, dups)
}

/// Within each run, the lines of each file (a range of numbers) came in the
/// order they were written. Files are read side by side: lines of two
/// files may interleave.
fn assert_in_order(runs: &[Vec<u64>], files: &[std::ops::Range<u64>]) {
    for run in runs {
        for file in files {
            let lines: Vec<u64> = run.iter().copied().filter(|n| file.contains(n)).collect();
            let mut sorted = lines.clone();
            sorted.sort_unstable();
            assert_eq!(lines, sorted, "lines of {file:?} out of order within a run");
        }
    }
}

/// Runs hydra on `cfg` while `running` writes until `first` lines were
/// printed, stops it cleanly, lets `stopped` change the files, then runs
/// it again until `second` more were printed. Both runs' numbers.
fn across_a_stop(
    dir: &Path,
    cfg: &str,
    running: impl FnOnce(),
    first: usize,
    stopped: impl FnOnce(),
    second: usize,
) -> [Vec<u64>; 2] {
    let h = Hydra::start(dir, cfg);
    running();
    wait_lines(&h, first, 10);
    let before = numbers(&h);
    assert!(h.stop().success());
    stopped();
    let h = Hydra::start(dir, cfg);
    wait_lines(&h, second, 10);
    let after = numbers(&h);
    assert!(h.stop().success());
    [before, after]
}

/// Every line of `0..expected` came exactly once.
fn assert_once(name: &str, expected: u64, runs: &[Vec<u64>]) {
    let (lost, dups) = tally(name, expected, runs);
    assert!(
        lost.is_empty(),
        "{name}: lost {} lines, first {:?}",
        lost.len(),
        lost.first()
    );
    assert!(
        dups.is_empty(),
        "{name}: duplicated {} lines, first {:?}",
        dups.len(),
        dups.first()
    );
}

/// The first file's lines, renamed away while hydra is down, then a new
/// file at the followed path.
fn rename_rotation(dir: &Path, from: u64, mid: u64, to: u64) {
    let log = dir.join("app.log");
    append(&log, from, mid);
    std::fs::rename(&log, dir.join("app.log.1")).unwrap();
    append(&log, mid, to);
}

/// logrotate's copytruncate, then the application goes on writing.
fn copytruncate(dir: &Path, from: u64, mid: u64, to: u64) {
    let log = dir.join("app.log");
    append(&log, from, mid);
    std::fs::copy(&log, dir.join("app.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    append(&log, mid, to);
}

#[test]
fn a_rename_rotation_while_stopped_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    // Lines before hydra's first start are not its to send (read from the
    // end on a first run).
    std::fs::write(&log, "before hydra\n").unwrap();
    let runs = across_a_stop(
        dir.path(),
        &config(dir.path(), "app.log", true),
        || append(&log, 0, 10),
        10,
        || rename_rotation(dir.path(), 10, 15, 25),
        15,
    );
    assert_once("rename rotation while stopped", 25, &runs);
    assert_in_order(&runs, &[0..15, 15..25]);
}

#[test]
fn a_copytruncate_while_stopped_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let runs = across_a_stop(
        dir.path(),
        &config(dir.path(), "app.log", true),
        || append(&log, 0, 5),
        5,
        || copytruncate(dir.path(), 5, 10, 20),
        15,
    );
    assert_once("copytruncate while stopped", 20, &runs);
}

#[test]
fn a_file_matching_the_glob_while_stopped_is_read_from_its_head() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.log");
    std::fs::write(&a, "").unwrap();
    let runs = across_a_stop(
        dir.path(),
        &config(dir.path(), "*.log", true),
        || append(&a, 0, 15),
        15,
        || append(&dir.path().join("b.log"), 15, 25),
        10,
    );
    assert_once("a new glob match while stopped", 25, &runs);
}

#[test]
fn kill_9_then_a_rotation_while_down_repeats_only_past_the_saved_position() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let cfg = config(dir.path(), "app.log", true);
    let mut h = Hydra::start(dir.path(), &cfg);
    append(&log, 0, 1000);
    wait_lines(&h, 1000, 10);
    // A checkpoint passes; then hydra is killed while still reading: the
    // last lines written are in flight.
    std::thread::sleep(Duration::from_millis(600));
    for block in 10..20 {
        append(&log, block * 100, block * 100 + 100);
        std::thread::sleep(Duration::from_millis(5));
    }
    wait(10, || numbers(&h).len() >= 1500);
    h.child.kill().unwrap();
    h.child.wait().unwrap();
    let first = numbers(&h);
    // What the positions file says was delivered: no line before it may
    // come again.
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("pos.json")).unwrap())
            .unwrap();
    let offset = saved["files"][0]["offset"].as_u64().unwrap();
    let content = std::fs::read(&log).unwrap();
    let safe = content[..usize::try_from(offset).unwrap()]
        .iter()
        .filter(|b| **b == b'\n')
        .count() as u64;

    append(&log, 2000, 2200);
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, 2200, 2300);
    h = Hydra::start(dir.path(), &cfg);
    wait_lines(&h, usize::try_from(2300 - safe).unwrap(), 15);
    let runs = [first, numbers(&h)];
    assert!(h.stop().success());
    let (lost, dups) = tally("kill -9, then a rotation while down", 2300, &runs);
    println!("saved position covered lines 0..{safe}");
    assert!(
        lost.is_empty(),
        "lost {} lines, first {:?}",
        lost.len(),
        lost.first()
    );
    let early: Vec<&u64> = dups.iter().filter(|n| **n < safe).collect();
    assert!(
        early.is_empty(),
        "lines before the saved position came twice: {early:?}"
    );
    assert_in_order(&runs, &[0..2200, 2200..2300]);
}

#[test]
fn reloads_while_a_writer_writes_without_positions_lose_and_double_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let cfg = config(dir.path(), "app.log", false);
    let h = Hydra::start(dir.path(), &cfg);
    let total: u64 = 10_000;
    let writer = {
        std::thread::spawn(move || {
            // 2,000 lines/s: 20 lines every 10 ms, for 5 s.
            for block in 0..total / 20 {
                append(&log, block * 20, block * 20 + 20);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    for i in 1..=5 {
        std::thread::sleep(Duration::from_millis(800));
        reload(&h, i, 10);
    }
    writer.join().unwrap();
    wait_lines(&h, usize::try_from(total).unwrap(), 20);
    let runs = [numbers(&h)];
    assert!(h.stop().success());
    assert_once("5 reloads while writing, no positions", total, &runs);
    let one_file = std::iter::once(0..total).collect::<Vec<_>>();
    assert_in_order(&runs, &one_file);
}

// The same stops with a forward output on every default (`require_ack`,
// a 10 s `shutdown_timeout`), stopped while hydra is behind: its receiver
// is down, stalls or never acks, so read lines are still undelivered at
// the stop. Their positions must not have advanced.

/// A tail input on its defaults, a positions file, a forward output to
/// `port` on its defaults.
fn forward_config(dir: &Path, pattern: &str, port: u16) -> String {
    format!(
        "positions: {}/pos.json\ninputs:\n  - type: tail\n    path: \"{}/{pattern}\"\n    tag: app\noutput:\n  type: forward\n  servers: [{{ host: 127.0.0.1, port: {port} }}]\n",
        dir.display(),
        dir.display()
    )
}

/// Stops hydra cleanly; it must have logged `text` (else `why`).
fn stop_having_said(h: Hydra, text: &str, why: &str) {
    let stderr = h.stderr.clone();
    assert!(h.stop().success());
    let said = stderr.lock().unwrap();
    assert!(said.iter().any(|l| l.contains(text)), "{why}: {said:?}");
}

/// The numbers of the `line N` messages each receiver acked, one list per
/// receiver.
fn received(rxs: &[&Receiver]) -> Vec<Vec<u64>> {
    rxs.iter()
        .map(|rx| {
            rx.messages
                .lock()
                .unwrap()
                .iter()
                .filter_map(|m| m.strip_prefix("line ")?.parse().ok())
                .collect()
        })
        .collect()
}

/// Makes the receiver on `rx`'s port fail as `fault` says: `None` stops it.
async fn fail(rx: &Receiver, fault: Option<Behaviour>) -> Option<Receiver> {
    rx.stop();
    match fault {
        Some(b) => Some(Receiver::start_on(rx.port(), b).await),
        None => None,
    }
}

/// How hydra is stopped while behind.
#[derive(Clone, Copy)]
enum Stop {
    Clean,
    /// `kill -9`: nothing is saved at the stop.
    Kill9,
}

/// hydra, following `pattern` in `dir`, delivers lines 0..10 written to
/// `file`; then the receiver fails as `fault` says and lines 10..500 are
/// written, which hydra reads but cannot deliver; hydra is stopped as
/// `stop` says while behind. `stopped` writes lines 500..700 and changes the files; a
/// healthy receiver comes back on the same port and hydra runs again.
/// Every line must arrive once, each of `files` (ranges of numbers) in
/// order.
async fn across_a_stop_while_behind(
    name: &str,
    stop: Stop,
    pattern: &str,
    file: &str,
    fault: Option<Behaviour>,
    stopped: impl FnOnce(&Path),
    files: &[std::ops::Range<u64>],
) {
    let dir = tempfile::tempdir().unwrap();
    let (dir, log) = (dir.path(), dir.path().join(file));
    std::fs::write(&log, "").unwrap();
    let rx = Receiver::start(Behaviour::Ack).await;
    let cfg = forward_config(dir, pattern, rx.port());
    let h = Hydra::start(dir, &cfg);
    append(&log, 0, 10);
    assert!(
        wait(15, || rx.messages.lock().unwrap().len() >= 10),
        "the first lines were not delivered: {:?}",
        h.stderr.lock().unwrap()
    );
    let faulty = fail(&rx, fault).await;
    append(&log, 10, 500);
    // Long enough for hydra to read them and try to send.
    std::thread::sleep(Duration::from_millis(1500));
    match stop {
        Stop::Clean => stop_having_said(
            h,
            "Stopped with undelivered events",
            "hydra was not behind at the stop",
        ),
        Stop::Kill9 => {
            let mut h = h;
            assert!(
                received(&[&rx]).concat().len() < 500,
                "hydra was not behind at the kill"
            );
            h.child.kill().unwrap();
            h.child.wait().unwrap();
        }
    }
    drop(faulty);
    stopped(dir);
    let healthy = Receiver::start_on(rx.port(), Behaviour::Ack).await;
    let h = Hydra::start(dir, &cfg);
    wait(30, || received(&[&rx, &healthy]).concat().len() >= 700);
    std::thread::sleep(Duration::from_millis(300));
    assert!(h.stop().success());
    let runs = received(&[&rx, &healthy]);
    assert_once(name, 700, &runs);
    assert_in_order(&runs, files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_rotation_while_stopped_behind_a_down_receiver_loses_nothing() {
    across_a_stop_while_behind(
        "rename rotation while stopped, receiver down",
        Stop::Clean,
        "app.log",
        "app.log",
        None,
        |dir| rename_rotation(dir, 500, 600, 700),
        &[0..600, 600..700],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copytruncate_while_stopped_behind_a_stalled_receiver_loses_nothing() {
    across_a_stop_while_behind(
        "copytruncate while stopped, receiver stalled",
        Stop::Clean,
        "app.log",
        "app.log",
        Some(Behaviour::Stall),
        |dir| copytruncate(dir, 500, 600, 700),
        &[0..600, 600..700],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_glob_match_while_stopped_behind_a_never_acking_receiver_loses_nothing() {
    across_a_stop_while_behind(
        "a new glob match while stopped, receiver never acks",
        Stop::Clean,
        "*.log",
        "a.log",
        Some(Behaviour::NeverAck),
        |dir| append(&dir.join("b.log"), 500, 700),
        &[0..500, 500..700],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_behind_a_stalled_receiver_then_a_copytruncate_loses_nothing() {
    across_a_stop_while_behind(
        "kill -9 behind a stalled receiver, then copytruncate",
        Stop::Kill9,
        "app.log",
        "app.log",
        Some(Behaviour::Stall),
        |dir| copytruncate(dir, 500, 600, 700),
        &[0..600, 600..700],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_behind_a_never_acking_receiver_then_a_rename_rotation_loses_nothing() {
    across_a_stop_while_behind(
        "kill -9 behind a never-acking receiver, then rename rotation",
        Stop::Kill9,
        "app.log",
        "app.log",
        Some(Behaviour::NeverAck),
        |dir| rename_rotation(dir, 500, 600, 700),
        &[0..600, 600..700],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_while_the_receiver_is_down_lose_and_double_nothing() {
    // The defaults operators run: a positions file, `require_ack`, SIGHUP
    // while the application writes; one reload happens while nothing can
    // be delivered, so the old pipeline stops behind.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let rx = Receiver::start(Behaviour::Ack).await;
    let h = Hydra::start(
        dir.path(),
        &forward_config(dir.path(), "app.log", rx.port()),
    );
    let total: u64 = 24_000;
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            // 2,000 lines/s for 12 s.
            for block in 0..total / 20 {
                append(&log, block * 20, block * 20 + 20);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(800));
    reload(&h, 1, 15);
    rx.stop();
    std::thread::sleep(Duration::from_millis(500));
    // Stops behind: waits its shutdown_timeout, then starts the new
    // pipeline from the delivered positions.
    reload(&h, 2, 20);
    let healthy = Receiver::start_on(rx.port(), Behaviour::Ack).await;
    std::thread::sleep(Duration::from_millis(800));
    reload(&h, 3, 15);
    writer.join().unwrap();
    wait(30, || {
        received(&[&rx, &healthy]).concat().len() >= usize::try_from(total).unwrap()
    });
    std::thread::sleep(Duration::from_millis(300));
    stop_having_said(
        h,
        "Undelivered at reload",
        "the second reload was not behind",
    );
    let runs = received(&[&rx, &healthy]);
    assert_once("3 reloads, one with the receiver down", total, &runs);
    let one_file = std::iter::once(0..total).collect::<Vec<_>>();
    assert_in_order(&runs, &one_file);
}

#[test]
fn refused_reloads_keep_serving_and_are_counted() {
    // A taken port, a missing TLS file, an unset secret and a file that
    // does not parse: each reload is refused before the running pipeline
    // lets go of anything, hydra goes on serving its clients and files,
    // and reload_failures counts every refusal (JSON and Prometheus).
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let (fwd, mon) = (free_port(), free_port());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let with_forward = |port: u16, extra: &str| {
        format!(
            "inputs:\n  - type: tail\n    path: {}\n    tag: app\n  - type: forward\n    listen: 127.0.0.1:{port}\n{extra}output:\n  type: stdout\nmonitor:\n  listen: 127.0.0.1:{mon}\n",
            log.display()
        )
    };
    let h = Hydra::start(dir.path(), &with_forward(fwd, ""));
    let missing = dir.path().join("missing.pem");
    let refused = [
        with_forward(taken.local_addr().unwrap().port(), ""),
        with_forward(
            free_port(),
            &format!(
                "    tls: {{ cert: {}, key: {} }}\n",
                missing.display(),
                missing.display()
            ),
        ),
        with_forward(
            free_port(),
            "    security: { shared_key_env: HYDRA_TEST_NEVER_SET }\n",
        ),
        "inputs: [\n".to_owned(),
    ];
    let mut n = 0;
    for (i, cfg) in refused.iter().enumerate() {
        std::fs::write(&h.config, cfg).unwrap();
        h.signal("HUP");
        let said = |h: &Hydra| {
            h.stderr
                .lock()
                .unwrap()
                .iter()
                .filter(|l| {
                    l.contains("keeping the running one")
                        || l.contains("going on with the running one")
                })
                .count()
        };
        assert!(
            wait(15, || said(&h) > i),
            "reload {i} was not refused: {:?}",
            h.stderr.lock().unwrap()
        );
        if i == 0 {
            // Why, once: the OS error is not repeated.
            let why: Vec<String> = h
                .stderr
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains("Address already in use"))
                .cloned()
                .collect();
            assert_eq!(why.len(), 1, "{why:?}");
            assert_eq!(
                why[0].matches("Address already in use").count(),
                1,
                "{why:?}"
            );
        }
        // Still serving: a line of the file and an event of a client.
        append(&log, n, n + 1);
        let sent = std::process::Command::new(hydra_cat_bin())
            .args([
                "-p",
                &fwd.to_string(),
                "--event",
                "app.cat",
                &format!(r#"{{"message":"line {}"}}"#, n + 1),
            ])
            .output()
            .unwrap();
        assert!(sent.status.success(), "reload {i}: {sent:?}");
        n += 2;
        wait_lines(&h, usize::try_from(n).unwrap(), 10);
    }
    let stats: serde_json::Value = serde_json::from_str(&http_get(mon, "/")).unwrap();
    assert_eq!(stats["reload_failures"], 4, "{stats}");
    assert!(
        http_get(mon, "/metrics").contains("hydra_reload_failures_total 4"),
        "{}",
        http_get(mon, "/metrics")
    );
    let stderr = h.stderr.clone();
    let runs = [numbers(&h)];
    assert!(h.stop().success());
    assert!(
        !stderr
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("Reloaded.")),
        "a refused reload was applied"
    );
    assert_once("refused reloads", n, &runs);
}
