//! The two services: [`Deadline`] and [`AttemptTimeout`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use seawall_classify::{BoxError, Error, HasDeadline, call_instant};
use tokio::time::{Instant, Sleep, sleep_until};
use tower_service::Service;

use crate::future::{Bound, ResponseFuture};

/// Sets and enforces an end-to-end deadline; see [`DeadlineLayer`](crate::DeadlineLayer).
///
/// The budget starts when the request is handed over (`call`), not while waiting for
/// readiness, like tower's `Timeout`. A request whose deadline has already passed fails at
/// once with [`DeadlineExceeded`](seawall_classify::DeadlineExceeded), without reaching the
/// inner service.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    pub(crate) inner: S,
    pub(crate) budget: Duration,
    pub(crate) margin: Duration,
    // The budget holds eight margins: a call whose deadline is the budget's own keeps the
    // whole margin without another instant addition.
    pub(crate) roomy: bool,
}

seawall_classify::inner_accessors!(impl[S] Deadline<S>);

impl<S, Req> Service<Req> for Deadline<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError> + 'static,
    Req: HasDeadline,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Error::from_inner)
    }

    fn call(&mut self, mut request: Req) -> Self::Future {
        // The clock, or the instant an enclosing layer read for this call.
        let now = call_instant::get();
        let cap = now + self.budget;
        // An earlier deadline on the request (the caller's) is kept.
        let until = match request.deadline() {
            Some(deadline) if deadline <= cap => deadline,
            _ => cap,
        };
        if until <= now {
            return ResponseFuture::expired(Bound::Deadline);
        }
        // The margin, or an eighth of the time left when that is less. Compared as instants
        // first: with any usual deadline the whole margin fits, and an addition is half the
        // work of the subtraction the eighth needs.
        let early = if self.roomy && until == cap {
            self.margin
        } else {
            match now.checked_add(self.margin.saturating_mul(8)) {
                Some(roomy) if roomy <= until => self.margin,
                _ => self.margin.min((until - now) / 8),
            }
        };
        // The layers inside are given the instant this layer gives up at, not the deadline
        // itself: their own bounds (the attempt timeout, the limit's queue) end the call then,
        // as an outcome they and the layers between record, before this layer's timer would
        // cut it unseen. (What is still running when the timer fires is cut too, see `cut`.)
        let give_up = until - early;
        request.set_deadline(give_up);
        // The layers inside read this instant rather than the clock again (see `clock`).
        let future = call_instant::lend(now, || self.inner.call(request));
        ResponseFuture::running(future, give_up, Bound::Deadline)
    }
}

/// Bounds each call by an attempt timeout and by the request's deadline, whichever is
/// sooner, with one timer per call. See [`AttemptTimeoutLayer`](crate::AttemptTimeoutLayer).
#[derive(Debug)]
pub struct AttemptTimeout<S> {
    pub(crate) inner: S,
    pub(crate) timeout: Duration,
    pub(crate) include_readiness: bool,
    pub(crate) readiness: Readiness,
}

seawall_classify::inner_accessors!(impl[S] AttemptTimeout<S>);

/// The readiness wait, when it counts against the timeout.
#[derive(Debug)]
pub(crate) enum Readiness {
    Idle,
    Waiting {
        started: Instant,
        // Only allocated when the inner service is not ready at once.
        sleep: Option<Pin<Box<Sleep>>>,
    },
    Ready {
        started: Instant,
    },
    TimedOut,
}

impl<S: Clone> Clone for AttemptTimeout<S> {
    fn clone(&self) -> Self {
        // A clone starts its own readiness wait: it never inherits this one's.
        AttemptTimeout {
            inner: self.inner.clone(),
            timeout: self.timeout,
            include_readiness: self.include_readiness,
            readiness: Readiness::Idle,
        }
    }
}

impl<S> AttemptTimeout<S> {
    /// When the clock of the coming call started, or `None` if readiness already timed out.
    /// Out of line: only services that count readiness pay for it.
    #[inline(never)]
    fn take_readiness(&mut self) -> Option<Instant> {
        match std::mem::replace(&mut self.readiness, Readiness::Idle) {
            Readiness::TimedOut => None,
            Readiness::Ready { started } | Readiness::Waiting { started, .. } => Some(started),
            Readiness::Idle => Some(Instant::now()),
        }
    }
}

impl<S, Req> Service<Req> for AttemptTimeout<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError> + 'static,
    Req: HasDeadline,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if !self.include_readiness {
            return self.inner.poll_ready(cx).map_err(Error::from_inner);
        }
        let started = match &self.readiness {
            Readiness::Idle => Instant::now(),
            Readiness::Waiting { started, .. } | Readiness::Ready { started } => *started,
            Readiness::TimedOut => return Poll::Ready(Ok(())),
        };
        match self.inner.poll_ready(cx) {
            Poll::Ready(Ok(())) => {
                self.readiness = Readiness::Ready { started };
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => {
                self.readiness = Readiness::Idle;
                Poll::Ready(Err(Error::from_inner(error)))
            }
            Poll::Pending => {
                let sleep = match &mut self.readiness {
                    Readiness::Waiting {
                        sleep: Some(sleep), ..
                    } => sleep,
                    _ => {
                        self.readiness = Readiness::Waiting {
                            started,
                            sleep: Some(Box::pin(sleep_until(started + self.timeout))),
                        };
                        match &mut self.readiness {
                            Readiness::Waiting {
                                sleep: Some(sleep), ..
                            } => sleep,
                            _ => unreachable!("just set"),
                        }
                    }
                };
                if sleep.as_mut().poll(cx).is_ready() {
                    // Report ready so the caller hands over its request, then fail that call
                    // without touching the inner service.
                    self.readiness = Readiness::TimedOut;
                    return Poll::Ready(Ok(()));
                }
                Poll::Pending
            }
        }
    }

    fn call(&mut self, request: Req) -> Self::Future {
        // The instant an enclosing layer read for this call, or the clock (see `clock`).
        let now = call_instant::get();
        let started = if self.include_readiness {
            match self.take_readiness() {
                Some(started) => started,
                None => return ResponseFuture::expired(Bound::Attempt(self.timeout)),
            }
        } else {
            now
        };
        let own = started + self.timeout;
        let (until, bound) = match request.deadline() {
            Some(deadline) if deadline < own => (deadline, Bound::Deadline),
            _ => (own, Bound::Attempt(self.timeout)),
        };
        if bound == Bound::Deadline && until <= now {
            return ResponseFuture::expired(bound);
        }
        ResponseFuture::running(self.inner.call(request), until, bound)
    }
}
