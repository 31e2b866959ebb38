//! Helpers shared by hydra's tests.
//!
//! - [`free_port`]: a free loopback port chosen at run time;
//! - [`wait_until`]: a bounded wait for a condition;
//! - [`FluentServer`]: the npm `@fluent-org/logger` FluentServer, an
//!   independent Forward receiver with acks (and optionally a shared key),
//!   run by node from `.test-deps/` (installed by `scripts/install-test-deps`);
//! - [`Pki`]: a throwaway CA with server and client certificates, made at
//!   test time (no private key is ever committed).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers stop loudly

mod receiver;

pub use receiver::{Behaviour, Receiver};

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A free TCP port on 127.0.0.1, never one this process or another test
/// process still running was given: the kernel may hand the port of a
/// listener just closed out again at once, to this process (a test that
/// asks for two ports before binding either) or to a test running beside
/// it in another process.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for _ in 0..1000 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) && claim(port) {
            given.push(port);
            return port;
        }
    }
    panic!("no loopback port this process was not given already")
}

/// Claims `port` in a registry the test processes of this machine share
/// (a file under the temporary directory, locked while it is read and
/// written): false when a live process holds it. Claims of processes that
/// have exited are dropped.
fn claim(port: u16) -> bool {
    use std::io::{Read, Seek, Write};
    let path = std::env::temp_dir().join("hydra-test-ports");
    let Ok(mut file) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
    else {
        return true;
    };
    if file.lock().is_err() {
        return true;
    }
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let me = std::process::id();
    let mut live: Vec<(u16, u32)> = text
        .lines()
        .filter_map(|l| {
            let (p, pid) = l.split_once(' ')?;
            Some((p.parse().ok()?, pid.parse().ok()?))
        })
        .filter(|(_, pid)| *pid == me || std::path::Path::new(&format!("/proc/{pid}")).exists())
        .collect();
    if live.iter().any(|(p, pid)| *p == port && *pid != me) {
        return false;
    }
    live.push((port, me));
    let out: String = live.iter().map(|(p, pid)| format!("{p} {pid}\n")).collect();
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(out.as_bytes()));
    let _ = file.unlock();
    written.is_ok()
}

/// Polls `f` every 10 ms for at most `timeout`; returns its last answer.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

/// Runs `program` with `args`, feeding `stdin` from another thread (so a
/// large input cannot deadlock against a full output pipe), and returns
/// what it printed and its exit status.
pub fn run_with_stdin(
    program: &std::path::Path,
    args: &[&str],
    stdin: &[u8],
) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// The npm packages the tests run, installed by `scripts/install-test-deps`.
pub fn node_modules() -> PathBuf {
    let dir = repo().join(".test-deps/node_modules");
    assert!(
        dir.join("@fluent-org/logger").is_dir(),
        "{} has no @fluent-org/logger: run scripts/install-test-deps",
        dir.display()
    );
    dir
}

/// The npm FluentServer on a free loopback port, recording every entry.
pub struct FluentServer {
    /// Where it listens, on 127.0.0.1.
    pub port: u16,
    child: Child,
    lines: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl FluentServer {
    /// Starts it; `args` may hold `--shared-key K --hostname H` or `--port N`.
    pub fn start(args: &[&str]) -> FluentServer {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fluent_server.js");
        let mut child = Command::new("node")
            .arg(script)
            .args(args)
            .env("NODE_PATH", node_modules())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node runs");
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        let port = first
            .trim()
            .strip_prefix("PORT ")
            .expect("a PORT line")
            .parse()
            .unwrap();
        let lines: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                sink.lock()
                    .unwrap()
                    .push(serde_json::from_str(&line).unwrap());
            }
        });
        FluentServer { port, child, lines }
    }

    /// Every entry received so far: `{"tag": .., "record": {..}}`.
    pub fn entries(&self) -> Vec<serde_json::Value> {
        self.lines.lock().unwrap().clone()
    }

    /// The `n` field of every record.
    pub fn numbers(&self) -> Vec<u64> {
        self.entries()
            .iter()
            .filter_map(|v| v["record"]["n"].as_u64())
            .collect()
    }

    /// Waits until the entries stop changing (the pipe from node drained).
    pub fn settle(&self) {
        let mut last = usize::MAX;
        wait_until(Duration::from_secs(5), || {
            let now = self.entries().len();
            let stable = now == last;
            last = now;
            std::thread::sleep(Duration::from_millis(150));
            stable
        });
    }
}

impl Drop for FluentServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA, a server certificate for `localhost` and `127.0.0.1`, and a client
/// certificate, written as PEM files into a directory.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA certificate.
    pub ca: PathBuf,
    /// The server's certificate and key.
    pub server_cert: PathBuf,
    /// The server's key.
    pub server_key: PathBuf,
    /// A client certificate signed by the CA, and its key.
    pub client_cert: PathBuf,
    /// The client's key.
    pub client_key: PathBuf,
    /// A certificate from another CA, for `localhost`: it must be refused.
    pub rogue_cert: PathBuf,
    /// Its key.
    pub rogue_key: PathBuf,
}

impl Pki {
    /// Makes the certificates in `dir`.
    pub fn new(dir: &std::path::Path) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let write = |name: &str, text: String| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let make_ca = |cn: &str| {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
            let key = KeyPair::generate().unwrap();
            let cert = params.self_signed(&key).unwrap();
            (cert, params, key)
        };
        let leaf = |names: &[&str], ca: &(rcgen::Certificate, CertificateParams, KeyPair)| {
            let params =
                CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                    .unwrap();
            let key = KeyPair::generate().unwrap();
            let issuer = rcgen::Issuer::from_params(&ca.1, &ca.2);
            let cert = params.signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let ca = make_ca("hydra test CA");
        let (server_cert, server_key) = leaf(&["localhost", "127.0.0.1"], &ca);
        let (client_cert, client_key) = leaf(&["hydra-test-client"], &ca);
        let rogue_ca = make_ca("someone else");
        let (rogue_cert, rogue_key) = leaf(&["localhost", "127.0.0.1"], &rogue_ca);
        Pki {
            ca: write("ca.pem", ca.0.pem()),
            server_cert: write("server.pem", server_cert),
            server_key: write("server.key", server_key),
            client_cert: write("client.pem", client_cert),
            client_key: write("client.key", client_key),
            rogue_cert: write("rogue.pem", rogue_cert),
            rogue_key: write("rogue.key", rogue_key),
        }
    }
}

#[cfg(test)]
mod free_port_tests {
    /// Regression: a test asking for two ports before binding either got
    /// the same one twice ("127.0.0.1:45345 is used twice").
    #[test]
    fn free_port_never_gives_a_port_twice() {
        let mut ports: Vec<u16> = (0..500).map(|_| super::free_port()).collect();
        ports.sort_unstable();
        let before = ports.len();
        ports.dedup();
        assert_eq!(ports.len(), before);
    }

    /// Test processes run side by side (one per test): a port another
    /// live process was given is not given again; one of a process that
    /// has exited is.
    #[test]
    fn a_port_another_live_process_holds_is_not_claimed() {
        use std::io::Write;
        let path = std::env::temp_dir().join("hydra-test-ports");
        // Port numbers no kernel hands out as ephemeral, for this test
        // only.
        {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&path)
                .unwrap();
            f.lock().unwrap();
            // pid 1 lives as long as the machine; a pid past pid_max never
            // did.
            writeln!(f, "1001 1").unwrap();
            writeln!(f, "1002 4194305").unwrap();
        }
        assert!(!super::claim(1001));
        assert!(super::claim(1002));
    }
}
