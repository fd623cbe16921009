//! Client spans: one span per call to a dependency, of kind client, named and attributed per
//! the OpenTelemetry semantic conventions, carrying what the layers did to the call.
//!
//! Every [`StandardPipeline`](crate::StandardPipeline) is outermost wrapped in a
//! [`ClientSpanLayer`]: each call gets a `seawall.client` span at INFO (exported at the
//! default filter), a child of the caller's span. It carries:
//!
//! - the dependency, from the [`ClientSpan`] configuration: `db.system.name`, `db.namespace`,
//!   `server.address`, `server.port` (or `rpc.system`, `rpc.service`);
//! - the operation, recorded by the client while it runs, inside the span:
//!   [`record_db_operation`] (`db.operation.name`, `db.collection.name`, and the span renamed
//!   `SELECT items` as the conventions say), [`RecordHttpLayer`] for HTTP clients
//!   (`http.request.method`, `url.full` without credentials or query,
//!   `http.response.status_code`; `rpc.service`/`rpc.method` for gRPC);
//! - the outcome: `seawall.class`, and on failure `error.type` and status Error;
//! - what the layers did, as attributes (always exported with the span):
//!   `seawall.retry.attempts` when the call took more than one attempt, `seawall.layer` and
//!   `seawall.breaker.state` (or `seawall.limit.*`) when a layer refused it,
//!   `seawall.limit.queue_wait_ms` when it waited for a permit;
//! - and as events, one per attempt (its class, error type and the backoff before the next),
//!   per refusal, per timeout and per queue admission: the layers' DEBUG events, which
//!   [`seawall_telemetry::init`](https://docs.rs/seawall-telemetry) exports into traces (not
//!   into logs) by default.
//!
//! One span per call with an event per attempt, rather than a span per attempt: a viewer then
//! shows one bar per dependency call (the time the caller waited, backoff included) with
//! the attempts marked on it, and a healthy call, almost every call, costs one span, not
//! two. The level is [`ClientSpan::level`]; the per-attempt detail is the events' filter
//! (`seawall=debug` in traces by default; `seawall=info` leaves the attributes only).
//!
//! With no subscriber, or one that does not want the span, the layer costs a level check
//! per call (see the `span` bench).
//!
//! ```
//! use seawall::trace::{ClientSpan, record_db_operation};
//! use seawall::{StandardPipeline, WithDeadline};
//! use tower::{service_fn, ServiceExt, Layer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = service_fn(|id: WithDeadline<i64>| async move {
//!     // Inside the call's span: name the operation.
//!     record_db_operation("SELECT", Some("items"));
//!     Ok::<_, std::io::Error>(*id.get_ref())
//! });
//! let pipeline = StandardPipeline::postgres(10)
//!     .client_span(ClientSpan::postgresql().namespace("shop").server("10.0.0.5", 5432))
//!     .build()?;
//! assert_eq!(pipeline.layer(client).oneshot(WithDeadline::new(7)).await?, 7);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use seawall_classify::{Classifier, DefaultClassifier, Error, schema};
use tower_layer::Layer;
use tower_service::Service;
use tracing::field::Empty;
use tracing::level_filters::LevelFilter;
use tracing::{Level, Span};

/// What a pipeline's client spans say about the dependency: its kind (database, HTTP, RPC),
/// its name, and where it is. See the [module docs](self).
#[derive(Clone)]
pub struct ClientSpan {
    level: Level,
    name: Arc<str>,
    db_system: Option<&'static str>,
    rpc_system: Option<&'static str>,
    rpc_service: Option<Arc<str>>,
    namespace: Option<Arc<str>>,
    address: Option<Arc<str>>,
    port: Option<u16>,
}

impl fmt::Debug for ClientSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSpan")
            .field("level", &self.level)
            .field("name", &self.name)
            .field("db_system", &self.db_system)
            .field("rpc_system", &self.rpc_system)
            .field("rpc_service", &self.rpc_service)
            .field("namespace", &self.namespace)
            .field("address", &self.address)
            .field("port", &self.port)
            .finish()
    }
}

impl ClientSpan {
    /// A dependency of no particular kind: spans named `name`, at INFO.
    #[must_use]
    pub fn new(name: &str) -> Self {
        ClientSpan {
            level: Level::INFO,
            name: name.into(),
            db_system: None,
            rpc_system: None,
            rpc_service: None,
            namespace: None,
            address: None,
            port: None,
        }
    }

    /// A database: `db.system.name` is `system` (a semantic-conventions value such as
    /// `postgresql`, `redis`, `mysql`), and spans are named after it until the client names
    /// the operation ([`record_db_operation`]).
    #[must_use]
    pub fn database(system: &'static str) -> Self {
        ClientSpan {
            db_system: Some(system),
            ..ClientSpan::new(system)
        }
    }

    /// PostgreSQL: [`database`](Self::database)`("postgresql")`.
    #[must_use]
    pub fn postgresql() -> Self {
        Self::database("postgresql")
    }

    /// Redis: [`database`](Self::database)`("redis")`.
    #[must_use]
    pub fn redis() -> Self {
        Self::database("redis")
    }

    /// An HTTP upstream: spans named after the method once [`RecordHttpLayer`] (or the client)
    /// records it, `http` until then.
    #[must_use]
    pub fn http() -> Self {
        ClientSpan::new("http")
    }

    /// A gRPC service (`grpc.health.v1.Health`): `rpc.system` `grpc`, `rpc.service`, and
    /// spans named `service/Method` once the method is known.
    #[must_use]
    pub fn grpc(service: &str) -> Self {
        ClientSpan {
            rpc_system: Some("grpc"),
            rpc_service: Some(service.into()),
            ..ClientSpan::new(service)
        }
    }

    /// The span's name until the client names the operation.
    #[must_use]
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.into();
        self
    }

    /// `db.namespace`: the database (PostgreSQL), the database index (Redis).
    #[must_use]
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// `server.address` and `server.port`: where the dependency is (a host name or an IP
    /// address; never a connection string).
    #[must_use]
    pub fn server(mut self, address: &str, port: u16) -> Self {
        self.address = Some(address.into());
        self.port = Some(port);
        self
    }

    /// The spans' level (default INFO). A subscriber that filters the level out gets no span
    /// and pays a level check per call.
    #[must_use]
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// The dependency's name (`seawall.dependency` on the spans and metrics).
    pub(crate) fn dependency_name(&self) -> Arc<str> {
        self.name.clone()
    }

    /// A new span for one call, a child of the current span; disabled (and free) when no
    /// subscriber wants it.
    fn span(&self) -> Span {
        macro_rules! client_span {
            ($level:expr) => {
                tracing::span!(
                    target: "seawall::client",
                    $level,
                    "seawall.client",
                    { schema::OTEL_NAME } = &*self.name,
                    { schema::OTEL_KIND } = "client",
                    { schema::DEPENDENCY } = &*self.name,
                    { schema::OTEL_STATUS_CODE } = Empty,
                    { schema::DB_SYSTEM_NAME } = self.db_system,
                    { schema::DB_NAMESPACE } = self.namespace.as_deref(),
                    { schema::DB_OPERATION_NAME } = Empty,
                    { schema::DB_COLLECTION_NAME } = Empty,
                    { schema::RPC_SYSTEM } = self.rpc_system,
                    { schema::RPC_SERVICE } = self.rpc_service.as_deref(),
                    { schema::RPC_METHOD } = Empty,
                    { schema::SERVER_ADDRESS } = self.address.as_deref(),
                    { schema::SERVER_PORT } = self.port.map(i64::from),
                    { schema::HTTP_REQUEST_METHOD } = Empty,
                    { schema::URL_FULL } = Empty,
                    { schema::HTTP_RESPONSE_STATUS_CODE } = Empty,
                    { schema::CLASS } = Empty,
                    { schema::ERROR_TYPE } = Empty,
                    { schema::LAYER } = Empty,
                    { schema::RETRY_ATTEMPTS } = Empty,
                    { schema::BREAKER_NAME } = Empty,
                    { schema::BREAKER_STATE } = Empty,
                    { schema::LIMIT_QUEUE_WAIT_MS } = Empty,
                    { schema::LIMIT_IN_FLIGHT } = Empty,
                    { schema::LIMIT_QUEUED_ATTR } = Empty,
                )
            };
        }
        match self.level {
            Level::TRACE => client_span!(Level::TRACE),
            Level::DEBUG => client_span!(Level::DEBUG),
            Level::INFO => client_span!(Level::INFO),
            Level::WARN => client_span!(Level::WARN),
            _ => client_span!(Level::ERROR),
        }
    }
}

/// Names the database operation on the current client span: `db.operation.name`
/// (`SELECT`, `GET`), `db.collection.name` (the table), and the span's name as the semantic
/// conventions make it (`SELECT items`, or `GET`). Call it from the client, inside the call.
/// No query text, no parameters: nothing sensitive. A no-op outside a client span.
pub fn record_db_operation(operation: &str, collection: Option<&str>) {
    let span = Span::current();
    if span.is_disabled() {
        return;
    }
    span.record(schema::DB_OPERATION_NAME, operation);
    match collection {
        Some(collection) => {
            span.record(schema::DB_COLLECTION_NAME, collection);
            rename(&span, format!("{operation} {collection}"));
        }
        None => rename(&span, operation.to_owned()),
    }
}

/// Names the RPC on the current client span: `rpc.service`, `rpc.method`, and the span's name
/// `service/method`, as the semantic conventions make it. For a typed client (a generated
/// gRPC stub in a `service_fn`); calls over a channel are named by [`RecordHttpLayer`].
pub fn record_rpc_method(service: &str, method: &str) {
    let span = Span::current();
    if span.is_disabled() {
        return;
    }
    span.record(schema::RPC_SERVICE, service);
    span.record(schema::RPC_METHOD, method);
    rename(&span, format!("{service}/{method}"));
}

/// Renames a span that may already be exporting: `otel.name` for subscribers that read it
/// before the span starts, and (feature `opentelemetry`) the OpenTelemetry span itself, which
/// `tracing-opentelemetry` starts when the span is first entered and no longer renames from a
/// recorded field.
fn rename(span: &Span, name: String) {
    #[cfg(feature = "opentelemetry")]
    {
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        opentelemetry::trace::TraceContextExt::span(&span.context()).update_name(name.clone());
    }
    span.record(schema::OTEL_NAME, name);
}

/// Wraps a client in [`ClientSpan`]'s span: see the [module docs](self). The standard
/// pipeline puts one outermost; use it on its own around any stack whose error is Seawall's
/// [`Error`].
#[derive(Clone, Debug)]
pub struct ClientSpanLayer<C = DefaultClassifier> {
    config: Option<Arc<ClientSpan>>,
    classifier: C,
}

impl ClientSpanLayer {
    /// Spans as `config` says; responses are successes (errors carry their class).
    #[must_use]
    pub fn new(config: ClientSpan) -> Self {
        ClientSpanLayer {
            config: Some(Arc::new(config)),
            classifier: DefaultClassifier,
        }
    }
}

impl<C> ClientSpanLayer<C> {
    /// The classifier that says which responses are failures (an HTTP 503), for the span's
    /// status.
    #[must_use]
    pub fn classifier<C2>(self, classifier: C2) -> ClientSpanLayer<C2> {
        ClientSpanLayer {
            config: self.config,
            classifier,
        }
    }

    /// A layer that adds no span (the pipeline's
    /// [`no_client_span`](crate::StandardPipeline::no_client_span)). The span is switched off
    /// inside its own service rather than by a [`Stage`](crate::Stage) around it: the service
    /// already passes a call through bare when no subscriber wants its span, and that one
    /// branch serves both (a `Stage` around it moved the whole future once more: 1,436
    /// instructions per call against 1,313, `scripts/icount.sh`).
    pub(crate) fn off(classifier: C) -> Self {
        ClientSpanLayer {
            config: None,
            classifier,
        }
    }
}

impl<S, C: Clone> Layer<S> for ClientSpanLayer<C> {
    type Service = ClientSpanService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientSpanService {
            inner,
            config: self.config.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

/// A service in a client span; built by [`ClientSpanLayer`].
#[derive(Clone, Debug)]
pub struct ClientSpanService<S, C = DefaultClassifier> {
    inner: S,
    config: Option<Arc<ClientSpan>>,
    classifier: C,
}

impl<S, C, Req> Service<Req> for ClientSpanService<S, C>
where
    S: Service<Req, Error = Error>,
    C: Classifier<S::Response> + Clone,
{
    type Response = S::Response;
    type Error = Error;
    type Future = ClientSpanFuture<S::Future, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        let Some(config) = &self.config else {
            return ClientSpanFuture::bare(self.inner.call(request));
        };
        // No subscriber wants the span's level or the metric's (TRACE): one relaxed load.
        let max = LevelFilter::current();
        if max < config.level && max < LevelFilter::TRACE {
            return ClientSpanFuture::bare(self.inner.call(request));
        }
        let span = config.span();
        // The call metric, when a metrics subscriber listens (a level check otherwise).
        let started = tracing::enabled!(target: "seawall::client", Level::TRACE)
            .then(tokio::time::Instant::now);
        if span.is_disabled() && started.is_none() {
            return ClientSpanFuture::bare(self.inner.call(request));
        }
        // The layers below decide in `call` (a breaker's refusal, a full queue): inside.
        let future = span.in_scope(|| self.inner.call(request));
        ClientSpanFuture {
            future,
            // Boxed: the future stays one word larger than the inner one when nothing
            // listens; a listening subscriber allocates per span anyway.
            observed: Some(Box::new(Observed {
                span,
                classifier: self.classifier.clone(),
                started,
                config: config.clone(),
            })),
        }
    }
}

/// What a traced call keeps until it ends.
struct Observed<C> {
    span: Span,
    classifier: C,
    started: Option<tokio::time::Instant>,
    config: Arc<ClientSpan>,
}

pin_project! {
    /// The response future of [`ClientSpanService`]: the inner future, polled inside the
    /// span, which records the outcome when it ends.
    pub struct ClientSpanFuture<F, C> {
        #[pin]
        future: F,
        observed: Option<Box<Observed<C>>>,
    }
}

impl<F, C> ClientSpanFuture<F, C> {
    fn bare(future: F) -> Self {
        ClientSpanFuture {
            future,
            observed: None,
        }
    }
}

impl<F, C> fmt::Debug for ClientSpanFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSpanFuture")
            .field("span", &self.observed.as_ref().map(|o| &o.span))
            .finish_non_exhaustive()
    }
}

impl<F, C, T> Future for ClientSpanFuture<F, C>
where
    F: Future<Output = Result<T, Error>>,
    C: Classifier<T>,
{
    type Output = Result<T, Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(observed) = this.observed.as_ref() else {
            return this.future.poll(cx);
        };
        let span = &observed.span;
        let output = ready!(span.in_scope(|| this.future.poll(cx)));
        let class = match &output {
            Ok(response) => observed
                .classifier
                .classify_response(response)
                .unwrap_or(seawall_classify::Class::Success),
            Err(error) => error.class(),
        };
        let kind = class.kind().map(|kind| kind.as_str());
        span.record(schema::CLASS, class.as_str());
        if let Some(kind) = kind {
            span.record(schema::ERROR_TYPE, kind);
            span.record(schema::OTEL_STATUS_CODE, "error");
        }
        if let Some(started) = observed.started {
            // A metric only (TRACE: no log, no span event at the usual filters).
            tracing::trace!(
                target: "seawall::client",
                {
                    { schema::FIELD_CLIENT_DURATION } = started.elapsed().as_secs_f64(),
                    { schema::DEPENDENCY } = &*observed.config.name,
                    { schema::CLASS } = class.as_str(),
                    { schema::ERROR_TYPE } = kind.unwrap_or(""),
                },
                "call finished"
            );
        }
        Poll::Ready(output)
    }
}

#[cfg(feature = "http")]
pub use self::http_attributes::{
    HttpRequest, HttpStatus, RecordHttp, RecordHttpFuture, RecordHttpLayer,
};

#[cfg(feature = "http")]
mod http_attributes {
    use super::*;

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
}
