//! The disk buffer (`buffer.disk`) with real clients and the operators'
//! defaults: the aggregator away while clients send, `kill -9` at any
//! moment, damage to the files, a full file system, a second hydra, a
//! reload. Every event is numbered per tag, so loss and duplication are
//! counted exactly.
#![allow(clippy::unwrap_used, clippy::print_stdout)] // a test reports and panics

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use hydra_test_support::{Behaviour, Receiver};

/// hydra with forward inputs on `fwd` (and `also`), a disk buffer in
/// `dir/buffer`, the monitor on `mon`, forwarding to `agg` (which may be
/// down).
fn disk_config(dir: &Path, fwd: u16, mon: u16, agg: u16, extra: &str) -> String {
    disk_config_with(dir, &[fwd], mon, agg, extra)
}

fn disk_config_with(dir: &Path, fwd: &[u16], mon: u16, agg: u16, extra: &str) -> String {
    let inputs: String = fwd
        .iter()
        .map(|p| format!("  - type: forward\n    listen: 127.0.0.1:{p}\n"))
        .collect();
    format!(
        "inputs:\n{inputs}output:\n  type: forward\n  flush_interval: 200ms\n  connect_timeout: 500ms\n  ack_timeout: 2s\n  recover_wait: 1s\n  servers: [{{ host: 127.0.0.1, port: {agg} }}]\nbuffer:\n  disk:\n    path: {}/buffer\n{extra}monitor:\n  listen: 127.0.0.1:{mon}\n",
        dir.display()
    )
}

fn stats(mon: u16) -> serde_json::Value {
    std::net::TcpStream::connect(("127.0.0.1", mon)).map_or(serde_json::Value::Null, |_| {
        serde_json::from_str(&http_get(mon, "/")).unwrap_or_default()
    })
}

/// Python's fluent-logger (Debian's) sending `{"n": base..base+count}` as
/// `tag` without acks; how many emits failed.
fn python_no_ack(port: u16, tag: &str, base: u64, count: u64) -> std::process::Child {
    python_no_ack_padded(port, tag, base, count, 300)
}

/// Like [`python_no_ack`], each event `pad` bytes larger.
fn python_no_ack_padded(
    port: u16,
    tag: &str,
    base: u64,
    count: u64,
    pad: usize,
) -> std::process::Child {
    let script = format!(
        "from fluent import sender\ns = sender.FluentSender('{tag}', host='127.0.0.1', port={port}, timeout=3.0)\nfailed = 0\nfor i in range({count}):\n    if not s.emit('e', {{'n': {base} + i, 'pad': 'x' * {pad}}}):\n        failed += 1\ns.close()\nprint('FAILED', failed)\n"
    );
    Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The failed emits a python_no_ack child printed.
fn failed_emits(child: std::process::Child) -> u64 {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .strip_prefix("FAILED ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("python: {text}{}", String::from_utf8_lossy(&out.stderr)))
}

/// The npm `@fluent-org/logger` client with acks (reconnecting, retrying
/// until acked): `chunks` × `per` events `{"n"}` as `tag`.
fn npm_acked(port: u16, tag: &str, chunks: u64, per: u64, secs: u64) -> std::process::Child {
    Command::new("node")
        .arg(repo().join("bins/hydra/tests/js/until_acked.js"))
        .args([
            &port.to_string(),
            tag,
            &chunks.to_string(),
            &per.to_string(),
            &secs.to_string(),
        ])
        .env("NODE_PATH", node_modules())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// hydra-cat sending `{"n": from..to, "pad": ...}` (`pad` bytes) as `tag`,
/// 100 events a chunk, each acked within 60 s; whether all were.
fn send_padded(port: u16, from: u64, to: u64, pad: usize, tag: &str) -> bool {
    let pad = "p".repeat(pad);
    let input: String = (from..to)
        .map(|i| format!("{{\"n\":{i},\"pad\":\"{pad}\"}}\n"))
        .collect();
    send_lines(port, &input, 100, 60, tag)
}

/// How many distinct `n` of `tag` arrived, and how many arrived twice.
fn tally(rx: &Receiver, tag: &str) -> (usize, usize) {
    // The receiver waits while the lock is held: count after it is let go.
    let all: Vec<u64> = rx
        .tagged
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| t == tag)
        .map(|(_, n)| *n)
        .collect();
    let distinct: BTreeSet<u64> = all.iter().copied().collect();
    (distinct.len(), all.len() - distinct.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn an_outage_then_kill_9_loses_no_stored_or_received_event() {
    // The aggregator is down. The npm client gets its 2,000 acks (acked
    // once stored on disk, the default with `buffer.disk`); Python's
    // fluent-logger sends 20,000 events without acks and none of its
    // emits fails. Once the monitor counts all 22,000 received, hydra is
    // killed; started again with the aggregator up, it delivers them all.
    let dir = tempfile::tempdir().unwrap();
    let (fwd, mon, agg) = (free_port(), free_port(), free_port());
    let config = disk_config(dir.path(), fwd, mon, agg, "");
    let h = Hydra::start(dir.path(), &config);
    let npm = npm_acked(fwd, "npm", 40, 50, 60);
    let py = python_no_ack(fwd, "py", 0, 20_000);
    let npm_out = npm.wait_with_output().unwrap();
    assert!(
        npm_out.status.success(),
        "the npm client: {}",
        String::from_utf8_lossy(&npm_out.stderr)
    );
    let acked = String::from_utf8_lossy(&npm_out.stdout)
        .lines()
        .filter(|l| l.starts_with("ACKED"))
        .count();
    assert_eq!(acked, 2_000);
    assert_eq!(failed_emits(py), 0, "an emit failed");
    assert!(
        wait(30, || stats(mon)["receiver"]["messages"].as_u64()
            == Some(22_000)),
        "received {}",
        stats(mon)["receiver"]["messages"]
    );
    println!("disk buffer before the kill: {}", stats(mon)["disk"]);
    h.signal("KILL");
    drop(h);
    let rx = Receiver::start_on(agg, Behaviour::Ack).await;
    let h = Hydra::start(dir.path(), &config);
    let done = wait(60, || {
        tally(&rx, "npm").0 == 2_000 && tally(&rx, "py.e").0 == 20_000
    });
    let (npm_got, npm_dup) = tally(&rx, "npm");
    let (py_got, py_dup) = tally(&rx, "py.e");
    println!(
        "outage and kill -9: npm 2000 acked, {npm_got} delivered, {npm_dup} twice; python 20000 sent, {py_got} delivered, {py_dup} twice"
    );
    assert!(done, "npm {npm_got} of 2000, python {py_got} of 20000");
    assert!(wait(10, || stats(mon)["disk"]["chunks"].as_u64() == Some(0)));
    assert!(h.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn damage_is_found_by_check_and_costs_only_the_damaged_records() {
    // 10,000 events stored while the aggregator is away, hydra stopped.
    // 64 bytes overwritten in the middle of the largest file and 100
    // random bytes appended: `hydra buffer check` says clean before and
    // damaged after; hydra starts, counts the damage, and delivers every
    // event outside the damaged record.
    let dir = tempfile::tempdir().unwrap();
    let (fwd, mon, agg) = (free_port(), free_port(), free_port());
    let config = disk_config(dir.path(), fwd, mon, agg, "");
    let h = Hydra::start(dir.path(), &config);
    assert!(send_numbered(fwd, 0, 10_000, 500, 10, "dmg"));
    assert!(h.stop().success());
    let buffer = dir.path().join("buffer");
    let check = || {
        Command::new(hydra_bin())
            .args(["buffer", "check"])
            .arg(&buffer)
            .output()
            .unwrap()
    };
    let before = check();
    assert_eq!(
        before.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&before.stdout)
    );
    let largest = std::fs::read_dir(&buffer)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "chunk"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut data = std::fs::read(&largest).unwrap();
    let mid = data.len() / 2;
    data[mid..mid + 64].fill(0x5a);
    data.extend((0..100u32).map(|i| u8::try_from(i * 37 % 251).unwrap()));
    std::fs::write(&largest, &data).unwrap();
    let after = check();
    println!(
        "hydra buffer check after the damage:\n{}",
        String::from_utf8_lossy(&after.stdout)
    );
    assert_eq!(after.status.code(), Some(1));
    let rx = Receiver::start_on(agg, Behaviour::Ack).await;
    let h = Hydra::start(dir.path(), &config);
    wait(20, || stats(mon)["disk"]["chunks"].as_u64() == Some(0));
    let (got, dup) = tally(&rx, "dmg");
    let corrupt = stats(mon)["disk"]["corrupt_records"].as_u64().unwrap_or(0);
    println!("damage: {got} of 10000 delivered, {dup} twice, {corrupt} corrupt records counted");
    assert!(got >= 7_500, "{got} delivered");
    assert!(
        got >= 10_000 - 2 * 1_100,
        "more than the damaged records lost: {got}"
    );
    assert!(corrupt >= 1);
    assert!(buffer.join("corrupt").read_dir().unwrap().count() >= 1);
    assert_eq!(
        check().status.code(),
        Some(0),
        "damage set aside, the rest delivered"
    );
    assert!(h.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_second_hydra_on_the_same_buffer_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let (fwd, mon, agg) = (free_port(), free_port(), free_port());
    let h = Hydra::start(dir.path(), &disk_config(dir.path(), fwd, mon, agg, ""));
    let other = dir.path().join("other.yaml");
    std::fs::write(
        &other,
        disk_config(dir.path(), free_port(), free_port(), agg, ""),
    )
    .unwrap();
    let out = Command::new(hydra_bin())
        .arg("--config")
        .arg(&other)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    println!("second hydra: {}", err.trim());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains(&dir.path().join("buffer").display().to_string()),
        "{err}"
    );
    assert!(err.contains(&format!("pid {}", h.child.id())), "{err}");
    assert!(h.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_reload_hands_the_buffer_over_and_refuses_a_new_path() {
    // Stored while the aggregator is away; a reload with the same path
    // keeps serving and later delivers everything once; one with another
    // path is refused and the running pipeline goes on.
    let dir = tempfile::tempdir().unwrap();
    let (fwd, mon, agg) = (free_port(), free_port(), free_port());
    let config = disk_config(dir.path(), fwd, mon, agg, "");
    let h = Hydra::start(dir.path(), &config);
    assert!(send_numbered(fwd, 0, 2_000, 100, 10, "rl"));
    h.signal("HUP");
    assert!(
        h.wait_log("Reloaded.", 20),
        "{:?}",
        h.stderr.lock().unwrap()
    );
    assert!(send_numbered(fwd, 2_000, 4_000, 100, 10, "rl"));
    let moved = config.replace("/buffer\n", "/elsewhere\n");
    std::fs::write(&h.config, moved).unwrap();
    h.signal("HUP");
    assert!(wait(20, || stats(mon)["reload_failures"].as_u64() == Some(1)));
    let refusal = h
        .stderr
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("buffer.disk cannot change"));
    assert!(refusal, "{:?}", h.stderr.lock().unwrap());
    assert!(send_numbered(fwd, 4_000, 5_000, 100, 10, "rl"));
    let rx = Receiver::start_on(agg, Behaviour::Ack).await;
    let done = wait(30, || tally(&rx, "rl").0 == 5_000);
    let (got, dup) = tally(&rx, "rl");
    println!("reloads: 5000 sent, {got} delivered, {dup} twice");
    assert!(done && dup == 0, "{got} delivered, {dup} twice");
    assert!(!dir.path().join("elsewhere").exists());
    assert!(h.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn after_a_restart_stored_chunks_go_first_with_their_ids() {
    let dir = tempfile::tempdir().unwrap();
    let (fwd, mon, agg) = (free_port(), free_port(), free_port());
    let config = disk_config(dir.path(), fwd, mon, agg, "");
    let h = Hydra::start(dir.path(), &config);
    assert!(send_numbered(fwd, 0, 3_000, 300, 10, "first"));
    assert!(h.stop().success());
    let ids: BTreeSet<String> = std::fs::read_dir(dir.path().join("buffer"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".chunk")?;
            Some(stem.split_once('-')?.1.to_owned())
        })
        .collect();
    assert!(!ids.is_empty());
    let rx = Receiver::start_on(agg, Behaviour::Ack).await;
    let h = Hydra::start(dir.path(), &config);
    assert!(send_numbered(fwd, 0, 500, 100, 10, "later"));
    assert!(wait(20, || tally(&rx, "first").0 == 3_000
        && tally(&rx, "later").0 == 500));
    let tagged = rx.tagged.lock().unwrap().clone();
    let first_later = tagged.iter().position(|(t, _)| t == "later").unwrap();
    let last_first = tagged.iter().rposition(|(t, _)| t == "first").unwrap();
    assert!(
        last_first < first_later,
        "a stored chunk was sent after a new one"
    );
    let sent: BTreeSet<String> = rx.chunk_ids.lock().unwrap().iter().cloned().collect();
    assert!(ids.is_subset(&sent), "stored ids {ids:?}, sent {sent:?}");
    // In order within the tag.
    let firsts: Vec<u64> = tagged
        .iter()
        .filter(|(t, _)| t == "first")
        .map(|(_, n)| *n)
        .collect();
    assert!(firsts.windows(2).all(|w| w[0] < w[1]), "out of order");
    assert!(h.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn kill_9_at_random_moments_while_the_aggregator_flaps() {
    // 20 kills at random moments; an acked client (hydra-cat, `ack:
    // stored`, resending what was not acked) and a no-ack one (each frame
    // counted by the monitor before the kill) send throughout; the
    // aggregator goes away and comes back. Every acked event and every
    // event the monitor counted is delivered; repeats are counted.
    let kills = 20;
    let dir = tempfile::tempdir().unwrap();
    let (fwd, fwd2, mon, agg) = (free_port(), free_port(), free_port(), free_port());
    let config = disk_config_with(dir.path(), &[fwd, fwd2], mon, agg, "");
    let no_ack_received = || stats(mon)["listeners"][1]["messages"].as_u64().unwrap_or(0);
    let mut h = Hydra::start(dir.path(), &config);
    let acked_to: u64 = if soak() { 50_000 } else { 6_000 };
    let acked = std::thread::spawn(move || forward_client(fwd, 0, acked_to));
    // The aggregator's runs: stopped ones keep what they received.
    let mut runs = vec![Receiver::start_on(agg, Behaviour::Ack).await];
    let mut up = true;
    let mut counted = 0u64;
    let mut sent_no_ack = 0u64;
    for k in 0..kills {
        // No-ack events on an input of their own: what its counter says
        // it received before the kill must all be delivered.
        let before = no_ack_received();
        let py = python_no_ack(fwd2, "noack", sent_no_ack, 200);
        assert_eq!(failed_emits(py), 0);
        sent_no_ack += 200;
        wait(5, || no_ack_received() >= before + 200);
        counted += no_ack_received() - before;
        if k % 5 == 2 && up {
            runs.last().unwrap().stop();
            up = false;
        } else if !up {
            runs.push(Receiver::start_on(agg, Behaviour::Ack).await);
            up = true;
        }
        std::thread::sleep(Duration::from_millis(rand::random::<u64>() % 300));
        h.signal("KILL");
        drop(h);
        h = Hydra::start(dir.path(), &config);
    }
    acked.join().unwrap();
    if !up {
        runs.push(Receiver::start_on(agg, Behaviour::Ack).await);
    }
    let all = |tag: &str| -> (usize, usize) {
        let got: Vec<u64> = runs
            .iter()
            .flat_map(|r| r.tagged.lock().unwrap().clone())
            .filter(|(t, _)| t == tag)
            .map(|(_, n)| n)
            .collect();
        let distinct: BTreeSet<u64> = got.iter().copied().collect();
        (distinct.len(), got.len() - distinct.len())
    };
    let done = wait(60, || {
        all("fwd").0 as u64 == acked_to && all("noack.e").0 as u64 >= counted
    });
    let (a, a_dup) = all("fwd");
    let (n, n_dup) = all("noack.e");
    println!(
        "kill -9 loop ({kills} kills, aggregator flapping): acked {acked_to}, delivered {a}, {a_dup} twice; no-ack counted {counted}, delivered {n}, {n_dup} twice"
    );
    assert!(done, "acked {a} of {acked_to}, no-ack {n} of {counted}");
    assert!(h.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_long_outage_keeps_clients_going_and_memory_flat() {
    // The aggregator is down for the whole send: Python's fluent-logger
    // without acks and the npm client with acks send 50 MB between them.
    // No client blocks or fails, hydra's memory stays within its memory
    // buffer and 32 MiB, and once the aggregator comes up everything
    // arrives, in order per tag.
    let dir = tempfile::tempdir().unwrap();
    let (fwd, mon, agg) = (free_port(), free_port(), free_port());
    let extra = if soak() { "    max_bytes: 4GiB\n" } else { "" };
    let config = disk_config(
        dir.path(),
        fwd,
        mon,
        agg,
        &format!("{extra}  max_bytes: 16MiB\n"),
    );
    let h = Hydra::start(dir.path(), &config);
    let py_events: u64 = if soak() { 2_100_000 } else { 52_000 };
    let started = Instant::now();
    let py = python_no_ack_padded(fwd, "py", 0, py_events, 1_000);
    let npm = npm_acked(fwd, "npm", 100, 50, 300);
    assert_eq!(failed_emits(py), 0, "an emit failed");
    let npm_out = npm.wait_with_output().unwrap();
    assert!(
        npm_out.status.success(),
        "{}",
        String::from_utf8_lossy(&npm_out.stderr)
    );
    let sent_in = started.elapsed();
    let disk = stats(mon)["disk"].clone();
    let peak = peak_rss_mib(h.child.id());
    println!("long outage: sent in {sent_in:.1?}, disk {disk}, peak RSS {peak:.1} MiB");
    assert!(disk["bytes"].as_u64().unwrap() > 50_000_000, "{disk}");
    assert!(peak <= 16.0 + 32.0, "peak RSS {peak:.1} MiB");
    let rx = Receiver::start_on(agg, Behaviour::Ack).await;
    let drained = Instant::now();
    // 2 GiB in the soak profile.
    let done = wait(if soak() { 900 } else { 120 }, || {
        tally(&rx, "py.e").0 as u64 == py_events && tally(&rx, "npm").0 == 5_000
    });
    println!(
        "long outage: drained in {:.1?}, python {}, npm {}",
        drained.elapsed(),
        tally(&rx, "py.e").0,
        tally(&rx, "npm").0
    );
    assert!(done);
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for (tag, n) in rx
        .tagged
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| t == "py.e")
    {
        if let Some(prev) = last.insert(tag.clone(), *n) {
            assert!(*n > prev, "{tag}: {n} after {prev}");
        }
    }
    assert!(h.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_full_file_system_makes_clients_wait_and_loses_nothing() {
    // hydra runs in a mount namespace of its own whose buffer directory is
    // an 8 MiB tmpfs, mostly taken by another file. Acked events beyond
    // what fits wait (the file system says ENOSPC), hydra keeps running and
    // counts it; once the other file goes, they are written and acked, and
    // all of them are delivered.
    let dir = tempfile::tempdir().unwrap();
    let (fwd, mon, agg) = (free_port(), free_port(), free_port());
    let buffer = dir.path().join("buffer");
    std::fs::create_dir(&buffer).unwrap();
    let path = dir.path().join("hydra.yaml");
    std::fs::write(&path, disk_config(dir.path(), fwd, mon, agg, "")).unwrap();
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs -o size=8m tmpfs \"$0\" && exec \"$1\" --config \"$2\"")
        .arg(&buffer)
        .arg(hydra_bin())
        .arg(&path);
    let h = Hydra::spawn(command, path);
    // Its view of the directory, from outside its namespace.
    let inside = Path::new("/proc")
        .join(h.child.id().to_string())
        .join("root")
        .join(buffer.strip_prefix("/").unwrap());
    std::fs::write(inside.join("filler"), vec![0u8; 7 << 20]).unwrap();
    // 4 MB of acked events: more than the room left.
    let sender = std::thread::spawn(move || send_padded(fwd, 0, 4_000, 1_000, "full"));
    assert!(
        wait(20, || stats(mon)["disk"]["failing_waits"]
            .as_u64()
            .unwrap_or(0)
            > 0),
        "no write met a full file system: {}",
        stats(mon)["disk"]
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(!sender.is_finished(), "the client was not held back");
    assert!(
        h.child.id() > 0 && std::fs::metadata(&inside).is_ok(),
        "hydra stopped"
    );
    let while_full = stats(mon)["disk"].clone();
    std::fs::remove_file(inside.join("filler")).unwrap();
    assert!(
        sender.join().unwrap(),
        "not every chunk was acked once there was room"
    );
    let rx = Receiver::start_on(agg, Behaviour::Ack).await;
    let done = wait(30, || tally(&rx, "full").0 == 4_000);
    println!(
        "full disk: while full {while_full}; delivered {:?} of 4000",
        tally(&rx, "full")
    );
    assert!(done);
    assert!(h.stop().success());
}
