//! A consumer for tests: takes batches, records lines per file path, and
//! commits what it recorded, as a real consumer commits what it delivered.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)] // a panic is how a test fails

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hydra_tail::{Source, TailConfig, Tailer};

/// Lines received, each with the file generation it came from.
pub type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

pub struct Collector {
    pub tailer: Option<Tailer>,
    pub lines: Received,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Whether to commit delivered lines.
    pub commit: bool,
}

/// Settings that make tests quick: short intervals everywhere.
pub fn fast(sources: Vec<Source>) -> TailConfig {
    TailConfig {
        sources: sources
            .into_iter()
            .map(|s| Source {
                rotate_wait: Duration::from_millis(300),
                ..s
            })
            .collect(),
        poll_interval: Duration::from_millis(20),
        refresh_interval: Duration::from_millis(50),
        checkpoint_interval: Duration::from_millis(50),
        ..TailConfig::default()
    }
}

pub fn src(path: &Path) -> Source {
    Source::new(path.to_str().unwrap()).read_from_head(true)
}

impl Collector {
    pub fn start(config: TailConfig) -> Collector {
        Self::start_with(config, true)
    }

    pub fn start_with(config: TailConfig, commit: bool) -> Collector {
        let (tailer, mut rx) = Tailer::start(config).unwrap();
        let committer = tailer.committer();
        let lines: Received = Arc::default();
        let sink = lines.clone();
        let thread = std::thread::spawn(move || {
            while let Some(batch) = rx.blocking_recv() {
                // Keyed by file generation: a renamed file's batches keep
                // its old path.
                let path = format!("{:?}", batch.file);
                {
                    let mut l = sink.lock().unwrap();
                    for line in batch.lines.iter() {
                        l.push((path.clone(), line.to_vec()));
                    }
                }
                if commit {
                    committer.commit(batch.file, batch.end_offset);
                }
            }
        });
        Collector {
            tailer: Some(tailer),
            lines,
            thread: Some(thread),
            commit,
        }
    }

    pub fn count(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    pub fn texts(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|(_, l)| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    /// Waits until at least `n` lines arrived (at most 20 s), then a little
    /// longer to catch any that should not come.
    pub fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.count() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(100));
        self.texts()
    }

    /// Waits (at most 5 s) for the tailer's stats to satisfy `f`.
    pub fn wait_stats(
        &self,
        f: impl Fn(&[hydra_tail::FileStats]) -> bool,
    ) -> Vec<hydra_tail::FileStats> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let stats = self.tailer().stats();
            if f(&stats) || Instant::now() > deadline {
                return stats;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn tailer(&self) -> &Tailer {
        self.tailer.as_ref().unwrap()
    }

    /// Stops reading, lets the consumer deliver and commit what was read,
    /// then saves positions: the order a clean shutdown follows.
    pub fn stop(mut self) -> Vec<String> {
        let mut tailer = self.tailer.take().unwrap();
        tailer.stop();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        tailer.save().unwrap();
        self.texts()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        drop(self.tailer.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Appends `text` to `path`, opening it each time like a writer that
/// reopens its log after rotation.
pub fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

pub fn numbered(from: usize, to: usize) -> String {
    (from..to).map(|i| format!("line {i}\n")).collect()
}

pub fn expect_numbered(from: usize, to: usize) -> Vec<String> {
    (from..to).map(|i| format!("line {i}")).collect()
}

/// Compares line lists, reporting the first difference rather than both
/// lists whole.
#[track_caller]
pub fn assert_lines(got: &[String], expected: &[String]) {
    if got == expected {
        return;
    }
    let first = got
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(expected.len()));
    panic!(
        "{} lines, expected {}; first difference at {first}: got {:?}, expected {:?}",
        got.len(),
        expected.len(),
        got.get(first..(first + 3).min(got.len())),
        expected.get(first..(first + 3).min(expected.len())),
    );
}

/// Sorts `line N` texts by N.
pub fn by_number(mut lines: Vec<String>) -> Vec<String> {
    lines.sort_by_key(|l| {
        l.rsplit(' ')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    });
    lines
}

/// Checks that the lines of each file arrived in the order they were
/// written (numbers increasing per path).
pub fn assert_ordered_per_file(lines: &[(String, Vec<u8>)]) {
    let mut last: std::collections::HashMap<&str, u64> = Default::default();
    for (i, (path, line)) in lines.iter().enumerate() {
        let text = String::from_utf8_lossy(line);
        let Some(n) = text.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok()) else {
            let around: Vec<_> = lines[i.saturating_sub(2)..(i + 3).min(lines.len())]
                .iter()
                .map(|(p, l)| format!("{p}: {:?}", String::from_utf8_lossy(l)))
                .collect();
            panic!("{path}: not a numbered line: {text:?}; around it: {around:?}");
        };
        if let Some(prev) = last.insert(path, n) {
            assert!(n > prev, "{path}: line {n} after line {prev}");
        }
    }
}
