//! Running the built `hydra` (and `hydra-cat`) as real processes.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::print_stdout)] // a test reports, and a panic is how it fails

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn hydra_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hydra"))
}

/// hydra-cat is built beside hydra by the workspace's test build.
pub fn hydra_cat_bin() -> PathBuf {
    let p = hydra_bin().with_file_name("hydra-cat");
    assert!(
        p.exists(),
        "{} is not built: run `cargo build --workspace --bins` (scripts/test does)",
        p.display()
    );
    p
}

pub use hydra_test_support::free_port;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn node_modules() -> PathBuf {
    let dir = repo().join(".test-deps/node_modules");
    assert!(
        dir.join("@fluent-org/logger").is_dir(),
        "run scripts/install-test-deps first"
    );
    dir
}

/// A running hydra, its stdout lines, and its stderr.
pub struct Hydra {
    pub child: Child,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
    pub config: PathBuf,
}

fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

impl Hydra {
    /// Writes `config` to `dir/hydra.yaml` and starts hydra on it, waiting
    /// until it says it is running.
    pub fn start(dir: &Path, config: &str) -> Hydra {
        Self::start_with_env(dir, config, &[])
    }

    /// Like [`Hydra::start`], with extra environment variables.
    pub fn start_with_env(dir: &Path, config: &str, env: &[(&str, &str)]) -> Hydra {
        let path = dir.join("hydra.yaml");
        std::fs::write(&path, config).unwrap();
        Self::start_args(&["--config".as_ref(), path.as_os_str()], env, path.clone())
    }

    /// Starts hydra with `args` (`config` is kept for reloads).
    pub fn start_args(args: &[&std::ffi::OsStr], env: &[(&str, &str)], config: PathBuf) -> Hydra {
        let mut command = Command::new(hydra_bin());
        command.args(args).envs(env.iter().copied());
        Self::spawn(command, config)
    }

    /// Runs `command` (hydra, or what execs it), waiting until it says it
    /// is running.
    pub fn spawn(mut command: Command, config: PathBuf) -> Hydra {
        let path = config;
        let mut child = command
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        let h = Hydra {
            child,
            stdout,
            stderr,
            config: path,
        };
        assert!(
            h.wait_log("hydra is running", 10),
            "hydra did not start: {:?}",
            h.stderr.lock().unwrap()
        );
        h
    }

    pub fn wait_log(&self, text: &str, secs: u64) -> bool {
        wait(secs, || {
            self.stderr.lock().unwrap().iter().any(|l| l.contains(text))
        })
    }

    /// The stdout JSON lines.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn wait_events(&self, n: usize, secs: u64) -> Vec<serde_json::Value> {
        wait(secs, || self.events().len() >= n);
        std::thread::sleep(Duration::from_millis(200));
        self.events()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// SIGTERM, then the exit status (at most 20 s).
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "hydra did not stop: {:?}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Hydra {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// GET over plain HTTP/1.0 (no client crate needed for a loopback test).
pub fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// A config with a forward input and the monitor on free ports, stdout out.
pub fn stdout_config(forward: u16, monitor: u16, extra: &str) -> String {
    format!(
        "inputs:\n  - type: forward\n    listen: 127.0.0.1:{forward}\n{extra}output:\n  type: stdout\nmonitor:\n  listen: 127.0.0.1:{monitor}\n"
    )
}

/// Sends events `{"n": from..to}` with hydra-cat to `port` on loopback,
/// `batch` events per chunk, waiting at most `ack_secs` for each ack;
/// whether every chunk was acked.
pub fn send_numbered(
    port: u16,
    from: u64,
    to: u64,
    batch: usize,
    ack_secs: u64,
    tag: &str,
) -> bool {
    let input: String = (from..to).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    send_lines(port, &input, batch, ack_secs, tag)
}

/// Sends JSON lines with hydra-cat, as [`send_numbered`] does.
pub fn send_lines(port: u16, input: &str, batch: usize, ack_secs: u64, tag: &str) -> bool {
    use std::io::Write;
    let mut child = Command::new(hydra_cat_bin())
        .args([
            "-p",
            &port.to_string(),
            "-t",
            &ack_secs.to_string(),
            "--batch",
            &batch.to_string(),
            tag,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    child.wait().unwrap().success()
}

/// A PackedForward frame of `{"message": "line N <pad>"}` for `from..to`,
/// with `tag` and, when given, chunk id `id`.
pub fn padded_frame(tag: &str, id: Option<&str>, from: u64, to: u64, pad: usize) -> Vec<u8> {
    use hydra_forward::{BatchMode, ChunkId, EventTime, FrameBuilder, TimeFormat};
    let mut f = FrameBuilder::new(tag, BatchMode::PackedForward, TimeFormat::EventTime);
    let pad = "x".repeat(pad);
    for n in from..to {
        f.push_line(
            EventTime::new(1_700_000_000, 0),
            "message",
            format!("line {n} {pad}").as_bytes(),
        );
    }
    f.finish(id.map(ChunkId::from_id).as_ref(), None).to_vec()
}

/// Appends `text` to `path`, creating it, as a writer that reopens its log
/// does.
pub fn append_text(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// The long profile (`HYDRA_SOAK=1`) rather than the test command's.
pub fn soak() -> bool {
    std::env::var_os("HYDRA_SOAK").is_some()
}

/// Peak resident memory of a process, in MiB.
pub fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// Sends events numbered `from..to` with hydra-cat in blocks, repeating a
/// block until it is acked (hydra may be down or restarting meanwhile).
pub fn forward_client(port: u16, from: u64, to: u64) {
    let mut n = from;
    while n < to {
        let end = (n + 100).min(to);
        if send_numbered(port, n, end, 25, 3, "fwd") {
            n = end;
        } else {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Counts how often each expected key arrived; prints the scenario line.
pub fn report(name: &str, expected: &[String], got: &[String], peak: f64) -> (usize, usize) {
    let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for g in got {
        *counts.entry(g.as_str()).or_default() += 1;
    }
    let missing: Vec<&String> = expected
        .iter()
        .filter(|e| !counts.contains_key(e.as_str()))
        .collect();
    let lost = missing.len();
    if lost > 0 {
        // Which lines: a whole file's tail, or scattered lines, tells which
        // mechanism failed.
        let mut first_per_file: std::collections::BTreeMap<&str, &str> = Default::default();
        for m in &missing {
            let file = m.split(' ').next().unwrap_or("");
            first_per_file.entry(file).or_insert(m.as_str());
        }
        println!("{name}: {lost} missing; first missing per prefix: {first_per_file:?}");
    }
    let duplicated: usize = counts.values().map(|c| c - 1).sum();
    println!(
        "{name}: written {}, delivered {}, lost {lost}, duplicated {duplicated}, peak RSS {peak:.1} MiB",
        expected.len(),
        got.len()
    );
    (lost, duplicated)
}

/// Runs hydra with `flag` on `text` as its config, asserts it refused
/// (exit 1), and returns what it said.
pub fn refused(dir: &Path, flag: &str, text: &str) -> String {
    let config = dir.join("hydra.yaml");
    std::fs::write(&config, text).unwrap();
    let out = Command::new(hydra_bin())
        .arg(flag)
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    err
}
