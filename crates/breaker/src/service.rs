//! The circuit breaker service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use seawall_classify::{BoxError, Classifier, Error, schema};
use tokio::time::Instant;
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::gate::{Gate, ProbeSlot, Ticket};
use crate::handle::BreakerHandle;
use crate::trip::TripPolicy;

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
    // What poll_ready decided: a small `Copy` value, so the closed path moves no guard.
    ticket: Option<Ticket>,
    // The guard of a probe slot reserved by poll_ready, released if `call` never comes.
    probe: Option<ProbeSlot<P>>,
}

seawall_classify::inner_accessors!(impl[S, C, P: TripPolicy] CircuitBreaker<S, C, P>);

impl<S, C, P: TripPolicy> CircuitBreaker<S, C, P> {
    pub(crate) fn new(inner: S, gate: Arc<Gate<P>>, classifier: C) -> Self {
        CircuitBreaker {
            inner,
            gate,
            classifier,
            ticket: None,
            probe: None,
        }
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

impl<S, C, P: TripPolicy> CircuitBreaker<S, C, P> {
    /// Holds the probe slot `poll_ready` was given until `call` hands it to its future.
    #[cold]
    #[inline(never)]
    fn reserve_probe(&mut self, generation: u32) {
        self.probe = Some(ProbeSlot::new(self.gate.clone(), generation));
    }

    /// A ticket kept from an earlier `poll_ready` (the inner service was not ready then) is
    /// used only if the breaker has not moved on meanwhile; otherwise it is dropped (a probe
    /// slot with it) and the call admitted again.
    #[cold]
    #[inline(never)]
    fn kept_ticket(&mut self, ticket: Ticket) -> Option<Ticket> {
        if self.gate.is_current(ticket) {
            return Some(ticket);
        }
        self.release_probe();
        None
    }

    /// Hands the probe slot reserved by `poll_ready` to the call's future, once the inner
    /// `call` returned.
    #[cold]
    #[inline(never)]
    fn hand_over_probe(&mut self) {
        if let Some(slot) = self.probe.take() {
            slot.hand_over();
        }
    }

    /// The ticket and any probe slot go back: the inner service is not ready (so a caller
    /// whose service is ready may probe meanwhile; it is reserved again at the next poll), or
    /// the kept ticket is stale.
    #[cold]
    #[inline(never)]
    fn release_probe(&mut self) {
        self.ticket = None;
        self.probe = None;
    }

    /// A ticket other than closed: a probe's or a disabled breaker's goes on to the call; a
    /// refusal comes back as the time until the next probe.
    #[cold]
    #[inline(never)]
    fn other_ticket(&self, ticket: Option<Ticket>) -> Result<Ticket, Duration> {
        match ticket.expect("poll_ready must be called before call") {
            Ticket::Reject => Err(self.refusal()),
            ticket => Ok(ticket),
        }
    }

    /// A refusal, logged and noted on the caller's span: the time until the next probe.
    #[cold]
    #[inline(never)]
    fn refusal(&self) -> Duration {
        let retry_after = self
            .gate
            .retry_after(Instant::now())
            .unwrap_or(Duration::ZERO);
        tracing::debug!(
            target: "seawall::breaker",
            {
                { schema::FIELD_REJECTIONS } = 1u64,
                { schema::LAYER } = "breaker",
                { schema::ERROR_TYPE } = "rejected",
                { schema::BREAKER_NAME } = &*self.gate.config.name
            },
            "call refused: circuit breaker open"
        );
        // On the caller's span (a pipeline's client span), who refused and why.
        let _ = schema::record_refusal("breaker")
            .with(schema::BREAKER_NAME, &*self.gate.config.name)
            .with(schema::BREAKER_STATE, "open");
        retry_after
    }
}

impl<S, C, P, Req> Service<Req> for CircuitBreaker<S, C, P>
where
    S: Service<Req>,
    S::Error: Into<BoxError> + 'static,
    C: Classifier<S::Response> + Clone,
    P: TripPolicy,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future, C, P>;

    #[inline(always)]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The closed path on its own: no ticket kept, admitted closed.
        if self.ticket.is_none()
            && let Some(generation) = self.gate.closed_generation()
        {
            self.ticket = Some(Ticket::Closed { generation });
            return self.inner.poll_ready(cx).map_err(Error::from_inner);
        }
        self.poll_ready_slow(cx)
    }

    #[inline(always)]
    fn call(&mut self, request: Req) -> Self::Future {
        // Read before the ticket, so that the ticket is not held across it (a register
        // spilled and reloaded otherwise).
        let started = if self.gate.config.slow_call.is_some() {
            self.gate.stamp(seawall_classify::call_instant::get())
        } else {
            0
        };
        // The closed path first, on its own: it is the one every call takes (one comparison
        // tells it from every other ticket, and from none at all).
        let ticket = match self.ticket.take() {
            Some(ticket @ Ticket::Closed { .. }) => ticket,
            other => match self.other_ticket(other) {
                Ok(ticket) => ticket,
                Err(refusal) => {
                    return ResponseFuture::rejected(
                        self.gate.clone(),
                        refusal,
                        self.classifier.clone(),
                    );
                }
            },
        };
        // A probe's slot stays with the service while the inner `call` runs: if that panics,
        // the slot is released when the service is dropped or at its next `poll_ready`
        // (which reserves anew), rather than lost with the breaker half-open for good.
        let future = self.inner.call(request);
        if self.probe.is_some() {
            // The future finishes or releases the probe from now on.
            self.hand_over_probe();
        }
        ResponseFuture::called(
            future,
            self.classifier.clone(),
            self.gate.clone(),
            ticket,
            started,
        )
    }
}

impl<S, C, P: TripPolicy> CircuitBreaker<S, C, P> {
    /// `poll_ready` off the closed path: a ticket kept from an earlier poll (re-checked
    /// against the breaker's generation) or a fresh admission that is not closed; a probe slot
    /// to reserve, a refusal, or a probe slot to give back while the inner service is not
    /// ready.
    #[cold]
    #[inline(never)]
    fn poll_ready_slow<Req>(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>>
    where
        S: Service<Req>,
        S::Error: Into<BoxError> + 'static,
    {
        if self.ticket.is_none() && self.probe.is_some() {
            // A slot with no ticket: left by a probe call whose inner `call` panicked. It is
            // released now, and the call admitted again.
            self.probe = None;
        }
        let kept = match self.ticket {
            Some(ticket) => self.kept_ticket(ticket),
            None => None,
        };
        let ticket = match kept {
            Some(ticket) => ticket,
            None => {
                let ticket = self.gate.admit();
                if let Ticket::Probe { generation } = ticket {
                    self.reserve_probe(generation);
                }
                self.ticket = Some(ticket);
                ticket
            }
        };
        if let Ticket::Reject = ticket {
            return Poll::Ready(Ok(()));
        }
        let ready = self.inner.poll_ready(cx);
        if ready.is_pending() && matches!(ticket, Ticket::Probe { .. }) {
            self.release_probe();
        }
        ready.map_err(Error::from_inner)
    }
}
