//! The circuit breaker service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use seawall_classify::{BoxError, Classifier, Error};
use tokio::time::Instant;
use tower_service::Service;

use crate::error::BreakerOpen;
use crate::future::{Record, ResponseFuture};
use crate::gate::{Admission, Gate};
use crate::handle::BreakerHandle;
use crate::policy::TripPolicy;

/// Fails fast while its dependency is failing; see
/// [`CircuitBreakerLayer`](crate::CircuitBreakerLayer).
///
/// The decision is taken in `poll_ready`: when the breaker admits the call, `poll_ready`
/// waits for the inner service as usual; when it refuses, `poll_ready` is ready at once
/// without touching the inner service, and `call` fails with
/// [`BreakerOpen`](crate::error::BreakerOpen). So an open breaker never blocks a caller. A
/// half-open probe slot reserved in `poll_ready` is released if the service is dropped before
/// `call`, and a clone never inherits it.
pub struct CircuitBreaker<S, C = seawall_classify::DefaultClassifier, P: TripPolicy = crate::AnyOf>
{
    inner: S,
    gate: Arc<Gate<P>>,
    classifier: C,
    admission: Option<Admission<P>>,
}

impl<S, C, P: TripPolicy> CircuitBreaker<S, C, P> {
    pub(crate) fn new(inner: S, gate: Arc<Gate<P>>, classifier: C) -> Self {
        CircuitBreaker {
            inner,
            gate,
            classifier,
            admission: None,
        }
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

impl<S, C, P: TripPolicy + fmt::Debug> CircuitBreaker<S, C, P> {
    /// A handle reading and steering the breaker.
    pub fn handle(&self) -> BreakerHandle {
        BreakerHandle {
            control: self.gate.clone(),
        }
    }
}

impl<S: Clone, C: Clone, P: TripPolicy> Clone for CircuitBreaker<S, C, P> {
    fn clone(&self) -> Self {
        CircuitBreaker::new(
            self.inner.clone(),
            self.gate.clone(),
            self.classifier.clone(),
        )
    }
}

impl<S: fmt::Debug, C, P: TripPolicy + fmt::Debug> fmt::Debug for CircuitBreaker<S, C, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("inner", &self.inner)
            .field("gate", &self.gate)
            .finish()
    }
}

impl<S, C, P, Req> Service<Req> for CircuitBreaker<S, C, P>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Classifier<S::Response, S::Error> + Clone,
    P: TripPolicy,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C, P>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let admission = self.admission.get_or_insert_with(|| self.gate.admit());
        if let Admission::Reject(_) = admission {
            return Poll::Ready(Ok(()));
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        let admission = self
            .admission
            .take()
            .expect("poll_ready must be called before call");
        let started = self.gate.needs_clock.then(Instant::now);
        let record = match admission {
            Admission::Pass {
                generation,
                disabled,
            } => Record::Closed {
                gate: self.gate.clone(),
                generation,
                disabled,
            },
            Admission::Probe(slot) => Record::Probe(slot),
            Admission::Reject(retry_after) => {
                let open = BreakerOpen::new(self.gate.config.name.clone(), retry_after);
                return ResponseFuture::rejected(Box::new(Error::new(open.class(), open)));
            }
        };
        ResponseFuture::called(
            self.inner.call(request),
            self.classifier.clone(),
            record,
            started,
        )
    }
}
