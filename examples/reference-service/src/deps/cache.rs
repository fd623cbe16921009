//! The cache on Redis: the client, the keys, and one cache call.

use super::*;

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
    pub(super) fn new(config: &Config) -> Result<RedisClient, seawall::ConfigError> {
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

pub(super) fn cache_key(id: i64) -> String {
    format!("seawall:item:{id}")
}

/// The key of an item's stale copy, kept longer than the fresh one.
pub fn stale_key(id: i64) -> String {
    format!("seawall:item:{id}:stale")
}

pub(super) async fn run_cache(
    client: &RedisClient,
    op: CacheOp,
) -> Result<Option<String>, BoxError> {
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
