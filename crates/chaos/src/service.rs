//! [`Chaos`]: a service whose calls get faults injected.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use seawall_classify::{BoxError, Error};
use tower_service::Service;

use crate::future::{ResponseFuture, State};
use crate::layer::{Plan, Shared};

/// A service with injected faults; see [`ChaosLayer`](crate::ChaosLayer).
pub struct Chaos<S> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared>,
}

seawall_classify::inner_accessors!(impl[S] Chaos<S>);

impl<S: Clone> Clone for Chaos<S> {
    fn clone(&self) -> Self {
        Chaos {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Chaos<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chaos").field("inner", &self.inner).finish()
    }
}

impl<S, Req> Service<Req> for Chaos<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError> + 'static,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future, S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Error::from_inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let state = match self.shared.plan() {
            Plan::Fail => State::Failed {
                class: Some(self.shared.error_class),
            },
            Plan::Hang => State::Hanging,
            Plan::Pass(delay) => State::Calling {
                inner: self.inner.call(request),
                delay,
            },
        };
        ResponseFuture { state }
    }
}
