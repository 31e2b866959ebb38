//! Per-second rates: the counters of a [`Snapshot`] sampled once a second,
//! so `GET /` can say how fast each file is read and each server is fed,
//! and keep a minute of delivered events/s.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::{Snapshot, SnapshotFn};

/// Seconds of `delivered_history`.
pub const HISTORY: usize = 60;

#[derive(Debug, Default, Clone)]
struct Counters {
    files: HashMap<String, u64>,
    servers: HashMap<String, u64>,
    receiver: u64,
    listeners: HashMap<String, u64>,
    delivered: u64,
}

impl Counters {
    fn of(s: &Snapshot) -> Counters {
        Counters {
            files: s.files.iter().map(|(p, f)| (p.clone(), f.lines)).collect(),
            servers: s
                .servers
                .iter()
                .map(|sv| (sv.address.clone(), sv.messages))
                .collect(),
            receiver: s.receiver.messages,
            listeners: s
                .listeners
                .iter()
                .map(|l| (l.address.join(","), l.messages))
                .collect(),
            delivered: s.buffer.delivered,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    last: Option<(Instant, Counters)>,
    files: HashMap<String, f64>,
    servers: HashMap<String, f64>,
    receiver: f64,
    listeners: HashMap<String, f64>,
    delivered: f64,
    history: VecDeque<f64>,
}

/// Samples a snapshot function's counters and adds rates to its snapshots.
pub struct RateSampler {
    source: SnapshotFn,
    state: Mutex<State>,
}

impl std::fmt::Debug for RateSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateSampler").finish_non_exhaustive()
    }
}

/// A counter's growth per second; a counter that went down (a restart) has
/// no rate yet.
fn rate(now: u64, before: Option<&u64>, secs: f64) -> f64 {
    match before {
        #[allow(clippy::cast_precision_loss)]
        Some(b) if now >= *b && secs > 0.0 => (now - b) as f64 / secs,
        _ => 0.0,
    }
}

impl RateSampler {
    /// A sampler of `source`; call [`RateSampler::run`] (or
    /// [`RateSampler::sample_at`]) to take samples.
    pub fn new(source: SnapshotFn) -> Arc<RateSampler> {
        Arc::new(RateSampler {
            source,
            state: Mutex::default(),
        })
    }

    /// Takes a sample at `now`, replacing the rates with those since the
    /// previous sample.
    pub fn sample_at(&self, now: Instant) {
        let counters = Counters::of(&(self.source)());
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((then, before)) = st.last.take() {
            let secs = now.saturating_duration_since(then).as_secs_f64();
            st.files = counters
                .files
                .iter()
                .map(|(p, n)| (p.clone(), rate(*n, before.files.get(p), secs)))
                .collect();
            st.servers = counters
                .servers
                .iter()
                .map(|(a, n)| (a.clone(), rate(*n, before.servers.get(a), secs)))
                .collect();
            st.receiver = rate(counters.receiver, Some(&before.receiver), secs);
            st.listeners = counters
                .listeners
                .iter()
                .map(|(a, n)| (a.clone(), rate(*n, before.listeners.get(a), secs)))
                .collect();
            st.delivered = rate(counters.delivered, Some(&before.delivered), secs);
            let delivered = st.delivered;
            if st.history.len() == HISTORY {
                st.history.pop_front();
            }
            st.history.push_back(delivered);
        }
        st.last = Some((now, counters));
    }

    /// Samples once a second until `stop` resolves.
    pub async fn run(self: Arc<Self>, stop: impl Future<Output = ()>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = tick.tick() => self.sample_at(Instant::now()),
                () = &mut stop => return,
            }
        }
    }

    /// Snapshots of the source with the latest rates filled in.
    pub fn snapshot_fn(self: &Arc<Self>) -> SnapshotFn {
        let me = self.clone();
        Arc::new(move || {
            let mut snap = (me.source)();
            let st = me.state.lock().unwrap_or_else(PoisonError::into_inner);
            for (path, f) in &mut snap.files {
                f.lines_per_sec = st.files.get(path).copied().unwrap_or(0.0);
            }
            for sv in &mut snap.servers {
                sv.events_per_sec = st.servers.get(&sv.address).copied().unwrap_or(0.0);
            }
            snap.receiver.events_per_sec = st.receiver;
            for l in &mut snap.listeners {
                l.events_per_sec = st
                    .listeners
                    .get(&l.address.join(","))
                    .copied()
                    .unwrap_or(0.0);
            }
            snap.delivered_per_sec = st.delivered;
            snap.delivered_history = st.history.iter().copied().collect();
            snap
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::{File, Server};

    #[test]
    fn rates_from_counter_deltas() {
        let n = Arc::new(AtomicU64::new(0));
        let c = n.clone();
        let source: SnapshotFn = Arc::new(move || {
            let v = c.load(Ordering::Relaxed);
            let mut s = Snapshot::default();
            s.files.insert(
                "/a".into(),
                File {
                    lines: v,
                    ..File::default()
                },
            );
            s.servers.push(Server {
                address: "h:1".into(),
                messages: v * 2,
                ..Server::default()
            });
            s.receiver.messages = v * 3;
            s.buffer.delivered = v * 2;
            s
        });
        let sampler = RateSampler::new(source);
        let snap = sampler.snapshot_fn();
        let t0 = Instant::now();
        sampler.sample_at(t0);
        assert_eq!(snap().delivered_history, Vec::<f64>::new());
        n.store(100, Ordering::Relaxed);
        sampler.sample_at(t0 + Duration::from_secs(2));
        let s = snap();
        assert_eq!(s.files["/a"].lines_per_sec, 50.0);
        assert_eq!(s.servers[0].events_per_sec, 100.0);
        assert_eq!(s.receiver.events_per_sec, 150.0);
        assert_eq!(s.delivered_per_sec, 100.0);
        assert_eq!(s.delivered_history, vec![100.0]);
        // A counter that goes down (the agent restarted) has no rate.
        n.store(10, Ordering::Relaxed);
        sampler.sample_at(t0 + Duration::from_secs(3));
        assert_eq!(snap().files["/a"].lines_per_sec, 0.0);
        for i in 0..100u64 {
            sampler.sample_at(t0 + Duration::from_secs(4 + i));
        }
        assert_eq!(snap().delivered_history.len(), HISTORY);
    }
}
