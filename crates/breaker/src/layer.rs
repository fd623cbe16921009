use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use seawall_classify::{ConfigError, DefaultClassifier, Policy};
use tower_layer::Layer;

use crate::CircuitBreaker;
use crate::gate::probe::Probe;
use crate::gate::{Gate, GateConfig};
use crate::handle::BreakerHandle;
use crate::trip::any_of::AnyOf;
use crate::trip::window::{CountWindow, TimeWindow};
use crate::trip::{ConsecutiveFaults, TripPolicy};

const LAYER: &str = "circuit breaker";

/// The longest open period accepted.
pub const MAX_OPEN_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// Applies a [`CircuitBreaker`] to services. Every service this layer builds, and every clone
/// of them, shares one breaker: build one layer per dependency.
///
/// ```
/// use std::time::Duration;
/// use seawall_breaker::{CircuitBreakerLayer, CountWindow};
///
/// let breaker = CircuitBreakerLayer::builder()
///     .name("postgres")
///     .consecutive_faults(5)
///     .count_window(CountWindow::new(100).min_calls(20).failure_rate(0.5))
///     .open_duration(Duration::from_secs(5))
///     .max_open_duration(Duration::from_secs(60))
///     .build()
///     .unwrap();
/// let handle = breaker.handle(); // state, stats, force_open, reset, disable
/// ```
pub struct CircuitBreakerLayer<C = DefaultClassifier, P = AnyOf> {
    gate: Arc<Gate<P>>,
    classifier: C,
}

impl CircuitBreakerLayer {
    /// Starts configuring a breaker. Defaults, each the usual production starting point:
    ///
    /// | option | default | why |
    /// |---|---|---|
    /// | trip policy | 5 consecutive faults | what most teams start with; add a window for busy dependencies |
    /// | `open_duration` | 5 s | long enough for a restart to begin, short enough to notice recovery |
    /// | `max_open_duration` | 60 s | a failing probe doubles the wait up to this |
    /// | `jitter` | 0.1 | open periods shortened by up to 10 %, so instances do not probe in lockstep |
    /// | `permitted_probes` | 1 | one probe per open period, like Polly; raise it for high-traffic dependencies |
    /// | faults | [`Policy::STANDARD`] | `Invalid`, `Rejected`, `Contention` and cancellations do not count |
    pub fn builder() -> CircuitBreakerBuilder {
        CircuitBreakerBuilder {
            name: Arc::from("default"),
            consecutive: None,
            count: None,
            time: None,
            open_base: Duration::from_secs(5),
            open_max: Duration::from_secs(60),
            jitter: 0.1,
            probes: 1,
            slow_call: None,
            policy: Policy::STANDARD,
            seed: None,
            probe: None,
            classifier: DefaultClassifier,
        }
    }
}

impl<C, P: TripPolicy + fmt::Debug> CircuitBreakerLayer<C, P> {
    /// A handle reading and steering this breaker.
    #[must_use]
    pub fn handle(&self) -> BreakerHandle {
        BreakerHandle {
            control: self.gate.clone(),
        }
    }
}

impl<C> CircuitBreakerLayer<C, AnyOf> {
    /// The length of the time window, if the breaker has one (for validating it against
    /// attempt timeouts).
    #[must_use]
    pub fn time_window_length(&self) -> Option<Duration> {
        self.gate.policy.time_window_length()
    }

    /// The slow-call threshold, if the breaker has one (for validating it against attempt
    /// timeouts).
    #[must_use]
    pub fn slow_call_threshold(&self) -> Option<Duration> {
        self.gate.config.slow_call
    }
}

impl<C: Clone, P> Clone for CircuitBreakerLayer<C, P> {
    fn clone(&self) -> Self {
        CircuitBreakerLayer {
            gate: self.gate.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

impl<C: fmt::Debug, P: fmt::Debug> fmt::Debug for CircuitBreakerLayer<C, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("gate", &self.gate)
            .field("classifier", &self.classifier)
            .finish()
    }
}

impl<S, C: Clone, P: TripPolicy> Layer<S> for CircuitBreakerLayer<C, P> {
    type Service = CircuitBreaker<S, C, P>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker::new(inner, self.gate.clone(), self.classifier.clone())
    }
}

/// Configures a [`CircuitBreakerLayer`]; see [`CircuitBreakerLayer::builder`].
#[must_use]
pub struct CircuitBreakerBuilder<C = DefaultClassifier> {
    name: Arc<str>,
    consecutive: Option<u32>,
    count: Option<CountWindow>,
    time: Option<TimeWindow>,
    open_base: Duration,
    open_max: Duration,
    jitter: f64,
    probes: u16,
    slow_call: Option<Duration>,
    policy: Policy,
    seed: Option<u64>,
    probe: Option<Probe>,
    classifier: C,
}

impl<C: fmt::Debug> fmt::Debug for CircuitBreakerBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerBuilder")
            .field("name", &self.name)
            .field("consecutive", &self.consecutive)
            .field("count", &self.count)
            .field("time", &self.time)
            .field("open_base", &self.open_base)
            .field("open_max", &self.open_max)
            .field("jitter", &self.jitter)
            .field("probes", &self.probes)
            .field("slow_call", &self.slow_call)
            .field("policy", &self.policy)
            .field("probe", &self.probe)
            .field("classifier", &self.classifier)
            .finish()
    }
}

impl<C> CircuitBreakerBuilder<C> {
    /// The breaker's name, for errors, telemetry and admin endpoints.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Opens after `threshold` faults in a row.
    pub fn consecutive_faults(mut self, threshold: u32) -> Self {
        self.consecutive = Some(threshold);
        self
    }

    /// Opens when a rate over the last N calls is reached.
    pub fn count_window(mut self, window: CountWindow) -> Self {
        self.count = Some(window);
        self
    }

    /// Opens when a rate over the last T of time is reached.
    pub fn time_window(mut self, window: TimeWindow) -> Self {
        self.time = Some(window);
        self
    }

    /// How long the breaker stays open the first time.
    pub fn open_duration(mut self, duration: Duration) -> Self {
        self.open_base = duration;
        self
    }

    /// The longest open period, however many probes failed in a row.
    pub fn max_open_duration(mut self, duration: Duration) -> Self {
        self.open_max = duration;
        self
    }

    /// Shortens each open period by a random share of up to `jitter`, in [0, 1).
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// How many probes may be in flight while half-open; that many successes close it.
    pub fn permitted_probes(mut self, probes: u16) -> Self {
        self.probes = probes;
        self
    }

    /// Calls at least this slow count as slow, for windows with a slow-call rate.
    pub fn slow_call_threshold(mut self, threshold: Duration) -> Self {
        self.slow_call = Some(threshold);
        self
    }

    /// An active check of the dependency, run in the background while the breaker is open:
    /// its first success ends the open period (see [`Probe`]). Without one, the open period's
    /// timer admits the next call as the probe.
    pub fn probe(mut self, probe: Probe) -> Self {
        self.probe = Some(probe);
        self
    }

    /// Which classes count as faults: [`Policy::is_fault`] (default [`Policy::STANDARD`]).
    /// Give every layer of a pipeline the same policy.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Seeds the jitter, so tests are exact.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Classifies outcomes with `classifier` (default [`DefaultClassifier`]).
    pub fn classifier<C2>(self, classifier: C2) -> CircuitBreakerBuilder<C2> {
        CircuitBreakerBuilder {
            name: self.name,
            consecutive: self.consecutive,
            count: self.count,
            time: self.time,
            open_base: self.open_base,
            open_max: self.open_max,
            jitter: self.jitter,
            probes: self.probes,
            slow_call: self.slow_call,
            policy: self.policy,
            seed: self.seed,
            probe: self.probe,
            classifier,
        }
    }

    /// Checks the configuration and builds the layer with the configured policies (5
    /// consecutive faults when none is configured).
    pub fn build(mut self) -> Result<CircuitBreakerLayer<C, AnyOf>, ConfigError> {
        if self.consecutive.is_none() && self.count.is_none() && self.time.is_none() {
            self.consecutive = Some(5);
        }
        if self.consecutive == Some(0) {
            return Err(ConfigError::new(
                LAYER,
                "consecutive_faults",
                "must be at least 1",
            ));
        }
        let uses_slow = self
            .count
            .as_ref()
            .is_some_and(CountWindow::uses_slow_calls)
            || self.time.as_ref().is_some_and(TimeWindow::uses_slow_calls);
        if uses_slow && self.slow_call.is_none() {
            return Err(ConfigError::new(
                LAYER,
                "slow_call_threshold",
                "must be set when a window has a slow-call rate",
            ));
        }
        if let Some(window) = &self.count {
            window.validate()?;
        }
        if let Some(window) = &self.time {
            window.validate()?;
        }
        let policy = AnyOf::new(
            self.consecutive.map(ConsecutiveFaults::new),
            self.count.take(),
            self.time.take(),
        );
        self.build_with_policy(policy)
    }

    /// Checks the configuration and builds the layer driven by a policy of your own; the
    /// windows and thresholds set on this builder are not used.
    pub fn build_with_policy<P: TripPolicy>(
        self,
        policy: P,
    ) -> Result<CircuitBreakerLayer<C, P>, ConfigError> {
        if self.open_base.is_zero() || self.open_base > MAX_OPEN_DURATION {
            return Err(ConfigError::new(
                LAYER,
                "open_duration",
                format!("is {:?}, outside (0, 24 h]", self.open_base),
            ));
        }
        if self.open_max < self.open_base || self.open_max > MAX_OPEN_DURATION {
            return Err(ConfigError::new(
                LAYER,
                "max_open_duration",
                format!(
                    "is {:?}, must be between open_duration ({:?}) and 24 h",
                    self.open_max, self.open_base
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(ConfigError::new(
                LAYER,
                "jitter",
                format!("is {}, outside [0, 1)", self.jitter),
            ));
        }
        if self.probes == 0 {
            return Err(ConfigError::new(
                LAYER,
                "permitted_probes",
                "must be at least 1",
            ));
        }
        if let Some(probe) = &self.probe {
            probe.validate()?;
        }
        if self.slow_call.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::new(
                LAYER,
                "slow_call_threshold",
                "must be greater than zero",
            ));
        }
        let seed = self.seed.unwrap_or_else(|| {
            // Distinct per breaker and per process; exactness only matters with a seed.
            let address = &self as *const Self as u64;
            let time = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            address ^ time.rotate_left(17)
        });
        let config = GateConfig {
            name: self.name,
            open_base: self.open_base,
            open_max: self.open_max,
            jitter: self.jitter,
            probes: self.probes,
            slow_call: self.slow_call,
            policy: self.policy,
            seed,
        };
        Ok(CircuitBreakerLayer {
            gate: Gate::new(config, policy, self.probe),
            classifier: self.classifier,
        })
    }
}
