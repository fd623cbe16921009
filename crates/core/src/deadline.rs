//! How a request carries its end-to-end deadline to every layer inside it.
//!
//! The deadline is a [`tokio::time::Instant`] on the request itself, so it survives buffers,
//! spawned workers and every layer between the one that set it and the client. Layers read it
//! with [`HasDeadline::deadline`]: an attempt timeout uses `min(own, remaining)`, a queue does
//! not wait past it, a retry does not sleep past it, and a PostgreSQL client can set its
//! `statement_timeout` from [`HasDeadline::remaining`].
//!
//! It lives in this crate, next to the classification vocabulary, because every layer crate
//! reads it and none of them depends on another.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

/// A request that can carry an end-to-end deadline.
///
/// Implemented for [`WithDeadline<R>`] (a wrapper for any request) and, with feature `http`,
/// for `http::Request<B>` (in its extensions). A request type with nowhere to keep a deadline
/// can opt in with an empty impl: layers then see no deadline but work as usual.
///
/// ```
/// use std::time::Duration;
/// use seawall_core::deadline::{HasDeadline, WithDeadline};
/// use tokio::time::Instant;
///
/// struct Ping;
/// impl HasDeadline for Ping {} // no deadline: allowed
///
/// let mut request = WithDeadline::new("SELECT 1");
/// assert_eq!(request.deadline(), None);
/// request.set_deadline(Instant::now() + Duration::from_secs(2));
/// assert!(request.remaining().unwrap() <= Duration::from_secs(2));
/// ```
pub trait HasDeadline {
    /// The instant by which the whole request must be finished, if one is set.
    fn deadline(&self) -> Option<Instant> {
        None
    }

    /// Sets the deadline. The default keeps nothing, for request types that cannot carry one.
    fn set_deadline(&mut self, deadline: Instant) {
        let _ = deadline;
    }

    /// Time left until the deadline (zero once it has passed), if one is set.
    fn remaining(&self) -> Option<Duration> {
        self.deadline()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// Sets the deadline to `deadline` unless an earlier one is already set, and returns the
    /// deadline now in force. An outer deadline (from the caller, or a client's header) is
    /// never extended by an inner one.
    fn tighten_deadline(&mut self, deadline: Instant) -> Instant {
        match self.deadline() {
            Some(existing) if existing <= deadline => existing,
            _ => {
                self.set_deadline(deadline);
                deadline
            }
        }
    }

    /// How much the request matters when there is not room for every request: under a
    /// standing queue, a concurrency limit serves [`Priority::Critical`] first and sheds
    /// [`Priority::Sheddable`] first. [`Priority::Default`] unless the request says otherwise.
    fn priority(&self) -> Priority {
        Priority::Default
    }
}

/// How much a request matters under overload, carried by the request like its deadline
/// ([`HasDeadline::priority`]; [`WithPriority`], made by [`WithDeadline::with_priority`], or
/// the `Priority` extension of an `http::Request`).
///
/// A concurrency limit with a standing queue hands its permits to the highest priority first,
/// sheds sheddable calls first, and lets a higher-priority call take a full queue's place from
/// a lower one, so a flood of prefetch or batch work cannot starve the calls a user waits for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// A call a user is waiting for, whose failure is visible: served first.
    Critical,
    /// Everything not marked otherwise.
    #[default]
    Default,
    /// Work that can be dropped without harm (prefetch, speculative or batch work): shed first.
    Sheddable,
}

impl Priority {
    /// Every priority, highest first.
    pub const ALL: [Priority; 3] = [Priority::Critical, Priority::Default, Priority::Sheddable];

    /// Its place in [`Priority::ALL`]: 0 for the highest.
    #[must_use]
    pub const fn rank(self) -> usize {
        self as usize
    }

    /// Its name in telemetry: `critical`, `default` or `sheddable`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::Default => "default",
            Priority::Sheddable => "sheddable",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<R: HasDeadline + ?Sized> HasDeadline for Box<R> {
    fn deadline(&self) -> Option<Instant> {
        (**self).deadline()
    }
    fn set_deadline(&mut self, deadline: Instant) {
        (**self).set_deadline(deadline);
    }
    fn priority(&self) -> Priority {
        (**self).priority()
    }
}

/// A request of any type together with its deadline.
///
/// ```
/// use std::time::Duration;
/// use seawall_core::deadline::{HasDeadline, WithDeadline};
/// use tokio::time::Instant;
///
/// let soon = Instant::now() + Duration::from_millis(50);
/// let request = WithDeadline::new("GET key").deadline_at(soon);
/// assert_eq!(request.deadline(), Some(soon));
/// assert_eq!(*request.get_ref(), "GET key");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithDeadline<R> {
    request: R,
    deadline: Option<Instant>,
}

impl<R> WithDeadline<R> {
    /// Wraps `request`, with no deadline yet.
    pub fn new(request: R) -> Self {
        WithDeadline {
            request,
            deadline: None,
        }
    }

    /// This request with a [`Priority`] under overload: a [`WithPriority`] around it (the
    /// priority is not kept in `WithDeadline` itself, so that requests without one move
    /// nothing more through every layer).
    #[must_use]
    pub fn with_priority(self, priority: Priority) -> WithPriority<Self> {
        WithPriority::new(self, priority)
    }

    /// Sets the deadline to `deadline`.
    #[must_use]
    pub fn deadline_at(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Sets the deadline to `timeout` from now.
    #[must_use]
    pub fn deadline_in(self, timeout: Duration) -> Self {
        self.deadline_at(Instant::now() + timeout)
    }

    /// The wrapped request.
    pub fn get_ref(&self) -> &R {
        &self.request
    }

    /// The wrapped request, mutably.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.request
    }

    /// Unwraps the request, dropping the deadline.
    pub fn into_inner(self) -> R {
        self.request
    }

    /// Splits into the request and its deadline.
    pub fn into_parts(self) -> (R, Option<Instant>) {
        (self.request, self.deadline)
    }
}

impl<R> From<R> for WithDeadline<R> {
    fn from(request: R) -> Self {
        WithDeadline::new(request)
    }
}

impl<R> HasDeadline for WithDeadline<R> {
    fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
    fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
    }
}

/// A request with a [`Priority`] under overload, around a request that carries its deadline
/// (usually a [`WithDeadline`]: [`WithDeadline::with_priority`]).
///
/// ```
/// use std::time::Duration;
/// use seawall_core::deadline::{HasDeadline, Priority, WithDeadline};
///
/// let request = WithDeadline::new("GET feed")
///     .deadline_in(Duration::from_secs(1))
///     .with_priority(Priority::Sheddable);
/// assert_eq!(request.priority(), Priority::Sheddable);
/// assert!(request.deadline().is_some());
/// assert_eq!(*request.get_ref().get_ref(), "GET feed");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithPriority<R> {
    request: R,
    priority: Priority,
}

impl<R> WithPriority<R> {
    /// Wraps `request` with `priority`.
    pub fn new(request: R, priority: Priority) -> Self {
        WithPriority { request, priority }
    }

    /// The wrapped request.
    pub fn get_ref(&self) -> &R {
        &self.request
    }

    /// The wrapped request, mutably.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.request
    }

    /// Unwraps the request, dropping the priority.
    pub fn into_inner(self) -> R {
        self.request
    }
}

impl<R: HasDeadline> HasDeadline for WithPriority<R> {
    fn deadline(&self) -> Option<Instant> {
        self.request.deadline()
    }
    fn set_deadline(&mut self, deadline: Instant) {
        self.request.set_deadline(deadline);
    }
    fn priority(&self) -> Priority {
        self.priority
    }
}

/// The extension under which an `http::Request` keeps its deadline (feature `http`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestDeadline(pub Instant);

impl<B> HasDeadline for http::Request<B> {
    fn deadline(&self) -> Option<Instant> {
        self.extensions().get::<RequestDeadline>().map(|d| d.0)
    }
    fn set_deadline(&mut self, deadline: Instant) {
        self.extensions_mut().insert(RequestDeadline(deadline));
    }
    fn priority(&self) -> Priority {
        self.extensions()
            .get::<Priority>()
            .copied()
            .unwrap_or_default()
    }
}

/// The request's end-to-end deadline passed before it could finish.
///
/// Classified as [`FailureKind::Timeout`](crate::FailureKind::Timeout) with
/// [`RetryHint::Never`](crate::RetryHint::Never): there is no time left to try again. Every
/// layer that stops work because of the deadline (the deadline layer itself, a queue, a retry
/// backoff) returns this error, wrapped in a [`seawall_core::Error`](crate::Error). When
/// a retry layer gives up because the deadline leaves no time for another attempt, the last
/// attempt's error is this error's [`source`](std::error::Error::source).
#[derive(Debug)]
pub struct DeadlineExceeded {
    cause: Option<crate::BoxError>,
}

impl DeadlineExceeded {
    /// The error, for layers that enforce a deadline.
    #[must_use]
    pub const fn new() -> Self {
        DeadlineExceeded { cause: None }
    }

    /// The error, after `cause` was the last thing that went wrong before time ran out.
    #[must_use]
    pub fn after(cause: impl Into<crate::BoxError>) -> Self {
        DeadlineExceeded {
            cause: Some(cause.into()),
        }
    }

    /// The class of this error: `Timeout`, never retried.
    pub const CLASS: crate::Class =
        crate::Class::failure(crate::FailureKind::Timeout, crate::RetryHint::Never);

    /// The class of this error: [`CLASS`](Self::CLASS).
    #[must_use]
    pub const fn class(&self) -> crate::Class {
        Self::CLASS
    }

    /// This error wrapped with its class, as layers return it.
    #[must_use]
    pub fn classified() -> crate::Error {
        crate::Error::new(Self::CLASS, Self::new())
    }

    /// This error with `cause`, wrapped with its class.
    #[must_use]
    pub fn classified_after(cause: impl Into<crate::BoxError>) -> crate::Error {
        crate::Error::new(Self::CLASS, Self::after(cause))
    }
}

impl Default for DeadlineExceeded {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request deadline exceeded")
    }
}

impl std::error::Error for DeadlineExceeded {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_deref().map(|e| e as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_is_kept() {
        let now = Instant::now();
        let mut request = WithDeadline::new(()).deadline_at(now + Duration::from_secs(1));
        assert_eq!(
            request.tighten_deadline(now + Duration::from_secs(5)),
            now + Duration::from_secs(1)
        );
        assert_eq!(
            request.tighten_deadline(now + Duration::from_millis(10)),
            now + Duration::from_millis(10)
        );
        assert_eq!(request.deadline(), Some(now + Duration::from_millis(10)));
    }

    #[tokio::test(start_paused = true)]
    async fn remaining_counts_down_to_zero() {
        let request = WithDeadline::new(()).deadline_in(Duration::from_millis(100));
        tokio::time::advance(Duration::from_millis(40)).await;
        assert_eq!(request.remaining(), Some(Duration::from_millis(60)));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(request.remaining(), Some(Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn http_requests_keep_the_deadline_in_extensions() {
        let mut request = http::Request::new(());
        assert_eq!(request.deadline(), None);
        let at = Instant::now() + Duration::from_secs(3);
        request.set_deadline(at);
        assert_eq!(
            request.extensions().get::<RequestDeadline>(),
            Some(&RequestDeadline(at))
        );
        assert_eq!(request.deadline(), Some(at));
    }

    #[test]
    fn deadline_exceeded_is_a_timeout_never_retried() {
        let err = DeadlineExceeded::classified();
        assert_eq!(err.class(), DeadlineExceeded::CLASS);
        assert!(!err.class().is_retryable());
        assert_eq!(err.to_string(), "request deadline exceeded");
        assert_eq!(
            crate::floor_class(&DeadlineExceeded::new()),
            Some(DeadlineExceeded::CLASS)
        );
    }
}
