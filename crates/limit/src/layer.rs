use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use seawall_classify::{ConfigError, DefaultClassifier, Policy};
use tower_layer::Layer;

use crate::ConcurrencyLimit;
use crate::adaptive::LimitAlgorithm;
use crate::admission::Shared;
use crate::admission::queue::Discipline;
use crate::admission::queue::MAX_WAIT_LIMIT;
use crate::handle::LimitHandle;

const LAYER: &str = "concurrency limit";

/// The highest limit accepted.
pub const MAX_LIMIT: usize = usize::MAX >> 3;

/// The longest queue accepted.
pub const MAX_QUEUE: usize = 1 << 20;

/// Applies a [`ConcurrencyLimit`] to services. Every service this layer builds, and every
/// clone of them, shares one limit: build one layer per dependency.
///
/// ```
/// use std::time::Duration;
/// use seawall_classify::WithDeadline;
/// use seawall_limit::ConcurrencyLimitLayer;
/// use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), seawall_classify::BoxError> {
/// // As many in flight as the pool has connections; 20 more may wait up to 200 ms.
/// let limit = ConcurrencyLimitLayer::builder(5)
///     .queue(20)
///     .max_wait(Duration::from_millis(200))
///     .build()?;
/// let handle = limit.handle();
///
/// let mut client = ServiceBuilder::new()
///     .layer(limit)
///     .service(service_fn(|q: WithDeadline<&'static str>| async move {
///         Ok::<_, std::io::Error>(q.into_inner().len())
///     }));
/// let n = client.ready().await?.call(WithDeadline::new("SELECT 1")).await?;
/// assert_eq!(n, 8);
/// assert_eq!(handle.admitted(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ConcurrencyLimitLayer<C = DefaultClassifier> {
    shared: Arc<Shared>,
    classifier: C,
}

impl ConcurrencyLimitLayer {
    /// Starts configuring a limit of `max` calls in flight.
    ///
    /// Defaults: a queue as long as the limit (`queue = max`: one more round of work may
    /// wait) and `max_wait` of one second (longer than that, an immediate "overloaded" serves
    /// the caller better than a slow one).
    pub fn builder(max: usize) -> ConcurrencyLimitBuilder {
        ConcurrencyLimitBuilder {
            max,
            queue: max,
            max_wait: Duration::from_secs(1),
            discipline: Discipline::Fifo,
            algorithm: None,
            classifier: DefaultClassifier,
            policy: Policy::STANDARD,
        }
    }
}

impl<C> ConcurrencyLimitLayer<C> {
    /// A handle reading this limit's state.
    #[must_use]
    pub fn handle(&self) -> LimitHandle {
        LimitHandle {
            shared: self.shared.clone(),
        }
    }
}

impl<C> fmt::Debug for ConcurrencyLimitLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimitLayer")
            .field("max", &self.shared.max)
            .field("queue", &self.shared.queue)
            .field("max_wait", &self.shared.max_wait)
            .finish()
    }
}

impl<S, C: Clone> Layer<S> for ConcurrencyLimitLayer<C> {
    type Service = ConcurrencyLimit<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        ConcurrencyLimit::new(inner, self.classifier.clone(), self.shared.clone())
    }
}

/// Configures a [`ConcurrencyLimitLayer`]; see [`ConcurrencyLimitLayer::builder`].
#[derive(Clone)]
#[must_use]
pub struct ConcurrencyLimitBuilder<C = DefaultClassifier> {
    max: usize,
    queue: usize,
    max_wait: Duration,
    discipline: Discipline,
    algorithm: Option<Arc<dyn LimitAlgorithm>>,
    classifier: C,
    policy: Policy,
}

impl<C: fmt::Debug> fmt::Debug for ConcurrencyLimitBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimitBuilder")
            .field("max", &self.max)
            .field("queue", &self.queue)
            .field("max_wait", &self.max_wait)
            .field("discipline", &self.discipline)
            .field("algorithm", &self.algorithm)
            .field("policy", &self.policy)
            .field("classifier", &self.classifier)
            .finish()
    }
}

impl<C> ConcurrencyLimitBuilder<C> {
    /// Classifies outcomes with `classifier` (default [`DefaultClassifier`]); an adaptive
    /// limit learns from what it says, through the [`policy`](Self::policy).
    pub fn classifier<C2>(self, classifier: C2) -> ConcurrencyLimitBuilder<C2> {
        ConcurrencyLimitBuilder {
            max: self.max,
            queue: self.queue,
            max_wait: self.max_wait,
            discipline: self.discipline,
            algorithm: self.algorithm,
            classifier,
            policy: self.policy,
        }
    }

    /// What an outcome means to an adaptive algorithm: [`Policy::limit_sample`] (default
    /// [`Policy::STANDARD`]: faults are drops). Give every layer of a pipeline the same
    /// policy.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// How many calls may wait for a permit, in FIFO order. `0` refuses at once any call
    /// beyond `max`.
    pub fn queue(mut self, queue: usize) -> Self {
        self.queue = queue;
        self
    }

    /// How long a call may wait in the queue before it is refused. The request's deadline,
    /// when sooner, bounds the wait too.
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// How the queue orders its calls and when it sheds them (default [`Discipline::Fifo`]);
    /// [`Discipline::CONTROLLED_DELAY`] serves as many calls under a standing overload and
    /// answers the rest at once instead of at their deadline.
    pub fn discipline(mut self, discipline: Discipline) -> Self {
        self.discipline = discipline;
        self
    }

    /// Lets `algorithm` move the limit from what calls observe (see
    /// [`adaptive`](crate::adaptive)); the limit then starts at the algorithm's initial value
    /// and stays within its bounds, and `max` given to [`builder`](ConcurrencyLimitLayer::builder)
    /// is not used.
    pub fn adaptive(mut self, algorithm: impl LimitAlgorithm) -> Self {
        self.max = algorithm.bounds().1;
        self.algorithm = Some(Arc::new(algorithm));
        self
    }

    /// Checks the configuration and builds the layer.
    pub fn build(self) -> Result<ConcurrencyLimitLayer<C>, ConfigError> {
        if self.max == 0 {
            return Err(ConfigError::new(LAYER, "max", "must be at least 1"));
        }
        if self.max > MAX_LIMIT {
            return Err(ConfigError::new(
                LAYER,
                "max",
                format!("is {}, above the maximum of {MAX_LIMIT}", self.max),
            ));
        }
        let discipline = self.discipline.check(LAYER)?;
        if self.queue > MAX_QUEUE {
            return Err(ConfigError::new(
                LAYER,
                "queue",
                format!("is {}, above the maximum of {MAX_QUEUE}", self.queue),
            ));
        }
        if self.queue > 0 && self.max_wait.is_zero() {
            return Err(ConfigError::new(
                LAYER,
                "max_wait",
                "must be greater than zero when the queue is not empty (use queue(0) to refuse at once)",
            ));
        }
        if self.max_wait > MAX_WAIT_LIMIT {
            return Err(ConfigError::new(
                LAYER,
                "max_wait",
                format!(
                    "is {:?}, longer than the maximum of one hour",
                    self.max_wait
                ),
            ));
        }
        Ok(ConcurrencyLimitLayer {
            shared: Arc::new(Shared::new(
                self.max,
                self.queue,
                self.max_wait,
                discipline,
                self.algorithm,
                self.policy,
            )),
            classifier: self.classifier,
        })
    }
}
