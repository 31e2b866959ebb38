//! CPU and memory of a process and its children, from /proc.
//!
//! Peak memory is the high-water mark, as `/usr/bin/time -v` reports it:
//! a thread samples the resident memory of the agent and every process
//! under it every [`PEAK_EVERY`], and the kernel's own mark (`VmHWM`) of
//! each process it saw catches what falls between two samples. An agent
//! started through a shell that does not `exec` is measured whole.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the peak sampler reads resident memory.
pub const PEAK_EVERY: Duration = Duration::from_millis(5);

/// How often the sampler looks for new children.
const CHILDREN_EVERY: Duration = Duration::from_millis(100);

/// User + system CPU seconds of `pid` and its children.
pub fn cpu_seconds(pid: u32) -> f64 {
    tree(pid)
        .iter()
        .map(|p| hydra_stats::read_process(&p.to_string()).cpu_seconds)
        .sum()
}

/// `pid` and every process under it.
fn tree(pid: u32) -> BTreeSet<u32> {
    let mut all = BTreeSet::from([pid]);
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                if all.insert(c) {
                    todo.push(c);
                }
            }
        }
    }
    all
}

/// `VmRSS` and `VmHWM` of `pid`, KiB; zeros once it is gone. Only
/// `status` is read: `hydra_stats::read_process` also lists every open
/// descriptor, too much every 5 ms for an agent following 1,000 files.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Samples a process tree while a run goes on: CPU over the window, the
/// peak resident memory every [`PEAK_EVERY`], and the resident memory
/// every time [`Sampler::sample`] is called (for the steady figure).
pub struct Sampler {
    pid: u32,
    start: Instant,
    cpu0: f64,
    rss: Vec<f64>,
    peak_kib: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling `pid` and its children.
    pub fn new(pid: u32) -> Self {
        let peak_kib = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak_kib, done) = (peak_kib.clone(), done.clone());
            std::thread::spawn(move || {
                let mut procs = tree(pid);
                let mut looked = Instant::now();
                while !done.load(Ordering::Relaxed) {
                    if looked.elapsed() >= CHILDREN_EVERY {
                        procs.extend(tree(pid));
                        looked = Instant::now();
                    }
                    let (mut total, mut marks) = (0, 0);
                    for &p in &procs {
                        let (rss, hwm) = rss_kib(p);
                        total += rss;
                        marks = u64::max(marks, hwm);
                    }
                    peak_kib.fetch_max(total.max(marks), Ordering::Relaxed);
                    std::thread::sleep(PEAK_EVERY);
                }
            })
        };
        Sampler {
            pid,
            start: Instant::now(),
            cpu0: cpu_seconds(pid),
            rss: Vec::new(),
            peak_kib,
            done,
            thread: Some(thread),
        }
    }
    /// Takes one resident-memory sample for the steady figure.
    pub fn sample(&mut self) {
        let total: u64 = tree(self.pid).iter().map(|&p| rss_kib(p).0).sum();
        self.rss.push(mib(total));
    }
    /// The peak resident memory so far, MiB.
    pub fn peak_so_far(&self) -> f64 {
        mib(self.peak_kib.load(Ordering::Relaxed))
    }
    /// Samples until `until` returns true or `limit` passes.
    pub fn watch(&mut self, limit: Duration, mut until: impl FnMut() -> bool) {
        let end = Instant::now() + limit;
        while Instant::now() < end && !until() {
            self.sample();
            std::thread::sleep(Duration::from_millis(100));
        }
        self.sample();
    }
    /// (CPU % of one core over the window, peak RSS, steady RSS = median of
    /// the second half of the samples), RSS in MiB.
    pub fn finish(mut self) -> (f64, f64, f64) {
        let wall = self.start.elapsed().as_secs_f64().max(1e-9);
        let cpu = (cpu_seconds(self.pid) - self.cpu0) / wall * 100.0;
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let peak = mib(self.peak_kib.load(Ordering::Relaxed));
        let mut half: Vec<f64> = self.rss[self.rss.len() / 2..].to_vec();
        half.sort_by(f64::total_cmp);
        let steady = half.get(half.len() / 2).copied().unwrap_or(0.0);
        (cpu, peak, steady)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}
