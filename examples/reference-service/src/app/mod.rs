//! The application: its state, the router and what every route shares (deadline, body
//! limits, JSON answers). The routes live in `items.rs`, `health.rs` and `admin.rs`.

mod admin;
mod health;
mod items;

use self::health::recorded;

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use opentelemetry::KeyValue;
use seawall::breaker::State;
use seawall::{Error, WithDeadline};
use tokio::time::Instant;
use tower::ServiceExt;
use tracing::Instrument as _;

use crate::config::Config;
use crate::deps::{self, Cache, Database, DbOp, Layers};
use crate::metrics::Metrics;
use crate::problem::{self, Body};

/// The largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// A body over [`MAX_BODY`] but at most this large is read and dropped before the 413, so the
/// client, still writing it, reads the answer instead of a broken pipe; a larger one is
/// refused at once.
const DRAIN_LIMIT: usize = 1024 * 1024;
/// A ping slower than this marks a dependency `slow` in `/health`.
pub const SLOW_PING: Duration = Duration::from_millis(250);
/// The longest a `/health` ping waits.
pub const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// The service: configuration, dependencies and metrics, shared by every connection.
#[derive(Clone, Debug)]
pub struct App {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: Config,
    db: Database,
    cache: Cache,
    metrics: Metrics,
}

/// Why the service could not start.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

impl App {
    /// Builds the dependencies and creates the schema (retrying for up to ten seconds while
    /// PostgreSQL is unreachable). Redis is connected on first use.
    pub async fn new(config: Config, layers: Layers, metrics: Metrics) -> Result<App, StartError> {
        let (db, cache) = deps::build(&config, layers)
            .map_err(|e| StartError(format!("invalid configuration: {e}")))?;
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            match deps::create_schema(&db.pool).await {
                Ok(()) => break,
                Err(error) if Instant::now() < give_up => {
                    let error = seawall::classify::classified(error);
                    tracing::warn!(kind = ?error.kind(), "cannot create the schema yet; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(error) => {
                    let error = seawall::classify::classified(error);
                    let kind = error.kind().map_or("unknown", |kind| kind.as_str());
                    return Err(StartError(format!(
                        "cannot create the schema in PostgreSQL ({kind} failure): is DATABASE_URL right and the server up?"
                    )));
                }
            }
        }
        metrics.observe_pool(&db.pool, config.db_pool_max);
        for breaker in [&db.breaker, &cache.breaker].into_iter().flatten() {
            metrics.observe_breaker(breaker);
        }
        for (system, limit) in [("postgresql", &db.limit), ("redis", &cache.limit)] {
            if let Some(limit) = limit {
                metrics.observe_limit(system, limit);
            }
        }
        Ok(App {
            inner: Arc::new(Shared {
                config,
                db,
                cache,
                metrics,
            }),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The database (pool, breaker, limit).
    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    /// The cache (breaker, limit).
    pub fn cache(&self) -> &Cache {
        &self.inner.cache
    }

    /// Answers one request, recording the HTTP server metrics.
    pub async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        let started = Instant::now();
        let method = request.method().clone();
        let metrics = &self.inner.metrics;
        // The server span (OpenTelemetry's HTTP conventions): the dependencies' spans nest
        // under it. No query string, headers or body are recorded.
        let route = route_of(request.uri().path());
        let span = tracing::info_span!(
            "HTTP request",
            otel.name = format!("{} {route}", method_label(&method)),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            http.request.method = method_label(&method),
            http.route = route,
            http.response.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
        );
        metrics.active_requests.add(1, &[]);
        let response = self.route(request, route).instrument(span.clone()).await;
        metrics.active_requests.add(-1, &[]);
        let status = response.status();
        span.record("http.response.status_code", i64::from(status.as_u16()));
        if status.is_server_error() {
            span.record("otel.status_code", "error");
            span.record("error.type", status.as_str());
        }
        metrics.request_duration.record(
            started.elapsed().as_secs_f64(),
            &[
                KeyValue::new("http.request.method", method_label(&method)),
                KeyValue::new("http.route", route),
                KeyValue::new(
                    "http.response.status_code",
                    i64::from(response.status().as_u16()),
                ),
            ],
        );
        response
    }

    async fn route(&self, request: Request<Incoming>, route: &'static str) -> Response<Body> {
        let method = request.method().clone();
        match route {
            "/items" if method == Method::POST => {
                self.with_deadline(request, |app, request, deadline| async move {
                    app.create_item(request, deadline).await
                })
                .await
            }
            "/items" => problem::method_not_allowed("POST"),
            "/items/{id}" if method == Method::GET => {
                let id = request
                    .uri()
                    .path()
                    .rsplit('/')
                    .next()
                    .and_then(|id| id.parse::<i64>().ok())
                    .filter(|id| *id > 0);
                self.with_deadline(request, |app, _, deadline| async move {
                    match id {
                        Some(id) => app.get_item(id, deadline).await,
                        None => problem::not_found("no item has this id"),
                    }
                })
                .await
            }
            "/items/{id}" => problem::method_not_allowed("GET"),
            "/health" if method == Method::GET => self.health().await,
            "/metrics" if method == Method::GET => self.inner.metrics.render(),
            "/health" | "/metrics" => problem::method_not_allowed("GET"),
            "/admin/breakers" => {
                let path = request.uri().path().to_owned();
                let rest: Vec<&str> = path.trim_start_matches('/').split('/').skip(2).collect();
                self.admin(&request, &rest)
            }
            _ => problem::not_found("no such resource"),
        }
    }

    /// Runs `handler` under the request's deadline: `REQUEST_TIMEOUT_MS`, lowered by the
    /// client's `X-Request-Timeout-Ms`. Whatever the handler does, the answer comes by then.
    async fn with_deadline<F, Fut>(&self, request: Request<Incoming>, handler: F) -> Response<Body>
    where
        F: FnOnce(App, Request<Incoming>, Instant) -> Fut,
        Fut: Future<Output = Response<Body>>,
    {
        let mut budget = self.inner.config.request_timeout;
        if let Some(value) = request.headers().get("x-request-timeout-ms") {
            match value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|ms| *ms > 0)
            {
                Some(ms) => budget = budget.min(Duration::from_millis(ms)),
                None => {
                    return problem::bad_request(
                        "X-Request-Timeout-Ms must be a positive whole number of milliseconds",
                    );
                }
            }
        }
        let deadline = Instant::now() + budget;
        match tokio::time::timeout_at(deadline, handler(self.clone(), request, deadline)).await {
            Ok(response) => response,
            Err(_) => problem::deadline_exceeded(),
        }
    }

    fn failed(&self, dependency: &str, last: &deps::LastFailure, error: &Error) -> Response<Body> {
        last.record(error);
        let response = problem::dependency_error(dependency, error);
        if response.status() == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(dependency, error = %error, "request failed");
        } else {
            tracing::debug!(dependency, kind = ?error.kind(), "request failed");
        }
        response
    }
}

/// The route template a path belongs to (the `http.route` of metrics and spans), or `other`.
fn route_of(path: &str) -> &'static str {
    let mut segments = path.trim_start_matches('/').split('/');
    match (segments.next(), segments.next(), segments.next()) {
        (Some("items"), None, _) => "/items",
        (Some("items"), Some(_), None) => "/items/{id}",
        (Some("health"), None, _) => "/health",
        (Some("metrics"), None, _) => "/metrics",
        (Some("admin"), Some("breakers"), _) => "/admin/breakers",
        _ => "other",
    }
}

fn too_large() -> Response<Body> {
    problem::problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        "Payload too large",
        "the body may be at most 64 KiB",
    )
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "_OTHER",
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response<Body> {
    problem::respond(
        status,
        "application/json",
        serde_json::to_vec(body).unwrap_or_default(),
    )
}

async fn timed<F: Future<Output = bool>>(ping: F) -> (bool, Option<Duration>) {
    let started = Instant::now();
    match tokio::time::timeout(PING_TIMEOUT, ping).await {
        Ok(true) => (true, Some(started.elapsed())),
        _ => (false, None),
    }
}

/// `SELECT 1` through the database's service, like any call: inside its concurrency limit
/// (a ping never takes a pool connection a request was admitted for), refused by an open
/// breaker without knocking, within the ping's own deadline.
async fn ping_db(db: &Database) -> bool {
    let call = WithDeadline::new(DbOp::Ping).deadline_in(PING_TIMEOUT);
    match db.service.clone().oneshot(call).await {
        Ok(_) => true,
        Err(error) => {
            db.last_failure.record(&error);
            false
        }
    }
}

async fn ping_cache(cache: &Cache) -> bool {
    // An open breaker means the cache is being skipped: do not knock on its door.
    if cache
        .breaker
        .as_ref()
        .is_some_and(|b| matches!(b.state(), State::Open | State::ForcedOpen))
    {
        return false;
    }
    let result = async {
        let mut connection = cache.client.connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await?;
        Ok(())
    }
    .await;
    recorded(result, &cache.last_failure)
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::admin::constant_time_eq;
    use super::items::parse_item;
    use super::*;

    #[test]
    fn paths_map_to_their_route_templates() {
        for (path, route) in [
            ("/items", "/items"),
            ("/items/42", "/items/{id}"),
            ("/items/", "/items/{id}"),
            ("/items/1/x", "other"),
            ("/health", "/health"),
            ("/metrics", "/metrics"),
            ("/admin/breakers", "/admin/breakers"),
            ("/admin/breakers/redis/reset", "/admin/breakers"),
            ("/admin", "other"),
            ("/", "other"),
            ("/nothing/here", "other"),
        ] {
            assert_eq!(route_of(path), route, "{path}");
        }
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abcdefghijklmnop", b"abcdefghijklmnop"));
        assert!(!constant_time_eq(b"abcdefghijklmnoq", b"abcdefghijklmnop"));
        assert!(!constant_time_eq(b"abcdefghijklmno", b"abcdefghijklmnop"));
        assert!(!constant_time_eq(b"abcdefghijklmnopq", b"abcdefghijklmnop"));
        assert!(!constant_time_eq(b"", b"abcdefghijklmnop"));
    }

    #[test]
    fn bodies_are_checked() {
        assert_eq!(
            parse_item(br#"{"name":"a","value":-3}"#).unwrap(),
            ("a".to_owned(), -3)
        );
        let status = |body: &[u8]| parse_item(body).unwrap_err().status();
        assert_eq!(status(b"{"), StatusCode::BAD_REQUEST);
        assert_eq!(status(b"nonsense"), StatusCode::BAD_REQUEST);
        assert_eq!(status(br#"{"name":"a"}"#), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            status(br#"{"name":"a","value":1.5}"#),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            status(br#"{"name":"a","value":99999999999999999999}"#),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            status(br#"{"name":"","value":1}"#),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let long = format!(r#"{{"name":"{}","value":1}}"#, "é".repeat(201));
        assert_eq!(status(long.as_bytes()), StatusCode::UNPROCESSABLE_ENTITY);
        let fits = format!(r#"{{"name":"{}","value":1}}"#, "é".repeat(200));
        assert!(parse_item(fits.as_bytes()).is_ok());
        assert_eq!(
            status(br#"{"name":"a","value":1,"extra":true}"#),
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
}
