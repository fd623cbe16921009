//! The fleet layers' refusals: [`RateLimited`] and [`BudgetSpent`].

use seawall_classify::{Class, Error, FailureKind, RetryHint};
use std::fmt;
use std::time::Duration;

/// A call refused by a rate limit: the caller should come back after
/// [`retry_after`](Self::retry_after). Classified `Rejected` with that hint.
#[derive(Debug, Clone)]
pub struct RateLimited {
    pub(crate) retry_after: Duration,
    pub(crate) shared: bool,
}

impl RateLimited {
    /// When a call would be admitted again.
    #[must_use]
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// `true` when the fleet's shared limit refused, `false` for this instance's own.
    #[must_use]
    pub fn shared(&self) -> bool {
        self.shared
    }

    /// The class of this error: `Rejected`, after [`retry_after`](Self::retry_after).
    #[must_use]
    pub fn class(&self) -> Class {
        Class::failure(
            FailureKind::Rejected,
            RetryHint::RetryAfter(self.retry_after),
        )
    }

    pub(crate) fn error(retry_after: Duration, shared: bool) -> Error {
        Error::new(
            Class::failure(FailureKind::Rejected, RetryHint::RetryAfter(retry_after)),
            RateLimited {
                retry_after,
                shared,
            },
        )
    }
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whose = if self.shared { "fleet's" } else { "local" };
        write!(
            f,
            "the {whose} rate limit is reached: retry after {:?}",
            self.retry_after
        )
    }
}

impl std::error::Error for RateLimited {}

/// A call refused by a concurrency budget: as many calls as it allows are in flight.
/// Classified `Rejected`, with a retry hint of when the next lease ends.
#[derive(Debug, Clone)]
pub struct BudgetSpent {
    pub(crate) max: u32,
    pub(crate) shared: bool,
    pub(crate) retry_after: Duration,
}

impl BudgetSpent {
    /// The class of this error: `Rejected`, after the time until the next lease ends.
    #[must_use]
    pub fn class(&self) -> Class {
        Class::failure(
            FailureKind::Rejected,
            RetryHint::RetryAfter(self.retry_after),
        )
    }

    /// `true` when the fleet's shared budget refused, `false` for this instance's own share.
    #[must_use]
    pub fn shared(&self) -> bool {
        self.shared
    }
}

impl fmt::Display for BudgetSpent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.shared {
            write!(f, "the fleet's {} calls in flight are taken", self.max)
        } else {
            write!(
                f,
                "this instance's share of {} calls in flight is taken (the fleet's store does not answer)",
                self.max
            )
        }
    }
}

impl std::error::Error for BudgetSpent {}
