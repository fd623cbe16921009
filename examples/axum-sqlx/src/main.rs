//! An axum service over sqlx (PostgreSQL) and Redis, each behind Seawall's standard pipeline:
//! the pattern to copy for an axum + sqlx stack.
//!
//! ```sh
//! cargo run -p seawall-example-axum-sqlx   # DATABASE_URL, REDIS_URL, ADDR (127.0.0.1:3000), BUDGET_MS (2000)
//! curl -s -XPOST localhost:3000/items -H 'content-type: application/json' -d '{"name":"a","value":1}'
//! curl -si localhost:3000/items/1          # x-cache: miss, then hit
//! ```
//!
//! - The pipelines live in the router's state, cloned per request: every clone shares the
//!   breaker, the limit and the retry budget.
//! - Each request has one deadline, set when it arrives and carried by every call it makes,
//!   so a read that goes to Redis, then PostgreSQL, then Redis again answers within it.
//! - Handlers return `Result<_, seawall::Problem>`: `?` answers every failure through
//!   `Problem`'s `IntoResponse` (problem+json, the status from the class, `Retry-After`, never the
//!   database's message). sqlx's and redis-rs's errors are classified by the default
//!   classifier: no `map_err`, no classifier of our own.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use redis::AsyncCommands;
use seawall::{BoxError, Class, FailureKind, Problem, RetryHint, StandardPipeline, WithDeadline};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::time::Instant;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Item {
    id: i64,
    name: String,
    value: i64,
}

#[derive(Debug, Clone, Deserialize)]
struct NewItem {
    name: String,
    value: i64,
}

/// A database call: the pipeline may send it again, so it is `Clone`.
#[derive(Debug, Clone)]
enum DbCall {
    Get(i64),
    Insert(NewItem),
}

/// A cache call.
#[derive(Debug, Clone)]
enum CacheCall {
    Get(i64),
    Put(i64, String),
}

type Db = BoxCloneSyncService<WithDeadline<DbCall>, Option<Item>, seawall::Error>;
type Cache = BoxCloneSyncService<WithDeadline<CacheCall>, Option<String>, seawall::Error>;

/// One pipeline per dependency, and every request's end-to-end budget: all its calls,
/// their retries and waits included.
#[derive(Clone)]
struct AppState {
    db: Db,
    cache: Cache,
    budget: Duration,
}

impl AppState {
    fn new(
        pool: PgPool,
        redis: redis::aio::ConnectionManager,
        budget: Duration,
    ) -> Result<Self, BoxError> {
        // The PostgreSQL preset sized to the pool, and the Redis preset.
        let pool_size = pool.options().get_max_connections() as usize;
        let db = StandardPipeline::postgres(pool_size)
            .build()?
            .layer(tower::service_fn(move |call: WithDeadline<DbCall>| {
                run_db(pool.clone(), call.into_inner())
            }));
        let cache = StandardPipeline::redis(64)
            .build()?
            .layer(tower::service_fn(move |call: WithDeadline<CacheCall>| {
                run_cache(redis.clone(), call.into_inner())
            }));
        Ok(AppState {
            db: BoxCloneSyncService::new(db),
            cache: BoxCloneSyncService::new(cache),
            budget,
        })
    }
}

async fn run_db(pool: PgPool, call: DbCall) -> Result<Option<Item>, sqlx::Error> {
    let row: Option<(i64, String, i64)> = match call {
        DbCall::Get(id) => {
            sqlx::query_as("SELECT id, name, value FROM axum_items WHERE id = $1")
                .bind(id)
                .fetch_optional(&pool)
                .await?
        }
        DbCall::Insert(new) => Some(
            sqlx::query_as(
                "INSERT INTO axum_items (name, value) VALUES ($1, $2) RETURNING id, name, value",
            )
            .bind(new.name)
            .bind(new.value)
            .fetch_one(&pool)
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
        CacheCall::Get(id) => redis.get(key(id)).await,
        CacheCall::Put(id, json) => redis.set_ex(key(id), json, 60).await.map(|()| None),
    }
}

fn key(id: i64) -> String {
    format!("seawall:axum:item:{id}")
}

async fn create(
    State(state): State<AppState>,
    Json(new): Json<NewItem>,
) -> Result<(StatusCode, Json<Item>), Problem> {
    let deadline = Instant::now() + state.budget;
    if new.name.is_empty() || new.name.chars().count() > 200 {
        // The caller's mistake: 400, and the breaker does not count it.
        let invalid = Class::failure(FailureKind::Invalid, RetryHint::Never);
        let error = seawall::Error::new(invalid, "name must be 1 to 200 characters");
        return Err(error.into());
    }
    let call = WithDeadline::new(DbCall::Insert(new)).deadline_at(deadline);
    let item = state.db.oneshot(call).await?;
    Ok((
        StatusCode::CREATED,
        Json(item.expect("an insert returns its row")),
    ))
}

async fn read(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Response, Problem> {
    let deadline = Instant::now() + state.budget;
    let cache_get = WithDeadline::new(CacheCall::Get(id)).deadline_at(deadline);
    let cached = state.cache.clone().oneshot(cache_get).await;
    if let Ok(Some(json)) = &cached
        && let Ok(item) = serde_json::from_str::<Item>(json)
    {
        return Ok(with_cache(Json(item), "hit"));
    }
    let db_get = WithDeadline::new(DbCall::Get(id)).deadline_at(deadline);
    let Some(item) = state.db.oneshot(db_get).await? else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    // The cache is never required: when it failed, skip it; filling it is best effort.
    if cached.is_err() {
        return Ok(with_cache(Json(item), "bypass"));
    }
    let json = serde_json::to_string(&item).expect("an item serializes");
    let cache_put = WithDeadline::new(CacheCall::Put(id, json)).deadline_at(deadline);
    let _ = state.cache.oneshot(cache_put).await;
    Ok(with_cache(Json(item), "miss"))
}

fn with_cache(body: Json<Item>, outcome: &'static str) -> Response {
    ([("x-cache", HeaderValue::from_static(outcome))], body).into_response()
}

async fn run(database: &str, redis: &str, addr: &str, budget: &str) -> Result<(), BoxError> {
    let budget = match budget.parse() {
        Ok(ms) if ms > 0 => Duration::from_millis(ms),
        _ => {
            return Err(
                format!("BUDGET_MS is `{budget}`, not a whole number of ms above 0").into(),
            );
        }
    };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        // Well under the request's budget: with the database down, each attempt gives up in
        // time for the request to answer 503, not 504.
        .acquire_timeout(Duration::from_millis(300))
        .connect(database)
        .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS axum_items (
            id bigserial PRIMARY KEY, name text NOT NULL, value bigint NOT NULL)",
    )
    .execute(&pool)
    .await?;
    let redis = redis::aio::ConnectionManager::new(redis::Client::open(redis)?).await?;
    let app = Router::new()
        .route("/items", post(create))
        .route("/items/{id}", get(read))
        .with_state(AppState::new(pool, redis, budget)?);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let env = |name, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let database = env(
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/postgres",
    );
    let redis = env("REDIS_URL", "redis://127.0.0.1:6379/");
    let addr = env("ADDR", "127.0.0.1:3000");
    let budget = env("BUDGET_MS", "2000");
    if let Err(error) = run(&database, &redis, &addr, &budget).await {
        eprintln!("error: {error}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
