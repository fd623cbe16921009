//! The layer and its builder.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use seawall_classify::{Class, ConfigError, FailureKind, RetryHint};
use tokio::time::Instant;
use tower_layer::Layer;

use crate::proxy::Delay;
use crate::service::Shared;

use crate::{Chaos, ChaosHandle, ChaosStats};

const LAYER: &str = "chaos";

/// Injects faults into the calls of the service it wraps, with given probabilities, seeded
/// so the same calls get the same faults every run.
///
/// Each call independently: with probability `error` fails at once with [`InjectedFault`](crate::error::InjectedFault)
/// (of the configured class) without reaching the service; else with probability `hang`
/// never answers; else reaches the service, and with probability `latency` its answer is
/// delayed by the configured [`Delay`]. Faults can be limited to a window of time since the
/// layer was built, or to a range of call numbers.
///
/// ```
/// use std::time::Duration;
/// use seawall_chaos::{ChaosLayer, proxy::Delay};
/// use seawall_classify::{Class, FailureKind, RetryHint};
///
/// let chaos = ChaosLayer::builder()
///     .seed(7)
///     .error(0.1, Class::failure(FailureKind::Unavailable, RetryHint::Retry))
///     .latency(0.05, Delay::fixed(Duration::from_millis(200)))
///     .during(Duration::from_secs(10)..Duration::from_secs(20))
///     .build()
///     .unwrap();
/// ```
#[derive(Clone)]
pub struct ChaosLayer {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for ChaosLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChaosLayer")
            .field("error", &self.shared.error)
            .field("hang", &self.shared.hang)
            .field("latency", &self.shared.latency)
            .field("stats", &self.stats())
            .finish()
    }
}

impl ChaosLayer {
    /// Starts configuring a chaos layer that injects nothing yet.
    pub fn builder() -> ChaosBuilder {
        ChaosBuilder {
            error: 0.0,
            error_class: Class::failure(FailureKind::Internal, RetryHint::Retry),
            hang: 0.0,
            latency: 0.0,
            delay: Delay::default(),
            during: None,
            calls: None,
            seed: 0x5EA_3A11,
        }
    }

    /// What the layer's services did so far.
    #[must_use]
    pub fn stats(&self) -> ChaosStats {
        self.handle().stats()
    }

    /// A cheap handle reading what this layer's services did, for tests that hand the layer
    /// away.
    #[must_use]
    pub fn handle(&self) -> ChaosHandle {
        ChaosHandle {
            shared: self.shared.clone(),
        }
    }
}

impl<S> Layer<S> for ChaosLayer {
    type Service = Chaos<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Chaos {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// Configures a [`ChaosLayer`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ChaosBuilder {
    pub(crate) error: f64,
    pub(crate) error_class: Class,
    pub(crate) hang: f64,
    pub(crate) latency: f64,
    pub(crate) delay: Delay,
    pub(crate) during: Option<Range<Duration>>,
    pub(crate) calls: Option<Range<u64>>,
    pub(crate) seed: u64,
}

impl ChaosBuilder {
    /// Fails calls with probability `p`, with an [`InjectedFault`](crate::error::InjectedFault) of class `class`.
    pub fn error(mut self, p: f64, class: Class) -> Self {
        self.error = p;
        self.error_class = class;
        self
    }

    /// Never answers calls with probability `p`.
    pub fn hang(mut self, p: f64) -> Self {
        self.hang = p;
        self
    }

    /// Delays answers with probability `p` by `delay`.
    pub fn latency(mut self, p: f64, delay: Delay) -> Self {
        self.latency = p;
        self.delay = delay;
        self
    }

    /// Injects only during this window of time since the layer was built.
    pub fn during(mut self, window: Range<Duration>) -> Self {
        self.during = Some(window);
        self
    }

    /// Injects only into calls whose number (from 0) is in `calls`.
    pub fn calls(mut self, calls: Range<u64>) -> Self {
        self.calls = Some(calls);
        self
    }

    /// Seeds the random choices.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Checks the probabilities and builds the layer.
    pub fn build(self) -> Result<ChaosLayer, ConfigError> {
        for (field, p) in [
            ("error", self.error),
            ("hang", self.hang),
            ("latency", self.latency),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(ConfigError::new(
                    LAYER,
                    field,
                    format!("is {p}, not a probability in [0, 1]"),
                ));
            }
        }
        if self.error + self.hang > 1.0 {
            return Err(ConfigError::new(
                LAYER,
                "hang",
                "plus the error probability exceeds 1",
            ));
        }
        Ok(ChaosLayer {
            shared: Arc::new(Shared {
                error: self.error,
                error_class: self.error_class,
                hang: self.hang,
                latency: self.latency,
                delay: self.delay,
                during: self.during,
                calls_window: self.calls,
                start: Instant::now(),
                seed: self.seed,
                calls: AtomicU64::new(0),
                errors: AtomicU64::new(0),
                hangs: AtomicU64::new(0),
                delayed: AtomicU64::new(0),
            }),
        })
    }
}
