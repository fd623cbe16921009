//! The Redis server a fleet's limits live on: scripts run atomically on it, every operation
//! bounded by a timeout and behind a circuit breaker, and the record of which mode each
//! decision was made in.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionManager;
use seawall_breaker::CircuitBreakerLayer;
use seawall_classify::{BoxError, ConfigError, Error, HasDeadline, schema};
use seawall_timeout::AttemptTimeoutLayer;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt};

const LAYER: &str = "fleet";

/// GCRA on the server: grants up to `wanted` tokens at once (a lease), as many as the burst
/// tolerance allows, and moves the key's theoretical arrival time past them. Time is the
/// server's (`TIME`), so that every instance reads one clock. The schedule is kept in whole
/// microseconds (Lua's numbers are doubles: nanoseconds since the epoch would not be exact)
/// but the interval and tolerance come in nanoseconds, and a lease moves the schedule by its
/// tokens' time rounded up to the next microsecond: at 600,000 a second (1,667 ns) a token
/// is not scheduled 1 µs apart (1,000,000 a second), and the rounding only ever errs below
/// the rate. Returns {granted, retry after in µs}.
const LEASE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local ahead = (tat - now) * 1000
if ahead > tolerance then
  return {0, math.ceil((ahead - tolerance) / 1000)}
end
local granted = math.min(wanted, math.floor((tolerance - ahead) / interval) + 1)
tat = tat + math.ceil(granted * interval / 1000)
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
return {granted, 0}
";

/// A permit of a concurrency budget: a member of the key's sorted set, scored by when its
/// lease ends. Expired leases (their holder stopped renewing them: it died) are removed
/// first. Returns 1 when granted, else the milliseconds until the next lease ends.
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[2])
  redis.call('PEXPIRE', KEYS[1], lease * 2)
  return {1, 0}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, math.max(1, tonumber(first[2]) - now)}
";

/// Extends the leases of the permits an instance still holds (only those still there).
const RENEW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], lease * 2)
return 0
";

/// One operation on the server.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Lease {
        key: Arc<str>,
        interval_ns: u64,
        tolerance_ns: u64,
        wanted: u32,
    },
    Acquire {
        key: Arc<str>,
        member: Arc<str>,
        limit: u32,
        lease_ms: u64,
    },
    Renew {
        key: Arc<str>,
        members: Vec<Arc<str>>,
        lease_ms: u64,
    },
    Release {
        key: Arc<str>,
        members: Vec<Arc<str>>,
    },
}

impl HasDeadline for Op {}

/// What an operation answered.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reply {
    /// Tokens granted (0: none, and how long until one would be).
    Lease(u32, Duration),
    /// A permit granted, or how long until a lease ends.
    Acquired(Result<(), Duration>),
    Done,
}

#[derive(Clone)]
struct Connection {
    link: Arc<Link>,
    lease: Arc<Script>,
    acquire: Arc<Script>,
    renew: Arc<Script>,
}

/// The connection to Redis, made in the background: never inside an operation's timeout
/// (a connect slower than it, cancelled each time, would never complete) nor under a lock
/// an operation waits on.
struct Link {
    client: redis::Client,
    manager: std::sync::Mutex<Option<ConnectionManager>>,
    /// Told when a connect ends.
    connected: tokio::sync::Notify,
    /// A connect is under way.
    connecting: AtomicBool,
    /// No new connect before this, after one failed (nanoseconds since `epoch`).
    not_before: AtomicU64,
    epoch: tokio::time::Instant,
    /// The bound on one connect.
    connect_timeout: Duration,
}

/// The connection to Redis could not be made (the last connect failed a moment ago): the
/// decision is local, and the breaker does not count it (no request went out).
#[derive(Debug)]
struct NotConnected;

impl fmt::Display for NotConnected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not connected to Redis yet")
    }
}

impl std::error::Error for NotConnected {}

/// How long after a failed connect the next may start.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);

impl Link {
    /// The connection; without one, starts a connect and waits for it (the operation's
    /// timeout bounds the wait, not the connect, which goes on in the background and serves
    /// the operations after it).
    async fn manager(self: &Arc<Self>) -> Result<ConnectionManager, BoxError> {
        if let Some(manager) = self.current() {
            return Ok(manager);
        }
        let ended = self.connected.notified();
        tokio::pin!(ended);
        ended.as_mut().enable();
        self.connect_in_background();
        if self.connecting.load(Ordering::Acquire) {
            ended.await;
        }
        self.current().ok_or_else(|| {
            Box::new(Error::new(seawall_classify::Class::Ignored, NotConnected)).into()
        })
    }

    fn current(&self) -> Option<ConnectionManager> {
        self.manager.lock().expect("connection lock").clone()
    }

    /// Starts a connect unless one is under way or one failed a moment ago; it fills the
    /// slot when it succeeds within its own bound.
    fn connect_in_background(self: &Arc<Self>) {
        let now = self.epoch.elapsed().as_nanos() as u64;
        if now < self.not_before.load(Ordering::Acquire)
            || self.connecting.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.connecting.store(false, Ordering::Release);
            return;
        };
        let link = self.clone();
        runtime.spawn(async move {
            let made = tokio::time::timeout(
                link.connect_timeout,
                ConnectionManager::new(link.client.clone()),
            );
            match made.await {
                Ok(Ok(manager)) => {
                    *link.manager.lock().expect("connection lock") = Some(manager);
                }
                _ => {
                    let next = link.epoch.elapsed() + RECONNECT_AFTER;
                    link.not_before
                        .store(next.as_nanos() as u64, Ordering::Release);
                }
            }
            link.connecting.store(false, Ordering::Release);
            link.connected.notify_waiters();
        });
    }
}

impl Connection {
    async fn run(self, op: Op) -> Result<Reply, BoxError> {
        let mut conn = self.link.manager().await?;
        Ok(match op {
            Op::Lease {
                key,
                interval_ns,
                tolerance_ns,
                wanted,
            } => {
                let (granted, retry_us): (u32, u64) = self
                    .lease
                    .key(&*key)
                    .arg(interval_ns)
                    .arg(tolerance_ns)
                    .arg(wanted)
                    .invoke_async(&mut conn)
                    .await?;
                Reply::Lease(granted, Duration::from_micros(retry_us))
            }
            Op::Acquire {
                key,
                member,
                limit,
                lease_ms,
            } => {
                let (granted, wait_ms): (u32, u64) = self
                    .acquire
                    .key(&*key)
                    .arg(limit)
                    .arg(&*member)
                    .arg(lease_ms)
                    .invoke_async(&mut conn)
                    .await?;
                Reply::Acquired(if granted == 1 {
                    Ok(())
                } else {
                    Err(Duration::from_millis(wait_ms))
                })
            }
            Op::Renew {
                key,
                members,
                lease_ms,
            } => {
                let mut call = self.renew.key(&*key);
                call.arg(lease_ms);
                for member in &members {
                    call.arg(&**member);
                }
                let _: i64 = call.invoke_async(&mut conn).await?;
                Reply::Done
            }
            Op::Release { key, members } => {
                let mut cmd = redis::cmd("ZREM");
                cmd.arg(&*key);
                for member in &members {
                    cmd.arg(&**member);
                }
                let _: i64 = cmd.query_async(&mut conn).await?;
                Reply::Done
            }
        })
    }
}

/// Configures a [`Fleet`]; see [`Fleet::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct FleetBuilder {
    url: String,
    replicas: u32,
    prefix: String,
    op_timeout: Duration,
    connect_timeout: Duration,
    open_duration: Duration,
    instance: Option<String>,
}

impl FleetBuilder {
    /// How many instances share the fleet's limits (default 1). While Redis is away, each
    /// instance enforces `limit / replicas` on its own.
    pub fn expected_replicas(mut self, replicas: u32) -> Self {
        self.replicas = replicas;
        self
    }

    /// The prefix of every key the fleet's limits use on Redis (default `seawall`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The longest one Redis operation may take before the decision is made locally (default
    /// 50 ms).
    pub fn op_timeout(mut self, timeout: Duration) -> Self {
        self.op_timeout = timeout;
        self
    }

    /// The bound on making the connection to Redis (default 5 s; at least the operation
    /// timeout). The connection is made in the background: the operation that needs it waits
    /// for it within its own timeout, and a connect slower than that goes on and serves the
    /// operations after it (decisions are local meanwhile).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long Redis is left alone after three operations in a row failed (default 1 s):
    /// meanwhile every decision is local, and then one operation tries Redis again.
    pub fn open_duration(mut self, duration: Duration) -> Self {
        self.open_duration = duration;
        self
    }

    /// This instance's name in the permits it holds (default: random). Two live instances
    /// must not share one.
    pub fn instance(mut self, name: impl Into<String>) -> Self {
        self.instance = Some(name.into());
        self
    }

    /// Checks the settings. No connection is made here: the first decision connects, and a
    /// Redis that is not there yet only makes decisions local until it is.
    pub fn build(self) -> Result<Fleet, ConfigError> {
        let client = redis::Client::open(self.url.as_str()).map_err(|error| {
            ConfigError::new(LAYER, "url", format!("is not a Redis URL: {error}"))
        })?;
        if self.replicas == 0 || self.replicas > 100_000 {
            return Err(ConfigError::new(
                LAYER,
                "expected_replicas",
                format!("is {}, outside 1 to 100,000", self.replicas),
            ));
        }
        if self.prefix.is_empty() {
            return Err(ConfigError::new(LAYER, "prefix", "is empty"));
        }
        if self.connect_timeout < self.op_timeout {
            return Err(ConfigError::new(
                LAYER,
                "connect_timeout",
                format!(
                    "is {:?}, shorter than the operation timeout {:?}",
                    self.connect_timeout, self.op_timeout
                ),
            ));
        }
        let timeout = AttemptTimeoutLayer::try_new(self.op_timeout)
            .map_err(|e| ConfigError::new(LAYER, "op_timeout", e.to_string()))?;
        let breaker = CircuitBreakerLayer::builder()
            .name("redis-fleet")
            .consecutive_faults(3)
            .open_duration(self.open_duration)
            .max_open_duration(self.open_duration)
            .build()
            .map_err(|e| ConfigError::new(LAYER, "open_duration", e.to_string()))?;
        let link = Arc::new(Link {
            client,
            manager: std::sync::Mutex::new(None),
            connected: tokio::sync::Notify::new(),
            connecting: AtomicBool::new(false),
            not_before: AtomicU64::new(0),
            epoch: tokio::time::Instant::now(),
            connect_timeout: self.connect_timeout,
        });
        let connection = Connection {
            link: link.clone(),
            lease: Arc::new(Script::new(LEASE)),
            acquire: Arc::new(Script::new(ACQUIRE)),
            renew: Arc::new(Script::new(RENEW)),
        };
        let service = tower::service_fn(move |op: Op| connection.clone().run(op));
        let ops = BoxCloneSyncService::new(breaker.layer(timeout.layer(service)));
        let instance = self.instance.unwrap_or_else(random_instance);
        Ok(Fleet {
            inner: Arc::new(Inner {
                ops,
                link,
                replicas: self.replicas,
                prefix: self.prefix,
                instance,
                shared: AtomicU64::new(0),
                local: AtomicU64::new(0),
                away: AtomicBool::new(false),
                permits: AtomicU64::new(0),
            }),
        })
    }
}

fn random_instance() -> String {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()).rotate_left(32);
    format!(
        "{:016x}",
        seawall_util::rng::SplitMix64::new(seed).next_u64()
    )
}

struct Inner {
    ops: BoxCloneSyncService<Op, Reply, Error>,
    link: Arc<Link>,
    replicas: u32,
    prefix: String,
    instance: String,
    shared: AtomicU64,
    local: AtomicU64,
    away: AtomicBool,
    permits: AtomicU64,
}

/// The Redis server a fleet's limits live on, shared by every limit built on it (cheap to
/// clone). See the [crate documentation](crate).
#[derive(Clone)]
pub struct Fleet {
    inner: Arc<Inner>,
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fleet")
            .field("replicas", &self.inner.replicas)
            .field("prefix", &self.inner.prefix)
            .field("instance", &self.inner.instance)
            .field("shared_decisions", &self.shared_decisions())
            .field("local_decisions", &self.local_decisions())
            .finish()
    }
}

impl Fleet {
    /// A fleet on the Redis server at `url` (`redis://host:port/db`), with one replica, 50 ms
    /// per operation and Redis left alone for 1 s after three failures in a row.
    pub fn builder(url: impl Into<String>) -> FleetBuilder {
        FleetBuilder {
            url: url.into(),
            replicas: 1,
            prefix: "seawall".to_owned(),
            op_timeout: Duration::from_millis(50),
            connect_timeout: Duration::from_secs(5),
            open_duration: Duration::from_secs(1),
            instance: None,
        }
    }

    /// Connects to Redis now, if no connection is made yet, and waits for the connect to end
    /// (within the connect timeout); whether the fleet is connected. Optional: without it
    /// the first decision starts the connect, and decisions are local until it is made.
    pub async fn connect(&self) -> bool {
        let link = &self.inner.link;
        loop {
            if link.current().is_some() {
                return true;
            }
            let ended = link.connected.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            link.connect_in_background();
            if !link.connecting.load(Ordering::Acquire) {
                // Not under way (one failed a moment ago): connected or not, as it is now.
                return link.current().is_some();
            }
            ended.await;
            if link.current().is_none() {
                return false;
            }
        }
    }

    /// The instances expected to share the fleet's limits.
    #[must_use]
    pub fn replicas(&self) -> u32 {
        self.inner.replicas
    }

    /// Decisions made on Redis so far (a lease of tokens, a permit).
    #[must_use]
    pub fn shared_decisions(&self) -> u64 {
        self.inner.shared.load(Ordering::Relaxed)
    }

    /// Decisions made on this instance's local share because Redis could not answer in time.
    #[must_use]
    pub fn local_decisions(&self) -> u64 {
        self.inner.local.load(Ordering::Relaxed)
    }

    /// `true` while the last decision had to be made locally.
    #[must_use]
    pub fn is_local(&self) -> bool {
        self.inner.away.load(Ordering::Relaxed)
    }

    pub(crate) fn key(&self, kind: &str, name: &str) -> Arc<str> {
        Arc::from(format!("{}:{kind}:{name}", self.inner.prefix))
    }

    pub(crate) fn member(&self) -> Arc<str> {
        let n = self.inner.permits.fetch_add(1, Ordering::Relaxed);
        Arc::from(format!("{}:{n}", self.inner.instance))
    }

    /// Runs `op` on Redis; `None` when it could not answer (the caller decides locally).
    pub(crate) async fn run(&self, op: Op) -> Option<Reply> {
        match self.inner.ops.clone().oneshot(op).await {
            Ok(reply) => Some(reply),
            Err(error) => {
                tracing::debug!(
                    target: "seawall::fleet",
                    { { schema::ERROR_TYPE } = error.kind().map_or("unknown", |k| k.as_str()) },
                    "a Redis operation failed"
                );
                None
            }
        }
    }

    /// Counts a decision and logs a change of mode.
    pub(crate) fn record(&self, shared: bool) {
        tracing::debug!(
            target: "seawall::fleet",
            {
                { schema::FIELD_FLEET_DECISIONS } = 1u64,
                { schema::FLEET_MODE } = if shared { "shared" } else { "local" }
            },
            "fleet decision"
        );
        if shared {
            self.inner.shared.fetch_add(1, Ordering::Relaxed);
            if self.inner.away.swap(false, Ordering::Relaxed) {
                tracing::info!(
                    target: "seawall::fleet",
                    "Redis answers again: fleet limits are shared again"
                );
            }
        } else {
            self.inner.local.fetch_add(1, Ordering::Relaxed);
            if !self.inner.away.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    target: "seawall::fleet",
                    "Redis does not answer: fleet limits fall back to this instance's share (1/{} of each)",
                    self.inner.replicas
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two leases back to back at 600,000 a second with a burst of 100,000: the first takes
    /// the burst, and the second gets only what the rate refilled in between (scheduled at
    /// 1 µs a token, the burst took 0.1 s of schedule, and the second lease was granted two
    /// thirds of a burst more).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rate_between_500k_and_1m_a_second_keeps_its_interval() {
        let url =
            std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
        let fleet = Fleet::builder(url)
            .prefix("seawall-test")
            .op_timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        assert!(fleet.connect().await, "Redis answers");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let key = fleet.key("rate", &format!("interval-{}-{nanos}", std::process::id()));
        let interval_ns = 1_667; // 600,000 a second
        let burst = 100_000u64;
        let lease = || Op::Lease {
            key: key.clone(),
            interval_ns,
            tolerance_ns: (burst - 1) * interval_ns,
            wanted: 100_000,
        };
        let started = tokio::time::Instant::now();
        let Some(Reply::Lease(first, _)) = fleet.run(lease()).await else {
            panic!("a lease");
        };
        assert_eq!(u64::from(first), burst);
        let Some(Reply::Lease(second, _)) = fleet.run(lease()).await else {
            panic!("a lease");
        };
        // What the rate refilled between the two, no more: the server's time between them is
        // at most what passed here from before the first to after the second (plus a token
        // for the rounding).
        let refilled = started.elapsed().as_nanos() as u64 / interval_ns + 1;
        assert!(
            u64::from(second) <= refilled,
            "a second lease of {second} tokens, where {refilled} could have refilled"
        );
    }
}
