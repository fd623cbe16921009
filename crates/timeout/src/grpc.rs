//! Sending the request's deadline to a gRPC server as `grpc-timeout` (feature `grpc`).
//!
//! gRPC carries the time a call has left, not a clock time: the client sends `grpc-timeout`
//! and the server stops the work when it runs out. [`GrpcTimeoutLayer`], put next to the
//! channel (inside the pipeline, so that it sees the deadline the pipeline's `Deadline`
//! published and the time left when each attempt starts), sets it from the request's
//! deadline ([`HasDeadline`]). It sends the request's deadline, not the attempt timeout,
//! which the pipeline enforces on its own side.
//!
//! ```
//! use std::time::Duration;
//! use seawall_classify::HasDeadline;
//! use seawall_timeout::grpc::{grpc_timeout, GrpcTimeoutLayer};
//!
//! assert_eq!(grpc_timeout(Duration::from_millis(1500)), "1500m");
//! assert_eq!(grpc_timeout(Duration::from_secs(200_000)), "200000S");
//! # let _ = GrpcTimeoutLayer;
//! ```

use std::task::{Context, Poll};
use std::time::Duration;

use http::HeaderValue;
use seawall_classify::HasDeadline;
use tower_layer::Layer;
use tower_service::Service;

/// The `grpc-timeout` header value for `remaining`: milliseconds while they fit the eight
/// digits gRPC allows, whole seconds beyond, rounded up so the server never gets less.
#[must_use]
pub fn grpc_timeout(remaining: Duration) -> String {
    let millis = remaining.as_nanos().div_ceil(1_000_000);
    if millis < 100_000_000 {
        format!("{millis}m")
    } else {
        format!("{}S", remaining.as_secs().min(99_999_999))
    }
}

/// Sets `grpc-timeout` on each request from its deadline; see the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcTimeoutLayer;

impl<S> Layer<S> for GrpcTimeoutLayer {
    type Service = GrpcTimeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcTimeout { inner }
    }
}

/// A gRPC client that sends its requests' deadlines; see [`GrpcTimeoutLayer`].
#[derive(Debug, Clone)]
pub struct GrpcTimeout<S> {
    inner: S,
}

seawall_classify::inner_accessors!(impl[S] GrpcTimeout<S>);

impl<S, B> Service<http::Request<B>> for GrpcTimeout<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if let Some(remaining) = request.remaining()
            && let Ok(value) = HeaderValue::from_str(&grpc_timeout(remaining))
        {
            request.headers_mut().insert("grpc-timeout", value);
        }
        self.inner.call(request)
    }
}
