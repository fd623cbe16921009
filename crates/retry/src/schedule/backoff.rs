//! Backoff: how long to wait before each retry, with jitter so clients do not retry in
//! lockstep.

use std::time::Duration;

use seawall_classify::ConfigError;
use seawall_util::rng::SplitMix64;

const LAYER: &str = "retry";

/// How a backoff delay is randomised, after the AWS Architecture Blog's "Exponential Backoff
/// and Jitter". With `d = min(max_delay, base × factor^(n-1))` the capped delay before retry
/// `n`:
///
/// | jitter | delay |
/// |---|---|
/// | `None` | `d` |
/// | `Full` | uniform in `[0, d]` |
/// | `Equal` | `d/2 +` uniform in `[0, d/2]` |
/// | `Decorrelated` | uniform in `[base, min(max_delay, 3 × previous delay)]`, the previous delay of the first retry being `base` |
///
/// The cap is applied first and the jitter after, so that clients at the cap still spread out
/// rather than all waiting exactly `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// No randomness: every client waits the same.
    None,
    /// Anywhere from zero to the capped delay: the most spread, the least waiting on average.
    Full,
    /// At least half the capped delay: a guaranteed minimum wait, half as much spread.
    Equal,
    /// Each delay drawn from `[base, 3 × previous]`, capped: spread that does not collapse
    /// as delays grow. The default.
    #[default]
    Decorrelated,
}

/// When to retry: the delay schedule and its jitter.
///
/// ```
/// use std::time::Duration;
/// use seawall_retry::{Backoff, Jitter};
///
/// let backoff = Backoff::exponential(Duration::from_millis(100))
///     .factor(2.0)
///     .max_delay(Duration::from_secs(5))
///     .jitter(Jitter::None);
/// let mut state = backoff.start(42);
/// assert_eq!(state.next_delay(&backoff), Duration::from_millis(100));
/// assert_eq!(state.next_delay(&backoff), Duration::from_millis(200));
/// assert_eq!(state.next_delay(&backoff), Duration::from_millis(400));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    base: Duration,
    factor: f64,
    max_delay: Duration,
    jitter: Jitter,
    fast: Duration,
}

impl Backoff {
    /// The same delay before every retry (factor 1), without jitter unless set.
    #[must_use]
    pub fn constant(delay: Duration) -> Self {
        Backoff {
            base: delay,
            factor: 1.0,
            max_delay: delay,
            jitter: Jitter::None,
            fast: Duration::ZERO,
        }
    }

    /// Delays growing from `base` by `factor` (default 2) per retry, capped by `max_delay`
    /// (default 10 s), with decorrelated jitter unless set.
    #[must_use]
    pub fn exponential(base: Duration) -> Self {
        Backoff {
            base,
            factor: 2.0,
            max_delay: Duration::from_secs(10),
            jitter: Jitter::Decorrelated,
            fast: Duration::ZERO,
        }
    }

    /// The growth factor per retry (at least 1).
    #[must_use]
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    /// The longest delay.
    #[must_use]
    pub fn max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// The jitter strategy.
    #[must_use]
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// A short schedule for failures that clear in milliseconds: a conflict
    /// ([`FailureKind::Contention`](seawall_classify::FailureKind::Contention): a
    /// serialization failure, a deadlock) or a lost connection
    /// ([`FailureKind::Disconnect`](seawall_classify::FailureKind::Disconnect)) is retried after
    /// at most `max` (full jitter), doubling per such retry, instead of the main schedule,
    /// whose first delay would be pure latency by the time it ends. Other failures keep the
    /// main schedule. `Duration::ZERO` (the default) turns it off. The retry budget bounds
    /// these retries like any other.
    ///
    /// ```
    /// use std::time::Duration;
    /// use seawall_retry::Backoff;
    ///
    /// let backoff = Backoff::exponential(Duration::from_millis(50)).fast_retry(Duration::from_millis(5));
    /// assert_eq!(backoff.fast(), Duration::from_millis(5));
    /// ```
    #[must_use]
    pub fn fast_retry(mut self, max: Duration) -> Self {
        self.fast = max;
        self
    }

    /// The fast schedule's first delay at most (zero: off); see [`fast_retry`](Self::fast_retry).
    #[must_use]
    pub fn fast(&self) -> Duration {
        self.fast
    }

    /// The first delay.
    #[must_use]
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The longest delay.
    #[must_use]
    pub fn cap(&self) -> Duration {
        self.max_delay
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.base.is_zero() {
            return Err(ConfigError::new(
                LAYER,
                "base_delay",
                "must be greater than zero",
            ));
        }
        if !(self.factor >= 1.0 && self.factor.is_finite()) {
            return Err(ConfigError::new(
                LAYER,
                "factor",
                format!("is {}, must be a finite number of at least 1", self.factor),
            ));
        }
        if self.max_delay < self.base {
            return Err(ConfigError::new(
                LAYER,
                "max_delay",
                format!(
                    "is {:?}, shorter than the base delay {:?}",
                    self.max_delay, self.base
                ),
            ));
        }
        if self.max_delay > Duration::from_secs(24 * 60 * 60) {
            return Err(ConfigError::new(
                LAYER,
                "max_delay",
                format!("is {:?}, longer than the maximum of 24 h", self.max_delay),
            ));
        }
        Ok(())
    }

    /// The schedule state for one request, with its own random stream from `seed`.
    #[must_use]
    pub fn start(&self, seed: u64) -> BackoffState {
        BackoffState {
            retries: 0,
            fast_retries: 0,
            previous: self.base,
            rng: SplitMix64::new(seed),
        }
    }

    /// The capped delay before retry `n` (1-based), before jitter.
    fn capped(&self, n: u32) -> Duration {
        let exponent = i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.base.as_secs_f64() * self.factor.powi(exponent);
        if !secs.is_finite() || secs >= self.max_delay.as_secs_f64() {
            self.max_delay
        } else {
            Duration::from_secs_f64(secs).min(self.max_delay)
        }
    }
}

/// One request's position in a [`Backoff`] schedule.
#[derive(Debug, Clone)]
pub struct BackoffState {
    retries: u32,
    fast_retries: u32,
    previous: Duration,
    rng: SplitMix64,
}

impl BackoffState {
    /// The delay before the next retry, advancing the schedule.
    pub fn next_delay(&mut self, backoff: &Backoff) -> Duration {
        self.retries = self.retries.saturating_add(1);
        let capped = backoff.capped(self.retries);
        let delay = match backoff.jitter {
            Jitter::None => capped,
            Jitter::Full => capped.mul_f64(self.rng.next_f64_inclusive()),
            Jitter::Equal => capped / 2 + (capped / 2).mul_f64(self.rng.next_f64_inclusive()),
            Jitter::Decorrelated => {
                let high = backoff
                    .max_delay
                    .min(self.previous.saturating_mul(3))
                    .max(backoff.base);
                backoff.base + (high - backoff.base).mul_f64(self.rng.next_f64_inclusive())
            }
        };
        self.previous = delay;
        delay
    }

    /// The delay before the next retry of a failure that clears fast (see
    /// [`Backoff::fast_retry`]): up to the fast delay, doubled per such retry, capped by the
    /// longest delay. The main schedule does not advance.
    pub fn next_fast_delay(&mut self, backoff: &Backoff) -> Duration {
        let doubling = 1u32.checked_shl(self.fast_retries).unwrap_or(u32::MAX);
        self.fast_retries = self.fast_retries.saturating_add(1);
        let most = backoff.fast.saturating_mul(doubling).min(backoff.max_delay);
        most.mul_f64(self.rng.next_f64_inclusive())
    }

    /// Retries scheduled so far on the main schedule.
    #[must_use]
    pub fn retries(&self) -> u32 {
        self.retries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn exponential_without_jitter_doubles_up_to_the_cap() {
        let backoff = Backoff::exponential(ms(100))
            .max_delay(ms(1_000))
            .jitter(Jitter::None);
        let mut state = backoff.start(0);
        let delays: Vec<_> = (0..6).map(|_| state.next_delay(&backoff)).collect();
        assert_eq!(
            delays,
            [ms(100), ms(200), ms(400), ms(800), ms(1_000), ms(1_000)]
        );
    }

    #[test]
    fn constant_is_constant() {
        let backoff = Backoff::constant(ms(250));
        let mut state = backoff.start(7);
        for _ in 0..5 {
            assert_eq!(state.next_delay(&backoff), ms(250));
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_delays() {
        let backoff = Backoff::exponential(ms(10)).jitter(Jitter::Full);
        let run = |seed| {
            let mut state = backoff.start(seed);
            (0..8)
                .map(|_| state.next_delay(&backoff))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn jitter_at_the_cap_still_spreads_clients() {
        let backoff = Backoff::exponential(ms(100))
            .max_delay(ms(1_000))
            .jitter(Jitter::Equal);
        let at_cap: std::collections::HashSet<_> = (0..100)
            .map(|seed| {
                let mut state = backoff.start(seed);
                (0..10).map(|_| state.next_delay(&backoff)).last().unwrap()
            })
            .collect();
        assert!(
            at_cap.len() > 90,
            "clients at the cap must not wait the same"
        );
    }

    #[test]
    fn invalid_parameters_are_errors() {
        assert_eq!(
            Backoff::constant(Duration::ZERO)
                .validate()
                .unwrap_err()
                .field(),
            "base_delay"
        );
        assert_eq!(
            Backoff::exponential(ms(10))
                .factor(0.5)
                .validate()
                .unwrap_err()
                .field(),
            "factor"
        );
        assert_eq!(
            Backoff::exponential(ms(10))
                .factor(f64::NAN)
                .validate()
                .unwrap_err()
                .field(),
            "factor"
        );
        assert_eq!(
            Backoff::exponential(ms(10))
                .max_delay(ms(5))
                .validate()
                .unwrap_err()
                .field(),
            "max_delay"
        );
        assert!(Backoff::exponential(ms(10)).validate().is_ok());
    }

    fn jitter() -> impl Strategy<Value = Jitter> {
        prop_oneof![
            Just(Jitter::None),
            Just(Jitter::Full),
            Just(Jitter::Equal),
            Just(Jitter::Decorrelated)
        ]
    }

    proptest! {
        #[test]
        fn every_strategy_stays_within_its_documented_bounds(
            base_ms in 1u64..1_000,
            extra_ms in 0u64..60_000,
            factor in 1.0f64..10.0,
            jitter in jitter(),
            seed in any::<u64>(),
            retries in 1usize..40,
        ) {
            let base = ms(base_ms);
            let cap = base + ms(extra_ms);
            let backoff = Backoff::exponential(base).factor(factor).max_delay(cap).jitter(jitter);
            let mut state = backoff.start(seed);
            let mut previous = base;
            for n in 1..=retries as u32 {
                let capped = backoff.capped(n);
                let delay = state.next_delay(&backoff);
                prop_assert!(delay <= cap, "delay {delay:?} above cap {cap:?}");
                match jitter {
                    Jitter::None => prop_assert_eq!(delay, capped),
                    Jitter::Full => prop_assert!(delay <= capped),
                    Jitter::Equal => prop_assert!(delay >= capped / 2 && delay <= capped),
                    Jitter::Decorrelated => {
                        let high = cap.min(previous * 3).max(base);
                        prop_assert!(delay >= base && delay <= high, "{delay:?} outside [{base:?}, {high:?}]");
                    }
                }
                previous = delay;
            }
        }
    }
}
