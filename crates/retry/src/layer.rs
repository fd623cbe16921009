use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use seawall_classify::{ConfigError, DefaultClassifier, Policy};
use seawall_util::rng::AtomicSplitMix64;
use tower_layer::Layer;

use crate::handle::{Counters, RetryHandle};
use crate::service::Shared;
use crate::{Backoff, Retry, RetryBudget};

const LAYER: &str = "retry";

/// The most attempts accepted.
pub const MAX_ATTEMPTS: u32 = 100;

/// Applies [`Retry`] to services. Every service this layer builds, and every clone of them,
/// shares one budget.
///
/// ```
/// use std::time::Duration;
/// use seawall_retry::{Backoff, Jitter, RetryBudget, RetryLayer};
///
/// let retry = RetryLayer::builder()
///     .max_attempts(3)
///     .backoff(Backoff::exponential(Duration::from_millis(100)).max_delay(Duration::from_secs(5)))
///     .budget(RetryBudget::standard())
///     .build()
///     .unwrap();
/// ```
pub struct RetryLayer<C = DefaultClassifier> {
    shared: Arc<Shared<C>>,
}

impl RetryLayer {
    /// Starts configuring a retry layer. Defaults, each a usual production starting point:
    ///
    /// | option | default | why |
    /// |---|---|---|
    /// | `max_attempts` | 3 (two retries) | enough to ride out a blip; more multiplies load in an outage |
    /// | `backoff` | exponential from 100 ms, ×2, capped at 5 s, decorrelated jitter | spreads retries without long tails |
    /// | `budget` | 20 % of requests + 10 retries/s over 10 s | Finagle's, Linkerd's and tower's: caps amplification at 1.2× when everything fails |
    /// | classifier | [`DefaultClassifier`] | the shared vocabulary |
    /// | policy | [`Policy::STANDARD`] | retries `Retry` and `RetryAfter` hints only; never `Never` or `Rejected` |
    pub fn builder() -> RetryBuilder {
        RetryBuilder {
            max_attempts: 3,
            backoff: Backoff::exponential(Duration::from_millis(100))
                .max_delay(Duration::from_secs(5)),
            budget: Some(Arc::new(RetryBudget::standard())),
            classifier: DefaultClassifier,
            policy: Policy::STANDARD,
            seed: None,
            name: Arc::from("default"),
        }
    }
}

impl<C> RetryLayer<C> {
    /// A handle reading this layer's budget and counters.
    #[must_use]
    pub fn handle(&self) -> RetryHandle {
        RetryHandle {
            counters: self.shared.counters.clone(),
        }
    }
}

impl<C> Clone for RetryLayer<C> {
    fn clone(&self) -> Self {
        RetryLayer {
            shared: self.shared.clone(),
        }
    }
}

impl<C: fmt::Debug> fmt::Debug for RetryLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryLayer")
            .field("shared", &self.shared)
            .finish()
    }
}

impl<S, C> Layer<S> for RetryLayer<C> {
    type Service = Retry<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry::new(inner, self.shared.clone())
    }
}

/// Configures a [`RetryLayer`]; see [`RetryLayer::builder`].
#[must_use]
pub struct RetryBuilder<C = DefaultClassifier> {
    max_attempts: u32,
    backoff: Backoff,
    budget: Option<Arc<RetryBudget>>,
    classifier: C,
    policy: Policy,
    seed: Option<u64>,
    name: Arc<str>,
}

impl<C: fmt::Debug> fmt::Debug for RetryBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBuilder")
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("budget", &self.budget)
            .field("name", &self.name)
            .field("policy", &self.policy)
            .field("classifier", &self.classifier)
            .finish()
    }
}

impl<C> RetryBuilder<C> {
    /// Attempts per request in all, the first included (1 turns retrying off).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The delay schedule. Its `max_delay` is also the longest `Retry-After` a remote may ask
    /// for and be retried: a longer one is returned to the caller.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The budget, for this layer alone.
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(Arc::new(budget));
        self
    }

    /// A budget shared with other layers (all clients of one dependency, say).
    pub fn shared_budget(mut self, budget: Arc<RetryBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// No budget: only `max_attempts` limits retries. Not advised: in an outage every
    /// request then costs `max_attempts` calls.
    pub fn no_budget(mut self) -> Self {
        self.budget = None;
        self
    }

    /// The dependency this layer retries calls to: its retries and budget refusals are
    /// reported with `seawall.dependency` set to it (default `default`).
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Seeds the jitter, so that a test sees the same delays every run.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Which classes are retried: [`Policy::may_retry`] (default [`Policy::STANDARD`]). Give
    /// every layer of a pipeline the same policy.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Classifies outcomes with `classifier` (default [`DefaultClassifier`]).
    pub fn classifier<C2>(self, classifier: C2) -> RetryBuilder<C2> {
        RetryBuilder {
            max_attempts: self.max_attempts,
            backoff: self.backoff,
            budget: self.budget,
            classifier,
            policy: self.policy,
            seed: self.seed,
            name: self.name,
        }
    }

    /// Checks the configuration and builds the layer.
    pub fn build(self) -> Result<RetryLayer<C>, ConfigError> {
        if self.max_attempts == 0 || self.max_attempts > MAX_ATTEMPTS {
            return Err(ConfigError::new(
                LAYER,
                "max_attempts",
                format!("is {}, outside 1 to {MAX_ATTEMPTS}", self.max_attempts),
            ));
        }
        self.backoff.validate()?;
        let seed = self.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0x5EA_3A11, |d| d.as_nanos() as u64)
        });
        Ok(RetryLayer {
            shared: Arc::new(Shared {
                max_attempts: self.max_attempts,
                backoff: self.backoff,
                classifier: self.classifier,
                policy: self.policy,
                seeds: AtomicSplitMix64::new(seed),
                counters: Arc::new(Counters {
                    budget: self.budget,
                    retries: AtomicU64::new(0),
                    stopped_by_deadline: AtomicU64::new(0),
                }),
                name: self.name,
            }),
        })
    }
}
