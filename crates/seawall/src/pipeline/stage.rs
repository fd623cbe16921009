//! How a stage of the pipeline is switched off: at run time by [`Stage`], or, for the retry,
//! in the type by [`RetryMode`]. (The client span switches itself off inside its own
//! service, for a measured reason given on `ClientSpanLayer::off`.)
//!
//! [`Stage`] is tower's `Either` (what `option_layer` builds) with one difference that makes
//! it worth its own type: both sides speak Seawall's [`Error`], so a stage switched off
//! changes no error type the caller sees, where `Either` boxes both sides' errors into a
//! `BoxError` and loses the class a caller reads in O(1). The retry cannot be switched off
//! that way: its service needs a `Clone` request even when the stage is off, and a pipeline
//! without retries exists precisely for requests that cannot be cloned.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use seawall_classify::{Error, ResponsesOnly};
use seawall_retry::{Retry, RetryLayer};
use tower_layer::Layer;
use tower_service::Service;

/// One stage of a [`Standard`](crate::Standard) pipeline: the layer's service when the stage
/// is on, the inner service as it is when it is off. Both speak Seawall's one
/// [`Error`], so switching a stage off changes no type the caller sees.
#[derive(Debug, Clone)]
pub enum Stage<On, Off> {
    /// The stage is on: its layer wraps the inner service.
    On(On),
    /// The stage is off: the inner service is called directly.
    Off(Off),
}

impl<A, B, Req> Service<Req> for Stage<A, B>
where
    A: Service<Req, Error = Error>,
    B: Service<Req, Response = A::Response, Error = Error>,
{
    type Response = A::Response;
    type Error = Error;
    type Future = StageFuture<A::Future, B::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match self {
            Stage::On(service) => service.poll_ready(cx),
            Stage::Off(service) => service.poll_ready(cx),
        }
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        match self {
            Stage::On(service) => StageFuture::On {
                future: service.call(request),
            },
            Stage::Off(service) => StageFuture::Off {
                future: service.call(request),
            },
        }
    }
}

pin_project! {
    /// The response future of a [`Stage`]: the stage's future when it is on, the inner
    /// service's when it is off. One enum, not a struct around one, so that the inner future
    /// is moved into place once. Each variant's `future` is the future of the side that runs.
    #[project = StageFutureProj]
    #[derive(Debug)]
    #[allow(missing_docs)]
    pub enum StageFuture<A, B> {
        /// The stage is on.
        On {
            #[pin]
            future: A,
        },
        /// The stage is off.
        Off {
            #[pin]
            future: B,
        },
    }
}

impl<A, B, T> Future for StageFuture<A, B>
where
    A: Future<Output = Result<T, Error>>,
    B: Future<Output = Result<T, Error>>,
{
    type Output = Result<T, Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            StageFutureProj::On { future } => future.poll(cx),
            StageFutureProj::Off { future } => future.poll(cx),
        }
    }
}

/// Wraps `inner` in `layer` when the stage is configured, or leaves it as it is.
pub(crate) fn stage<L: Layer<S>, S>(layer: Option<&L>, inner: S) -> Stage<L::Service, S> {
    match layer {
        Some(layer) => Stage::On(layer.layer(inner)),
        None => Stage::Off(inner),
    }
}

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
