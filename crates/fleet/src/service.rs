//! The two services: [`RateLimit`] and [`ConcurrencyBudget`].

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use seawall_classify::{BoxError, Error};
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::shared::budget::BudgetShared;
use crate::shared::rate::RateShared;
use crate::{AllRequests, KeyOf, Permit};

/// The service [`RateLimitLayer`](crate::RateLimitLayer) makes.
pub struct RateLimit<S, F = AllRequests> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<RateShared>,
    pub(crate) key: Arc<F>,
}

seawall_classify::inner_accessors!(impl[S, F] RateLimit<S, F>);

impl<S: Clone, F> Clone for RateLimit<S, F> {
    fn clone(&self) -> Self {
        RateLimit {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            key: self.key.clone(),
        }
    }
}

impl<S: fmt::Debug, F> fmt::Debug for RateLimit<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, F, Req> Service<Req> for RateLimit<S, F>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError> + 'static,
    F: KeyOf<Req>,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S, Req, ()>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Error::from_inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let shared = &self.shared;
        let now = shared.now();
        let state = shared.state(self.key.key_of(&request), now);
        if shared.fleet.is_none() {
            return match shared.gcra.take(&state.tat, now) {
                Ok(()) => {
                    shared.decisions.admit();
                    ResponseFuture::called(self.inner.call(request), ())
                }
                Err(retry_after) => ResponseFuture::refused(shared.refuse(retry_after, false)),
            };
        }
        match shared.answer_from_lease(state.take_leased(now)) {
            Some(Ok(())) => return ResponseFuture::called(self.inner.call(request), ()),
            Some(Err(refused)) => return ResponseFuture::refused(refused),
            None => {}
        }
        // The readied service goes with the call; a clone takes its place.
        let clone = self.inner.clone();
        let service = std::mem::replace(&mut self.inner, clone);
        let state = state.into_owned();
        ResponseFuture::deciding(Box::pin(shared.clone().decide(state)), service, request)
    }
}

/// The service [`ConcurrencyBudgetLayer`](crate::ConcurrencyBudgetLayer) makes.
#[derive(Clone)]
pub struct ConcurrencyBudget<S> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<BudgetShared>,
}

seawall_classify::inner_accessors!(impl[S] ConcurrencyBudget<S>);

impl<S: fmt::Debug> fmt::Debug for ConcurrencyBudget<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyBudget")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, Req> Service<Req> for ConcurrencyBudget<S>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError> + 'static,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S, Req, Permit>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Error::from_inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        if self.shared.fleet.is_none() {
            return match self.shared.local_permit() {
                Ok(permit) => ResponseFuture::called(self.inner.call(request), permit),
                Err(error) => ResponseFuture::refused(error),
            };
        }
        // The readied service goes with the call; a clone takes its place.
        let clone = self.inner.clone();
        let service = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::deciding(Box::pin(self.shared.clone().acquire()), service, request)
    }
}
