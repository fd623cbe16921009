//! The response future of [`CircuitBreaker`](crate::CircuitBreaker).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use seawall_classify::{BoxError, Class, Classifier, Error, classify_outcome, cut};
use tokio::time::Instant;

use crate::error::BreakerOpen;
use crate::gate::{Gate, ProbeResult, Ticket};
use crate::trip::TripPolicy;

pin_project! {
    /// Drives the inner call and records its outcome with the breaker; or fails at once when
    /// the breaker refused the call. Dropping an unfinished probe releases its slot.
    pub struct ResponseFuture<F, C, P: TripPolicy> {
        // `None` when the breaker refused the call.
        #[pin]
        inner: Option<F>,
        // Taken when the outcome is recorded: the gate's reference count goes down then,
        // and the future's drop has nothing left to do. For a refusal, it carries the
        // gate and the time until the next probe, made into the error when polled.
        recorder: Option<Recorder<P>>,
        classifier: C,
    }
}

/// What a call admitted by the gate owes it: its outcome, recorded once. Dropped without
/// recording (the call was cancelled), a probe releases its slot; a closed call records
/// nothing.
struct Recorder<P: TripPolicy> {
    gate: Arc<Gate<P>>,
    ticket: Ticket,
    // When the call started, as a gate stamp; zero when the breaker has no slow-call
    // threshold. For a refusal, the nanoseconds until the next probe.
    started: u64,
}

impl<P: TripPolicy> Recorder<P> {
    /// The instant an outcome is recorded at: policies that need no clock get a fixed one,
    /// so a call reads no clock.
    #[inline(always)]
    fn now(&self) -> Instant {
        if self.gate.needs_clock {
            Instant::now()
        } else {
            self.gate.epoch()
        }
    }

    /// Records the outcome, once: the ticket is spent, so the drop that follows does nothing.
    #[inline(always)]
    fn record(&mut self, class: &Class) {
        // The closed path first, on its own: it is the one every call takes.
        if let Ticket::Closed { generation } = self.ticket {
            self.record_closed(generation, false, class);
        } else {
            self.record_other(class);
        }
        self.ticket = Ticket::Reject;
    }

    #[cold]
    #[inline(never)]
    fn record_other(&mut self, class: &Class) {
        match self.ticket {
            Ticket::Disabled { generation } => self.record_closed(generation, true, class),
            Ticket::Probe { generation } => self.finish_probe(generation, class),
            // Closed is recorded above; a rejection is never admitted to a recorder.
            Ticket::Closed { .. } | Ticket::Reject => {}
        }
    }

    #[inline(always)]
    fn record_closed(&self, generation: u32, disabled: bool, class: &Class) {
        let gate = &*self.gate;
        if gate.needs_clock {
            let now = Instant::now();
            if let Some(outcome) = gate.outcome(class, self.started, now) {
                gate.record(generation, disabled, outcome, now);
            }
        } else if let Some(outcome) = gate.outcome_untimed(class) {
            // No slow-call threshold, no time window: the fixed instant stands in for now.
            gate.record(generation, disabled, outcome, gate.epoch());
        }
    }

    fn finish_probe(&mut self, generation: u32, class: &Class) {
        let now = self.now();
        let result = match self.gate.outcome(class, self.started, now) {
            Some(outcome) if outcome.fault => ProbeResult::Fault,
            Some(_) => ProbeResult::Success,
            None => ProbeResult::Released,
        };
        self.gate.finish_probe(generation, result);
    }
}

impl<P: TripPolicy> Drop for Recorder<P> {
    #[inline(always)]
    fn drop(&mut self) {
        if !matches!(self.ticket, Ticket::Reject) {
            self.unfinished();
        }
    }
}

impl<P: TripPolicy> Recorder<P> {
    /// Dropped before its outcome. Cut by a timeout outside (see `seawall_classify::cut`): the
    /// call is recorded as that timeout, the hung call a breaker exists for. Cancelled by its
    /// caller: a closed call records nothing, and a probe's slot goes back, counting as
    /// neither success nor fault. Out of line, so that a future's drop stays small.
    #[cold]
    #[inline(never)]
    fn unfinished(&mut self) {
        match cut::current() {
            Some(class) => self.record(&class),
            None => {
                if let Ticket::Probe { generation } = self.ticket {
                    self.gate.finish_probe(generation, ProbeResult::Released);
                }
            }
        }
    }
}

impl<F, C, P: TripPolicy> ResponseFuture<F, C, P> {
    #[inline]
    pub(crate) fn called(
        inner: F,
        classifier: C,
        gate: Arc<Gate<P>>,
        ticket: Ticket,
        started: u64,
    ) -> Self {
        ResponseFuture {
            inner: Some(inner),
            recorder: Some(Recorder {
                gate,
                ticket,
                started,
            }),
            classifier,
        }
    }

    pub(crate) fn rejected(gate: Arc<Gate<P>>, retry_after: Duration, classifier: C) -> Self {
        ResponseFuture {
            inner: None,
            recorder: Some(Recorder {
                gate,
                ticket: Ticket::Reject,
                started: u64::try_from(retry_after.as_nanos()).unwrap_or(u64::MAX),
            }),
            classifier,
        }
    }
}

impl<F, C, P: TripPolicy> fmt::Debug for ResponseFuture<F, C, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match (&self.inner, &self.recorder) {
            (None, _) => "rejected",
            (
                Some(_),
                Some(Recorder {
                    ticket: Ticket::Probe { .. },
                    ..
                }),
            ) => "probing",
            (Some(_), _) => "called",
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

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(inner) = this.inner.as_pin_mut() else {
            return Poll::Ready(Err(refused(this.recorder.take())));
        };
        let (class, result) = classify_outcome(&*this.classifier, ready!(inner.poll(cx)));
        // Recorded: the gate's reference goes now, not with the future. A closed call's
        // recorder first, told from every other (and from none) in one comparison.
        match this.recorder {
            Some(
                recorder @ Recorder {
                    ticket: Ticket::Closed { .. },
                    ..
                },
            ) => {
                recorder.record(&class);
                *this.recorder = None;
            }
            Some(recorder) => {
                recorder.record(&class);
                *this.recorder = None;
            }
            None => {}
        }
        Poll::Ready(result)
    }
}

#[cold]
#[inline(never)]
fn refused<P: TripPolicy>(recorder: Option<Recorder<P>>) -> Error {
    let recorder = recorder.expect("polled after completion");
    let open = BreakerOpen::new(
        recorder.gate.config.name.clone(),
        Duration::from_nanos(recorder.started),
    );
    Error::new(open.class(), open)
}
