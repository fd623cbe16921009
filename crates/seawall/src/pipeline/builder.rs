//! The pipeline's configuration and its presets.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use seawall_breaker::CircuitBreakerBuilder;
use seawall_classify::{
    AssumeNotIdempotent, ClassifyLayer, ConfigError, DefaultClassifier, Policy, ResponsesOnly,
};
use seawall_limit::ConcurrencyLimitBuilder;
use seawall_retry::RetryBuilder;
use seawall_timeout::{AttemptTimeoutLayer, DeadlineLayer};

use super::stack::StandardLayer;
use super::stage::{NoRetry, WithRetry};
use crate::trace::{ClientSpanConfig, ClientSpanLayer};

const LAYER: &str = "standard pipeline";

/// Configures the standard pipeline; see the [crate docs](crate) for the order and why.
///
/// Start from a preset ([`postgres`](Self::postgres), [`redis`](Self::redis),
/// [`http`](Self::http)) or from [`new`](Self::new), change what you need, and
/// [`build`](Self::build). Every part can be replaced (`.retry(builder)`) or switched off
/// (`.no_retry()`). One classifier and one [`Policy`] configure every layer.
///
/// The last type parameter says whether the pipeline retries ([`WithRetry`], the presets, or
/// [`NoRetry`] after [`no_retry`](Self::no_retry)): only a retrying pipeline needs a `Clone`
/// request.
#[must_use]
pub struct StandardPipeline<C = DefaultClassifier, I = AssumeNotIdempotent, R = WithRetry> {
    // The stages, outer to inner (as in stack.rs), then what every stage shares.
    pub(super) client_span: Option<ClientSpanConfig>,
    pub(super) deadline: Option<Duration>,
    pub(super) retry: Option<RetryBuilder>,
    pub(super) breaker: Option<CircuitBreakerBuilder>,
    pub(super) limit: Option<ConcurrencyLimitBuilder>,
    pub(super) attempt_timeout: Option<Duration>,
    pub(super) classifier: C,
    pub(super) idempotency: I,
    pub(super) policy: Policy,
    pub(super) mode: PhantomData<R>,
}

impl<C: fmt::Debug, I, R> fmt::Debug for StandardPipeline<C, I, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandardPipeline")
            .field("client_span", &self.client_span)
            .field("deadline", &self.deadline)
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .field("limit", &self.limit)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("classifier", &self.classifier)
            .field("policy", &self.policy)
            .finish()
    }
}

impl<C, I, R> StandardPipeline<C, I, R> {
    /// The end-to-end budget of each request, retries and waits included.
    pub fn deadline(mut self, budget: Duration) -> Self {
        self.deadline = Some(budget);
        self
    }

    /// No deadline layer: requests are bounded only by a deadline they already carry.
    pub fn no_deadline(mut self) -> Self {
        self.deadline = None;
        self
    }

    /// The retry configuration (its classifier and policy are replaced by the pipeline's).
    pub fn retry(self, retry: RetryBuilder) -> StandardPipeline<C, I, WithRetry> {
        StandardPipeline {
            retry: Some(retry),
            ..self.into_mode()
        }
    }

    /// No retries: the pipeline then wraps clients whose requests are not `Clone`.
    pub fn no_retry(self) -> StandardPipeline<C, I, NoRetry> {
        StandardPipeline {
            retry: None,
            ..self.into_mode()
        }
    }

    fn into_mode<R2>(self) -> StandardPipeline<C, I, R2> {
        self.remake(|classifier, idempotency| (classifier, idempotency))
    }

    /// The same configuration with the classifier and the idempotency policy that `parts`
    /// makes of the current ones, in any retry mode.
    fn remake<C2, I2, R2>(
        self,
        parts: impl FnOnce(C, I) -> (C2, I2),
    ) -> StandardPipeline<C2, I2, R2> {
        let (classifier, idempotency) = parts(self.classifier, self.idempotency);
        StandardPipeline {
            client_span: self.client_span,
            deadline: self.deadline,
            retry: self.retry,
            breaker: self.breaker,
            limit: self.limit,
            attempt_timeout: self.attempt_timeout,
            classifier,
            idempotency,
            policy: self.policy,
            mode: PhantomData,
        }
    }

    /// What each call's client span says about the dependency (the presets name the
    /// database: [`ClientSpanConfig::postgresql`], [`ClientSpanConfig::redis`]; add its address and
    /// namespace). See [`trace`](crate::trace).
    pub fn client_span(mut self, span: ClientSpanConfig) -> Self {
        self.client_span = Some(span);
        self
    }

    /// No client span: the layers' events go to the caller's span.
    pub fn no_client_span(mut self) -> Self {
        self.client_span = None;
        self
    }

    /// The breaker configuration (its classifier and policy are replaced by the pipeline's).
    pub fn circuit_breaker(mut self, breaker: CircuitBreakerBuilder) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// An active check of the dependency for the breaker, run in the background while it is
    /// open: its first success ends the open period, so service resumes within a probe
    /// interval of the dependency's return (see [`Probe`](seawall_breaker::Probe)).
    pub fn probe(mut self, probe: seawall_breaker::Probe) -> Self {
        self.breaker = self.breaker.map(|breaker| breaker.probe(probe));
        self
    }

    /// No circuit breaker.
    pub fn no_circuit_breaker(mut self) -> Self {
        self.breaker = None;
        self
    }

    /// The concurrency limit configuration (its classifier and policy are replaced by the
    /// pipeline's).
    pub fn concurrency_limit(mut self, limit: ConcurrencyLimitBuilder) -> Self {
        self.limit = Some(limit);
        self
    }

    /// No concurrency limit.
    pub fn no_concurrency_limit(mut self) -> Self {
        self.limit = None;
        self
    }

    /// The bound on each attempt (shortened further by the time left before the deadline).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// No attempt timeout: attempts are bounded only by the deadline.
    pub fn no_attempt_timeout(mut self) -> Self {
        self.attempt_timeout = None;
        self
    }

    /// Seeds the jitter of the retry and the breaker, so that simulations and tests repeat
    /// exactly. (Without it each layer seeds itself from the clock.)
    pub fn seed(mut self, seed: u64) -> Self {
        self.retry = self.retry.map(|retry| retry.seed(seed));
        self.breaker = self
            .breaker
            .map(|breaker| breaker.seed(seed.rotate_left(32) ^ 0x0B4E_ACE4));
        self
    }

    /// The classifier every layer reads: the innermost classification asks it about the
    /// client's responses and errors; the retry, breaker and limit read an error's class as
    /// classified and ask it about responses only
    /// ([`ResponsesOnly`](seawall_classify::ResponsesOnly)).
    pub fn classifier<C2>(self, classifier: C2) -> StandardPipeline<C2, I, R> {
        self.remake(|_, idempotency| (classifier, idempotency))
    }

    /// What each class means to the retry, the breaker and an adaptive limit (default
    /// [`Policy::STANDARD`]); every layer gets this one policy.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Which requests survive a lost connection (see
    /// [`Idempotency`](seawall_classify::Idempotency)).
    pub fn idempotency<I2>(self, idempotency: I2) -> StandardPipeline<C, I2, R> {
        self.remake(|classifier, _| (classifier, idempotency))
    }

    /// Checks the whole configuration and builds the layer. Fails, naming the field, on a
    /// configuration that cannot work: any part's own errors (zero attempts, a zero limit, a
    /// window smaller than its minimum calls...), an attempt timeout longer than the
    /// deadline, or a breaker time window shorter than two attempt timeouts (it could open on
    /// a single slow attempt's worth of data).
    pub fn build(self) -> Result<StandardLayer<C, I, R>, ConfigError>
    where
        C: Clone,
    {
        let above = ResponsesOnly::new(self.classifier.clone());
        let above_span = above.clone();
        if let (Some(deadline), Some(attempt)) = (self.deadline, self.attempt_timeout)
            && attempt > deadline
        {
            return Err(ConfigError::new(
                LAYER,
                "attempt_timeout",
                format!("is {attempt:?}, longer than the whole deadline of {deadline:?}"),
            ));
        }
        let deadline = self.deadline.map(DeadlineLayer::try_new).transpose()?;
        let attempt_timeout = self
            .attempt_timeout
            .map(AttemptTimeoutLayer::try_new)
            .transpose()?;
        let retry = self
            .retry
            .map(|retry| {
                let retry = retry.classifier(above.clone()).policy(self.policy);
                match &self.client_span {
                    // The dependency's name, as the client span and its metric give it.
                    Some(span) => retry.name(span.dependency_name()),
                    None => retry,
                }
                .build()
            })
            .transpose()?;
        let breaker = self
            .breaker
            .map(|breaker| {
                breaker
                    .classifier(above.clone())
                    .policy(self.policy)
                    .build()
            })
            .transpose()?;
        if let (Some(breaker), Some(attempt)) = (&breaker, self.attempt_timeout)
            && let Some(window) = breaker.time_window_length()
            && window < attempt * 2
        {
            return Err(ConfigError::new(
                LAYER,
                "circuit_breaker.time_window",
                format!(
                    "is {window:?}, shorter than two attempt timeouts ({:?})",
                    attempt * 2
                ),
            ));
        }
        // Every attempt ends by its timeout (or sooner, by the caller's deadline): a call
        // slower than that is never seen, so such a threshold would never count one.
        if let (Some(breaker), Some(attempt)) = (&breaker, self.attempt_timeout)
            && let Some(threshold) = breaker.slow_call_threshold()
            && threshold >= attempt
        {
            return Err(ConfigError::new(
                LAYER,
                "circuit_breaker.slow_call_threshold",
                format!(
                    "is {threshold:?}, not shorter than the attempt timeout ({attempt:?}): no call could be slow"
                ),
            ));
        }
        let limit = self
            .limit
            .map(|limit| limit.classifier(above).policy(self.policy).build())
            .transpose()?;
        let client_span = match self.client_span {
            Some(span) => ClientSpanLayer::new(span).classifier(above_span),
            None => ClientSpanLayer::off(above_span),
        };
        Ok(StandardLayer {
            client_span,
            deadline,
            retry,
            breaker,
            limit,
            attempt_timeout,
            classify: ClassifyLayer::new()
                .classifier(self.classifier)
                .idempotency(self.idempotency),
            mode: PhantomData,
        })
    }
}
