//! The response future of [`ConcurrencyLimit`](crate::ConcurrencyLimit).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use seawall_classify::schema;
use seawall_classify::{BoxError, Classifier, Error, classify_outcome};
use tokio::time::{Instant, Sleep, sleep_until};
use tower_service::Service;

use crate::admission::permit::{Permit, SparePermit};
use crate::admission::queue::{Answer, Place};
use crate::error::{LimitReached, Reason};

pin_project! {
    /// Waits for a permit if the call was queued, then drives the inner call, holding the
    /// permit until the call completes or this future is dropped.
    pub struct ResponseFuture<S, Req, C>
    where
        S: Service<Req>,
    {
        // The admitted call; `None` while queued, after a refusal, and once it answered.
        #[pin]
        inner: Option<S::Future>,
        permit: Option<Permit>,
        // A queued call, a refusal not yet returned, or a call admitted from the queue (with
        // what its wait was): boxed, so that the future of a call admitted at once stays small
        // (moved without a call to `memcpy`) and its drop short.
        slow: Option<Pin<Box<Slow<S, Req>>>>,
        // Asked about the outcome only in adaptive mode.
        classifier: C,
    }
}

pin_project! {
    #[project = SlowProj]
    enum Slow<S, Req>
    where
        S: Service<Req>,
    {
        Waiting {
            #[pin]
            waiting: Waiting<S, Req>,
        },
        Failed {
            error: Option<Error>,
        },
        // Admitted from the queue; with a deadline, how long it waited, when it was admitted,
        // and the deadline (see `spent_in_queue`).
        Admitted {
            queued: Option<Queued>,
        },
    }
}

pin_project! {
    // A queued call: waiting for a permit, then for a clone of the inner service to be ready.
    struct Waiting<S, Req> {
        // Its place in line; `None` once it has its permit.
        place: Option<Place>,
        #[pin]
        sleep: Sleep,
        shared: Arc<crate::admission::Shared>,
        service: S,
        request: Option<Req>,
        permit: Option<SparePermit>,
        wait: QueueWait,
    }
}

/// A queued call once admitted: the inner call, its permit, and what its wait was.
type Admitted<F> = (F, Permit, Option<Queued>);

/// A call admitted from the queue before its deadline.
#[derive(Debug, Clone, Copy)]
struct Queued {
    waited: std::time::Duration,
    admitted: Instant,
    deadline: Instant,
    max_wait: std::time::Duration,
}

impl Queued {
    /// The call's error, or the limit's refusal in its place when the request's deadline
    /// ended the call after it had spent more of its time in the queue than at the
    /// dependency: then the deadline was this limit's doing (an overload queueing calls), not
    /// the dependency's, and a breaker outside must not count it as the dependency's timeout.
    /// A hung dependency still shows: the calls admitted at once run out their whole time.
    #[cold]
    #[inline(never)]
    fn spent_in_queue(self, error: Error) -> Error {
        let now = Instant::now();
        let ran = now.saturating_duration_since(self.admitted);
        if error.kind() == Some(seawall_classify::FailureKind::Timeout)
            && now >= self.deadline
            && self.waited >= ran
        {
            return LimitReached::error(
                Reason::LateFromQueue {
                    waited: self.waited,
                    ran,
                },
                self.max_wait,
            );
        }
        error
    }
}

impl<S: Service<Req>, Req, C> ResponseFuture<S, Req, C> {
    #[inline]
    pub(crate) fn running(inner: S::Future, permit: Permit, classifier: C) -> Self {
        ResponseFuture {
            inner: Some(inner),
            permit: Some(permit),
            slow: None,
            classifier,
        }
    }

    /// A call refused before it queued (see [`Shared::refuse`]).
    pub(crate) fn refused(error: Error, classifier: C) -> Self {
        Self::failed(error, classifier)
    }

    fn failed(error: Error, classifier: C) -> Self {
        ResponseFuture {
            inner: None,
            permit: None,
            slow: Some(Box::pin(Slow::Failed { error: Some(error) })),
            classifier,
        }
    }

    pub(crate) fn queued(
        place: Place,
        service: S,
        request: Req,
        wait: QueueWait,
        classifier: C,
    ) -> Self {
        let shared = place.shared.clone();
        ResponseFuture {
            inner: None,
            permit: None,
            slow: Some(Box::pin(Slow::Waiting {
                waiting: Waiting {
                    place: Some(place),
                    sleep: sleep_until(wait.shed_at.unwrap_or(wait.until)),
                    shared,
                    service,
                    request: Some(request),
                    permit: None,
                    wait,
                },
            })),
            classifier,
        }
    }
}

/// When a queued call joined the queue, when its wait ends, and whether the request's
/// deadline (rather than `max_wait`) ends it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueWait {
    pub(crate) queued_at: Instant,
    pub(crate) until: Instant,
    pub(crate) by_deadline: bool,
    /// When a standing queue sheds the call, if before `until` (controlled delay).
    pub(crate) shed_at: Option<Instant>,
    /// The request's deadline.
    pub(crate) deadline: Option<Instant>,
}

impl QueueWait {
    /// Why a call whose wait ended without a permit is refused: shed by a standing queue,
    /// its deadline, or `max_wait`.
    fn refusal(&self, shared: &crate::admission::Shared) -> Error {
        let waited = self.queued_at.elapsed();
        if self.shed_at.is_some() {
            let retry_after = match shared.discipline {
                crate::Discipline::ControlledDelay { interval, .. } => interval,
                crate::Discipline::Fifo => shared.max_wait,
            };
            return shared.refuse(Reason::Shed(waited), retry_after);
        }
        let max_wait = shared.max_wait;
        if self.by_deadline {
            return shared.refuse(Reason::Deadline(waited), max_wait);
        }
        shared.refuse(Reason::WaitedTooLong(max_wait), max_wait)
    }
}

impl<S: Service<Req>, Req> Waiting<S, Req>
where
    S::Error: Into<BoxError> + 'static,
{
    /// Waits for a permit and for the service; then calls it. Out of line, like the queueing
    /// in `call`, to keep the admitted-at-once path small.
    #[inline(never)]
    fn poll_admit(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Admitted<S::Future>, Error>> {
        let mut this = self.project();
        if this.permit.is_none() {
            let place = this.place.as_ref().expect("in line until admitted");
            let answer = match this.shared.poll_answer(&place.waiter, cx) {
                Poll::Ready(answer) => answer,
                Poll::Pending => {
                    ready!(this.sleep.as_mut().poll(cx));
                    // A permit handed over in the same instant the wait ends is kept.
                    match this.shared.give_up(&place.waiter) {
                        Some(answer) => answer,
                        None => {
                            *this.place = None;
                            return Poll::Ready(Err(this.wait.refusal(this.shared)));
                        }
                    }
                }
            };
            let place = this.place.take().expect("in line until admitted");
            let lifo = match answer {
                Answer::Permit { lifo } => lifo,
                Answer::Refused(reason, retry_after) => {
                    return Poll::Ready(Err(this.shared.refuse(reason, retry_after)));
                }
            };
            let permit = SparePermit::handed(this.shared);
            let joined_at = place.waiter.place;
            drop(place);
            let waited = this.wait.queued_at.elapsed();
            // Served first in first out, its wait tells how fast the queue drains (a call
            // served newest first waited for one permit, whatever its place).
            if !lifo {
                this.shared.learn_drain(joined_at, waited);
            }
            tracing::debug!(
                target: "seawall::limit",
                { { schema::FIELD_LIMIT_QUEUE_WAIT } = waited.as_secs_f64() },
                "admitted from the queue"
            );
            tracing::Span::current().record(schema::LIMIT_QUEUE_WAIT_MS, waited.as_millis() as i64);
            this.shared.record_admitted_after(waited);
            *this.permit = Some(permit);
        }
        ready!(this.service.poll_ready(cx)).map_err(Error::from_inner)?;
        let request = this.request.take().expect("request present until called");
        let permit = this.permit.take().expect("permit taken above");
        let permit = Permit::admitted(permit, this.shared);
        let now = Instant::now();
        let queued = this.wait.deadline.map(|deadline| Queued {
            waited: now.saturating_duration_since(this.wait.queued_at),
            admitted: now,
            deadline,
            max_wait: this.shared.max_wait,
        });
        Poll::Ready(Ok((this.service.call(request), permit, queued)))
    }
}

impl<S: Service<Req>, Req> Slow<S, Req>
where
    S::Error: Into<BoxError> + 'static,
{
    /// A queued call's admission, or a refusal.
    #[inline(never)]
    fn poll_slow(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Admitted<S::Future>, Error>> {
        match self.project() {
            SlowProj::Waiting { waiting } => waiting.poll_admit(cx),
            SlowProj::Failed { error } => Poll::Ready(Err(error
                .take()
                .expect("ResponseFuture polled after completion"))),
            SlowProj::Admitted { .. } => unreachable!("an admitted call is not polled here"),
        }
    }

    fn is_admitted(&self) -> bool {
        matches!(self, Slow::Admitted { .. })
    }

    /// What the wait of a call admitted from the queue was.
    fn queued(&self) -> Option<Queued> {
        match self {
            Slow::Admitted { queued } => *queued,
            _ => None,
        }
    }
}

impl<S: Service<Req>, Req, C> fmt::Debug for ResponseFuture<S, Req, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match (&self.slow, &self.inner) {
            (Some(slow), _) => match &**slow {
                Slow::Waiting { waiting } if waiting.place.is_none() => "admitted",
                Slow::Waiting { .. } => "queued",
                Slow::Failed { .. } => "failed",
                Slow::Admitted { .. } => "running",
            },
            (None, Some(_)) => "running",
            (None, None) => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<S, Req, C> Future for ResponseFuture<S, Req, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError> + 'static,
    C: Classifier<S::Response>,
{
    type Output = Result<S::Response, Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(slow) = this.slow.as_mut()
            && !slow.is_admitted()
        {
            let (inner, permit, queued) = match ready!(slow.as_mut().poll_slow(cx)) {
                Ok(admitted) => admitted,
                Err(error) => {
                    *this.slow = None;
                    return Poll::Ready(Err(error));
                }
            };
            this.inner.set(Some(inner));
            *this.permit = Some(permit);
            slow.as_mut().set(Slow::Admitted { queued });
        }
        let inner = this
            .inner
            .as_mut()
            .as_pin_mut()
            .expect("ResponseFuture polled after completion");
        let result = ready!(inner.poll(cx));
        this.inner.set(None);
        // Release the permit now, not when the caller drops this future. Only an adaptive
        // limit asks the classifier what the outcome means.
        let result = match this.permit.take() {
            Some(permit) if permit.is_adaptive() => {
                let (class, result) = classify_outcome(&*this.classifier, result);
                permit.finish(Some(class));
                result
            }
            permit => {
                drop(permit);
                result.map_err(Error::from_inner)
            }
        };
        Poll::Ready(match result {
            Err(error) => match this.slow.take().and_then(|slow| slow.queued()) {
                Some(queued) => Err(queued.spent_in_queue(error)),
                None => Err(error),
            },
            ok => {
                *this.slow = None;
                ok
            }
        })
    }
}
