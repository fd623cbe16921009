//! What the fleet layers share: the rate limit's and the concurrency budget's state, the
//! GCRA arithmetic, and the Redis store.

pub(crate) mod budget;
pub(crate) mod gcra;
pub(crate) mod rate;
pub(crate) mod store;

use std::sync::atomic::{AtomicU64, Ordering};

/// What a fleet layer decided so far, as its handle reads it: calls admitted and refused.
#[derive(Debug, Default)]
pub(crate) struct Decisions {
    admitted: AtomicU64,
    rejected: AtomicU64,
}

impl Decisions {
    pub(crate) fn admit(&self) {
        self.admitted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn refuse(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn admitted(&self) -> u64 {
        self.admitted.load(Ordering::Relaxed)
    }

    pub(crate) fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }
}
