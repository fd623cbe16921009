//! Errors of the timeout layers.
//!
//! Both are the source of the [`seawall_classify::Error`] the layers return, which carries
//! their class; read the class, or find them with [`seawall_classify::cause_ref`].

use std::fmt;
use std::time::Duration;

use seawall_classify::{Class, FailureKind, RetryHint};

pub use seawall_classify::DeadlineExceeded;

/// One attempt took longer than its attempt timeout.
///
/// Classified as [`FailureKind::Timeout`] with [`RetryHint::Retry`]: another attempt may be
/// faster. (When the request's deadline, not the attempt timeout, cut the attempt short, the
/// error is [`DeadlineExceeded`] instead, which is never retried.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed {
    timeout: Duration,
}

impl Elapsed {
    /// The class of this error: `Timeout`, retryable.
    pub const CLASS: Class = Class::failure(FailureKind::Timeout, RetryHint::Retry);

    pub(crate) fn new(timeout: Duration) -> Self {
        Elapsed { timeout }
    }

    /// The class of this error: [`CLASS`](Self::CLASS).
    #[must_use]
    pub const fn class(&self) -> Class {
        Self::CLASS
    }

    /// The attempt timeout that was exceeded.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attempt timed out after {:?}", self.timeout)
    }
}

impl std::error::Error for Elapsed {}
