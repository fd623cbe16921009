//! The routes: items, health, metrics, and the breakers' admin.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use opentelemetry::KeyValue;
use seawall::breaker::{BreakerHandle, State};
use seawall::{Error, WithDeadline};
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;
use tower::ServiceExt;
use tracing::Instrument as _;

use crate::config::Config;
use crate::deps::{self, Cache, CacheOp, Database, DbOp, DbReply, Item, Layers, NewItem};
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

    async fn create_item(&self, request: Request<Incoming>, deadline: Instant) -> Response<Body> {
        let (parts, body) = request.into_parts();
        if !is_json(&parts.headers) {
            return problem::problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "send the item as Content-Type: application/json",
            );
        }
        let key = match parts
            .headers
            .get("idempotency-key")
            .map(HeaderValue::as_bytes)
        {
            None => return problem::bad_request("the Idempotency-Key header is required"),
            Some(key)
                if key.is_empty() || key.len() > 128 || !key.iter().all(u8::is_ascii_graphic) =>
            {
                return problem::bad_request(
                    "Idempotency-Key must be 1 to 128 visible ASCII characters",
                );
            }
            Some(key) => String::from_utf8_lossy(key).into_owned(),
        };
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > MAX_BODY as u64) {
            // Read (and drop) a body of moderate size before answering: a client still
            // writing it when the connection closes gets a broken pipe instead of the 413.
            if declared.is_some_and(|length| length <= DRAIN_LIMIT as u64) {
                let _ = Limited::new(body, DRAIN_LIMIT).collect().await;
            }
            return too_large();
        }
        let bytes = match Limited::new(body, MAX_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => return too_large(),
            Err(_) => return problem::bad_request("the request body could not be read"),
        };
        let new = match parse_item(&bytes) {
            Ok((name, value)) => NewItem::new(key, name, value),
            Err(response) => return *response,
        };
        let db = &self.inner.db;
        let call = WithDeadline::new(DbOp::Insert(new)).deadline_at(deadline);
        match db.service.clone().oneshot(call).await {
            Ok(DbReply::Created(item)) => item_response(StatusCode::CREATED, &item, None, false),
            Ok(DbReply::Replayed(item)) => item_response(StatusCode::CREATED, &item, None, true),
            Ok(DbReply::KeyReused) => problem::unprocessable(
                "this Idempotency-Key was already used with a different body",
            ),
            Ok(DbReply::Found(_) | DbReply::Stale(_) | DbReply::Pong) => problem::internal(),
            Err(error) => self.failed("PostgreSQL", &db.last_failure, &error),
        }
    }

    async fn get_item(&self, id: i64, deadline: Instant) -> Response<Body> {
        let cache = &self.inner.cache;
        let lookup = WithDeadline::new(CacheOp::Get(id)).deadline_at(deadline);
        let cache_state = match cache.service.clone().oneshot(lookup).await {
            Ok(Some(json)) => match serde_json::from_str::<Item>(&json) {
                Ok(item) if item.id == id => {
                    return item_response(StatusCode::OK, &item, Some("hit"), false);
                }
                _ => "miss",
            },
            Ok(None) => "miss",
            Err(error) => {
                cache.last_failure.record(&error);
                "bypass"
            }
        };
        let db = &self.inner.db;
        let call = WithDeadline::new(DbOp::Get(id)).deadline_at(deadline);
        match db.reads.clone().oneshot(call).await {
            Ok(DbReply::Stale(item)) => {
                // PostgreSQL could not answer (its breaker and /health say why): Redis's
                // stale copy did, and the response says so.
                item_response(StatusCode::OK, &item, Some("stale"), false)
            }
            Ok(DbReply::Found(Some(item))) => {
                if cache_state == "miss"
                    && let Ok(json) = serde_json::to_string(&item)
                {
                    let config = &self.inner.config;
                    let fill = CacheOp::Put(id, json, config.cache_ttl, config.stale_ttl);
                    let fill = WithDeadline::new(fill).deadline_at(deadline);
                    if let Err(error) = cache.service.clone().oneshot(fill).await {
                        cache.last_failure.record(&error);
                    }
                }
                item_response(StatusCode::OK, &item, Some(cache_state), false)
            }
            Ok(DbReply::Found(None)) => {
                let mut response = problem::not_found("no item has this id");
                response
                    .headers_mut()
                    .insert("x-cache", HeaderValue::from_static(cache_state));
                response
            }
            Ok(_) => problem::internal(),
            Err(error) => self.failed("PostgreSQL", &db.last_failure, &error),
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

    /// `/health`: both pings at once (each bounded), breakers, pool and limits.
    pub async fn health(&self) -> Response<Body> {
        let (db, cache) = (&self.inner.db, &self.inner.cache);
        let ((db_ok, db_ping), (cache_ok, cache_ping)) =
            tokio::join!(timed(ping_db(db)), timed(ping_cache(cache)));
        let db_status = dependency_status(db_ok, db_ping, db.breaker.as_ref());
        let cache_status = dependency_status(cache_ok, cache_ping, cache.breaker.as_ref());
        let overall = match (db_status, cache_status) {
            ("down", _) => "down",
            ("up", "up") => "ok",
            _ => "degraded",
        };
        let pool = db.pool.status();
        let body = json!({
            "status": overall,
            "dependencies": {
                "postgres": {
                    "status": db_status,
                    "breaker": db.breaker.as_ref().map(|b| b.state().as_str()),
                    "probes": db.breaker.as_ref().and_then(probes_json),
                    "last_failure": last_failure(&db.last_failure),
                    "ping_ms": db_ping.map(millis),
                    "pool": {
                        "max": pool.max_size,
                        "size": pool.size,
                        "available": pool.available,
                        "waiting": pool.waiting,
                    },
                    "limit": db.limit.as_ref().map(limit_json),
                },
                "redis": {
                    "status": cache_status,
                    "breaker": cache.breaker.as_ref().map(|b| b.state().as_str()),
                    "probes": cache.breaker.as_ref().and_then(probes_json),
                    "last_failure": last_failure(&cache.last_failure),
                    "ping_ms": cache_ping.map(millis),
                    "limit": cache.limit.as_ref().map(limit_json),
                },
            },
        });
        let status = if overall == "down" {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        json_response(status, &body)
    }

    fn breakers(&self) -> Vec<BreakerHandle> {
        [&self.inner.db.breaker, &self.inner.cache.breaker]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// `/admin/breakers[/{name}/reset|isolate]`: 404 when admin is off, 401 without the
    /// token, then the route.
    fn admin(&self, request: &Request<Incoming>, rest: &[&str]) -> Response<Body> {
        let Some(token) = &self.inner.config.admin_token else {
            return problem::not_found("no such resource");
        };
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .unwrap_or_default();
        if !constant_time_eq(presented, token.as_bytes()) {
            let mut response = problem::problem(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Unauthorized",
                "the admin endpoints need Authorization: Bearer <ADMIN_TOKEN>",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"admin\""),
            );
            return response;
        }
        let breakers = self.breakers();
        match rest {
            [] | [""] => {
                if request.method() != Method::GET {
                    return problem::method_not_allowed("GET");
                }
                let list: Vec<_> = breakers.iter().map(breaker_json).collect();
                json_response(StatusCode::OK, &json!({ "breakers": list }))
            }
            [name, action @ ("reset" | "isolate")] => {
                if request.method() != Method::POST {
                    return problem::method_not_allowed("POST");
                }
                let Some(breaker) = breakers.iter().find(|b| b.name() == *name) else {
                    return problem::not_found("no breaker has this name");
                };
                if *action == "reset" {
                    breaker.reset();
                } else {
                    breaker.force_open();
                }
                tracing::warn!(
                    breaker = breaker.name(),
                    action,
                    "breaker changed by an admin"
                );
                json_response(StatusCode::OK, &breaker_json(breaker))
            }
            _ => problem::not_found("no such resource"),
        }
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemBody {
    name: String,
    value: i64,
}

/// Syntax errors are 400 (the body is not JSON); JSON of the wrong shape or with a name of
/// the wrong length is 422.
fn parse_item(bytes: &[u8]) -> Result<(String, i64), Box<Response<Body>>> {
    let body: ItemBody = serde_json::from_slice(bytes).map_err(|error| {
        Box::new(match error.classify() {
            serde_json::error::Category::Data => problem::unprocessable(
                "the body must be {\"name\": string, \"value\": 64-bit integer} and nothing else",
            ),
            _ => problem::bad_request("the body is not valid JSON"),
        })
    })?;
    let length = body.name.chars().count();
    if !(1..=200).contains(&length) {
        return Err(Box::new(problem::unprocessable(
            "name must be 1 to 200 characters long",
        )));
    }
    Ok((body.name, body.value))
}

fn item_response(
    status: StatusCode,
    item: &Item,
    cache: Option<&'static str>,
    replayed: bool,
) -> Response<Body> {
    let mut response = json_response(status, item);
    if let Some(cache) = cache {
        response
            .headers_mut()
            .insert("x-cache", HeaderValue::from_static(cache));
    }
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response<Body> {
    problem::respond(
        status,
        "application/json",
        serde_json::to_vec(body).unwrap_or_default(),
    )
}

/// Compares every byte whatever the first difference, so the time taken says nothing about
/// how much of a guess was right (only whether its length was).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = a.len() ^ b.len();
    for (i, &expected) in b.iter().enumerate() {
        let presented = a.get(i).copied().unwrap_or(0);
        difference |= usize::from(presented ^ expected);
    }
    difference == 0
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

/// Whether a ping succeeded; a failure is remembered as the dependency's last.
fn recorded(result: Result<(), seawall::BoxError>, last: &deps::LastFailure) -> bool {
    match result {
        Ok(()) => true,
        Err(error) => {
            last.record(&seawall::classify::classified(error));
            false
        }
    }
}

/// `down` when the ping failed or the breaker refuses calls, `recovering` while it probes,
/// `slow` when the ping took longer than [`SLOW_PING`], `up` otherwise.
fn dependency_status(
    ok: bool,
    ping: Option<Duration>,
    breaker: Option<&BreakerHandle>,
) -> &'static str {
    let state = breaker.map(BreakerHandle::state);
    if !ok || matches!(state, Some(State::Open | State::ForcedOpen)) {
        "down"
    } else if state == Some(State::HalfOpen) {
        "recovering"
    } else if ping.is_some_and(|p| p > SLOW_PING) {
        "slow"
    } else {
        "up"
    }
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

fn last_failure(last: &deps::LastFailure) -> serde_json::Value {
    match last.get() {
        Some((kind, age)) => json!({ "class": kind.as_str(), "seconds_ago": millis(age) / 1e3 }),
        None => serde_json::Value::Null,
    }
}

/// What a breaker's recovery probe found: counts, and the last probe's result, age and time.
fn probes_json(breaker: &BreakerHandle) -> Option<serde_json::Value> {
    let stats = breaker.probes()?;
    Some(json!({
        "succeeded": stats.succeeded,
        "failed": stats.failed,
        "last": stats.last.map(|last| json!({
            "ok": last.ok,
            "seconds_ago": millis(last.at.elapsed()) / 1e3,
            "took_ms": millis(last.took),
        })),
    }))
}

fn limit_json(limit: &seawall::limit::LimitHandle) -> serde_json::Value {
    json!({
        "in_flight": limit.in_flight(),
        "queued": limit.queued(),
        "limit": limit.limit(),
    })
}

fn breaker_json(breaker: &BreakerHandle) -> serde_json::Value {
    json!({
        "name": breaker.name(),
        "state": breaker.state().as_str(),
        "retry_after_ms": breaker.retry_after().map(|d| d.as_millis() as u64),
    })
}

#[cfg(test)]
mod tests {
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
