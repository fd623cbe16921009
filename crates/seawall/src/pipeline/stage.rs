//! A stage of the pipeline that can be switched off.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use seawall_classify::Error;
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
pub(crate) fn stage<L: tower_layer::Layer<S>, S>(
    layer: Option<&L>,
    inner: S,
) -> Stage<L::Service, S> {
    match layer {
        Some(layer) => Stage::On(layer.layer(inner)),
        None => Stage::Off(inner),
    }
}
