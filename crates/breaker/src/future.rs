//! The response future of [`CircuitBreaker`](crate::CircuitBreaker).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use seawall_classify::{BoxError, Classifier, Error, classify_outcome};
use tokio::time::Instant;

use crate::gate::{Gate, ProbeResult, Ticket};
use crate::policy::TripPolicy;

pin_project! {
    /// Drives the inner call and records its outcome with the breaker; or fails at once when
    /// the breaker refused the call. Dropping an unfinished probe releases its slot.
    pub struct ResponseFuture<F, C, P: TripPolicy> {
        #[pin]
        state: State<F, C, P>,
    }

    impl<F, C, P: TripPolicy> PinnedDrop for ResponseFuture<F, C, P> {
        fn drop(this: Pin<&mut Self>) {
            if let StateProj::Called { gate, ticket: Ticket::Probe { generation }, finished: false, .. } =
                this.project().state.project()
            {
                gate.finish_probe(*generation, ProbeResult::Released);
            }
        }
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, C, P: TripPolicy> {
        Called {
            #[pin]
            inner: F,
            gate: Arc<Gate<P>>,
            ticket: Ticket,
            finished: bool,
            started: Option<Instant>,
            classifier: C,
        },
        Rejected {
            error: Option<Error>,
        },
    }
}

impl<F, C, P: TripPolicy> ResponseFuture<F, C, P> {
    pub(crate) fn called(
        inner: F,
        classifier: C,
        gate: Arc<Gate<P>>,
        ticket: Ticket,
        started: Option<Instant>,
    ) -> Self {
        ResponseFuture {
            state: State::Called {
                inner,
                gate,
                ticket,
                finished: false,
                started,
                classifier,
            },
        }
    }

    pub(crate) fn rejected(error: Error) -> Self {
        ResponseFuture {
            state: State::Rejected { error: Some(error) },
        }
    }
}

impl<F, C, P: TripPolicy> fmt::Debug for ResponseFuture<F, C, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Called { ticket, .. } => match ticket {
                Ticket::Probe { .. } => "probing",
                _ => "called",
            },
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
    E: Into<BoxError> + 'static,
    C: Classifier<T>,
    P: TripPolicy,
{
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Called {
                inner,
                gate,
                ticket,
                finished,
                started,
                classifier,
            } => {
                let (class, result) = classify_outcome(&*classifier, ready!(inner.poll(cx)));
                if !*finished {
                    *finished = true;
                    // Policies that need no clock get a fixed instant: no clock read per call.
                    let now = if gate.needs_clock {
                        Instant::now()
                    } else {
                        gate.epoch()
                    };
                    let outcome = gate.outcome(&class, *started, now);
                    match (*ticket, outcome) {
                        (
                            Ticket::Closed {
                                generation,
                                disabled,
                            },
                            Some(outcome),
                        ) => {
                            gate.record(generation, disabled, outcome, now);
                        }
                        (Ticket::Probe { generation }, outcome) => gate.finish_probe(
                            generation,
                            match outcome {
                                Some(outcome) if outcome.fault => ProbeResult::Fault,
                                Some(_) => ProbeResult::Success,
                                None => ProbeResult::Released,
                            },
                        ),
                        // Ignored, or (never admitted to a future) a rejection.
                        _ => {}
                    }
                }
                Poll::Ready(result)
            }
            StateProj::Rejected { error } => {
                Poll::Ready(Err(error.take().expect("polled after completion")))
            }
        }
    }
}
