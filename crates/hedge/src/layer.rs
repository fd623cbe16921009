//! The layer, its builder, the gates that hold hedges back, and the handle reading its
//! counters.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use seawall_classify::{BoxError, ConfigError, Error, HasDeadline, Idempotency};
use seawall_retry::RetryBudget;
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::latency::Latencies;

const LAYER: &str = "hedge";

/// The longest hedge delay accepted.
pub const MAX_DELAY: Duration = Duration::from_secs(60 * 60);

/// Says whether a hedge may be sent now. Asked only when a request has been slow for the
/// hedge delay, never on a request's ordinary path.
///
/// With feature `breaker`, a [`BreakerHandle`](seawall_breaker::BreakerHandle) is a gate
/// (hedges only while the breaker is closed or disabled: a hedge into an open breaker is
/// refused, a hedge into a half-open one spends a probe); with feature `limit`, a
/// [`LimitHandle`](seawall_limit::LimitHandle) is (hedges only while a permit is free and
/// nobody queues: a hedge must not take a slot a first attempt waits for). Closures
/// `Fn() -> bool` are gates too.
pub trait HedgeGate: Send + Sync + 'static {
    /// `true` when a hedge may be sent now.
    fn allows_hedge(&self) -> bool;
}

impl<F: Fn() -> bool + Send + Sync + 'static> HedgeGate for F {
    fn allows_hedge(&self) -> bool {
        self()
    }
}

#[cfg(feature = "breaker")]
impl HedgeGate for seawall_breaker::BreakerHandle {
    fn allows_hedge(&self) -> bool {
        use seawall_breaker::State;
        matches!(self.state(), State::Closed | State::Disabled)
    }
}

#[cfg(feature = "limit")]
impl HedgeGate for seawall_limit::LimitHandle {
    fn allows_hedge(&self) -> bool {
        self.queued() == 0 && self.in_flight() < self.limit()
    }
}

/// When a slow request is hedged.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DelaySetting {
    Fixed(Duration),
    Learnt {
        percentile: f64,
        window: Duration,
        min_samples: u64,
        floor: Duration,
    },
}

pub(crate) enum Delay {
    Fixed(Duration),
    Learnt {
        latencies: Latencies,
        floor: Duration,
    },
}

/// Configures a [`HedgeLayer`]; see [`HedgeLayer::builder`].
#[must_use]
pub struct HedgeBuilder<I> {
    idempotency: I,
    delay: DelaySetting,
    budget: Arc<RetryBudget>,
    gates: Vec<Arc<dyn HedgeGate>>,
    name: Arc<str>,
}

impl<I> fmt::Debug for HedgeBuilder<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HedgeBuilder")
            .field("idempotency", &std::any::type_name::<I>())
            .field("delay", &self.delay)
            .field("budget", &self.budget)
            .field("gates", &self.gates.len())
            .field("name", &self.name)
            .finish()
    }
}

/// The default hedge budget: 10 % of requests plus one hedge a second, over 10 seconds.
fn standard_budget() -> RetryBudget {
    RetryBudget::new(Duration::from_secs(10), 1, 0.1).expect("valid defaults")
}

impl<I> HedgeBuilder<I> {
    /// Hedges a request once it has waited `delay` without an answer (from 1 µs to
    /// [`MAX_DELAY`]).
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = DelaySetting::Fixed(delay);
        self
    }

    /// Hedges a request once it has waited longer than `percentile` (0.5 to 0.999; 0.95 by
    /// default) of recent calls' latencies, learnt from the calls this layer's services
    /// answered over the last one or two [`learning_window`](Self::learning_window)s. No
    /// request is hedged until [`min_samples`](Self::min_samples) calls have been seen.
    pub fn after_percentile(mut self, percentile: f64) -> Self {
        self.delay = match self.delay {
            DelaySetting::Learnt {
                window,
                min_samples,
                floor,
                ..
            } => DelaySetting::Learnt {
                percentile,
                window,
                min_samples,
                floor,
            },
            DelaySetting::Fixed(_) => DelaySetting::Learnt {
                percentile,
                window: Duration::from_secs(10),
                min_samples: 100,
                floor: Duration::ZERO,
            },
        };
        self
    }

    fn learnt(mut self, change: impl FnOnce(&mut Duration, &mut u64, &mut Duration)) -> Self {
        if let DelaySetting::Fixed(_) = self.delay {
            self = self.after_percentile(0.95);
        }
        if let DelaySetting::Learnt {
            window,
            min_samples,
            floor,
            ..
        } = &mut self.delay
        {
            change(window, min_samples, floor);
        }
        self
    }

    /// How long the learnt delay remembers calls (1 s to 10 minutes; 10 s by default): a
    /// call counts for between one and two windows. Implies a learnt delay.
    pub fn learning_window(self, window: Duration) -> Self {
        self.learnt(|w, _, _| *w = window)
    }

    /// Calls seen before the learnt delay is trusted (1 to 1,000,000; 100 by default).
    /// Implies a learnt delay.
    pub fn min_samples(self, samples: u64) -> Self {
        self.learnt(|_, n, _| *n = samples)
    }

    /// The learnt delay is never shorter than this (0 by default). Implies a learnt delay.
    pub fn min_delay(self, delay: Duration) -> Self {
        self.learnt(|_, _, floor| *floor = delay)
    }

    /// The budget hedges are taken from, for this layer alone (default: 10 % of requests
    /// plus one hedge a second, over 10 s). A request that may be hedged deposits, a hedge
    /// withdraws: during an outage that makes every call slow, hedges stay within the
    /// budget's share of requests. A retry layer inside sharing the budget does not deposit
    /// again for the same request, neither for its first attempt nor for the hedge's.
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Arc::new(budget);
        self
    }

    /// A budget shared with other layers: the dependency's retry layer's (see
    /// `RetryHandle::budget`), so that retries and hedges together stay within one share
    /// of requests.
    pub fn shared_budget(mut self, budget: Arc<RetryBudget>) -> Self {
        self.budget = budget;
        self
    }

    /// A gate asked before each hedge: a hedge is sent only when every gate allows it.
    /// Give it the breaker and the limit the hedge would go through.
    pub fn gate(mut self, gate: impl HedgeGate) -> Self {
        self.gates.push(Arc::new(gate));
        self
    }

    /// The dependency this layer hedges calls to: its hedges are reported with
    /// `seawall.dependency` set to it (default `default`).
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Checks the configuration and builds the layer.
    pub fn build(self) -> Result<HedgeLayer<I>, ConfigError> {
        let delay = match self.delay {
            DelaySetting::Fixed(delay) => {
                if delay.is_zero() || delay > MAX_DELAY {
                    return Err(ConfigError::new(
                        LAYER,
                        "after",
                        format!(
                            "is {delay:?}, outside 1 µs to 1 hour (a zero delay doubles every call)"
                        ),
                    ));
                }
                Delay::Fixed(delay)
            }
            DelaySetting::Learnt {
                percentile,
                window,
                min_samples,
                floor,
            } => {
                if !(0.5..=0.999).contains(&percentile) {
                    return Err(ConfigError::new(
                        LAYER,
                        "after_percentile",
                        format!("is {percentile}, outside 0.5 to 0.999"),
                    ));
                }
                if window < Duration::from_secs(1) || window > Duration::from_secs(600) {
                    return Err(ConfigError::new(
                        LAYER,
                        "learning_window",
                        format!("is {window:?}, outside 1 s to 10 minutes"),
                    ));
                }
                if !(1..=1_000_000).contains(&min_samples) {
                    return Err(ConfigError::new(
                        LAYER,
                        "min_samples",
                        format!("is {min_samples}, outside 1 to 1,000,000"),
                    ));
                }
                if floor > MAX_DELAY {
                    return Err(ConfigError::new(
                        LAYER,
                        "min_delay",
                        format!("is {floor:?}, longer than 1 hour"),
                    ));
                }
                Delay::Learnt {
                    latencies: Latencies::new(percentile, window, min_samples),
                    floor,
                }
            }
        };
        Ok(HedgeLayer {
            shared: Arc::new(Shared {
                delay,
                budget: self.budget,
                gates: self.gates.into(),
                name: self.name,
                counters: Counters::default(),
            }),
            idempotency: self.idempotency,
        })
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
    fn delay(&self) -> Option<Duration> {
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

/// Sends a second attempt of a slow idempotent request, and answers with whichever attempt
/// succeeds first; see the [crate documentation](crate).
pub struct HedgeLayer<I> {
    shared: Arc<Shared>,
    idempotency: I,
}

impl HedgeLayer<()> {
    /// A builder hedging the requests `idempotency` says may be sent twice, after the 95th
    /// percentile of recent latencies, within a budget of 10 % of requests plus one a second.
    pub fn builder<I>(idempotency: I) -> HedgeBuilder<I> {
        HedgeBuilder {
            idempotency,
            delay: DelaySetting::Learnt {
                percentile: 0.95,
                window: Duration::from_secs(10),
                min_samples: 100,
                floor: Duration::ZERO,
            },
            budget: Arc::new(standard_budget()),
            gates: Vec::new(),
            name: Arc::from("default"),
        }
    }
}

impl<I> HedgeLayer<I> {
    /// A handle reading this layer's counters and delay.
    #[must_use]
    pub fn handle(&self) -> HedgeHandle {
        HedgeHandle {
            shared: self.shared.clone(),
        }
    }
}

impl<I: Clone> Clone for HedgeLayer<I> {
    fn clone(&self) -> Self {
        HedgeLayer {
            shared: self.shared.clone(),
            idempotency: self.idempotency.clone(),
        }
    }
}

impl<I> fmt::Debug for HedgeLayer<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HedgeLayer")
            .field("name", &self.shared.name)
            .field("delay", &self.shared.delay())
            .finish_non_exhaustive()
    }
}

impl<S: Clone, I: Clone> Layer<S> for HedgeLayer<I> {
    type Service = Hedge<S, I>;

    fn layer(&self, inner: S) -> Self::Service {
        Hedge {
            parts: Arc::new(Parts {
                template: inner.clone(),
                idempotency: self.idempotency.clone(),
                shared: self.shared.clone(),
            }),
            inner,
        }
    }
}

/// What a hedge needs from its service: a copy of the inner service to clone for the
/// second attempt, the idempotency policy, and the layer's shared state.
pub(crate) struct Parts<S, I> {
    pub(crate) template: S,
    idempotency: I,
    pub(crate) shared: Arc<Shared>,
}

/// The service [`HedgeLayer`] makes.
pub struct Hedge<S, I> {
    inner: S,
    parts: Arc<Parts<S, I>>,
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

impl<S, I> Hedge<S, I> {
    /// A handle reading the layer's counters and delay.
    #[must_use]
    pub fn handle(&self) -> HedgeHandle {
        HedgeHandle {
            shared: self.parts.shared.clone(),
        }
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

/// Reads a hedge layer's counters and its delay. Clones share them.
#[derive(Clone)]
pub struct HedgeHandle {
    shared: Arc<Shared>,
}

impl HedgeHandle {
    /// The delay after which a request sent now would be hedged: the fixed delay, or the
    /// learnt one (`None` until enough calls have been seen).
    #[must_use]
    pub fn delay(&self) -> Option<Duration> {
        self.shared.delay()
    }

    /// Hedges sent.
    #[must_use]
    pub fn sent(&self) -> u64 {
        self.shared.counters.sent.load(Ordering::Relaxed)
    }

    /// Hedges that answered before the first attempt.
    #[must_use]
    pub fn won(&self) -> u64 {
        self.shared.counters.won.load(Ordering::Relaxed)
    }

    /// Slow requests not hedged because the budget was spent.
    #[must_use]
    pub fn skipped_for_budget(&self) -> u64 {
        self.shared.counters.skipped_budget.load(Ordering::Relaxed)
    }

    /// Slow requests not hedged because a gate (an open breaker, a full limit) held it back.
    #[must_use]
    pub fn skipped_for_gate(&self) -> u64 {
        self.shared.counters.skipped_gate.load(Ordering::Relaxed)
    }

    /// Slow requests not hedged because their deadline left less time than the hedge delay.
    #[must_use]
    pub fn skipped_for_deadline(&self) -> u64 {
        self.shared
            .counters
            .skipped_deadline
            .load(Ordering::Relaxed)
    }

    /// The budget hedges are taken from.
    #[must_use]
    pub fn budget(&self) -> &Arc<RetryBudget> {
        &self.shared.budget
    }
}

impl fmt::Debug for HedgeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HedgeHandle")
            .field("name", &self.shared.name)
            .field("delay", &self.delay())
            .field("sent", &self.sent())
            .field("won", &self.won())
            .finish_non_exhaustive()
    }
}
