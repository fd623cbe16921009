//! Handles reading the fleet layers' counters: [`RateLimitHandle`] and
//! [`ConcurrencyBudgetHandle`], from a layer or any of its services. Clones share them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Reads a rate limit's counters; from [`RateLimitLayer::handle`](crate::RateLimitLayer::handle)
/// or [`RateLimit::handle`](crate::RateLimit::handle).
#[derive(Clone)]
pub struct RateLimitHandle {
    pub(crate) shared: Arc<crate::shared::rate::RateShared>,
}

impl RateLimitHandle {
    /// Calls admitted so far.
    #[must_use]
    pub fn admitted(&self) -> u64 {
        self.shared.decisions.admitted()
    }

    /// Calls refused so far.
    #[must_use]
    pub fn rejected(&self) -> u64 {
        self.shared.decisions.rejected()
    }

    /// Lease fetches sent to Redis so far (fleet-wide limits): one per lease, or one for all
    /// the callers that waited for it.
    #[must_use]
    pub fn redis_fetches(&self) -> u64 {
        self.shared.fetches.load(Ordering::Relaxed)
    }

    /// Keys remembered now: at most [`max_keys`](crate::RateLimitBuilder::max_keys).
    #[must_use]
    pub fn keys(&self) -> usize {
        self.shared.keys.read().expect("keys lock").len()
    }
}

/// Reads a concurrency budget's counters; from
/// [`ConcurrencyBudgetLayer::handle`](crate::ConcurrencyBudgetLayer::handle) or
/// [`ConcurrencyBudget::handle`](crate::ConcurrencyBudget::handle).
#[derive(Clone)]
pub struct ConcurrencyBudgetHandle {
    pub(crate) shared: Arc<crate::shared::budget::BudgetShared>,
}

impl ConcurrencyBudgetHandle {
    /// Calls admitted so far.
    #[must_use]
    pub fn admitted(&self) -> u64 {
        self.shared.decisions.admitted()
    }

    /// Calls refused so far.
    #[must_use]
    pub fn rejected(&self) -> u64 {
        self.shared.decisions.rejected()
    }

    /// Operations this budget has sent to Redis so far: one per acquisition, one per batch of
    /// releases, one per renewal of the permits held (every third of the lease).
    #[must_use]
    pub fn redis_writes(&self) -> u64 {
        self.shared
            .fleet
            .as_ref()
            .map_or(0, |f| f.writes.load(Ordering::Relaxed))
    }

    /// Permits this instance holds on Redis now.
    #[must_use]
    pub fn held(&self) -> usize {
        self.shared
            .fleet
            .as_ref()
            .map_or(0, |f| f.held.lock().expect("held lock").len())
    }
}

impl std::fmt::Debug for RateLimitHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitHandle")
            .field("decisions", &self.shared.decisions)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ConcurrencyBudgetHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConcurrencyBudgetHandle")
            .field("decisions", &self.shared.decisions)
            .finish_non_exhaustive()
    }
}

impl<F> crate::RateLimitLayer<F> {
    /// A handle reading this limit's counters, shared by every service it builds.
    #[must_use]
    pub fn handle(&self) -> RateLimitHandle {
        RateLimitHandle {
            shared: self.shared.clone(),
        }
    }
}

impl<S, F> crate::RateLimit<S, F> {
    /// A handle reading this limit's counters (the layer's).
    #[must_use]
    pub fn handle(&self) -> RateLimitHandle {
        RateLimitHandle {
            shared: self.shared.clone(),
        }
    }
}

impl crate::ConcurrencyBudgetLayer {
    /// A handle reading this budget's counters, shared by every service it builds.
    #[must_use]
    pub fn handle(&self) -> ConcurrencyBudgetHandle {
        ConcurrencyBudgetHandle {
            shared: self.shared.clone(),
        }
    }
}

impl<S> crate::ConcurrencyBudget<S> {
    /// A handle reading this budget's counters (the layer's).
    #[must_use]
    pub fn handle(&self) -> ConcurrencyBudgetHandle {
        ConcurrencyBudgetHandle {
            shared: self.shared.clone(),
        }
    }
}
