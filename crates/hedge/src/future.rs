//! The response future: the first attempt, the timer of its hedge, and the hedge.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use seawall_classify::{BoxError, Error, HasDeadline, schema};
use tokio::time::{Instant, Sleep, sleep_until};
use tower_service::Service;

use crate::service::Parts;
use crate::service::Shared;

pin_project! {
    /// The future of a [`Hedge`](crate::Hedge) call.
    pub struct ResponseFuture<S, I, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        first: Attempt<S::Future>,
        #[pin]
        hedge: Second<S, Req>,
        parts: Arc<Parts<S, I>>,
        started: Instant,
        // The first attempt's error while the hedge runs: returned if the hedge fails too.
        failed: Option<Error>,
    }
}

pin_project! {
    #[project = AttemptProj]
    enum Attempt<F> {
        Running {
            #[pin]
            future: F,
        },
        Failed,
    }
}

pin_project! {
    #[project = SecondProj]
    enum Second<S, Req>
    where
        S: Service<Req>,
    {
        // No hedge for this request, or no more.
        None,
        Waiting {
            #[pin]
            timer: Sleep,
            request: Option<Req>,
        },
        Readying {
            service: S,
            request: Option<Req>,
        },
        Running {
            #[pin]
            future: S::Future,
        },
    }
}

impl<S, I, Req> ResponseFuture<S, I, Req>
where
    S: Service<Req>,
{
    pub(crate) fn new(
        first: S::Future,
        parts: Arc<Parts<S, I>>,
        hedge: Option<(Req, Instant)>,
        started: Instant,
    ) -> Self {
        let hedge = match hedge {
            Some((request, at)) => Second::Waiting {
                timer: sleep_until(at),
                request: Some(request),
            },
            None => Second::None,
        };
        ResponseFuture {
            first: Attempt::Running { future: first },
            hedge,
            parts,
            started,
            failed: None,
        }
    }
}

impl<S, I, Req> fmt::Debug for ResponseFuture<S, I, Req>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hedge = match &self.hedge {
            Second::None => "none",
            Second::Waiting { .. } => "waiting",
            Second::Readying { .. } | Second::Running { .. } => "running",
        };
        f.debug_struct("ResponseFuture")
            .field("first_failed", &self.failed.is_some())
            .field("hedge", &hedge)
            .finish()
    }
}

/// Why a slow request was not hedged.
#[derive(Clone, Copy)]
enum Skip {
    Deadline,
    Gate,
    Budget,
}

impl Skip {
    fn as_str(self) -> &'static str {
        match self {
            Skip::Deadline => "deadline",
            Skip::Gate => "gate",
            Skip::Budget => "budget",
        }
    }

    fn counter(self, shared: &Shared) -> &AtomicU64 {
        match self {
            Skip::Deadline => &shared.counters.skipped_deadline,
            Skip::Gate => &shared.counters.skipped_gate,
            Skip::Budget => &shared.counters.skipped_budget,
        }
    }
}

/// Decides, when the timer fires, whether the hedge goes: time left, gates, then the budget
/// (last, so that a hedge held back for another reason spends nothing).
fn decide<Req: HasDeadline>(
    shared: &Shared,
    request: &Req,
    started: Instant,
    now: Instant,
) -> Result<(), Skip> {
    let waited = now.saturating_duration_since(started);
    if request
        .deadline()
        .is_some_and(|deadline| deadline.saturating_duration_since(now) < waited)
    {
        return Err(Skip::Deadline);
    }
    if !shared.gates_allow() {
        return Err(Skip::Gate);
    }
    if !shared.budget.withdraw() {
        return Err(Skip::Budget);
    }
    Ok(())
}

impl<S, I, Req> Future for ResponseFuture<S, I, Req>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError> + 'static,
    Req: HasDeadline,
{
    type Output = Result<S::Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let shared = &this.parts.shared;

        if let AttemptProj::Running { future } = this.first.as_mut().project() {
            match future.poll(cx) {
                Poll::Ready(Ok(response)) => {
                    shared.record(*this.started);
                    this.hedge.set(Second::None);
                    return Poll::Ready(Ok(response));
                }
                Poll::Ready(Err(error)) => {
                    let error = Error::from_inner(error);
                    // Failures are the retry layer's business, not the hedge's: a hedge not
                    // sent yet never will be.
                    if matches!(*this.hedge, Second::None | Second::Waiting { .. }) {
                        this.hedge.set(Second::None);
                        return Poll::Ready(Err(error));
                    }
                    this.first.set(Attempt::Failed);
                    *this.failed = Some(error);
                }
                Poll::Pending => {}
            }
        }

        loop {
            let next = match this.hedge.as_mut().project() {
                SecondProj::None => break,
                SecondProj::Waiting { timer, request } => {
                    if timer.poll(cx).is_pending() {
                        break;
                    }
                    let request = request.take().expect("the copy until the hedge is decided");
                    let now = Instant::now();
                    match decide(shared, &request, *this.started, now) {
                        Ok(()) => {
                            shared.counters.sent.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(
                                target: "seawall::hedge",
                                {
                                    { schema::FIELD_HEDGES } = 1u64,
                                    { schema::DEPENDENCY } = &*shared.name,
                                    { schema::HEDGE_DELAY_MS } = (now - *this.started).as_millis() as u64
                                },
                                "hedging a slow request"
                            );
                            Second::Readying {
                                service: this.parts.template.clone(),
                                request: Some(request),
                            }
                        }
                        Err(skip) => {
                            skip.counter(shared).fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(
                                target: "seawall::hedge",
                                {
                                    { schema::FIELD_HEDGES_SKIPPED } = 1u64,
                                    { schema::DEPENDENCY } = &*shared.name,
                                    { schema::HEDGE_REASON } = skip.as_str()
                                },
                                "slow request not hedged"
                            );
                            Second::None
                        }
                    }
                }
                SecondProj::Readying { service, request } => match service.poll_ready(cx) {
                    Poll::Pending => break,
                    Poll::Ready(Ok(())) => {
                        let request = request.take().expect("the copy until the hedge is sent");
                        // The request's deposit was made when it arrived.
                        Second::Running {
                            future: shared.budget.covered(|| service.call(request)),
                        }
                    }
                    // A hedge that cannot start leaves the first attempt to answer.
                    Poll::Ready(Err(_)) => Second::None,
                },
                SecondProj::Running { future } => match future.poll(cx) {
                    Poll::Pending => break,
                    Poll::Ready(Ok(response)) => {
                        shared.record(*this.started);
                        shared.counters.won.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(
                            target: "seawall::hedge",
                            {
                                { schema::FIELD_HEDGE_WINS } = 1u64,
                                { schema::DEPENDENCY } = &*shared.name
                            },
                            "the hedge answered first"
                        );
                        // Drops the first attempt: cancelled.
                        this.first.set(Attempt::Failed);
                        this.hedge.set(Second::None);
                        return Poll::Ready(Ok(response));
                    }
                    // The first attempt may still answer.
                    Poll::Ready(Err(_)) => Second::None,
                },
            };
            this.hedge.set(next);
        }

        // The first attempt failed and no hedge runs any more: its error is the answer.
        if matches!(*this.hedge, Second::None)
            && let Some(error) = this.failed.take()
        {
            return Poll::Ready(Err(error));
        }
        Poll::Pending
    }
}
