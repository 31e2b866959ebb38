//! Stops, crashes and reloads with the configuration operators run: the
//! default `read_from_head: false`, a `positions` file (none in the reload
//! scenario), stdout output. Every line is numbered; each scenario counts
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

#[test]
fn a_rename_rotation_while_stopped_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    // Lines before hydra's first start are not its to send (read from the
    // end on a first run).
    std::fs::write(&log, "before hydra\n").unwrap();
    let cfg = config(dir.path(), "app.log", true);
    let h = Hydra::start(dir.path(), &cfg);
    append(&log, 0, 10);
    wait_lines(&h, 10, 10);
    let first = numbers(&h);
    assert!(h.stop().success());

    append(&log, 10, 15);
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, 15, 25);
    let h = Hydra::start(dir.path(), &cfg);
    wait_lines(&h, 15, 10);
    let runs = [first, numbers(&h)];
    assert!(h.stop().success());
    let (lost, dups) = tally("rename rotation while stopped", 25, &runs);
    assert!(lost.is_empty(), "lost {lost:?}");
    assert!(dups.is_empty(), "duplicated {dups:?}");
    assert_in_order(&runs, &[0..15, 15..25]);
}

#[test]
fn a_copytruncate_while_stopped_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let cfg = config(dir.path(), "app.log", true);
    let h = Hydra::start(dir.path(), &cfg);
    append(&log, 0, 5);
    wait_lines(&h, 5, 10);
    let first = numbers(&h);
    assert!(h.stop().success());

    // logrotate's copytruncate, while hydra is down, then the application
    // goes on writing.
    append(&log, 5, 10);
    std::fs::copy(&log, dir.path().join("app.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    append(&log, 10, 20);
    let h = Hydra::start(dir.path(), &cfg);
    wait_lines(&h, 15, 10);
    let runs = [first, numbers(&h)];
    assert!(h.stop().success());
    let (lost, dups) = tally("copytruncate while stopped", 20, &runs);
    assert!(lost.is_empty(), "lost {lost:?}");
    assert!(dups.is_empty(), "duplicated {dups:?}");
}

#[test]
fn a_file_matching_the_glob_while_stopped_is_read_from_its_head() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.log");
    std::fs::write(&a, "").unwrap();
    let cfg = config(dir.path(), "*.log", true);
    let h = Hydra::start(dir.path(), &cfg);
    append(&a, 0, 15);
    wait_lines(&h, 15, 10);
    let first = numbers(&h);
    assert!(h.stop().success());

    append(&dir.path().join("b.log"), 15, 25);
    let h = Hydra::start(dir.path(), &cfg);
    wait_lines(&h, 10, 10);
    let runs = [first, numbers(&h)];
    assert!(h.stop().success());
    let (lost, dups) = tally("a new glob match while stopped", 25, &runs);
    assert!(lost.is_empty(), "lost {lost:?}");
    assert!(dups.is_empty(), "duplicated {dups:?}");
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
        h.signal("HUP");
        assert!(
            wait(10, || {
                h.stderr
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|l| l.contains("Reloaded."))
                    .count()
                    >= i
            }),
            "reload {i} did not finish: {:?}",
            h.stderr.lock().unwrap()
        );
    }
    writer.join().unwrap();
    wait_lines(&h, usize::try_from(total).unwrap(), 20);
    let runs = [numbers(&h)];
    assert!(h.stop().success());
    let (lost, dups) = tally("5 reloads while writing, no positions", total, &runs);
    assert!(
        lost.is_empty(),
        "lost {} lines, first {:?}",
        lost.len(),
        lost.first()
    );
    assert!(dups.is_empty(), "duplicated {} lines", dups.len());
    let one_file = std::iter::once(0..total).collect::<Vec<_>>();
    assert_in_order(&runs, &one_file);
}

#[test]
fn a_reload_that_cannot_start_keeps_the_running_configuration() {
    // The new configuration's forward port is taken by another program:
    // hydra goes on with the configuration it ran, positions handed over,
    // and still accepts its clients and tails its files.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let (fwd, taken) = (
        free_port(),
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
    );
    let with_forward = |port: u16| {
        format!(
            "inputs:\n  - type: tail\n    path: {}\n    tag: app\n  - type: forward\n    listen: 127.0.0.1:{port}\noutput:\n  type: stdout\n",
            log.display()
        )
    };
    let mut h = Hydra::start(dir.path(), &with_forward(fwd));
    append(&log, 0, 5);
    wait_lines(&h, 5, 10);
    std::fs::write(&h.config, with_forward(taken.local_addr().unwrap().port())).unwrap();
    h.signal("HUP");
    assert!(
        h.wait_log("going on with the running one", 15),
        "{:?}",
        h.stderr.lock().unwrap()
    );
    assert!(h.child.try_wait().unwrap().is_none(), "hydra exited");
    // Why, once: the OS error is not repeated.
    let why: Vec<String> = h
        .stderr
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("going on with the running one"))
        .cloned()
        .collect();
    assert_eq!(why.len(), 1, "{why:?}");
    assert_eq!(
        why[0].matches("Address already in use").count(),
        1,
        "{why:?}"
    );
    append(&log, 5, 10);
    wait_lines(&h, 10, 10);
    let sent = std::process::Command::new(hydra_cat_bin())
        .args([
            "-p",
            &fwd.to_string(),
            "--event",
            "app.cat",
            r#"{"message":"line 10"}"#,
        ])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{sent:?}");
    wait_lines(&h, 11, 10);
    let runs = [numbers(&h)];
    assert!(h.stop().success());
    let (lost, dups) = tally("a reload that cannot start", 11, &runs);
    assert!(lost.is_empty(), "lost {lost:?}");
    assert!(dups.is_empty(), "duplicated {dups:?}");
}
