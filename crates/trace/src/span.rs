//! What a client span says about the dependency ([`ClientSpanConfig`]), and what the client adds
//! to it while a call runs.

use std::fmt;
use std::sync::Arc;

use seawall_classify::schema;
use tracing::field::Empty;
use tracing::{Level, Span};

/// What a pipeline's client spans say about the dependency: its kind (database, HTTP, RPC),
/// its name, and where it is. See the [module docs](crate).
#[derive(Clone)]
pub struct ClientSpanConfig {
    pub(crate) level: Level,
    pub(crate) name: Arc<str>,
    db_system: Option<&'static str>,
    rpc_system: Option<&'static str>,
    rpc_service: Option<Arc<str>>,
    namespace: Option<Arc<str>>,
    address: Option<Arc<str>>,
    port: Option<u16>,
}

impl fmt::Debug for ClientSpanConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSpanConfig")
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

impl ClientSpanConfig {
    /// A dependency of no particular kind: spans named `name`, at INFO.
    #[must_use]
    pub fn new(name: &str) -> Self {
        ClientSpanConfig {
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
        ClientSpanConfig {
            db_system: Some(system),
            ..ClientSpanConfig::new(system)
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

    /// An HTTP upstream: spans named after the method once [`RecordHttpLayer`](crate::RecordHttpLayer) (or the client)
    /// records it, `http` until then.
    #[must_use]
    pub fn http() -> Self {
        ClientSpanConfig::new("http")
    }

    /// A gRPC service (`grpc.health.v1.Health`): `rpc.system` `grpc`, `rpc.service`, and
    /// spans named `service/Method` once the method is known.
    #[must_use]
    pub fn grpc(service: &str) -> Self {
        ClientSpanConfig {
            rpc_system: Some("grpc"),
            rpc_service: Some(service.into()),
            ..ClientSpanConfig::new(service)
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
    #[must_use]
    pub fn dependency_name(&self) -> Arc<str> {
        self.name.clone()
    }

    /// A new span for one call, a child of the current span; disabled (and free) when no
    /// subscriber wants it.
    pub(crate) fn span(&self) -> Span {
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
/// gRPC stub in a `service_fn`); calls over a channel are named by [`RecordHttpLayer`](crate::RecordHttpLayer).
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
pub(crate) fn rename(span: &Span, name: String) {
    #[cfg(feature = "opentelemetry")]
    {
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        opentelemetry::trace::TraceContextExt::span(&span.context()).update_name(name.clone());
    }
    span.record(schema::OTEL_NAME, name);
}
