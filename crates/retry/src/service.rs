//! The retry service.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use seawall_classify::{BoxError, Classifier, Error, HasDeadline};
use tower_service::Service;

use crate::Backoff;
use crate::future::ResponseFuture;
use crate::handle::Counters;
use seawall_classify::Policy;
use seawall_util::rng::AtomicSplitMix64;

/// Retries failed calls that are worth retrying; see [`RetryLayer`](crate::RetryLayer).
///
/// The first attempt goes to the service that `poll_ready` made ready; later attempts go to a
/// clone of the wrapped service, made ready in turn. That clone is taken, at a call's first
/// retry, from a spare copy of the service kept since its first call, so a call that succeeds
/// at once clones nothing but a reference count (tower's `Retry` clones the whole inner
/// service on every call). Clones of a tower service are handles to the same client, so the
/// spare stands for any of them. The request is cloned before each attempt that may be
/// followed by another, so the last attempt moves it.
pub struct Retry<S, C> {
    inner: S,
    common: Arc<Common<S, C>>,
}

seawall_classify::inner_accessors!(impl[S, C] Retry<S, C>);

/// What a [`Retry`], its clones and their response futures share: one reference count per
/// call for all of it.
pub(crate) struct Common<S, C> {
    /// The layer's settings and counters, shared by every service it built.
    pub(crate) layer: Arc<Shared<C>>,
    /// The spare copy of the wrapped service that retries clone. Made at the first call
    /// (the layer puts no `Clone` bound on the service it wraps), and locked only to clone
    /// it, at a retry.
    pub(crate) spare: OnceLock<Mutex<S>>,
}

impl<S, C> Retry<S, C> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<C>>) -> Self {
        Retry {
            inner,
            common: Arc::new(Common {
                layer: shared,
                spare: OnceLock::new(),
            }),
        }
    }
}

impl<S: Clone, C> Retry<S, C> {
    /// Keeps a spare copy of the service for retries, at its first call.
    #[cold]
    #[inline(never)]
    fn keep_spare(&self) {
        let _ = self
            .common
            .spare
            .get_or_init(|| Mutex::new(self.inner.clone()));
    }
}

impl<S: Clone, C> Clone for Retry<S, C> {
    fn clone(&self) -> Self {
        Retry {
            inner: self.inner.clone(),
            common: self.common.clone(),
        }
    }
}

impl<S: fmt::Debug, C: fmt::Debug> fmt::Debug for Retry<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .field("shared", &self.common.layer)
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

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Error::from_inner)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        let shared = &*self.common.layer;
        if let Some(budget) = &shared.counters.budget {
            budget.deposit_for_request();
        }
        let again = (shared.max_attempts > 1).then(|| request.clone());
        if again.is_some() && self.common.spare.get().is_none() {
            self.keep_spare();
        }
        // The ready service takes the first attempt; a clone of the spare takes any later one.
        let future = self.inner.call(request);
        ResponseFuture::new(future, self.common.clone(), again)
    }
}

/// What every clone of one retry layer shares.
pub(crate) struct Shared<C> {
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Backoff,
    pub(crate) classifier: C,
    pub(crate) policy: Policy,
    pub(crate) seeds: AtomicSplitMix64,
    pub(crate) counters: Arc<Counters>,
    /// The dependency the layer retries calls to, for its metrics (`seawall.dependency`).
    pub(crate) name: Arc<str>,
}

impl<C> Shared<C> {
    /// A seed for one request's jitter: a fixed sequence when the layer was seeded.
    pub(crate) fn next_seed(&self) -> u64 {
        self.seeds.next_seed()
    }
}

impl<C: fmt::Debug> fmt::Debug for Shared<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("budget", &self.counters.budget)
            .field("policy", &self.policy)
            .field("classifier", &self.classifier)
            .finish()
    }
}
