//! [`AnyOf`]: the breaker's configured policies together.

use std::fmt;

use tokio::time::Instant;

use crate::policy::{ConsecutiveFaults, Outcome, TripPolicy, WindowStats};
use crate::window::{CountWindow, TimeWindow};

/// Several policies together: the breaker opens when any of them says so.
///
/// Every policy records every outcome, so each keeps an accurate view.
pub struct AnyOf {
    consecutive: Option<ConsecutiveFaults>,
    count: Option<CountWindow>,
    time: Option<TimeWindow>,
    needs_clock: bool,
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
        AnyOf {
            consecutive,
            count,
            time,
            needs_clock,
        }
    }
}

impl AnyOf {
    pub(crate) fn time_window_length(&self) -> Option<std::time::Duration> {
        self.time.as_ref().map(TimeWindow::length)
    }
}

impl fmt::Debug for AnyOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyOf")
            .field("consecutive", &self.consecutive)
            .field("count", &self.count)
            .field("time", &self.time)
            .finish()
    }
}

impl TripPolicy for AnyOf {
    #[inline]
    fn record(&self, outcome: Outcome, now: Instant) -> bool {
        let mut trip = false;
        if let Some(policy) = &self.consecutive {
            trip |= policy.record(outcome, now);
        }
        if let Some(policy) = &self.count {
            trip |= policy.record(outcome, now);
        }
        if let Some(policy) = &self.time {
            trip |= policy.record(outcome, now);
        }
        trip
    }

    fn reset(&self, now: Instant) {
        if let Some(policy) = &self.consecutive {
            policy.reset(now);
        }
        if let Some(policy) = &self.count {
            policy.reset(now);
        }
        if let Some(policy) = &self.time {
            policy.reset(now);
        }
    }

    fn needs_clock(&self) -> bool {
        self.needs_clock
    }

    fn stats(&self, now: Instant) -> Option<WindowStats> {
        self.count
            .as_ref()
            .and_then(|w| w.stats(now))
            .or_else(|| self.time.as_ref().and_then(|w| w.stats(now)))
    }
}
