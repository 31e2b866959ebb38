//! Multiline events from real files: joined across reads, emitted at the
//! flush timeout and when their file is done, and never committed half.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use hydra_tail::multiline::{Preset, Rules};
use hydra_tail::{Multiline, Source, TailConfig, load_positions};

const TRACE: &str = "2026-12-01 12:00:00 ERROR request failed
java.lang.IllegalStateException: outer
\tat com.example.App.handle(App.java:42)
Caused by: java.lang.NullPointerException: inner
\tat com.example.Inner.run(Inner.java:5)
\t... 1 more";

fn java(path: &Path, flush: Duration) -> Source {
    Source {
        multiline: Some(Multiline {
            flush_timeout: flush,
            ..Multiline::new(Rules::preset(Preset::Java).unwrap())
        }),
        ..src(path)
    }
}

fn with_positions(source: Source, positions: &Path) -> TailConfig {
    TailConfig {
        positions: Some(positions.to_owned()),
        ..fast(vec![source])
    }
}

fn saved_offset(positions: &Path) -> u64 {
    load_positions(positions).unwrap().unwrap().files[0].offset
}

#[test]
fn a_trace_written_in_pieces_is_one_event_and_the_last_is_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    fs::write(&log, "").unwrap();
    let c = Collector::start(fast(vec![java(&log, Duration::from_millis(300))]));
    let (head, tail) = TRACE.split_at(TRACE.find("Caused").unwrap());
    append(&log, "2026-12-01 11:59:59 INFO start\n");
    append(&log, head);
    // The writer pauses mid-trace for less than the flush timeout.
    std::thread::sleep(Duration::from_millis(150));
    append(&log, &format!("{tail}\n2026-12-01 12:00:01 INFO next\n"));
    let got = c.wait_for(3);
    assert_eq!(
        got,
        [
            "2026-12-01 11:59:59 INFO start",
            TRACE,
            "2026-12-01 12:00:01 INFO next"
        ]
    );
}

#[test]
fn an_event_is_committed_only_once_whole_and_a_crash_reads_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let (log, positions) = (dir.path().join("app.log"), dir.path().join("pos.json"));
    let first = "2026-12-01 11:59:59 INFO start\n";
    fs::write(&log, first).unwrap();
    // A flush timeout the test never reaches: the trace stays pending.
    let source = java(&log, Duration::from_secs(60));
    let c = Collector::start(with_positions(source.clone(), &positions));
    let lines: Vec<&str> = TRACE.lines().collect();
    append(&log, &format!("{}\n{}\n", lines[0], lines[1]));
    // The first line is emitted once the trace's first line shows it is
    // complete; the trace is read but pending.
    assert_eq!(c.wait_for(1), [first.trim_end()]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while saved_offset(&positions) != first.len() as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(saved_offset(&positions), first.len() as u64);
    let stats = c.tailer().stats();
    assert!(stats[0].position > first.len() as u64, "{stats:?}");
    // Crash mid-event, and the writer finishes the trace meanwhile.
    let mut c = c;
    c.tailer.take().unwrap().crash();
    drop(c);
    append(
        &log,
        &format!("{}\n2026-12-01 12:00:01 INFO next\n", lines[2..].join("\n")),
    );
    let c = Collector::start(with_positions(source, &positions));
    assert_eq!(c.wait_for(1), [TRACE]);
    // A clean stop leaves the last event uncommitted: the next run reads it.
    assert_eq!(c.stop(), [TRACE]);
    assert_eq!(
        saved_offset(&positions),
        (first.len() + TRACE.len() + 1) as u64
    );
}

#[test]
fn a_rotation_emits_the_old_files_event_whole_and_apart_from_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    fs::write(&log, "").unwrap();
    let c = Collector::start(fast(vec![java(&log, Duration::from_secs(60))]));
    append(&log, &format!("{TRACE}\n"));
    std::thread::sleep(Duration::from_millis(100));
    fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    // Lines that would continue a trace, in the new file: an event of
    // their own, not the end of the old file's trace.
    append(
        &log,
        "\tat com.example.Late.run(Late.java:1)\n2026-12-01 12:00:02 INFO new\n",
    );
    let got = c.wait_for(2);
    assert_eq!(
        got,
        [TRACE, "\tat com.example.Late.run(Late.java:1)"],
        "the old file's event is emitted when the file is done"
    );
}

/// Regression: when the read itself found the truncation, it went on to
/// send the new contents' lines before the old contents' last event (2 runs
/// in 20 failed).
#[test]
fn a_truncation_emits_the_old_contents_event_before_the_new_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    fs::write(&log, "").unwrap();
    let c = Collector::start(fast(vec![java(&log, Duration::from_secs(60))]));
    append(&log, &format!("{TRACE}\n"));
    c.wait_stats(|s| s.first().is_some_and(|f| f.position > 0));
    fs::write(
        &log,
        "2026-12-01 12:00:05 INFO after\n2026-12-01 12:00:06 INFO end\n",
    )
    .unwrap();
    assert_eq!(c.wait_for(2), [TRACE, "2026-12-01 12:00:05 INFO after"]);
}

/// New contents longer than the old ones: the size does not tell of the
/// truncation, the bytes before the offset do.
#[test]
fn a_truncation_to_longer_contents_emits_the_old_event_first() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    fs::write(&log, "").unwrap();
    // No periodic look: the look that inotify wakes finds the truncation.
    let config = TailConfig {
        poll_interval: Duration::from_secs(30),
        ..fast(vec![java(&log, Duration::from_secs(60))])
    };
    let c = Collector::start(config);
    append(&log, &format!("{TRACE}\n"));
    c.wait_stats(|s| s.first().is_some_and(|f| f.position > 0));
    let after: String = (0..100)
        .map(|i| format!("2026-12-01 12:00:05 INFO after {i}\n"))
        .collect();
    fs::write(&log, after).unwrap();
    let got = c.wait_for(100);
    assert_eq!(got[0], TRACE);
    assert_eq!(got[1], "2026-12-01 12:00:05 INFO after 0");
}

#[test]
fn without_positions_a_stop_hands_out_the_pending_event() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    fs::write(&log, format!("{TRACE}\n")).unwrap();
    let c = Collector::start(fast(vec![java(&log, Duration::from_secs(60))]));
    c.wait_stats(|s| s.first().is_some_and(|f| f.position > 0));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(c.texts(), Vec::<String>::new());
    assert_eq!(c.stop(), [TRACE]);
}

#[test]
fn cuts_are_counted_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let frames: String = (0..25)
        .map(|i| format!("\tat F.f{i}(F.java:1)\n"))
        .collect();
    fs::write(&log, format!("boom\n{frames}next\n")).unwrap();
    let source = Source {
        multiline: Some(Multiline {
            max_lines: 10,
            ..Multiline::new(Rules::preset(Preset::Java).unwrap())
        }),
        ..src(&log)
    };
    let c = Collector::start(fast(vec![source]));
    let got = c.wait_for(3);
    assert_eq!(
        got.iter().map(|e| e.lines().count()).collect::<Vec<_>>(),
        [10, 10, 6]
    );
    let stats = c.wait_stats(|s| s.first().is_some_and(|f| f.multiline_cuts == 2));
    assert_eq!(stats[0].multiline_cuts, 2);
}

#[test]
fn a_partial_container_line_is_committed_only_once_joined() {
    let dir = tempfile::tempdir().unwrap();
    let (log, positions) = (dir.path().join("c.log"), dir.path().join("pos.json"));
    let first = "2026-12-01T12:00:00Z stdout F one\n";
    fs::write(&log, "").unwrap();
    let source = Source {
        container: Some(hydra_tail::Container::Cri),
        partial_flush: Some(Duration::from_secs(60)),
        ..src(&log)
    };
    let c = Collector::start(with_positions(source, &positions));
    append(&log, &format!("{first}2026-12-01T12:00:01Z stderr P tw\n"));
    assert_eq!(c.wait_for(1), ["one"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while saved_offset(&positions) != first.len() as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        saved_offset(&positions),
        first.len() as u64,
        "not past the partial piece"
    );
    append(&log, "2026-12-01T12:00:01Z stderr F o\n");
    assert_eq!(c.wait_for(2), ["one", "two"]);
    let stats = c.wait_stats(|s| s.first().is_some_and(|f| f.committed == f.position));
    assert_eq!(stats[0].committed, stats[0].position);
}

#[test]
fn each_file_has_its_own_pending_event_when_writers_interleave() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    fs::write(&a, "").unwrap();
    fs::write(&b, "").unwrap();
    let pattern = dir.path().join("*.log");
    let c = Collector::start(fast(vec![java(&pattern, Duration::from_millis(300))]));
    let trace = |who: &str| {
        [
            format!("2026-12-01 ERROR {who} failed"),
            format!("java.lang.IllegalStateException: {who}"),
            format!("\tat com.example.{who}.run({who}.java:1)"),
        ]
    };
    // Line by line, in turn: a's trace and b's trace are read interleaved.
    for (la, lb) in trace("A").iter().zip(trace("B").iter()) {
        append(&a, &format!("{la}\n"));
        append(&b, &format!("{lb}\n"));
        std::thread::sleep(Duration::from_millis(40));
    }
    let mut got = c.wait_for(2);
    got.sort();
    assert_eq!(got, [trace("A").join("\n"), trace("B").join("\n")]);
}
