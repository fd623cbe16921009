//! A latency percentile learnt lock-free from recent calls.
//!
//! Latencies are counted in log-linear buckets (eight per power of two of microseconds, so a
//! bucket is at most 12.5 % wide) in two sets: the current window and the one before it. A
//! call's latency is one relaxed increment. Every [`RECOMPUTE_EVERY`] samples, when the
//! window turns, and at every sample while there is no estimate yet, one caller sums both sets and stores the percentile's bucket's upper bound
//! (rounding up: a hedge a little late rather than a little early), which every call then
//! reads with one relaxed load.
//!
//! Accuracy: a sample recorded while another caller clears the set it lands in may be lost,
//! and the estimate lags the latencies by up to [`RECOMPUTE_EVERY`] samples. Neither matters
//! for choosing when to hedge.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use seawall_util::epoch::Epochs;
use tokio::time::Instant;

/// Buckets per set: up to 2^33 µs (about 2.4 hours); longer latencies count in the last.
const BUCKETS: usize = 256;
/// Bits of the sub-bucket within a power of two.
const SUB_BITS: u32 = 3;
/// The estimate is recomputed after this many samples.
pub(crate) const RECOMPUTE_EVERY: u64 = 64;

/// The bucket of a latency in microseconds.
fn bucket(micros: u64) -> usize {
    let sub = 1 << SUB_BITS;
    if micros < sub {
        return micros as usize;
    }
    let exponent = 63 - micros.leading_zeros();
    let within = (micros >> (exponent - SUB_BITS)) & (sub - 1);
    let index = u64::from(exponent - SUB_BITS + 1) * sub + within;
    (index as usize).min(BUCKETS - 1)
}

/// The upper bound, in microseconds, of a bucket's latencies.
fn upper_bound(bucket: usize) -> u64 {
    let sub = 1_u64 << SUB_BITS;
    let bucket = bucket as u64;
    if bucket < sub {
        return bucket + 1;
    }
    let exponent = bucket / sub + u64::from(SUB_BITS) - 1;
    (sub + bucket % sub + 1) << (exponent - u64::from(SUB_BITS))
}

/// Recent latencies and the percentile learnt from them.
pub(crate) struct Latencies {
    /// The percentile, as parts per million (950_000 for p95).
    percentile: u64,
    min_samples: u64,
    epochs: Epochs,
    /// The window the current set belongs to.
    window: AtomicU64,
    sets: [Box<[AtomicU64]>; 2],
    samples: AtomicU64,
    /// The learnt delay in nanoseconds; 0 until there are enough samples.
    estimate: AtomicU64,
}

impl Latencies {
    pub(crate) fn new(percentile: f64, window: Duration, min_samples: u64) -> Self {
        let set = || (0..BUCKETS).map(|_| AtomicU64::new(0)).collect();
        Latencies {
            percentile: (percentile * 1e6).round() as u64,
            min_samples: min_samples.max(1),
            epochs: Epochs::new(Instant::now(), window),
            window: AtomicU64::new(0),
            sets: [set(), set()],
            samples: AtomicU64::new(0),
            estimate: AtomicU64::new(0),
        }
    }

    /// The learnt percentile, once enough calls have been seen.
    #[inline]
    pub(crate) fn estimate(&self) -> Option<Duration> {
        match self.estimate.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    /// Counts one call's latency.
    pub(crate) fn record(&self, now: Instant, latency: Duration) {
        let window = self.epochs.at(now);
        let seen = self.window.load(Ordering::Relaxed);
        if window > seen
            && self
                .window
                .compare_exchange(seen, window, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.turn(seen, window);
        }
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.sets[(window % 2) as usize][bucket(micros)].fetch_add(1, Ordering::Relaxed);
        // Until there is an estimate, every sample may be the one that makes enough: the
        // cost of that is bounded by `min_samples` calls per window.
        let samples = self.samples.fetch_add(1, Ordering::Relaxed) + 1;
        if samples.is_multiple_of(RECOMPUTE_EVERY) || self.estimate.load(Ordering::Relaxed) == 0 {
            self.recompute();
        }
    }

    /// The window turned from `from` to `to`: the set `to` lands in held the window before
    /// `from` and is cleared; if more than one window passed, both sets are stale.
    #[cold]
    fn turn(&self, from: u64, to: u64) {
        let stale: &[u64] = if to - from >= 2 { &[to, from] } else { &[to] };
        for window in stale {
            for count in self.sets[(window % 2) as usize].iter() {
                count.store(0, Ordering::Relaxed);
            }
        }
        self.recompute();
    }

    #[cold]
    fn recompute(&self) {
        // Two passes over the counts rather than a copy of them: nothing is allocated.
        let count = |i: usize| {
            self.sets[0][i].load(Ordering::Relaxed) + self.sets[1][i].load(Ordering::Relaxed)
        };
        let total: u64 = (0..BUCKETS).map(count).sum();
        let nanos = if total < self.min_samples {
            0
        } else {
            // The smallest bucket at or below which at least the percentile's share falls.
            let wanted = (total * self.percentile).div_ceil(1_000_000).max(1);
            let mut seen = 0;
            let found = (0..BUCKETS)
                .position(|i| {
                    seen += count(i);
                    seen >= wanted
                })
                .unwrap_or(BUCKETS - 1);
            upper_bound(found).saturating_mul(1_000)
        };
        self.estimate.store(nanos, Ordering::Relaxed);
    }
}

pub(crate) enum Delay {
    Fixed(Duration),
    Learnt {
        latencies: Latencies,
        floor: Duration,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_latency_in_order_and_at_most_an_eighth_wide() {
        let mut previous = 0;
        for micros in (0..100_000).chain([1 << 20, 1 << 32, 1 << 40, u64::MAX]) {
            let b = bucket(micros);
            assert!(b >= previous, "{micros}");
            previous = b;
            if b < BUCKETS - 1 {
                let upper = upper_bound(b);
                assert!(micros < upper, "{micros} in bucket {b} below {upper}");
                assert!(
                    upper - micros <= upper / 8 + 1,
                    "{micros}: bucket {b} too wide"
                );
                if b > 0 {
                    assert!(micros >= upper_bound(b - 1), "{micros}");
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn learns_the_percentile_and_forgets_old_windows() {
        let latencies = Latencies::new(0.9, Duration::from_secs(1), 20);
        let now = Instant::now();
        for _ in 0..10 {
            latencies.record(now, Duration::from_millis(1));
        }
        assert_eq!(latencies.estimate(), None, "too few samples");
        // 90 fast calls and 10 slow: p90 is a fast call's bucket.
        for i in 0..100 {
            let latency = if i % 10 == 0 { 100 } else { 10 };
            latencies.record(now, Duration::from_millis(latency));
        }
        let p90 = latencies.estimate().expect("enough samples");
        assert!(
            p90 >= Duration::from_millis(10) && p90 <= Duration::from_micros(11_300),
            "{p90:?}"
        );
        // Two windows later, what was learnt is gone.
        let later = now + Duration::from_secs(3);
        latencies.record(later, Duration::from_millis(50));
        assert_eq!(latencies.estimate(), None);
        for _ in 0..40 {
            latencies.record(later, Duration::from_millis(50));
        }
        let p90 = latencies.estimate().expect("relearnt");
        assert!(p90 >= Duration::from_millis(50), "{p90:?}");
    }

    /// Window numbers used to be masked to 24 bits: 2^24 windows on (194 days at 1 s), the
    /// window stopped turning and an old estimate stayed.
    #[tokio::test(start_paused = true)]
    async fn the_window_keeps_turning_after_two_to_the_24_windows() {
        let latencies = Latencies::new(0.9, Duration::from_secs(1), 20);
        let now = Instant::now();
        for _ in 0..400 {
            latencies.record(now, Duration::from_millis(1));
        }
        assert!(latencies.estimate().unwrap() < Duration::from_millis(2));
        let later = now + Duration::from_secs(1 << 24);
        for _ in 0..40 {
            latencies.record(later, Duration::from_millis(50));
        }
        let p90 = latencies.estimate().unwrap();
        assert!(
            p90 >= Duration::from_millis(50),
            "{p90:?}: the old window stayed"
        );
    }
}
