//! The vocabulary: what a finished call means.

use std::fmt;
use std::time::Duration;

/// What a finished call means to a resilience layer.
///
/// Every Seawall layer reads the same `Class`: the retry layer decides whether to try again,
/// the breaker and the adaptive limiter whether to count a fault. It is `Copy` and small, and
/// producing one never allocates.
///
/// ```
/// use seawall_core::{Class, FailureKind, RetryHint};
///
/// let class = Class::failure(FailureKind::Overloaded, RetryHint::Retry);
/// assert!(class.is_fault());
/// assert_eq!(class.kind(), Some(FailureKind::Overloaded));
/// assert!(!Class::Success.is_fault());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// The call did what was asked.
    Success,
    /// The call failed; the [`Failure`] says how and whether to try again.
    Failure(Failure),
    /// Neither success nor failure, such as a call its caller cancelled: it counts nowhere.
    Ignored,
}

impl Class {
    /// A failure of the given kind with the given retry hint.
    #[must_use]
    pub const fn failure(kind: FailureKind, retry: RetryHint) -> Self {
        Class::Failure(Failure::new(kind, retry))
    }

    /// The class given to an error nothing recognises: [`FailureKind::Internal`], never retried.
    ///
    /// Retrying an error nobody understands risks repeating a request that did run; teach a
    /// classifier about the error instead (see [`ClassifierExt::or_classifier`](crate::ClassifierExt::or_classifier)).
    pub const UNKNOWN_ERROR: Class = Class::failure(FailureKind::Internal, RetryHint::Never);

    /// `true` for [`Class::Success`].
    #[must_use]
    pub const fn is_success(&self) -> bool {
        matches!(self, Class::Success)
    }

    /// `true` for [`Class::Failure`].
    #[must_use]
    pub const fn is_failure(&self) -> bool {
        matches!(self, Class::Failure(_))
    }

    /// The failure, if this is one.
    #[must_use]
    pub const fn as_failure(&self) -> Option<Failure> {
        match self {
            Class::Failure(failure) => Some(*failure),
            _ => None,
        }
    }

    /// The failure kind, if this is a failure.
    #[must_use]
    pub const fn kind(&self) -> Option<FailureKind> {
        match self {
            Class::Failure(failure) => Some(failure.kind),
            _ => None,
        }
    }

    /// The retry hint, if this is a failure.
    #[must_use]
    pub const fn retry_hint(&self) -> Option<RetryHint> {
        match self {
            Class::Failure(failure) => Some(failure.retry),
            _ => None,
        }
    }

    /// A refusal by a Seawall layer (a breaker open, a limit reached): kind
    /// [`FailureKind::Rejected`], with `retry_after` for the caller. The retry layer never
    /// retries it and no breaker or limit counts it (see [`Policy`](crate::Policy)).
    #[must_use]
    pub const fn rejected(retry_after: Duration) -> Self {
        Class::failure(FailureKind::Rejected, RetryHint::RetryAfter(retry_after))
    }

    /// When the caller may try again, if the failure says: a remote's `Retry-After`, or the
    /// time until a local refusal (an open breaker's next probe) may clear.
    #[must_use]
    pub const fn retry_after(&self) -> Option<Duration> {
        match self {
            Class::Failure(failure) => failure.retry_after(),
            _ => None,
        }
    }

    /// Applies the request's idempotency: a [`FailureKind::Disconnect`] on a request that is
    /// not idempotent becomes [`RetryHint::Never`], because the request may have run.
    ///
    /// ```
    /// use seawall_core::{Class, FailureKind, RetryHint};
    ///
    /// let lost = Class::failure(FailureKind::Disconnect, RetryHint::Retry);
    /// assert!(lost.for_request(true).is_retryable());
    /// assert_eq!(lost.for_request(false).retry_hint(), Some(RetryHint::Never));
    /// ```
    #[must_use]
    pub const fn for_request(self, idempotent: bool) -> Self {
        match self {
            Class::Failure(Failure {
                kind: FailureKind::Disconnect,
                ..
            }) if !idempotent => Class::failure(FailureKind::Disconnect, RetryHint::Never),
            other => other,
        }
    }

    /// A short, stable, lower-case name for telemetry: `success`, `failure` or `ignored`.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Class::Success => "success",
            Class::Failure(_) => "failure",
            Class::Ignored => "ignored",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Class::Failure(failure) => fmt::Display::fmt(failure, f),
            other => f.write_str(other.as_str()),
        }
    }
}

impl From<Failure> for Class {
    fn from(failure: Failure) -> Self {
        Class::Failure(failure)
    }
}

/// How a call failed: whose fault, what sort, and whether to try again.
///
/// ```
/// use std::time::Duration;
/// use seawall_core::{Failure, FailureKind, RetryHint};
///
/// let busy = Failure::new(FailureKind::Overloaded, RetryHint::RetryAfter(Duration::from_secs(2)));
/// assert!(busy.is_fault());
/// assert_eq!(busy.retry_after(), Some(Duration::from_secs(2)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Failure {
    /// Whose fault and what sort.
    pub kind: FailureKind,
    /// Whether and when to try again.
    pub retry: RetryHint,
}

impl Failure {
    /// A failure of `kind` with the hint `retry`.
    #[must_use]
    pub const fn new(kind: FailureKind, retry: RetryHint) -> Self {
        Failure { kind, retry }
    }

    /// `true` when the [standard policy](crate::Policy::STANDARD) counts the failure as a
    /// fault: the same as [`FailureKind::is_fault`] of its kind.
    #[must_use]
    pub const fn is_fault(&self) -> bool {
        self.kind.is_fault()
    }

    /// The delay the remote asked for, if it asked for one.
    #[must_use]
    pub const fn retry_after(&self) -> Option<Duration> {
        match self.retry {
            RetryHint::RetryAfter(delay) => Some(delay),
            _ => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.kind, self.retry)
    }
}

/// Whose fault a failure was and what sort it was.
///
/// | kind | meaning | fault? |
/// |---|---|---|
/// | `Timeout` | no answer in time (attempt timeout, deadline, `statement_timeout`) | yes |
/// | `Connect` | could not reach the remote: refused, DNS, TLS; the request was not sent | yes |
/// | `Disconnect` | connection lost mid-request: the request may have run | yes |
/// | `Overloaded` | the remote said it is too busy: 53300, 429, 503, pool exhausted | yes |
/// | `Unavailable` | shutting down, starting up, read-only: 57P01, 57P03, 25006, LOADING | yes |
/// | `Contention` | serialization failure or deadlock: retry the whole transaction | no |
/// | `Rejected` | refused locally by a Seawall layer: breaker open, concurrency limit reached, load shed | no |
/// | `Invalid` | the caller's fault: syntax, constraint, auth, wrong type, 4xx | no |
/// | `Internal` | anything else | yes |
///
/// `Contention` is not a fault: a database that reports a serialization failure is healthy
/// and arbitrating concurrent transactions; opening a breaker on it would turn one hot row
/// into an outage. The "fault?" column is the [standard policy](crate::Policy::STANDARD);
/// a [`Policy`](crate::Policy) given to the layers can change it.
///
/// A `Rejected` failure is never retried by the retry layer, whatever its hint: its hint is
/// for the caller (`RetryAfter` the time the refusal may last). A retry budget that runs out
/// or a deadline that passes do not produce it: the first returns the last attempt's error,
/// the second `Timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureKind {
    /// No answer in time.
    Timeout,
    /// Could not reach the remote (refused, DNS, TLS): the request was not sent.
    Connect,
    /// The connection was lost mid-request: the request may have run.
    Disconnect,
    /// The remote said it is too busy.
    Overloaded,
    /// The remote is shutting down, starting up or read-only.
    Unavailable,
    /// A serialization failure or deadlock: retry the whole transaction.
    Contention,
    /// Refused locally by a Seawall layer (breaker open, concurrency limit reached, load shed):
    /// the request never reached the remote. Never retried by the retry layer.
    Rejected,
    /// The caller's fault: syntax, constraint, authentication, wrong type, 4xx.
    Invalid,
    /// Anything else.
    Internal,
}

impl FailureKind {
    /// Every kind, in declaration order.
    pub const ALL: [FailureKind; 9] = [
        FailureKind::Timeout,
        FailureKind::Connect,
        FailureKind::Disconnect,
        FailureKind::Overloaded,
        FailureKind::Unavailable,
        FailureKind::Contention,
        FailureKind::Rejected,
        FailureKind::Invalid,
        FailureKind::Internal,
    ];

    /// A short, stable, lower-case name for telemetry (`error.type`, `seawall.failure.kind`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::Connect => "connect",
            FailureKind::Disconnect => "disconnect",
            FailureKind::Overloaded => "overloaded",
            FailureKind::Unavailable => "unavailable",
            FailureKind::Contention => "contention",
            FailureKind::Rejected => "rejected",
            FailureKind::Invalid => "invalid",
            FailureKind::Internal => "internal",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether and when a failed call is worth trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryHint {
    /// Trying again may succeed; the retry policy picks the delay.
    Retry,
    /// Trying again may succeed, but not before this long (the remote said so).
    RetryAfter(Duration),
    /// Trying again will not help, or is unsafe.
    Never,
}

impl fmt::Display for RetryHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryHint::Retry => f.write_str("retryable"),
            RetryHint::RetryAfter(delay) => write!(f, "retry after {delay:?}"),
            RetryHint::Never => f.write_str("not retryable"),
        }
    }
}

/// Property-test strategies over the vocabulary, for this crate's tests.
#[cfg(test)]
pub(crate) mod strategies {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn any_kind() -> impl Strategy<Value = FailureKind> {
        (0..FailureKind::ALL.len()).prop_map(|i| FailureKind::ALL[i])
    }

    pub(crate) fn any_hint() -> impl Strategy<Value = RetryHint> {
        prop_oneof![
            Just(RetryHint::Retry),
            Just(RetryHint::Never),
            any::<u64>().prop_map(|ms| RetryHint::RetryAfter(Duration::from_millis(ms))),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::strategies::{any_hint, any_kind};
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn invalid_and_rejected_never_count_as_faults(hint in any_hint()) {
            prop_assert!(!Class::failure(FailureKind::Invalid, hint).is_fault());
            prop_assert!(!Class::failure(FailureKind::Rejected, hint).is_fault());
        }

        #[test]
        fn idempotency_only_changes_disconnects(kind in any_kind(), hint in any_hint()) {
            let class = Class::failure(kind, hint);
            prop_assert_eq!(class.for_request(true), class);
            if kind == FailureKind::Disconnect {
                prop_assert_eq!(class.for_request(false).retry_hint(), Some(RetryHint::Never));
            } else {
                prop_assert_eq!(class.for_request(false), class);
            }
        }
    }

    #[test]
    fn a_local_refusal_is_not_retryable_but_says_when_to_come_back() {
        let open = Class::rejected(Duration::from_secs(2));
        assert!(!open.is_retryable());
        assert!(!open.is_fault());
        assert_eq!(open.retry_after(), Some(Duration::from_secs(2)));
    }

    #[test]
    fn success_and_ignored_are_not_faults_nor_retryable() {
        for class in [Class::Success, Class::Ignored] {
            assert!(!class.is_fault());
            assert!(!class.is_retryable());
            assert_eq!(class.kind(), None);
        }
    }

    #[test]
    fn remote_kinds_are_faults() {
        let faults: Vec<_> = FailureKind::ALL
            .into_iter()
            .filter(|k| k.is_fault())
            .collect();
        assert_eq!(
            faults,
            [
                FailureKind::Timeout,
                FailureKind::Connect,
                FailureKind::Disconnect,
                FailureKind::Overloaded,
                FailureKind::Unavailable,
                FailureKind::Internal
            ]
        );
    }

    #[test]
    fn display_names_are_stable() {
        let class = Class::failure(FailureKind::Timeout, RetryHint::Retry);
        assert_eq!(class.to_string(), "timeout (retryable)");
        assert_eq!(Class::Success.to_string(), "success");
        assert_eq!(Class::UNKNOWN_ERROR.to_string(), "internal (not retryable)");
    }
}
