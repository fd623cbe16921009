//! The response future both limits share: a call admitted at once, refused at once, or
//! waiting for the fleet's decision, then run holding what admitted it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use seawall_classify::{BoxError, Error};
use tower_service::Service;

/// The fleet's decision on a call: what admits it (a permit, or nothing for a rate), or the
/// refusal.
pub(crate) type Decision<P> = Pin<Box<dyn Future<Output = Result<P, Error>> + Send>>;

pin_project! {
    /// The future of a [`RateLimit`](crate::RateLimit) or
    /// [`ConcurrencyBudget`](crate::ConcurrencyBudget) call. `P` is what an admitted call
    /// holds while it runs: a [`Permit`](crate::Permit) of a budget, nothing of a rate.
    #[project = ResponseFutureProj]
    #[allow(missing_docs)]
    pub enum ResponseFuture<S, Req, P>
    where
        S: Service<Req>,
    {
        /// Admitted: the inner call, holding what admitted it.
        Called {
            #[pin]
            future: S::Future,
            held: Option<P>,
        },
        /// Refused at once.
        Refused {
            error: Option<Error>,
        },
        /// Waiting for the fleet's decision, with the readied service and the request.
        Deciding {
            decision: Decision<P>,
            service: Option<S>,
            request: Option<Req>,
        },
    }
}

impl<S: Service<Req>, Req, P> ResponseFuture<S, Req, P> {
    pub(crate) fn called(future: S::Future, held: P) -> Self {
        ResponseFuture::Called {
            future,
            held: Some(held),
        }
    }

    pub(crate) fn refused(error: Error) -> Self {
        ResponseFuture::Refused { error: Some(error) }
    }

    pub(crate) fn deciding(decision: Decision<P>, service: S, request: Req) -> Self {
        ResponseFuture::Deciding {
            decision,
            service: Some(service),
            request: Some(request),
        }
    }
}

impl<S: Service<Req>, Req, P> fmt::Debug for ResponseFuture<S, Req, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self {
            ResponseFuture::Called { .. } => "called",
            ResponseFuture::Refused { .. } => "refused",
            ResponseFuture::Deciding { .. } => "deciding",
        };
        f.debug_tuple("ResponseFuture").field(&state).finish()
    }
}

impl<S, Req, P> Future for ResponseFuture<S, Req, P>
where
    S: Service<Req>,
    S::Error: Into<BoxError> + 'static,
{
    type Output = Result<S::Response, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let next = match self.as_mut().project() {
                ResponseFutureProj::Called { future, held } => {
                    let output = ready!(future.poll(cx));
                    // The call is over: what it held goes back now, not when the future is
                    // dropped.
                    held.take();
                    return Poll::Ready(output.map_err(Error::from_inner));
                }
                ResponseFutureProj::Refused { error } => {
                    return Poll::Ready(Err(error.take().expect("polled after completion")));
                }
                ResponseFutureProj::Deciding {
                    decision,
                    service,
                    request,
                } => {
                    let held = match ready!(decision.as_mut().poll(cx)) {
                        Ok(held) => held,
                        Err(error) => return Poll::Ready(Err(error)),
                    };
                    let mut service = service.take().expect("the service until admitted");
                    let request = request.take().expect("the request until admitted");
                    ResponseFuture::Called {
                        future: service.call(request),
                        held: Some(held),
                    }
                }
            };
            self.set(next);
        }
    }
}
