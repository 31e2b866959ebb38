//! Delivery through buffer and sender to real sockets, with faults.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use hydra_buffer::{Buffer, BufferConfig};
use hydra_sender::{Sender, SenderConfig, ServerConfig};

fn config(ports: &[u16]) -> SenderConfig {
    SenderConfig {
        servers: ports
            .iter()
            .map(|p| ServerConfig::new("127.0.0.1", *p))
            .collect(),
        ack_timeout: Duration::from_millis(500),
        send_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_millis(500),
        recover_wait: Duration::from_millis(300),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        ..SenderConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_to_send_and_every_server_down_finishes_at_close() {
    // Regression: with every server down the buffer was never polled, so
    // its end went unnoticed and hydra hung on SIGTERM until killed.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let buffer = Buffer::new(small_chunks());
    let sender = Sender::spawn(config(&[dead]), buffer.clone()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    buffer.close();
    tokio::time::timeout(Duration::from_secs(5), sender.finished())
        .await
        .expect("finished once the buffer closed empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_acked_and_committed() {
    let rx = Receiver::start(Behaviour::Ack).await;
    let buffer = Buffer::new(small_chunks());
    let sender = Sender::spawn(config(&[rx.port()]), buffer.clone()).unwrap();
    let committed = Arc::new(AtomicUsize::new(0));
    produce(&buffer, 0, 10_000, &committed).await;
    buffer.close();
    tokio::time::timeout(Duration::from_secs(20), sender.finished())
        .await
        .expect("all delivered within 20 s");
    let (missing, dups) = tally(&rx.seen.lock().unwrap(), 10_000);
    assert!(
        missing.is_empty(),
        "missing {:?}",
        &missing[..missing.len().min(5)]
    );
    assert_eq!(dups, 0);
    assert_eq!(committed.load(Ordering::SeqCst), 10_000);
    assert_eq!(buffer.stats().events, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_killed_mid_stream_then_back() {
    let primary_port = free_port();
    let primary = Receiver::start_on(primary_port, Behaviour::Ack).await;
    let secondary = Receiver::start(Behaviour::Ack).await;
    let buffer = Buffer::new(small_chunks());
    let sender = Sender::spawn(config(&[primary_port, secondary.port()]), buffer.clone()).unwrap();
    let committed = Arc::new(AtomicUsize::new(0));

    let producer = {
        let (buffer, committed) = (buffer.clone(), committed.clone());
        tokio::spawn(async move {
            for round in 0..20u64 {
                produce(&buffer, round * 500, round * 500 + 500, &committed).await;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };
    assert!(
        eventually(5, || primary.count() > 1000).await,
        "primary got traffic first"
    );
    primary.stop();
    producer.await.unwrap();
    // Everything reached someone; the secondary took over.
    assert!(eventually(20, || committed.load(Ordering::SeqCst) == 10_000).await);
    let mut all = primary.seen.lock().unwrap().clone();
    all.extend(secondary.seen.lock().unwrap().iter());
    let (missing, dups) = tally(&all, 10_000);
    assert!(missing.is_empty(), "lost {} events", missing.len());
    assert!(secondary.count() > 0);
    // Duplicates only for chunks the dead primary received but never acked.
    assert!(dups <= 4 * 100, "{dups} duplicates");

    // The primary comes back: after recover_wait it gets the traffic again.
    let primary = Receiver::start_on(primary_port, Behaviour::Ack).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let before = secondary.count();
    produce(&buffer, 10_000, 11_000, &committed).await;
    assert!(eventually(10, || committed.load(Ordering::SeqCst) == 11_000).await);
    assert_eq!(primary.count(), 1000, "returned primary got the new events");
    assert_eq!(secondary.count(), before);
    buffer.close();
    sender.finished().await;
}

async fn faulty_primary_fails_over(behaviour: Behaviour) {
    let bad = Receiver::start(behaviour).await;
    let good = Receiver::start(Behaviour::Ack).await;
    let buffer = Buffer::new(small_chunks());
    let sender = Sender::spawn(config(&[bad.port(), good.port()]), buffer.clone()).unwrap();
    let committed = Arc::new(AtomicUsize::new(0));
    produce(&buffer, 0, 5_000, &committed).await;
    buffer.close();
    tokio::time::timeout(Duration::from_secs(20), sender.finished())
        .await
        .expect("delivered within 20 s");
    assert_eq!(committed.load(Ordering::SeqCst), 5_000);
    let (missing, _) = tally(&good.seen.lock().unwrap(), 5_000);
    assert!(missing.is_empty(), "{behaviour:?}: lost {}", missing.len());
    // Reconnections are paced by the backoff, not a busy loop.
    let conns = bad.connections.load(Ordering::SeqCst);
    assert!(
        conns < 50,
        "{behaviour:?}: {conns} connections to the faulty server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_acks() {
    faulty_primary_fails_over(Behaviour::NeverAck).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_closes_after_reading() {
    faulty_primary_fails_over(Behaviour::CloseAfterRead).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_accepts_and_stalls() {
    faulty_primary_fails_over(Behaviour::Stall).await;
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_servers_down_producers_wait_and_nothing_is_lost() {
    let port = free_port();
    let max_bytes = 1 << 20;
    let buffer = Buffer::new(BufferConfig {
        max_bytes,
        ..small_chunks()
    });
    let sender = Sender::spawn(config(&[port]), buffer.clone()).unwrap();
    let committed = Arc::new(AtomicUsize::new(0));
    let rss_before = rss_kib();
    let producer = {
        let (buffer, committed) = (buffer.clone(), committed.clone());
        // 100,000 events of ~50 bytes: 5 times the buffer's ceiling.
        tokio::spawn(async move { produce(&buffer, 0, 100_000, &committed).await })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!producer.is_finished(), "the producer should be waiting");
    let stats = buffer.stats();
    assert!(stats.bytes <= max_bytes + 64, "{stats:?}");
    assert!(stats.producer_waits > 0);
    assert_eq!(committed.load(Ordering::SeqCst), 0);
    let grown = rss_kib().saturating_sub(rss_before);
    assert!(
        grown < 16 * 1024,
        "RSS grew by {grown} KiB with a 1 MiB buffer"
    );
    assert!(sender.stats().servers[0].error.is_some());

    let rx = Receiver::start_on(port, Behaviour::Ack).await;
    producer.await.unwrap();
    buffer.close();
    tokio::time::timeout(Duration::from_secs(30), sender.finished())
        .await
        .expect("delivered after the outage");
    let (missing, dups) = tally(&rx.seen.lock().unwrap(), 100_000);
    assert!(missing.is_empty(), "lost {}", missing.len());
    assert_eq!(dups, 0);
    assert_eq!(committed.load(Ordering::SeqCst), 100_000);
}
