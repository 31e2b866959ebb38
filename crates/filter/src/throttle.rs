//! A token bucket per tag. Waiting takes the tokens as debt and sleeps it
//! off, so a batch larger than the burst still passes, at the rate.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hydra_forward::Event;
use tokio::time::Instant;

/// Tags tracked at most: a forward client can send any number of tags.
/// Past it the buckets start over (each tag gets a burst again).
const MAX_TAGS: usize = 10_000;

#[derive(Debug)]
pub(crate) struct Throttle {
    per_sec: f64,
    burst: f64,
    drop: bool,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Below zero: owed, slept off by whoever took it.
    tokens: f64,
    at: Instant,
}

impl Throttle {
    pub(crate) fn new(per_sec: f64, burst: Option<u64>, drop: bool) -> Self {
        Throttle {
            per_sec,
            burst: burst.map_or(per_sec.max(1.0), |b| b as f64),
            drop,
            buckets: Mutex::default(),
        }
    }

    /// Events let through at once.
    pub(crate) fn step(&self) -> usize {
        // The burst is at least 1 and came from a u64 or a rate.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = self.burst.clamp(1.0, 65_536.0) as usize;
        n
    }

    /// Lets `events` through at the rate: waits (the milliseconds waited
    /// are returned), or with `drop` keeps only what the bucket holds.
    pub(crate) async fn admit(&self, tag: &str, events: &mut Vec<Event>) -> usize {
        let n = events.len() as f64;
        let now = Instant::now();
        let wait = {
            let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
            if buckets.len() >= MAX_TAGS && !buckets.contains_key(tag) {
                buckets.clear();
            }
            let b = buckets.entry(tag.to_owned()).or_insert(Bucket {
                tokens: self.burst,
                at: now,
            });
            let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
            b.tokens = (b.tokens + elapsed * self.per_sec).min(self.burst);
            b.at = now;
            if self.drop {
                let keep = b.tokens.max(0.0).min(n).floor();
                b.tokens -= keep;
                // Whole events only: `keep` is at most `n`, a usize.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                events.truncate(keep as usize);
                return 0;
            }
            b.tokens -= n;
            if b.tokens >= 0.0 {
                return 0;
            }
            Duration::from_secs_f64(-b.tokens / self.per_sec)
        };
        tokio::time::sleep(wait).await;
        usize::try_from(wait.as_millis()).unwrap_or(usize::MAX)
    }
}
