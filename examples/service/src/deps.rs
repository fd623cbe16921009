//! The two dependencies, each a tower service behind its own standard pipeline: PostgreSQL
//! (the source of truth) and Redis (a read-through cache).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Hook, HookError, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use seawall::breaker::{BreakerHandle, Probe};
use seawall::classify::AssumeIdempotent;
use seawall::fallback::{DEFAULT_TRIGGERS, FallbackLayer, FallbackRequest};
use seawall::limit::{ConcurrencyLimitLayer, LimitHandle};
use seawall::retry::{Backoff, Jitter, RetryBudget, RetryLayer};
use seawall::trace::{ClientSpanConfig, record_db_operation};
use seawall::{BoxError, Error, FailureKind, HasDeadline, StandardPipeline, WithDeadline};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt, service_fn};

use crate::config::Config;

/// The table, created on start. The unique idempotency key is what makes a repeated write
/// harmless: a second insert with the same key finds the first row instead of adding one.
const SCHEMA: &str = "
    SELECT pg_advisory_xact_lock(7316400112);
    CREATE TABLE IF NOT EXISTS seawall_items (
        id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        idempotency_key text   NOT NULL UNIQUE CHECK (char_length(idempotency_key) BETWEEN 1 AND 128),
        name            text   NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
        value           bigint NOT NULL,
        created_at      timestamptz NOT NULL DEFAULT now()
    );
    ALTER TABLE seawall_items ADD COLUMN IF NOT EXISTS request_id bigint;
";

/// An item as stored and as served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Assigned by the database.
    pub id: i64,
    /// 1 to 200 characters.
    pub name: String,
    /// Any 64-bit integer.
    pub value: i64,
}

impl Item {
    /// From a row of `SELECT id, name, value`.
    fn from_row(row: &tokio_postgres::Row) -> Item {
        Item {
            id: row.get(0),
            name: row.get(1),
            value: row.get(2),
        }
    }
}

/// A write: the item's fields and the client's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    /// The client's `Idempotency-Key`.
    pub key: String,
    /// The item's name.
    pub name: String,
    /// The item's value.
    pub value: i64,
    /// The request's own id, stored with the row: an earlier attempt of the same request
    /// that wrote the row (its answer lost, the call retried) is told from an earlier request.
    pub request: i64,
}

impl NewItem {
    /// A write of `name` and `value` under the client's `key`, with a new request id.
    #[must_use]
    pub fn new(key: String, name: String, value: i64) -> NewItem {
        use std::hash::BuildHasher;
        use std::sync::OnceLock;
        use std::sync::atomic::{AtomicU64, Ordering};
        // A random start per process, then one apart: unique within the process, and across
        // processes but for a 2^-64 chance.
        static START: OnceLock<u64> = OnceLock::new();
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let start = *START.get_or_init(|| {
            std::collections::hash_map::RandomState::new().hash_one(std::process::id())
        });
        let request = start.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) as i64;
        NewItem {
            key,
            name,
            value,
            request,
        }
    }
}

/// A call to PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbOp {
    /// Read one item.
    Get(i64),
    /// Insert an item unless its key was used before.
    Insert(NewItem),
    /// `SELECT 1`, for `/health`.
    Ping,
}

/// PostgreSQL's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbReply {
    /// The item read, if it exists.
    Found(Option<Item>),
    /// The new row.
    Created(Item),
    /// The key was used before with the same body: the row written then.
    Replayed(Item),
    /// The key was used before with a different body.
    KeyReused,
    /// PostgreSQL could not answer a read; the item as Redis last kept it (the read
    /// service's fallback).
    Stale(Item),
    /// The answer to a ping.
    Pong,
}

/// A call to Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheOp {
    /// Read a cached item's JSON.
    Get(i64),
    /// Cache an item's JSON for `ttl`, and a stale copy for the second duration (none when
    /// zero).
    Put(i64, String, Duration, Duration),
    /// Read the stale copy of an item's JSON.
    GetStale(i64),
}

/// A dependency as the handlers call it: classified errors, whatever the layers.
pub type DbService = BoxCloneSyncService<WithDeadline<DbOp>, DbReply, Error>;
/// The cache as the handlers call it.
pub type CacheService = BoxCloneSyncService<WithDeadline<CacheOp>, Option<String>, Error>;

/// Whether the dependencies get Seawall's layers (the service) or are called directly (the
/// baseline of the load measurement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layers {
    /// Each dependency behind its standard pipeline.
    Seawall,
    /// Each client called directly; errors classified the same way so handlers answer alike.
    Bare,
}

/// What the service remembers of a dependency's last failure, for `/health`.
#[derive(Debug, Default)]
pub struct LastFailure {
    inner: Mutex<Option<(FailureKind, Instant)>>,
}

impl LastFailure {
    /// Records a failed call (local rejections included: they say the breaker is open).
    pub fn record(&self, error: &Error) {
        if let Some(kind) = error.kind() {
            *self.inner.lock().unwrap_or_else(|e| e.into_inner()) = Some((kind, Instant::now()));
        }
    }

    /// The kind and age of the last failure.
    pub fn get(&self) -> Option<(FailureKind, Duration)> {
        let last = *self.inner.lock().unwrap_or_else(|e| e.into_inner());
        last.map(|(kind, at)| (kind, at.elapsed()))
    }
}

/// PostgreSQL: the pool, the service the handlers call, and the pipeline's handles.
#[derive(Clone)]
pub struct Database {
    /// The connection pool (for `/health` and shutdown).
    pub pool: Pool,
    /// The service the handlers call.
    pub service: DbService,
    /// The service reads go through: with Seawall's layers, a read PostgreSQL cannot answer
    /// (its breaker open, unreachable, too slow) is answered from Redis's stale copy of the
    /// item, when there is one ([`stale_reads`]).
    pub reads: DbService,
    /// The breaker's handle (`None` without layers).
    pub breaker: Option<BreakerHandle>,
    /// The limit's handle (`None` without layers).
    pub limit: Option<LimitHandle>,
    /// The last failure.
    pub last_failure: Arc<LastFailure>,
}

/// Redis: the lazily connected client, the service, and the pipeline's handles.
#[derive(Clone)]
pub struct Cache {
    /// The connection (made on first use, remade by the manager after a failure).
    pub client: RedisClient,
    /// The service the handlers call.
    pub service: CacheService,
    /// The breaker's handle (`None` without layers).
    pub breaker: Option<BreakerHandle>,
    /// The limit's handle (`None` without layers).
    pub limit: Option<LimitHandle>,
    /// The last failure.
    pub last_failure: Arc<LastFailure>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").finish_non_exhaustive()
    }
}

/// The PostgreSQL pipeline: the preset for a pool of `DB_POOL_MAX`, whose limit queues for at
/// most `DB_POOL_WAIT_MS` (so the pool itself never has to), attempts of `DB_TIMEOUT_MS`,
/// and every call marked idempotent: reads are, and writes are made so by their key.
pub fn db_pipeline(
    config: &Config,
) -> StandardPipeline<seawall::DefaultClassifier, AssumeIdempotent> {
    StandardPipeline::postgres(config.db_pool_max)
        .deadline(config.request_timeout)
        .attempt_timeout(config.db_timeout)
        .concurrency_limit(
            ConcurrencyLimitLayer::builder(config.db_pool_max)
                .queue(config.db_pool_max.saturating_mul(4))
                .max_wait(config.db_pool_wait),
        )
        .idempotency(AssumeIdempotent)
        .client_span(db_span(config))
}

/// What each PostgreSQL call's span says about the server: its address, port and database
/// (never the connection string).
fn db_span(config: &Config) -> ClientSpanConfig {
    let pg = config.postgres();
    let mut span = ClientSpanConfig::postgresql();
    if let Some(name) = pg.get_dbname() {
        span = span.namespace(name);
    }
    let host = pg.get_hosts().iter().find_map(|host| match host {
        tokio_postgres::config::Host::Tcp(host) => Some(host.clone()),
        #[allow(unreachable_patterns)]
        _ => None,
    });
    if let Some(host) = host {
        span = span.server(&host, pg.get_ports().first().copied().unwrap_or(5432));
    }
    span
}

/// What each Redis call's span says about the server: its address, port and database index.
fn cache_span(config: &Config) -> ClientSpanConfig {
    let mut span = ClientSpanConfig::redis();
    if let Ok(client) = redis::Client::open(config.redis_url.as_str()) {
        let info = client.get_connection_info();
        span = span.namespace(&info.redis_settings().db().to_string());
        if let redis::ConnectionAddr::Tcp(host, port) = info.addr() {
            span = span.server(host, *port);
        }
    }
    span
}

/// The Redis pipeline: two attempts of `REDIS_TIMEOUT_MS` at most, all within three
/// timeouts, a short queue: a cache that cannot answer at once is skipped, not waited for.
pub fn cache_pipeline(
    config: &Config,
) -> StandardPipeline<seawall::DefaultClassifier, AssumeIdempotent> {
    let timeout = config.redis_timeout;
    StandardPipeline::redis(64)
        .deadline(timeout * 3)
        .attempt_timeout(timeout)
        .retry(
            RetryLayer::builder()
                .max_attempts(2)
                .backoff(
                    Backoff::exponential(Duration::from_millis(5))
                        .max_delay(timeout / 4)
                        .jitter(Jitter::Full),
                )
                .budget(RetryBudget::standard()),
        )
        .idempotency(AssumeIdempotent)
        .client_span(cache_span(config))
}

/// The fleet-wide limits on PostgreSQL calls (`FLEET_RATE_LIMIT`, `FLEET_DB_CONCURRENCY`)
/// around the database's pipeline, shared on Redis by every instance with the same
/// `FLEET_NAME`; the service as it is when neither is set. A call refused by them is a
/// `Rejected` like the breaker's refusals: a 503 with `Retry-After`, or a stale read.
fn fleet_limits(config: &Config, db: DbService) -> Result<DbService, seawall::ConfigError> {
    use seawall::fleet::{ConcurrencyBudgetLayer, Fleet, RateLimitLayer};
    if config.fleet_rate_limit.is_none() && config.fleet_db_concurrency.is_none() {
        return Ok(db);
    }
    let fleet = Fleet::builder(config.redis_url.as_str())
        .prefix("seawall-service")
        .expected_replicas(config.fleet_replicas)
        .op_timeout(config.redis_timeout.min(Duration::from_millis(50)))
        .build()?;
    let mut db = db;
    if let Some(max) = config.fleet_db_concurrency {
        let budget = ConcurrencyBudgetLayer::builder(max)
            .fleet(&fleet, config.fleet_name.as_str())
            .build()?;
        db = BoxCloneSyncService::new(budget.layer(db));
    }
    if let Some(rate) = config.fleet_rate_limit {
        let limit = RateLimitLayer::builder(f64::from(rate))
            .fleet(&fleet, config.fleet_name.as_str())
            .build()?;
        db = BoxCloneSyncService::new(limit.layer(db));
    }
    Ok(db)
}

/// Connects nothing yet: builds the pool and both services. Fails only on a configuration
/// the pipelines refuse.
pub fn build(config: &Config, layers: Layers) -> Result<(Database, Cache), seawall::ConfigError> {
    let manager = Manager::from_config(
        config.postgres(),
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    // Connections made before the last recovery probe began are suspect: after an outage
    // they are dead, or, behind a network fault that swallowed bytes, out of step with the
    // server. The probe sets the mark; such a connection is dropped when next checked out.
    let suspect_before = Arc::new(Mutex::new(None::<Instant>));
    let mark = suspect_before.clone();
    let pool = Pool::builder(manager)
        .pre_recycle(Hook::sync_fn(move |_, metrics| {
            match *mark.lock().unwrap_or_else(|e| e.into_inner()) {
                Some(before) if metrics.created < before.into_std() => {
                    Err(HookError::message("made before the last outage"))
                }
                _ => Ok(()),
            }
        }))
        .max_size(config.db_pool_max)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(config.db_pool_wait))
        .create_timeout(Some(config.db_timeout))
        .recycle_timeout(Some(config.db_timeout))
        .build()
        .map_err(|e| seawall::ConfigError::new("pool", "DB_POOL_MAX", e.to_string()))?;
    let db_timeout = config.db_timeout;
    let db_client = service_fn({
        let pool = pool.clone();
        move |request: WithDeadline<DbOp>| {
            let pool = pool.clone();
            async move { run_db(&pool, db_timeout, request).await }
        }
    });
    let client = RedisClient::new(config)?;
    let cache_client = service_fn({
        let client = client.clone();
        move |request: WithDeadline<CacheOp>| {
            let client = client.clone();
            async move { run_cache(&client, request.into_inner()).await }
        }
    });
    let database_failure = Arc::new(LastFailure::default());
    let cache_failure = Arc::new(LastFailure::default());
    Ok(match layers {
        Layers::Seawall => {
            let db_layer = db_pipeline(config)
                .probe(db_probe(&pool, suspect_before, config))
                .build()?;
            let cache_layer = cache_pipeline(config)
                .probe(cache_probe(&client, config))
                .build()?;
            let service =
                fleet_limits(config, BoxCloneSyncService::new(db_layer.layer(db_client)))?;
            let cache_service: CacheService =
                BoxCloneSyncService::new(cache_layer.layer(cache_client));
            (
                Database {
                    pool,
                    breaker: db_layer.breaker(),
                    limit: db_layer.limit(),
                    reads: stale_reads(service.clone(), cache_service.clone())?,
                    service,
                    last_failure: database_failure,
                },
                Cache {
                    client,
                    breaker: cache_layer.breaker(),
                    limit: cache_layer.limit(),
                    service: cache_service,
                    last_failure: cache_failure,
                },
            )
        }
        Layers::Bare => (
            Database {
                pool,
                breaker: None,
                limit: None,
                service: BoxCloneSyncService::new(
                    db_client.clone().map_err(seawall::classify::classified),
                ),
                reads: BoxCloneSyncService::new(db_client.map_err(seawall::classify::classified)),
                last_failure: database_failure,
            },
            Cache {
                client,
                breaker: None,
                limit: None,
                service: BoxCloneSyncService::new(
                    cache_client.map_err(seawall::classify::classified),
                ),
                last_failure: cache_failure,
            },
        ),
    })
}

/// The item has no stale copy in Redis (or an unreadable one): the read fails as PostgreSQL
/// failed.
#[derive(Debug)]
struct NoStaleCopy;

impl std::fmt::Display for NoStaleCopy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no stale copy of the item in Redis")
    }
}

impl std::error::Error for NoStaleCopy {}

/// Reads through `db`, answered from Redis's stale copy of the item when PostgreSQL cannot
/// answer: `FallbackLayer` around the database's whole pipeline, so the fallback answers for
/// what the handler would otherwise get (an open breaker's refusal at once, an outage, a lost
/// connection or a timeout after the retries), never for a caller's mistake. The stale read keeps the
/// request's deadline (the deadline layer gives a request up a few milliseconds before it,
/// which leaves a Redis read the time it needs).
pub fn stale_reads(db: DbService, cache: CacheService) -> Result<DbService, seawall::ConfigError> {
    let stale = service_fn(move |read: FallbackRequest<WithDeadline<DbOp>>| {
        let cache = cache.clone();
        async move {
            let request = read.into_request().ok_or(NoStaleCopy)?;
            let deadline = request.deadline();
            let DbOp::Get(id) = request.into_inner() else {
                return Err(BoxError::from(NoStaleCopy));
            };
            let mut lookup = WithDeadline::new(CacheOp::GetStale(id));
            if let Some(deadline) = deadline {
                lookup = lookup.deadline_at(deadline);
            }
            let json = cache.oneshot(lookup).await?.ok_or(NoStaleCopy)?;
            match serde_json::from_str::<Item>(&json) {
                Ok(item) if item.id == id => Ok(DbReply::Stale(item)),
                _ => Err(BoxError::from(NoStaleCopy)),
            }
        }
    });
    // The defaults, and a lost connection too: a read that may have run changed nothing.
    let layer = FallbackLayer::builder(stale)
        .on(DEFAULT_TRIGGERS
            .into_iter()
            .chain([FailureKind::Disconnect]))
        .keep_request()
        .build()?;
    Ok(BoxCloneSyncService::new(layer.layer(db)))
}

/// PostgreSQL's recovery probe, run only while its breaker is open: every connection made
/// before it is marked suspect (after an outage they are dead, or out of step behind a
/// network fault), so the pool drops each as it is next checked out, the probe's own checkout
/// included; a new connection is then made and `SELECT 1` run on it. The one that answers stays in the
/// pool, so the first call after the breaker opens up finds a fresh connection. Every 75 to
/// 100 ms, bounded by the attempt timeout.
fn db_probe(pool: &Pool, suspect_before: Arc<Mutex<Option<Instant>>>, config: &Config) -> Probe {
    let pool = pool.clone();
    Probe::new(move || {
        let pool = pool.clone();
        *suspect_before.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        async move {
            let client = pool.get().await?;
            client.simple_query("SELECT 1").await?;
            Ok::<_, BoxError>(())
        }
    })
    .timeout(config.db_timeout)
}

/// Redis's recovery probe: a new connection and `PING` on it; the connection that answers
/// `PONG` replaces the old one, so the first call after the breaker opens up has a live
/// connection in step with the server.
fn cache_probe(client: &RedisClient, config: &Config) -> Probe {
    let client = client.clone();
    Probe::new(move || {
        let client = client.clone();
        async move {
            let mut connection = client.reconnect().await?;
            let pong = redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await?;
            if pong != "PONG" {
                return Err(BoxError::from(format!("PING answered {pong:?}")));
            }
            Ok(())
        }
    })
    .timeout(config.redis_timeout.max(Duration::from_millis(100)))
}

/// Creates the table if it is missing; safe to run from many instances at once (an
/// advisory lock orders them).
pub async fn create_schema(pool: &Pool) -> Result<(), BoxError> {
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    transaction.batch_execute(SCHEMA).await?;
    transaction.commit().await?;
    Ok(())
}

/// Runs `query` with `statement_timeout` set on the connection for it alone: the three
/// statements are pipelined (one round trip), and the reset goes out with the query, so the
/// connection goes back to the pool with no timeout of this call's (a later recovery probe or
/// `/health` ping on it would otherwise inherit a few milliseconds' bound).
async fn bounded<T>(
    client: &tokio_postgres::Client,
    statement_timeout: &str,
    query: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, tokio_postgres::Error> {
    let (set, result, reset) = tokio::join!(
        client.batch_execute(statement_timeout),
        query,
        client.batch_execute("RESET statement_timeout")
    );
    set?;
    let result = result?;
    reset?;
    Ok(result)
}

/// One database call. The statement timeout is the attempt's share of the time left, set in
/// the same round trip as the query (the two are pipelined on the connection), so the server
/// gives up on a query nobody is waiting for.
async fn run_db(
    pool: &Pool,
    attempt_timeout: Duration,
    request: WithDeadline<DbOp>,
) -> Result<DbReply, BoxError> {
    let budget = request
        .remaining()
        .map_or(attempt_timeout, |left| left.min(attempt_timeout));
    let statement_timeout = format!(
        "SET statement_timeout = {}",
        budget.as_millis().clamp(1, i32::MAX as u128)
    );
    let operation = match request.get_ref() {
        DbOp::Get(_) | DbOp::Ping => "SELECT",
        DbOp::Insert(_) => "INSERT",
    };
    record_db_operation(operation, Some("seawall_items"));
    let client = pool.get().await?;
    match request.into_inner() {
        DbOp::Get(id) => {
            let select = client
                .prepare_cached("SELECT id, name, value FROM seawall_items WHERE id = $1")
                .await?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&id];
            let row = bounded(
                &client,
                &statement_timeout,
                client.query_opt(&select, &params),
            )
            .await?;
            Ok(DbReply::Found(row.as_ref().map(Item::from_row)))
        }
        DbOp::Ping => {
            bounded(&client, &statement_timeout, client.simple_query("SELECT 1")).await?;
            Ok(DbReply::Pong)
        }
        DbOp::Insert(new) => {
            let insert = client
                .prepare_cached(
                    "INSERT INTO seawall_items (idempotency_key, name, value, request_id) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
                )
                .await?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
                [&new.key, &new.name, &new.value, &new.request];
            let row = bounded(
                &client,
                &statement_timeout,
                client.query_opt(&insert, &params),
            )
            .await?;
            if let Some(row) = row {
                return Ok(DbReply::Created(Item {
                    id: row.get(0),
                    name: new.name,
                    value: new.value,
                }));
            }
            // The key was used before (the row is committed: the insert waited for it).
            let select = client
                .prepare_cached(
                    "SELECT id, name, value, request_id FROM seawall_items \
                     WHERE idempotency_key = $1",
                )
                .await?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&new.key];
            let row = bounded(
                &client,
                &statement_timeout,
                client.query_one(&select, &params),
            )
            .await?;
            let item = Item::from_row(&row);
            let by: Option<i64> = row.get(3);
            Ok(if item.name != new.name || item.value != new.value {
                DbReply::KeyReused
            } else if by == Some(new.request) {
                // Written by an earlier attempt of this same request, whose answer was lost
                // (a retry inside the pipeline): this request's own write, not a replay.
                DbReply::Created(item)
            } else {
                DbReply::Replayed(item)
            })
        }
    }
}

/// Redis, connected on first use: the service starts (degraded) while Redis is down, and
/// the connection manager reconnects after a failure. The recovery probe replaces the manager
/// with one on a new connection ([`reconnect`](Self::reconnect)): after a network fault that
/// swallowed requests, the old connection's replies would be out of step with its requests.
#[derive(Clone)]
pub struct RedisClient {
    client: redis::Client,
    config: redis::aio::ConnectionManagerConfig,
    manager: Arc<Mutex<Option<redis::aio::ConnectionManager>>>,
}

impl RedisClient {
    fn new(config: &Config) -> Result<RedisClient, seawall::ConfigError> {
        let client = redis::Client::open(config.redis_url.as_str())
            .map_err(|_| seawall::ConfigError::new("redis", "REDIS_URL", "is not a Redis URL"))?;
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.redis_timeout))
            .set_response_timeout(Some(config.redis_timeout))
            .set_number_of_retries(1)
            .set_max_delay(config.redis_timeout);
        Ok(RedisClient {
            client,
            config: manager_config,
            manager: Arc::new(Mutex::new(None)),
        })
    }

    /// The connection, made now if there is none yet.
    pub async fn connection(&self) -> redis::RedisResult<redis::aio::ConnectionManager> {
        if let Some(manager) = self.current() {
            return Ok(manager);
        }
        self.reconnect().await
    }

    /// A connection made now, which replaces the current one for every later call.
    pub async fn reconnect(&self) -> redis::RedisResult<redis::aio::ConnectionManager> {
        let manager = redis::aio::ConnectionManager::new_with_config(
            self.client.clone(),
            self.config.clone(),
        )
        .await?;
        *self.manager.lock().unwrap_or_else(|e| e.into_inner()) = Some(manager.clone());
        Ok(manager)
    }

    fn current(&self) -> Option<redis::aio::ConnectionManager> {
        self.manager
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl std::fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClient")
            .field("connected", &self.current().is_some())
            .finish_non_exhaustive()
    }
}

fn cache_key(id: i64) -> String {
    format!("seawall:item:{id}")
}

/// The key of an item's stale copy, kept longer than the fresh one.
pub fn stale_key(id: i64) -> String {
    format!("seawall:item:{id}:stale")
}

async fn run_cache(client: &RedisClient, op: CacheOp) -> Result<Option<String>, BoxError> {
    let mut connection = client.connection().await?;
    match op {
        CacheOp::Get(id) => {
            record_db_operation("GET", None);
            Ok(redis::cmd("GET")
                .arg(cache_key(id))
                .query_async::<Option<String>>(&mut connection)
                .await?)
        }
        CacheOp::Put(id, json, ttl, stale_ttl) => {
            record_db_operation("SET", None);
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("SET")
                .arg(cache_key(id))
                .arg(&json)
                .arg("EX")
                .arg(ttl.as_secs().max(1))
                .ignore();
            if !stale_ttl.is_zero() {
                pipe.cmd("SET")
                    .arg(stale_key(id))
                    .arg(&json)
                    .arg("EX")
                    .arg(stale_ttl.as_secs())
                    .ignore();
            }
            pipe.query_async::<()>(&mut connection).await?;
            Ok(None)
        }
        CacheOp::GetStale(id) => {
            record_db_operation("GET", None);
            Ok(redis::cmd("GET")
                .arg(stale_key(id))
                .query_async::<Option<String>>(&mut connection)
                .await?)
        }
    }
}
