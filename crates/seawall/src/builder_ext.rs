//! Seawall's layers as methods on tower's `ServiceBuilder`.

use std::time::Duration;

use seawall_breaker::{AnyOf, CircuitBreakerLayer};
use seawall_classify::ClassifyLayer;
use seawall_limit::ConcurrencyLimitLayer;
use seawall_retry::RetryLayer;
use seawall_timeout::{AttemptTimeoutLayer, DeadlineLayer};
use tower::ServiceBuilder;
use tower_layer::Stack;

mod sealed {
    pub trait Sealed {}
    impl<L> Sealed for tower::ServiceBuilder<L> {}
}

/// Adds Seawall's layers to tower's `ServiceBuilder`, outermost first as usual.
///
/// tower's own `retry` and `concurrency_limit` methods keep their names (they take a policy
/// and a number), so Seawall's are `retry_with` and `limit_concurrency`.
///
/// The timeouts take a duration and so can fail: they come as `try_` methods returning a
/// [`ConfigError`](seawall_classify::ConfigError). The others take an already-built layer.
/// For the whole standard order at once, use [`StandardPipeline`](crate::StandardPipeline).
///
/// ```
/// use std::time::Duration;
/// use seawall::prelude::*;
/// use tower::ServiceBuilder;
///
/// # fn main() -> Result<(), seawall::ConfigError> {
/// let builder = ServiceBuilder::new()
///     .try_deadline(Duration::from_secs(30))?
///     .retry_with(RetryLayer::builder().build()?)
///     .circuit_breaker(CircuitBreakerLayer::builder().name("db").build()?)
///     .limit_concurrency(ConcurrencyLimitLayer::builder(10).build()?)
///     .try_attempt_timeout(Duration::from_secs(5))?
///     .classify(ClassifyLayer::new());
/// # let _ = builder;
/// # Ok(())
/// # }
/// ```
pub trait ServiceBuilderExt<L>: sealed::Sealed + Sized {
    /// Adds an end-to-end [`DeadlineLayer`] of `budget`.
    fn try_deadline(
        self,
        budget: Duration,
    ) -> Result<ServiceBuilder<Stack<DeadlineLayer, L>>, seawall_classify::ConfigError>;

    /// Adds an [`AttemptTimeoutLayer`] of `timeout`.
    fn try_attempt_timeout(
        self,
        timeout: Duration,
    ) -> Result<ServiceBuilder<Stack<AttemptTimeoutLayer, L>>, seawall_classify::ConfigError>;

    /// Adds a retry layer.
    fn retry_with<C>(self, layer: RetryLayer<C>) -> ServiceBuilder<Stack<RetryLayer<C>, L>>;

    /// Adds a circuit breaker.
    fn circuit_breaker<C>(
        self,
        layer: CircuitBreakerLayer<C, AnyOf>,
    ) -> ServiceBuilder<Stack<CircuitBreakerLayer<C, AnyOf>, L>>;

    /// Adds a concurrency limit.
    fn limit_concurrency<C>(
        self,
        layer: ConcurrencyLimitLayer<C>,
    ) -> ServiceBuilder<Stack<ConcurrencyLimitLayer<C>, L>>;

    /// Adds error classification (innermost, next to the client).
    fn classify<C, I>(
        self,
        layer: ClassifyLayer<C, I>,
    ) -> ServiceBuilder<Stack<ClassifyLayer<C, I>, L>>;
}

impl<L> ServiceBuilderExt<L> for ServiceBuilder<L> {
    fn try_deadline(
        self,
        budget: Duration,
    ) -> Result<ServiceBuilder<Stack<DeadlineLayer, L>>, seawall_classify::ConfigError> {
        Ok(self.layer(DeadlineLayer::try_new(budget)?))
    }

    fn try_attempt_timeout(
        self,
        timeout: Duration,
    ) -> Result<ServiceBuilder<Stack<AttemptTimeoutLayer, L>>, seawall_classify::ConfigError> {
        Ok(self.layer(AttemptTimeoutLayer::try_new(timeout)?))
    }

    fn retry_with<C>(self, layer: RetryLayer<C>) -> ServiceBuilder<Stack<RetryLayer<C>, L>> {
        self.layer(layer)
    }

    fn circuit_breaker<C>(
        self,
        layer: CircuitBreakerLayer<C, AnyOf>,
    ) -> ServiceBuilder<Stack<CircuitBreakerLayer<C, AnyOf>, L>> {
        self.layer(layer)
    }

    fn limit_concurrency<C>(
        self,
        layer: ConcurrencyLimitLayer<C>,
    ) -> ServiceBuilder<Stack<ConcurrencyLimitLayer<C>, L>> {
        self.layer(layer)
    }

    fn classify<C, I>(
        self,
        layer: ClassifyLayer<C, I>,
    ) -> ServiceBuilder<Stack<ClassifyLayer<C, I>, L>> {
        self.layer(layer)
    }
}
