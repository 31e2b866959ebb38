//! Whether the pipeline is alive and delivering: each part counts its
//! turns (its pulse), a task looks at every count once a second, and the
//! verdict feeds `GET /health`, `GET /live` and systemd's watchdog.
//!
//! A part is wedged when its count stops moving: a thread stuck in a
//! read, a task that panicked or blocks its worker, a runtime that no
//! longer runs tasks. Waiting is not being wedged: every wait in these
//! parts beats while it waits ([`beating`]), so an aggregator that is away
//! never makes hydra look wedged, only not delivering.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hydra_stats::{Health, Reason};

/// How often the parts beat, at least, while well.
pub(crate) const BEAT: Duration = Duration::from_secs(1);

/// How early a look may come.
const JITTER: Duration = Duration::from_millis(100);

/// A count that has not moved for this long is a wedged part: five missed
/// beats, far past any pause of a well machine.
pub(crate) const STALLED_AFTER: Duration = Duration::from_secs(5);

/// Awaits `fut`, counting a beat at least every [`BEAT`] meanwhile: the
/// task that awaits is turning, even when what it waits for takes long.
pub(crate) async fn beating<F: Future>(beats: &AtomicU64, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    loop {
        beats.fetch_add(1, Ordering::Relaxed);
        if let Ok(out) = tokio::time::timeout(BEAT, &mut fut).await {
            return out;
        }
    }
}

/// What the parts say at one look.
#[derive(Debug, Clone, Default)]
pub(crate) struct Signals {
    /// The tailer's reading thread, with tail inputs.
    pub(crate) tail: Option<hydra_tail::Pulse>,
    /// The task that takes read lines into the buffer, with tail inputs.
    pub(crate) consumer: Option<u64>,
    /// The forward output's dispatcher.
    pub(crate) sender: Option<u64>,
    /// Each forward input's acceptor.
    pub(crate) inputs: Vec<u64>,
    /// Events delivered so far.
    pub(crate) delivered: u64,
    /// Events wait for delivery, in memory or on disk.
    pub(crate) waiting: bool,
    pub(crate) disk_full: bool,
    pub(crate) disk_failing: bool,
}

/// A count, and when it last moved.
#[derive(Debug, Clone, Copy)]
struct Seen {
    value: u64,
    moved: Instant,
}

impl Seen {
    /// Whether `value` has not moved for `after`.
    fn stalled(seen: &mut Option<Seen>, value: u64, now: Instant, after: Duration) -> bool {
        match seen {
            // Looks come a beat apart, give or take the timer's jitter:
            // without the slack, "3 s" would often mean 4.
            Some(s) if s.value == value => now.duration_since(s.moved) + JITTER >= after,
            _ => {
                *seen = Some(Seen { value, moved: now });
                false
            }
        }
    }
}

/// Turns each look at the [`Signals`] into a [`Health`].
#[derive(Debug)]
pub(crate) struct Tracker {
    unhealthy_after: Duration,
    tail: Option<Seen>,
    consumer: Option<Seen>,
    sender: Option<Seen>,
    inputs: Vec<Option<Seen>>,
    /// Since when events have waited with none delivered.
    delivered: Option<Seen>,
}

impl Tracker {
    pub(crate) fn new(unhealthy_after: Duration) -> Tracker {
        Tracker {
            unhealthy_after,
            tail: None,
            consumer: None,
            sender: None,
            inputs: Vec::new(),
            delivered: None,
        }
    }

    pub(crate) fn observe(&mut self, s: &Signals, now: Instant) -> Health {
        let mut h = Health::ok();
        if let Some(t) = s.tail {
            if t.died {
                h.add(Reason::TailReaderDied);
            } else if Seen::stalled(&mut self.tail, t.beats, now, STALLED_AFTER) {
                h.add(Reason::TailReaderStalled);
            }
            if t.positions_failing {
                h.add(Reason::PositionsUnwritable);
            }
        }
        if let Some(c) = s.consumer
            && Seen::stalled(&mut self.consumer, c, now, STALLED_AFTER)
        {
            h.add(Reason::TailConsumerStalled);
        }
        if let Some(c) = s.sender
            && Seen::stalled(&mut self.sender, c, now, STALLED_AFTER)
        {
            h.add(Reason::SenderStalled);
        }
        self.inputs.resize(s.inputs.len(), None);
        for (seen, &c) in self.inputs.iter_mut().zip(&s.inputs) {
            if Seen::stalled(seen, c, now, STALLED_AFTER) {
                h.add(Reason::InputStalled);
            }
        }
        if s.waiting {
            if Seen::stalled(&mut self.delivered, s.delivered, now, self.unhealthy_after) {
                h.add(Reason::NotDelivering);
            }
        } else {
            // Nothing waits: the clock starts when something does.
            self.delivered = None;
        }
        if s.disk_full {
            h.add(Reason::DiskFull);
        }
        if s.disk_failing {
            h.add(Reason::DiskFailing);
        }
        h
    }
}

/// The last verdict and when it was made, shared by the task that makes
/// it and whoever asks.
#[derive(Debug, Clone)]
pub(crate) struct Verdicts(Arc<Mutex<(Instant, Health)>>);

impl Verdicts {
    pub(crate) fn new() -> Verdicts {
        Verdicts(Arc::new(Mutex::new((Instant::now(), Health::ok()))))
    }

    fn set(&self, h: Health) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = (Instant::now(), h);
    }

    /// The last verdict; a stale one means the looking task itself no
    /// longer runs.
    pub(crate) fn now(&self) -> Health {
        let (at, mut h) = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if at.elapsed() > STALLED_AFTER {
            h.add(Reason::ChecksStalled);
        }
        h
    }
}

/// Looks at `signals` every [`BEAT`] and publishes the verdict, until
/// aborted.
pub(crate) async fn watch(
    mut tracker: Tracker,
    signals: impl Fn() -> Signals + Send + 'static,
    verdicts: Verdicts,
) {
    let mut tick = tokio::time::interval(BEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        verdicts.set(tracker.observe(&signals(), Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, secs: u64) -> Instant {
        start + Duration::from_secs(secs)
    }

    #[test]
    fn a_count_that_stops_moving_is_wedged_and_waiting_is_not() {
        let start = Instant::now();
        let mut t = Tracker::new(Duration::from_secs(3));
        let mut s = Signals {
            tail: Some(hydra_tail::Pulse::default()),
            consumer: Some(0),
            sender: Some(0),
            inputs: vec![0, 0],
            ..Signals::default()
        };
        assert!(t.observe(&s, start).healthy());
        // Every part beats; the aggregator is away: events wait, none is
        // delivered.
        s.waiting = true;
        for sec in 1..=10 {
            if let Some(p) = s.tail.as_mut() {
                p.beats += 1;
            }
            s.consumer = s.consumer.map(|c| c + 1);
            s.sender = s.sender.map(|c| c + 1);
            s.inputs.iter_mut().for_each(|c| *c += 1);
            let h = t.observe(&s, at(start, sec));
            assert!(h.live(), "second {sec}: {h:?}");
            assert_eq!(
                h.healthy(),
                sec <= 3,
                "second {sec}: unhealthy once waiting 3 s: {h:?}"
            );
        }
        // A delivery: healthy again at once.
        s.delivered = 5;
        assert!(t.observe(&s, at(start, 11)).healthy());
        // One input stops turning.
        for sec in 12..=20 {
            s.inputs[0] += 1;
            s.sender = s.sender.map(|c| c + 1);
            s.consumer = s.consumer.map(|c| c + 1);
            if let Some(p) = s.tail.as_mut() {
                p.beats += 1;
            }
            s.delivered += 1;
            let h = t.observe(&s, at(start, sec));
            assert_eq!(
                h.reasons.contains(&Reason::InputStalled),
                sec >= 10 + 5,
                "second {sec}: {h:?}"
            );
        }
    }

    #[test]
    fn a_dead_reader_failing_positions_and_the_disk_are_reported() {
        let start = Instant::now();
        let mut t = Tracker::new(Duration::from_secs(60));
        let s = Signals {
            tail: Some(hydra_tail::Pulse {
                beats: 1,
                died: true,
                positions_failing: true,
            }),
            disk_full: true,
            disk_failing: true,
            ..Signals::default()
        };
        let h = t.observe(&s, start);
        assert_eq!(
            h.reasons,
            [
                Reason::DiskFull,
                Reason::DiskFailing,
                Reason::PositionsUnwritable,
                Reason::TailReaderDied
            ]
        );
        assert!(!h.live());
        assert!(t.observe(&Signals::default(), at(start, 1)).healthy());
    }

    #[tokio::test(start_paused = true)]
    async fn beating_counts_while_it_waits() {
        let beats = AtomicU64::new(0);
        let out = beating(&beats, async {
            tokio::time::sleep(Duration::from_millis(3500)).await;
            7
        })
        .await;
        assert_eq!(out, 7);
        assert_eq!(beats.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn a_stale_verdict_means_the_checks_stopped() {
        let v = Verdicts::new();
        assert!(v.now().healthy());
        *v.0.lock().unwrap() = (Instant::now() - Duration::from_secs(6), Health::ok());
        assert_eq!(v.now().reasons, [Reason::ChecksStalled]);
    }
}
