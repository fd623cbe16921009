//! Adaptive limits: algorithms that move the concurrency limit from what calls observe,
//! after Netflix's concurrency-limits (AIMD and Gradient2).

use std::fmt;
use std::time::Duration;

use seawall_classify::ConfigError;

mod aimd;
mod gradient2;

pub use self::aimd::Aimd;
pub use self::gradient2::Gradient2;

pub(crate) const LAYER: &str = "adaptive limit";

/// What one finished call tells an algorithm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// How long the call took, from admission to its answer.
    pub rtt: Duration,
    /// Calls in flight when it was admitted, itself included.
    pub in_flight: usize,
    /// The limit in force when it was admitted.
    pub limit: usize,
    /// The call ended in a fault or a timeout: a sign of overload.
    pub dropped: bool,
    /// The limit has not changed since the call was admitted: it is one of the current
    /// generation of calls. A drop from an earlier generation was already answered by the
    /// decrease that ended it: one step per generation of calls, as TCP backs off once per
    /// window, not once per lost packet. The layer counts changes, so a limit that went
    /// 10, 9, 10 is a new generation, not the old one back.
    pub current: bool,
}

/// Moves a concurrency limit from samples; the layer does not know which algorithm drives it.
/// The layer gives it one sample at a time and applies the limit it returns before the next
/// (an uncontended lock per finished call, in adaptive mode only), so its limit and the
/// layer's never disagree; it is `Sync` and keeps its state in atomics so that it can be
/// read (and driven directly, as below) from any thread.
///
/// ```
/// use std::time::Duration;
/// use seawall_limit::adaptive::{Aimd, LimitAlgorithm, Sample};
///
/// let aimd = Aimd::new(10, 10, 100).unwrap();
/// let busy = Sample {
///     rtt: Duration::from_millis(5),
///     in_flight: 10,
///     limit: 10,
///     dropped: false,
///     current: true,
/// };
/// assert_eq!(aimd.update(busy), 11);
/// let fault = Sample { dropped: true, limit: 11, ..busy };
/// assert_eq!(aimd.update(fault), 10, "x0.9, but never below the minimum");
/// ```
pub trait LimitAlgorithm: Send + Sync + fmt::Debug + 'static {
    /// The limit to start with.
    fn initial(&self) -> usize;

    /// Records a sample and returns the new limit.
    fn update(&self, sample: Sample) -> usize;

    /// The bounds the limit stays within.
    fn bounds(&self) -> (usize, usize);

    /// The algorithm's latency inputs, if it keeps them: (short-term, long-term) RTT.
    fn rtt(&self) -> Option<(Duration, Duration)> {
        None
    }
}

pub(crate) fn check_bounds(initial: usize, min: usize, max: usize) -> Result<(), ConfigError> {
    if min == 0 {
        return Err(ConfigError::new(LAYER, "min", "must be at least 1"));
    }
    if max < min {
        return Err(ConfigError::new(
            LAYER,
            "max",
            format!("is {max}, below the minimum {min}"),
        ));
    }
    if !(min..=max).contains(&initial) {
        return Err(ConfigError::new(
            LAYER,
            "initial",
            format!("is {initial}, outside {min}..={max}"),
        ));
    }
    Ok(())
}

/// A sample of `ms` with `in_flight` calls, admitted under no particular limit.
#[cfg(test)]
pub(crate) fn sample(ms: u64, in_flight: usize, dropped: bool) -> Sample {
    Sample {
        rtt: Duration::from_millis(ms),
        in_flight,
        limit: usize::MAX,
        dropped,
        current: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn invalid_bounds_are_errors() {
        assert_eq!(Aimd::new(10, 0, 5).unwrap_err().field(), "min");
        assert_eq!(Aimd::new(10, 20, 5).unwrap_err().field(), "max");
        assert_eq!(Gradient2::new(500, 20, 200).unwrap_err().field(), "initial");
        assert_eq!(Aimd::default().backoff(1.2).unwrap_err().field(), "backoff");
        assert_eq!(
            Gradient2::default().smoothing(0.0).unwrap_err().field(),
            "smoothing"
        );
        assert_eq!(
            Gradient2::default().tolerance(0.5).unwrap_err().field(),
            "tolerance"
        );
    }

    proptest! {
        #[test]
        fn limits_stay_within_their_bounds(
            min in 1usize..50,
            span in 0usize..200,
            samples in proptest::collection::vec((1u64..10_000, 0usize..400, any::<bool>()), 1..300),
        ) {
            let max = min + span;
            let aimd = Aimd::new(min, min, max).unwrap();
            let gradient = Gradient2::new(min, min, max).unwrap();
            let (mut aimd_limit, mut gradient_limit) = (min, min);
            for (ms, in_flight, dropped) in samples {
                // Each sample admitted under the limit the algorithm last gave.
                aimd_limit = aimd.update(Sample { limit: aimd_limit, ..sample(ms, in_flight, dropped) });
                gradient_limit = gradient.update(Sample { limit: gradient_limit, ..sample(ms, in_flight, dropped) });
                for limit in [aimd_limit, gradient_limit] {
                    prop_assert!((min..=max).contains(&limit), "{limit} outside {min}..={max}");
                }
            }
        }
    }
}
