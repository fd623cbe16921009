//! `seawall-fleet-demo`: starts worker processes that share one rate limit and one
//! concurrency budget through Redis, and prints what the fleet admitted.

use std::time::Duration;

use clap::{Parser, Subcommand};
use seawall_example_fleet::{WorkerArgs, budget_run, crash_run, outage_run, rate_run, worker};

/// Several processes sharing one fleet-wide rate limit and one concurrency budget on Redis.
#[derive(Debug, Parser)]
#[command(version)]
struct Options {
    #[command(subcommand)]
    command: Option<Command>,
    /// The Redis server.
    #[arg(long, default_value = "redis://127.0.0.1:6379/")]
    redis: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One worker process (started by the demo).
    Worker(WorkerArgs),
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = Options::parse();
    if let Some(Command::Worker(args)) = options.command {
        worker(&args).await?;
        return Ok(());
    }

    let exe = std::env::current_exe()?;
    let redis = options.redis;
    println!("Four processes, one fleet-wide rate limit of 200/s, 10 s:");
    let rate = rate_run(&exe, &redis, 4, 200.0, Duration::from_secs(10)).await?;
    for (i, w) in rate.workers.iter().enumerate() {
        println!(
            "  process {i}: admitted {}, refused {}",
            w.admitted, w.refused
        );
    }
    println!(
        "  fleet: {} admitted, {:.1}/s, {:.1} % from the limit",
        rate.admitted(),
        rate.admitted_rate(),
        100.0 * rate.error()
    );

    println!("Four processes, 4 calls at once each, one fleet-wide budget of 8 in flight, 5 s:");
    let budget = budget_run(&exe, &redis, 4, 8, Duration::from_secs(5)).await?;
    println!(
        "  most in flight at the shared server: {} (budget {}), {} calls served, {} refused",
        budget.most_in_flight,
        budget.max,
        budget.served,
        budget.workers.iter().map(|w| w.refused).sum::<u64>()
    );

    let lease = Duration::from_secs(1);
    println!("A process holding the whole budget of 4 is killed (SIGKILL), leases of {lease:?}:");
    let back = crash_run(&exe, &redis, 4, lease).await?;
    println!("  its permits were free again {back:?} after the kill");

    let address = redis
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:6379")
        .to_owned();
    let target = tokio::net::lookup_host(address)
        .await?
        .next()
        .ok_or("the Redis address does not resolve")?;
    println!("Four processes through the fault proxy; Redis away from 3 s to 5 s of 8 s:");
    let outage = outage_run(
        &exe,
        target,
        4,
        Duration::from_secs(8),
        Duration::from_secs(3),
        Duration::from_secs(2),
    )
    .await?;
    println!(
        "  {} admitted, {} failed, {} decisions on the local shares; shared decisions per process from 1 s after Redis came back: {:?}",
        outage.admitted(),
        outage.failed(),
        outage.local(),
        outage.shared_after()
    );
    Ok(())
}
