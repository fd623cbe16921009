//! The chaos matrix: {restart, reset, blackhole, latency, refuse} x {PostgreSQL, Redis}, each
//! under 32 concurrent clients mixing reads, new writes and repeated writes, against the real
//! servers behind the fault proxy. For every cell: no answer later than the deadline plus a
//! slack, no transport error (no panic, no dropped connection), no 500, every acknowledged
//! write in the database exactly once, `/health` reporting the fault while it lasts, and
//! 99 % of requests served again within 1 s of its end (in 250 ms buckets), without a
//! restart. Restarts of 0.5 s and 7 s check the same for outages shorter and longer than
//! the breaker's open periods.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Client, Harness};
use http::StatusCode;
use seawall_chaos::proxy::{Delay, Mode, Proxy};
use tokio::time::Instant;

/// `REQUEST_TIMEOUT_MS` of the test service.
const DEADLINE: Duration = Duration::from_secs(2);
/// What an answer may take beyond its deadline (scheduling on a loaded 2-core machine).
const SLACK: Duration = Duration::from_secs(1);
const CLIENTS: usize = 32;
const FAULT: Duration = Duration::from_secs(3);
/// The outer bound on serving fully again (a write, a read, a cache hit, health ok) once the
/// fault ends; the 99 % bound is [`RECOVERED_WITHIN`].
const RECOVERY: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Postgres,
    Redis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Down (connections reset, new ones refused) for 3 s, then up.
    Restart,
    /// Every connection reset every 250 ms for 3 s; new ones accepted.
    Reset,
    /// Nothing forwarded for 3 s: calls hang until their own timeouts.
    Blackhole,
    /// Every answer 300 ms late for 3 s.
    Latency,
    /// New connections refused for 3 s, after the open ones are reset.
    Refuse,
}

#[derive(Default)]
struct Log {
    /// (key, id, name, value) of every 201.
    acked: Vec<(String, i64, String, i64)>,
    statuses: HashMap<u16, u32>,
    late: Vec<Duration>,
    transport_errors: Vec<String>,
    /// When each request started, and whether it was served (no 5xx, no transport error).
    served: Vec<(Instant, bool)>,
}

/// The width of the buckets recovery is measured in.
const BUCKET: Duration = Duration::from_millis(250);
/// How long after the fault's end the service must serve 99 % again.
const RECOVERED_WITHIN: Duration = Duration::from_secs(1);
/// How long the clients keep going after the fault's end.
const AFTER: Duration = Duration::from_secs(3);

/// When the service was back after the fault's end at `end`: the start of the earliest
/// 250 ms bucket (of requests started after `end`) from which every bucket serves at least
/// 99 % of its requests, and the share served in each bucket.
fn recovery(served: &[(Instant, bool)], end: Instant) -> (Duration, Vec<f64>) {
    let mut buckets: Vec<(u32, u32)> = Vec::new();
    for (started, ok) in served.iter().filter(|(started, _)| *started >= end) {
        let index = (started.duration_since(end).as_nanos() / BUCKET.as_nanos()) as usize;
        if buckets.len() <= index {
            buckets.resize(index + 1, (0, 0));
        }
        buckets[index].0 += u32::from(*ok);
        buckets[index].1 += 1;
    }
    // The last bucket may be cut short by the stop.
    buckets.pop();
    let shares: Vec<f64> = buckets
        .iter()
        .map(|(ok, all)| f64::from(*ok) / f64::from((*all).max(1)))
        .collect();
    let first_good = shares
        .iter()
        .rposition(|share| *share < 0.99)
        .map_or(0, |bad| bad + 1);
    (BUCKET * first_good as u32, shares)
}

fn start(proxy: &Proxy, fault: Fault) {
    match fault {
        Fault::Restart => proxy.down(),
        Fault::Reset => proxy.reset(),
        Fault::Blackhole => proxy.set_mode(Mode::Blackhole),
        Fault::Latency => proxy.set_mode(Mode::Latency {
            up: Delay::default(),
            down: Delay::fixed(Duration::from_millis(300)),
        }),
        Fault::Refuse => {
            proxy.set_mode(Mode::Refuse);
            proxy.reset();
        }
    }
}

/// Whether `/health` shows the fault of `target`: its status is not `up`, or it failed
/// within the last two seconds.
fn reported(health: &serde_json::Value, target: Target) -> bool {
    let name = match target {
        Target::Postgres => "postgres",
        Target::Redis => "redis",
    };
    let dependency = &health["dependencies"][name];
    dependency["status"] != "up"
        || dependency["last_failure"]["seconds_ago"]
            .as_f64()
            .is_some_and(|age| age < 2.0)
}

async fn client_loop(
    mut client: Client,
    index: usize,
    prefix: String,
    seeded: Arc<Vec<i64>>,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Log>>,
) {
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64 ^ (index as u64).wrapping_mul(0xA24B_AED4_963E_E407);
    let mut last_write: Option<(String, String, i64)> = None;
    let mut n = 0_i64;
    while !stop.load(Ordering::Relaxed) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let started = Instant::now();
        let choice = rng % 10;
        let (result, write) = if choice < 5 {
            let id = seeded[(rng / 10) as usize % seeded.len()];
            (client.get(&format!("/items/{id}")).await, None)
        } else {
            let write = match &last_write {
                // The same write again, as a client whose answer was lost would send it.
                Some(previous) if choice >= 8 => previous.clone(),
                _ => {
                    n += 1;
                    (format!("{prefix}_{index}_{n}"), format!("item {n}"), n)
                }
            };
            (
                client.post_item(&write.0, &write.1, write.2).await,
                Some(write),
            )
        };
        let took = started.elapsed();
        {
            let mut log = log.lock().unwrap();
            if took > DEADLINE + SLACK {
                log.late.push(took);
            }
            let served = result
                .as_ref()
                .is_ok_and(|reply| !reply.status.is_server_error());
            log.served.push((started, served));
            match result {
                Ok(reply) => {
                    *log.statuses.entry(reply.status.as_u16()).or_default() += 1;
                    if reply.status == StatusCode::CREATED {
                        let body = reply.json();
                        let (key, name, value) = write.clone().expect("201 answers a write");
                        assert_eq!(body["name"].as_str(), Some(name.as_str()));
                        assert_eq!(body["value"].as_i64(), Some(value));
                        log.acked
                            .push((key, body["id"].as_i64().unwrap(), name, value));
                    }
                    if reply.status.is_client_error() || reply.status.is_server_error() {
                        assert_eq!(
                            reply.header("content-type"),
                            Some("application/problem+json")
                        );
                    }
                    if reply.status == StatusCode::SERVICE_UNAVAILABLE {
                        assert!(reply.header("retry-after").is_some());
                    }
                }
                Err(error) => log.transport_errors.push(error.to_string()),
            }
        }
        if write.is_some() {
            last_write = write;
        }
        // A little think time keeps the offered load bounded on a 2-core machine.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn cell(target: Target, fault: Fault) {
    cell_for(target, fault, FAULT).await;
}

/// One cell with the fault lasting `length`.
async fn cell_for(target: Target, fault: Fault, length: Duration) {
    let harness = Harness::start().await;
    let prefix = seawall_tests::unique_name(&format!("chaos_{target:?}_{fault:?}"));
    let mut client = harness.client();
    let mut seeded = Vec::new();
    for i in 0..16 {
        let reply = client
            .post_item(&format!("{prefix}_seed_{i}"), "seed", i)
            .await
            .unwrap();
        assert_eq!(reply.status, StatusCode::CREATED);
        let id = reply.json()["id"].as_i64().unwrap();
        assert_eq!(
            client.get(&format!("/items/{id}")).await.unwrap().status,
            StatusCode::OK
        );
        seeded.push(id);
    }
    let seeded = Arc::new(seeded);
    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Log::default()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|index| {
            tokio::spawn(client_loop(
                harness.client(),
                index,
                prefix.clone(),
                seeded.clone(),
                stop.clone(),
                log.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let proxy = match target {
        Target::Postgres => &harness.pg,
        Target::Redis => &harness.redis,
    };
    start(proxy, fault);
    let fault_started = Instant::now();
    let mut was_reported = false;
    let mut last_reset = Instant::now();
    while fault_started.elapsed() < length {
        if fault == Fault::Reset && last_reset.elapsed() >= Duration::from_millis(250) {
            proxy.reset();
            last_reset = Instant::now();
        }
        let health = client.get("/health").await.unwrap();
        was_reported |= reported(&health.json(), target);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    proxy.up();
    let fault_ended = Instant::now();
    proxy.settled().await;

    // Full service again: a write and an uncached read through PostgreSQL, a cache hit
    // through Redis, and `/health` ok.
    let healed = Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        let write = client
            .post_item(&format!("{prefix}_probe_{n}"), "probe", n)
            .await
            .unwrap();
        let mut healthy = false;
        if write.status == StatusCode::CREATED {
            let id = write.json()["id"].as_i64().unwrap();
            log.lock().unwrap().acked.push((
                format!("{prefix}_probe_{n}"),
                id,
                "probe".to_owned(),
                n,
            ));
            let path = format!("/items/{id}");
            let first = client.get(&path).await.unwrap();
            let second = client.get(&path).await.unwrap();
            let health = client.get("/health").await.unwrap().json();
            healthy = first.status == StatusCode::OK
                && second.header("x-cache") == Some("hit")
                && health["status"] == "ok";
        }
        if healthy {
            break;
        }
        assert!(
            healed.elapsed() < RECOVERY,
            "{target:?}/{fault:?}: not fully serving {RECOVERY:?} after the fault ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fully_serving = fault_ended.elapsed();
    if let Some(left) = AFTER.checked_sub(fault_ended.elapsed()) {
        tokio::time::sleep(left).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("a client task panicked");
    }

    let log = Arc::try_unwrap(log).ok().unwrap().into_inner().unwrap();
    let (back, shares) = recovery(&log.served, fault_ended);
    let shares: Vec<String> = shares
        .iter()
        .map(|s| format!("{:.0}%", s * 100.0))
        .collect();
    eprintln!(
        "{target:?}/{fault:?}: statuses {:?}, {} writes acknowledged, fully serving {:?} after \
         the fault, 99 % served from {back:?} (per 250 ms: {})",
        log.statuses,
        log.acked.len(),
        fully_serving,
        shares.join(" ")
    );
    assert!(
        back < RECOVERED_WITHIN,
        "{target:?}/{fault:?}: 99 % served only {back:?} after the fault ended"
    );
    assert!(
        log.transport_errors.is_empty(),
        "{:?}",
        log.transport_errors
    );
    assert!(
        log.late.is_empty(),
        "answers later than deadline + slack: {:?}",
        log.late
    );
    assert_eq!(log.statuses.get(&500), None, "internal errors");
    assert!(
        was_reported,
        "{target:?}/{fault:?}: /health never showed the fault"
    );
    assert!(log.statuses.get(&200).copied().unwrap_or(0) > 0);

    // Every acknowledged write is in the database, as acknowledged, and once.
    let db = seawall_tests::pg_connect().await;
    let mut acked: HashMap<String, (i64, String, i64)> = HashMap::new();
    for (key, id, name, value) in log.acked {
        if let Some(previous) = acked.insert(key.clone(), (id, name.clone(), value)) {
            assert_eq!(
                previous,
                (id, name, value),
                "{key} acknowledged as two rows"
            );
        }
    }
    let pattern = format!("{prefix}%");
    let rows = db
        .query(
            "SELECT idempotency_key, id, name, value FROM seawall_items WHERE idempotency_key LIKE $1",
            &[&pattern],
        )
        .await
        .unwrap();
    let stored: HashMap<String, (i64, String, i64)> = rows
        .iter()
        .map(|row| (row.get(0), (row.get(1), row.get(2), row.get(3))))
        .collect();
    assert_eq!(stored.len(), rows.len(), "a key with more than one row");
    for (key, expected) in &acked {
        assert_eq!(
            stored.get(key),
            Some(expected),
            "acknowledged write {key} lost"
        );
    }
    harness.running.shutdown().await;
}

macro_rules! matrix {
    ($($name:ident: $target:ident, $fault:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            cell(Target::$target, Fault::$fault).await;
        }
    )*};
}

matrix! {
    postgres_restart: Postgres, Restart;
    postgres_reset: Postgres, Reset;
    postgres_blackhole: Postgres, Blackhole;
    postgres_latency: Postgres, Latency;
    postgres_refuse: Postgres, Refuse;
    redis_restart: Redis, Restart;
    redis_reset: Redis, Reset;
    redis_blackhole: Redis, Blackhole;
    redis_latency: Redis, Latency;
    redis_refuse: Redis, Refuse;
}

// Restarts of different lengths: shorter than a probe interval's worth of failures, and longer
// than the breaker's longest open period (5 s) that recovery used to wait for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_short() {
    cell_for(Target::Postgres, Fault::Restart, Duration::from_millis(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_long() {
    cell_for(Target::Postgres, Fault::Restart, Duration::from_secs(7)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_long() {
    cell_for(Target::Redis, Fault::Restart, Duration::from_secs(7)).await;
}
