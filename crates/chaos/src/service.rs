//! [`Chaos`]: a service whose calls get faults injected.

use crate::future::{ResponseFuture, State};
use crate::proxy::Delay;
use seawall_classify::BoxError;
use seawall_classify::Class;
use seawall_classify::Error;
use seawall_util::rng::SplitMix64;
use seawall_util::rng::mix;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::task::Context;
use std::task::Poll;
use std::time::Duration;
use tokio::time::Instant;
use tower_service::Service;

/// A service with injected faults; see [`ChaosLayer`](crate::ChaosLayer).
pub struct Chaos<S> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared>,
}

seawall_classify::inner_accessors!(impl[S] Chaos<S>);

impl<S: Clone> Clone for Chaos<S> {
    fn clone(&self) -> Self {
        Chaos {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Chaos<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chaos").field("inner", &self.inner).finish()
    }
}

impl<S, Req> Service<Req> for Chaos<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError> + 'static,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future, S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Error::from_inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let state = match self.shared.plan() {
            Plan::Fail => State::Failed {
                class: Some(self.shared.error_class),
            },
            Plan::Hang => State::Hanging,
            Plan::Pass(delay) => State::Calling {
                inner: self.inner.call(request),
                delay,
            },
        };
        ResponseFuture { state }
    }
}

pub(crate) struct Shared {
    pub(crate) error: f64,
    pub(crate) error_class: Class,
    pub(crate) hang: f64,
    pub(crate) latency: f64,
    pub(crate) delay: Delay,
    pub(crate) during: Option<Range<Duration>>,
    pub(crate) calls_window: Option<Range<u64>>,
    pub(crate) start: Instant,
    pub(crate) seed: u64,
    pub(crate) calls: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) hangs: AtomicU64,
    pub(crate) delayed: AtomicU64,
}

/// What to do with one call.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Plan {
    Pass(Option<Duration>),
    Fail,
    Hang,
}

impl Shared {
    pub(crate) fn plan(&self) -> Plan {
        let index = self.calls.fetch_add(1, Ordering::Relaxed);
        let since = self.start.elapsed();
        let active = self
            .during
            .as_ref()
            .is_none_or(|range| range.contains(&since))
            && self
                .calls_window
                .as_ref()
                .is_none_or(|range| range.contains(&index));
        if !active {
            return Plan::Pass(None);
        }
        // One stream per call, from the seed and the call's index: the same calls get the
        // same faults whatever else runs.
        let mut rng = SplitMix64::new(self.seed ^ mix(index));
        let draw = rng.next_f64();
        if draw < self.error {
            self.errors.fetch_add(1, Ordering::Relaxed);
            return Plan::Fail;
        }
        if draw < self.error + self.hang {
            self.hangs.fetch_add(1, Ordering::Relaxed);
            return Plan::Hang;
        }
        if rng.next_f64() < self.latency {
            self.delayed.fetch_add(1, Ordering::Relaxed);
            let extra = self.delay.jitter.mul_f64(rng.next_f64());
            return Plan::Pass(Some(self.delay.fixed + extra));
        }
        Plan::Pass(None)
    }
}
