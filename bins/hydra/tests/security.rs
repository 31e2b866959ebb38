//! TLS and the shared-key handshake, both sides, against the npm client
//! and the npm FluentServer, with certificates made at test time.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use hydra_test_support::{FluentServer, Pki};

/// The npm @fluent-org/logger client sending `n` events with acks.
fn npm_client(
    port: u16,
    tag: &str,
    n: u32,
    key: Option<&str>,
    ca: Option<&std::path::Path>,
) -> std::process::Output {
    let script = repo().join("bins/hydra/tests/js/clients.js");
    let mut cmd = Command::new("node");
    cmd.arg(script)
        .args([
            "fluentorg",
            "PackedForward",
            &port.to_string(),
            tag,
            &n.to_string(),
        ])
        .env("NODE_PATH", node_modules());
    if let Some(k) = key {
        cmd.env("SHARED_KEY", k);
    }
    if let Some(ca) = ca {
        cmd.env("TLS_CA", ca);
    }
    cmd.output().unwrap()
}

fn secured_input(fwd: u16, mon: u16, pki: &Pki, tls: bool, key: bool) -> String {
    let mut input = format!("  - type: forward\n    listen: 127.0.0.1:{fwd}\n");
    if tls {
        input.push_str(&format!(
            "    tls: {{ cert: {}, key: {} }}\n",
            pki.server_cert.display(),
            pki.server_key.display()
        ));
    }
    if key {
        input.push_str("    security:\n      self_hostname: hydra-test\n      shared_key_env: HYDRA_TEST_KEY\n");
    }
    format!("inputs:\n{input}output:\n  type: stdout\nmonitor:\n  listen: 127.0.0.1:{mon}\n")
}

#[test]
fn npm_client_with_shared_key_tls_and_both() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    // SAFETY of the test: the variable is read by the hydra child only.
    let cases = [
        (false, true, "key"),
        (true, false, "tls"),
        (true, true, "both"),
    ];
    for (tls, key, name) in cases {
        let (fwd, mon) = (free_port(), free_port());
        let config = secured_input(fwd, mon, &pki, tls, key);
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, &config).unwrap();
        let h = Hydra::start_with_env(dir.path(), &config, &[("HYDRA_TEST_KEY", "s3cret")]);
        let out = npm_client(
            fwd,
            name,
            20,
            key.then_some("s3cret"),
            tls.then_some(pki.ca.as_path()),
        );
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(h.wait_events(20, 10).len(), 20, "{name}");
        assert!(h.stop().success());
    }
}

#[test]
fn a_wrong_key_is_refused_counted_and_others_keep_going() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let (fwd, mon) = (free_port(), free_port());
    let config = secured_input(fwd, mon, &pki, false, true);
    let h = Hydra::start_with_env(dir.path(), &config, &[("HYDRA_TEST_KEY", "s3cret")]);
    let bad = npm_client(fwd, "bad", 3, Some("wrong"), None);
    assert!(!bad.status.success());
    let good = npm_client(fwd, "good", 5, Some("s3cret"), None);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let events = h.wait_events(5, 10);
    assert!(events.iter().all(|e| e["tag"] == "good"));
    let v: serde_json::Value = serde_json::from_str(&http_get(mon, "/")).unwrap();
    assert!(v["receiver"]["auth_failures"].as_u64().unwrap() >= 1, "{v}");
    assert!(h.wait_log("shared_key mismatch", 5));
    // The key never appears in the logs or the stats.
    assert!(
        !h.stderr
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("s3cret"))
    );
    assert!(!http_get(mon, "/").contains("s3cret"));
    assert!(h.stop().success());
}

#[test]
fn hydra_output_with_shared_key_and_tls_and_a_mismatched_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let (cert, key) = (
        pki.server_cert.display().to_string(),
        pki.server_key.display().to_string(),
    );
    let (rcert, rkey) = (
        pki.rogue_cert.display().to_string(),
        pki.rogue_key.display().to_string(),
    );
    // Primary: a certificate from another CA. Secondary: the right one.
    let rogue = FluentServer::start(&[
        "--shared-key",
        "k3y",
        "--hostname",
        "agg-rogue",
        "--tls-cert",
        &rcert,
        "--tls-key",
        &rkey,
    ]);
    let good = FluentServer::start(&[
        "--shared-key",
        "k3y",
        "--hostname",
        "agg-good",
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
    ]);
    let keyfile = dir.path().join("key");
    std::fs::write(&keyfile, "k3y\n").unwrap();
    let (fwd, mon) = (free_port(), free_port());
    let server = |port: u16| {
        format!(
            "    - {{ host: 127.0.0.1, port: {port}, shared_key_file: {}, tls: {{ ca: {}, server_name: localhost }} }}\n",
            keyfile.display(),
            pki.ca.display()
        )
    };
    let config = format!(
        "inputs:\n  - type: forward\n    listen: 127.0.0.1:{fwd}\noutput:\n  type: forward\n  self_hostname: hydra-test\n  flush_interval: 50ms\n  connect_timeout: 1s\n  servers:\n{}{}monitor:\n  listen: 127.0.0.1:{mon}\n",
        server(rogue.port),
        server(good.port)
    );
    let h = Hydra::start(dir.path(), &config);
    let port = fwd.to_string();
    let input: String = (0..50).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let mut child = Command::new(hydra_cat_bin())
        .args(["-p", &port, "secure.out"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(
        wait(15, || good.numbers().len() == 50),
        "got {}",
        good.numbers().len()
    );
    assert!(rogue.numbers().is_empty());
    let v: serde_json::Value = serde_json::from_str(&http_get(mon, "/")).unwrap();
    let err = v["servers"][0]["error"].as_str().unwrap().to_owned();
    assert!(
        err.contains("TLS") && err.to_lowercase().contains("certificate"),
        "{err}"
    );
    assert_eq!(v["servers"][1]["alive"], true);
    // --check-config does not print the key file's contents.
    let shown = Command::new(hydra_bin())
        .arg("--check-config")
        .arg(&h.config)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&shown.stdout).contains("k3y"));
    assert!(h.stop().success());
    std::thread::sleep(Duration::from_millis(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_connections_end_with_close_notify_both_ways() {
    // A TLS client → hydra's TLS input → hydra's TLS output → a TLS
    // server, defaults otherwise (`ack: delivered`). When hydra stops,
    // both of its connections end with close_notify: the peers read a
    // clean end, not an unexpected EOF (which fluentd and Fluent Bit log as
    // an error at every stop).
    use hydra_forward::{BatchMode, ChunkId, EventTime, ForwardDecoder, FrameBuilder, Request};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_util::codec::Decoder;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let acceptor = hydra_tls::server_config(&hydra_tls::ServerTls {
        cert: pki.server_cert.clone(),
        key: pki.server_key.clone(),
        client_ca: None,
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server_port = listener.local_addr().unwrap().port();
    // How the server's connection from hydra ended, and what it received.
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.unwrap();
        let mut decoder = ForwardDecoder::new();
        let mut buf = bytes::BytesMut::new();
        let mut events = 0;
        loop {
            match tls.read_buf(&mut buf).await {
                Ok(0) => return (Ok(()), events),
                Ok(_) => {}
                Err(e) => return (Err(e.kind()), events),
            }
            while let Ok(Some(r)) = decoder.decode(&mut buf) {
                if let Request::Events(b) = r {
                    events += b.len();
                    if let Some(ack) = b.ack() {
                        tls.write_all(&ack).await.unwrap();
                    }
                }
            }
        }
    });
    let (fwd, mon) = (free_port(), free_port());
    let config = format!(
        "inputs:\n  - type: forward\n    listen: 127.0.0.1:{fwd}\n    tls: {{ cert: {}, key: {} }}\noutput:\n  type: forward\n  servers:\n    - {{ host: 127.0.0.1, port: {server_port}, tls: {{ ca: {}, server_name: localhost }} }}\nmonitor:\n  listen: 127.0.0.1:{mon}\n",
        pki.server_cert.display(),
        pki.server_key.display(),
        pki.ca.display()
    );
    let h = Hydra::start(dir.path(), &config);
    let client_tls = hydra_tls::ClientTls {
        ca: Some(pki.ca.clone()),
        ..hydra_tls::ClientTls::default()
    };
    let connector = hydra_tls::client_config(&client_tls).unwrap();
    let name = hydra_tls::server_name(&client_tls, "localhost").unwrap();
    let mut client = None;
    for _ in 0..100 {
        if let Ok(tcp) = tokio::net::TcpStream::connect(("127.0.0.1", fwd)).await {
            client = Some(connector.connect(name.clone(), tcp).await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut client = client.expect("hydra's TLS input did not come up");
    let mut f = FrameBuilder::new(
        "tls.close",
        BatchMode::PackedForward,
        hydra_forward::TimeFormat::EventTime,
    );
    for i in 0..10u32 {
        f.push_fields(
            EventTime::new(1_700_000_000, i),
            &[("message", b"over TLS")],
        );
    }
    client
        .write_all(&f.finish(Some(&ChunkId::from_id("close-notify")), None))
        .await
        .unwrap();
    let mut ack = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(20), client.read(&mut ack))
        .await
        .expect("no ack within 20 s")
        .unwrap();
    assert!(n > 0, "hydra closed the connection instead of acking");
    assert!(h.stop().success());
    let end = tokio::time::timeout(Duration::from_secs(10), client.read(&mut ack))
        .await
        .expect("hydra's input did not end the client's connection");
    println!("client side: {end:?}");
    assert!(
        matches!(end, Ok(0)),
        "the client saw {end:?}, not close_notify"
    );
    let (server_end, events) = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("hydra's output did not end its connection")
        .unwrap();
    println!("server side: {server_end:?} after {events} events");
    assert_eq!(events, 10);
    assert!(
        server_end.is_ok(),
        "the server saw {server_end:?}, not close_notify"
    );
}
