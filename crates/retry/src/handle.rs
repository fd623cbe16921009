//! [`RetryHandle`]: reads a retry layer's budget and counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::RetryBudget;

/// What the layer's [`RetryHandle`] reads.
#[derive(Debug)]
pub(crate) struct Counters {
    pub(crate) budget: Option<Arc<RetryBudget>>,
    pub(crate) retries: AtomicU64,
    pub(crate) stopped_by_deadline: AtomicU64,
}

/// A cheap handle reading a retry layer's state: its budget and counters. Clones share it.
///
/// ```
/// use seawall_retry::RetryLayer;
///
/// let retry = RetryLayer::builder().build().unwrap();
/// let handle = retry.handle();
/// assert_eq!(handle.retries(), 0);
/// assert!(handle.budget().is_some_and(|b| b.available() > 0));
/// ```
#[derive(Debug, Clone)]
pub struct RetryHandle {
    pub(crate) counters: Arc<Counters>,
}

impl RetryHandle {
    /// The budget shared by the layer's services, if it has one.
    #[must_use]
    pub fn budget(&self) -> Option<&Arc<RetryBudget>> {
        self.counters.budget.as_ref()
    }

    /// Retries started so far by the layer's services.
    #[must_use]
    pub fn retries(&self) -> u64 {
        self.counters.retries.load(Ordering::Relaxed)
    }

    /// Requests whose retrying stopped because their deadline left no time for another
    /// attempt.
    #[must_use]
    pub fn stopped_by_deadline(&self) -> u64 {
        self.counters.stopped_by_deadline.load(Ordering::Relaxed)
    }
}
