//! The standard pipeline's order, written once, outer to inner:
//!
//! | # | stage | what it does to a call | optional by |
//! |---|---|---|---|
//! | 1 | client span ([`ClientSpanLayer`]) | one span per call, the layers' doings on it | inside it (see [`ClientSpanLayer`]) |
//! | 2 | deadline ([`DeadlineLayer`]) | the request's end-to-end budget | [`Stage`] |
//! | 3 | retry ([`RetryLayer`]) | attempts, backoff, the budget | [`RetryMode`] (type) |
//! | 4 | breaker ([`CircuitBreakerLayer`]) | refuses while the dependency is failing | [`Stage`] |
//! | 5 | limit ([`ConcurrencyLimitLayer`]) | at most the pool size in flight; the queue | [`Stage`] |
//! | 6 | attempt timeout ([`AttemptTimeoutLayer`]) | bounds each attempt | [`Stage`] |
//! | 7 | classification ([`ClassifyLayer`]) | the client's errors become [`Error`](seawall_classify::Error)s | always |
//! | 8 | the client | | |
//!
//! The layer's fields, the expression in [`Layer::layer`] and the type aliases below all
//! follow this order. Why this order: the [crate docs](crate#the-order-and-why).

use std::fmt;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use seawall_breaker::{AnyOf, CircuitBreaker, CircuitBreakerLayer};
use seawall_classify::{
    AssumeNotIdempotent, BoxError, Classifier, Classify, ClassifyLayer, DefaultClassifier, Error,
    HasDeadline, Idempotency, ResponsesOnly,
};
use seawall_limit::{ConcurrencyLimit, ConcurrencyLimitLayer};
use seawall_retry::RetryLayer;
use seawall_timeout::{AttemptTimeout, AttemptTimeoutLayer, Deadline, DeadlineLayer};
use tower_layer::Layer;
use tower_service::Service;

use super::stage::{NoRetry, RetryMode, Stage, WithRetry, stage};
use crate::trace::{ClientSpan, ClientSpanLayer};

/// The standard pipeline as one tower [`Layer`]; built by
/// [`StandardPipeline::build`](crate::StandardPipeline::build).
///
/// Every service it builds shares one breaker, one limit and one retry budget: build one per
/// dependency.
pub struct StandardLayer<C = DefaultClassifier, I = AssumeNotIdempotent, R = WithRetry> {
    pub(super) client_span: ClientSpanLayer<Above<C>>,
    pub(super) deadline: Option<DeadlineLayer>,
    pub(super) retry: Option<RetryLayer<Above<C>>>,
    pub(super) breaker: Option<CircuitBreakerLayer<Above<C>, AnyOf>>,
    pub(super) limit: Option<ConcurrencyLimitLayer<Above<C>>>,
    pub(super) attempt_timeout: Option<AttemptTimeoutLayer>,
    pub(super) classify: ClassifyLayer<C, I>,
    pub(super) mode: PhantomData<R>,
}

impl<S, C: Clone, I: Clone, R: RetryMode> Layer<S> for StandardLayer<C, I, R> {
    type Service = Standard<S, C, I, R>;

    fn layer(&self, client: S) -> Self::Service {
        // Outer to inner, each stage around everything below it.
        let stack = self.client_span.layer(stage(
            self.deadline.as_ref(),
            R::wrap(
                self.retry.as_ref(),
                stage(
                    self.breaker.as_ref(),
                    stage(
                        self.limit.as_ref(),
                        stage(self.attempt_timeout.as_ref(), self.classify.layer(client)),
                    ),
                ),
            ),
        ));
        Standard { stack }
    }
}

// The services, outer to inner. Every stage speaks Seawall's `Error`; the layers above
// `Classify` read an error's class as it is and ask the classifier about responses only.
type Above<C> = ResponsesOnly<C>;
type Stack<S, C, I, R> = ClientSpan<Bounded<S, C, I, R>, Above<C>>;
type Bounded<S, C, I, R> = Stage<Deadline<Retried<S, C, I, R>>, Retried<S, C, I, R>>;
type Retried<S, C, I, R> = <R as RetryMode>::Wrap<Guarded<S, C, I>, C>;
type Guarded<S, C, I> = Stage<CircuitBreaker<Limited<S, C, I>, Above<C>, AnyOf>, Limited<S, C, I>>;
type Limited<S, C, I> = Stage<ConcurrencyLimit<Timed<S, C, I>, Above<C>>, Timed<S, C, I>>;
type Timed<S, C, I> = Stage<AttemptTimeout<Classified<S, C, I>>, Classified<S, C, I>>;
type Classified<S, C, I> = Classify<S, C, I>;

/// A client wrapped in the standard pipeline; built by
/// [`StandardLayer`](crate::StandardLayer). Its error is always a [`seawall_classify::Error`],
/// whose class is read in O(1).
///
/// It is a service when:
///
/// | bound | why |
/// |---|---|
/// | `S: Service<Req> + Clone` | the client; a queued call or a retry drives a clone |
/// | `S::Error: Into<BoxError> + 'static` | any error type: `std::error::Error + Send + Sync`, or already boxed |
/// | `C: Classifier<S::Response> + Clone` | the classifier every layer reads |
/// | `I: Idempotency<Req> + Clone` | which requests survive a lost connection |
/// | `Req: HasDeadline` | the deadline every layer bounds its waiting by |
/// | `Req: Clone`, only with [`WithRetry`] | each attempt sends its own copy |
pub struct Standard<S, C = DefaultClassifier, I = AssumeNotIdempotent, R: RetryMode = WithRetry> {
    stack: Stack<S, C, I, R>,
}

/// The two retry modes get the same impls, each with its bounds stated directly (no nested
/// stage in a where clause), so that a missing bound is reported on the caller's own type.
macro_rules! standard_impls {
    ($mode:ty, $($request_bound:tt)+) => {
        impl<S: Clone, C: Clone, I: Clone> Clone for Standard<S, C, I, $mode> {
            fn clone(&self) -> Self {
                Standard {
                    stack: self.stack.clone(),
                }
            }
        }

        impl<S, C, I, Req> Service<Req> for Standard<S, C, I, $mode>
        where
            S: Service<Req> + Clone,
            S::Error: Into<BoxError> + 'static,
            C: Classifier<S::Response> + Clone,
            I: Idempotency<Req> + Clone,
            Req: $($request_bound)+,
        {
            type Response = S::Response;
            type Error = Error;
            type Future = <Stack<S, C, I, $mode> as Service<Req>>::Future;

            #[inline]
            fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
                self.stack.poll_ready(cx)
            }

            #[inline]
            fn call(&mut self, request: Req) -> Self::Future {
                self.stack.call(request)
            }
        }
    };
}

standard_impls!(WithRetry, HasDeadline + Clone);
standard_impls!(NoRetry, HasDeadline);

impl<S, C, I, R: RetryMode> fmt::Debug for Standard<S, C, I, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Standard").finish_non_exhaustive()
    }
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
