//! `hydra-bench`: the one_forward benchmark and its companions, run against
//! the built `hydra` (and any other agent given as a command).
//!
//! ```sh
//! cargo run --release -p hydra-benches --bin hydra-bench -- --quick   # < 5 min
//! cargo run --release -p hydra-benches --bin hydra-bench -- --long
//! cargo run -p hydra-benches --bin hydra-bench -- --smoke             # counting only
//! ```
//!
//! Writes `results.md`, `results.csv` and `cpu.svg`, `rss.svg`,
//! `throughput.svg` into `--out` (default `target/bench`). Exits 1 when an
//! agent delivered a different number of events than were written.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a benchmark reports
#![allow(clippy::cast_possible_truncation)] // rates become counts: small, non-negative

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use hydra_benches::load::{self, RateWriter};
use hydra_benches::measure::Sampler;
use hydra_benches::receiver::{self, Counts, percentile_ms};
use hydra_benches::report::{self, Row};

#[path = "hydra-bench/disk.rs"]
mod disk;

#[derive(Debug, Parser)]
#[command(about = "hydra's one_forward benchmark harness")]
struct Args {
    /// A few seconds per scenario, small sizes: checks counting only.
    #[arg(long, conflicts_with = "long")]
    smoke: bool,
    /// The quick set (under five minutes). The default.
    #[arg(long)]
    quick: bool,
    /// Longer runs and a 10,000,000-line peak.
    #[arg(long)]
    long: bool,
    /// The hydra binary; by default the one beside this program.
    #[arg(long)]
    hydra: Option<PathBuf>,
    /// Another agent to measure, as NAME=COMMAND, run with `sh -c`. It gets
    /// HYDRA_BENCH_FILE (file to tail), HYDRA_BENCH_READ_FROM_HEAD (0 or 1),
    /// HYDRA_BENCH_SERVER_PORT (where to forward, with acks),
    /// HYDRA_BENCH_LISTEN_PORT (where to accept Forward, tcp→tcp),
    /// HYDRA_BENCH_FORMAT (how to parse the file: none, ltsv, json or
    /// apache; multiline_java: join Java stack traces) and HYDRA_BENCH_DIR
    /// (a scratch directory); in the disk scenarios, HYDRA_BENCH_DISK_DIR
    /// (where to keep chunks on disk), HYDRA_BENCH_DISK_SYNC (`1s` or
    /// `always`), HYDRA_BENCH_MEMORY (the memory buffer's size) and
    /// HYDRA_BENCH_MONITOR_PORT (where hydra serves its monitor; others may
    /// ignore it).
    #[arg(long = "agent", value_name = "NAME=COMMAND")]
    agents: Vec<String>,
    /// Run only the scenarios whose name starts with one of these,
    /// separated by commas (one_forward, peak, format_, multiline_java,
    /// tcp_to_tcp, tcp_disk_tcp, sync_always, disk_outage, disk_write,
    /// files). disk_write runs with any disk scenario: it is their ceiling.
    #[arg(long, value_name = "PREFIX[,PREFIX...]")]
    only: Option<String>,
    /// Where results go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
}

#[derive(Clone)]
enum Agent {
    Hydra(PathBuf),
    Command(String, String),
}

impl Agent {
    fn name(&self) -> &str {
        match self {
            Agent::Hydra(_) => "hydra",
            Agent::Command(n, _) => n,
        }
    }

    /// Starts the agent for one scenario.
    fn start(
        &self,
        dir: &Path,
        file: &Path,
        head: bool,
        server: u16,
        format: &LineFormat,
    ) -> Child {
        self.start_with(dir, file, head, server, None, format, None)
    }

    /// Starts the agent accepting Forward on `listen`, with a disk buffer
    /// or without, and gives it time to listen.
    fn start_listening(
        &self,
        dir: &Path,
        server: u16,
        listen: u16,
        disk: Option<&disk::Setup>,
    ) -> Child {
        let child = self.start_with(
            dir,
            &dir.join("unused.log"),
            false,
            server,
            Some(listen),
            &PLAIN,
            disk,
        );
        std::thread::sleep(Duration::from_millis(800));
        child
    }

    /// Like [`Agent::start`], with a disk buffer.
    #[allow(clippy::too_many_arguments)]
    fn start_with(
        &self,
        dir: &Path,
        file: &Path,
        head: bool,
        server: u16,
        listen: Option<u16>,
        format: &LineFormat,
        disk: Option<&disk::Setup>,
    ) -> Child {
        match self {
            Agent::Hydra(bin) => {
                let mut inputs = format!(
                    "  - type: tail\n    path: {}\n    tag: bench\n    read_from_head: {head}\n{}",
                    file.display(),
                    format.yaml
                );
                if let Some(p) = listen {
                    inputs = format!("  - type: forward\n    listen: 127.0.0.1:{p}\n");
                }
                let extra = disk.map(disk::Setup::yaml).unwrap_or_default();
                let config = format!(
                    "inputs:\n{inputs}output:\n  type: forward\n  flush_interval: 200ms\n  servers: [{{ host: 127.0.0.1, port: {server} }}]\n{extra}log_level: warn\n"
                );
                let path = dir.join("hydra.yaml");
                std::fs::write(&path, config).expect("write config");
                Command::new(bin)
                    .arg("--config")
                    .arg(path)
                    .stdout(Stdio::null())
                    .process_group(0)
                    .spawn()
                    .expect("start hydra")
            }
            Agent::Command(_, cmd) => Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .envs(disk.map(disk::Setup::env).unwrap_or_default())
                .env("HYDRA_BENCH_FILE", file)
                .env("HYDRA_BENCH_READ_FROM_HEAD", if head { "1" } else { "0" })
                .env("HYDRA_BENCH_SERVER_PORT", server.to_string())
                .env(
                    "HYDRA_BENCH_LISTEN_PORT",
                    listen.map(|p| p.to_string()).unwrap_or_default(),
                )
                .env("HYDRA_BENCH_DIR", dir)
                .env("HYDRA_BENCH_FORMAT", format.name)
                .stdout(Stdio::null())
                // Its own group, stopped as one: `sh -c` may fork the
                // agent rather than exec it, and an agent left running
                // would skew every later figure.
                .process_group(0)
                .spawn()
                .expect("start the agent command"),
        }
    }
}

/// How the tailed lines look and how the agent is told to parse them.
struct LineFormat {
    /// `none`, `ltsv`, `json`, `apache` (also HYDRA_BENCH_FORMAT for other
    /// agents).
    name: &'static str,
    /// Lines added to hydra's tail input.
    yaml: &'static str,
    /// The line written over and over; numbered 100-byte lines when `None`.
    sample: Option<&'static [u8]>,
    /// Lines written in turn instead, and the events each turn makes.
    cycle: Option<(&'static [&'static [u8]], u64)>,
}

const PLAIN: LineFormat = LineFormat {
    name: "none",
    yaml: "",
    sample: None,
    cycle: None,
};

/// A Java application's log where one line in five is a stack-trace frame
/// that joins the error line before it: five lines, four events.
const MULTILINE_JAVA: LineFormat = LineFormat {
    name: "multiline_java",
    yaml: "    multiline:\n      preset: java\n",
    sample: None,
    cycle: Some((
        &[
            b"2026-12-01 12:00:00.000 INFO  [http-nio-8080-exec-1] c.e.OrderController - order 1 placed",
            b"2026-12-01 12:00:00.001 INFO  [http-nio-8080-exec-2] c.e.OrderController - order 2 placed",
            b"2026-12-01 12:00:00.002 INFO  [http-nio-8080-exec-3] c.e.OrderController - order 3 placed",
            b"2026-12-01 12:00:00.003 ERROR [http-nio-8080-exec-4] c.e.OrderController - order 4 failed",
            b"\tat com.example.shop.OrderController.place(OrderController.java:42)",
        ],
        4,
    )),
};

/// The Go agent's four sample lines, each with its format: what the
/// per-format parsing figures are measured on, end to end.
const FORMATS: [LineFormat; 4] = [
    LineFormat {
        name: "none",
        yaml: "",
        sample: Some(hydra_parse::samples::PLAIN),
        cycle: None,
    },
    LineFormat {
        name: "ltsv",
        yaml: "    format: ltsv\n    types: \"code:integer,size:integer\"\n",
        sample: Some(hydra_parse::samples::LTSV),
        cycle: None,
    },
    LineFormat {
        name: "json",
        yaml: "    format: json\n",
        sample: Some(hydra_parse::samples::JSON),
        cycle: None,
    },
    LineFormat {
        name: "apache",
        yaml: "    format: regexp\n    regexp: apache\n    types: \"code:integer,size:integer\"\n    time_parse: true\n",
        sample: Some(hydra_parse::samples::APACHE),
        cycle: None,
    },
];

/// Stops the agent's whole process group: SIGTERM, then SIGKILL after
/// 10 s.
fn stop_agent(mut child: Child) {
    let group = format!("-{}", child.id());
    let signal = |s: &str| {
        Command::new("kill")
            .args([s, "--", &group])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|st| st.success())
    };
    signal("-TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut reaped = false;
    while Instant::now() < deadline {
        reaped = reaped || matches!(child.try_wait(), Ok(Some(_)));
        // Signal 0 fails once no process of the group is left.
        if reaped && !signal("-0") {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    signal("-KILL");
    let _ = child.wait();
}

struct Env {
    rt: tokio::runtime::Runtime,
    stop: Arc<AtomicBool>,
}

impl Env {
    fn receiver(&self) -> (Arc<Counts>, u16) {
        let counts = Arc::new(Counts::default());
        let port = self
            .rt
            .block_on(receiver::start(counts.clone()))
            .expect("receiver");
        (counts, port)
    }
}

fn wait_count(counts: &Counts, want: u64, limit: Duration, sampler: &mut Sampler) {
    sampler.watch(limit, || counts.events.load(Ordering::Relaxed) >= want);
}

/// Runs `writer` for `secs` while sampling the agent, then waits (at most
/// 20 s) for the receiver to count everything written.
fn rated_run(
    env: &Env,
    writer: RateWriter,
    secs: u64,
    counts: &Counts,
    sampler: &mut Sampler,
) -> load::Outcome {
    let stop = env.stop.clone();
    let run = std::thread::spawn(move || load::run(vec![writer], Duration::from_secs(secs), &stop));
    while !run.is_finished() {
        sampler.sample();
        std::thread::sleep(Duration::from_millis(100));
    }
    let outcome = run.join().expect("writer thread");
    wait_count(counts, outcome.score, Duration::from_secs(20), sampler);
    outcome
}

fn one_forward(env: &Env, agent: &Agent, rate: u64, secs: u64) -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bench.log");
    std::fs::write(&file, "").expect("create file");
    let (counts, server) = env.receiver();
    let child = agent.start(dir.path(), &file, false, server, &PLAIN);
    std::thread::sleep(Duration::from_millis(800));
    let mut sampler = Sampler::new(child.id());
    let writer = RateWriter::new(&file, rate).expect("writer");
    let outcome = rated_run(env, writer, secs, &counts, &mut sampler);
    let (cpu, peak, steady) = sampler.finish();
    stop_agent(child);
    let delivered = counts.events.load(Ordering::Relaxed);
    let lat = counts
        .latencies
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    Row {
        scenario: "one_forward".into(),
        agent: agent.name().into(),
        rate,
        delivered_per_s: delivered as f64 / outcome.elapsed.as_secs_f64(),
        mb_per_s: delivered as f64 * 100.0 / 1e6 / outcome.elapsed.as_secs_f64(),
        cpu,
        peak_rss: peak,
        steady_rss: steady,
        p50_ms: percentile_ms(&lat, 50.0),
        p99_ms: percentile_ms(&lat, 99.0),
        written: outcome.score,
        delivered,
        note: if outcome.interrupted {
            "interrupted".into()
        } else {
            String::new()
        },
    }
}

fn peak(env: &Env, agent: &Agent, lines: u64, format: &LineFormat) -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bench.log");
    {
        let mut f = std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(&file).expect("create"),
        );
        for i in 0..lines {
            let _ = match (format.sample, format.cycle) {
                (Some(line), _) => f.write_all(line).and_then(|()| f.write_all(b"\n")),
                (None, Some((cycle, _))) => {
                    let line = cycle[usize::try_from(i).unwrap_or(0) % cycle.len()];
                    f.write_all(line).and_then(|()| f.write_all(b"\n"))
                }
                (None, None) => f.write_all(load::line(i, 100).as_bytes()),
            };
        }
        if let Some((cycle, _)) = format.cycle {
            // A line that starts an event: the last counted one is then
            // complete at once, not at the flush timeout.
            let _ = f.write_all(cycle[0]).and_then(|()| f.write_all(b"\n"));
        }
    }
    // The events the file holds; with a cycle, the last line starts one
    // more, emitted at the flush timeout (or the agent's stop) and so
    // counted as delivered but not timed.
    let (events, timed) = match format.cycle {
        Some((cycle, per)) => {
            let n = lines / cycle.len() as u64 * per;
            (n + 1, n)
        }
        None => (lines, lines),
    };
    let _ = std::fs::read(&file).map(|b| b.len());
    let t = Instant::now();
    let wc = Command::new("wc")
        .arg("-l")
        .arg(&file)
        .output()
        .expect("wc");
    let wc_time = t.elapsed().as_secs_f64();
    let wc_lines: u64 = String::from_utf8_lossy(&wc.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let (counts, server) = env.receiver();
    let start = Instant::now();
    let child = agent.start(dir.path(), &file, true, server, format);
    let mut sampler = Sampler::new(child.id());
    wait_count(&counts, timed, Duration::from_secs(300), &mut sampler);
    let total = start.elapsed().as_secs_f64();
    let (cpu, peak, steady) = sampler.finish();
    // Throughput from the first delivered event to the last timed one:
    // process start-up is not reading, and the stop is not either.
    let span = counts
        .span
        .lock()
        .ok()
        .and_then(|s| *s)
        .map_or(total, |(a, b)| (b - a).as_secs_f64().max(1e-6));
    stop_agent(child);
    let delivered = counts.events.load(Ordering::Relaxed);
    let line_bytes = match (format.sample, format.cycle) {
        (Some(l), _) => l.len() + 1,
        (None, Some((cycle, _))) => cycle.iter().map(|l| l.len() + 1).sum::<usize>() / cycle.len(),
        (None, None) => 100,
    } as f64;
    // Lines per second, read and delivered: for multiline, the events
    // delivered times the lines each holds on average.
    let lines_per_event = lines as f64 / timed.max(1) as f64;
    Row {
        scenario: match (format.sample, format.cycle) {
            (None, None) => "peak".into(),
            (None, Some(_)) => format.name.into(),
            (Some(_), _) => format!("format_{}", format.name),
        },
        agent: agent.name().into(),
        rate: 0,
        delivered_per_s: delivered as f64 * lines_per_event / span,
        mb_per_s: delivered as f64 * lines_per_event * line_bytes / 1e6 / span,
        cpu,
        peak_rss: peak,
        steady_rss: steady,
        written: events,
        delivered,
        note: format!(
            "{lines} lines ({events} events) from the head, acked, {span:.2} s first to last delivery, {total:.2} s with start-up; wc -l: {:.1} M lines/s ({wc_lines} lines)",
            wc_lines as f64 / wc_time / 1e6
        ),
        ..Row::default()
    }
}

fn tcp_to_tcp(env: &Env, agent: &Agent, secs: u64) -> Row {
    tcp_run(
        env,
        agent,
        secs,
        None,
        "tcp_to_tcp",
        "PackedForward in with acks, forward out with acks",
    )
}

/// A Forward client (hydra's sender, acks on) sending 1,000-event batches
/// of 100-byte lines to the agent for `secs`, as fast as it acks them.
fn tcp_run(
    env: &Env,
    agent: &Agent,
    secs: u64,
    disk: Option<&disk::Setup>,
    scenario: &str,
    note: &str,
) -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    let (counts, server) = env.receiver();
    let listen = free_port();
    let child = agent.start_listening(dir.path(), server, listen, disk);
    let mut sampler = Sampler::new(child.id());
    let (sent, elapsed) = env
        .rt
        .block_on(send_for(listen, secs, u64::MAX, env.stop.clone()));
    wait_count(&counts, sent, Duration::from_secs(20), &mut sampler);
    let (cpu, peak, steady) = sampler.finish();
    stop_agent(child);
    let delivered = counts.events.load(Ordering::Relaxed);
    Row {
        scenario: scenario.into(),
        agent: agent.name().into(),
        rate: 0,
        delivered_per_s: delivered as f64 / elapsed.as_secs_f64(),
        mb_per_s: delivered as f64 * 100.0 / 1e6 / elapsed.as_secs_f64(),
        cpu,
        peak_rss: peak,
        steady_rss: steady,
        written: sent,
        delivered,
        note: note.into(),
        ..Row::default()
    }
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// Sends 1,000-event batches of 100-byte lines to `port` with acks for
/// `secs`, `most` events at most (or until `stop`); events sent and acked,
/// and how long it took.
async fn send_for(port: u16, secs: u64, most: u64, stop: Arc<AtomicBool>) -> (u64, Duration) {
    let buffer = hydra_buffer::Buffer::new(hydra_buffer::BufferConfig {
        max_bytes: 8 << 20,
        ..hydra_buffer::BufferConfig::default()
    });
    let config = hydra_sender::SenderConfig {
        servers: vec![hydra_sender::ServerConfig::new("127.0.0.1", port)],
        ..hydra_sender::SenderConfig::default()
    };
    let sender = hydra_sender::Sender::spawn(config, buffer.clone()).expect("client");
    let line = load::line(0, 100);
    let start = Instant::now();
    let mut sent = 0u64;
    let end = start + Duration::from_secs(secs);
    while Instant::now() < end && sent < most && !stop.load(Ordering::Relaxed) {
        let t = hydra_forward::EventTime::now();
        // Bounded: an agent that never acks keeps the buffer full.
        let appended = tokio::time::timeout_at(
            end.into(),
            buffer.append("bench.tcp", 1000 * 125, 1000, None, |f| {
                for _ in 0..1000 {
                    f.push_line(t, "message", line.trim_end().as_bytes());
                }
            }),
        )
        .await;
        if appended.is_err() {
            break;
        }
        sent += 1000;
    }
    buffer.close();
    let _ = tokio::time::timeout(Duration::from_secs(60), sender.finished()).await;
    (sent, start.elapsed())
}

fn many_files(env: &Env, agent: &Agent, files: usize, rate: u64, secs: u64) -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let paths: Vec<PathBuf> = (0..files)
        .map(|i| logs.join(format!("f{i:04}.log")))
        .collect();
    let (counts, server) = env.receiver();
    let child = agent.start(dir.path(), &logs.join("*.log"), false, server, &PLAIN);
    std::thread::sleep(Duration::from_millis(1500));
    let mut sampler = Sampler::new(child.id());
    let writer = RateWriter::many(&paths, rate).expect("writers");
    let outcome = rated_run(env, writer, secs, &counts, &mut sampler);
    let (cpu, peak, steady) = sampler.finish();
    stop_agent(child);
    let delivered = counts.events.load(Ordering::Relaxed);
    Row {
        scenario: format!("files_{files}"),
        agent: agent.name().into(),
        rate,
        delivered_per_s: delivered as f64 / outcome.elapsed.as_secs_f64(),
        cpu,
        peak_rss: peak,
        steady_rss: steady,
        written: outcome.score,
        delivered,
        note: format!("{files} files, {rate} lines/s in total"),
        ..Row::default()
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let hydra = args.hydra.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .map(|p| p.with_file_name("hydra"))
            .unwrap_or_else(|_| PathBuf::from("hydra"))
    });
    if !hydra.exists() {
        eprintln!(
            "hydra-bench: {} not found: build it (cargo build --release --bins) or pass --hydra",
            hydra.display()
        );
        return std::process::ExitCode::from(2);
    }
    let mut agents = vec![Agent::Hydra(hydra)];
    for a in &args.agents {
        match a.split_once('=') {
            Some((n, c)) => agents.push(Agent::Command(n.to_owned(), c.to_owned())),
            None => {
                eprintln!("hydra-bench: --agent takes NAME=COMMAND");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        rt.spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("signal");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            eprintln!("hydra-bench: stopping early; reporting what was measured");
            stop.store(true, Ordering::Relaxed);
        });
    }
    let env = Env {
        rt,
        stop: stop.clone(),
    };
    let (rates, secs, peak_lines, files_secs): (&[u64], u64, u64, u64) = if args.smoke {
        (&[2_000], 3, 100_000, 3)
    } else if args.long {
        (
            &[1_000, 5_000, 10_000, 50_000, 100_000, 300_000],
            30,
            10_000_000,
            30,
        )
    } else {
        (
            &[1_000, 5_000, 10_000, 50_000, 100_000, 300_000],
            8,
            10_000_000,
            10,
        )
    };
    let mut rows = Vec::new();
    let wanted = |name: &str| {
        args.only
            .as_deref()
            .is_none_or(|only| only.split(',').any(|p| name.starts_with(p)))
    };
    if ["disk_write", "tcp_disk_tcp", "sync_always", "disk_outage"]
        .iter()
        .any(|s| wanted(s))
        && !stop.load(Ordering::Relaxed)
    {
        // The disk's own ceiling, for the disk scenarios beside it.
        let row = disk::disk_write(if args.smoke { 64 } else { 2048 });
        println!("disk_write: {}", row.note);
        rows.push(row);
    }
    for agent in &agents {
        for &rate in rates {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if !wanted("one_forward") {
                continue;
            }
            let row = one_forward(&env, agent, rate, secs);
            println!(
                "{}",
                report::markdown(std::slice::from_ref(&row))
                    .lines()
                    .last()
                    .unwrap_or_default()
            );
            rows.push(row);
        }
        for (what, f) in [
            (
                "peak",
                Box::new(|e: &Env, a: &Agent| peak(e, a, peak_lines, &PLAIN))
                    as Box<dyn Fn(&Env, &Agent) -> Row>,
            ),
            (
                "format_none",
                Box::new(|e: &Env, a: &Agent| peak(e, a, peak_lines / 5, &FORMATS[0])),
            ),
            (
                "format_ltsv",
                Box::new(|e: &Env, a: &Agent| peak(e, a, peak_lines / 5, &FORMATS[1])),
            ),
            (
                "format_json",
                Box::new(|e: &Env, a: &Agent| peak(e, a, peak_lines / 5, &FORMATS[2])),
            ),
            (
                "format_apache",
                Box::new(|e: &Env, a: &Agent| peak(e, a, peak_lines / 5, &FORMATS[3])),
            ),
            (
                "multiline_java",
                Box::new(|e: &Env, a: &Agent| peak(e, a, peak_lines / 5, &MULTILINE_JAVA)),
            ),
            (
                "tcp_to_tcp",
                Box::new(|e: &Env, a: &Agent| tcp_to_tcp(e, a, secs.min(10))),
            ),
            (
                "tcp_disk_tcp",
                Box::new(|e: &Env, a: &Agent| disk::tcp_disk_tcp(e, a, secs.min(10))),
            ),
            (
                "sync_always",
                Box::new(|e: &Env, a: &Agent| disk::sync_always(e, a, secs.min(10))),
            ),
            (
                "disk_outage",
                Box::new(|e: &Env, a: &Agent| {
                    disk::disk_outage(e, a, if args.smoke { 16 } else { 1024 })
                }),
            ),
            (
                "files",
                Box::new(|e: &Env, a: &Agent| {
                    many_files(
                        e,
                        a,
                        if args.smoke { 100 } else { 1000 },
                        10_000,
                        files_secs,
                    )
                }),
            ),
        ] {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if !wanted(what) {
                continue;
            }
            let row = f(&env, agent);
            println!(
                "{what}: {}",
                report::markdown(std::slice::from_ref(&row))
                    .lines()
                    .last()
                    .unwrap_or_default()
            );
            rows.push(row);
        }
    }
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("hydra-bench: {}: {e}", args.out.display());
        return std::process::ExitCode::from(2);
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let ratios = report::ratios(&rows);
    let md = format!(
        "Machine: {cores} cores, {model}.\n\n{}{}",
        report::markdown(&rows),
        if ratios.is_empty() {
            String::new()
        } else {
            format!(
                "\nAgainst hydra in this run (the other agent's figure divided by hydra's):\n\n{ratios}"
            )
        }
    );
    let _ = std::fs::write(args.out.join("results.md"), &md);
    let _ = std::fs::write(args.out.join("results.csv"), report::csv(&rows));
    for (file, title, label, y) in [
        (
            "cpu.svg",
            "CPU at a fixed write rate",
            "% of one core",
            (|r: &Row| r.cpu) as fn(&Row) -> f64,
        ),
        (
            "rss.svg",
            "Memory at a fixed write rate",
            "steady RSS, MiB",
            |r: &Row| r.steady_rss,
        ),
        (
            "throughput.svg",
            "Delivered at a fixed write rate",
            "lines/s delivered",
            |r: &Row| r.delivered_per_s,
        ),
    ] {
        if let Err(e) = report::plot(&rows, &args.out.join(file), title, label, y) {
            eprintln!("hydra-bench: {file}: {e}");
        }
    }
    println!("\n{md}\nwritten to {}", args.out.display());
    let miscounted: Vec<&Row> = rows
        .iter()
        .filter(|r| r.delivered != r.written && !r.note.contains("interrupted"))
        .collect();
    for r in &miscounted {
        eprintln!(
            "hydra-bench: {} {} wrote {} but delivered {}",
            r.scenario, r.agent, r.written, r.delivered
        );
    }
    if miscounted.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    }
}
