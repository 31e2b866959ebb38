//! Exponential backoff with jitter, as a small state machine.

use std::time::Duration;

/// Backoff parameters that do not make sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid backoff: {0}")]
pub struct InvalidBackoff(&'static str);

/// Doubles from `min` up to `max` on each failure, with up to `jitter` (a
/// fraction of the delay) added at random so many agents do not retry in
/// step; `reset` after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    jitter: f64,
    /// Failures since the last reset.
    failures: u32,
}

impl Backoff {
    /// `min ≤ max`, `min > 0`, `0 ≤ jitter ≤ 1`.
    pub fn try_new(min: Duration, max: Duration, jitter: f64) -> Result<Self, InvalidBackoff> {
        if min.is_zero() {
            return Err(InvalidBackoff("min must be positive"));
        }
        if min > max {
            return Err(InvalidBackoff("min must not exceed max"));
        }
        if !(0.0..=1.0).contains(&jitter) {
            return Err(InvalidBackoff("jitter must be between 0 and 1"));
        }
        Ok(Backoff {
            min,
            max,
            jitter,
            failures: 0,
        })
    }

    /// The delay before the next attempt, without jitter.
    pub fn base(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.min.saturating_mul(factor).min(self.max)
    }

    /// Records a failure and returns how long to wait: the base delay plus
    /// jitter drawn from `random` in `[0, 1)`.
    pub fn next_with(&mut self, random: f64) -> Duration {
        let base = self.base();
        self.failures = self.failures.saturating_add(1);
        base + base.mul_f64(self.jitter * random.clamp(0.0, 1.0))
    }

    /// [`Backoff::next_with`] with a random draw.
    pub fn next_delay(&mut self) -> Duration {
        self.next_with(rand::random::<f64>())
    }

    /// A success: the next failure waits `min` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_nonsense() {
        let s = Duration::from_secs(1);
        assert!(Backoff::try_new(Duration::ZERO, s, 0.1).is_err());
        assert!(Backoff::try_new(s * 2, s, 0.1).is_err());
        assert!(Backoff::try_new(s, s, 1.5).is_err());
    }

    proptest! {
        #[test]
        fn doubles_caps_and_resets(
            min_ms in 1u64..1000,
            extra_ms in 0u64..100_000,
            jitter in 0.0f64..=1.0,
            draws in proptest::collection::vec(0.0f64..1.0, 1..80),
        ) {
            let (min, max) = (Duration::from_millis(min_ms), Duration::from_millis(min_ms + extra_ms));
            let mut b = Backoff::try_new(min, max, jitter).unwrap();
            let mut last_base = Duration::ZERO;
            for r in &draws {
                let base = b.base();
                // Never below min, never above max (before jitter).
                prop_assert!(base >= min && base <= max);
                // Grows until the cap, then stays.
                prop_assert!(base >= last_base);
                prop_assert!(base == max || last_base.is_zero() || base == last_base * 2);
                let d = b.next_with(*r);
                prop_assert!(d >= base && d <= base + base.mul_f64(jitter));
                last_base = base;
            }
            b.reset();
            prop_assert_eq!(b.base(), min);
            prop_assert_eq!(b.failures(), 0);
        }
    }
}
