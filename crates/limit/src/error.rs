//! Errors of the concurrency limit.
//!
//! The source of the [`seawall_classify::Error`] the limit returns, which carries the class.
//! A call whose request deadline came before a permit did is refused the same way
//! ([`Reason::Deadline`]): it never reached the dependency, so it is a local refusal, not a
//! timeout a breaker outside would count against the dependency.

use std::fmt;
use std::time::Duration;

use seawall_classify::{Class, Error};

/// The limit was reached and the call was refused without reaching the service, or (for
/// [`Reason::LateFromQueue`]) reached it too late to be answered.
///
/// Classified as [`Class::rejected`] (a local refusal: never retried by the retry layer, not
/// a fault of the dependency, so breakers and adaptive limits do not count it), with the
/// limit's `max_wait` as the time after which the caller may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitReached {
    reason: Reason,
    retry_after: Duration,
}

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Every permit was taken and the queue was full (or has length 0).
    QueueFull,
    /// The call waited in the queue for `max_wait` without getting a permit.
    WaitedTooLong(Duration),
    /// At the pace the queue drains now, the call would be answered after its deadline
    /// (this long from now): refused at once instead of waiting for nothing.
    TooLate(Duration),
    /// The request's deadline came, after this long in the queue, before a permit did (zero:
    /// it had passed when the call arrived).
    Deadline(Duration),
    /// The queue had stood (not been empty) for the controlled-delay interval, and the call
    /// had waited this long, the most a standing queue lets a call wait
    /// ([`Discipline::ControlledDelay`](crate::Discipline::ControlledDelay)): shed, so that
    /// it fails now rather than at its deadline.
    Shed(Duration),
    /// A call of this higher priority took the call's place in a full queue.
    Displaced(seawall_classify::Priority),
    /// The call got its permit after `waited` in the queue, and the request's deadline ended
    /// it `ran` later, a shorter time than it had waited: its time went to the queue (an
    /// overload), so the limit answers for it rather than the dependency's timeout, which a
    /// breaker outside would count against a dependency that was only busy.
    LateFromQueue {
        /// Time in the queue.
        waited: Duration,
        /// Time at the dependency before the deadline.
        ran: Duration,
    },
}

impl LimitReached {
    /// This error with its class, as the limit returns it.
    pub(crate) fn error(reason: Reason, retry_after: Duration) -> Error {
        let refused = LimitReached {
            reason,
            retry_after,
        };
        Error::new(refused.class(), refused)
    }

    /// The class of this error: [`Class::rejected`], after the time the caller may try again.
    #[must_use]
    pub fn class(&self) -> Class {
        Class::rejected(self.retry_after)
    }

    /// Why the call was refused.
    #[must_use]
    pub fn reason(&self) -> Reason {
        self.reason
    }
}

impl fmt::Display for LimitReached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            Reason::QueueFull => f.write_str("concurrency limit reached and its queue is full"),
            Reason::TooLate(expected) => write!(
                f,
                "concurrency limit reached: the queue would answer in about {expected:?}, after the deadline"
            ),
            Reason::WaitedTooLong(wait) => {
                write!(f, "concurrency limit reached: no permit within {wait:?}")
            }
            Reason::Deadline(waited) => write!(
                f,
                "concurrency limit reached: the request's deadline came before a permit (queued {waited:?})"
            ),
            Reason::Shed(waited) => write!(
                f,
                "concurrency limit reached: shed after {waited:?} in a standing queue"
            ),
            Reason::Displaced(by) => write!(
                f,
                "concurrency limit reached: a {by} call took this call's place in the full queue"
            ),
            Reason::LateFromQueue { waited, ran } => write!(
                f,
                "concurrency limit reached: the request's deadline ended the call {ran:?} after its permit, which it had queued {waited:?} for"
            ),
        }
    }
}

impl std::error::Error for LimitReached {}
