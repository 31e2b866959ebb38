//! Process figures read from `/proc`.

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Process figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct System {
    /// hydra's version.
    pub version: String,
    /// Seconds since the monitor started.
    pub uptime_seconds: f64,
    /// Resident memory, bytes.
    pub rss_bytes: u64,
    /// Peak resident memory, bytes.
    pub peak_rss_bytes: u64,
    /// User + system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Threads.
    pub threads: u64,
    /// Open file descriptors.
    pub open_fds: u64,
}

/// Reads this process's figures from `/proc`.
pub fn read_system(started: Instant) -> System {
    let p = read_process("self");
    System {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_seconds: started.elapsed().as_secs_f64(),
        rss_bytes: p.rss_bytes,
        peak_rss_bytes: p.peak_rss_bytes,
        cpu_seconds: p.cpu_seconds,
        threads: p.threads,
        open_fds: p.open_fds,
    }
}

/// A process's figures from `/proc`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Process {
    /// Resident memory, bytes (`VmRSS`).
    pub rss_bytes: u64,
    /// Peak resident memory, bytes (`VmHWM`).
    pub peak_rss_bytes: u64,
    /// User + system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Threads.
    pub threads: u64,
    /// Open file descriptors.
    pub open_fds: u64,
}

/// Reads `/proc/<pid>` (`pid` a number, or `self`); zeros for what cannot
/// be read.
pub fn read_process(pid: &str) -> Process {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // The command name may hold spaces and parentheses: fields are counted
    // from the last `)`.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Process {
        rss_bytes: kib("VmRSS:") * 1024,
        peak_rss_bytes: kib("VmHWM:") * 1024,
        // utime and stime, in clock ticks of 1/100 s on Linux.
        cpu_seconds: (ticks(11) + ticks(12)) / 100.0,
        threads: kib("Threads:"),
        open_fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count() as u64)
            .unwrap_or(0),
    }
}
