//! Each dependency's pipeline: the presets, their client spans, recovery probes, fleet-wide
//! limits and the stale-read fallback, and `build`, which wires them.

use super::*;

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
pub(super) fn db_span(config: &Config) -> ClientSpanConfig {
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
pub(super) fn cache_span(config: &Config) -> ClientSpanConfig {
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
pub(super) fn fleet_limits(
    config: &Config,
    db: DbService,
) -> Result<DbService, seawall::ConfigError> {
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
pub(super) struct NoStaleCopy;

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
pub(super) fn db_probe(
    pool: &Pool,
    suspect_before: Arc<Mutex<Option<Instant>>>,
    config: &Config,
) -> Probe {
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
pub(super) fn cache_probe(client: &RedisClient, config: &Config) -> Probe {
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
