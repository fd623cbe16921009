//! [`Fallback`]: a service answered by a fallback when it fails as configured.

use crate::future::ResponseFuture;
use seawall_classify::BoxError;
use seawall_classify::Error;
use seawall_classify::KindSet;
use std::fmt;
use std::sync::Arc;
use std::task::Context;
use std::task::Poll;
use tower_service::Service;

use crate::{FallbackRequest, NoRequest, RequestCopy};

/// The service [`FallbackLayer`](crate::FallbackLayer) makes.
pub struct Fallback<S, F, K = NoRequest> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared<F>>,
    pub(crate) _copy: K,
}

seawall_classify::inner_accessors!(impl[S, F, K] Fallback<S, F, K>);

impl<S: Clone, F, K: Clone> Clone for Fallback<S, F, K> {
    fn clone(&self) -> Self {
        Fallback {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            _copy: self._copy.clone(),
        }
    }
}

impl<S: fmt::Debug, F, K> fmt::Debug for Fallback<S, F, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback")
            .field("inner", &self.inner)
            .field("triggers", &self.shared.triggers)
            .finish()
    }
}

impl<S, F, K, Req> Service<Req> for Fallback<S, F, K>
where
    S: Service<Req>,
    S::Error: Into<BoxError> + 'static,
    F: Service<FallbackRequest<Req>, Response = S::Response> + Clone,
    F::Error: Into<BoxError> + 'static,
    K: RequestCopy<Req>,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future, F, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The fallback's readiness is awaited only when it is called.
        self.inner.poll_ready(cx).map_err(Error::from_inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let copy = K::copy(&request);
        ResponseFuture::new(self.inner.call(request), self.shared.clone(), copy)
    }
}

pub(crate) struct Shared<F> {
    /// Cloned for a call only when the primary failed with a trigger.
    pub(crate) fallback: F,
    pub(crate) triggers: KindSet,
}
