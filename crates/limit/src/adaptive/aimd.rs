//! AIMD: additive increase, multiplicative decrease.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use seawall_classify::ConfigError;

use super::{LAYER, LimitAlgorithm, Sample, check_bounds};

/// Additive increase, multiplicative decrease, like TCP congestion control: +1 for a success
/// while the limit is in use (at least half of it in flight), ×`backoff` (0.9) on a drop or
/// when a call is slower than `timeout`. Netflix's defaults: initial 20, min 20, max 200.
///
/// Unlike Netflix's, which applies every sample, each step waits for a call admitted under
/// the current limit (see [`Sample::limit`]): +1 and ×0.9 at most once per generation of
/// calls. Applied per sample, a busy client grows by hundreds per round trip and a burst of
/// slow answers collapses the limit to its minimum; per generation, it settles.
#[derive(Debug)]
pub struct Aimd {
    min: usize,
    max: usize,
    initial: usize,
    backoff: f64,
    timeout: Duration,
    limit: AtomicU64,
}

impl Aimd {
    /// Starts at `initial`, within `min..=max`, backing off ×0.9, with a 5 s latency timeout.
    pub fn new(initial: usize, min: usize, max: usize) -> Result<Self, ConfigError> {
        check_bounds(initial, min, max)?;
        Ok(Aimd {
            min,
            max,
            initial,
            backoff: 0.9,
            timeout: Duration::from_secs(5),
            limit: AtomicU64::new(initial as u64),
        })
    }

    /// The multiplier on a drop, in [0.5, 1).
    pub fn backoff(mut self, ratio: f64) -> Result<Self, ConfigError> {
        if !(0.5..1.0).contains(&ratio) {
            return Err(ConfigError::new(
                LAYER,
                "backoff",
                format!("is {ratio}, outside [0.5, 1)"),
            ));
        }
        self.backoff = ratio;
        Ok(self)
    }

    /// Calls slower than this count as drops.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl Default for Aimd {
    fn default() -> Self {
        Aimd::new(20, 20, 200).expect("valid defaults")
    }
}

impl LimitAlgorithm for Aimd {
    fn initial(&self) -> usize {
        self.initial
    }

    fn update(&self, sample: Sample) -> usize {
        let drop = sample.dropped || sample.rtt > self.timeout;
        let next = |limit: u64| {
            let limit = limit as usize;
            let new = if !sample.current || sample.limit != limit {
                // Admitted under an earlier limit: the last change already answered it.
                limit
            } else if drop {
                ((limit as f64 * self.backoff) as usize).max(self.min)
            } else if sample.in_flight * 2 >= limit {
                // One step per generation: only a call admitted under today's limit moves it,
                // as TCP grows its window once per round trip, not once per ack.
                (limit + 1).min(self.max)
            } else {
                // Not using the limit: no evidence it could be higher.
                limit
            };
            Some(new as u64)
        };
        let previous = self
            .limit
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, next)
            .unwrap_or(self.initial as u64);
        next(previous).unwrap_or(previous) as usize
    }

    fn bounds(&self) -> (usize, usize) {
        (self.min, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aimd_grows_only_while_the_limit_is_used() {
        let aimd = Aimd::new(10, 5, 100).unwrap();
        let at = |ms, in_flight, limit, dropped| Sample {
            rtt: Duration::from_millis(ms),
            in_flight,
            limit,
            dropped,
            current: true,
        };
        let earlier = |sample: Sample| Sample {
            current: false,
            ..sample
        };
        assert_eq!(
            aimd.update(at(5, 2, 10, false)),
            10,
            "4 of 10 in use: no growth"
        );
        assert_eq!(aimd.update(at(5, 5, 10, false)), 11);
        assert_eq!(
            aimd.update(earlier(at(5, 5, 10, false))),
            11,
            "admitted under the old limit: no step"
        );
        assert_eq!(aimd.update(at(5, 11, 11, true)), 9, "11 x 0.9");
        assert_eq!(
            aimd.update(earlier(at(5, 11, 11, true))),
            9,
            "already answered by the decrease"
        );
        assert_eq!(
            aimd.update(at(6_000, 9, 9, false)),
            8,
            "slower than the timeout is a drop"
        );
    }
}
