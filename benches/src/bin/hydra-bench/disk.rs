//! The disk buffer's scenarios:
//! - `disk_write`: the disk's own sequential write bandwidth with
//!   fdatasync (`dd bs=1M conv=fdatasync`), the ceiling `tcp_disk_tcp` is
//!   held to beside `tcp_to_tcp`;
//! - `tcp_disk_tcp`: `tcp_to_tcp` through the disk buffer, acked once
//!   stored (`ack: stored`, `sync: 1s`);
//! - `sync_always`: ten acked clients sending small chunks with `sync:
//!   always`: chunks and syncs per second;
//! - `disk_outage`: the aggregator down while a client sends, a 16 MiB
//!   memory buffer: memory while the bytes wait on disk, then the drain.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hydra_benches::load;
use hydra_benches::measure::Sampler;
use hydra_benches::receiver::{self, Counts};
use hydra_benches::report::Row;

use super::{Agent, Env, free_port, send_for, stop_agent, tcp_run, wait_count};

/// An agent's disk buffer for a scenario.
pub(crate) struct Setup {
    pub(crate) dir: PathBuf,
    /// `1s`, or `always`.
    pub(crate) sync: &'static str,
    /// The memory buffer's size.
    pub(crate) memory: &'static str,
    /// Where hydra serves its monitor.
    pub(crate) monitor: Option<u16>,
}

impl Setup {
    fn new(dir: &Path, sync: &'static str, memory: &'static str) -> Setup {
        // What earlier scenarios left to write back would otherwise be
        // written during this one, and counted against it.
        let _ = Command::new("sync").status();
        Setup {
            dir: dir.join("buffer"),
            sync,
            memory,
            monitor: Some(free_port()),
        }
    }

    /// hydra's configuration lines.
    pub(crate) fn yaml(&self) -> String {
        let monitor = self
            .monitor
            .map(|p| format!("monitor:\n  listen: 127.0.0.1:{p}\n"))
            .unwrap_or_default();
        format!(
            "buffer:\n  max_bytes: {}\n  disk:\n    path: {}\n    max_bytes: 8GiB\n    sync: {}\n{monitor}",
            self.memory,
            self.dir.display(),
            self.sync
        )
    }

    /// What another agent's command gets.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "HYDRA_BENCH_DISK_DIR".into(),
                self.dir.display().to_string(),
            ),
            ("HYDRA_BENCH_DISK_SYNC".into(), self.sync.into()),
            ("HYDRA_BENCH_MEMORY".into(), self.memory.into()),
            (
                "HYDRA_BENCH_MONITOR_PORT".into(),
                self.monitor.map(|p| p.to_string()).unwrap_or_default(),
            ),
        ]
    }

    /// A figure of hydra's monitor (`disk.<key>`), 0 when there is none.
    fn disk_figure(&self, key: &str) -> u64 {
        let Some(port) = self.monitor else { return 0 };
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return 0;
        };
        use std::io::{Read, Write};
        let _ = write!(s, "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        // A flat look-up: `"disk":{..."key":N`.
        body.split("\"disk\":")
            .nth(1)
            .and_then(|d| d.split(&format!("\"{key}\":")).nth(1))
            .and_then(|v| v.split([',', '}']).next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// The disk's sequential write bandwidth with fdatasync, where the
/// scenarios keep their buffers: `mib` MiB written by dd.
pub(crate) fn disk_write(mib: u64) -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("dd");
    let started = Instant::now();
    let ok = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", file.display()))
        .args([
            "bs=1M",
            &format!("count={mib}"),
            "conv=fdatasync",
            "status=none",
        ])
        .status()
        .is_ok_and(|s| s.success());
    let secs = started.elapsed().as_secs_f64();
    let mb_per_s = if ok {
        (mib << 20) as f64 / 1e6 / secs
    } else {
        0.0
    };
    Row {
        scenario: "disk_write".into(),
        agent: "dd".into(),
        delivered_per_s: mb_per_s * 1e6 / 100.0,
        mb_per_s,
        note: format!(
            "dd bs=1M count={mib} conv=fdatasync: {mb_per_s:.0} MB/s, as 100-byte events {:.2} M/s",
            mb_per_s * 1e4 / 1e6
        ),
        ..Row::default()
    }
}

/// `tcp_to_tcp` through the disk buffer, acked once stored.
pub(crate) fn tcp_disk_tcp(env: &Env, agent: &Agent, secs: u64) -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    let setup = Setup::new(dir.path(), "1s", "64MiB");
    tcp_run(
        env,
        agent,
        secs,
        Some(&setup),
        "tcp_disk_tcp",
        "PackedForward in with acks once stored (ack: stored, sync: 1s), disk buffer, forward out with acks",
    )
}

/// Ten acked clients, `sync: always`: chunks acked per second, and the
/// syncs they shared.
pub(crate) fn sync_always(env: &Env, agent: &Agent, secs: u64) -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    let setup = Setup::new(dir.path(), "always", "64MiB");
    let (counts, server) = env.receiver();
    let listen = free_port();
    let child = agent.start_listening(dir.path(), server, listen, Some(&setup));
    let mut sampler = Sampler::new(child.id());
    let syncs_before = setup.disk_figure("syncs");
    let started = Instant::now();
    let acked: u64 = env.rt.block_on(async {
        let clients: Vec<_> = (0..10)
            .map(|i| tokio::spawn(small_chunks(listen, secs, i)))
            .collect();
        let mut total = 0;
        for c in clients {
            total += c.await.unwrap_or(0);
        }
        total
    });
    let elapsed = started.elapsed().as_secs_f64();
    let syncs = setup.disk_figure("syncs").saturating_sub(syncs_before);
    wait_count(&counts, acked * 10, Duration::from_secs(20), &mut sampler);
    let (cpu, peak, steady) = sampler.finish();
    stop_agent(child);
    Row {
        scenario: "sync_always".into(),
        agent: agent.name().into(),
        delivered_per_s: acked as f64 / elapsed,
        cpu,
        peak_rss: peak,
        steady_rss: steady,
        written: acked * 10,
        delivered: counts.events.load(Ordering::Relaxed),
        note: format!(
            "10 clients, chunks of 10 events, each acked once synced: {:.0} chunks/s acked, {:.0} syncs/s",
            acked as f64 / elapsed,
            syncs as f64 / elapsed
        ),
        ..Row::default()
    }
}

/// One client sending chunks of 10 events one at a time, each acked
/// before the next: chunks acked.
async fn small_chunks(port: u16, secs: u64, which: u64) -> u64 {
    let Ok(conn) = hydra_io::connect(
        &hydra_io::Target::Tcp {
            host: "127.0.0.1".into(),
            port,
        },
        None,
        Duration::from_secs(5),
    )
    .await
    else {
        return 0;
    };
    let mut client = hydra_io::Client::new(conn);
    let line = load::line(which, 100);
    let end = Instant::now() + Duration::from_secs(secs);
    let mut acked = 0;
    while Instant::now() < end {
        let mut f = hydra_forward::FrameBuilder::new(
            "bench.sync",
            hydra_forward::BatchMode::PackedForward,
            hydra_forward::TimeFormat::EventTime,
        );
        for _ in 0..10 {
            f.push_line(
                hydra_forward::EventTime::now(),
                "message",
                line.trim_end().as_bytes(),
            );
        }
        let id = hydra_forward::ChunkId::generate();
        let frame = f.finish(Some(&id), None);
        if client
            .send(&frame, Some(&id), Duration::from_secs(10))
            .await
            .is_err()
        {
            break;
        }
        acked += 1;
    }
    acked
}

/// The aggregator away while one client sends `mib` MiB with acks (once
/// stored), hydra's memory buffer 16 MiB: its memory while it all waits on
/// disk; then the aggregator comes up and the drain is timed.
pub(crate) fn disk_outage(env: &Env, agent: &Agent, mib: u64) -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    let setup = Setup::new(dir.path(), "1s", "16MiB");
    let server = free_port();
    let listen = free_port();
    let child = agent.start_listening(dir.path(), server, listen, Some(&setup));
    let mut sampler = Sampler::new(child.id());
    let events = mib * (1 << 20) / 100;
    // As fast as the agent acks them, until they are all in.
    let (sent, send_time) = env
        .rt
        .block_on(send_for(listen, 3600, events, env.stop.clone()));
    // Measured on the directory itself, for every agent alike.
    let waiting = dir_bytes(&setup.dir);
    let peak_waiting = sampler.peak_so_far();
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    env.rt
        .block_on(receiver::start_on(counts.clone(), server))
        .expect("receiver");
    wait_count(&counts, sent, Duration::from_secs(600), &mut sampler);
    let drain = started.elapsed().as_secs_f64();
    let (cpu, peak, steady) = sampler.finish();
    stop_agent(child);
    let delivered = counts.events.load(Ordering::Relaxed);
    Row {
        scenario: "disk_outage".into(),
        agent: agent.name().into(),
        delivered_per_s: delivered as f64 / drain,
        mb_per_s: delivered as f64 * 100.0 / 1e6 / drain,
        cpu,
        peak_rss: peak,
        steady_rss: steady,
        written: sent,
        delivered,
        note: format!(
            "{sent} events ({mib} MiB) sent in {send_time:.1?} with the aggregator down; {:.0} MiB on disk; peak RSS {peak_waiting:.1} MiB while they waited; drained in {drain:.1} s",
            waiting as f64 / f64::from(1 << 20)
        ),
        ..Row::default()
    }
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}
