//! An axum service over sqlx (PostgreSQL) and Redis, each behind Seawall's standard pipeline:
//! the pattern to copy for an axum + sqlx stack.
//!
//! - `POST /items` (`{"name": "...", "value": 1}`) inserts a row and answers `201` with it;
//! - `GET /items/{id}` reads through the cache: Redis first, then PostgreSQL, then fills Redis
//!   (`x-cache: hit`, `miss` or `bypass` when Redis is failing: the cache is never required).
//!
//! The pipelines live in the router's state, cloned per request (their breaker, limit and
//! budget are shared by every clone). Handlers return `Result<_, seawall::Error>` and `?`
//! answers every failure in one place: `IntoResponse` (feature `axum`) turns the class into
//! problem+json with the right status and `Retry-After`. sqlx's and redis-rs's errors are
//! classified by the default classifier (features `sqlx` and `redis`): no `map_err`, no
//! classifier of our own.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use seawall::breaker::BreakerHandle;
use seawall::{BoxError, StandardPipeline, WithDeadline};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt};

/// An item, as stored and as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Its id.
    pub id: i64,
    /// Its name, 1 to 200 characters.
    pub name: String,
    /// Its value.
    pub value: i64,
}

/// What `POST /items` takes.
#[derive(Debug, Clone, Deserialize)]
pub struct NewItem {
    /// The name, 1 to 200 characters.
    pub name: String,
    /// The value.
    pub value: i64,
}

/// A database call: a request the pipeline may send again, so `Clone`.
#[derive(Debug, Clone)]
pub enum DbCall {
    /// Reads an item.
    Get(i64),
    /// Inserts an item.
    Insert(NewItem),
}

/// A cache call.
#[derive(Debug, Clone)]
pub enum CacheCall {
    /// Reads an item's JSON.
    Get(i64),
    /// Stores an item's JSON for a minute.
    Put(i64, String),
}

type Db = BoxCloneSyncService<WithDeadline<DbCall>, Option<Item>, seawall::Error>;
type Cache = BoxCloneSyncService<WithDeadline<CacheCall>, Option<String>, seawall::Error>;

/// The service's state: one pipeline per dependency.
#[derive(Clone)]
pub struct AppState {
    db: Db,
    cache: Cache,
    /// The database's breaker, for health checks and tests.
    pub db_breaker: BreakerHandle,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("db_breaker", &self.db_breaker.state())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Wraps a sqlx pool and a Redis connection in the standard pipelines: the PostgreSQL
    /// preset sized to the pool, and the Redis preset.
    pub fn new(
        pool: PgPool,
        redis: redis::aio::ConnectionManager,
    ) -> Result<Self, seawall::ConfigError> {
        let pool_size = pool.options().get_max_connections() as usize;
        let db = StandardPipeline::postgres(pool_size).build()?;
        let db_breaker = db.breaker().expect("the preset has a breaker");
        let db = db.layer(tower::service_fn(move |call: WithDeadline<DbCall>| {
            let pool = pool.clone();
            async move { run_db(&pool, call.into_inner()).await }
        }));
        let cache = StandardPipeline::redis(64)
            .build()?
            .layer(tower::service_fn(move |call: WithDeadline<CacheCall>| {
                let redis = redis.clone();
                async move { run_cache(redis, call.into_inner()).await }
            }));
        Ok(AppState {
            db: BoxCloneSyncService::new(db),
            cache: BoxCloneSyncService::new(cache),
            db_breaker,
        })
    }
}

type Row = (i64, String, i64);

async fn run_db(pool: &PgPool, call: DbCall) -> Result<Option<Item>, sqlx::Error> {
    let row: Option<Row> = match call {
        DbCall::Get(id) => {
            sqlx::query_as("SELECT id, name, value FROM axum_items WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        }
        DbCall::Insert(item) => Some(
            sqlx::query_as(
                "INSERT INTO axum_items (name, value) VALUES ($1, $2) RETURNING id, name, value",
            )
            .bind(item.name)
            .bind(item.value)
            .fetch_one(pool)
            .await?,
        ),
    };
    Ok(row.map(|(id, name, value)| Item { id, name, value }))
}

async fn run_cache(
    mut redis: redis::aio::ConnectionManager,
    call: CacheCall,
) -> Result<Option<String>, redis::RedisError> {
    match call {
        CacheCall::Get(id) => redis::cmd("GET").arg(key(id)).query_async(&mut redis).await,
        CacheCall::Put(id, json) => {
            redis::cmd("SET")
                .arg(key(id))
                .arg(json)
                .arg("EX")
                .arg(60)
                .query_async::<()>(&mut redis)
                .await?;
            Ok(None)
        }
    }
}

fn key(id: i64) -> String {
    format!("seawall:axum:item:{id}")
}

/// Creates the table if it is missing.
pub async fn create_schema(pool: &PgPool) -> Result<(), BoxError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS axum_items (
            id bigserial PRIMARY KEY, name text NOT NULL, value bigint NOT NULL)",
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// The routes.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/items", post(create))
        .route("/items/{id}", get(read))
        .with_state(state)
}

/// Every request's end-to-end budget, retries and waits included.
const BUDGET: Duration = Duration::from_secs(2);

async fn create(
    State(state): State<AppState>,
    Json(new): Json<NewItem>,
) -> Result<Response, seawall::Error> {
    if new.name.is_empty() || new.name.chars().count() > 200 {
        return Ok(invalid("`name` must be 1 to 200 characters"));
    }
    let call = WithDeadline::new(DbCall::Insert(new)).deadline_in(BUDGET);
    let item = state
        .db
        .oneshot(call)
        .await?
        .expect("an insert returns its row");
    Ok((StatusCode::CREATED, Json(item)).into_response())
}

async fn read(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, seawall::Error> {
    let cached = state
        .cache
        .clone()
        .oneshot(WithDeadline::new(CacheCall::Get(id)).deadline_in(BUDGET))
        .await;
    if let Ok(Some(json)) = &cached
        && let Ok(item) = serde_json::from_str::<Item>(json)
    {
        return Ok(with_cache(Json(item).into_response(), "hit"));
    }
    let call = WithDeadline::new(DbCall::Get(id)).deadline_in(BUDGET);
    let Some(item) = state.db.oneshot(call).await? else {
        return Ok(problem(StatusCode::NOT_FOUND, "no such item"));
    };
    let outcome = if cached.is_ok() {
        let json = serde_json::to_string(&item).expect("an item serializes");
        // Filling the cache is best effort: a failing cache costs nothing but the next miss.
        let _ = state
            .cache
            .oneshot(WithDeadline::new(CacheCall::Put(id, json)).deadline_in(BUDGET))
            .await;
        "miss"
    } else {
        "bypass"
    };
    Ok(with_cache(Json(item).into_response(), outcome))
}

fn with_cache(mut response: Response, outcome: &'static str) -> Response {
    response
        .headers_mut()
        .insert("x-cache", HeaderValue::from_static(outcome));
    response
}

fn invalid(detail: &'static str) -> Response {
    problem(StatusCode::UNPROCESSABLE_ENTITY, detail)
}

fn problem(status: StatusCode, detail: &'static str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/problem+json"),
    );
    let body = serde_json::json!({ "title": status.canonical_reason(), "status": status.as_u16(), "detail": detail });
    (status, headers, body.to_string()).into_response()
}
