//! hydra-logger against the npm FluentServer and hydra's own forward input.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

use std::collections::BTreeMap;
use std::time::Duration;

use hydra_logger::{BlockingLogger, FluentLayer, Logger};
use hydra_test_support::{FluentServer, free_port, wait_until};
use serde::Serialize;

#[derive(Serialize)]
struct Access<'a> {
    path: &'a str,
    status: u16,
    n: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_are_acked_by_fluent_server() {
    let server = FluentServer::start(&[]);
    let logger = Logger::builder()
        .address("127.0.0.1", server.port)
        .build()
        .unwrap();
    for n in 0..500 {
        logger
            .post(
                "app.access",
                &Access {
                    path: "/",
                    status: 200,
                    n,
                },
            )
            .await
            .unwrap();
    }
    assert_eq!(logger.close(Duration::from_secs(10)).await, 0);
    server.settle();
    let entries = server.entries();
    assert_eq!(entries.len(), 500);
    assert_eq!(entries[7]["tag"], "app.access");
    assert_eq!(entries[7]["record"]["status"], 200);
    assert_eq!(entries[7]["record"]["path"], "/");
    assert!(
        logger.post("x", &BTreeMap::from([("a", 1)])).await.is_err(),
        "closed"
    );
    // Not a map: refused with a clear error.
    let err = logger.try_post("x", &42).unwrap_err().to_string();
    assert!(err.contains("map"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_shared_key() {
    let server = FluentServer::start(&["--shared-key", "k3y", "--hostname", "agg"]);
    let logger = Logger::builder()
        .address("127.0.0.1", server.port)
        .shared_key("k3y", "svc-1")
        .build()
        .unwrap();
    for n in 0..20 {
        logger
            .post(
                "app.secure",
                &Access {
                    path: "/s",
                    status: 201,
                    n,
                },
            )
            .await
            .unwrap();
    }
    assert_eq!(logger.close(Duration::from_secs(10)).await, 0);
    server.settle();
    assert_eq!(server.numbers().len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_hydras_forward_input() {
    let server = FluentServer::start(&[]);
    let fwd = free_port();
    let config = hydra_config::Config::from_yaml(&format!(
        "inputs:\n  - type: forward\n    listen: 127.0.0.1:{fwd}\n    ack: delivered\noutput:\n  type: forward\n  flush_interval: 50ms\n  servers: [{{ host: 127.0.0.1, port: {} }}]\n",
        server.port
    ))
    .unwrap();
    let agent = hydra_agent::Agent::start(config).await.unwrap();
    let logger = Logger::builder().address("127.0.0.1", fwd).build().unwrap();
    for n in 0..300 {
        logger
            .post(
                "via.hydra",
                &Access {
                    path: "/h",
                    status: 200,
                    n,
                },
            )
            .await
            .unwrap();
    }
    // With `ack: delivered`, hydra acks only once FluentServer acked.
    assert_eq!(logger.close(Duration::from_secs(10)).await, 0);
    server.settle();
    let mut ns = server.numbers();
    ns.sort_unstable();
    assert_eq!(ns, (0..300).collect::<Vec<_>>());
    assert!(server.entries().iter().all(|e| e["tag"] == "via.hydra"));
    assert_eq!(agent.stop().await.undelivered_events, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_hydras_forward_input_on_a_unix_socket() {
    // The logger on a unix socket (as to fluentd's in_unix), hydra's
    // forward input listening there with its default `ack: delivered`.
    let server = FluentServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("forward.sock");
    let config = hydra_config::Config::from_yaml(&format!(
        "inputs:\n  - type: forward\n    listen: unix:{}\noutput:\n  type: forward\n  servers: [{{ host: 127.0.0.1, port: {} }}]\n",
        sock.display(),
        server.port
    ))
    .unwrap();
    let agent = hydra_agent::Agent::start(config).await.unwrap();
    let logger = Logger::builder().unix(&sock).build().unwrap();
    for n in 0..200 {
        let record = Access {
            path: "/u",
            status: 200,
            n,
        };
        logger.post("via.unix", &record).await.unwrap();
    }
    assert_eq!(logger.close(Duration::from_secs(10)).await, 0);
    server.settle();
    let mut ns = server.numbers();
    ns.sort_unstable();
    assert_eq!(ns, (0..200).collect::<Vec<_>>());
    assert_eq!(agent.stop().await.undelivered_events, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_wait_for_a_server_that_comes_later() {
    let port = free_port();
    let logger = Logger::builder()
        .address("127.0.0.1", port)
        .build()
        .unwrap();
    for n in 0..100 {
        logger
            .post(
                "late",
                &Access {
                    path: "/",
                    status: 200,
                    n,
                },
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(logger.pending(), 100);
    let port_arg = port.to_string();
    let server = FluentServer::start(&["--port", &port_arg]);
    assert_eq!(logger.close(Duration::from_secs(20)).await, 0);
    server.settle();
    assert_eq!(server.numbers().len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_post_never_waits_and_counts_what_it_drops() {
    let logger = Logger::builder()
        .address("127.0.0.1", free_port())
        .max_buffer_bytes(2048)
        .build()
        .unwrap();
    let mut taken = 0;
    for n in 0..1000 {
        if logger
            .try_post(
                "full",
                &Access {
                    path: "/a/rather/long/path/to/fill/the/buffer",
                    status: 500,
                    n,
                },
            )
            .unwrap()
        {
            taken += 1;
        }
    }
    assert!(taken > 0 && taken < 1000, "{taken}");
    assert_eq!(logger.dropped(), 1000 - taken);
    assert_eq!(logger.pending() as u64, taken);
    assert_eq!(logger.close(Duration::from_millis(100)).await as u64, taken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tracing_layer_ships_level_target_message_and_fields() {
    use tracing_subscriber::layer::SubscriberExt;
    let server = FluentServer::start(&[]);
    let logger = Logger::builder()
        .address("127.0.0.1", server.port)
        .build()
        .unwrap();
    let subscriber =
        tracing_subscriber::registry().with(FluentLayer::new(logger.clone(), "app.trace"));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(target: "billing", user = "alice", amount = 42u64, ok = true, "Charged.");
        tracing::warn!(target: "billing", "Card expires soon.");
    });
    assert_eq!(logger.close(Duration::from_secs(10)).await, 0);
    server.settle();
    let entries = server.entries();
    assert_eq!(entries.len(), 2);
    let first = &entries[0]["record"];
    assert_eq!(entries[0]["tag"], "app.trace");
    assert_eq!(first["level"], "INFO");
    assert_eq!(first["target"], "billing");
    assert_eq!(first["message"], "Charged.");
    assert_eq!(first["user"], "alice");
    assert_eq!(first["amount"], 42);
    assert_eq!(first["ok"], true);
    assert_eq!(entries[1]["record"]["level"], "WARN");
}

#[test]
fn the_blocking_facade() {
    let server = FluentServer::start(&[]);
    let logger = BlockingLogger::new(Logger::builder().address("127.0.0.1", server.port)).unwrap();
    for n in 0..10 {
        logger
            .post(
                "blocking",
                &Access {
                    path: "/b",
                    status: 200,
                    n,
                },
            )
            .unwrap();
    }
    assert_eq!(logger.close(Duration::from_secs(10)), 0);
    assert!(wait_until(Duration::from_secs(5), || server
        .numbers()
        .len()
        == 10));
}
