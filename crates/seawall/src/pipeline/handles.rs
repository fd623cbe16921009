//! The built pipeline's handles: its breaker, limit and retry budget, and a hedge bounded by
//! them.

use seawall_breaker::{BreakerHandle, CircuitBreakerLayer};
use seawall_limit::{ConcurrencyLimitLayer, LimitHandle};
use seawall_retry::{RetryHandle, RetryLayer};

use super::stack::StandardLayer;

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
