//! [`LimitHandle`]: reads a limit's load and totals.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::admission::Shared;

/// A cheap, cloneable view of one limit's state, shared by every service the layer built.
///
/// ```
/// use seawall_limit::ConcurrencyLimitLayer;
///
/// let layer = ConcurrencyLimitLayer::builder(8).build().unwrap();
/// let handle = layer.handle();
/// assert_eq!(handle.max(), 8);
/// assert_eq!(handle.in_flight(), 0);
/// assert_eq!(handle.queued(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct LimitHandle {
    pub(crate) shared: Arc<Shared>,
}

impl LimitHandle {
    /// The most calls ever allowed in flight at once: the fixed limit, or the adaptive
    /// maximum.
    #[must_use]
    pub fn max(&self) -> usize {
        self.shared.max
    }

    /// The limit now: the fixed limit, or where the adaptive algorithm has moved it.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.shared.limit()
    }

    /// Permits taken now: calls in flight, plus services that reserved a permit in
    /// `poll_ready` and have not called yet.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight()
    }

    /// An adaptive algorithm's latency inputs, (short-term, long-term) RTT, if it keeps them.
    #[must_use]
    pub fn rtt(&self) -> Option<(Duration, Duration)> {
        self.shared.algorithm.as_ref().and_then(|a| a.rtt())
    }

    /// Calls waiting in the queue now.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.shared.queued()
    }

    /// The queue's capacity.
    #[must_use]
    pub fn queue_capacity(&self) -> usize {
        self.shared.queue
    }

    /// The longest a call waits in the queue.
    #[must_use]
    pub fn max_wait(&self) -> Duration {
        self.shared.max_wait
    }

    /// Calls admitted so far (with or without queueing).
    #[must_use]
    pub fn admitted(&self) -> u64 {
        self.shared.admitted.load(Ordering::Relaxed)
    }

    /// Calls refused so far: queue full, waited too long, or deadline gone while queued.
    #[must_use]
    pub fn rejected(&self) -> u64 {
        self.shared.rejected.load(Ordering::Relaxed)
    }

    /// Total time admitted calls spent queued.
    #[must_use]
    pub fn total_queue_wait(&self) -> Duration {
        Duration::from_nanos(self.shared.waited_nanos.load(Ordering::Relaxed))
    }
}
