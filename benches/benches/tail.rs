//! File tailing throughput and idle cost.
//!
//! - `read`: a file of 100-byte lines read from the head into batches,
//!   against `wc -l` on the same file in the same run;
//! - `idle`: CPU used while watching 1,000 quiet files.
//!
//! `cargo bench --bench tail` runs 1 GB and 60 s; under `cargo test` it runs
//! a small smoke version that checks the counting.
#![allow(clippy::print_stderr, clippy::unwrap_used)] // a benchmark prints; a broken one stops

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use hydra_tail::{Source, TailConfig, Tailer};

fn cpu_seconds() -> f64 {
    // utime and stime, fields 14 and 15 of /proc/self/stat, in clock ticks.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_comm.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn read_bench(bytes: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.log");
    let line = format!("{}\n", "x".repeat(99));
    let lines = bytes / 100;
    {
        let mut f =
            std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap());
        for _ in 0..lines {
            f.write_all(line.as_bytes()).unwrap();
        }
    }
    // Warm the page cache and time wc -l on the same file.
    let _ = std::fs::read(&path).map(|v| v.len());
    let start = Instant::now();
    let wc = Command::new("wc").arg("-l").arg(&path).output().unwrap();
    let wc_time = start.elapsed();
    let wc_lines: u64 = String::from_utf8_lossy(&wc.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(wc_lines, lines);

    let config = TailConfig {
        sources: vec![Source::new(path.to_str().unwrap()).read_from_head(true)],
        read_buffer: 1 << 20,
        ..TailConfig::default()
    };
    let start = Instant::now();
    let (tailer, mut rx) = Tailer::start(config).unwrap();
    let committer = tailer.committer();
    let mut got = 0u64;
    while got < lines {
        let batch = rx.blocking_recv().unwrap();
        got += batch.lines.len() as u64;
        committer.commit(batch.file, batch.end_offset);
    }
    let t = start.elapsed();
    assert_eq!(got, lines);
    let mb = bytes as f64 / 1e6;
    eprintln!(
        "tail/read {bytes} bytes, {lines} lines: {:.2} s, {:.1} M lines/s, {:.0} MB/s | wc -l: {:.2} s, {:.1} M lines/s, {:.0} MB/s | ratio {:.2}",
        t.as_secs_f64(),
        lines as f64 / t.as_secs_f64() / 1e6,
        mb / t.as_secs_f64(),
        wc_time.as_secs_f64(),
        lines as f64 / wc_time.as_secs_f64() / 1e6,
        mb / wc_time.as_secs_f64(),
        wc_time.as_secs_f64() / t.as_secs_f64(),
    );
}

fn idle_bench(files: usize, secs: u64) {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..files {
        std::fs::write(dir.path().join(format!("f{i:04}.log")), "x\n").unwrap();
    }
    let glob = format!("{}/*.log", dir.path().display());
    let (tailer, mut rx) = Tailer::start(TailConfig {
        sources: vec![Source::new(&glob)],
        ..TailConfig::default()
    })
    .unwrap();
    // Let discovery finish.
    let settle = Instant::now() + Duration::from_secs(2);
    while tailer.stats().len() < files && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(tailer.stats().len(), files);
    let before = cpu_seconds();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let used = cpu_seconds() - before;
    let wall = start.elapsed().as_secs_f64();
    assert!(rx.try_recv().is_err(), "quiet files produced lines");
    eprintln!(
        "tail/idle {files} files for {wall:.0} s: {used:.2} CPU s, {:.3}% of one core",
        used / wall * 100.0
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    if full {
        read_bench(1_000_000_000);
        idle_bench(1000, 60);
    } else {
        read_bench(10_000_000);
        idle_bench(1000, 1);
    }
}
