//! The retry service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use seawall_classify::{BoxError, Classifier, Error, HasDeadline};
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::layer::Shared;

/// Retries failed calls that are worth retrying; see [`RetryLayer`](crate::RetryLayer).
///
/// The first attempt goes to the service that `poll_ready` made ready; later attempts go to a
/// clone of it, made ready in turn, as tower's `Retry` does. The request is cloned before
/// each attempt that may be followed by another, so the last attempt moves it.
pub struct Retry<S, C> {
    inner: S,
    shared: Arc<Shared<C>>,
}

impl<S, C> Retry<S, C> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<C>>) -> Self {
        Retry { inner, shared }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, C> Clone for Retry<S, C> {
    fn clone(&self) -> Self {
        Retry {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug, C: fmt::Debug> fmt::Debug for Retry<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .field("shared", &self.shared)
            .finish()
    }
}

impl<S, C, Req> Service<Req> for Retry<S, C>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError> + 'static,
    C: Classifier<S::Response>,
    Req: Clone + HasDeadline,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S, Req, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Error::from_inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        if let Some(budget) = &self.shared.counters.budget {
            budget.deposit();
        }
        let again = (self.shared.max_attempts > 1).then(|| request.clone());
        // The ready service takes the first attempt; a clone takes any later one.
        let service = self.inner.clone();
        let future = self.inner.call(request);
        ResponseFuture::new(future, service, again, self.shared.clone())
    }
}
