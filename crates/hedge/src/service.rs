//! [`Hedge`]: a service that sends a second attempt of a slow request.

use crate::HedgeGate;
use crate::future::ResponseFuture;
use crate::latency::Delay;
use seawall_classify::BoxError;
use seawall_classify::Error;
use seawall_classify::HasDeadline;
use seawall_classify::Idempotency;
use seawall_retry::RetryBudget;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::task::Context;
use std::task::Poll;
use std::time::Duration;
use tokio::time::Instant;
use tower_service::Service;

/// What a hedge needs from its service: a copy of the inner service to clone for the
/// second attempt, the idempotency policy, and the layer's shared state.
pub(crate) struct Parts<S, I> {
    pub(crate) template: S,
    pub(crate) idempotency: I,
    pub(crate) shared: Arc<Shared>,
}

/// The service [`HedgeLayer`](crate::HedgeLayer) makes.
pub struct Hedge<S, I> {
    pub(crate) inner: S,
    pub(crate) parts: Arc<Parts<S, I>>,
}

seawall_classify::inner_accessors!(impl[S, I] Hedge<S, I>);

impl<S: Clone, I> Clone for Hedge<S, I> {
    fn clone(&self) -> Self {
        Hedge {
            inner: self.inner.clone(),
            parts: self.parts.clone(),
        }
    }
}

impl<S: fmt::Debug, I> fmt::Debug for Hedge<S, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hedge")
            .field("inner", &self.inner)
            .field("name", &self.parts.shared.name)
            .finish_non_exhaustive()
    }
}

impl<S, I, Req> Service<Req> for Hedge<S, I>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError> + 'static,
    I: Idempotency<Req>,
    Req: Clone + HasDeadline,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S, I, Req>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Error::from_inner)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        let started = seawall_classify::call_instant::get();
        let shared = &self.parts.shared;
        let hedge = match shared.delay() {
            Some(delay) if self.parts.idempotency.is_idempotent(&request) => {
                shared.budget.deposit_at(started);
                Some((request.clone(), started + delay))
            }
            _ => None,
        };
        // The layers inside (a pipeline's deadline) read this instant rather than the clock;
        // a retry layer inside sharing the budget finds this request's deposit made.
        let inner = &mut self.inner;
        let first = seawall_classify::call_instant::lend(started, || {
            if hedge.is_some() {
                shared.budget.covered(|| inner.call(request))
            } else {
                inner.call(request)
            }
        });
        ResponseFuture::new(first, self.parts.clone(), hedge, started)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) sent: AtomicU64,
    pub(crate) won: AtomicU64,
    pub(crate) skipped_budget: AtomicU64,
    pub(crate) skipped_gate: AtomicU64,
    pub(crate) skipped_deadline: AtomicU64,
}

/// Shared by every service a layer makes.
pub(crate) struct Shared {
    pub(crate) delay: Delay,
    pub(crate) budget: Arc<RetryBudget>,
    pub(crate) gates: Box<[Arc<dyn HedgeGate>]>,
    pub(crate) name: Arc<str>,
    pub(crate) counters: Counters,
}

impl Shared {
    /// The hedge delay for a request sent now, if one is known.
    #[inline]
    pub(crate) fn delay(&self) -> Option<Duration> {
        match &self.delay {
            Delay::Fixed(delay) => Some(*delay),
            Delay::Learnt { latencies, floor } => latencies.estimate().map(|d| d.max(*floor)),
        }
    }

    /// Counts a finished call's latency, when the delay is learnt.
    #[inline]
    pub(crate) fn record(&self, started: Instant) {
        if let Delay::Learnt { latencies, .. } = &self.delay {
            let now = Instant::now();
            latencies.record(now, now - started);
        }
    }

    pub(crate) fn gates_allow(&self) -> bool {
        self.gates.iter().all(|gate| gate.allows_hedge())
    }
}
