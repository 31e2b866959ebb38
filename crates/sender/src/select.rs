//! Which server gets the next chunk: failover or weighted round robin.

use std::time::{Duration, Instant};

/// How chunks are spread over servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// The first healthy server in order gets everything; the next one takes
    /// over when it fails.
    #[default]
    Failover,
    /// Healthy servers share the chunks by weight.
    RoundRobin,
}

/// A server as the selector sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not connected.
    Down,
    /// Connected since this instant.
    Up {
        /// When it came up.
        since: Instant,
        /// Whether it had failed before: a server coming back is used again
        /// only after `recover_wait` of health (it may be flapping).
        recovered: bool,
    },
}

/// The selection state machine.
#[derive(Debug, Clone)]
pub struct Selector {
    standby: Vec<bool>,
    weight: Vec<u32>,
    health: Vec<Health>,
    /// Whether each server has failed since start.
    failed: Vec<bool>,
    /// Smooth weighted round-robin scores.
    current: Vec<i64>,
    balance: Balance,
    recover_wait: Duration,
}

impl Selector {
    /// `servers` as `(standby, weight)`, in priority order.
    pub fn new(servers: &[(bool, u32)], balance: Balance, recover_wait: Duration) -> Self {
        Selector {
            standby: servers.iter().map(|s| s.0).collect(),
            weight: servers.iter().map(|s| s.1.max(1)).collect(),
            health: vec![Health::Down; servers.len()],
            failed: vec![false; servers.len()],
            current: vec![0; servers.len()],
            balance,
            recover_wait,
        }
    }

    /// Server `i` connected.
    pub fn up(&mut self, i: usize, now: Instant) {
        // A server that failed before is recovering; the first connection
        // at start is not.
        if let Some(h) = self.health.get_mut(i)
            && matches!(h, Health::Down)
        {
            *h = Health::Up {
                since: now,
                recovered: self.failed[i],
            };
        }
    }

    /// Server `i` failed.
    pub fn down(&mut self, i: usize) {
        if let Some(h) = self.health.get_mut(i) {
            *h = Health::Down;
            self.failed[i] = true;
            // Round robin restarts its share from zero when it returns.
            self.current[i] = 0;
        }
    }

    /// Server `i`'s health.
    pub fn health(&self, i: usize) -> Health {
        self.health.get(i).copied().unwrap_or(Health::Down)
    }

    fn settled(&self, i: usize, now: Instant) -> bool {
        match self.health[i] {
            Health::Down => false,
            Health::Up { since, recovered } => {
                !recovered || now.duration_since(since) >= self.recover_wait
            }
        }
    }

    /// The server for the next chunk, or `None` to wait. `available` says
    /// whether a server has room for another chunk in flight.
    ///
    /// In failover mode a busy primary makes the chunk wait rather than
    /// spill to the next server: only failure moves traffic. Round robin
    /// shares among the healthy servers that have room.
    pub fn pick(&mut self, now: Instant, available: impl Fn(usize) -> bool) -> Option<usize> {
        let candidates = self.candidates(now)?;
        match self.balance {
            Balance::Failover => Some(candidates[0]).filter(|&i| available(i)),
            Balance::RoundRobin => {
                let free: Vec<usize> = candidates.into_iter().filter(|&i| available(i)).collect();
                (!free.is_empty()).then(|| self.weighted(&free))
            }
        }
    }

    /// The servers traffic goes to now, in order: settled regular servers
    /// first, then recovering ones, then standby; `None` when all are down.
    fn candidates(&self, now: Instant) -> Option<Vec<usize>> {
        let n = self.health.len();
        let up = |i: usize| !matches!(self.health[i], Health::Down);
        let tiers: [Vec<usize>; 3] = [
            (0..n)
                .filter(|&i| !self.standby[i] && up(i) && self.settled(i, now))
                .collect(),
            (0..n).filter(|&i| !self.standby[i] && up(i)).collect(),
            (0..n).filter(|&i| self.standby[i] && up(i)).collect(),
        ];
        tiers.into_iter().find(|t| !t.is_empty())
    }

    /// When the servers taking traffic may next change with no server going
    /// up or down: the first moment a recovering server has been healthy
    /// for `recover_wait`. `None` when none is recovering.
    pub fn next_change(&self, now: Instant) -> Option<Instant> {
        self.health
            .iter()
            .filter_map(|h| match *h {
                Health::Up {
                    since,
                    recovered: true,
                } => Some(since + self.recover_wait),
                _ => None,
            })
            .filter(|&at| at > now)
            .min()
    }

    /// Whether each server takes traffic now: in failover, the one
    /// [`Selector::pick`] sends to; in round robin, each it shares among. A
    /// server still inside `recover_wait` is not active while another is.
    pub fn active(&self, now: Instant) -> Vec<bool> {
        let mut active = vec![false; self.health.len()];
        if let Some(c) = self.candidates(now) {
            let taking = match self.balance {
                Balance::Failover => &c[..1],
                Balance::RoundRobin => &c[..],
            };
            for &i in taking {
                active[i] = true;
            }
        }
        active
    }

    /// Smooth weighted round robin: each pick adds every candidate's weight
    /// to its score, takes the highest, and subtracts the total from it.
    fn weighted(&mut self, candidates: &[usize]) -> usize {
        let total: i64 = candidates.iter().map(|&i| i64::from(self.weight[i])).sum();
        let mut best = candidates[0];
        for &i in candidates {
            self.current[i] += i64::from(self.weight[i]);
            if self.current[i] > self.current[best] {
                best = i;
            }
        }
        self.current[best] -= total;
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Up(usize),
        Down(usize),
        Wait(u64),
        Pick,
    }

    fn op(n: usize) -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..n).prop_map(Op::Up),
            (0..n).prop_map(Op::Down),
            (0u64..300).prop_map(Op::Wait),
            Just(Op::Pick),
            Just(Op::Pick),
        ]
    }

    proptest! {
        #[test]
        fn failover_rules(
            standby in proptest::collection::vec(any::<bool>(), 1..5),
            ops in proptest::collection::vec(op(5), 1..60),
        ) {
            let n = standby.len();
            let servers: Vec<(bool, u32)> = standby.iter().map(|&s| (s, 60)).collect();
            let wait = Duration::from_millis(100);
            let mut s = Selector::new(&servers, Balance::Failover, wait);
            let mut now = Instant::now();
            let mut ever_down = vec![false; n];
            for op in ops {
                match op {
                    Op::Up(i) if i < n => s.up(i, now),
                    Op::Down(i) if i < n => { s.down(i); ever_down[i] = true; }
                    Op::Wait(ms) => now += Duration::from_millis(ms),
                    Op::Pick => {
                        let pick = s.pick(now, |_| true);
                        // What the monitor shows as active is where the
                        // chunk went.
                        let active = s.active(now);
                        prop_assert_eq!(active.iter().filter(|a| **a).count(), usize::from(pick.is_some()));
                        if let Some(p) = pick {
                            prop_assert!(active[p]);
                        }
                        let is_up = |i: usize| !matches!(s.health(i), Health::Down);
                        match pick {
                            None => prop_assert!((0..n).all(|i| !is_up(i))),
                            Some(p) => {
                                // Never a server that is down.
                                prop_assert!(is_up(p));
                                // A standby only when every regular server is down.
                                if standby[p] {
                                    prop_assert!((0..n).all(|i| standby[i] || !is_up(i)));
                                }
                                // The first settled regular server wins.
                                let settled = |i: usize| match s.health(i) {
                                    Health::Up { since, recovered } => !recovered || now.duration_since(since) >= wait,
                                    Health::Down => false,
                                };
                                if let Some(first) = (0..n).find(|&i| !standby[i] && settled(i)) {
                                    prop_assert_eq!(p, first);
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }

        #[test]
        fn round_robin_shares_by_weight(weights in proptest::collection::vec(1u32..10, 1..5)) {
            let servers: Vec<(bool, u32)> = weights.iter().map(|&w| (false, w)).collect();
            let mut s = Selector::new(&servers, Balance::RoundRobin, Duration::ZERO);
            let now = Instant::now();
            for i in 0..weights.len() {
                s.up(i, now);
            }
            let total: u32 = weights.iter().sum();
            let mut counts = vec![0u32; weights.len()];
            for _ in 0..total * 3 {
                counts[s.pick(now, |_| true).unwrap()] += 1;
            }
            let expected: Vec<u32> = weights.iter().map(|w| w * 3).collect();
            prop_assert_eq!(counts, expected);
        }
    }

    #[test]
    fn a_recovering_primary_waits_before_taking_traffic_back() {
        let wait = Duration::from_millis(100);
        let mut s = Selector::new(&[(false, 1), (false, 1)], Balance::Failover, wait);
        let t0 = Instant::now();
        s.up(0, t0);
        s.up(1, t0);
        assert_eq!(s.pick(t0, |_| true), Some(0));
        s.down(0);
        assert_eq!(s.pick(t0, |_| true), Some(1));
        assert_eq!(s.next_change(t0), None, "nothing is recovering");
        s.up(0, t0);
        // The dispatcher sleeps until then: the moment the primary settles.
        assert_eq!(s.next_change(t0), Some(t0 + wait));
        assert_eq!(s.next_change(t0 + wait), None, "settled already");
        assert_eq!(s.pick(t0 + Duration::from_millis(50), |_| true), Some(1));
        // Connected again but still inside recover_wait: not active yet.
        assert_eq!(s.active(t0 + Duration::from_millis(50)), [false, true]);
        assert_eq!(s.active(t0 + wait), [true, false]);
        assert_eq!(s.pick(t0 + Duration::from_millis(150), |_| true), Some(0));
        // The primary has no room in flight: wait for it, do not spill.
        assert_eq!(s.pick(t0 + Duration::from_millis(150), |i| i != 0), None);
        let mut rr = Selector::new(&[(false, 1), (false, 1)], Balance::RoundRobin, wait);
        rr.up(0, t0);
        rr.up(1, t0);
        assert_eq!(rr.pick(t0, |i| i != 0), Some(1));
    }
}
