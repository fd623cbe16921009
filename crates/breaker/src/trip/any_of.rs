//! [`AnyOf`]: the breaker's configured policies together.

use std::fmt;

use tokio::time::Instant;

use crate::trip::window::{CountWindow, TimeWindow};
use crate::trip::{ConsecutiveFaults, Outcome, TripPolicy, WindowStats};

/// Several policies together: the breaker opens when any of them says so.
///
/// Every policy records every outcome, so each keeps an accurate view.
pub struct AnyOf {
    set: Set,
    needs_clock: bool,
}

/// The configured policies. The common cases (one policy alone, and the standard pipeline's
/// consecutive faults with a count window) have their own variants, so that recording an
/// outcome is one branch to those policies. (An explicit tag:
/// one comparison to tell the variants apart.)
#[repr(u8)]
enum Set {
    Consecutive(ConsecutiveFaults),
    Count(CountWindow),
    ConsecutiveAndCount(ConsecutiveFaults, CountWindow),
    Several {
        consecutive: Option<ConsecutiveFaults>,
        count: Option<CountWindow>,
        time: Option<TimeWindow>,
    },
}

impl AnyOf {
    pub(crate) fn new(
        consecutive: Option<ConsecutiveFaults>,
        count: Option<CountWindow>,
        time: Option<TimeWindow>,
    ) -> Self {
        let needs_clock = consecutive.as_ref().is_some_and(TripPolicy::needs_clock)
            || count.as_ref().is_some_and(TripPolicy::needs_clock)
            || time.as_ref().is_some_and(TripPolicy::needs_clock);
        let set = match (consecutive, count, time) {
            (Some(consecutive), None, None) => Set::Consecutive(consecutive),
            (None, Some(count), None) => Set::Count(count),
            (Some(consecutive), Some(count), None) => Set::ConsecutiveAndCount(consecutive, count),
            (consecutive, count, time) => Set::Several {
                consecutive,
                count,
                time,
            },
        };
        AnyOf { set, needs_clock }
    }

    /// Each configured policy, as a trait object, for the paths that are not per call.
    fn each(&self) -> [Option<&dyn TripPolicy>; 3] {
        match &self.set {
            Set::Consecutive(policy) => [Some(policy), None, None],
            Set::Count(window) => [None, Some(window), None],
            Set::ConsecutiveAndCount(policy, window) => [Some(policy), Some(window), None],
            Set::Several {
                consecutive,
                count,
                time,
            } => [
                consecutive.as_ref().map(|p| p as &dyn TripPolicy),
                count.as_ref().map(|p| p as &dyn TripPolicy),
                time.as_ref().map(|p| p as &dyn TripPolicy),
            ],
        }
    }

    /// Records with every configured policy, when there are several.
    #[inline(never)]
    fn record_each(&self, outcome: Outcome, now: Instant) -> bool {
        let Set::Several {
            consecutive,
            count,
            time,
        } = &self.set
        else {
            return false;
        };
        let mut trip = false;
        if let Some(policy) = consecutive {
            trip |= policy.record(outcome, now);
        }
        if let Some(window) = count {
            trip |= window.record_outcome(outcome);
        }
        if let Some(window) = time {
            trip |= window.record(outcome, now);
        }
        trip
    }

    pub(crate) fn time_window_length(&self) -> Option<std::time::Duration> {
        match &self.set {
            Set::Several {
                time: Some(window), ..
            } => Some(window.length()),
            _ => None,
        }
    }

    fn count_window(&self) -> Option<&CountWindow> {
        match &self.set {
            Set::Count(window)
            | Set::ConsecutiveAndCount(_, window)
            | Set::Several {
                count: Some(window),
                ..
            } => Some(window),
            _ => None,
        }
    }

    fn time_window(&self) -> Option<&TimeWindow> {
        match &self.set {
            Set::Several { time, .. } => time.as_ref(),
            _ => None,
        }
    }

    fn consecutive(&self) -> Option<&ConsecutiveFaults> {
        match &self.set {
            Set::Consecutive(policy)
            | Set::ConsecutiveAndCount(policy, _)
            | Set::Several {
                consecutive: Some(policy),
                ..
            } => Some(policy),
            _ => None,
        }
    }
}

impl fmt::Debug for AnyOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyOf")
            .field("consecutive", &self.consecutive())
            .field("count", &self.count_window())
            .field("time", &self.time_window())
            .finish()
    }
}

impl TripPolicy for AnyOf {
    #[inline]
    fn record(&self, outcome: Outcome, now: Instant) -> bool {
        match &self.set {
            Set::Consecutive(policy) => policy.record(outcome, now),
            Set::Count(window) => window.record_outcome(outcome),
            Set::ConsecutiveAndCount(policy, window) => {
                // Both record, whichever trips.
                policy.record(outcome, now) | window.record_outcome(outcome)
            }
            Set::Several { .. } => self.record_each(outcome, now),
        }
    }

    fn reset(&self, now: Instant) {
        for policy in self.each().into_iter().flatten() {
            policy.reset(now);
        }
    }

    fn needs_clock(&self) -> bool {
        self.needs_clock
    }

    fn stats(&self, now: Instant) -> Option<WindowStats> {
        self.count_window()
            .and_then(|w| w.stats(now))
            .or_else(|| self.time_window().and_then(|w| w.stats(now)))
    }
}
