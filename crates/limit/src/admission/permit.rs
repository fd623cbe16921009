//! A held permit, and what happens when it is given back: in adaptive mode, the call's
//! outcome moves the limit, and permits the limit no longer has room for are retired.

use std::fmt;
use std::sync::Arc;

use seawall_classify::{Class, LimitSample};
use tokio::time::Instant;

use crate::adaptive::Sample;
use crate::admission::Shared;

/// One permit, counted out of the limit's spare permits: dropping it gives it back to a
/// queued call, or to the spare count (see [`Shared::take_spare`]), or retires it when the
/// limit shrank while it was held.
pub(crate) struct SparePermit {
    shared: Arc<Shared>,
}

impl SparePermit {
    /// Takes a spare permit, if one is free and no call is queued.
    #[inline]
    pub(crate) fn take(shared: &Arc<Shared>) -> Option<SparePermit> {
        shared.take_spare().then(|| SparePermit {
            shared: shared.clone(),
        })
    }

    /// A permit the queue handed to a waiting call.
    pub(crate) fn handed(shared: &Arc<Shared>) -> SparePermit {
        SparePermit {
            shared: shared.clone(),
        }
    }
}

impl Drop for SparePermit {
    #[inline]
    fn drop(&mut self) {
        self.shared.give_back_permit();
    }
}

/// A permit held by an admitted call.
pub(crate) enum Permit {
    /// A fixed limit: dropping the permit gives it back.
    Fixed { _held: SparePermit },
    /// An adaptive limit: the outcome is sampled and the limit may have shrunk meanwhile.
    Adaptive(Option<Adaptive>),
}

pub(crate) struct Adaptive {
    permit: SparePermit,
    admitted: Instant,
    in_flight: usize,
    limit: usize,
    /// The limit's generation at admission.
    generation: u64,
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Permit::Fixed { .. } => "Permit::Fixed",
            Permit::Adaptive(_) => "Permit::Adaptive",
        })
    }
}

impl Permit {
    /// Wraps a permit just granted to a call.
    #[inline]
    pub(crate) fn admitted(permit: SparePermit, shared: &Arc<Shared>) -> Permit {
        if shared.is_fixed() {
            return Permit::Fixed { _held: permit };
        }
        Self::adaptive(permit, shared)
    }

    #[inline(never)]
    fn adaptive(permit: SparePermit, shared: &Arc<Shared>) -> Permit {
        // The generation before the limit (see `Shared::generation`).
        let generation = shared.generation();
        Permit::Adaptive(Some(Adaptive {
            permit,
            admitted: Instant::now(),
            in_flight: shared.in_flight(),
            limit: shared.limit(),
            generation,
        }))
    }

    /// The call finished with `result`: sample it (adaptive mode) and give the permit back.
    /// `true` when the call's outcome moves the limit, so the caller should classify it.
    pub(crate) fn is_adaptive(&self) -> bool {
        matches!(self, Permit::Adaptive(Some(_)))
    }

    /// The call finished with `class` (given in adaptive mode): sample it, as the shared
    /// `Policy` says, and give the permit back.
    pub(crate) fn finish(mut self, class: Option<Class>) {
        if let Permit::Adaptive(adaptive) = &mut self {
            finish_adaptive(adaptive, class);
        }
    }
}

/// Samples `class` (when there is one), as the shared `Policy` says, and gives the permit
/// back; nothing when the permit was given back already.
fn finish_adaptive(adaptive: &mut Option<Adaptive>, class: Option<Class>) {
    let Some(adaptive) = adaptive.take() else {
        return;
    };
    let shared = &adaptive.permit.shared;
    let dropped = class.and_then(|class| match shared.policy.limit_sample(class) {
        LimitSample::Success => Some(false),
        LimitSample::Drop => Some(true),
        // The caller's mistakes, local refusals, cancellations: no information about the
        // dependency's capacity.
        LimitSample::Ignore => None,
    });
    if let Some(dropped) = dropped {
        let sample = Sample {
            rtt: adaptive.admitted.elapsed(),
            in_flight: adaptive.in_flight,
            limit: adaptive.limit,
            dropped,
            // Decided by `learn`, under its lock.
            current: false,
        };
        shared.learn(sample, adaptive.generation);
    }
    // Given back, or retired if the limit shrank.
    drop(adaptive.permit);
}

impl Drop for Permit {
    #[inline]
    fn drop(&mut self) {
        if let Permit::Adaptive(adaptive) = self
            && adaptive.is_some()
        {
            drop_adaptive(adaptive);
        }
    }
}

/// An adaptive permit dropped before its call answered. Cut by a timeout outside (see
/// `seawall_classify::cut`): sampled as that timeout, a drop. Cancelled by its caller: no
/// sample, but a shrunk limit still retires the permit.
#[cold]
#[inline(never)]
fn drop_adaptive(adaptive: &mut Option<Adaptive>) {
    finish_adaptive(adaptive, seawall_classify::cut::current());
}
