//! `seawall-adaptive-pg`: 64 concurrent tasks run a CPU-bound query against a real PostgreSQL
//! for a while, with no limit, a fixed limit of 64, and each adaptive algorithm; prints
//! throughput (successful queries), errors, p50 / p99 latency of the successful ones and where
//! the adaptive limit settled.
//!
//! ```text
//! cargo run --release -p seawall-adaptive-pg -- [DATABASE_URL] [SECONDS]
//! ```

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall_classify::{BoxError, ClassifyLayer, Error, WithDeadline};
use seawall_limit::ConcurrencyLimitLayer;
use seawall_limit::adaptive::{Aimd, Gradient2};
use tokio::time::Instant;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt};

const TASKS: usize = 64;
const QUERY: &str = "SELECT count(*) FROM generate_series(1, 300000)";

type Client = BoxCloneSyncService<WithDeadline<()>, (), Error>;

struct Outcome {
    requests: usize,
    errors: usize,
    p50: Duration,
    p99: Duration,
    limit: Option<usize>,
}

async fn measure(
    client: Client,
    seconds: u64,
    handle: Option<seawall_limit::LimitHandle>,
) -> Outcome {
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(AtomicUsize::new(0));
    let end = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (client, latencies, errors) = (client.clone(), latencies.clone(), errors.clone());
            tokio::spawn(async move {
                while Instant::now() < end {
                    let start = Instant::now();
                    match client.clone().oneshot(WithDeadline::new(())).await {
                        Ok(()) => latencies.lock().unwrap().push(start.elapsed()),
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort();
    let at = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Outcome {
        requests: latencies.len(),
        errors: errors.load(Ordering::Relaxed),
        p50: at(0.5),
        p99: at(0.99),
        limit: handle.map(|h| h.limit()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args
        .first()
        .cloned()
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let seconds: u64 = match args.get(1).map(|s| s.parse()) {
        None => 10,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("error: SECONDS must be a positive whole number");
            return ExitCode::from(2);
        }
    };
    let mut config = deadpool_postgres::Config::new();
    config.url = Some(url);
    config.pool = Some(deadpool_postgres::PoolConfig::new(TASKS));
    let pool = match config.create_pool(
        Some(deadpool_postgres::Runtime::Tokio1),
        tokio_postgres::NoTls,
    ) {
        Ok(pool) => pool,
        Err(error) => {
            eprintln!("error: invalid database configuration: {error}");
            return ExitCode::from(2);
        }
    };
    // Classified once, next to the client, as in every Seawall stack.
    let client: Client = BoxCloneSyncService::new(ClassifyLayer::new().layer(tower::service_fn(
        move |_: WithDeadline<()>| {
            let pool = pool.clone();
            async move {
                let client = pool.get().await?;
                client.simple_query(QUERY).await?;
                Ok::<_, BoxError>(())
            }
        },
    )));
    if let Err(error) = client.clone().oneshot(WithDeadline::new(())).await {
        eprintln!("error: cannot query the database: {error}");
        return ExitCode::FAILURE;
    }

    println!("{TASKS} tasks, {seconds} s each, `{QUERY}`\n");
    println!("| stack | queries/s | errors | p50 ms | p99 ms | limit at the end |");
    println!("|---|---:|---:|---:|---:|---:|");
    let limited = |builder: seawall_limit::ConcurrencyLimitBuilder| {
        let layer = builder
            .queue(TASKS)
            .max_wait(Duration::from_secs(60))
            .build()
            .expect("valid");
        let handle = layer.handle();
        (
            BoxCloneSyncService::new(layer.layer(client.clone())),
            Some(handle),
        )
    };
    let runs: Vec<(&str, (Client, Option<seawall_limit::LimitHandle>))> = vec![
        ("no limit", (client.clone(), None)),
        (
            "fixed limit 64",
            limited(ConcurrencyLimitLayer::builder(64)),
        ),
        ("fixed limit 4", limited(ConcurrencyLimitLayer::builder(4))),
        (
            "adaptive AIMD (starts at 4, 1..64, 1.5 s timeout)",
            limited(
                ConcurrencyLimitLayer::builder(64).adaptive(
                    Aimd::new(4, 1, 64)
                        .expect("valid")
                        .timeout(Duration::from_millis(1_500)),
                ),
            ),
        ),
        (
            "adaptive Gradient2 (starts at 4, 1..64)",
            limited(
                ConcurrencyLimitLayer::builder(64)
                    .adaptive(Gradient2::new(4, 1, 64).expect("valid")),
            ),
        ),
    ];
    for (name, (service, handle)) in runs {
        let outcome = measure(service, seconds, handle).await;
        println!(
            "| {name} | {:.1} | {} | {:.0} | {:.0} | {} |",
            outcome.requests as f64 / seconds as f64,
            outcome.errors,
            outcome.p50.as_secs_f64() * 1e3,
            outcome.p99.as_secs_f64() * 1e3,
            outcome.limit.map_or("-".to_owned(), |l| l.to_string())
        );
    }
    ExitCode::SUCCESS
}
