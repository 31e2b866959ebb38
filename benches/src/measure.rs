//! CPU and memory of a process, from /proc.

use std::time::{Duration, Instant};

/// User + system CPU seconds of `pid`.
pub fn cpu_seconds(pid: u32) -> f64 {
    hydra_stats::read_process(&pid.to_string()).cpu_seconds
}

/// Resident memory of `pid`, MiB: `peak` for the high-water mark.
pub fn rss_mib(pid: u32, peak: bool) -> f64 {
    let p = hydra_stats::read_process(&pid.to_string());
    (if peak { p.peak_rss_bytes } else { p.rss_bytes }) as f64 / (1024.0 * 1024.0)
}

/// Samples a process every 100 ms while a run goes on.
pub struct Sampler {
    pid: u32,
    start: Instant,
    cpu0: f64,
    rss: Vec<f64>,
}

impl Sampler {
    /// Starts sampling `pid`.
    pub fn new(pid: u32) -> Self {
        Sampler {
            pid,
            start: Instant::now(),
            cpu0: cpu_seconds(pid),
            rss: Vec::new(),
        }
    }
    /// Takes one RSS sample.
    pub fn sample(&mut self) {
        self.rss.push(rss_mib(self.pid, false));
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
    /// the second half of the samples).
    pub fn finish(&self) -> (f64, f64, f64) {
        let wall = self.start.elapsed().as_secs_f64().max(1e-9);
        let cpu = (cpu_seconds(self.pid) - self.cpu0) / wall * 100.0;
        let peak = rss_mib(self.pid, true);
        let mut half: Vec<f64> = self.rss[self.rss.len() / 2..].to_vec();
        half.sort_by(f64::total_cmp);
        let steady = half.get(half.len() / 2).copied().unwrap_or(0.0);
        (cpu, peak, steady)
    }
}
