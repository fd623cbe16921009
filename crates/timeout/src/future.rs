//! The response future shared by [`AttemptTimeout`](crate::AttemptTimeout) and
//! [`Deadline`](crate::Deadline).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use seawall_classify::{BoxError, Class, DeadlineExceeded, Error, cut, schema};
use tokio::time::{Instant, Sleep, sleep_until};

use crate::error::Elapsed;

/// Which bound a timer enforces, and so which error it produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    /// The attempt timeout of this length.
    Attempt(Duration),
    /// The request's end-to-end deadline.
    Deadline,
}

impl Bound {
    /// The class of the error this bound produces.
    fn class(self) -> Class {
        match self {
            Bound::Attempt(_) => Elapsed::CLASS,
            Bound::Deadline => DeadlineExceeded::CLASS,
        }
    }

    fn error(self) -> Error {
        match self {
            Bound::Attempt(timeout) => {
                tracing::debug!(
                    target: "seawall::timeout",
                    { { schema::LAYER } = "attempt_timeout", { schema::ERROR_TYPE } = "timeout", { schema::TIMEOUT_MS } = timeout.as_millis() as u64 },
                    "attempt timed out"
                );
                Error::new(Elapsed::CLASS, Elapsed::new(timeout))
            }
            Bound::Deadline => {
                tracing::debug!(
                    target: "seawall::timeout",
                    { { schema::LAYER } = "deadline", { schema::ERROR_TYPE } = "timeout" },
                    "request deadline exceeded"
                );
                DeadlineExceeded::classified()
            }
        }
    }
}

pin_project! {
    /// Resolves to the inner service's response, or to an error once the attempt timeout or
    /// the request's deadline passes, whichever comes first.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    #[derive(Debug)]
    enum State<F> {
        Running {
            #[pin]
            inner: F,
            // Created at the first poll that finds the inner future pending: a call that
            // completes at once never touches the timer.
            #[pin]
            sleep: Option<Sleep>,
            until: Instant,
            bound: Bound,
        },
        // Failed before the inner service was called: the time was already gone.
        Expired {
            bound: Bound,
        },
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn running(inner: F, until: Instant, bound: Bound) -> Self {
        ResponseFuture {
            state: State::Running {
                inner,
                sleep: None,
                until,
                bound,
            },
        }
    }

    pub(crate) fn expired(bound: Bound) -> Self {
        ResponseFuture {
            state: State::Expired { bound },
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError> + 'static,
{
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        let bound = match state.as_mut().project() {
            StateProj::Running {
                inner,
                mut sleep,
                until,
                bound,
            } => {
                // The inner future first: a response that is ready wins over a timer that
                // fired in the same instant.
                if let Poll::Ready(result) = inner.poll(cx) {
                    return Poll::Ready(result.map_err(Error::from_inner));
                }
                if sleep.is_none() {
                    sleep.set(Some(sleep_until(*until)));
                }
                let sleep = sleep.as_pin_mut().expect("timer created above");
                if sleep.poll(cx).is_pending() {
                    return Poll::Pending;
                }
                *bound
            }
            StateProj::Expired { bound } => return Poll::Ready(Err(bound.error())),
        };
        // Cut: the call is dropped now, and the layers inside it (a breaker, an adaptive
        // limit) record it as this timeout, not as a caller's cancellation (see `cut`).
        cut::by(bound.class(), || state.set(State::Expired { bound }));
        Poll::Ready(Err(bound.error()))
    }
}
