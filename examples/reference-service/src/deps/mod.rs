//! The two dependencies, each a tower service behind its own standard pipeline: PostgreSQL
//! (the source of truth) and Redis (a read-through cache). The types they speak are here; their
//! pipelines are in `pipelines.rs`, the calls in `postgres.rs` and `cache.rs` (Redis).

mod cache;
mod pipelines;
mod postgres;

use self::cache::*;
pub use self::cache::{RedisClient, stale_key};
pub use self::pipelines::{build, cache_pipeline, db_pipeline, stale_reads};
pub use self::postgres::create_schema;
use self::postgres::*;
use crate::config::Config;
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
