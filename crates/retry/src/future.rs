//! The response future of [`Retry`](crate::Retry).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use seawall_classify::schema;
use seawall_classify::{
    BoxError, Classifier, DeadlineExceeded, Error, FailureKind, HasDeadline, RetryHint,
    classify_outcome,
};
use tokio::time::{Instant, Sleep, sleep};
use tower_service::Service;

use crate::schedule::backoff::BackoffState;
use crate::service::Common;
use crate::service::Shared;

pin_project! {
    /// Drives attempts until one succeeds, one fails in a way not worth retrying, or the
    /// attempts, the budget or the deadline run out.
    pub struct ResponseFuture<S, Req, C>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S::Future>,
        common: Arc<Common<S, C>>,
        request: Option<Req>,
        attempt: u32,
        // Created at the first retry: a request that succeeds at once never needs it.
        backoff: Option<BackoffState>,
        // The service later attempts go to: a clone of the spare, taken at the first retry.
        // Boxed, so that the future of a call that never retries stays small.
        service: Option<Box<S>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Calling {
            #[pin]
            future: F,
        },
        // Boxed: only requests that retry pay for the timer.
        Sleeping {
            sleep: Pin<Box<Sleep>>,
        },
        Readying,
    }
}

/// What to do after an attempt.
#[derive(Clone, Copy)]
enum Next {
    Return,
    Retry(Duration),
    OutOfTime,
}

impl<S: Service<Req>, Req, C> ResponseFuture<S, Req, C> {
    #[inline]
    pub(crate) fn new(future: S::Future, common: Arc<Common<S, C>>, request: Option<Req>) -> Self {
        ResponseFuture {
            state: State::Calling { future },
            common,
            request,
            attempt: 1,
            backoff: None,
            service: None,
        }
    }
}

impl<S: Service<Req>, Req, C> fmt::Debug for ResponseFuture<S, Req, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Calling { .. } => "calling",
            State::Sleeping { .. } => "sleeping",
            State::Readying => "readying",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .field("attempt", &self.attempt)
            .finish()
    }
}

impl<S, Req, C> Future for ResponseFuture<S, Req, C>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError> + 'static,
    C: Classifier<S::Response>,
    Req: Clone + HasDeadline,
{
    type Output = Result<S::Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let shared = &*this.common.layer;
                    let (class, result) =
                        classify_outcome(&shared.classifier, ready!(future.poll(cx)));
                    let next = decide(
                        shared,
                        class,
                        *this.attempt,
                        this.request.as_ref(),
                        this.backoff,
                    );
                    // One event per attempt, on the caller's span (a pipeline's client span):
                    // what it ended with and the backoff before the next one.
                    tracing::debug!(
                        target: "seawall::retry",
                        {
                            { schema::RETRY_ATTEMPT } = *this.attempt,
                            { schema::CLASS } = class.as_str(),
                            { schema::ERROR_TYPE } = class.kind().map(|k| k.as_str()),
                            { schema::RETRY_DELAY_MS } = match next {
                                Next::Retry(delay) => Some(delay.as_millis() as u64),
                                _ => None,
                            }
                        },
                        "attempt"
                    );
                    if *this.attempt > 1 && !matches!(next, Next::Retry(_)) {
                        // The call's summary, on a client span that declares it.
                        tracing::Span::current()
                            .record(schema::RETRY_ATTEMPTS, i64::from(*this.attempt));
                    }
                    match next {
                        Next::Return => return Poll::Ready(result),
                        Next::OutOfTime => {
                            shared
                                .counters
                                .stopped_by_deadline
                                .fetch_add(1, Ordering::Relaxed);
                            let error = match result {
                                Ok(_) => DeadlineExceeded::classified(),
                                Err(error) => DeadlineExceeded::classified_after(error),
                            };
                            return Poll::Ready(Err(error));
                        }
                        Next::Retry(delay) => {
                            shared.counters.retries.fetch_add(1, Ordering::Relaxed);
                            if delay.is_zero() {
                                this.state.set(State::Readying);
                            } else {
                                this.state.set(State::Sleeping {
                                    sleep: Box::pin(sleep(delay)),
                                });
                            }
                        }
                    }
                }
                StateProj::Sleeping { sleep } => {
                    ready!(sleep.as_mut().poll(cx));
                    this.state.set(State::Readying);
                }
                StateProj::Readying => {
                    let service = this
                        .service
                        .get_or_insert_with(|| Box::new(clone_spare(&this.common.spare)));
                    ready!(service.poll_ready(cx)).map_err(Error::from_inner)?;
                    *this.attempt += 1;
                    let request = if *this.attempt < this.common.layer.max_attempts {
                        this.request.clone()
                    } else {
                        this.request.take()
                    };
                    let request = request.expect("a request is kept while attempts remain");
                    let future = service.call(request);
                    this.state.set(State::Calling { future });
                }
            }
        }
    }
}

/// A clone of the spare service, for a call's retries.
#[cold]
#[inline(never)]
fn clone_spare<S: Clone>(spare: &OnceLock<Mutex<S>>) -> S {
    spare
        .get()
        .expect("the spare is kept before a call that may retry")
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Whether and when to retry after attempt number `attempt` ended with `class`.
fn decide<C, Req: HasDeadline>(
    shared: &Shared<C>,
    class: seawall_classify::Class,
    attempt: u32,
    request: Option<&Req>,
    backoff: &mut Option<BackoffState>,
) -> Next {
    // The one policy decides; it never retries a refusal by a Seawall layer (an open
    // breaker, a limit reached): retrying would only hammer the layer that said no.
    let Some(failure) = class.as_failure() else {
        return Next::Return;
    };
    if !shared.policy.may_retry(class) {
        return Next::Return;
    }
    let remote_wait = match failure.retry {
        RetryHint::Never => return Next::Return,
        RetryHint::Retry => None,
        RetryHint::RetryAfter(wait) => Some(wait),
    };
    if attempt >= shared.max_attempts {
        return Next::Return;
    }
    let Some(request) = request else {
        return Next::Return;
    };
    let state = backoff.get_or_insert_with(|| shared.backoff.start(shared.next_seed()));
    let fast = !shared.backoff.fast().is_zero()
        && matches!(
            failure.kind,
            FailureKind::Contention | FailureKind::Disconnect
        );
    let mut delay = if fast {
        state.next_fast_delay(&shared.backoff)
    } else {
        state.next_delay(&shared.backoff)
    };
    if let Some(wait) = remote_wait {
        if wait > shared.backoff.cap() {
            // Retried at the cap, the call would come back sooner than the remote asked: the
            // caller gets the answer, with its `Retry-After`, instead.
            tracing::debug!(
                target: "seawall::retry",
                { { schema::RETRY_ATTEMPT } = attempt, { schema::RETRY_DELAY_MS } = wait.as_millis() as u64 },
                "not retried: the remote asked for a longer wait than the backoff's cap"
            );
            return Next::Return;
        }
        // At least what the remote asked for.
        delay = delay.max(wait);
    }
    if let Some(deadline) = request.deadline()
        && Instant::now() + delay >= deadline
    {
        tracing::debug!(
            target: "seawall::retry",
            { { schema::RETRY_ATTEMPT } = attempt, { schema::RETRY_DELAY_MS } = delay.as_millis() as u64 },
            "retrying stopped: the deadline leaves no time for another attempt"
        );
        return Next::OutOfTime;
    }
    if let Some(budget) = &shared.counters.budget
        && !budget.withdraw()
    {
        tracing::debug!(
            target: "seawall::retry",
            {
                { schema::FIELD_BUDGET_EXHAUSTED } = 1u64,
                { schema::DEPENDENCY } = &*shared.name,
                { schema::RETRY_ATTEMPT } = attempt,
                { schema::FAILURE_KIND } = failure.kind.as_str()
            },
            "retrying stopped: retry budget exhausted"
        );
        return Next::Return;
    }
    tracing::debug!(
        target: "seawall::retry",
        {
            { schema::FIELD_RETRIES } = 1u64,
            { schema::DEPENDENCY } = &*shared.name,
            { schema::ERROR_TYPE } = failure.kind.as_str(),
            { schema::RETRY_ATTEMPT } = attempt + 1,
            { schema::RETRY_DELAY_MS } = delay.as_millis() as u64,
            { schema::FAILURE_KIND } = failure.kind.as_str()
        },
        "retrying"
    );
    Next::Retry(delay)
}
