//! The real Debian `logrotate`, run every 100 ms while a writer appends
//! numbered lines: every line arrives exactly once. For copytruncate, lines
//! that logrotate itself destroyed (written between its copy and its
//! truncate, so in neither file) are counted apart; hydra must lose none
//! beyond those.
#![allow(clippy::unwrap_used, clippy::print_stdout)] // a test reports and panics

mod common;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use hydra_tail::{Source, TailConfig};

const LINES: usize = 20_000;

#[derive(Clone, Copy, PartialEq)]
enum Scheme {
    Create,
    CopyTruncate,
    CreateDelayCompress,
}

fn numbers_in(text: &[u8]) -> Vec<usize> {
    String::from_utf8_lossy(text)
        .lines()
        .filter_map(|l| l.strip_prefix("line ").and_then(|n| n.parse().ok()))
        .collect()
}

/// Every number still present in the log and its rotations, with the file
/// holding it; and the last line of any file that ends without a newline.
/// logrotate's copy can end in the middle of a line: a write that crosses
/// a page boundary is visible to a concurrent read one page at a time, and
/// the truncate after the copy destroys its rest. hydra delivers that
/// fragment when it lets the copy go, as it delivers any file's last line.
fn numbers_on_disk(dir: &Path) -> (HashMap<usize, String>, HashSet<Vec<u8>>) {
    let mut out = HashMap::new();
    let mut fragments = HashSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("app.log") {
            continue;
        }
        let raw = std::fs::read(&path).unwrap();
        let text = if name.ends_with(".gz") {
            let mut s = Vec::new();
            flate2::read::MultiGzDecoder::new(&raw[..])
                .read_to_end(&mut s)
                .unwrap();
            s
        } else {
            raw
        };
        if let Some(last) = text
            .rsplit(|b| *b == b'\n')
            .next()
            .filter(|l| !l.is_empty())
        {
            fragments.insert(last.to_vec());
        }
        out.extend(numbers_in(&text).into_iter().map(|n| (n, name.clone())));
    }
    (out, fragments)
}

/// The tailer as hydra runs it on an operator's defaults:
/// `read_from_head: false`, a positions file, every interval as shipped.
fn defaults(log: &Path, dir: &Path) -> TailConfig {
    TailConfig {
        sources: vec![Source::new(log.to_str().unwrap())],
        positions: Some(dir.join("positions.json")),
        ..TailConfig::default()
    }
}

fn run(scheme: Scheme) {
    run_with(scheme, |_, _| None);
}

/// `config` gives the tailer's configuration for the log and its
/// directory; `None` is the fast one the other tests use.
fn run_with(scheme: Scheme, config: impl FnOnce(&Path, &Path) -> Option<TailConfig>) {
    let which = Command::new("logrotate").arg("--version").output();
    assert!(
        which.is_ok_and(|o| o.status.success()),
        "logrotate is not installed: scripts/install-test-deps installs it"
    );
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let conf = dir.path().join("logrotate.conf");
    let mode = match scheme {
        Scheme::Create => "create\nnocompress",
        Scheme::CopyTruncate => "copytruncate\nnocompress",
        Scheme::CreateDelayCompress => "create\ncompress\ndelaycompress",
    };
    std::fs::write(
        &conf,
        format!(
            "{} {{\n rotate 10000\n missingok\n nomail\n {mode}\n}}\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::write(&log, "").unwrap();

    let c = Collector::start(config(&log, dir.path()).unwrap_or_else(|| fast(vec![src(&log)])));
    // Let the tailer open the file before the first rotation.
    c.wait_stats(|s| s.len() == 1);

    let done = Arc::new(AtomicBool::new(false));
    let rotator = {
        let (done, conf, state) = (done.clone(), conf, dir.path().join("state"));
        std::thread::spawn(move || {
            let mut rotations = 0;
            while !done.load(Ordering::Acquire) {
                let out = Command::new("logrotate")
                    .arg("-f")
                    .arg("-s")
                    .arg(&state)
                    .arg(&conf)
                    .output()
                    .unwrap();
                if out.status.success() {
                    rotations += 1;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            rotations
        })
    };
    let started = Instant::now();
    if scheme == Scheme::CopyTruncate {
        // An application that never reopens its log: the case copytruncate
        // exists for.
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        for i in 0..LINES {
            f.write_all(format!("line {i}\n").as_bytes()).unwrap();
            if i % 20 == 0 {
                std::thread::sleep(Duration::from_micros(1500));
            }
        }
    } else {
        // An application that reopens its log for each write, as one does
        // after logrotate's postrotate signal: it opens the file logrotate
        // created. (One that creates the file itself races logrotate's
        // `create`, which then moves that file aside as `*.backup`; see
        // docs/tailing.md.)
        for i in 0..LINES {
            let mut f = loop {
                match std::fs::OpenOptions::new().append(true).open(&log) {
                    Ok(f) => break f,
                    Err(_) => std::thread::sleep(Duration::from_micros(100)),
                }
            };
            f.write_all(format!("line {i}\n").as_bytes()).unwrap();
            if i % 20 == 0 {
                std::thread::sleep(Duration::from_micros(1500));
            }
        }
    }
    done.store(true, Ordering::Release);
    let rotations = rotator.join().unwrap();
    let (where_on_disk, fragments) = numbers_on_disk(dir.path());
    let on_disk: BTreeSet<usize> = where_on_disk.keys().copied().collect();
    let destroyed: BTreeSet<usize> = (0..LINES).filter(|n| !on_disk.contains(n)).collect();
    let expected = LINES - destroyed.len();

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got: BTreeSet<usize> = numbers_in(&c.texts().join("\n").into_bytes())
            .into_iter()
            .collect();
        if on_disk.is_subset(&got) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let got = numbers_in(&c.texts().join("\n").into_bytes());
    let mut seen: HashMap<usize, usize> = HashMap::new();
    for n in &got {
        *seen.entry(*n).or_default() += 1;
    }
    let duplicated = seen.values().filter(|&&k| k > 1).count();
    let lost: Vec<usize> = on_disk
        .iter()
        .copied()
        .filter(|n| !seen.contains_key(n))
        .collect();
    println!(
        "written {LINES} in {:?}, {rotations} rotations, destroyed by logrotate {}, delivered {}, lost {}, duplicated {duplicated}",
        started.elapsed(),
        destroyed.len(),
        seen.len(),
        lost.len(),
    );
    assert!(rotations >= 5, "only {rotations} rotations happened");
    let lost_in: Vec<_> = lost
        .iter()
        .take(5)
        .map(|n| (n, &where_on_disk[n]))
        .collect();
    assert!(
        lost.is_empty(),
        "lost {} lines, first {lost_in:?}",
        lost.len()
    );
    assert_eq!(duplicated, 0);
    if scheme != Scheme::CopyTruncate {
        assert!(
            destroyed.is_empty(),
            "create never destroys lines, yet {} are missing",
            destroyed.len()
        );
        assert_eq!(seen.len(), LINES);
    } else {
        assert!(seen.len() >= expected);
    }
    let lines = c.lines.lock().unwrap();
    let (fragments, whole): (Vec<_>, Vec<_>) = lines
        .iter()
        .cloned()
        .partition(|(_, l)| fragments.contains(l));
    if !fragments.is_empty() {
        println!("last lines of logrotate's copies cut short: {fragments:?}");
    }
    assert_ordered_per_file(&whole);
}

#[test]
fn logrotate_create() {
    run(Scheme::Create);
}

#[test]
fn logrotate_copytruncate() {
    run(Scheme::CopyTruncate);
}

#[test]
fn logrotate_copytruncate_on_the_defaults() {
    run_with(Scheme::CopyTruncate, |log, dir| Some(defaults(log, dir)));
}

#[test]
fn logrotate_create_on_the_defaults() {
    run_with(Scheme::Create, |log, dir| Some(defaults(log, dir)));
}

#[test]
fn logrotate_create_delaycompress() {
    run(Scheme::CreateDelayCompress);
}
