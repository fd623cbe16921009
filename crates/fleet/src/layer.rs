//! The two layers and their builders: [`RateLimitLayer`] and [`ConcurrencyBudgetLayer`].

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use seawall_classify::ConfigError;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tower_layer::Layer;

use crate::shared::Decisions;
use crate::shared::budget::{BUDGET_LAYER, BudgetShared, FleetBudget};
use crate::shared::gcra::Gcra;
use crate::shared::rate::{AllRequests, FleetRate, KeyState, RATE_LAYER, RateShared};
use crate::shared::store::Fleet;
use crate::{ConcurrencyBudget, RateLimit};

/// Configures a [`RateLimitLayer`]; see [`RateLimitLayer::builder`].
#[must_use]
pub struct RateLimitBuilder<F = AllRequests> {
    pub(crate) per_second: f64,
    pub(crate) burst: Option<u32>,
    pub(crate) key: F,
    pub(crate) fleet: Option<(Fleet, String)>,
    pub(crate) lease: Option<u32>,
    pub(crate) max_keys: usize,
}

impl<F> fmt::Debug for RateLimitBuilder<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitBuilder")
            .field("per_second", &self.per_second)
            .field("burst", &self.burst)
            .field("fleet", &self.fleet.as_ref().map(|(_, name)| name))
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl<F> RateLimitBuilder<F> {
    /// Calls admitted at once after a quiet spell (default: a tenth of a second's worth, at
    /// least 1).
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = Some(burst);
        self
    }

    /// One limit per key, the key read from each request by `key` (a closure
    /// `Fn(&Req) -> K`, `K: Hash + Display`; default: one limit for all requests).
    pub fn key<G>(self, key: G) -> RateLimitBuilder<G> {
        RateLimitBuilder {
            per_second: self.per_second,
            burst: self.burst,
            key,
            fleet: self.fleet,
            lease: self.lease,
            max_keys: self.max_keys,
        }
    }

    /// Keys remembered at most (default 100,000). At the bound, the keys that limit nothing
    /// any more (their schedule caught up with the present, no leased tokens or fleet
    /// refusal still good) are forgotten; while every remembered key is live, new keys share
    /// one overflow limit (at the same rate), so memory stays bounded under a flood of keys.
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// Makes the limit fleet-wide: every instance building a limit of this `name` on the same
    /// Redis shares one rate. While Redis cannot answer, each instance enforces its share
    /// (`rate / expected_replicas`) on its own.
    pub fn fleet(mut self, fleet: &Fleet, name: impl Into<String>) -> Self {
        self.fleet = Some((fleet.clone(), name.into()));
        self
    }

    /// Tokens an instance leases from Redis at a time (default: a quarter of the burst, at
    /// least 1): one Redis round trip per `lease` calls. A refusal from Redis is kept until
    /// its `retry_after`, so that refused calls do not ask Redis either. The cost in accuracy:
    /// leased tokens stay good for the time they stand for at the fleet's rate or the burst's
    /// window (`burst / rate`), whichever is longer, and unused ones are lost; over any
    /// interval the fleet admits at most `rate × interval + 2 × burst` calls, and may admit
    /// up to `lease - 1` fewer per instance than `rate × interval`.
    pub fn lease(mut self, tokens: u32) -> Self {
        self.lease = Some(tokens);
        self
    }

    /// Checks the settings and builds the layer.
    pub fn build(self) -> Result<RateLimitLayer<F>, ConfigError> {
        let burst = self
            .burst
            .unwrap_or_else(|| ((self.per_second / 10.0) as u32).max(1));
        let gcra = Gcra::new(RATE_LAYER, self.per_second, burst)?;
        if self.fleet.is_some() && self.per_second > 1_000_000.0 {
            return Err(ConfigError::new(
                RATE_LAYER,
                "rate",
                format!(
                    "is {} per second, more than a fleet-wide limit keeps (1,000,000: Redis schedules in microseconds)",
                    self.per_second
                ),
            ));
        }
        let lease = self.lease.unwrap_or((burst / 4).max(1));
        if lease == 0 || lease > burst {
            return Err(ConfigError::new(
                RATE_LAYER,
                "lease",
                format!("is {lease}, outside 1 to the burst ({burst})"),
            ));
        }
        if self.max_keys == 0 {
            return Err(ConfigError::new(RATE_LAYER, "max_keys", "is 0"));
        }
        let replicas = self.fleet.as_ref().map_or(1, |(f, _)| f.replicas());
        let all = KeyState::new(
            self.fleet
                .as_ref()
                .map(|(fleet, name)| fleet.key("rate", &format!("{name}:all"))),
        );
        let overflow = KeyState::new(
            self.fleet
                .as_ref()
                .map(|(fleet, name)| fleet.key("rate", &format!("{name}:overflow"))),
        );
        Ok(RateLimitLayer {
            shared: Arc::new(RateShared {
                all,
                gcra,
                local_share: gcra.share(replicas),
                base: Instant::now(),
                fleet: self
                    .fleet
                    .map(|(fleet, name)| FleetRate { fleet, name, lease }),
                keys: RwLock::default(),
                max_keys: self.max_keys,
                overflow,
                sweep_after: AtomicU64::new(0),
                decisions: Decisions::default(),
                fetches: AtomicU64::new(0),
            }),
            key: Arc::new(self.key),
        })
    }
}

/// Admits calls at a rate (GCRA: at most `burst` at once, then one per interval), per key if
/// given a key function, locally or fleet-wide; see the [crate documentation](crate).
pub struct RateLimitLayer<F = AllRequests> {
    pub(crate) shared: Arc<RateShared>,
    pub(crate) key: Arc<F>,
}

impl RateLimitLayer {
    /// A limit of `per_second` calls a second, for every request together until
    /// [`key`](RateLimitBuilder::key) says otherwise.
    pub fn builder(per_second: f64) -> RateLimitBuilder {
        RateLimitBuilder {
            per_second,
            burst: None,
            key: AllRequests,
            fleet: None,
            lease: None,
            max_keys: 100_000,
        }
    }
}

impl<F> Clone for RateLimitLayer<F> {
    fn clone(&self) -> Self {
        RateLimitLayer {
            shared: self.shared.clone(),
            key: self.key.clone(),
        }
    }
}

impl<F> fmt::Debug for RateLimitLayer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("interval", &Duration::from_nanos(self.shared.gcra.interval))
            .field("fleet", &self.shared.fleet.as_ref().map(|f| &f.name))
            .finish_non_exhaustive()
    }
}

impl<S, F> Layer<S> for RateLimitLayer<F> {
    type Service = RateLimit<S, F>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            shared: self.shared.clone(),
            key: self.key.clone(),
        }
    }
}

/// Configures a [`ConcurrencyBudgetLayer`]; see [`ConcurrencyBudgetLayer::builder`].
#[derive(Debug)]
#[must_use]
pub struct ConcurrencyBudgetBuilder {
    pub(crate) max: u32,
    pub(crate) fleet: Option<(Fleet, String)>,
    pub(crate) lease: Duration,
}

impl ConcurrencyBudgetBuilder {
    /// Makes the budget fleet-wide: every instance building a budget of this `name` on the
    /// same Redis shares the `max` calls in flight. While Redis cannot answer, each instance
    /// allows its share (`max / expected_replicas`, at least 1) on its own.
    pub fn fleet(mut self, fleet: &Fleet, name: impl Into<String>) -> Self {
        self.fleet = Some((fleet.clone(), name.into()));
        self
    }

    /// How long a permit lives on Redis unless its holder renews it (default 5 s; 300 ms to
    /// 10 minutes). The holder renews every third of it while the call runs; a crashed
    /// instance's permits return within it.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Checks the settings and builds the layer.
    pub fn build(self) -> Result<ConcurrencyBudgetLayer, ConfigError> {
        if self.max == 0 {
            return Err(ConfigError::new(
                BUDGET_LAYER,
                "max",
                "is 0: no call could ever run",
            ));
        }
        if self.lease < Duration::from_millis(300) || self.lease > Duration::from_secs(600) {
            return Err(ConfigError::new(
                BUDGET_LAYER,
                "lease",
                format!("is {:?}, outside 300 ms to 10 minutes", self.lease),
            ));
        }
        let local = match &self.fleet {
            Some((fleet, _)) => (self.max / fleet.replicas()).max(1),
            None => self.max,
        };
        Ok(ConcurrencyBudgetLayer {
            shared: Arc::new(BudgetShared {
                max: self.max,
                local: Arc::new(Semaphore::new(local as usize)),
                fleet: self.fleet.map(|(fleet, name)| FleetBudget {
                    key: fleet.key("budget", &name),
                    fleet,
                    lease: self.lease,
                    held: Mutex::default(),
                    released: Mutex::default(),
                    wake: Arc::new(Notify::new()),
                    renewer: AtomicBool::new(false),
                    writes: AtomicU64::new(0),
                }),
                decisions: Decisions::default(),
            }),
        })
    }
}

/// At most `max` calls in flight, on this instance or across a fleet; a call over the budget
/// is refused at once. See the [crate documentation](crate).
#[derive(Clone)]
pub struct ConcurrencyBudgetLayer {
    pub(crate) shared: Arc<BudgetShared>,
}

impl ConcurrencyBudgetLayer {
    /// A budget of `max` calls in flight, on this instance until
    /// [`fleet`](ConcurrencyBudgetBuilder::fleet) says otherwise.
    pub fn builder(max: u32) -> ConcurrencyBudgetBuilder {
        ConcurrencyBudgetBuilder {
            max,
            fleet: None,
            lease: Duration::from_secs(5),
        }
    }
}

impl fmt::Debug for ConcurrencyBudgetLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyBudgetLayer")
            .field("max", &self.shared.max)
            .field("fleet", &self.shared.fleet.as_ref().map(|f| &f.key))
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for ConcurrencyBudgetLayer {
    type Service = ConcurrencyBudget<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConcurrencyBudget {
            inner,
            shared: self.shared.clone(),
        }
    }
}
