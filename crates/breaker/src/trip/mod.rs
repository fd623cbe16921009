//! Trip policies: what decides that a closed breaker opens. The gate does not know which one
//! drives it.

pub(crate) mod any_of;
pub(crate) mod window;

use std::sync::atomic::{AtomicU32, Ordering};

use tokio::time::Instant;

/// Counts in a window, as read by [`BreakerHandle::stats`](crate::BreakerHandle::stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowStats {
    /// Calls in the window.
    pub calls: u64,
    /// Faults among them.
    pub faults: u64,
    /// Slow calls among them.
    pub slow: u64,
}

/// One finished call, as a trip policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The call failed in a way that counts against the dependency
    /// ([`Class::is_fault`](seawall_classify::Class::is_fault) by default).
    pub fault: bool,
    /// The call took longer than the slow-call threshold.
    pub slow: bool,
}

impl Outcome {
    /// A fast success.
    pub const SUCCESS: Outcome = Outcome {
        fault: false,
        slow: false,
    };
    /// A fault.
    pub const FAULT: Outcome = Outcome {
        fault: true,
        slow: false,
    };
}

/// Decides from recorded outcomes when a closed breaker should open.
///
/// Implementations are shared by every clone of a breaker and called concurrently, so they
/// keep their state in atomics. Seawall's own policies are [`ConsecutiveFaults`],
/// [`CountWindow`](crate::CountWindow), [`TimeWindow`](crate::TimeWindow), and
/// [`AnyOf`](crate::AnyOf) combining them; implement this trait for a
/// policy of your own.
///
/// ```
/// use seawall_breaker::{Outcome, TripPolicy};
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use tokio::time::Instant;
///
/// /// Trips on the first fault: for a dependency whose faults are never transient.
/// #[derive(Debug, Default)]
/// struct FirstFault(AtomicBool);
///
/// impl TripPolicy for FirstFault {
///     fn record(&self, outcome: Outcome, _now: Instant) -> bool {
///         outcome.fault && !self.0.swap(true, Ordering::Relaxed)
///     }
///     fn reset(&self, _now: Instant) {
///         self.0.store(false, Ordering::Relaxed);
///     }
/// }
/// ```
pub trait TripPolicy: Send + Sync + 'static {
    /// Records an outcome observed while closed, at `now`; returns `true` when the breaker
    /// should open.
    fn record(&self, outcome: Outcome, now: Instant) -> bool;

    /// Forgets everything: called when the breaker closes or is reset.
    fn reset(&self, now: Instant);

    /// Whether `record` uses `now` (default: yes). A policy that ignores it returns `false`,
    /// and when no policy needs the clock and no slow-call threshold is set, the breaker does
    /// not read the clock on the closed path.
    fn needs_clock(&self) -> bool {
        true
    }

    /// Counts in the policy's window, if it keeps one, for the breaker's handle.
    fn stats(&self, now: Instant) -> Option<WindowStats> {
        let _ = now;
        None
    }
}

/// Opens after `threshold` faults in a row; any success resets the count.
///
/// The default policy, with a threshold of 5: the starting point most teams use.
#[derive(Debug)]
pub struct ConsecutiveFaults {
    threshold: u32,
    count: AtomicU32,
}

impl ConsecutiveFaults {
    /// Opens after `threshold` consecutive faults. Validated by the breaker's builder.
    #[must_use]
    pub fn new(threshold: u32) -> Self {
        ConsecutiveFaults {
            threshold,
            count: AtomicU32::new(0),
        }
    }

    /// The number of consecutive faults that opens the breaker.
    #[must_use]
    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    /// Faults in a row so far.
    #[must_use]
    pub fn current(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }
}

impl TripPolicy for ConsecutiveFaults {
    #[inline]
    fn record(&self, outcome: Outcome, _now: Instant) -> bool {
        if outcome.fault {
            self.count.fetch_add(1, Ordering::AcqRel) + 1 >= self.threshold
        } else {
            // Read first: a stream of successes then never writes the shared line.
            if self.count.load(Ordering::Relaxed) != 0 {
                self.count.store(0, Ordering::Relaxed);
            }
            false
        }
    }

    fn reset(&self, _now: Instant) {
        self.count.store(0, Ordering::Relaxed);
    }

    fn needs_clock(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_faults_trip_at_the_threshold_and_reset_on_success() {
        let now = Instant::now();
        let policy = ConsecutiveFaults::new(3);
        assert!(!policy.record(Outcome::FAULT, now));
        assert!(!policy.record(Outcome::FAULT, now));
        assert!(!policy.record(Outcome::SUCCESS, now));
        assert_eq!(policy.current(), 0);
        assert!(!policy.record(Outcome::FAULT, now));
        assert!(!policy.record(Outcome::FAULT, now));
        assert!(policy.record(Outcome::FAULT, now));
    }
}
