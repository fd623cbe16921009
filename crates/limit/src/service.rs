//! The concurrency limit service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use seawall_classify::{BoxError, Classifier, DefaultClassifier, Error, HasDeadline};
use tower_service::Service;

use crate::admission::Shared;
use crate::admission::permit::SparePermit;
use crate::error::Reason;
use crate::future::ResponseFuture;
use crate::handle::LimitHandle;

/// At most `max` calls in flight across all clones; callers beyond that wait in a bounded
/// queue ([`Discipline`](crate::Discipline)) for at most `max_wait` and never past their request's deadline. See
/// [`ConcurrencyLimitLayer`](crate::ConcurrencyLimitLayer).
///
/// `poll_ready` reserves a permit when one is free and then waits for the inner service, as
/// tower's `ConcurrencyLimit` does. When none is free it reports ready at once: the call then
/// queues in its response future, where the request's deadline is known, and fails fast when
/// the queue is full. `poll_ready` never blocks on the limit. A queued call drives a clone of
/// the inner service once admitted, so the inner service must be `Clone`.
pub struct ConcurrencyLimit<S, C = DefaultClassifier> {
    inner: S,
    classifier: C,
    shared: Arc<Shared>,
    permit: Option<SparePermit>,
}

seawall_classify::inner_accessors!(impl[S, C] ConcurrencyLimit<S, C>);

impl<S, C> ConcurrencyLimit<S, C> {
    pub(crate) fn new(inner: S, classifier: C, shared: Arc<Shared>) -> Self {
        ConcurrencyLimit {
            inner,
            classifier,
            shared,
            permit: None,
        }
    }

    /// A handle reading the limit's state.
    pub fn handle(&self) -> LimitHandle {
        LimitHandle {
            shared: self.shared.clone(),
        }
    }
}

impl<S: Clone, C: Clone> Clone for ConcurrencyLimit<S, C> {
    fn clone(&self) -> Self {
        // A clone never inherits a reserved permit.
        ConcurrencyLimit::new(
            self.inner.clone(),
            self.classifier.clone(),
            self.shared.clone(),
        )
    }
}

impl<S: fmt::Debug, C> fmt::Debug for ConcurrencyLimit<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimit")
            .field("inner", &self.inner)
            .field("max", &self.shared.max)
            .field("in_flight", &self.shared.in_flight())
            .field("queued", &self.shared.queued())
            .field("reserved", &self.permit.is_some())
            .finish()
    }
}

impl<S, C, Req> Service<Req> for ConcurrencyLimit<S, C>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError> + 'static,
    C: Classifier<S::Response> + Clone,
    Req: HasDeadline,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S, Req, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.permit.is_none() {
            // `get_or_insert`: the slot is empty, so there is nothing to drop.
            match SparePermit::take(&self.shared) {
                Some(spare) => {
                    self.permit.get_or_insert(spare);
                }
                // No permit: the call will queue (or be refused) in its future.
                None => return Poll::Ready(Ok(())),
            }
        }
        self.inner.poll_ready(cx).map_err(Error::from_inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        if let Some(permit) = self.permit.take() {
            self.shared.record_admitted();
            let permit = crate::admission::permit::Permit::admitted(permit, &self.shared);
            return ResponseFuture::running(
                self.inner.call(request),
                permit,
                self.classifier.clone(),
            );
        }
        self.call_queued(request)
    }
}

impl<S, C: Clone> ConcurrencyLimit<S, C> {
    /// No permit was free at `poll_ready`: queue the call, or refuse it. Kept out of line so
    /// the admitted-at-once path stays small enough to inline.
    #[inline(never)]
    fn call_queued<Req>(&mut self, request: Req) -> ResponseFuture<S, Req, C>
    where
        S: Service<Req> + Clone,
        Req: HasDeadline,
    {
        let now = seawall_classify::call_instant::get();
        let deadline = request.deadline();
        if deadline.is_some_and(|deadline| deadline <= now) {
            let error = self
                .shared
                .refuse(Reason::Deadline(Duration::ZERO), self.shared.max_wait);
            return ResponseFuture::refused(error, self.classifier.clone());
        }
        // At the pace the queue drained lately, the place a call would take in its line.
        let place = self.shared.queued() + 1;
        // A call that would not get its permit before its deadline even if the queue drained
        // four times as fast as it has lately is refused at once rather than after waiting
        // for nothing. One that might make it waits: overloads end, and the queue then drains
        // at once (refusing on the current pace alone turned away calls that the end of a
        // slowdown would have served: measured in seawall-eval's real mode).
        if let (Some(deadline), Some(expected)) = (deadline, self.shared.expected_wait(place, now))
            && now + expected / 4 > deadline
        {
            let error = self.shared.refuse(Reason::TooLate(expected), expected);
            return ResponseFuture::refused(error, self.classifier.clone());
        }
        let (waiter, shed_at) = match self.shared.join(request.priority(), deadline, now) {
            Ok(joined) => joined,
            Err(reason) => {
                let error = self.shared.refuse(reason, self.shared.max_wait);
                return ResponseFuture::refused(error, self.classifier.clone());
            }
        };
        let max_wait_ends = now + self.shared.max_wait;
        let (until, by_deadline) = match deadline {
            Some(deadline) if deadline < max_wait_ends => (deadline, true),
            _ => (max_wait_ends, false),
        };
        ResponseFuture::queued(
            crate::admission::queue::Place {
                shared: self.shared.clone(),
                waiter,
            },
            self.inner.clone(),
            request,
            crate::future::QueueWait {
                queued_at: now,
                until,
                by_deadline,
                shed_at: shed_at.filter(|shed_at| *shed_at < until),
                deadline,
            },
            self.classifier.clone(),
        )
    }
}
