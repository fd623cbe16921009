//! The standard pipeline: `Deadline -> Retry -> Breaker -> Limit -> AttemptTimeout ->
//! Classify -> client`, built and validated in one call.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use seawall_breaker::{AnyOf, BreakerHandle, CircuitBreaker, CircuitBreakerLayer, CountWindow};
use seawall_classify::{
    AssumeNotIdempotent, BoxError, Class, Classify, ClassifyLayer, ConfigError, DefaultClassifier,
    Error, known_class,
};
use seawall_limit::{ConcurrencyLimit, ConcurrencyLimitLayer, LimitHandle};
use seawall_retry::{Backoff, Jitter, Retry, RetryBudget, RetryLayer};
use seawall_timeout::{AttemptTimeout, AttemptTimeoutLayer, Deadline, DeadlineLayer};
use tower::util::Either;
use tower_layer::Layer;
use tower_service::Service;

const LAYER: &str = "standard pipeline";

/// Configures the standard pipeline; see the [crate docs](crate) for the order and why.
///
/// Start from a preset ([`postgres`](Self::postgres), [`redis`](Self::redis),
/// [`http`](Self::http)) or from [`new`](Self::new), change what you need, and
/// [`build`](Self::build). Every part can be replaced (`.retry(builder)`) or switched off
/// (`.no_retry()`).
#[must_use]
pub struct StandardPipeline<C = DefaultClassifier, I = AssumeNotIdempotent> {
    deadline: Option<Duration>,
    retry: Option<seawall_retry::Builder>,
    breaker: Option<seawall_breaker::Builder>,
    limit: Option<seawall_limit::Builder>,
    attempt_timeout: Option<Duration>,
    classifier: C,
    idempotency: I,
}

impl<C: fmt::Debug, I> fmt::Debug for StandardPipeline<C, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandardPipeline")
            .field("deadline", &self.deadline)
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .field("limit", &self.limit)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("classifier", &self.classifier)
            .finish()
    }
}

impl StandardPipeline {
    /// The general defaults, for a dependency whose client can run `max_in_flight` calls at
    /// once (its pool size). See the table in the [crate docs](crate#defaults).
    pub fn new(name: &str, max_in_flight: usize) -> Self {
        StandardPipeline {
            deadline: Some(Duration::from_secs(30)),
            retry: Some(
                RetryLayer::builder()
                    .max_attempts(3)
                    .backoff(
                        Backoff::exponential(Duration::from_millis(100))
                            .max_delay(Duration::from_secs(5))
                            .jitter(Jitter::Decorrelated),
                    )
                    .budget(RetryBudget::standard()),
            ),
            breaker: Some(
                CircuitBreakerLayer::builder()
                    .name(name)
                    .consecutive_faults(5)
                    .count_window(CountWindow::new(100).min_calls(20).failure_rate(0.5))
                    .open_duration(Duration::from_secs(1))
                    .max_open_duration(Duration::from_secs(5)),
            ),
            limit: Some(
                ConcurrencyLimitLayer::builder(max_in_flight)
                    .queue(max_in_flight.saturating_mul(2))
                    .max_wait(Duration::from_secs(1)),
            ),
            attempt_timeout: Some(Duration::from_secs(5)),
            classifier: DefaultClassifier,
            idempotency: AssumeNotIdempotent,
        }
    }

    /// PostgreSQL through a pool of `pool_size` connections: the limit is the pool, so the
    /// pool itself never waits; 5 s per attempt (a query), 30 s per request; retries from
    /// 50 ms (a restarted server accepts connections within a second or two).
    pub fn postgres(pool_size: usize) -> Self {
        let mut pipeline = Self::new("postgres", pool_size);
        pipeline.retry = pipeline.retry.map(|retry| {
            retry.backoff(
                Backoff::exponential(Duration::from_millis(50)).max_delay(Duration::from_secs(2)),
            )
        });
        pipeline
    }

    /// Redis over a multiplexed connection: many calls in flight (`max_in_flight`), each
    /// fast: 500 ms per attempt, 2 s per request, retries from 10 ms capped at 200 ms, a
    /// short queue (a cache that cannot answer quickly is better skipped).
    pub fn redis(max_in_flight: usize) -> Self {
        let mut pipeline = Self::new("redis", max_in_flight);
        pipeline.deadline = Some(Duration::from_secs(2));
        pipeline.attempt_timeout = Some(Duration::from_millis(500));
        pipeline.retry = pipeline.retry.map(|retry| {
            retry.backoff(
                Backoff::exponential(Duration::from_millis(10))
                    .max_delay(Duration::from_millis(200)),
            )
        });
        pipeline.limit = Some(
            ConcurrencyLimitLayer::builder(max_in_flight)
                .queue(max_in_flight)
                .max_wait(Duration::from_millis(100)),
        );
        pipeline
    }
}

#[cfg(feature = "http")]
impl StandardPipeline<seawall_classify::HttpClassifier, seawall_classify::HttpIdempotency> {
    /// An HTTP upstream: responses classified by status and `Retry-After`, lost connections
    /// retried for idempotent methods and keyed requests only; 10 s per attempt, 30 s per
    /// request.
    pub fn http(name: &str, max_in_flight: usize) -> Self {
        let mut pipeline = StandardPipeline::new(name, max_in_flight)
            .classifier(seawall_classify::HttpClassifier)
            .idempotency(seawall_classify::HttpIdempotency);
        pipeline.attempt_timeout = Some(Duration::from_secs(10));
        pipeline
    }
}

impl<C, I> StandardPipeline<C, I> {
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

    /// The retry configuration (its classifier is replaced by the pipeline's).
    pub fn retry(mut self, retry: seawall_retry::Builder) -> Self {
        self.retry = Some(retry);
        self
    }

    /// No retries.
    pub fn no_retry(mut self) -> Self {
        self.retry = None;
        self
    }

    /// The breaker configuration (its classifier is replaced by the pipeline's).
    pub fn circuit_breaker(mut self, breaker: seawall_breaker::Builder) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// No circuit breaker.
    pub fn no_circuit_breaker(mut self) -> Self {
        self.breaker = None;
        self
    }

    /// The concurrency limit configuration.
    pub fn concurrency_limit(mut self, limit: seawall_limit::Builder) -> Self {
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

    /// The classifier every layer reads.
    pub fn classifier<C2>(self, classifier: C2) -> StandardPipeline<C2, I> {
        StandardPipeline {
            deadline: self.deadline,
            retry: self.retry,
            breaker: self.breaker,
            limit: self.limit,
            attempt_timeout: self.attempt_timeout,
            classifier,
            idempotency: self.idempotency,
        }
    }

    /// Which requests survive a lost connection (see
    /// [`Idempotency`](seawall_classify::Idempotency)).
    pub fn idempotency<I2>(self, idempotency: I2) -> StandardPipeline<C, I2> {
        StandardPipeline {
            deadline: self.deadline,
            retry: self.retry,
            breaker: self.breaker,
            limit: self.limit,
            attempt_timeout: self.attempt_timeout,
            classifier: self.classifier,
            idempotency,
        }
    }

    /// Checks the whole configuration and builds the layer. Fails, naming the field, on a
    /// configuration that cannot work: any part's own errors (zero attempts, a zero limit, a
    /// window smaller than its minimum calls...), an attempt timeout longer than the
    /// deadline, or a breaker time window shorter than two attempt timeouts (it could open on
    /// a single slow attempt's worth of data).
    pub fn build(self) -> Result<StandardLayer<C, I>, ConfigError>
    where
        C: Clone,
    {
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
            .map(|retry| retry.classifier(self.classifier.clone()).build())
            .transpose()?;
        let breaker = self
            .breaker
            .map(|breaker| breaker.classifier(self.classifier.clone()).build())
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
        let limit = self.limit.map(seawall_limit::Builder::build).transpose()?;
        Ok(StandardLayer {
            deadline,
            retry,
            breaker,
            limit,
            attempt_timeout,
            classify: ClassifyLayer::new()
                .classifier(self.classifier)
                .idempotency(self.idempotency),
        })
    }
}

/// The standard pipeline as one tower [`Layer`]; built by [`StandardPipeline::build`].
///
/// Every service it builds shares one breaker, one limit and one retry budget: build one per
/// dependency.
pub struct StandardLayer<C = DefaultClassifier, I = AssumeNotIdempotent> {
    deadline: Option<DeadlineLayer>,
    retry: Option<RetryLayer<C>>,
    breaker: Option<CircuitBreakerLayer<C, AnyOf>>,
    limit: Option<ConcurrencyLimitLayer>,
    attempt_timeout: Option<AttemptTimeoutLayer>,
    classify: ClassifyLayer<C, I>,
}

impl<C: Clone, I: Clone> Clone for StandardLayer<C, I> {
    fn clone(&self) -> Self {
        StandardLayer {
            deadline: self.deadline,
            retry: self.retry.clone(),
            breaker: self.breaker.clone(),
            limit: self.limit.clone(),
            attempt_timeout: self.attempt_timeout,
            classify: self.classify.clone(),
        }
    }
}

impl<C: fmt::Debug, I> fmt::Debug for StandardLayer<C, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandardLayer")
            .field("deadline", &self.deadline)
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .field("limit", &self.limit)
            .field("attempt_timeout", &self.attempt_timeout)
            .finish()
    }
}

impl<C, I> StandardLayer<C, I> {
    /// The breaker's handle, if the pipeline has a breaker.
    pub fn breaker(&self) -> Option<BreakerHandle> {
        self.breaker.as_ref().map(CircuitBreakerLayer::handle)
    }

    /// The limit's handle, if the pipeline has a limit.
    pub fn limit(&self) -> Option<LimitHandle> {
        self.limit.as_ref().map(ConcurrencyLimitLayer::handle)
    }

    /// The retry layer (its budget and counters), if the pipeline retries.
    pub fn retry(&self) -> Option<&RetryLayer<C>> {
        self.retry.as_ref()
    }
}

type ToBox<S> = Boxed<S>;
type Optional<L, S> = Either<L, S>;
type Innermost<S, C, I> = ToBox<Classify<S, C, I>>;
type WithAttempt<S, C, I> = Optional<AttemptTimeout<Innermost<S, C, I>>, Innermost<S, C, I>>;
type WithLimit<S, C, I> = Optional<ConcurrencyLimit<WithAttempt<S, C, I>>, WithAttempt<S, C, I>>;
type WithBreaker<S, C, I> =
    Optional<CircuitBreaker<WithLimit<S, C, I>, C, AnyOf>, WithLimit<S, C, I>>;
type WithRetry<S, C, I> = Optional<Retry<WithBreaker<S, C, I>, C>, WithBreaker<S, C, I>>;
type Stack<S, C, I> = Optional<Deadline<WithRetry<S, C, I>>, WithRetry<S, C, I>>;

/// Boxes the classified error of the innermost service, so that every stage of the stack
/// has the same error type. (A named type rather than tower's `MapErr` with a function
/// pointer: the pointer's type trips the compiler's `Send` check of spawned futures.)
#[derive(Debug, Clone)]
pub struct Boxed<S> {
    inner: S,
}

impl<S, Req> Service<Req> for Boxed<S>
where
    S: Service<Req, Error = Error>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner
            .poll_ready(cx)
            .map_err(|error| Box::new(error) as BoxError)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        BoxedFuture {
            inner: self.inner.call(request),
        }
    }
}

pin_project! {
    /// The response future of [`Boxed`].
    #[derive(Debug)]
    pub struct BoxedFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, T> Future for BoxedFuture<F>
where
    F: Future<Output = Result<T, Error>>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(
            ready!(self.project().inner.poll(cx)).map_err(|error| Box::new(error) as BoxError),
        )
    }
}

fn optional<L: Layer<S>, S>(layer: &Option<L>, inner: S) -> Either<L::Service, S> {
    match layer {
        Some(layer) => Either::Left(layer.layer(inner)),
        None => Either::Right(inner),
    }
}

impl<S, C: Clone, I: Clone> Layer<S> for StandardLayer<C, I> {
    type Service = Standard<S, C, I>;

    fn layer(&self, client: S) -> Self::Service {
        let classified: Innermost<S, C, I> = Boxed {
            inner: self.classify.layer(client),
        };
        let stack = optional(
            &self.deadline,
            optional(
                &self.retry,
                optional(
                    &self.breaker,
                    optional(&self.limit, optional(&self.attempt_timeout, classified)),
                ),
            ),
        );
        Standard { stack }
    }
}

/// A client wrapped in the standard pipeline. Its error is always a
/// [`seawall_classify::Error`], whose class is read in O(1).
pub struct Standard<S, C = DefaultClassifier, I = AssumeNotIdempotent> {
    stack: Stack<S, C, I>,
}

impl<S: Clone, C: Clone, I: Clone> Clone for Standard<S, C, I> {
    fn clone(&self) -> Self {
        Standard {
            stack: self.stack.clone(),
        }
    }
}

impl<S, C, I> fmt::Debug for Standard<S, C, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Standard").finish_non_exhaustive()
    }
}

impl<S, C, I, Req> Service<Req> for Standard<S, C, I>
where
    Stack<S, C, I>: Service<Req>,
    <Stack<S, C, I> as Service<Req>>::Error: Into<BoxError>,
{
    type Response = <Stack<S, C, I> as Service<Req>>::Response;
    type Error = Error;
    type Future = ResponseFuture<<Stack<S, C, I> as Service<Req>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.stack
            .poll_ready(cx)
            .map_err(|error| classified(error.into()))
    }

    fn call(&mut self, request: Req) -> Self::Future {
        ResponseFuture {
            inner: self.stack.call(request),
        }
    }
}

/// Unwraps a Seawall error from its box, or classifies anything else.
fn classified(error: BoxError) -> Error {
    match error.downcast::<Error>() {
        Ok(error) => *error,
        Err(other) => {
            let class = known_class(&*other).unwrap_or(Class::UNKNOWN_ERROR);
            Error::new(class, other)
        }
    }
}

pin_project! {
    /// The response future of [`Standard`].
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(ready!(self.project().inner.poll(cx)).map_err(|error| classified(error.into())))
    }
}
