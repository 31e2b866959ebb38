//! The forward output to a server on a unix socket: hydra → hydra with
//! acks and a shared key, and failover from the unix server to a TCP one.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;

/// A downstream hydra: a forward input on `listen` with the shared key,
/// events to stdout.
fn downstream(dir: &Path, listen: &str) -> Hydra {
    let config = format!(
        "inputs:\n  - type: forward\n    listen: {listen}\n    security:\n      self_hostname: down\n      shared_key: k3y\noutput:\n  type: stdout\n"
    );
    std::fs::create_dir_all(dir).unwrap();
    Hydra::start(dir, &config)
}

/// How often each `n` arrived.
fn numbers(events: &[serde_json::Value]) -> BTreeMap<u64, usize> {
    let mut seen = BTreeMap::new();
    for e in events {
        *seen.entry(e["record"]["n"].as_u64().unwrap()).or_default() += 1;
    }
    seen
}

#[test]
fn a_unix_socket_server_with_acks_and_a_shared_key_fails_over_to_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("down.sock");
    let on_unix = downstream(&dir.path().join("u"), &format!("unix:{}", socket.display()));
    let tcp = free_port();
    let on_tcp = downstream(&dir.path().join("t"), &format!("127.0.0.1:{tcp}"));
    let (fwd, mon) = (free_port(), free_port());
    let config = format!(
        "inputs:\n  - type: forward\n    listen: 127.0.0.1:{fwd}\noutput:\n  type: forward\n  flush_interval: 100ms\n  self_hostname: up\n  servers:\n    - {{ unix: {}, shared_key: k3y }}\n    - {{ host: 127.0.0.1, port: {tcp}, shared_key: k3y, standby: true }}\nmonitor:\n  listen: 127.0.0.1:{mon}\n",
        socket.display()
    );
    let up = Hydra::start(dir.path(), &config);

    // Acked end to end (`ack: delivered`): each ack means the unix server
    // acked the chunk.
    assert!(send_numbered(fwd, 0, 500, 50, 10, "u"));
    let first = on_unix.wait_events(500, 10);
    assert_eq!(numbers(&first).len(), 500, "all 500 over the unix socket");
    assert!(on_tcp.events().is_empty(), "the standby got nothing");
    let v: serde_json::Value = serde_json::from_str(&http_get(mon, "/")).unwrap();
    let servers = v["servers"].to_string();
    assert!(
        servers.contains(&format!("unix:{}", socket.display())),
        "the monitor names the unix server: {servers}"
    );

    // The unix server goes away: the rest reach the TCP standby.
    assert!(on_unix.stop().success());
    assert!(send_numbered(fwd, 500, 1000, 50, 20, "u"));
    let second = on_tcp.wait_events(500, 10);
    let mut all = numbers(&first);
    for (n, c) in numbers(&second) {
        *all.entry(n).or_default() += c;
    }
    let lost: Vec<u64> = (0..1000).filter(|n| !all.contains_key(n)).collect();
    let doubled = all.values().filter(|c| **c > 1).count();
    println!(
        "unix → tcp failover: lost {}, doubled {doubled}",
        lost.len()
    );
    assert!(lost.is_empty(), "lost {lost:?}");
    assert!(up.stop().success());
}

#[test]
fn check_config_refuses_unix_with_host_port_or_tls() {
    let dir = tempfile::tempdir().unwrap();
    for (server, key) in [
        ("{ unix: /run/f.sock, host: agg }", "host"),
        ("{ unix: /run/f.sock, port: 24224 }", "port"),
        ("{ unix: /run/f.sock, tls: { ca: /etc/ca.crt } }", "tls"),
    ] {
        let err = refused(
            dir.path(),
            "--check-config",
            &format!("output:\n  type: forward\n  servers: [{server}]\n"),
        );
        assert!(
            err.contains(&format!(
                "output.servers[0]: use `unix` or `{key}`, not both"
            )),
            "{server}: {err}"
        );
    }
}
