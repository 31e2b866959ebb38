//! hydra-zabbix-get against the real zabbix_agentd and zabbix_agent2, side by
//! side with the real zabbix_get, and against a fake agent for the faults.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

fn ours(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hydra-zabbix-get"))
        .args(args)
        .output()
        .unwrap()
}

fn zabbix_get() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../.test-deps/zabbix/usr/bin/zabbix_get");
    assert!(
        p.exists(),
        "the real zabbix_get is missing: run scripts/install-test-deps"
    );
    p
}

use hydra_test_support::free_port;

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the real agent (`zabbix_agentd` or `zabbix_agent2`) on a free
/// loopback port and waits until it accepts connections.
/// A free port in the agents' allowed range (1024–32767), which the
/// kernel's ephemeral ports lie above.
fn free_agent_port() -> u16 {
    let seed = u16::try_from(std::process::id() % 8000).unwrap();
    (0..8000u16)
        .map(|i| 20000 + (seed + i * 7) % 12000)
        .find(|&p| TcpListener::bind(("127.0.0.1", p)).is_ok())
        .expect("a free port between 20000 and 32000")
}

fn start_agent(program: &str, dir: &Path) -> (Agent, u16) {
    let port = free_agent_port();
    let d = dir.display();
    let mut conf = format!(
        "Server=127.0.0.1\nListenIP=127.0.0.1\nListenPort={port}\nPidFile={d}/{program}.pid\nLogFile={d}/{program}.log\nHostname=hydra-test\n"
    );
    if program == "zabbix_agentd" {
        conf.push_str("AllowRoot=1\n");
    } else {
        conf.push_str(&format!("ControlSocket={d}/{program}.sock\n"));
    }
    let path = dir.join(format!("{program}.conf"));
    std::fs::write(&path, conf).unwrap();
    let child = Command::new(program)
        .arg("-f")
        .arg("-c")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{program}.stderr"))).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} (Debian zabbix-agent/zabbix-agent2, installed by scripts/install-test-deps): {e}"));
    let mut agent = Agent(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        let exited = agent.0.try_wait().unwrap();
        if exited.is_some() || Instant::now() > deadline {
            let log =
                std::fs::read_to_string(dir.join(format!("{program}.log"))).unwrap_or_default();
            let err =
                std::fs::read_to_string(dir.join(format!("{program}.stderr"))).unwrap_or_default();
            panic!("{program} did not start ({exited:?}): {err}{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (agent, port)
}

#[test]
fn same_output_and_exit_codes_as_zabbix_get_on_both_agents() {
    let dir = tempfile::tempdir().unwrap();
    for program in ["zabbix_agentd", "zabbix_agent2"] {
        let (_agent, port) = start_agent(program, dir.path());
        let port = port.to_string();
        for key in [
            "agent.ping",
            "no.such.key",
            "system.uptime[extra]",
            "system.uptime",
        ] {
            let real = Command::new(zabbix_get())
                .args(["-s", "127.0.0.1", "-p", &port, "-k", key])
                .output()
                .unwrap();
            let mine = ours(&["-s", "127.0.0.1", "-p", &port, "-k", key]);
            assert_eq!(mine.status.code(), real.status.code(), "{program} {key}");
            let (r, m) = (
                String::from_utf8_lossy(&real.stdout),
                String::from_utf8_lossy(&mine.stdout),
            );
            if key == "system.uptime" {
                // Seconds tick between the two calls.
                let (r, m): (u64, u64) = (r.trim().parse().unwrap(), m.trim().parse().unwrap());
                assert!(m >= r && m <= r + 2, "{program}: {r} vs {m}");
            } else {
                assert_eq!(m, r, "{program} {key}");
            }
        }
        let mine = ours(&["-p", &port, "-k", "agent.ping", "-k", "no.such.key"]);
        assert_eq!(
            String::from_utf8_lossy(&mine.stdout).lines().next(),
            Some("1")
        );
    }
}

#[test]
fn refused_like_zabbix_get() {
    let port = free_port().to_string();
    let real = Command::new(zabbix_get())
        .args(["-s", "127.0.0.1", "-p", &port, "-k", "agent.ping"])
        .output()
        .unwrap();
    let mine = ours(&["-p", &port, "-k", "agent.ping"]);
    assert_eq!(real.status.code(), Some(1));
    assert_eq!(mine.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&mine.stderr).contains("Connection refused"));
    assert!(mine.stdout.is_empty());
}

/// A fake agent answering every connection with `reply` (or nothing, and
/// holding the connection, for `None`).
fn fake_agent(reply: Option<Vec<u8>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut s in listener.incoming().flatten() {
            let mut req = [0u8; 64];
            let _ = s.read(&mut req);
            match &reply {
                Some(r) => {
                    let _ = s.write_all(r);
                }
                None => held.push(s),
            }
        }
    });
    port
}

#[test]
fn faults_exit_1_with_the_reason() {
    let cases: [(&str, Option<Vec<u8>>, &str); 4] = [
        ("timeout", None, "Timeout"),
        (
            "missing header",
            Some(b"HELLO WORLD".to_vec()),
            "no ZBXD header",
        ),
        ("closed", Some(Vec::new()), "closed"),
        (
            "oversized",
            Some([b"ZBXD\x01".as_slice(), &u32::MAX.to_le_bytes(), &[0; 4]].concat()),
            "over the limit",
        ),
    ];
    for (what, reply, needle) in cases {
        let port = fake_agent(reply).to_string();
        let start = Instant::now();
        let out = ours(&["-p", &port, "-t", "1", "-k", "agent.ping"]);
        assert_eq!(out.status.code(), Some(1), "{what}");
        assert!(start.elapsed() < Duration::from_secs(5), "{what}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{what}: {err}");
    }
}

#[test]
fn sensu_and_json_output_field_by_field() {
    let port = fake_agent(Some(hydra_zabbix::encode_reply(
        &hydra_zabbix::Reply::Value("42".into()),
    )))
    .to_string();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let out = ours(&["-p", &port, "-f", "sensu", "-k", "vfs.fs.size[/,free]"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = text.trim_end().split('\t').collect();
    assert_eq!(fields.len(), 3, "{text:?}");
    assert_eq!(fields[0], "vfs.fs.size[/,free]");
    assert_eq!(fields[1], "42");
    let t: u64 = fields[2].parse().unwrap();
    assert!(t >= before && t <= before + 5);
    let out = ours(&[
        "-p",
        &port,
        "-f",
        "sensu",
        "-o",
        "disk.free",
        "-k",
        "vfs.fs.size[/,free]",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("disk.free\t42\t"));
    let out = ours(&["-p", &port, "-f", "json", "-k", "agent.ping"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["key"].as_str(), v["value"].as_str()),
        (Some("agent.ping"), Some("42"))
    );
}

#[test]
fn eval_passes_and_fails_by_the_expression() {
    let port = fake_agent(Some(hydra_zabbix::encode_reply(
        &hydra_zabbix::Reply::Value("42".into()),
    )))
    .to_string();
    let ok = ours(&[
        "-p",
        &port,
        "eval",
        "a.key",
        "b.key",
        "--",
        "[ \"$1\" -gt 40 ] && [ \"$2\" = 42 ]",
    ]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let warn = ours(&[
        "-p",
        &port,
        "eval",
        "a.key",
        "--",
        "[ \"$1\" -lt 40 ] || exit 1",
    ]);
    assert_eq!(warn.status.code(), Some(1));
    let crit = ours(&["-p", &port, "eval", "a.key", "--", "exit 2"]);
    assert_eq!(crit.status.code(), Some(2));
    // An item that cannot be fetched is critical.
    let down = free_port().to_string();
    let out = ours(&["-p", &down, "-t", "1", "eval", "a.key", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
}
