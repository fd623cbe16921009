//! The built pipeline as one tower `Layer`: [`StandardLayer`].

use std::fmt;
use std::marker::PhantomData;

use seawall_breaker::{AnyOf, BreakerHandle, CircuitBreakerLayer};
use seawall_classify::{AssumeNotIdempotent, ClassifyLayer, DefaultClassifier, ResponsesOnly};
use seawall_limit::{ConcurrencyLimitLayer, LimitHandle};
use seawall_retry::{RetryHandle, RetryLayer};
use seawall_timeout::{AttemptTimeoutLayer, DeadlineLayer};
use tower_layer::Layer;

use super::service::{RetryMode, Standard, WithRetry};
use super::stage::stage;
use crate::trace::ClientSpanLayer;

/// The standard pipeline as one tower [`Layer`]; built by
/// [`StandardPipeline::build`](crate::StandardPipeline::build).
///
/// Every service it builds shares one breaker, one limit and one retry budget: build one per
/// dependency.
pub struct StandardLayer<C = DefaultClassifier, I = AssumeNotIdempotent, R = WithRetry> {
    pub(super) client_span: ClientSpanLayer<ResponsesOnly<C>>,
    pub(super) deadline: Option<DeadlineLayer>,
    pub(super) retry: Option<RetryLayer<ResponsesOnly<C>>>,
    pub(super) breaker: Option<CircuitBreakerLayer<ResponsesOnly<C>, AnyOf>>,
    pub(super) limit: Option<ConcurrencyLimitLayer<ResponsesOnly<C>>>,
    pub(super) attempt_timeout: Option<AttemptTimeoutLayer>,
    pub(super) classify: ClassifyLayer<C, I>,
    pub(super) mode: PhantomData<R>,
}

impl<C: Clone, I: Clone, R> Clone for StandardLayer<C, I, R> {
    fn clone(&self) -> Self {
        StandardLayer {
            client_span: self.client_span.clone(),
            deadline: self.deadline,
            retry: self.retry.clone(),
            breaker: self.breaker.clone(),
            limit: self.limit.clone(),
            attempt_timeout: self.attempt_timeout,
            classify: self.classify.clone(),
            mode: PhantomData,
        }
    }
}

impl<C: fmt::Debug, I, R> fmt::Debug for StandardLayer<C, I, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandardLayer")
            .field("deadline", &self.deadline)
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .field("limit", &self.limit)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("mode", &std::any::type_name::<R>())
            .finish()
    }
}

impl<C, I, R> StandardLayer<C, I, R> {
    /// The breaker's handle, if the pipeline has a breaker.
    #[must_use]
    pub fn breaker(&self) -> Option<BreakerHandle> {
        self.breaker.as_ref().map(CircuitBreakerLayer::handle)
    }

    /// The limit's handle, if the pipeline has a limit.
    #[must_use]
    pub fn limit(&self) -> Option<LimitHandle> {
        self.limit.as_ref().map(ConcurrencyLimitLayer::handle)
    }

    /// The retry layer's handle (its budget and counters), if the pipeline retries.
    #[must_use]
    pub fn retry(&self) -> Option<RetryHandle> {
        self.retry.as_ref().map(RetryLayer::handle)
    }
}

#[cfg(feature = "hedge")]
impl<C, I, R> StandardLayer<C, I, R> {
    /// Bounds a hedge around this pipeline by the pipeline's own parts: no hedge while its
    /// breaker is not closed or its limit is full or queues, and hedges withdrawn from its
    /// retry budget, so that retries and hedges together stay within one share of requests.
    /// Parts the pipeline does not have bound nothing.
    ///
    /// ```
    /// use seawall::classify::AssumeIdempotent;
    /// use seawall::hedge::HedgeLayer;
    /// use seawall::{StandardPipeline, WithDeadline};
    /// use tower::{Layer, service_fn};
    ///
    /// # fn main() -> Result<(), seawall::ConfigError> {
    /// let replica = service_fn(|key: WithDeadline<&'static str>| async move {
    ///     Ok::<_, std::io::Error>(key.into_inner().len())
    /// });
    /// let pipeline = StandardPipeline::redis(100).build()?;
    /// let hedge = pipeline.bound_hedge(HedgeLayer::builder(AssumeIdempotent)).build()?;
    /// let reads = hedge.layer(pipeline.layer(replica));
    /// # let _ = reads;
    /// # Ok(())
    /// # }
    /// ```
    pub fn bound_hedge<J>(
        &self,
        mut hedge: seawall_hedge::HedgeBuilder<J>,
    ) -> seawall_hedge::HedgeBuilder<J> {
        if let Some(breaker) = self.breaker() {
            hedge = hedge.gate(breaker);
        }
        if let Some(limit) = self.limit() {
            hedge = hedge.gate(limit);
        }
        if let Some(budget) = self.retry().and_then(|retry| retry.budget().cloned()) {
            hedge = hedge.shared_budget(budget);
        }
        hedge
    }
}

impl<S, C: Clone, I: Clone, R: RetryMode> Layer<S> for StandardLayer<C, I, R> {
    type Service = Standard<S, C, I, R>;

    fn layer(&self, client: S) -> Self::Service {
        let classified = self.classify.layer(client);
        let timed = stage(self.attempt_timeout.as_ref(), classified);
        let limited = stage(self.limit.as_ref(), timed);
        let guarded = stage(self.breaker.as_ref(), limited);
        let retried = R::wrap(self.retry.as_ref(), guarded);
        Standard::new(
            self.client_span
                .layer(stage(self.deadline.as_ref(), retried)),
        )
    }
}
