//! Errors of the circuit breaker.
//!
//! The source of the [`seawall_classify::Error`] the breaker returns, which carries its class.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use seawall_classify::Class;

/// The breaker is open (or all half-open probe slots are taken): the call was refused at once
/// without reaching the service.
///
/// Classified as [`Class::rejected`]: kind `Rejected` (a local decision: a retry layer does
/// not retry it, and no breaker counts it as a fault) with `RetryAfter` the time until the
/// next probe may be admitted, which a handler can send as `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerOpen {
    name: Arc<str>,
    retry_after: Duration,
}

impl BreakerOpen {
    pub(crate) fn new(name: Arc<str>, retry_after: Duration) -> Self {
        BreakerOpen { name, retry_after }
    }

    /// The breaker's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Time until the breaker admits its next probe (zero while probes are under way, or
    /// when it was forced open).
    #[must_use]
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// The class of this error: `Rejected`, retry after [`retry_after`](Self::retry_after).
    #[must_use]
    pub fn class(&self) -> Class {
        Class::rejected(self.retry_after)
    }
}

impl fmt::Display for BreakerOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "circuit breaker `{}` is open; next probe in {:?}",
            self.name, self.retry_after
        )
    }
}

impl std::error::Error for BreakerOpen {}
