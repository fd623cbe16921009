//! [`CollectBody`]: a response's body read to its end inside the pipeline, so that a body cut
//! mid-stream is the attempt's error.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body::Body;
use pin_project_lite::pin_project;
use seawall_classify::{BoxError, Class, ConfigError, Error, FailureKind, RetryHint};
use tower_layer::Layer;
use tower_service::Service;

/// The largest body [`CollectBodyLayer::new`] accepts as a bound: 1 GiB.
pub const MAX_BODY_LIMIT: usize = 1 << 30;

/// Reads each response's body to its end before answering (see [`CollectBody`]). Responses
/// whose body is longer than `limit` bytes fail with [`BodyTooLarge`].
///
/// ```
/// use http_body_util::Full;
/// use seawall::StandardPipeline;
/// use seawall::http::CollectBodyLayer;
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Stands in for hyper-util's client, whose responses stream their body.
/// let upstream = service_fn(|_: http::Request<String>| async {
///     Ok::<_, std::io::Error>(http::Response::new(Full::new(bytes::Bytes::from("[1, 2]"))))
/// });
/// let api = StandardPipeline::http("api", 32)
///     .build()?
///     .layer(CollectBodyLayer::new(1 << 20)?.layer(upstream));
/// let response = api.oneshot(http::Request::new(String::new())).await?;
/// assert_eq!(response.body(), "[1, 2]");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CollectBodyLayer {
    limit: usize,
}

impl CollectBodyLayer {
    /// Reads bodies of at most `limit` bytes (1 to [`MAX_BODY_LIMIT`]).
    pub fn new(limit: usize) -> Result<Self, ConfigError> {
        if limit == 0 || limit > MAX_BODY_LIMIT {
            return Err(ConfigError::new(
                "collect body",
                "limit",
                format!("is {limit} bytes, outside 1 to {MAX_BODY_LIMIT}"),
            ));
        }
        Ok(CollectBodyLayer { limit })
    }
}

impl<S> Layer<S> for CollectBodyLayer {
    type Service = CollectBody<S>;

    fn layer(&self, inner: S) -> CollectBody<S> {
        CollectBody {
            inner,
            limit: self.limit,
        }
    }
}

/// Answers with the whole body of the inner service's response, read before the call
/// finishes: `http::Response<Bytes>`.
///
/// An HTTP client answers as soon as the response's head arrives, and its body streams after
/// the call has returned. A body cut mid-stream (a connection reset, a server that dies) then
/// reaches the caller after every layer counted the call as a success: no retry, no fault
/// for the breaker. Put this layer between the pipeline and the client (innermost, inside the
/// attempt timeout) and the body is read within the attempt: an error while reading it is the
/// attempt's error, classified from its `source()` chain (hyper's incomplete message is a
/// `Disconnect`: retried when the request may be replayed, a fault for the breaker), and the
/// attempt timeout bounds the body too. For bodies too large to hold in memory, stream them
/// outside the pipeline instead.
pub struct CollectBody<S> {
    inner: S,
    limit: usize,
}

seawall_classify::inner_accessors!(impl[S] CollectBody<S>);

impl<S: Clone> Clone for CollectBody<S> {
    fn clone(&self) -> Self {
        CollectBody {
            inner: self.inner.clone(),
            limit: self.limit,
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for CollectBody<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CollectBody")
            .field("inner", &self.inner)
            .field("limit", &self.limit)
            .finish()
    }
}

impl<S, Req, B> Service<Req> for CollectBody<S>
where
    S: Service<Req, Response = http::Response<B>>,
    S::Error: Into<BoxError> + 'static,
    B: Body,
    B::Error: Into<BoxError> + 'static,
{
    type Response = http::Response<Bytes>;
    type Error = Error;
    type Future = ResponseFuture<S::Future, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx).map_err(Error::from_inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        ResponseFuture {
            state: State::Head {
                inner: self.inner.call(request),
            },
            limit: self.limit,
        }
    }
}

pin_project! {
    /// The future of [`CollectBody`]: the response's head, then its body to the end.
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
        limit: usize,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Head {
            #[pin]
            inner: F,
        },
        Body {
            parts: Option<http::response::Parts>,
            #[pin]
            body: B,
            read: BytesMut,
        },
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    E: Into<BoxError> + 'static,
    B: Body,
    B::Error: Into<BoxError> + 'static,
{
    type Output = Result<http::Response<Bytes>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Head { inner } => {
                    let (parts, body) = ready!(inner.poll(cx))
                        .map_err(Error::from_inner)?
                        .into_parts();
                    this.state.set(State::Body {
                        parts: Some(parts),
                        body,
                        read: BytesMut::new(),
                    });
                }
                StateProj::Body {
                    parts,
                    mut body,
                    read,
                } => {
                    while let Some(frame) = ready!(body.as_mut().poll_frame(cx)) {
                        // Trailers are dropped: an HTTP response's meaning is in its head.
                        let Ok(data) = frame.map_err(Error::from_inner)?.into_data() else {
                            continue;
                        };
                        if read.len() + data.remaining() > *this.limit {
                            return Poll::Ready(Err(BodyTooLarge::error(*this.limit)));
                        }
                        read.put(data);
                    }
                    let parts = parts.take().expect("polled after completion");
                    let read = std::mem::take(read).freeze();
                    return Poll::Ready(Ok(http::Response::from_parts(parts, read)));
                }
            }
        }
    }
}

/// A response's body was longer than the [`CollectBody`] limit.
///
/// Classified as `Invalid`, never retried: the same request would get the same body, and a
/// limit the caller chose is not the dependency's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTooLarge {
    limit: usize,
}

impl BodyTooLarge {
    /// The class of this error: `Invalid`, never retried.
    pub const CLASS: Class = Class::failure(FailureKind::Invalid, RetryHint::Never);

    /// The class of this error: [`CLASS`](Self::CLASS).
    #[must_use]
    pub const fn class(&self) -> Class {
        Self::CLASS
    }

    fn error(limit: usize) -> Error {
        Error::new(Self::CLASS, BodyTooLarge { limit })
    }

    /// The limit the body went past, in bytes.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.limit
    }
}

impl fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "response body longer than {} bytes", self.limit)
    }
}

impl std::error::Error for BodyTooLarge {}
