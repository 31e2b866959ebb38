//! Delivery to an independent implementation: the npm `@fluent-org/logger`
//! FluentServer (installed by scripts/install-test-deps), with acks, and
//! with the shared-key handshake.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use hydra_buffer::Buffer;
use hydra_sender::{Sender, SenderConfig, ServerConfig};

async fn deliver_to(server: &NodeServer, shared_key: Option<&str>) -> (Sender, Arc<AtomicUsize>) {
    let buffer = Buffer::new(small_chunks());
    let mut target = ServerConfig::new("127.0.0.1", server.port);
    target.shared_key = shared_key.map(str::to_owned);
    let config = SenderConfig {
        servers: vec![target],
        self_hostname: "hydra-test".to_owned(),
        ack_timeout: Duration::from_secs(5),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        ..SenderConfig::default()
    };
    let sender = Sender::spawn(config, buffer.clone()).unwrap();
    let committed = Arc::new(AtomicUsize::new(0));
    produce(&buffer, 0, 2_000, &committed).await;
    buffer.close();
    (sender, committed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fluent_server_with_acks() {
    let server = NodeServer::start(&[]);
    let (sender, committed) = deliver_to(&server, None).await;
    tokio::time::timeout(Duration::from_secs(30), sender.finished())
        .await
        .expect("acked within 30 s");
    assert_eq!(committed.load(Ordering::SeqCst), 2_000);
    let (missing, dups) = tally(&server.numbers(), 2_000);
    assert!(missing.is_empty(), "missing {}", missing.len());
    assert_eq!(dups, 0);
    let first = server.entries()[0].clone();
    assert_eq!(first["tag"], "test.tag");
    assert_eq!(first["record"]["message"], "event number 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fluent_server_with_shared_key() {
    let server = NodeServer::start(&["--shared-key", "s3cret", "--hostname", "aggregator"]);
    let (sender, committed) = deliver_to(&server, Some("s3cret")).await;
    tokio::time::timeout(Duration::from_secs(30), sender.finished())
        .await
        .expect("acked within 30 s");
    assert_eq!(committed.load(Ordering::SeqCst), 2_000);
    let (missing, dups) = tally(&server.numbers(), 2_000);
    assert!(missing.is_empty(), "missing {}", missing.len());
    assert_eq!(dups, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fluent_server_with_the_wrong_key_gets_nothing() {
    let server = NodeServer::start(&["--shared-key", "s3cret", "--hostname", "aggregator"]);
    let (sender, committed) = deliver_to(&server, Some("wrong")).await;
    let refused = eventually(10, || {
        sender.stats().servers[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("handshake"))
    })
    .await;
    assert!(refused, "{:?}", sender.stats().servers[0]);
    assert!(server.numbers().is_empty());
    // Nothing was committed: the events wait for a server that accepts them.
    assert_eq!(committed.load(Ordering::SeqCst), 0);
    sender.abort();
}
