//! At most one warning per interval for a failure that repeats in a loop.

use std::time::{Duration, Instant};

/// How often a repeating failure is logged.
pub(crate) const EVERY: Duration = Duration::from_secs(10);

/// Lets one warning through per [`EVERY`], and counts the ones held back:
/// an accept loop out of file descriptors fails every 100 ms, and a log
/// line each time would fill the disk it may be short of too.
#[derive(Debug, Default)]
pub(crate) struct LogLimit {
    last: Option<Instant>,
    held_back: u64,
}

impl LogLimit {
    /// `Some(n)` when this failure is to be logged, with `n` the failures
    /// held back since the last one logged; `None` to stay quiet.
    pub(crate) fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < EVERY => {
                self.held_back += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.held_back))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_interval_with_the_count_held_back() {
        let mut limit = LogLimit::default();
        let t0 = Instant::now();
        assert_eq!(limit.allow(t0), Some(0));
        // Every 100 ms for 10 s: quiet, counted.
        for i in 1..100 {
            assert_eq!(limit.allow(t0 + Duration::from_millis(100 * i)), None);
        }
        assert_eq!(limit.allow(t0 + EVERY), Some(99));
        assert_eq!(limit.allow(t0 + EVERY + Duration::from_millis(1)), None);
        assert_eq!(limit.allow(t0 + EVERY * 3), Some(1));
    }
}
