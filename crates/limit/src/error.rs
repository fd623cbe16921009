//! Errors of the concurrency limit.
//!
//! Returned wrapped in a [`seawall_classify::Error`] carrying the class, inside the layer's
//! `BoxError`. A caller whose request deadline ran out while queued gets
//! [`DeadlineExceeded`] instead of [`Overloaded`].

use std::fmt;
use std::time::Duration;

use seawall_classify::{Class, FailureKind, RetryHint};

pub use seawall_classify::DeadlineExceeded;

/// The limit was reached and the call was refused without reaching the service.
///
/// Classified as [`FailureKind::Rejected`] (a local decision: not a fault of the dependency,
/// so breakers and adaptive limits do not count it) with [`RetryHint::Retry`]: the same call
/// may be admitted later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded {
    reason: Reason,
}

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Every permit was taken and the queue was full (or has length 0).
    QueueFull,
    /// The call waited in the queue for `max_wait` without getting a permit.
    WaitedTooLong(Duration),
}

impl Overloaded {
    /// The class of this error: `Rejected`, retryable.
    pub const CLASS: Class = Class::failure(FailureKind::Rejected, RetryHint::Retry);

    pub(crate) fn new(reason: Reason) -> Self {
        Overloaded { reason }
    }

    /// Why the call was refused.
    #[must_use]
    pub fn reason(&self) -> Reason {
        self.reason
    }
}

impl fmt::Display for Overloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            Reason::QueueFull => f.write_str("concurrency limit reached and its queue is full"),
            Reason::WaitedTooLong(wait) => {
                write!(f, "concurrency limit reached: no permit within {wait:?}")
            }
        }
    }
}

impl std::error::Error for Overloaded {}
