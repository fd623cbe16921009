//! The generic cell rate algorithm, lock-free: one atomic word per key.
//!
//! A key's state is its theoretical arrival time (TAT): when the next call would be on
//! schedule at the configured rate. A call at `now` is admitted when the TAT is at most the
//! burst tolerance ahead of `now`, and moves the TAT one emission interval further. No
//! counters to reset, no windows to align: the rate holds over any interval, with at most
//! `burst` calls at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use seawall_classify::ConfigError;

/// A rate and a burst, as the GCRA's emission interval and tolerance, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gcra {
    /// Time between two calls at the rate.
    pub(crate) interval: u64,
    /// How far ahead of now the schedule may run: `(burst - 1) * interval`.
    pub(crate) tolerance: u64,
}

impl Gcra {
    pub(crate) fn new(
        layer: &'static str,
        per_second: f64,
        burst: u32,
    ) -> Result<Self, ConfigError> {
        if !(per_second.is_finite() && (0.001..=1_000_000_000.0).contains(&per_second)) {
            return Err(ConfigError::new(
                layer,
                "rate",
                format!("is {per_second} per second, outside 0.001 to 1,000,000,000"),
            ));
        }
        if burst == 0 {
            return Err(ConfigError::new(
                layer,
                "burst",
                "is 0: no call could ever be admitted",
            ));
        }
        let interval = (1e9 / per_second).round().max(1.0) as u64;
        Ok(Gcra {
            interval,
            tolerance: interval.saturating_mul(u64::from(burst) - 1),
        })
    }

    /// Calls admitted at once after a quiet spell.
    pub(crate) fn burst(self) -> u32 {
        u32::try_from(self.tolerance / self.interval.max(1) + 1).unwrap_or(u32::MAX)
    }

    /// The same burst at `1 / share` of the rate: an instance's local share of a fleet's
    /// limit.
    pub(crate) fn share(self, replicas: u32) -> Gcra {
        let interval = self.interval.saturating_mul(u64::from(replicas.max(1)));
        let burst = self.tolerance / self.interval.max(1);
        Gcra {
            interval,
            tolerance: interval.saturating_mul(burst),
        }
    }

    /// Admits one call at `now` (nanoseconds on the limiter's clock), or says how long until
    /// one would be admitted.
    #[inline]
    pub(crate) fn take(&self, tat: &AtomicU64, now: u64) -> Result<(), Duration> {
        let mut current = tat.load(Ordering::Relaxed);
        loop {
            let start = current.max(now);
            let ahead = start - now;
            if ahead > self.tolerance {
                return Err(Duration::from_nanos(ahead - self.tolerance));
            }
            match tat.compare_exchange_weak(
                current,
                start + self.interval,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_the_burst_at_once_then_one_per_interval() {
        let gcra = Gcra::new("test", 10.0, 3).unwrap();
        let tat = AtomicU64::new(0);
        let now = 1_000_000_000;
        for _ in 0..3 {
            assert_eq!(gcra.take(&tat, now), Ok(()));
        }
        assert_eq!(gcra.take(&tat, now), Err(Duration::from_millis(100)));
        assert_eq!(
            gcra.take(&tat, now + 99_999_999),
            Err(Duration::from_nanos(1))
        );
        assert_eq!(gcra.take(&tat, now + 100_000_000), Ok(()));
        // Over any long interval, the rate holds: 10 a second.
        let tat = AtomicU64::new(0);
        let admitted = (0..100_000u64)
            .filter(|i| gcra.take(&tat, now + i * 100_000).is_ok())
            .count();
        assert_eq!(
            admitted,
            3 + 99,
            "the burst, then one every 100 ms for 10 s"
        );
    }

    #[test]
    fn a_share_is_the_rate_divided_with_the_same_burst() {
        let gcra = Gcra::new("test", 100.0, 5).unwrap();
        let share = gcra.share(4);
        assert_eq!(share.interval, 4 * gcra.interval);
        assert_eq!(share.tolerance / share.interval, 4);
    }

    #[test]
    fn bad_rates_and_bursts_are_refused() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e10] {
            assert!(Gcra::new("test", rate, 1).is_err(), "{rate}");
        }
        assert!(Gcra::new("test", 1.0, 0).is_err());
    }
}
