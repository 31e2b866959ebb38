//! Docker's fluentd logging driver (moby vendors fluent-logger-golang, the
//! most widespread Forward client) sending to hydra's forward input.
//!
//! The test starts its own dockerd (Debian's docker.io, installed by
//! scripts/install-test-deps) with no container networking at all
//! (`--bridge=none --iptables=false --ip-masq=false`, containers
//! `--network none`): the log driver runs in dockerd, on the host, and
//! connects to hydra on 127.0.0.1. The image is made here from Debian's
//! static busybox, with no registry. dockerd is stopped at the end.
#![allow(clippy::unwrap_used, clippy::print_stdout)] // a test reports and panics

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const IMAGE: &str = "hydra-test-busybox:1";

/// A dockerd of the test's own, in a temporary directory.
struct Dockerd {
    child: Child,
    socket: PathBuf,
}

impl Dockerd {
    fn start(dir: &Path) -> Dockerd {
        let socket = dir.join("docker.sock");
        let child = Command::new("dockerd")
            .args(["--bridge=none", "--iptables=false", "--ip-masq=false"])
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("dockerd.log")).unwrap())
            .spawn()
            .expect("dockerd (Debian's docker.io, installed by scripts/install-test-deps)");
        let d = Dockerd { child, socket };
        assert!(
            wait(30, || d.docker(&["version"]).status.success()),
            "dockerd did not start: {}",
            std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default()
        );
        d
    }

    /// Runs Debian's docker client against this daemon.
    fn docker(&self, args: &[&str]) -> Output {
        Command::new("/usr/bin/docker")
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .args(args)
            .output()
            .unwrap()
    }

    /// An image of Debian's static busybox, imported without a registry.
    fn import_busybox(&self, dir: &Path) {
        let root = dir.join("rootfs/bin");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::copy("/bin/busybox", root.join("busybox")).unwrap();
        for applet in ["sh", "seq", "usleep", "echo"] {
            std::os::unix::fs::symlink("busybox", root.join(applet)).unwrap();
        }
        // The root directory as a tar stream, imported as the image.
        let tar = Command::new("tar")
            .arg("-C")
            .arg(dir.join("rootfs"))
            .args(["-c", "."])
            .output()
            .unwrap();
        assert!(tar.status.success());
        let mut import = Command::new("/usr/bin/docker")
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .args(["import", "-", IMAGE])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        import.stdin.take().unwrap().write_all(&tar.stdout).unwrap();
        let import = import.wait_with_output().unwrap();
        assert!(
            import.status.success(),
            "{}",
            String::from_utf8_lossy(&import.stderr)
        );
    }

    /// Runs `script` in a container whose stdout goes to hydra at
    /// `address` (`127.0.0.1:PORT` or `unix:///PATH`) through the fluentd
    /// driver, with `opts` as further `--log-opt`s. It must run (or, with
    /// `detach`, start).
    fn run(&self, name: &str, address: &str, opts: &[&str], script: &str, detach: bool) {
        let mut args: Vec<String> = vec!["run".into(), "--network".into(), "none".into()];
        args.extend([
            "--name".into(),
            name.into(),
            "--log-driver".into(),
            "fluentd".into(),
        ]);
        args.extend(["--log-opt".into(), format!("fluentd-address={address}")]);
        for o in opts {
            args.extend(["--log-opt".into(), (*o).to_owned()]);
        }
        args.push(if detach { "-d" } else { "--rm" }.into());
        args.extend([IMAGE.into(), "sh".into(), "-c".into(), script.into()]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.docker(&refs);
        assert!(
            out.status.success(),
            "docker run {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SIGTERM: dockerd stops its containers and the containerd it
        // started.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A hydra printing what its forward input on `port` takes.
fn hydra_on(dir: &Path, port: u16) -> Hydra {
    Hydra::start(
        dir,
        &format!(
            "inputs:\n  - type: forward\n    listen: 127.0.0.1:{port}\noutput:\n  type: stdout\n"
        ),
    )
}

/// The numbers the container printed, from the driver's `log` field.
fn numbers(events: &[serde_json::Value], tag: &str) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e["tag"] == tag)
        .filter_map(|e| e["record"]["log"].as_str()?.parse().ok())
        .collect()
}

fn tally(name: &str, written: u64, seen: &[u64]) -> (usize, usize) {
    let mut distinct = seen.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let lost = (1..=written)
        .filter(|n| distinct.binary_search(n).is_err())
        .count();
    let dups = seen.len() - distinct.len();
    println!(
        "docker {name}: written {written}, arrived {} ({} distinct), lost {lost}, duplicated {dups}",
        seen.len(),
        distinct.len()
    );
    (lost, dups)
}

#[test]
fn dockers_fluentd_log_driver_delivers_to_hydra() {
    let dir = tempfile::tempdir().unwrap();
    let dockerd = Dockerd::start(dir.path());
    dockerd.import_busybox(dir.path());

    // 100,000 lines, tagged from a template, times to the nanosecond.
    let hdir = dir.path().join("h1");
    std::fs::create_dir_all(&hdir).unwrap();
    let port = free_port();
    let h = hydra_on(&hdir, port);
    dockerd.run(
        "lines",
        &format!("127.0.0.1:{port}"),
        &["tag=docker.{{.Name}}", "fluentd-sub-second-precision=true"],
        "seq 1 100000",
        false,
    );
    wait(60, || h.events().len() >= 100_000);
    let events = h.events();
    let (lost, dups) = tally("100,000 lines", 100_000, &numbers(&events, "docker.lines"));
    assert_eq!((lost, dups), (0, 0));
    let subsecond = events
        .iter()
        .filter(|e| !e["time"].as_str().unwrap().contains(".000000000"))
        .count();
    assert!(subsecond > 0, "no event had sub-second precision");
    assert!(
        events
            .iter()
            .all(|e| e["record"]["container_name"] == "/lines"),
        "{}",
        events[0]
    );
    assert!(h.stop().success());

    // Over a unix socket (`fluentd-address=unix:///PATH`), as to fluentd's
    // in_unix: hydra's forward input listening on `unix:PATH`.
    let hdir = dir.path().join("hu");
    std::fs::create_dir_all(&hdir).unwrap();
    let sock = hdir.join("forward.sock");
    let h = Hydra::start(
        &hdir,
        &format!(
            "inputs:\n  - type: forward\n    listen: unix:{}\noutput:\n  type: stdout\n",
            sock.display()
        ),
    );
    dockerd.run(
        "unixsock",
        &format!("unix://{}", sock.display()),
        &["tag=unix"],
        "seq 1 1000",
        false,
    );
    wait(30, || numbers(&h.events(), "unix").len() >= 1000);
    let (lost, dups) = tally("over a unix socket", 1000, &numbers(&h.events(), "unix"));
    assert_eq!((lost, dups), (0, 0));
    assert!(h.stop().success());

    // fluentd-async: the container starts while hydra is not there yet;
    // the driver keeps what it could not send (up to fluentd-buffer-limit)
    // and sends it once hydra listens. (The container stays up: a driver
    // closed with its container drops what it still holds.)
    let hdir = dir.path().join("h2");
    std::fs::create_dir_all(&hdir).unwrap();
    let port = free_port();
    dockerd.run(
        "early",
        &format!("127.0.0.1:{port}"),
        &[
            "tag=async",
            "fluentd-async=true",
            "fluentd-buffer-limit=100000",
            "fluentd-retry-wait=100ms",
        ],
        "seq 1 2000; sleep 60",
        true,
    );
    std::thread::sleep(Duration::from_millis(500));
    let h = hydra_on(&hdir, port);
    wait(30, || numbers(&h.events(), "async").len() >= 2000);
    let (lost, _) = tally(
        "async, hydra started after",
        2000,
        &numbers(&h.events(), "async"),
    );
    let _ = dockerd.docker(&["rm", "-f", "early"]);
    assert_eq!(lost, 0);

    assert!(h.stop().success());

    // The aggregator is away and hydra keeps what the driver sends on disk:
    // a container on the driver's defaults (blocking, no ack) is not held
    // back, and once the aggregator is up every line arrives, in order.
    outage_with_a_disk_buffer(&dockerd, &dir.path().join("disk"));

    // hydra restarts or reloads while a container logs, acks asked:
    // stopped cleanly, killed (-9), reloaded (SIGHUP). The driver resends
    // what was not acked; every line arrives.
    for stop in [Stop::Term, Stop::Kill, Stop::Reload] {
        let hdir = dir.path().join(stop.tag());
        std::fs::create_dir_all(&hdir).unwrap();
        let (lost, dups) = interrupted_while_logging(&dockerd, &hdir, stop);
        assert_eq!(lost, 0, "{}: lines lost", stop.tag());
        // A clean stop or a reload acks all it printed; a crash may print a
        // chunk it never acked, which the driver sends again.
        assert!(
            stop == Stop::Kill || dups == 0,
            "{}: {dups} lines repeated",
            stop.tag()
        );
    }
}

/// How hydra is interrupted while the container logs.
#[derive(Clone, Copy, PartialEq)]
enum Stop {
    /// SIGTERM, then a new hydra.
    Term,
    /// SIGKILL, then a new hydra.
    Kill,
    /// SIGHUP: the same hydra reads its config again.
    Reload,
}

impl Stop {
    fn tag(self) -> &'static str {
        match self {
            Stop::Term => "restarted",
            Stop::Kill => "killed",
            Stop::Reload => "reloaded",
        }
    }
}

/// A container printing 6,000 numbered lines (100 every 20 ms) through the
/// driver with `fluentd-async` and `fluentd-request-ack`; hydra is
/// interrupted as `stop` says after the first 1,000 arrived (and, unless
/// reloaded, started again on the same port). The container stays up after
/// its lines: Docker closes a container's driver with the container,
/// dropping what the driver still holds.
fn interrupted_while_logging(dockerd: &Dockerd, hdir: &Path, stop: Stop) -> (usize, usize) {
    let tag = stop.tag();
    // Lines are counted by this, not parsed: parsing every line under the
    // lock of hydra's collected stdout, every 20 ms, keeps the reader from
    // draining the pipe, and hydra's stdout output (and its acks) wait.
    let needle = format!("\"tag\":\"{tag}\"");
    let port = free_port();
    let mut h = hydra_on(hdir, port);
    dockerd.run(
        tag,
        &format!("127.0.0.1:{port}"),
        &[
            &format!("tag={tag}"),
            "fluentd-async=true",
            "fluentd-request-ack=true",
            "fluentd-retry-wait=100ms",
            "fluentd-max-retries=1000",
        ],
        "i=0; while [ $i -lt 6000 ]; do i=$((i+1)); echo $i; [ $((i % 100)) = 0 ] && usleep 20000; done; sleep 60",
        true,
    );
    wait(10, || numbers(&h.events(), tag).len() >= 1000);
    // What the first hydra printed, its stop included (a clean stop
    // delivers what it accepted before it exits).
    let printed = h.stdout.clone();
    let first = match stop {
        Stop::Reload => {
            let n = numbers(&h.events(), tag).len();
            h.signal("HUP");
            assert!(
                h.wait_log("Reloaded.", 20),
                "{:?}",
                h.stderr.lock().unwrap()
            );
            n
        }
        Stop::Kill | Stop::Term => {
            if stop == Stop::Kill {
                h.signal("KILL");
                drop(h);
            } else {
                assert!(h.stop().success());
            }
            let n = printed
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains(&needle))
                .count();
            std::thread::sleep(Duration::from_millis(300));
            h = hydra_on(hdir, port);
            n
        }
    };
    let printed_now = |h: &Hydra| {
        let lines = h.stdout.lock().unwrap();
        lines.iter().filter(|l| l.contains(&needle)).count()
    };
    // A reloaded hydra prints on to the same stdout.
    let earlier = if stop == Stop::Reload { 0 } else { first };
    // The count each second: a stall (flat) tells itself from slowness
    // (rising).
    let started = Instant::now();
    let mut counts = Vec::new();
    let complete = wait(30, || {
        let n = earlier + printed_now(&h);
        if counts
            .last()
            .is_none_or(|(t, _): &(u64, usize)| started.elapsed().as_secs() > *t)
        {
            counts.push((started.elapsed().as_secs(), n));
        }
        n >= 6000
    });
    if !complete {
        diagnose(tag, port, &counts, &h);
    }
    let mut seen = if stop == Stop::Reload {
        Vec::new()
    } else {
        // The first hydra's stdout: it has exited, so this is all of it.
        numbers(
            &printed
                .lock()
                .unwrap()
                .iter()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect::<Vec<_>>(),
            tag,
        )
    };
    let after = numbers(&h.events(), tag);
    println!(
        "docker {tag}: {first} lines before, {} in all after",
        after.len()
    );
    seen.extend(after);
    let _ = dockerd.docker(&["rm", "-f", tag]);
    assert!(h.stop().success());
    tally(&format!("hydra {tag} while logging"), 6000, &seen)
}

/// What tells a stall from slowness when lines are missing: the count over
/// time, the connections on hydra's port (`ss -tni`: queues, windows,
/// retransmissions), and the hydra's own log.
fn diagnose(tag: &str, port: u16, counts: &[(u64, usize)], h: &Hydra) {
    let ss = Command::new("ss")
        .args(["-tni", &format!("( sport = :{port} or dport = :{port} )")])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|e| format!("ss: {e}"));
    println!("docker {tag}: lines printed by second since the interruption: {counts:?}");
    println!("docker {tag}: ss -tni on port {port}:\n{ss}");
    println!(
        "docker {tag}: hydra's stderr:\n{}",
        h.stderr.lock().unwrap().join("\n")
    );
}

/// A container printing 20,000 lines through the driver on its defaults
/// while hydra's aggregator is down, hydra with a disk buffer: the
/// container ends within seconds, and the lines arrive once the aggregator
/// is up.
fn outage_with_a_disk_buffer(dockerd: &Dockerd, hdir: &Path) {
    std::fs::create_dir_all(hdir).unwrap();
    let (port, agg_port) = (free_port(), free_port());
    let h = Hydra::start(
        hdir,
        &format!(
            "inputs:\n  - type: forward\n    listen: 127.0.0.1:{port}\noutput:\n  type: forward\n  flush_interval: 200ms\n  connect_timeout: 500ms\n  servers: [{{ host: 127.0.0.1, port: {agg_port} }}]\nbuffer:\n  disk:\n    path: {}/buffer\n",
            hdir.display()
        ),
    );
    let started = Instant::now();
    dockerd.run(
        "outage",
        &format!("127.0.0.1:{port}"),
        &["tag=outage"],
        "seq 1 20000",
        false,
    );
    let logged_in = started.elapsed();
    let agg_dir = hdir.join("aggregator");
    std::fs::create_dir_all(&agg_dir).unwrap();
    let agg = hydra_on(&agg_dir, agg_port);
    wait(60, || numbers(&agg.events(), "outage").len() >= 20_000);
    let seen = numbers(&agg.events(), "outage");
    let (lost, dups) = tally("outage, disk buffer", 20_000, &seen);
    println!(
        "docker outage: the container logged 20,000 lines in {logged_in:.1?} with the aggregator down"
    );
    assert_eq!((lost, dups), (0, 0));
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "out of order");
    assert!(
        logged_in < Duration::from_secs(30),
        "the container was held back"
    );
    assert!(agg.stop().success());
    assert!(h.stop().success());
}
