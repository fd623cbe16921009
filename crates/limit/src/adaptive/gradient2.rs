//! Gradient2: the limit follows the ratio of long-term to short-term latency.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use seawall_classify::ConfigError;

use super::{LAYER, LimitAlgorithm, Sample, check_bounds};

/// An `f64` in an atomic word.
#[derive(Debug)]
struct AtomicF64(AtomicU64);

impl AtomicF64 {
    fn new(value: f64) -> Self {
        AtomicF64(AtomicU64::new(value.to_bits()))
    }

    fn load(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Acquire))
    }

    /// Applies `f` atomically; returns the new value.
    fn update(&self, f: impl Fn(f64) -> f64) -> f64 {
        let previous = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
                Some(f(f64::from_bits(bits)).to_bits())
            })
            .unwrap_or(0);
        f(f64::from_bits(previous))
    }
}

/// Netflix's Gradient2: compares a short-term RTT (the latest sample) with a long-term
/// average (exponential over `long_window` samples, plain average while warming up):
///
/// - `gradient = clamp(tolerance × long / short, 0.5, 1)`: 1 while latency holds, lower when
///   it rises (queueing somewhere);
/// - `new = limit × gradient + queue`, smoothed: `limit × (1 − smoothing) + new × smoothing`,
///   within `min..=max`;
/// - when `long / short > 2` (latency fell: a new, faster regime), the long average drifts
///   down ×0.95 so the limit recovers instead of waiting 600 samples;
/// - while less than half the limit is in use, the limit does not grow;
/// - only calls admitted under the current limit move it, so it takes one step per
///   generation of calls (per round trip), not one per call: applied per call, as in the
///   reference without its windowing wrapper, a busy client makes dozens of steps per round
///   trip and the limit swings between its bounds;
/// - unlike Netflix's, a drop (fault or timeout) also multiplies the limit by 0.9: a fault is
///   a stronger sign of overload than latency.
///
/// Two changes from the reference make it settle under sustained overload, where Netflix's
/// keeps growing (its long average catches up with the short one, the gradient returns to 1,
/// and the queue allowance adds to the limit on every sample):
///
/// - the long average is a baseline: it learns from every sample no slower than itself, but
///   from a slower one only when the limit was not binding (fewer calls in flight than the
///   limit, and within `tolerance`: the dependency's own variation) or was at its minimum,
///   where the latency cannot be the limit's doing: a dependency that became slower for good
///   is learnt there. Under sustained overload every call is slower and the limit binds, so
///   the baseline holds and the gradient keeps the limit near `tolerance ×` the capacity;
/// - the queue allowance is added only while latency holds (gradient 1), so a rise in latency
///   is answered by shrinking alone and, if latency does not respond, the limit reaches its
///   minimum (where the baseline learns the new latency); and it is `max(1, log10(limit))`
///   rather than a constant 4, so that the limit stays within a step of `tolerance ×` the
///   capacity for small capacities too (`queue(4.0)` restores the reference's constant).
///
/// Gradient2 learns the unloaded latency only from calls made below the dependency's
/// capacity: start it low (an `initial` at or under the capacity you expect, like TCP's slow
/// start). Started far above it, every call it ever sees is queued, and it settles at
/// `1.5 × initial` or so instead.
///
/// Defaults as in the reference implementation, but for the queue allowance: initial 20,
/// min 20, max 200, smoothing 0.2, tolerance 1.5, long window 600.
#[derive(Debug)]
pub struct Gradient2 {
    min: usize,
    max: usize,
    initial: usize,
    smoothing: f64,
    tolerance: f64,
    long_window: u64,
    queue: Option<f64>,
    samples: AtomicU64,
    short_rtt: AtomicF64,
    long_rtt: AtomicF64,
    limit: AtomicF64,
    /// The sample count at which the next probe starts.
    next_probe: AtomicU64,
    /// The probe under way, if any: read and changed as one.
    probing: Mutex<Probing>,
}

/// A probe's state.
#[derive(Debug, Default)]
struct Probing {
    /// The limit the probe lowered to (0: no probe under way).
    limit: usize,
    /// The latencies of the calls admitted under it (seconds), and how many.
    sum: f64,
    count: u64,
}

/// Probes start after this many round trips' worth of samples (×limit), as Netflix's Vegas
/// limit probes its no-load latency.
const PROBE_EVERY: u64 = 30;

impl Gradient2 {
    /// Starts at `initial`, within `min..=max`, with the reference defaults otherwise.
    pub fn new(initial: usize, min: usize, max: usize) -> Result<Self, ConfigError> {
        check_bounds(initial, min, max)?;
        Ok(Gradient2 {
            min,
            max,
            initial,
            smoothing: 0.2,
            tolerance: 1.5,
            long_window: 600,
            queue: None,
            samples: AtomicU64::new(0),
            short_rtt: AtomicF64::new(0.0),
            long_rtt: AtomicF64::new(0.0),
            limit: AtomicF64::new(initial as f64),
            next_probe: AtomicU64::new(PROBE_EVERY * initial.max(1) as u64),
            probing: Mutex::new(Probing::default()),
        })
    }

    /// Halves the limit for one generation of calls every [`PROBE_EVERY`] × limit samples
    /// while it binds; the mean latency of that generation, if lower, becomes the baseline.
    /// Returns the probe's limit when this sample starts one.
    fn probe(&self, sample: &Sample, n: u64, short: f64) -> Option<usize> {
        let mut probing = self
            .probing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if probing.limit != 0 {
            if sample.limit == probing.limit {
                probing.sum += short;
                probing.count += 1;
            } else if probing.count > 0 {
                // Calls admitted before the probe are still finishing until then. The probe's
                // generation is over: keep its mean latency if it was lower.
                let mean = probing.sum / probing.count as f64;
                *probing = Probing::default();
                self.long_rtt.update(|long| long.min(mean));
            }
            return None;
        }
        let due = self.next_probe.load(Ordering::Acquire);
        let limit = self.limit.load();
        let binding = sample.in_flight * 2 >= sample.limit
            && sample.current
            && sample.limit == limit as usize;
        if n < due || !binding {
            return None;
        }
        self.next_probe
            .store(n + PROBE_EVERY * (limit as u64).max(1), Ordering::Release);
        let lowered = ((limit / 2.0).floor()).max(self.min as f64);
        if lowered >= limit.floor() {
            return None;
        }
        self.limit.update(|_| lowered);
        *probing = Probing {
            limit: lowered as usize,
            ..Probing::default()
        };
        Some(lowered as usize)
    }

    /// How much of each new estimate to take, in (0, 1].
    pub fn smoothing(mut self, smoothing: f64) -> Result<Self, ConfigError> {
        if !(smoothing > 0.0 && smoothing <= 1.0) {
            return Err(ConfigError::new(
                LAYER,
                "smoothing",
                format!("is {smoothing}, outside (0, 1]"),
            ));
        }
        self.smoothing = smoothing;
        Ok(self)
    }

    /// How much latency may grow before the limit shrinks, at least 1.
    pub fn tolerance(mut self, tolerance: f64) -> Result<Self, ConfigError> {
        if !(tolerance >= 1.0 && tolerance.is_finite()) {
            return Err(ConfigError::new(
                LAYER,
                "tolerance",
                format!("is {tolerance}, must be at least 1"),
            ));
        }
        self.tolerance = tolerance;
        Ok(self)
    }

    /// A constant queue allowance (the reference's is 4), instead of `max(1, log10(limit))`;
    /// at least 0.
    pub fn queue(mut self, queue: f64) -> Result<Self, ConfigError> {
        if !(queue >= 0.0 && queue.is_finite()) {
            return Err(ConfigError::new(
                LAYER,
                "queue",
                format!("is {queue}, must be a finite number of at least 0"),
            ));
        }
        self.queue = Some(queue);
        Ok(self)
    }

    /// The current long-term RTT average.
    #[must_use]
    pub fn long_rtt(&self) -> Duration {
        Duration::from_secs_f64(self.long_rtt.load().max(0.0))
    }
}

impl Default for Gradient2 {
    fn default() -> Self {
        Gradient2::new(20, 20, 200).expect("valid defaults")
    }
}

impl LimitAlgorithm for Gradient2 {
    fn initial(&self) -> usize {
        self.initial
    }

    fn update(&self, sample: Sample) -> usize {
        let short = sample.rtt.as_secs_f64().max(1e-9);
        self.short_rtt.0.store(short.to_bits(), Ordering::Release);
        let n = self.samples.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(lowered) = self.probe(&sample, n, short) {
            return lowered;
        }
        let warmup = 10;
        let at_floor = sample.limit <= self.min;
        let unsaturated = sample.in_flight < sample.limit;
        let long = self.long_rtt.update(|long| {
            let within = self.tolerance * long;
            if n <= warmup {
                // A plain average while warming up.
                long + (short - long) / n as f64
            } else if short > long && !at_floor && !(unsaturated && short <= within) {
                // Slower than the baseline while the limit binds: possibly our own queueing,
                // not a new normal to learn.
                long
            } else {
                let factor = 2.0 / (self.long_window as f64 + 1.0);
                let long = long * (1.0 - factor) + short * factor;
                // Latency fell to a new regime: let the average follow quickly.
                if long / short > 2.0 {
                    long * 0.95
                } else {
                    long
                }
            }
        });
        let (min, max) = (self.min as f64, self.max as f64);
        let limit = self.limit.update(|limit| {
            if !sample.current || sample.limit != limit as usize {
                // Admitted under an earlier limit: the last change already answered it (one
                // step per generation of calls, as for AIMD).
                return limit;
            }
            if sample.dropped {
                return (limit * 0.9).clamp(min, max);
            }
            if (sample.in_flight as f64) < limit / 2.0 {
                // Not using the limit: no evidence either way.
                return limit;
            }
            let gradient = (self.tolerance * long / short).clamp(0.5, 1.0);
            // The queue allowance only while latency holds: a rise is answered by shrinking
            // alone, down to the minimum if latency does not respond.
            let queue = if gradient < 1.0 {
                0.0
            } else {
                self.queue.unwrap_or_else(|| limit.log10().max(1.0))
            };
            let estimate = limit * gradient + queue;
            (limit * (1.0 - self.smoothing) + estimate * self.smoothing).clamp(min, max)
        });
        limit as usize
    }

    fn bounds(&self) -> (usize, usize) {
        (self.min, self.max)
    }

    fn rtt(&self) -> Option<(Duration, Duration)> {
        let seconds = |value: f64| Duration::from_secs_f64(value.max(0.0));
        Some((
            seconds(self.short_rtt.load()),
            seconds(self.long_rtt.load()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adaptive::sample;

    #[test]
    fn gradient2_shrinks_when_latency_rises_and_recovers_when_it_falls() {
        let g = Gradient2::new(50, 10, 100).unwrap();
        // A call admitted under the current limit, with the limit fully used.
        let full = |ms, limit| Sample {
            limit,
            ..sample(ms, limit, false)
        };
        let mut limit = 50;
        for _ in 0..200 {
            limit = g.update(full(10, limit));
        }
        assert_eq!(
            limit, 100,
            "at steady latency, fully used, the limit grows to the maximum"
        );
        for _ in 0..50 {
            limit = g.update(full(100, limit));
        }
        assert!(limit < 30, "x10 latency must shrink the limit: {limit}");
        for _ in 0..300 {
            limit = g.update(full(10, limit));
        }
        assert!(
            limit > 50,
            "back at normal latency the limit recovers: {limit}"
        );
    }

    #[test]
    fn gradient2_takes_one_step_per_generation() {
        let g = Gradient2::new(50, 10, 100).unwrap();
        let at = |ms, limit| Sample {
            limit,
            ..sample(ms, limit, false)
        };
        for _ in 0..20 {
            // Half used: the baseline learns, the limit stays.
            g.update(Sample {
                limit: 50,
                ..sample(10, 20, false)
            });
        }
        // Latency x4: the first call admitted under today's limit shrinks it...
        let shrunk = g.update(at(40, 50));
        assert!(shrunk < 50, "{shrunk}");
        // ...and the rest of that generation, admitted under 50, do not shrink it further.
        for _ in 0..30 {
            assert_eq!(g.update(at(40, 50)), shrunk);
        }
    }

    #[test]
    fn gradient2_probes_take_the_mean_of_their_generation() {
        let g = Gradient2::new(20, 1, 200).unwrap();
        let at = |ms, limit| Sample {
            limit,
            ..sample(ms, limit, false)
        };
        // Steady at 50 ms while the limit binds, until a probe halves the limit.
        let mut limit = 20;
        let mut before = limit;
        for _ in 0..10_000 {
            let next = g.update(at(50, limit));
            if next * 2 <= limit + 1 && next < limit {
                before = limit;
                limit = next;
                break;
            }
            limit = next;
        }
        assert!(limit < before, "no probe started");
        assert_eq!(g.long_rtt(), Duration::from_millis(50));
        // Calls admitted before the probe finish first; they do not end it.
        for _ in 0..5 {
            g.update(at(50, before));
        }
        // The probe's generation is faster: its mean becomes the baseline once it is over.
        for _ in 0..limit {
            g.update(at(20, limit));
        }
        g.update(at(20, limit + 1));
        let baseline = g.long_rtt();
        assert!(
            baseline >= Duration::from_millis(19) && baseline <= Duration::from_millis(21),
            "{baseline:?}"
        );
    }

    #[test]
    fn gradient2_baseline_does_not_learn_its_own_queueing() {
        let g = Gradient2::new(50, 10, 100).unwrap();
        let at = |ms, in_flight, limit| Sample {
            limit,
            ..sample(ms, in_flight, false)
        };
        for _ in 0..20 {
            g.update(at(10, 20, 50));
        }
        // Slower calls while the limit binds: the baseline holds.
        for _ in 0..1_000 {
            g.update(at(14, 50, 50));
        }
        assert_eq!(g.long_rtt(), Duration::from_millis(10));
        // The same latency while the limit is not binding is the dependency's own.
        for _ in 0..1_000 {
            g.update(at(14, 20, 50));
        }
        assert!(
            g.long_rtt() > Duration::from_millis(13),
            "{:?}",
            g.long_rtt()
        );
    }
}
