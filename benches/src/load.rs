//! A small load library in the spirit of parallel-benchmark: workers are
//! set up before the clock starts (a barrier), each call returns a score,
//! and a run stops at its duration or when asked (SIGINT/SIGTERM), still
//! reporting what was measured.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// One worker: set up by its constructor, then called until the run ends.
pub trait Worker: Send {
    /// Does one unit of work; returns its score (lines written, events sent).
    fn call(&mut self) -> u64;
}

/// What a run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Sum of the workers' scores.
    pub score: u64,
    /// How long it ran.
    pub elapsed: Duration,
    /// Whether it was stopped before its duration.
    pub interrupted: bool,
}

/// Runs `workers` in parallel for `duration`, or until `stop` is set.
pub fn run<W: Worker + 'static>(
    workers: Vec<W>,
    duration: Duration,
    stop: &Arc<AtomicBool>,
) -> Outcome {
    let barrier = Arc::new(Barrier::new(workers.len() + 1));
    let handles: Vec<_> = workers
        .into_iter()
        .map(|mut w| {
            let (barrier, stop) = (barrier.clone(), stop.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let end = Instant::now() + duration;
                let mut score = 0;
                while Instant::now() < end && !stop.load(Ordering::Relaxed) {
                    score += w.call();
                }
                score
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let score = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    Outcome {
        score,
        elapsed: start.elapsed(),
        interrupted: stop.load(Ordering::Relaxed),
    }
}

/// A worker that appends numbered, timestamped lines at a fixed rate
/// (lines per second), in 1 ms ticks, to one file or to many in turn.
pub struct RateWriter {
    files: Vec<std::io::BufWriter<std::fs::File>>,
    /// Files written in this tick, to flush.
    touched: Vec<usize>,
    per_tick: f64,
    owed: f64,
    next: Instant,
    seq: u64,
    /// Lines are padded to this many bytes (with the newline).
    pub line_bytes: usize,
}

impl RateWriter {
    /// A writer appending to `path` at `rate` lines per second.
    pub fn new(path: &std::path::Path, rate: u64) -> std::io::Result<Self> {
        Self::many(&[path.to_owned()], rate)
    }

    /// A writer appending to `paths` in turn at `rate` lines per second in
    /// total.
    pub fn many(paths: &[std::path::PathBuf], rate: u64) -> std::io::Result<Self> {
        let files = paths
            .iter()
            .map(|p| {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?;
                Ok(std::io::BufWriter::with_capacity(1 << 16, f))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(RateWriter {
            files,
            touched: Vec::new(),
            per_tick: rate as f64 / 1000.0,
            owed: 0.0,
            next: Instant::now(),
            seq: 0,
            line_bytes: 100,
        })
    }
}

/// `ts=<unix nanos> seq=<n> ` padded with `x` to `len` bytes (newline included).
pub fn line(seq: u64, len: usize) -> String {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut l = format!("ts={ts} seq={seq} ");
    while l.len() + 1 < len {
        l.push('x');
    }
    l.push('\n');
    l
}

impl Worker for RateWriter {
    fn call(&mut self) -> u64 {
        use std::io::Write;
        let now = Instant::now();
        if now < self.next {
            std::thread::sleep(self.next - now);
        }
        self.next += Duration::from_millis(1);
        self.owed += self.per_tick;
        let n = self.owed.floor() as u64;
        self.owed -= n as f64;
        for _ in 0..n {
            let i = (self.seq % self.files.len() as u64) as usize;
            let _ = self.files[i].write_all(line(self.seq, self.line_bytes).as_bytes());
            self.touched.push(i);
            self.seq += 1;
        }
        for i in self.touched.drain(..) {
            let _ = self.files[i].flush();
        }
        n
    }
}
