//! The pipeline around one client: [`Standard`], and whether it retries ([`RetryMode`]).

use std::fmt;
use std::task::{Context, Poll};

use seawall_breaker::{AnyOf, CircuitBreaker};
use seawall_classify::{
    AssumeNotIdempotent, BoxError, Classifier, Classify, DefaultClassifier, Error, HasDeadline,
    Idempotency, ResponsesOnly,
};
use seawall_limit::ConcurrencyLimit;
use seawall_retry::{Retry, RetryLayer};
use seawall_timeout::{AttemptTimeout, Deadline};
use tower_layer::Layer;
use tower_service::Service;

use super::stage::Stage;
use crate::trace::ClientSpanService;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::WithRetry {}
    impl Sealed for super::NoRetry {}
}

/// Whether a pipeline retries: [`WithRetry`] (the presets) or [`NoRetry`]
/// ([`StandardPipeline::no_retry`](crate::StandardPipeline::no_retry)). Part of the type,
/// because retrying needs a `Clone` request and not retrying does not: a pipeline without
/// retries wraps clients whose requests cannot be cloned (streaming bodies, gRPC, axum).
pub trait RetryMode: sealed::Sealed + Send + Sync + 'static {
    /// The retry stage around `T`, for classifier `C`.
    #[doc(hidden)]
    type Wrap<T, C>;

    /// Puts the retry stage around `inner`.
    #[doc(hidden)]
    fn wrap<T, C>(retry: Option<&RetryLayer<ResponsesOnly<C>>>, inner: T) -> Self::Wrap<T, C>;
}

/// The pipeline retries: requests must be `Clone`. See [`RetryMode`].
#[derive(Debug, Clone, Copy, Default)]
pub struct WithRetry;

/// The pipeline does not retry: requests need not be `Clone`. See [`RetryMode`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRetry;

impl RetryMode for WithRetry {
    type Wrap<T, C> = Retry<T, ResponsesOnly<C>>;

    fn wrap<T, C>(retry: Option<&RetryLayer<ResponsesOnly<C>>>, inner: T) -> Self::Wrap<T, C> {
        retry
            .expect("a pipeline in WithRetry mode is built with a retry layer")
            .layer(inner)
    }
}

impl RetryMode for NoRetry {
    type Wrap<T, C> = T;

    fn wrap<T, C>(_: Option<&RetryLayer<ResponsesOnly<C>>>, inner: T) -> T {
        inner
    }
}

// The stack, inner to outer. Every stage speaks Seawall's `Error`; the layers above
// `Classify` read an error's class as it is and ask the classifier about responses only.
type Above<C> = ResponsesOnly<C>;
pub(super) type Timed<S, C, I> = Stage<AttemptTimeout<Classify<S, C, I>>, Classify<S, C, I>>;
pub(super) type Limited<S, C, I> =
    Stage<ConcurrencyLimit<Timed<S, C, I>, Above<C>>, Timed<S, C, I>>;
pub(super) type Guarded<S, C, I> =
    Stage<CircuitBreaker<Limited<S, C, I>, Above<C>, AnyOf>, Limited<S, C, I>>;
type Retried<S, C, I, R> = <R as RetryMode>::Wrap<Guarded<S, C, I>, C>;
type Bounded<S, C, I, R> = Stage<Deadline<Retried<S, C, I, R>>, Retried<S, C, I, R>>;
type Stack<S, C, I, R> = ClientSpanService<Bounded<S, C, I, R>, Above<C>>;

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

impl<S, C, I, R: RetryMode> Standard<S, C, I, R> {
    pub(super) fn new(stack: Stack<S, C, I, R>) -> Self {
        Standard { stack }
    }
}

impl<S, C, I, R: RetryMode> fmt::Debug for Standard<S, C, I, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Standard").finish_non_exhaustive()
    }
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
