//! The response future: the primary call, then, when it failed with a trigger, the fallback's
//! readiness and call.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use seawall_classify::{BoxError, Class, Error, schema};
use tower_service::Service;

use crate::FallbackRequest;
use crate::error::FallbackFailed;
use crate::service::Shared;

pin_project! {
    /// The future of a [`Fallback`](crate::Fallback) call.
    pub struct ResponseFuture<P, F, Req>
    where
        F: Service<FallbackRequest<Req>>,
    {
        #[pin]
        state: State<P, F, Req>,
        shared: Arc<Shared<F>>,
        // The primary's error while the fallback runs, returned if the fallback fails too.
        primary: Option<Error>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<P, F, Req>
    where
        F: Service<FallbackRequest<Req>>,
    {
        Primary {
            #[pin]
            future: P,
            copy: Option<Req>,
        },
        Readying {
            service: F,
            request: Option<FallbackRequest<Req>>,
        },
        Falling {
            #[pin]
            future: F::Future,
        },
        Done,
    }
}

impl<P, F, Req> ResponseFuture<P, F, Req>
where
    F: Service<FallbackRequest<Req>>,
{
    pub(crate) fn new(future: P, shared: Arc<Shared<F>>, copy: Option<Req>) -> Self {
        ResponseFuture {
            state: State::Primary { future, copy },
            shared,
            primary: None,
        }
    }
}

impl<P, F, Req> fmt::Debug for ResponseFuture<P, F, Req>
where
    F: Service<FallbackRequest<Req>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Primary { .. } => "primary",
            State::Readying { .. } | State::Falling { .. } => "fallback",
            State::Done => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<P, F, Req, T, E> Future for ResponseFuture<P, F, Req>
where
    P: Future<Output = Result<T, E>>,
    E: Into<BoxError> + 'static,
    F: Service<FallbackRequest<Req>, Response = T> + Clone,
    F::Error: Into<BoxError> + 'static,
{
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            let next = match this.state.as_mut().project() {
                StateProj::Primary { future, copy } => {
                    let error = match ready!(future.poll(cx)) {
                        Ok(response) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Ok(response));
                        }
                        Err(error) => Error::from_inner(error),
                    };
                    let failure = match error.class() {
                        Class::Failure(failure) if this.shared.triggers.contains(failure.kind) => {
                            failure
                        }
                        _ => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(error));
                        }
                    };
                    tracing::debug!(
                        target: "seawall::fallback",
                        { { schema::CLASS } = failure.kind.as_str() },
                        "primary failed: answering from the fallback"
                    );
                    let request = FallbackRequest::new(copy.take(), failure);
                    *this.primary = Some(error);
                    State::Readying {
                        service: this.shared.fallback.clone(),
                        request: Some(request),
                    }
                }
                StateProj::Readying { service, request } => {
                    if let Err(error) = ready!(service.poll_ready(cx)) {
                        return self.fallback_failed(Error::from_inner(error));
                    }
                    let request = request.take().expect("the request until the call");
                    State::Falling {
                        future: service.call(request),
                    }
                }
                StateProj::Falling { future } => match ready!(future.poll(cx)) {
                    Ok(response) => {
                        this.state.set(State::Done);
                        return Poll::Ready(Ok(response));
                    }
                    Err(error) => return self.fallback_failed(Error::from_inner(error)),
                },
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            };
            this.state.set(next);
        }
    }
}

impl<P, F, Req> ResponseFuture<P, F, Req>
where
    F: Service<FallbackRequest<Req>>,
{
    fn fallback_failed<T>(self: Pin<&mut Self>, fallback: Error) -> Poll<Result<T, Error>> {
        let mut this = self.project();
        let primary = this
            .primary
            .take()
            .expect("the primary's error while falling back");
        this.state.set(State::Done);
        tracing::debug!(
            target: "seawall::fallback",
            { { schema::ERROR_TYPE } = fallback.class().kind().map_or("unknown", |k| k.as_str()) },
            "the fallback failed too"
        );
        Poll::Ready(Err(FallbackFailed::error(primary, fallback)))
    }
}
