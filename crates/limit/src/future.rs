//! The response future of [`ConcurrencyLimit`](crate::ConcurrencyLimit).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use seawall_classify::{BoxError, DeadlineExceeded, Error};
use tokio::sync::{AcquireError, OwnedSemaphorePermit};
use tokio::time::{Instant, Sleep, sleep_until};
use tower_service::Service;

use crate::error::{Overloaded, Reason};
use crate::state::{QueueSlot, Shared};

type Acquire =
    Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send + 'static>>;

pin_project! {
    /// Waits for a permit if the call was queued, then drives the inner call, holding the
    /// permit until the call completes or this future is dropped.
    pub struct ResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S, Req>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, Req>
    where
        S: Service<Req>,
    {
        Queued {
            // Boxed only on this path: a call admitted at once allocates nothing.
            acquire: Acquire,
            #[pin]
            sleep: Sleep,
            shared: Arc<Shared>,
            slot: Option<QueueSlot>,
            service: Option<S>,
            request: Option<Req>,
            queued_at: Instant,
            by_deadline: bool,
        },
        Admitted {
            service: S,
            request: Option<Req>,
            permit: Option<OwnedSemaphorePermit>,
        },
        Running {
            #[pin]
            inner: S::Future,
            permit: Option<OwnedSemaphorePermit>,
        },
        Failed {
            error: Option<BoxError>,
        },
        Done,
    }
}

impl<S: Service<Req>, Req> ResponseFuture<S, Req> {
    pub(crate) fn running(inner: S::Future, permit: OwnedSemaphorePermit) -> Self {
        ResponseFuture {
            state: State::Running {
                inner,
                permit: Some(permit),
            },
        }
    }

    pub(crate) fn overloaded(reason: Reason) -> Self {
        Self::failed(Box::new(Error::new(
            Overloaded::CLASS,
            Overloaded::new(reason),
        )))
    }

    pub(crate) fn deadline_exceeded() -> Self {
        Self::failed(Box::new(DeadlineExceeded::classified()))
    }

    fn failed(error: BoxError) -> Self {
        ResponseFuture {
            state: State::Failed { error: Some(error) },
        }
    }

    pub(crate) fn queued(
        shared: Arc<Shared>,
        slot: QueueSlot,
        service: S,
        request: Req,
        queued_at: Instant,
        until: Instant,
        by_deadline: bool,
    ) -> Self {
        let mut acquire: Acquire = Box::pin(shared.semaphore.clone().acquire_owned());
        // Join the semaphore's queue now, so that FIFO order is the order of `call`s, not of
        // first polls. The real waker replaces this one at the first poll.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        if let Poll::Ready(Ok(permit)) = acquire.as_mut().poll(&mut cx) {
            drop(slot);
            shared.record_admitted();
            return ResponseFuture {
                state: State::Admitted {
                    service,
                    request: Some(request),
                    permit: Some(permit),
                },
            };
        }
        ResponseFuture {
            state: State::Queued {
                acquire,
                sleep: sleep_until(until),
                shared,
                slot: Some(slot),
                service: Some(service),
                request: Some(request),
                queued_at,
                by_deadline,
            },
        }
    }
}

impl<S: Service<Req>, Req> fmt::Debug for ResponseFuture<S, Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Queued { .. } => "queued",
            State::Admitted { .. } => "admitted",
            State::Running { .. } => "running",
            State::Failed { .. } => "failed",
            State::Done => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<S, Req> Future for ResponseFuture<S, Req>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            let next = match this.state.as_mut().project() {
                StateProj::Queued {
                    acquire,
                    sleep,
                    shared,
                    slot,
                    service,
                    request,
                    queued_at,
                    by_deadline,
                } => {
                    // The permit first: one granted in the same instant the wait ends is kept.
                    match acquire.as_mut().poll(cx) {
                        Poll::Ready(Ok(permit)) => {
                            drop(slot.take());
                            shared.record_admitted_after(queued_at.elapsed());
                            State::Admitted {
                                service: service.take().expect("queued service present"),
                                request: request.take(),
                                permit: Some(permit),
                            }
                        }
                        // The semaphore is never closed; refuse rather than panic if it were.
                        Poll::Ready(Err(_)) => State::Failed {
                            error: Some(Box::new(Error::new(
                                Overloaded::CLASS,
                                Overloaded::new(Reason::QueueFull),
                            ))),
                        },
                        Poll::Pending => {
                            ready!(sleep.poll(cx));
                            shared.record_rejected();
                            let error: BoxError = if *by_deadline {
                                Box::new(DeadlineExceeded::classified())
                            } else {
                                tracing::debug!(
                                    target: "seawall::limit",
                                    { seawall.limit.queue_wait_ms = shared.max_wait.as_millis() as u64 },
                                    "call refused: no permit within max_wait"
                                );
                                Box::new(Error::new(
                                    Overloaded::CLASS,
                                    Overloaded::new(Reason::WaitedTooLong(shared.max_wait)),
                                ))
                            };
                            State::Failed { error: Some(error) }
                        }
                    }
                }
                StateProj::Admitted {
                    service,
                    request,
                    permit,
                } => match ready!(service.poll_ready(cx)) {
                    Ok(()) => {
                        let request = request.take().expect("request present until called");
                        State::Running {
                            inner: service.call(request),
                            permit: permit.take(),
                        }
                    }
                    Err(error) => State::Failed {
                        error: Some(error.into()),
                    },
                },
                StateProj::Running { inner, permit } => {
                    let result = ready!(inner.poll(cx));
                    // Release the permit now, not when the caller drops this future.
                    drop(permit.take());
                    this.state.set(State::Done);
                    return Poll::Ready(result.map_err(Into::into));
                }
                StateProj::Failed { error } => {
                    let error = error.take().expect("error present until returned");
                    this.state.set(State::Done);
                    return Poll::Ready(Err(error));
                }
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            };
            this.state.set(next);
        }
    }
}
