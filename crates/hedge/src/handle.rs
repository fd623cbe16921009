//! [`HedgeHandle`]: reads a hedge layer's counters.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use seawall_retry::RetryBudget;

use crate::service::Shared;

/// Reads a hedge layer's counters and its delay. Clones share them.
#[derive(Clone)]
pub struct HedgeHandle {
    pub(crate) shared: Arc<Shared>,
}

impl HedgeHandle {
    /// The delay after which a request sent now would be hedged: the fixed delay, or the
    /// learnt one (`None` until enough calls have been seen).
    #[must_use]
    pub fn delay(&self) -> Option<Duration> {
        self.shared.delay()
    }

    /// Hedges sent.
    #[must_use]
    pub fn sent(&self) -> u64 {
        self.shared.counters.sent.load(Ordering::Relaxed)
    }

    /// Hedges that answered before the first attempt.
    #[must_use]
    pub fn won(&self) -> u64 {
        self.shared.counters.won.load(Ordering::Relaxed)
    }

    /// Slow requests not hedged because the budget was spent.
    #[must_use]
    pub fn skipped_for_budget(&self) -> u64 {
        self.shared.counters.skipped_budget.load(Ordering::Relaxed)
    }

    /// Slow requests not hedged because a gate (an open breaker, a full limit) held it back.
    #[must_use]
    pub fn skipped_for_gate(&self) -> u64 {
        self.shared.counters.skipped_gate.load(Ordering::Relaxed)
    }

    /// Slow requests not hedged because their deadline left less time than the hedge delay.
    #[must_use]
    pub fn skipped_for_deadline(&self) -> u64 {
        self.shared
            .counters
            .skipped_deadline
            .load(Ordering::Relaxed)
    }

    /// The budget hedges are taken from.
    #[must_use]
    pub fn budget(&self) -> &Arc<RetryBudget> {
        &self.shared.budget
    }
}

impl fmt::Debug for HedgeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HedgeHandle")
            .field("name", &self.shared.name)
            .field("delay", &self.delay())
            .field("sent", &self.sent())
            .field("won", &self.won())
            .finish_non_exhaustive()
    }
}

impl<S, I> crate::Hedge<S, I> {
    /// A handle reading the layer's counters and delay.
    #[must_use]
    pub fn handle(&self) -> HedgeHandle {
        HedgeHandle {
            shared: self.parts.shared.clone(),
        }
    }
}
