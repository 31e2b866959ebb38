//! Helpers for the sender's tests: producing numbered events and counting
//! them (the receivers live in hydra-test-support).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)] // a panic is how a test fails

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hydra_buffer::{Buffer, BufferConfig};
use hydra_forward::EventTime;

/// Appends events numbered `from..to`, one per append, each committing by
/// counting.
pub async fn produce(buffer: &Buffer, from: u64, to: u64, committed: &Arc<AtomicUsize>) {
    for n in from..to {
        let c = committed.clone();
        let record = rmpv::Value::Map(vec![
            (
                rmpv::Value::from("message"),
                rmpv::Value::from(format!("event number {n}")),
            ),
            (rmpv::Value::from("n"), rmpv::Value::from(n)),
        ]);
        buffer
            .append(
                "test.tag",
                48,
                1,
                Some(Box::new(move || {
                    c.fetch_add(1, Ordering::SeqCst);
                })),
                |f| {
                    f.push_record(EventTime::new(1_700_000_000, 0), &record);
                },
            )
            .await
            .unwrap();
    }
}

pub fn small_chunks() -> BufferConfig {
    BufferConfig {
        chunk_bytes: 4096,
        flush_interval: Duration::from_millis(20),
        ..BufferConfig::default()
    }
}

/// Waits (at most `secs`) for `f` to hold.
pub async fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}

/// Each number in `0..n` seen at least once? Returns (missing, duplicated).
pub fn tally(seen: &[u64], n: u64) -> (Vec<u64>, usize) {
    let mut counts: HashMap<u64, usize> = HashMap::new();
    for s in seen {
        *counts.entry(*s).or_default() += 1;
    }
    let missing = (0..n).filter(|i| !counts.contains_key(i)).collect();
    let dups = counts.values().filter(|&&c| c > 1).count();
    (missing, dups)
}

#[allow(unused_imports)] // not every test file uses each
pub use hydra_test_support::{Behaviour, FluentServer as NodeServer, Receiver, free_port};
