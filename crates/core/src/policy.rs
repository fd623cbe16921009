//! What a class means to each layer that reads it: the one place where "retried?", "a
//! breaker fault?" and "an adaptive-limit drop?" are decided.

use std::fmt;

use crate::{Class, FailureKind, RetryHint};

/// What each [`Class`] means to the layers that act on it.
///
/// Three layers make a decision from a finished call's class, and all of them ask this one
/// policy (the pipeline hands the same policy to each):
///
/// | question | asked by | standard answer |
/// |---|---|---|
/// | [`may_retry`](Self::may_retry) | the retry layer | a failure whose hint is not `Never`, of any kind but `Rejected` |
/// | [`is_fault`](Self::is_fault) | the circuit breaker | a failure of a remote kind: `Timeout`, `Connect`, `Disconnect`, `Overloaded`, `Unavailable`, `Internal` |
/// | [`limit_sample`](Self::limit_sample) | an adaptive limit | a fault is a drop; a success or an answered failure (`Contention`) is a success; `Invalid`, `Rejected` and ignored calls say nothing about capacity |
///
/// A local refusal ([`FailureKind::Rejected`]: a breaker open, a limit reached) means the
/// same everywhere: never retried by the retry layer (retrying would only hammer the layer
/// that said no), never a fault, never a sample, and it carries
/// [`RetryHint::RetryAfter`] for the caller. No policy can change that.
///
/// Which kinds count as faults can be changed, e.g. to let serialization failures open a
/// breaker:
///
/// ```
/// use seawall_core::{Class, FailureKind, Policy, RetryHint};
///
/// let policy = Policy::standard().fault(FailureKind::Contention, true);
/// let contention = Class::failure(FailureKind::Contention, RetryHint::Retry);
/// assert!(policy.is_fault(contention));
/// assert!(!Policy::standard().is_fault(contention));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Policy {
    faults: KindSet,
    retried: KindSet,
}

/// What an adaptive limit learns from one finished call; see [`Policy::limit_sample`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitSample {
    /// The dependency answered within its capacity.
    Success,
    /// The dependency is past its capacity (a fault or a timeout): the limit should shrink.
    Drop,
    /// Nothing learnt: the call never reached the dependency, or failed by the caller's fault.
    Ignore,
}

impl Policy {
    /// The standard policy; see the table on [`Policy`].
    pub const STANDARD: Policy = Policy {
        faults: KindSet::EMPTY
            .with(FailureKind::Timeout)
            .with(FailureKind::Connect)
            .with(FailureKind::Disconnect)
            .with(FailureKind::Overloaded)
            .with(FailureKind::Unavailable)
            .with(FailureKind::Internal),
        retried: KindSet::ALL.without(FailureKind::Rejected),
    };

    /// The standard policy; the same as [`Policy::STANDARD`] and `Policy::default()`.
    #[must_use]
    pub const fn standard() -> Self {
        Self::STANDARD
    }

    /// Whether failures of `kind` count as faults (for a breaker, and as drops for an
    /// adaptive limit). `Rejected` never does: setting it is ignored.
    #[must_use]
    pub const fn fault(mut self, kind: FailureKind, counts: bool) -> Self {
        if matches!(kind, FailureKind::Rejected) {
            return self;
        }
        self.faults = if counts {
            self.faults.with(kind)
        } else {
            self.faults.without(kind)
        };
        self
    }

    /// Whether the retry layer may retry failures of `kind` (when their hint allows). Turning
    /// it off for a kind the classifier calls retryable keeps the retry layer away from it,
    /// e.g. `Disconnect` for writes without an idempotency key. `Rejected` is never retried:
    /// setting it is ignored.
    #[must_use]
    pub const fn retry(mut self, kind: FailureKind, retried: bool) -> Self {
        if matches!(kind, FailureKind::Rejected) {
            return self;
        }
        self.retried = if retried {
            self.retried.with(kind)
        } else {
            self.retried.without(kind)
        };
        self
    }

    /// `true` when a breaker counts `class` as a fault of the dependency.
    #[must_use]
    pub const fn is_fault(&self, class: Class) -> bool {
        match class {
            Class::Failure(failure) => self.faults.contains(failure.kind),
            _ => false,
        }
    }

    /// `true` when the retry layer may try again after `class`: a failure whose hint is
    /// `Retry` or `RetryAfter`, of a kind this policy retries (never `Rejected`).
    #[must_use]
    pub const fn may_retry(&self, class: Class) -> bool {
        match class {
            Class::Failure(failure) => {
                !matches!(failure.retry, RetryHint::Never) && self.retried.contains(failure.kind)
            }
            _ => false,
        }
    }

    /// What an adaptive limit learns from `class`.
    #[must_use]
    pub const fn limit_sample(&self, class: Class) -> LimitSample {
        match class {
            Class::Success => LimitSample::Success,
            Class::Ignored => LimitSample::Ignore,
            Class::Failure(failure) => {
                if self.faults.contains(failure.kind) {
                    LimitSample::Drop
                } else if matches!(failure.kind, FailureKind::Invalid | FailureKind::Rejected) {
                    LimitSample::Ignore
                } else {
                    // Answered, such as a serialization failure: its capacity is fine.
                    LimitSample::Success
                }
            }
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::STANDARD
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("faults", &self.faults)
            .field("retried", &self.retried)
            .finish()
    }
}

/// A set of failure kinds, one bit each: what a [`Policy`] counts or retries, and what a
/// fallback answers for.
///
/// ```
/// use seawall_core::{FailureKind, KindSet};
///
/// let set: KindSet = [FailureKind::Timeout, FailureKind::Connect].into_iter().collect();
/// assert!(set.contains(FailureKind::Timeout));
/// assert!(!set.contains(FailureKind::Invalid));
/// assert!(KindSet::EMPTY.is_empty());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KindSet(u16);

impl KindSet {
    /// No kind.
    pub const EMPTY: KindSet = KindSet(0);
    /// Every kind.
    pub const ALL: KindSet = KindSet((1 << FailureKind::ALL.len()) - 1);

    const fn bit(kind: FailureKind) -> u16 {
        1 << kind as u16
    }

    /// This set and `kind`.
    #[must_use]
    pub const fn with(self, kind: FailureKind) -> Self {
        KindSet(self.0 | Self::bit(kind))
    }

    /// This set without `kind`.
    #[must_use]
    pub const fn without(self, kind: FailureKind) -> Self {
        KindSet(self.0 & !Self::bit(kind))
    }

    /// Whether `kind` is in the set.
    #[must_use]
    pub const fn contains(self, kind: FailureKind) -> bool {
        self.0 & Self::bit(kind) != 0
    }

    /// Whether the set holds no kind.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl FromIterator<FailureKind> for KindSet {
    fn from_iter<I: IntoIterator<Item = FailureKind>>(kinds: I) -> Self {
        kinds.into_iter().fold(KindSet::EMPTY, KindSet::with)
    }
}

impl fmt::Debug for KindSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(FailureKind::ALL.iter().filter(|k| self.contains(**k)))
            .finish()
    }
}

// The standard policy's answers, as shorthands on the vocabulary.
impl Class {
    /// `true` when the [standard policy](crate::Policy::STANDARD) counts this as a fault of
    /// the dependency (what a breaker counts).
    #[must_use]
    pub const fn is_fault(&self) -> bool {
        Policy::STANDARD.is_fault(*self)
    }

    /// `true` when the [standard policy](crate::Policy::STANDARD) lets the retry layer try
    /// again: a failure with hint `Retry` or `RetryAfter`, of any kind but `Rejected`.
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        Policy::STANDARD.may_retry(*self)
    }
}

impl crate::Failure {
    /// `true` when the [standard policy](crate::Policy::STANDARD) lets the retry layer try
    /// again: the hint is [`RetryHint::Retry`] or [`RetryHint::RetryAfter`] and the kind is
    /// not `Rejected`.
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        Policy::STANDARD.may_retry(Class::Failure(*self))
    }
}

impl FailureKind {
    /// `true` when failures of this kind say something about the remote's health, so that a
    /// breaker or an adaptive limiter counts them under the [standard
    /// policy](crate::Policy::STANDARD). `Invalid` (the caller's fault), `Rejected` (decided
    /// locally) and `Contention` (a healthy database arbitrating) are not.
    #[must_use]
    pub const fn is_fault(self) -> bool {
        Policy::STANDARD.is_fault(Class::failure(self, RetryHint::Never))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::class::strategies::{any_hint, any_kind};

    fn any_policy() -> impl Strategy<Value = Policy> {
        proptest::collection::vec((any_kind(), any::<bool>(), any::<bool>()), 0..12).prop_map(
            |changes| {
                changes
                    .into_iter()
                    .fold(Policy::standard(), |p, (kind, fault, retried)| {
                        p.fault(kind, fault).retry(kind, retried)
                    })
            },
        )
    }

    proptest! {
        #[test]
        fn a_local_refusal_means_the_same_under_every_policy(
            policy in any_policy(),
            hint in any_hint(),
        ) {
            let rejected = Class::failure(FailureKind::Rejected, hint);
            prop_assert!(!policy.may_retry(rejected));
            prop_assert!(!policy.is_fault(rejected));
            prop_assert_eq!(policy.limit_sample(rejected), LimitSample::Ignore);
        }

        #[test]
        fn never_is_never_retried(policy in any_policy(), kind in any_kind()) {
            prop_assert!(!policy.may_retry(Class::failure(kind, RetryHint::Never)));
        }

        #[test]
        fn faults_are_exactly_the_drops(policy in any_policy(), kind in any_kind(), hint in any_hint()) {
            let class = Class::failure(kind, hint);
            prop_assert_eq!(policy.is_fault(class), policy.limit_sample(class) == LimitSample::Drop);
        }
    }

    #[test]
    fn the_standard_policy_reads_like_its_table() {
        let p = Policy::standard();
        let remote = [
            FailureKind::Timeout,
            FailureKind::Connect,
            FailureKind::Disconnect,
            FailureKind::Overloaded,
            FailureKind::Unavailable,
            FailureKind::Internal,
        ];
        for kind in FailureKind::ALL {
            let class = Class::failure(kind, RetryHint::Retry);
            assert_eq!(p.is_fault(class), remote.contains(&kind), "{kind}");
            assert_eq!(p.may_retry(class), kind != FailureKind::Rejected, "{kind}");
        }
        let contention = Class::failure(FailureKind::Contention, RetryHint::Retry);
        assert_eq!(p.limit_sample(contention), LimitSample::Success);
        let invalid = Class::failure(FailureKind::Invalid, RetryHint::Never);
        assert_eq!(p.limit_sample(invalid), LimitSample::Ignore);
        assert_eq!(p.limit_sample(Class::Ignored), LimitSample::Ignore);
        assert_eq!(p.limit_sample(Class::Success), LimitSample::Success);
        assert!(!p.may_retry(Class::Success));
    }

    #[test]
    fn kinds_can_be_moved_in_and_out() {
        let p = Policy::standard()
            .fault(FailureKind::Internal, false)
            .retry(FailureKind::Disconnect, false)
            .retry(FailureKind::Rejected, true);
        assert!(!p.is_fault(Class::failure(FailureKind::Internal, RetryHint::Never)));
        assert!(!p.may_retry(Class::failure(FailureKind::Disconnect, RetryHint::Retry)));
        assert!(!p.may_retry(Class::failure(
            FailureKind::Rejected,
            RetryHint::RetryAfter(Duration::ZERO)
        )));
        assert_eq!(
            format!(
                "{:?}",
                Policy::standard().fault(FailureKind::Timeout, false)
            ),
            "Policy { faults: {Connect, Disconnect, Overloaded, Unavailable, Internal}, retried: {Timeout, Connect, Disconnect, Overloaded, Unavailable, Contention, Invalid, Internal} }"
        );
    }
}
