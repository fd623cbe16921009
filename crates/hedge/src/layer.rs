//! The layer and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use seawall_classify::ConfigError;
use seawall_retry::RetryBudget;
use tower_layer::Layer;

use crate::latency::Delay;
use crate::latency::Latencies;
use crate::service::{Counters, Shared};

use crate::service::Parts;
use crate::{Hedge, HedgeGate, HedgeHandle};

const LAYER: &str = "hedge";

/// When a slow request is hedged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum DelaySetting {
    Fixed(Duration),
    Learnt {
        percentile: f64,
        window: Duration,
        min_samples: u64,
        floor: Duration,
    },
}

/// The longest hedge delay accepted.
pub const MAX_DELAY: Duration = Duration::from_secs(60 * 60);

/// Configures a [`HedgeLayer`]; see [`HedgeLayer::builder`].
#[must_use]
pub struct HedgeBuilder<I> {
    pub(crate) idempotency: I,
    pub(crate) delay: DelaySetting,
    pub(crate) budget: Arc<RetryBudget>,
    pub(crate) gates: Vec<Arc<dyn HedgeGate>>,
    pub(crate) name: Arc<str>,
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

/// Sends a second attempt of a slow idempotent request, and answers with whichever attempt
/// succeeds first; see the [crate documentation](crate).
pub struct HedgeLayer<I> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) idempotency: I,
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
