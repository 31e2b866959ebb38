//! Each way a followed file changes, and what reaches the consumer.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

mod common;

use std::fs;
use std::time::Duration;

use common::*;
use hydra_tail::{LongLines, Source, TailConfig};

#[test]
fn a_missing_file_is_waited_for_and_read_from_its_head() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("later.log");
    let c = Collector::start(fast(vec![Source::new(log.to_str().unwrap())]));
    std::thread::sleep(Duration::from_millis(100));
    append(&log, &numbered(0, 3));
    assert_lines(&c.wait_for(3), &expect_numbered(0, 3));
}

#[test]
fn files_present_at_start_are_read_from_their_end_unless_configured() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    fs::write(&log, format!("{}partial", numbered(0, 5))).unwrap();
    let c = Collector::start(fast(vec![Source::new(log.to_str().unwrap())]));
    std::thread::sleep(Duration::from_millis(150));
    append(&log, "\nline 5\n");
    // The partial line was being written when hydra started: it is read
    // whole, not cut.
    assert_eq!(
        c.wait_for(2),
        vec!["partial".to_owned(), "line 5".to_owned()]
    );
    let c = Collector::start(fast(vec![src(&log)]));
    assert_eq!(c.wait_for(7).len(), 7);
}

#[test]
fn rename_and_create_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, &numbered(0, 100));
    let c = Collector::start(fast(vec![src(&log)]));
    c.wait_for(100);
    for round in 1..10 {
        let from = round * 100;
        // The writer keeps writing to the renamed file for a moment, as an
        // application does until it reopens.
        let mut old = fs::OpenOptions::new().append(true).open(&log).unwrap();
        fs::rename(&log, dir.path().join(format!("app.log.{round}"))).unwrap();
        use std::io::Write;
        old.write_all(numbered(from, from + 50).as_bytes()).unwrap();
        drop(old);
        append(&log, &numbered(from + 50, from + 100));
        std::thread::sleep(Duration::from_millis(30));
    }
    assert_lines(&by_number(c.wait_for(1000)), &expect_numbered(0, 1000));
    assert_ordered_per_file(&c.lines.lock().unwrap());
}

#[test]
fn rotation_inside_a_glob_is_not_read_twice() {
    // app.log is renamed to app.log.1, which the glob also matches: same
    // file, same reader.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, &numbered(0, 50));
    let glob = format!("{}/app.log*", dir.path().display());
    let c = Collector::start(fast(vec![Source::new(&glob).read_from_head(true)]));
    c.wait_for(50);
    fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, &numbered(50, 100));
    std::thread::sleep(Duration::from_millis(200));
    append(&dir.path().join("app.log.1"), &numbered(100, 110));
    assert_lines(&by_number(c.wait_for(110)), &expect_numbered(0, 110));
}

#[test]
fn copytruncate_reads_the_new_contents_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, &numbered(0, 20));
    let c = Collector::start(fast(vec![src(&log)]));
    c.wait_for(20);
    fs::copy(&log, dir.path().join("app.log.1")).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    append(&log, &numbered(20, 25));
    assert_eq!(c.wait_for(25), expect_numbered(0, 25));
    // Truncated and rewritten past the old size before hydra looks: the
    // fingerprint tells.
    let before = c.wait_stats(|s| s.len() == 1 && s[0].truncations == 1);
    assert_eq!(before[0].truncations, 1);
    fs::write(&log, numbered(100, 140)).unwrap();
    let got = c.wait_for(65);
    assert_lines(&got[25..], &expect_numbered(100, 140));
    let after = c.wait_stats(|s| s.len() == 1 && s[0].truncations == 2);
    assert_eq!(after[0].truncations, 2);
}

#[test]
fn delete_and_recreate() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, &numbered(0, 10));
    let c = Collector::start(fast(vec![src(&log)]));
    c.wait_for(10);
    fs::remove_file(&log).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    append(&log, &numbered(10, 20));
    assert_lines(&c.wait_for(20), &expect_numbered(0, 20));
}

#[test]
fn a_deleted_file_is_closed_within_rotate_wait() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("big.log");
    append(&log, &numbered(0, 10));
    let c = Collector::start(fast(vec![src(&log)]));
    c.wait_for(10);
    let held = || {
        fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| fs::read_link(e.unwrap().path()).ok())
            .any(|p| p.to_string_lossy().starts_with(log.to_str().unwrap()))
    };
    assert!(held());
    fs::remove_file(&log).unwrap();
    // rotate_wait is 300 ms; allow for polling.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while held() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!held(), "deleted file still open");
}

#[test]
fn a_symlink_whose_target_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, link) = (
        dir.path().join("a.log"),
        dir.path().join("b.log"),
        dir.path().join("current.log"),
    );
    append(&a, &numbered(0, 5));
    append(&b, &numbered(100, 105));
    std::os::unix::fs::symlink(&a, &link).unwrap();
    let c = Collector::start(fast(vec![src(&link)]));
    c.wait_for(5);
    let tmp = dir.path().join("tmp.link");
    std::os::unix::fs::symlink(&b, &tmp).unwrap();
    fs::rename(&tmp, &link).unwrap();
    append(&a, &numbered(5, 8));
    let mut expected = expect_numbered(0, 5);
    let got = c.wait_for(13);
    // The old target is drained (5..8), the new one read from its head.
    assert_eq!(got.len(), 13);
    expected.extend(expect_numbered(5, 8));
    expected.extend(expect_numbered(100, 105));
    let mut sorted = got;
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected);
}

#[test]
fn restart_resumes_from_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let positions = dir.path().join("pos.json");
    append(&log, &numbered(0, 100));
    let config = || TailConfig {
        positions: Some(positions.clone()),
        ..fast(vec![src(&log)])
    };
    let c = Collector::start(config());
    assert_eq!(c.wait_for(100).len(), 100);
    c.stop();
    append(&log, &numbered(100, 150));
    let c = Collector::start(config());
    assert_eq!(c.wait_for(50), expect_numbered(100, 150));
    // Without commits, a restart repeats only what was not committed.
    drop(c);
    append(&log, &numbered(150, 160));
    let c = Collector::start_with(config(), false);
    assert_eq!(c.wait_for(10), expect_numbered(150, 160));
    c.stop();
    let c = Collector::start(config());
    assert_eq!(c.wait_for(10), expect_numbered(150, 160));
}

#[test]
fn a_file_rotated_while_stopped_is_drained_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let positions = dir.path().join("pos.json");
    append(&log, &numbered(0, 10));
    let config = || TailConfig {
        positions: Some(positions.clone()),
        ..fast(vec![src(&log)])
    };
    Collector::start(config()).wait_for(10);
    // While hydra is down: more lines, then a rotation.
    append(&log, &numbered(10, 20));
    fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, &numbered(20, 30));
    let c = Collector::start(config());
    assert_lines(&by_number(c.wait_for(20)), &expect_numbered(10, 30));
}

#[test]
fn a_checkpoint_for_another_file_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let positions = dir.path().join("pos.json");
    append(&log, &numbered(0, 50));
    let config = || TailConfig {
        positions: Some(positions.clone()),
        ..fast(vec![src(&log)])
    };
    Collector::start(config()).wait_for(50);
    // Same inode, other contents, shorter.
    fs::write(&log, "other 1\nother 2\n").unwrap();
    let c = Collector::start(config());
    assert_eq!(c.wait_for(2), vec!["other 1", "other 2"]);
}

#[test]
fn line_edge_cases() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("edge.log");
    let mut bytes = b"crlf\r\n\n\xff\xfeinvalid\n".to_vec();
    bytes.extend(std::iter::repeat_n(b'x', 5000));
    bytes.extend_from_slice(b"\nafter long\nno newline yet");
    fs::write(&log, &bytes).unwrap();
    let config = fast(vec![Source {
        max_line_bytes: 1000,
        strip_cr: true,
        partial_flush: Some(Duration::from_millis(200)),
        ..src(&log)
    }]);
    let c = Collector::start(config);
    let lines: Vec<Vec<u8>> = {
        c.wait_for(6);
        c.lines
            .lock()
            .unwrap()
            .iter()
            .map(|(_, l)| l.clone())
            .collect()
    };
    assert_eq!(lines[0], b"crlf");
    assert_eq!(lines[1], b"");
    assert_eq!(lines[2], b"\xff\xfeinvalid");
    assert_eq!(lines[3], vec![b'x'; 1000]);
    assert_eq!(lines[4], b"after long");
    // Emitted after the flush timeout.
    assert_eq!(lines[5], b"no newline yet");
    assert_eq!(lines.len(), 6);
    let stats = c.wait_stats(|s| s.first().is_some_and(|s| s.long_lines == 1));
    assert_eq!(stats[0].long_lines, 1);

    let skip = fast(vec![Source {
        max_line_bytes: 1000,
        long_lines: LongLines::Skip,
        ..src(&log)
    }]);
    let c = Collector::start(skip);
    let got = c.wait_for(4);
    assert_eq!(got.len(), 4);
    assert_eq!(got[3], "after long");
}

#[test]
fn a_thousand_files() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..1000 {
        fs::write(
            dir.path().join(format!("f{i:04}.log")),
            format!("file {i}\n"),
        )
        .unwrap();
    }
    let glob = format!("{}/*.log", dir.path().display());
    let c = Collector::start(fast(vec![Source::new(&glob).read_from_head(true)]));
    let mut got = c.wait_for(1000);
    got.sort();
    let mut expected: Vec<String> = (0..1000).map(|i| format!("file {i}")).collect();
    expected.sort();
    assert_eq!(got, expected);
    for i in (0..1000).step_by(100) {
        append(&dir.path().join(format!("f{i:04}.log")), "more\n");
    }
    assert_eq!(c.wait_for(1010).len(), 1010);
}

#[test]
fn unreadable_paths_are_reported_and_others_keep_going() {
    let dir = tempfile::tempdir().unwrap();
    let (good, odd) = (dir.path().join("good.log"), dir.path().join("odd.log"));
    append(&odd, "odd 1\n");
    let c = Collector::start(fast(vec![src(&odd), src(&good)]));
    c.wait_for(1);
    // The file is replaced by a directory.
    fs::remove_file(&odd).unwrap();
    fs::create_dir(&odd).unwrap();
    append(&good, &numbered(0, 5));
    let got = c.wait_for(6);
    assert_eq!(got[1..], expect_numbered(0, 5)[..]);
    let stats = c.wait_stats(|s| s.iter().any(|s| s.error.is_some()));
    let odd_stats = stats
        .iter()
        .find(|s| s.path == odd && s.error.is_some())
        .unwrap();
    assert_eq!(odd_stats.error.as_deref(), Some("is a directory"));
}

#[test]
fn reading_stops_while_the_consumer_does_not_take() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, &numbered(0, 200_000));
    let config = TailConfig {
        read_buffer: 4096,
        channel_batches: 2,
        ..fast(vec![src(&log)])
    };
    let (tailer, mut rx) = hydra_tail::Tailer::start(config).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // At most the channel's batches plus the one waiting to be sent.
    let stats = tailer.stats();
    assert_eq!(stats.len(), 1, "{stats:?}");
    let position = stats[0].position;
    assert!(
        position <= 4 * 4096,
        "read {position} bytes ahead of the consumer"
    );
    let mut n = 0;
    while n < 200_000 {
        n += rx.blocking_recv().unwrap().lines.len();
    }
    assert_eq!(n, 200_000);
}

#[test]
fn copytruncate_lines_written_before_the_copy_are_read_from_the_copy() {
    // Regression: lines appended after hydra's last read and before
    // logrotate's copy exist only in the copy once the file is truncated.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, &numbered(0, 10));
    let config = TailConfig {
        use_inotify: false,
        poll_interval: Duration::from_millis(700),
        ..fast(vec![src(&log)])
    };
    let c = Collector::start(config);
    c.wait_for(10);
    // All of this happens between two polls.
    append(&log, &numbered(10, 20));
    fs::copy(&log, dir.path().join("app.log.1")).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    append(&log, &numbered(20, 25));
    assert_lines(&by_number(c.wait_for(25)), &expect_numbered(0, 25));
    assert_ordered_per_file(&c.lines.lock().unwrap());
}

/// `log` copied to `copy` and emptied, as logrotate's copytruncate does.
fn copytruncate(log: &std::path::Path, copy: &std::path::Path) {
    fs::copy(log, copy).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(log)
        .unwrap();
}

/// An empty `app.log` followed, looked at every 700 ms only: what a test
/// does right after this happens between two looks.
fn empty_file_polled_slowly() -> (tempfile::TempDir, std::path::PathBuf, Collector) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "");
    let config = TailConfig {
        use_inotify: false,
        poll_interval: Duration::from_millis(700),
        ..fast(vec![src(&log)])
    };
    let c = Collector::start(config);
    c.wait_stats(|s| s.len() == 1);
    (dir, log, c)
}

#[test]
fn regression_a_copytruncate_before_the_first_read_loses_nothing() {
    // Regression: the file was empty when hydra opened it, and was
    // written, copied, emptied and written again before its first read.
    // Its size only grew and hydra knew none of its first bytes, so no
    // truncation was seen, and the lines before the copy (only in the
    // copy) were never read: logrotate_copytruncate's lost first lines.
    let (dir, log, c) = empty_file_polled_slowly();
    // All of this happens between two polls.
    append(&log, &numbered(0, 10));
    copytruncate(&log, &dir.path().join("app.log.1"));
    append(&log, &numbered(10, 40));
    assert_lines(&by_number(c.wait_for(40)), &expect_numbered(0, 40));
    assert_ordered_per_file(&c.lines.lock().unwrap());
}

#[test]
fn a_copy_of_a_young_file_that_was_not_emptied_is_not_read() {
    // A copy of a file hydra knows little of, made without truncating it
    // (a backup): the file itself holds every line, the copy none that is
    // new.
    let (dir, log, c) = empty_file_polled_slowly();
    append(&log, &numbered(0, 3));
    fs::copy(&log, dir.path().join("app.log.bak")).unwrap();
    append(&log, &numbered(3, 6));
    assert_lines(&by_number(c.wait_for(6)), &expect_numbered(0, 6));
    std::thread::sleep(Duration::from_millis(800));
    assert_lines(&c.texts(), &expect_numbered(0, 6));
}

#[test]
fn the_copy_of_contents_read_whole_is_not_read_again_after_the_next_write() {
    // A copytruncate copied only lines already read; the file, empty after
    // it, is then written. The copy beside it is of the contents before the
    // truncation, read whole: it must not pass for a copy of the new ones.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, &numbered(0, 30));
    let c = Collector::start(fast(vec![src(&log)]));
    c.wait_for(30);
    copytruncate(&log, &dir.path().join("app.log.1"));
    c.wait_stats(|s| s.first().is_some_and(|f| f.truncations == 1));
    append(&log, &numbered(30, 35));
    assert_lines(&c.wait_for(35), &expect_numbered(0, 35));
    std::thread::sleep(Duration::from_millis(300));
    assert_lines(&c.texts(), &expect_numbered(0, 35));
}

#[test]
fn truncated_and_rewritten_to_the_same_size_between_polls() {
    // Regression: only the modification time changes; the size check
    // alone saw nothing and the new lines were never read.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, &numbered(0, 5));
    let config = TailConfig {
        use_inotify: false,
        poll_interval: Duration::from_millis(700),
        ..fast(vec![src(&log)])
    };
    let c = Collector::start(config);
    c.wait_for(5);
    fs::write(&log, numbered(5, 10)).unwrap();
    assert_eq!(
        fs::metadata(&log).unwrap().len(),
        numbered(0, 5).len() as u64
    );
    assert_lines(&c.wait_for(10), &expect_numbered(0, 10));
}

/// The effective uid, from /proc (no libc needed).
fn euid() -> u32 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn permission_denied_is_reported_and_others_keep_going() {
    // root can open anything: run this test again as `nobody`.
    if euid() == 0 && std::env::var_os("HYDRA_TEST_AS_NOBODY").is_none() {
        let me = std::env::current_exe().unwrap();
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(&me)
            .args([
                "--exact",
                "permission_denied_is_reported_and_others_keep_going",
                "--nocapture",
            ])
            .env("HYDRA_TEST_AS_NOBODY", "1")
            .output()
            .expect("setpriv (util-linux) runs the test as nobody");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("1 passed"), "{text}");
        return;
    }
    assert_ne!(euid(), 0);
    let dir = tempfile::tempdir().unwrap();
    let (good, secret) = (dir.path().join("good.log"), dir.path().join("secret.log"));
    append(&secret, "hidden\n");
    fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    let c = Collector::start(fast(vec![src(&secret), src(&good)]));
    append(&good, &numbered(0, 5));
    assert_lines(&c.wait_for(5), &expect_numbered(0, 5));
    let stats = c.wait_stats(|s| s.iter().any(|s| s.error.is_some()));
    let err = stats
        .iter()
        .find(|s| s.path == secret)
        .and_then(|s| s.error.clone())
        .unwrap();
    assert!(err.contains("Permission denied"), "{err}");
    // Readable again: followed from then on.
    fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    assert_eq!(c.wait_for(6).len(), 6);
}

/// A tailer of `log` whose consumer takes one small batch at a time, so
/// reading soon waits.
#[test]
fn a_rotated_file_is_read_to_its_end_before_the_new_one() {
    // The tailer is behind (its consumer stalled) when the file is renamed
    // and a new one written: the rest of the old file comes first, so the
    // lines arrive in the order they were written.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, &numbered(0, 20_000));
    let (tailer, mut rx) = slow_consumer_tailer(&log);
    std::thread::sleep(Duration::from_millis(300));
    fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, &numbered(20_000, 40_000));
    // Paths are looked after while reading waits: the new file is opened.
    std::thread::sleep(Duration::from_millis(500));
    let got = take_committed(&tailer, &mut rx, 40_000);
    assert_lines(&got, &expect_numbered(0, 40_000));
}

fn slow_consumer_tailer(log: &std::path::Path) -> (hydra_tail::Tailer, hydra_tail::Batches) {
    let config = TailConfig {
        read_buffer: 4096,
        channel_batches: 1,
        ..fast(vec![src(log)])
    };
    hydra_tail::Tailer::start(config).unwrap()
}

/// Takes batches (committing each) until `n` lines arrived or 20 s passed.
fn take_committed(
    tailer: &hydra_tail::Tailer,
    rx: &mut hydra_tail::Batches,
    n: usize,
) -> Vec<String> {
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while got.len() < n && std::time::Instant::now() < deadline {
        if let Ok(b) = rx.try_recv() {
            tailer.committer().commit(b.file, b.end_offset);
            got.extend(
                b.lines
                    .iter()
                    .map(|l| String::from_utf8_lossy(l).into_owned()),
            );
        } else {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    got
}

fn assert_has(got: &[String], lines: &[&str]) {
    for l in lines {
        assert!(
            got.iter().any(|g| g == l),
            "{l} missing ({} lines)",
            got.len()
        );
    }
}

#[test]
fn a_file_created_and_rotated_away_while_reading_waits_is_still_read() {
    // Regression: while the consumer did not take batches, paths were not
    // looked at, so a file created and renamed away meanwhile (to a name
    // outside the followed set) was never opened and its lines were lost.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("f.log");
    append(&log, &numbered(0, 5000));
    let (tailer, mut rx) = slow_consumer_tailer(&log);
    // Reading is now waiting for the consumer.
    std::thread::sleep(Duration::from_millis(400));
    fs::rename(&log, dir.path().join("f.log.1")).unwrap();
    append(&log, "x 0\nx 1\nx 2\n");
    std::thread::sleep(Duration::from_millis(600));
    fs::rename(&log, dir.path().join("f.log.2")).unwrap();
    append(&log, "y 0\n");
    let got = take_committed(&tailer, &mut rx, 5004);
    assert_has(&got, &["x 0", "x 1", "x 2", "y 0", "line 0", "line 4999"]);
    assert_eq!(got.len(), 5004);
}

#[test]
fn a_file_rotated_away_before_it_was_ever_seen_is_still_read() {
    // Regression: a generation created and renamed away between two looks
    // at its path (here within a millisecond, while reading waits for the
    // consumer) was never opened, and its lines were lost. The rename event
    // from the followed path now brings it in.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("f.log");
    append(&log, &numbered(0, 5000));
    let (tailer, mut rx) = slow_consumer_tailer(&log);
    std::thread::sleep(Duration::from_millis(400));
    fs::rename(&log, dir.path().join("f.log.1")).unwrap();
    append(&log, "x 0\nx 1\nx 2\n");
    fs::rename(&log, dir.path().join("f.log.2")).unwrap();
    append(&log, "y 0\n");
    let got = take_committed(&tailer, &mut rx, 5004);
    assert_has(&got, &["x 0", "x 1", "x 2", "y 0", "line 0", "line 4999"]);
    assert_eq!(got.len(), 5004, "each line once");
}

#[test]
fn reading_makes_progress_under_a_flood_of_file_events() {
    // Reading must progress while writers produce file events without
    // pause: gathering events is bounded by time, never "until the queue
    // is empty".
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<_> = (0..4)
        .map(|i| dir.path().join(format!("w{i}.log")))
        .collect();
    for p in &paths {
        fs::write(p, "").unwrap();
    }
    let glob = format!("{}/*.log", dir.path().display());
    let c = Collector::start(fast(vec![Source::new(&glob).read_from_head(true)]));
    c.wait_stats(|s| s.len() == 4);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = paths
        .iter()
        .map(|p| {
            let (p, stop) = (p.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut f = fs::OpenOptions::new().append(true).open(&p).unwrap();
                let mut i = 0u64;
                // One write per line: one event per line.
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    use std::io::Write;
                    writeln!(f, "line {i}").unwrap();
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let during = c.count();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert!(
        during > 1000,
        "only {during} lines read while the writers were writing"
    );
}

#[test]
fn regression_a_rename_under_backpressure_neither_repeats_nor_resets_the_position() {
    // Issue 16: while reading waited on a full channel, a rename to another
    // matched name (`app.log` → `app.log.1` with `app.log*`) opened the file
    // being read a second time at offset 0: every line came again, and the
    // positions went back to 0.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let lines = 20_000;
    append(&log, &numbered(0, lines));
    let glob = dir.path().join("app.log*");
    let positions = dir.path().join("pos.json");
    let config = TailConfig {
        read_buffer: 4096,
        channel_batches: 1,
        positions: Some(positions.clone()),
        ..fast(vec![
            Source::new(glob.to_str().unwrap()).read_from_head(true),
        ])
    };
    let (tailer, mut rx) = hydra_tail::Tailer::start(config).unwrap();
    // Reading now waits on the consumer; paths are looked after meanwhile.
    std::thread::sleep(Duration::from_millis(300));
    fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut got = take_committed(&tailer, &mut rx, lines);
    std::thread::sleep(Duration::from_millis(300));
    while let Ok(b) = rx.try_recv() {
        got.extend(
            b.lines
                .iter()
                .map(|l| String::from_utf8_lossy(l).into_owned()),
        );
    }
    assert_lines(&got, &expect_numbered(0, lines));
    drop(tailer);
    let saved = hydra_tail::load_positions(&positions).unwrap().unwrap();
    let size = fs::metadata(dir.path().join("app.log.1")).unwrap().len();
    assert_eq!(
        saved.files.iter().map(|p| p.offset).collect::<Vec<_>>(),
        vec![size],
        "{saved:?}"
    );
}

#[test]
fn regression_inode_reuse_and_a_rotation_inside_the_glob() {
    // Issue 16: a file renamed to another followed path was marked gone when
    // the old path was looked at after the new one, and let go after
    // `rotate_wait` while still followed; leaving that path later parked its
    // key as gone for good, and the next file with the same identity (an
    // inode reused) was let go as soon as it was read. A hard link brings
    // the same identity back at a new path on purpose, as reuse does by
    // chance.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, &numbered(0, 10));
    let glob = dir.path().join("app.log*");
    let c = Collector::start(fast(vec![
        Source::new(glob.to_str().unwrap()).read_from_head(true),
    ]));
    assert_lines(&c.wait_for(10), &expect_numbered(0, 10));
    let first = dir.path().join("app.log.1");
    fs::rename(&log, &first).unwrap();
    append(&log, "");
    // Past rotate_wait (300 ms): a followed file must still be followed.
    std::thread::sleep(Duration::from_millis(700));
    append(&first, &numbered(10, 13));
    assert_lines(&by_number(c.wait_for(13)), &expect_numbered(0, 13));
    let again = dir.path().join("app.log.7");
    fs::hard_link(&first, &again).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    fs::remove_file(&first).unwrap();
    append(&again, &numbered(13, 16));
    assert_lines(&by_number(c.wait_for(16)), &expect_numbered(0, 16));
    std::thread::sleep(Duration::from_millis(700));
    append(&again, &numbered(16, 19));
    assert_lines(&by_number(c.wait_for(19)), &expect_numbered(0, 19));
}
