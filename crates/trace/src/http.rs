//! The HTTP and gRPC attributes of a call, recorded on its client span by [`RecordHttpLayer`]
//! (feature `http`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use seawall_classify::schema;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Span;

use crate::span::rename;

/// Records an HTTP call's attributes on the current client span (for `http::Request`
/// clients such as hyper-util's and tonic's channels, and with feature `reqwest` for
/// `reqwest::Client`): `http.request.method`,
/// `url.full` (scheme, host, port and path: no credentials, no query, no fragment) and the
/// span's name (the method), and `http.response.status_code` when the answer comes. A gRPC
/// request (`content-type: application/grpc`) gets `rpc.method` (and `rpc.service`) from
/// its path and the span's name `service/Method` instead.
///
/// Put it inside a pipeline, around the client:
/// `pipeline.layer(RecordHttpLayer.layer(client))`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RecordHttpLayer;

impl<S> Layer<S> for RecordHttpLayer {
    type Service = RecordHttp<S>;

    fn layer(&self, inner: S) -> RecordHttp<S> {
        RecordHttp { inner }
    }
}

/// An HTTP client whose calls are recorded on the client span; see [`RecordHttpLayer`].
#[derive(Clone, Debug)]
pub struct RecordHttp<S> {
    inner: S,
}

seawall_classify::inner_accessors!(impl[S] RecordHttp<S>);

impl<S, Req> Service<Req> for RecordHttp<S>
where
    Req: HttpRequest,
    S: Service<Req>,
    S::Response: HttpStatus,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = RecordHttpFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let span = Span::current();
        if !span.is_disabled() {
            request.view().record(&span);
        }
        RecordHttpFuture {
            future: self.inner.call(request),
            span,
        }
    }
}

/// A request [`RecordHttp`] reads (sealed: `http::Request`, and `reqwest::Request` with
/// feature `reqwest`).
pub trait HttpRequest: sealed::Request {}

impl<B> HttpRequest for http::Request<B> {}
#[cfg(feature = "reqwest")]
impl HttpRequest for reqwest::Request {}

/// What an HTTP call records of its request, from any client's request type.
#[derive(Debug)]
pub struct RequestView<'a> {
    method: &'a str,
    scheme: Option<&'a str>,
    host: Option<&'a str>,
    port: Option<u16>,
    path: &'a str,
    grpc: bool,
}

impl<'a> RequestView<'a> {
    /// `scheme://host[:port]/path`: what identifies the resource, nothing that may be
    /// secret (user information, query, fragment).
    fn url_full(&self) -> String {
        let mut url = String::new();
        if let Some(scheme) = self.scheme {
            url.push_str(scheme);
            url.push_str("://");
        }
        if let Some(host) = self.host {
            url.push_str(host);
        }
        if let Some(port) = self.port {
            url.push(':');
            url.push_str(&port.to_string());
        }
        url.push_str(self.path);
        url
    }

    fn record(&self, span: &Span) {
        let path = self.path.strip_prefix('/').unwrap_or_default();
        if self.grpc
            && let Some((service, method)) = path.split_once('/')
        {
            span.record(schema::RPC_SYSTEM, "grpc");
            span.record(schema::RPC_SERVICE, service);
            span.record(schema::RPC_METHOD, method);
            rename(span, path.to_owned());
            return;
        }
        span.record(schema::HTTP_REQUEST_METHOD, self.method);
        rename(span, self.method.to_owned());
        span.record(schema::URL_FULL, self.url_full().as_str());
        if let Some(host) = self.host {
            span.record(schema::SERVER_ADDRESS, host);
        }
        if let Some(port) = self.port.or(match self.scheme {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        }) {
            span.record(schema::SERVER_PORT, i64::from(port));
        }
    }
}

/// A response whose status [`RecordHttpFuture`] records (sealed: `http::Response`, and
/// `reqwest::Response` with feature `reqwest`).
pub trait HttpStatus: sealed::Sealed {
    /// The status code.
    fn status_code(&self) -> u16;
}

mod sealed {
    use super::RequestView;

    pub trait Sealed {}
    impl<B> Sealed for http::Response<B> {}
    #[cfg(feature = "reqwest")]
    impl Sealed for reqwest::Response {}

    /// What a request gives [`RecordHttp`](super::RecordHttp) to record.
    pub trait Request {
        fn view(&self) -> RequestView<'_>;
    }

    impl<B> Request for http::Request<B> {
        fn view(&self) -> RequestView<'_> {
            let uri = self.uri();
            RequestView {
                method: self.method().as_str(),
                scheme: uri.scheme_str(),
                host: uri.host(),
                port: uri.port_u16(),
                path: uri.path(),
                grpc: self
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc")),
            }
        }
    }

    #[cfg(feature = "reqwest")]
    impl Request for reqwest::Request {
        fn view(&self) -> RequestView<'_> {
            let url = self.url();
            RequestView {
                method: self.method().as_str(),
                scheme: Some(url.scheme()),
                host: url.host_str(),
                port: url.port(),
                path: url.path(),
                grpc: false,
            }
        }
    }
}

impl<B> HttpStatus for http::Response<B> {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

#[cfg(feature = "reqwest")]
impl HttpStatus for reqwest::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

pin_project! {
    /// The response future of [`RecordHttp`].
    pub struct RecordHttpFuture<F> {
        #[pin]
        future: F,
        span: Span,
    }
}

impl<F> fmt::Debug for RecordHttpFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordHttpFuture").finish_non_exhaustive()
    }
}

impl<F, R: HttpStatus, E> Future for RecordHttpFuture<F>
where
    F: Future<Output = Result<R, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = ready!(this.future.poll(cx));
        if let Ok(response) = &output
            && !this.span.is_disabled()
        {
            this.span.record(
                schema::HTTP_RESPONSE_STATUS_CODE,
                i64::from(response.status_code()),
            );
        }
        Poll::Ready(output)
    }
}

#[cfg(test)]
mod tests {
    use super::sealed::Request as _;

    #[test]
    fn url_full_drops_credentials_query_and_fragment() {
        let request =
            http::Request::get("https://user:secret@api.example.com:8443/v1/items?token=abc")
                .body(())
                .unwrap();
        assert_eq!(
            request.view().url_full(),
            "https://api.example.com:8443/v1/items"
        );
    }
}
