//! The response future of [`CircuitBreaker`](crate::CircuitBreaker).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use seawall_classify::{BoxError, Classifier};
use tokio::time::Instant;

use crate::gate::{Gate, ProbeResult, ProbeSlot};
use crate::policy::TripPolicy;

/// How the outcome of an admitted call is recorded.
pub(crate) enum Record<P: TripPolicy> {
    Closed {
        gate: Arc<Gate<P>>,
        generation: u32,
        disabled: bool,
    },
    Probe(ProbeSlot<P>),
}

impl<P: TripPolicy> Record<P> {
    fn gate(&self) -> &Arc<Gate<P>> {
        match self {
            Record::Closed { gate, .. } => gate,
            Record::Probe(slot) => slot.gate(),
        }
    }
}

pin_project! {
    /// Drives the inner call and records its outcome with the breaker; or fails at once when
    /// the breaker refused the call.
    pub struct ResponseFuture<F, C, P: TripPolicy> {
        #[pin]
        state: State<F, C, P>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, C, P: TripPolicy> {
        Called {
            #[pin]
            inner: F,
            classifier: C,
            record: Option<Record<P>>,
            started: Option<Instant>,
        },
        Rejected {
            error: Option<BoxError>,
        },
    }
}

impl<F, C, P: TripPolicy> ResponseFuture<F, C, P> {
    pub(crate) fn called(
        inner: F,
        classifier: C,
        record: Record<P>,
        started: Option<Instant>,
    ) -> Self {
        ResponseFuture {
            state: State::Called {
                inner,
                classifier,
                record: Some(record),
                started,
            },
        }
    }

    pub(crate) fn rejected(error: BoxError) -> Self {
        ResponseFuture {
            state: State::Rejected { error: Some(error) },
        }
    }
}

impl<F, C, P: TripPolicy> fmt::Debug for ResponseFuture<F, C, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Called { .. } => "called",
            State::Rejected { .. } => "rejected",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<F, C, P, T, E> Future for ResponseFuture<F, C, P>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: Classifier<T, E>,
    P: TripPolicy,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Called {
                inner,
                classifier,
                record,
                started,
            } => {
                let result = ready!(inner.poll(cx));
                if let Some(record) = record.take() {
                    let class = classifier.classify(result.as_ref());
                    let gate = record.gate();
                    // Policies that need no clock get a fixed instant: no clock read per call.
                    let now = if gate.needs_clock {
                        Instant::now()
                    } else {
                        gate.epoch()
                    };
                    let outcome = gate.outcome(&class, *started, now);
                    match (record, outcome) {
                        (
                            Record::Closed {
                                gate,
                                generation,
                                disabled,
                            },
                            Some(outcome),
                        ) => {
                            gate.record(generation, disabled, outcome, now);
                        }
                        (Record::Closed { .. }, None) => {}
                        (Record::Probe(slot), Some(outcome)) => slot.finish(if outcome.fault {
                            ProbeResult::Fault
                        } else {
                            ProbeResult::Success
                        }),
                        (Record::Probe(slot), None) => slot.finish(ProbeResult::Released),
                    }
                }
                Poll::Ready(result.map_err(Into::into))
            }
            StateProj::Rejected { error } => {
                Poll::Ready(Err(error.take().expect("polled after completion")))
            }
        }
    }
}
