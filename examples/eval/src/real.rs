//! Real mode: the scenarios that apply, against real PostgreSQL and Redis servers through
//! seawall-chaos's fault proxy, in real time (shorter runs; results are not bit-exact).

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall::BoxError;
use seawall_chaos::proxy::{Delay, Mode, Proxy};

use crate::peers::Clock;
use crate::scenario::{Client, Clients, Run, Scenario, Stack, drive};
use crate::sim::{Log, Request, SharedLog, recorded};

/// Where the real servers are.
#[derive(Debug, Clone)]
pub struct Targets {
    /// A PostgreSQL connection URL.
    pub postgres: String,
    /// A Redis URL.
    pub redis: String,
}

/// The scenarios real mode can reproduce with the proxy.
pub const SCENARIOS: [&str; 5] = [
    "pool-exhaustion",
    "dependency-restart",
    "slow-dependency",
    "cache-outage",
    "priority-spike",
];

/// The real-time version of `scenario`: 12 s at 50 requests per second, the fault from 4 s
/// to 8 s.
pub fn shortened(scenario: &Scenario) -> Scenario {
    let secs = Duration::from_secs;
    Scenario {
        duration: secs(12),
        rate: 50,
        fault: (secs(4), secs(8)),
        ..scenario.clone()
    }
}

fn postgres_addr(url: &str) -> Result<(SocketAddr, tokio_postgres::Config), String> {
    use tokio_postgres::config::Host;
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| format!("--postgres: not a PostgreSQL URL: {e}"))?;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        _ => return Err("--postgres: the URL must name a TCP host".to_owned()),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("--postgres: cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("--postgres: no address for {host}"))?;
    Ok((addr, config))
}

fn redis_addr(url: &str) -> Result<SocketAddr, String> {
    let client = redis::Client::open(url).map_err(|e| format!("--redis: not a Redis URL: {e}"))?;
    match client.get_connection_info().addr() {
        redis::ConnectionAddr::Tcp(host, port) => (host.as_str(), *port)
            .to_socket_addrs()
            .map_err(|e| format!("--redis: cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("--redis: no address for {host}")),
        _ => Err("--redis: the URL must name a TCP host".to_owned()),
    }
}

/// Runs `scenario` (already shortened) with `stack` against the real servers.
pub fn run(scenario: &Scenario, stack: Stack, seed: u64, targets: &Targets) -> Result<Run, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(run_async(scenario, stack, seed, targets))
}

async fn run_async(
    scenario: &Scenario,
    stack: Stack,
    seed: u64,
    targets: &Targets,
) -> Result<Run, String> {
    let (pg_addr, pg) = postgres_addr(&targets.postgres)?;
    let redis_addr = redis_addr(&targets.redis)?;
    let pg_proxy = Proxy::start(pg_addr).await.map_err(|e| e.to_string())?;
    let redis_proxy = Proxy::start(redis_addr).await.map_err(|e| e.to_string())?;

    let mut config = deadpool_postgres::Config::new();
    config.host = Some(pg_proxy.addr().ip().to_string());
    config.port = Some(pg_proxy.addr().port());
    config.user = pg.get_user().map(str::to_owned);
    config.dbname = pg.get_dbname().map(str::to_owned);
    config.password = pg
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    config.application_name = Some("seawall-eval".to_owned());
    config.pool = Some(deadpool_postgres::PoolConfig {
        max_size: scenario.model.slots,
        timeouts: deadpool_postgres::Timeouts {
            wait: Some(Duration::from_secs(30)),
            ..Default::default()
        },
        ..Default::default()
    });
    let pool = config
        .create_pool(
            Some(deadpool_postgres::Runtime::Tokio1),
            tokio_postgres::NoTls,
        )
        .map_err(|e| format!("--postgres: {e}"))?;
    let manager = redis::aio::ConnectionManager::new(
        redis::Client::open(format!("redis://{}/", redis_proxy.addr()))
            .map_err(|e| e.to_string())?,
    )
    .await
    .map_err(|e| format!("--redis: cannot connect: {e}"))?;

    let db_log: SharedLog = Arc::new(Mutex::new(Log::default()));
    let cache_log: SharedLog = Arc::new(Mutex::new(Log::default()));
    let db: Client = recorded(
        tower::service_fn(move |request: Request| {
            let pool = pool.clone();
            async move {
                let id = crate::sim::id_of(&request);
                let client = pool.get().await?;
                let row = client.query_one("SELECT $1::int8", &[&(id as i64)]).await?;
                Ok::<_, BoxError>(row.get::<_, i64>(0) as u64)
            }
        }),
        db_log.clone(),
    );
    let cache: Client = recorded(
        tower::service_fn(move |request: Request| {
            let mut manager = manager.clone();
            async move {
                let id = crate::sim::id_of(&request);
                let _: Option<String> = redis::cmd("GET")
                    .arg(format!("seawall-eval:{}", id % 100))
                    .query_async(&mut manager)
                    .await?;
                Ok::<_, BoxError>(id)
            }
        }),
        cache_log.clone(),
    );

    let pg_proxy = Arc::new(pg_proxy);
    let redis_proxy = Arc::new(redis_proxy);
    let (from, to) = scenario.fault;
    let name = scenario.name;
    let faults = {
        let (pg_proxy, redis_proxy) = (pg_proxy.clone(), redis_proxy.clone());
        async move {
            let start = tokio::time::Instant::now();
            let slow = |ms| Mode::Latency {
                up: Delay::default(),
                down: Delay::fixed(Duration::from_millis(ms)),
            };
            if name == "priority-spike" {
                // The whole run at 20 ms an answer, as the simulation's database: a pool of
                // 10 then answers 500 calls a second, and the spike is 10 times that.
                pg_proxy.set_mode(slow(20));
            }
            tokio::time::sleep_until(start + from).await;
            match name {
                "pool-exhaustion" => pg_proxy.set_mode(slow(200)),
                "dependency-restart" => pg_proxy.down(),
                "slow-dependency" => pg_proxy.set_mode(slow(400)),
                "cache-outage" => redis_proxy.set_mode(Mode::Blackhole),
                _ => {}
            }
            tokio::time::sleep_until(start + to).await;
            if name != "priority-spike" {
                pg_proxy.up();
            }
            redis_proxy.up();
        }
    };
    // The load that counts is the load on the dependency under fault.
    let measured = if scenario.cache.is_measured() {
        cache_log
    } else {
        db_log
    };
    let clients = Clients {
        db,
        cache,
        measured,
    };
    let run = drive(scenario, stack, seed, Clock::Real, clients, faults).await;
    for proxy in [pg_proxy, redis_proxy] {
        if let Ok(proxy) = Arc::try_unwrap(proxy) {
            proxy.shutdown().await;
        }
    }
    Ok(run)
}
