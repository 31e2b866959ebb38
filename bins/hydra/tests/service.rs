//! What hydra tells its service manager and its probes: systemd's notify
//! protocol (a datagram socket the test binds as `NOTIFY_SOCKET`), the
//! watchdog, `hydra reload`, and `GET /health` and `GET /live`.
#![allow(clippy::unwrap_used, clippy::print_stdout)] // a test reports and panics

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use hydra_test_support::{Behaviour, Receiver};

/// The notify socket systemd would give hydra.
struct Notify {
    socket: UnixDatagram,
    path: std::path::PathBuf,
}

impl Notify {
    fn bind(dir: &Path) -> Notify {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        Notify { socket, path }
    }

    /// The next datagram within `secs`.
    fn next(&self, secs: u64) -> Option<String> {
        self.socket
            .set_read_timeout(Some(Duration::from_secs(secs)))
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// The next datagram that is not a watchdog ping.
    fn next_state(&self, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_secs()
                .max(1);
            let m = self.next(left).expect("a datagram in time");
            if m != "WATCHDOG=1\n" {
                return m;
            }
        }
    }
}

fn spawn(config: &Path, env: &[(&str, &std::ffi::OsStr)]) -> Child {
    Command::new(hydra_bin())
        .arg("--config")
        .arg(config)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: &str) {
    assert!(
        Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn ready_reloading_and_stopping_reach_the_notify_socket() {
    let dir = tempfile::tempdir().unwrap();
    let notify = Notify::bind(dir.path());
    let (fwd, mon) = (free_port(), free_port());
    let config = dir.path().join("hydra.yaml");
    std::fs::write(&config, stdout_config(fwd, mon, "")).unwrap();
    let mut hydra = spawn(&config, &[("NOTIFY_SOCKET", notify.path.as_os_str())]);

    let ready = notify.next_state(10);
    // At READY=1 both ports already accept connections.
    let forward = std::net::TcpStream::connect(("127.0.0.1", fwd));
    let monitor = std::net::TcpStream::connect(("127.0.0.1", mon));
    assert!(ready.starts_with("READY=1\n"), "{ready:?}");
    assert!(
        forward.is_ok() && monitor.is_ok(),
        "not listening at READY=1"
    );

    signal(&hydra, "-HUP");
    let reloading = notify.next_state(10);
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading:?}"
    );
    let usec: u64 = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(usec > 0);
    assert_eq!(notify.next_state(20), "READY=1\nSTATUS=running\n");

    // A file that does not load: refused, said in STATUS, still READY.
    std::fs::write(&config, "inputs: [ { type: nope } ]\n").unwrap();
    signal(&hydra, "-HUP");
    assert!(notify.next_state(10).starts_with("RELOADING=1\n"));
    let refused = notify.next_state(20);
    assert!(
        refused.starts_with(
            "READY=1\nSTATUS=running the previous configuration; the new one was refused: "
        ),
        "{refused:?}"
    );

    signal(&hydra, "-TERM");
    assert!(notify.next_state(10).starts_with("STOPPING=1\n"));
    assert!(hydra.wait().unwrap().success());
}

#[test]
fn without_notify_socket_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (fwd, mon) = (free_port(), free_port());
    let h = Hydra::start(dir.path(), &stdout_config(fwd, mon, ""));
    assert!(send_numbered(fwd, 0, 10, 10, 5, "plain"));
    assert_eq!(h.wait_events(10, 10).len(), 10);
    assert!(h.stop().success());
}

/// Watchdog pings seen over `span`.
fn pings_over(notify: &Notify, span: Duration) -> usize {
    let deadline = Instant::now() + span;
    let mut n = 0;
    while Instant::now() < deadline {
        notify
            .socket
            .set_read_timeout(Some(
                deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            ))
            .unwrap();
        let mut buf = [0u8; 512];
        if let Ok(len) = notify.socket.recv(&mut buf)
            && &buf[..len] == b"WATCHDOG=1\n"
        {
            n += 1;
        }
    }
    n
}

#[test]
fn watchdog_pings_stop_while_the_tailer_is_wedged_and_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let notify = Notify::bind(dir.path());
    let log = dir.path().join("app.log");
    std::fs::write(&log, "first\n").unwrap();
    let wedge = dir.path().join("wedge");
    let (fwd, mon) = (free_port(), free_port());
    let config = dir.path().join("hydra.yaml");
    let tail = format!(
        "  - type: tail\n    path: {}\n    tag: app\n",
        log.display()
    );
    std::fs::write(&config, stdout_config(fwd, mon, &tail)).unwrap();
    let mut hydra = spawn(
        &config,
        &[
            ("NOTIFY_SOCKET", notify.path.as_os_str()),
            // Pings every 0.5 s.
            ("WATCHDOG_USEC", "1000000".as_ref()),
            ("HYDRA_TEST_WEDGE_TAILER", wedge.as_os_str()),
        ],
    );
    assert!(notify.next_state(10).starts_with("READY=1"));
    let well = pings_over(&notify, Duration::from_secs(2));
    assert!(well >= 3, "{well} pings in 2 s");
    assert!(http_get(mon, "/live").contains(r#""status":"ok""#));

    std::fs::write(&wedge, "").unwrap();
    // Wedged parts are found after 5 s without a beat.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if pings_over(&notify, Duration::from_secs(2)) == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "pings went on while wedged");
    }
    let live = http_get(mon, "/live");
    assert_eq!(
        live, r#"{"status":"wedged","reasons":["tail_reader_stalled"]}"#,
        "{live}"
    );
    assert!(http_get(mon, "/health").contains("tail_reader_stalled"));

    std::fs::remove_file(&wedge).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pings_over(&notify, Duration::from_secs(1)) == 0 {
        assert!(Instant::now() < deadline, "pings did not come back");
    }
    assert!(http_get(mon, "/live").contains(r#""status":"ok""#));
    signal(&hydra, "-TERM");
    assert!(hydra.wait().unwrap().success());
}

/// GET `path`: the status code and the body.
fn get_status(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    (code, body.unwrap_or_default())
}

#[test]
fn health_fails_while_nothing_is_delivered_and_recovers_and_live_never_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (fwd, mon, agg) = (free_port(), free_port(), free_port());
    let config = format!(
        "inputs:\n  - type: forward\n    listen: 127.0.0.1:{fwd}\noutput:\n  type: forward\n  flush_interval: 200ms\n  connect_timeout: 500ms\n  recover_wait: 500ms\n  servers: [{{ host: 127.0.0.1, port: {agg} }}]\nmonitor:\n  listen: 127.0.0.1:{mon}\n  token: s3cret\n  unhealthy_after: 3s\n"
    );
    let h = Hydra::start(dir.path(), &config);
    assert_eq!(
        get_status(mon, "/health"),
        (200, r#"{"status":"ok"}"#.to_owned())
    );
    assert_eq!(get_status(mon, "/").0, 401, "the rest needs the token");

    // No chunk id: nothing to ack, so the client does not wait.
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", fwd)).unwrap();
        s.write_all(&padded_frame("health", None, 0, 100, 10))
            .unwrap();
    }
    let sent = Instant::now();
    let mut live_failures = 0;
    let unhealthy = loop {
        let (code, body) = get_status(mon, "/health");
        live_failures += usize::from(get_status(mon, "/live").0 != 200);
        if code == 503 {
            break body;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "still {code} {body} after {:?}",
            sent.elapsed()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let after = sent.elapsed();
    println!("/health 503 after {after:?}: {unhealthy}");
    assert_eq!(
        unhealthy,
        r#"{"status":"unhealthy","reasons":["not_delivering"]}"#
    );
    assert!(
        after >= Duration::from_secs(3),
        "503 before unhealthy_after: {after:?}"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let rx = rt.block_on(Receiver::start_on(agg, Behaviour::Ack));
    let back = Instant::now();
    loop {
        live_failures += usize::from(get_status(mon, "/live").0 != 200);
        if get_status(mon, "/health").0 == 200 {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(15), "still unhealthy");
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "/health 200 again {:?} after the aggregator came up",
        back.elapsed()
    );
    assert_eq!(rx.messages.lock().unwrap().len(), 100);
    assert_eq!(live_failures, 0, "/live failed during the outage");
    assert!(h.stop().success());
}

#[test]
fn hydra_reload_waits_for_the_reload_and_says_whether_it_was_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (fwd, mon, fwd2) = (free_port(), free_port(), free_port());
    let h = Hydra::start(dir.path(), &stdout_config(fwd, mon, ""));
    let reload = || {
        Command::new(hydra_bin())
            .args(["reload", "--pid", &h.child.id().to_string(), "--config"])
            .arg(&h.config)
            .output()
            .unwrap()
    };
    // A second input: once `hydra reload` returns, it listens.
    std::fs::write(
        &h.config,
        stdout_config(
            fwd,
            mon,
            &format!("  - type: forward\n    listen: 127.0.0.1:{fwd2}\n"),
        ),
    )
    .unwrap();
    let out = reload();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hydra reloaded its configuration\n"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", fwd2)).is_ok());

    // The monitor section stays loadable, the rest does not start: the
    // second input's port is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    std::fs::write(
        &h.config,
        stdout_config(
            fwd,
            mon,
            &format!("  - type: forward\n    listen: 127.0.0.1:{port}\n"),
        ),
    )
    .unwrap();
    let out = reload();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&http_get(mon, "/")).unwrap();
    assert_eq!(
        (v["reloads"].as_u64(), v["reload_failures"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(h.stop().success());
}
