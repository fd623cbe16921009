//! [`ChaosHandle`]: what the layer injected so far.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::service::Shared;

/// Counts of what a chaos layer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChaosStats {
    /// Calls seen.
    pub calls: u64,
    /// Calls failed with an injected error.
    pub errors: u64,
    /// Calls that will never answer.
    pub hangs: u64,
    /// Calls whose answer was delayed.
    pub delayed: u64,
}

/// Reads a [`ChaosLayer`](crate::ChaosLayer)'s counts; clones share them.
#[derive(Clone)]
pub struct ChaosHandle {
    pub(crate) shared: Arc<Shared>,
}

impl ChaosHandle {
    /// What the layer's services did so far.
    #[must_use]
    pub fn stats(&self) -> ChaosStats {
        ChaosStats {
            calls: self.shared.calls.load(Ordering::Relaxed),
            errors: self.shared.errors.load(Ordering::Relaxed),
            hangs: self.shared.hangs.load(Ordering::Relaxed),
            delayed: self.shared.delayed.load(Ordering::Relaxed),
        }
    }
}

impl fmt::Debug for ChaosHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChaosHandle")
            .field("stats", &self.stats())
            .finish()
    }
}
