//! Failure-rate and slow-call-rate windows: a true sliding window over the last N calls, and
//! one over the last T of time. Both are lock-free.

use std::fmt;
use std::sync::atomic::{AtomicIsize, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use seawall_classify::ConfigError;
use seawall_util::epoch::{Epochs, Ring};
use tokio::time::Instant;

use crate::trip::{Outcome, TripPolicy, WindowStats};

const LAYER: &str = "circuit breaker";

/// The rates at which a window trips, shared by both kinds of window.
#[derive(Debug, Clone, Copy)]
struct Rates {
    min_calls: u64,
    failure_rate: Option<f64>,
    slow_rate: Option<f64>,
}

impl Rates {
    fn trips(&self, outcome: Outcome, stats: impl FnOnce() -> WindowStats) -> bool {
        let check_faults = outcome.fault && self.failure_rate.is_some();
        let check_slow = outcome.slow && self.slow_rate.is_some();
        if !check_faults && !check_slow {
            // Only a fault or a slow call can raise a rate: nothing to check.
            return false;
        }
        let stats = stats();
        if stats.calls < self.min_calls || stats.calls == 0 {
            return false;
        }
        let calls = stats.calls as f64;
        let over = |count: u64, rate: Option<f64>| rate.is_some_and(|r| count as f64 / calls >= r);
        (check_faults && over(stats.faults, self.failure_rate))
            || (check_slow && over(stats.slow, self.slow_rate))
    }

    fn validate(&self, window: &'static str, capacity: Option<u64>) -> Result<(), ConfigError> {
        for (field, rate) in [
            ("failure_rate", self.failure_rate),
            ("slow_rate", self.slow_rate),
        ] {
            if let Some(rate) = rate
                && !(rate > 0.0 && rate <= 1.0)
            {
                return Err(ConfigError::new(
                    LAYER,
                    field,
                    format!("is {rate}, outside (0, 1]"),
                ));
            }
        }
        if self.failure_rate.is_none() && self.slow_rate.is_none() {
            return Err(ConfigError::new(
                LAYER,
                window,
                "sets neither a failure rate nor a slow-call rate, so it could never trip",
            ));
        }
        if let Some(capacity) = capacity
            && self.min_calls > capacity
        {
            return Err(ConfigError::new(
                LAYER,
                "min_calls",
                format!(
                    "is {}, more than the window holds ({capacity}), so it could never trip",
                    self.min_calls
                ),
            ));
        }
        Ok(())
    }
}

const FILLED: u8 = 0b100;
const FAULT: u8 = 0b001;
const SLOW: u8 = 0b010;

/// A true sliding window over the last `size` calls: a ring of outcomes, with running totals
/// updated by subtracting the outcome each new one evicts, so recording is O(1) and the window
/// forgets old calls exactly (unlike a cumulative counter, after 1,000 successes a window of
/// 100 at 50 % trips after 50 faults, not 1,000).
///
/// ```
/// use seawall_breaker::CountWindow;
///
/// // Open when half of the last 100 calls failed, once at least 20 calls were seen.
/// let window = CountWindow::new(100).min_calls(20).failure_rate(0.5);
/// ```
pub struct CountWindow {
    rates: Rates,
    ring: Box<[AtomicU8]>,
    // The ring's length as a 32-bit divisor and its reciprocal, so that the slot of a call
    // is two multiplications rather than a division (see `fast_mod`).
    len: u32,
    reciprocal: u64,
    head: AtomicUsize,
    filled: AtomicIsize,
    faults: AtomicIsize,
    slow: AtomicIsize,
}

impl CountWindow {
    /// A window over the last `size` calls, with `min_calls = size` and no rate yet: set
    /// [`failure_rate`](Self::failure_rate) or [`slow_rate`](Self::slow_rate).
    #[must_use]
    pub fn new(size: usize) -> Self {
        // A size over u32::MAX is refused by `validate`.
        let len = u32::try_from(size).unwrap_or(u32::MAX).max(1);
        CountWindow {
            rates: Rates {
                min_calls: size as u64,
                failure_rate: None,
                slow_rate: None,
            },
            ring: (0..size).map(|_| AtomicU8::new(0)).collect(),
            len,
            reciprocal: reciprocal(len),
            head: AtomicUsize::new(0),
            filled: AtomicIsize::new(0),
            faults: AtomicIsize::new(0),
            slow: AtomicIsize::new(0),
        }
    }

    /// The fewest calls in the window before it may trip.
    #[must_use]
    pub fn min_calls(mut self, min_calls: u32) -> Self {
        self.rates.min_calls = u64::from(min_calls);
        self
    }

    /// Trips when at least this share of the calls in the window are faults, in (0, 1].
    #[must_use]
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.rates.failure_rate = Some(rate);
        self
    }

    /// Trips when at least this share of the calls in the window are slow, in (0, 1]. Needs
    /// the breaker's slow-call threshold.
    #[must_use]
    pub fn slow_rate(mut self, rate: f64) -> Self {
        self.rates.slow_rate = Some(rate);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.ring.is_empty() {
            return Err(ConfigError::new(
                LAYER,
                "count_window",
                "size must be at least 1",
            ));
        }
        if u32::try_from(self.ring.len()).is_err() {
            return Err(ConfigError::new(
                LAYER,
                "count_window",
                format!("size must be at most {}", u32::MAX),
            ));
        }
        self.rates
            .validate("count_window", Some(self.ring.len() as u64))
    }

    pub(crate) fn uses_slow_calls(&self) -> bool {
        self.rates.slow_rate.is_some()
    }

    fn read(counter: &AtomicIsize) -> u64 {
        // Concurrent updates may pass through a negative total for an instant.
        counter.load(Ordering::Acquire).max(0) as u64
    }

    fn current(&self) -> WindowStats {
        WindowStats {
            calls: Self::read(&self.filled),
            faults: Self::read(&self.faults),
            slow: Self::read(&self.slow),
        }
    }

    #[inline(never)]
    fn apply(&self, old: u8, new: u8) {
        let delta = |bit: u8| i8::from(new & bit != 0) - i8::from(old & bit != 0);
        for (bit, counter) in [
            (FILLED, &self.filled),
            (FAULT, &self.faults),
            (SLOW, &self.slow),
        ] {
            match delta(bit) {
                1 => {
                    counter.fetch_add(1, Ordering::AcqRel);
                }
                -1 => {
                    counter.fetch_sub(1, Ordering::AcqRel);
                }
                _ => {}
            }
        }
    }
}

impl fmt::Debug for CountWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountWindow")
            .field("size", &self.ring.len())
            .field("min_calls", &self.rates.min_calls)
            .field("failure_rate", &self.rates.failure_rate)
            .field("slow_rate", &self.rates.slow_rate)
            .field("stats", &self.current())
            .finish()
    }
}

impl CountWindow {
    /// Records `outcome` in the next slot of the ring; whether the window trips now. Out of
    /// line, and small: the breaker's own closed path stays compact around it.
    #[inline(never)]
    pub(crate) fn record_outcome(&self, outcome: Outcome) -> bool {
        // The head's low 32 bits: the ring's order skips once every 2^32 calls.
        let head = self.head.fetch_add(1, Ordering::Relaxed) as u32;
        let slot = &self.ring[fast_mod(head, self.len, self.reciprocal) as usize];
        let new =
            FILLED | if outcome.fault { FAULT } else { 0 } | if outcome.slow { SLOW } else { 0 };
        // A success over a success (the usual case) changes nothing: the slot is left as it
        // is, with no write to a line other threads read (the same as a swap that came first),
        // and a success raises no rate.
        if new == FILLED && slot.load(Ordering::Acquire) == FILLED {
            return false;
        }
        self.record_change(slot, new, outcome)
    }

    /// The rest of [`record_outcome`](Self::record_outcome): the slot changes, or the outcome
    /// may raise a rate.
    #[inline(never)]
    fn record_change(&self, slot: &AtomicU8, new: u8, outcome: Outcome) -> bool {
        let old = slot.swap(new, Ordering::AcqRel);
        if old != new {
            self.apply(old, new);
        }
        if !outcome.fault && !outcome.slow {
            // Only a fault or a slow call can raise a rate.
            return false;
        }
        self.trips(outcome)
    }

    #[inline(never)]
    fn trips(&self, outcome: Outcome) -> bool {
        self.rates.trips(outcome, || self.current())
    }
}

impl TripPolicy for CountWindow {
    fn record(&self, outcome: Outcome, _now: Instant) -> bool {
        self.record_outcome(outcome)
    }

    fn reset(&self, _now: Instant) {
        // Remove each slot's contribution exactly once, so concurrent records stay counted.
        for slot in self.ring.iter() {
            let old = slot.swap(0, Ordering::AcqRel);
            if old != 0 {
                self.apply(old, 0);
            }
        }
    }

    fn stats(&self, _now: Instant) -> Option<WindowStats> {
        Some(self.current())
    }

    fn needs_clock(&self) -> bool {
        false
    }
}

/// `1 / d` in 0.64 fixed point, rounded up: the reciprocal [`fast_mod`] multiplies by.
fn reciprocal(d: u32) -> u64 {
    (u64::MAX / u64::from(d)).wrapping_add(1)
}

/// `a % d` for 32-bit operands without a division (Lemire, Kaser and Kurz, "Faster
/// remainder by direct computation", 2019): exact for every `a` and every `d >= 1`.
#[inline(always)]
fn fast_mod(a: u32, d: u32, reciprocal: u64) -> u32 {
    let low = reciprocal.wrapping_mul(u64::from(a));
    ((u128::from(low) * u128::from(d)) >> 64) as u32
}

/// A sliding window over the last `length` of time, kept as a ring of `buckets` buckets, each
/// one `length / buckets` long. A bucket is one atomic word (its interval number and its
/// counts), so recording is a single compare-and-swap and a bucket from an older interval is
/// recycled exactly, never half-cleared (the ring of `seawall_util::epoch`, shared with the
/// retry budget). Counts stop at 1,048,575 calls per bucket.
///
/// ```
/// use std::time::Duration;
/// use seawall_breaker::TimeWindow;
///
/// // Open when 10 % of the calls in the last 30 s failed, once at least 100 calls were seen.
/// let window = TimeWindow::new(Duration::from_secs(30), 30).min_calls(100).failure_rate(0.1);
/// ```
pub struct TimeWindow {
    rates: Rates,
    length: Duration,
    bucket: Duration,
    epochs: Epochs,
    /// The number of buckets asked for (validated by the builder).
    requested: usize,
    // (interval, calls, faults) and (interval, slow, unused), each bucket in one word.
    calls: Ring,
    slow: Ring,
}

impl TimeWindow {
    /// A window over the last `length`, in `buckets` buckets, with `min_calls = 1` and no rate
    /// yet: set [`failure_rate`](Self::failure_rate) or [`slow_rate`](Self::slow_rate).
    #[must_use]
    pub fn new(length: Duration, buckets: usize) -> Self {
        let bucket = if buckets == 0 {
            Duration::ZERO
        } else {
            length / u32::try_from(buckets).unwrap_or(u32::MAX)
        };
        TimeWindow {
            rates: Rates {
                min_calls: 1,
                failure_rate: None,
                slow_rate: None,
            },
            length,
            bucket,
            epochs: Epochs::new(Instant::now(), bucket),
            requested: buckets,
            calls: Ring::new(buckets),
            slow: Ring::new(buckets),
        }
    }

    /// The fewest calls in the window before it may trip.
    #[must_use]
    pub fn min_calls(mut self, min_calls: u32) -> Self {
        self.rates.min_calls = u64::from(min_calls);
        self
    }

    /// Trips when at least this share of the calls in the window are faults, in (0, 1].
    #[must_use]
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.rates.failure_rate = Some(rate);
        self
    }

    /// Trips when at least this share of the calls in the window are slow, in (0, 1]. Needs
    /// the breaker's slow-call threshold.
    #[must_use]
    pub fn slow_rate(mut self, rate: f64) -> Self {
        self.rates.slow_rate = Some(rate);
        self
    }

    /// The window's length.
    #[must_use]
    pub fn length(&self) -> Duration {
        self.length
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let buckets = self.requested;
        if buckets == 0 || buckets > 1 << 16 {
            return Err(ConfigError::new(
                LAYER,
                "time_window",
                format!("has {buckets} buckets, outside 1..=65536"),
            ));
        }
        if self.bucket < Duration::from_millis(1) {
            return Err(ConfigError::new(
                LAYER,
                "time_window",
                "buckets must be at least 1 ms long",
            ));
        }
        self.rates.validate("time_window", None)
    }

    pub(crate) fn uses_slow_calls(&self) -> bool {
        self.rates.slow_rate.is_some()
    }

    fn current(&self, now: Instant) -> WindowStats {
        let epoch = self.epochs.at(now);
        let (calls, faults) = self.calls.sum(epoch);
        let (slow, _) = self.slow.sum(epoch);
        WindowStats {
            calls,
            faults,
            slow,
        }
    }
}

impl fmt::Debug for TimeWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeWindow")
            .field("length", &self.length)
            .field("buckets", &self.requested)
            .field("min_calls", &self.rates.min_calls)
            .field("failure_rate", &self.rates.failure_rate)
            .field("slow_rate", &self.rates.slow_rate)
            .finish()
    }
}

impl TripPolicy for TimeWindow {
    fn record(&self, outcome: Outcome, now: Instant) -> bool {
        let epoch = self.epochs.at(now);
        // A bucket that is full (a million calls in one bucket) keeps its counts: the rates
        // it gives are still right. What an older interval left is simply dropped, and so is
        // an outcome whose bucket has left the window already (a stale clock reading).
        let _ = self.calls.add(epoch, 1, u64::from(outcome.fault), drop);
        if outcome.slow {
            let _ = self.slow.add(epoch, 1, 0, drop);
        }
        self.rates.trips(outcome, || self.current(now))
    }

    fn reset(&self, _now: Instant) {
        self.calls.reset();
        self.slow.reset();
    }

    fn needs_clock(&self) -> bool {
        true
    }

    fn stats(&self, now: Instant) -> Option<WindowStats> {
        Some(self.current(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    fn outcome(fault: bool, slow: bool) -> Outcome {
        Outcome { fault, slow }
    }

    #[test]
    fn the_fast_remainder_is_the_remainder() {
        for d in [
            1,
            2,
            3,
            7,
            10,
            100,
            101,
            1_000,
            65_537,
            u32::MAX - 1,
            u32::MAX,
        ] {
            let r = reciprocal(d);
            for a in [
                0,
                1,
                d - 1,
                d,
                d.wrapping_add(1),
                12_345_678,
                u32::MAX - 1,
                u32::MAX,
            ] {
                assert_eq!(fast_mod(a, d, r), a % d, "{a} % {d}");
            }
        }
    }

    proptest! {
        #[test]
        fn the_fast_remainder_matches_for_any_operands(a: u32, d in 1u32..) {
            prop_assert_eq!(fast_mod(a, d, reciprocal(d)), a % d);
        }
    }

    #[test]
    fn a_count_window_forgets_old_successes() {
        // The cumulative-counter bug: after 1,000 successes, a window of 100 at 50 % must
        // trip after 50 faults, not 1,000.
        let now = Instant::now();
        let window = CountWindow::new(100).min_calls(100).failure_rate(0.5);
        for _ in 0..1_000 {
            assert!(!window.record(Outcome::SUCCESS, now));
        }
        for i in 1..=50 {
            let tripped = window.record(Outcome::FAULT, now);
            assert_eq!(tripped, i == 50, "fault {i}");
        }
    }

    #[test]
    fn min_calls_holds_a_count_window_back() {
        let now = Instant::now();
        let window = CountWindow::new(10).min_calls(5).failure_rate(0.5);
        for _ in 0..4 {
            assert!(!window.record(Outcome::FAULT, now));
        }
        assert!(window.record(Outcome::FAULT, now));
        window.reset(now);
        assert_eq!(window.stats(now), Some(WindowStats::default()));
    }

    #[tokio::test(start_paused = true)]
    async fn time_window_buckets_expire() {
        let window = TimeWindow::new(Duration::from_secs(10), 10)
            .min_calls(4)
            .failure_rate(0.5);
        let now = Instant::now();
        assert!(!window.record(Outcome::FAULT, now));
        assert!(!window.record(Outcome::FAULT, now));
        assert!(!window.record(Outcome::FAULT, now));
        // Ten seconds later, those three have left the window.
        tokio::time::advance(Duration::from_secs(10)).await;
        let later = Instant::now();
        assert_eq!(window.stats(later).unwrap().calls, 0);
        assert!(!window.record(Outcome::FAULT, later));
        assert!(!window.record(Outcome::SUCCESS, later));
        assert!(!window.record(Outcome::SUCCESS, later));
        assert!(window.record(Outcome::FAULT, later), "2 of 4 = 50 %");
    }

    /// Bucket stamps wrap at 2^24 buckets (4.66 h with 1 ms buckets): a window idle that long
    /// must not read its old faults as live again.
    #[tokio::test(start_paused = true)]
    async fn a_time_window_idle_for_a_whole_stamp_cycle_forgets_its_faults() {
        let window = TimeWindow::new(Duration::from_millis(30), 30)
            .min_calls(4)
            .failure_rate(0.5);
        let now = Instant::now();
        for _ in 0..3 {
            assert!(!window.record(Outcome::FAULT, now));
        }
        let later = now + Duration::from_millis(1) * (1 << 24);
        assert_eq!(window.stats(later).unwrap().calls, 0);
        assert!(
            !window.record(Outcome::FAULT, later),
            "the three old faults are gone"
        );
        // (The first bucket after so long an idle spell is forgotten with the old one.)
        let next = later + Duration::from_millis(1);
        assert!(!window.record(Outcome::SUCCESS, next));
        assert_eq!(window.stats(next).unwrap().calls, 1);
    }

    /// 11 buckets: around the stamp's wrap, a live bucket shared a slot with the next one
    /// (2^24 is not a multiple of 11) and was forgotten early.
    #[tokio::test(start_paused = true)]
    async fn a_time_window_keeps_its_buckets_across_the_stamp_wrap() {
        let window = TimeWindow::new(Duration::from_millis(11), 11)
            .min_calls(1)
            .failure_rate(1.0);
        let start = Instant::now();
        let before = start + Duration::from_millis(1) * ((1 << 24) - 5);
        window.record(Outcome::SUCCESS, before);
        let after = before + Duration::from_millis(5);
        window.record(Outcome::SUCCESS, after);
        assert_eq!(window.stats(after).unwrap().calls, 2);
    }

    #[test]
    fn windows_without_a_rate_or_with_bad_rates_are_rejected() {
        assert_eq!(
            CountWindow::new(10).validate().unwrap_err().field(),
            "count_window"
        );
        assert_eq!(
            CountWindow::new(0)
                .failure_rate(0.5)
                .validate()
                .unwrap_err()
                .field(),
            "count_window"
        );
        assert_eq!(
            CountWindow::new(10)
                .failure_rate(1.5)
                .validate()
                .unwrap_err()
                .field(),
            "failure_rate"
        );
        assert_eq!(
            CountWindow::new(10)
                .failure_rate(f64::NAN)
                .validate()
                .unwrap_err()
                .field(),
            "failure_rate"
        );
        assert_eq!(
            CountWindow::new(10)
                .slow_rate(0.0)
                .validate()
                .unwrap_err()
                .field(),
            "slow_rate"
        );
        assert_eq!(
            CountWindow::new(10)
                .min_calls(11)
                .failure_rate(0.5)
                .validate()
                .unwrap_err()
                .field(),
            "min_calls"
        );
        assert!(
            TimeWindow::new(Duration::from_secs(1), 0)
                .failure_rate(0.5)
                .validate()
                .is_err()
        );
        assert!(
            TimeWindow::new(Duration::from_micros(10), 10)
                .failure_rate(0.5)
                .validate()
                .is_err()
        );
        assert!(
            TimeWindow::new(Duration::from_secs(10), 10)
                .failure_rate(0.5)
                .validate()
                .is_ok()
        );
    }

    proptest! {
        /// The lock-free count window agrees with a plain queue of the last N outcomes.
        #[test]
        fn count_window_matches_a_model(
            size in 1usize..20,
            min_calls in 0u32..20,
            rate in 0.05f64..=1.0,
            outcomes in proptest::collection::vec((any::<bool>(), any::<bool>()), 0..200),
            reset_at in proptest::option::of(0usize..200),
        ) {
            let min_calls = (min_calls as usize).min(size);
            let now = Instant::now();
            let window = CountWindow::new(size).min_calls(min_calls as u32).failure_rate(rate).slow_rate(rate);
            let mut model: VecDeque<(bool, bool)> = VecDeque::new();
            for (i, (fault, slow)) in outcomes.into_iter().enumerate() {
                if reset_at == Some(i) {
                    window.reset(now);
                    model.clear();
                }
                let tripped = window.record(outcome(fault, slow), now);
                model.push_back((fault, slow));
                if model.len() > size {
                    model.pop_front();
                }
                let calls = model.len() as f64;
                let faults = model.iter().filter(|o| o.0).count() as f64;
                let slows = model.iter().filter(|o| o.1).count() as f64;
                let expected = model.len() >= min_calls
                    && ((fault && faults / calls >= rate) || (slow && slows / calls >= rate));
                prop_assert_eq!(tripped, expected);
                let stats = window.stats(now).unwrap();
                prop_assert_eq!(stats.calls as usize, model.len());
                prop_assert_eq!(stats.faults as f64, faults);
                prop_assert_eq!(stats.slow as f64, slows);
            }
        }

        /// The bucketed time window agrees with a model keeping every call's time.
        #[test]
        fn time_window_matches_a_model(
            buckets in 1usize..8,
            steps in proptest::collection::vec((0u64..1500, any::<bool>(), any::<bool>()), 0..100),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .unwrap();
            runtime.block_on(async move {
                let bucket = Duration::from_millis(100);
                let window = TimeWindow::new(bucket * buckets as u32, buckets).failure_rate(0.5);
                let base = Instant::now();
                let mut model: Vec<(u64, bool, bool)> = Vec::new();
                for (advance_ms, fault, slow) in steps {
                    tokio::time::advance(Duration::from_millis(advance_ms)).await;
                    let now = Instant::now();
                    window.record(outcome(fault, slow), now);
                    let index = (now - base).as_millis() as u64 / 100;
                    model.push((index, fault, slow));
                    let live: Vec<_> = model.iter().filter(|m| index - m.0 < buckets as u64).collect();
                    let stats = window.stats(now).unwrap();
                    prop_assert_eq!(stats.calls as usize, live.len());
                    prop_assert_eq!(stats.faults as usize, live.iter().filter(|m| m.1).count());
                    prop_assert_eq!(stats.slow as usize, live.iter().filter(|m| m.2).count());
                }
                Ok(())
            })?;
        }
    }
}
