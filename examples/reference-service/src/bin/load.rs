//! `seawall-service-load`: `GET /items/{id}` throughput and latency at 64 concurrent
//! keep-alive clients, against the service with Seawall's layers and against the same
//! handlers calling the clients directly, in the same run.
//!
//! Both services run in this process against the local PostgreSQL and Redis
//! (`DATABASE_URL`, `REDIS_URL`); rounds alternate (bare, seawall, seawall, bare, ...) so that
//! drift on the machine falls on both alike, and the ratios reported are the medians over
//! the pairs of adjacent rounds. The load generator shares the machine's cores with both
//! services and Redis, as it would on a 2-core host: the figures are for comparison, not
//! capacity planning.
//!
//! ```text
//! cargo run --release -p seawall-example-service --bin seawall-service-load -- [--clients 64] [--seconds 3] [--rounds 10]
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use seawall_example_service::client::Client;
use seawall_example_service::{App, Config, Layers, Metrics, Running};
use tokio::time::Instant;

struct Options {
    clients: usize,
    seconds: u64,
    rounds: usize,
    items: i64,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        clients: 64,
        seconds: 3,
        rounds: 10,
        items: 500,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|v| *v > 0)
                .ok_or_else(|| format!("{name} needs a positive whole number"))
        };
        match flag.as_str() {
            "--clients" => options.clients = value("--clients")? as usize,
            "--seconds" => options.seconds = value("--seconds")?,
            "--rounds" => options.rounds = value("--rounds")? as usize,
            "--items" => options.items = value("--items")? as i64,
            "-h" | "--help" => {
                return Err(
                    "usage: seawall-service-load [--clients N] [--seconds S] [--rounds R] [--items I]"
                        .to_owned(),
                );
            }
            other => return Err(format!("unknown argument `{other}` (try --help)")),
        }
    }
    Ok(options)
}

#[derive(Default)]
struct Tally {
    micros: Vec<u32>,
    errors: u64,
    elapsed: Duration,
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match runtime.block_on(run(config, options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn start(config: &Config, layers: Layers) -> Result<Running, String> {
    let metrics = Metrics::standalone()?;
    let app = App::new(config.clone(), layers, metrics)
        .await
        .map_err(|e| e.to_string())?;
    Running::start(app, "127.0.0.1:0".parse().expect("an address"))
        .await
        .map_err(|e| format!("cannot listen: {e}"))
}

async fn run(config: Config, options: Options) -> Result<(), String> {
    let bare = start(&config, Layers::Bare).await?;
    let seawall = start(&config, Layers::Seawall).await?;
    // Items to read, each read once through each service so the cache holds them all.
    let mut client = Client::new(seawall.addr);
    let run_id = format!("load-{}", std::process::id());
    let mut ids = Vec::new();
    for i in 0..options.items {
        let reply = client
            .post_item(&format!("{run_id}-{i}"), "load", i)
            .await
            .map_err(|e| format!("cannot write the items: {e}"))?;
        let body: serde_json::Value =
            serde_json::from_slice(&reply.body).map_err(|_| "a write failed".to_owned())?;
        let id = body["id"]
            .as_i64()
            .ok_or_else(|| format!("a write failed: {}", reply.status))?;
        ids.push(id);
    }
    for addr in [bare.addr, seawall.addr] {
        let mut client = Client::new(addr);
        for id in &ids {
            client
                .get(&format!("/items/{id}"))
                .await
                .map_err(|e| format!("cannot read the items: {e}"))?;
        }
    }
    let ids = Arc::new(ids);
    println!(
        "GET /items/{{id}}: {} clients, {} rounds of {} s per variant, {} items (cached)",
        options.clients, options.rounds, options.seconds, options.items
    );
    // A short warm-up of each, then rounds in the order A B B A A B ...
    round(bare.addr, &ids, options.clients, Duration::from_secs(1)).await;
    round(seawall.addr, &ids, options.clients, Duration::from_secs(1)).await;
    let mut totals = [Tally::default(), Tally::default()];
    // Per round: (requests/s, p99 in µs), by variant.
    let mut rounds: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
    for r in 0..options.rounds * 2 {
        let which = usize::from(matches!(r % 4, 1 | 2));
        let addr = [bare.addr, seawall.addr][which];
        let mut tally = round(
            addr,
            &ids,
            options.clients,
            Duration::from_secs(options.seconds),
        )
        .await;
        let rate = tally.micros.len() as f64 / tally.elapsed.as_secs_f64();
        let mut sorted = tally.micros.clone();
        sorted.sort_unstable();
        rounds[which].push((rate, percentile(&sorted, 0.99)));
        let total = &mut totals[which];
        total.micros.append(&mut tally.micros);
        total.errors += tally.errors;
        total.elapsed += tally.elapsed;
    }
    for (name, rounds) in ["bare", "seawall"].iter().zip(&rounds) {
        let shown: Vec<String> = rounds.iter().map(|(r, _)| format!("{r:.0}")).collect();
        println!("{name} rounds (requests/s): {}", shown.join(" "));
    }
    println!("\n| variant | requests/s | p50 | p99 | errors |\n|---|---|---|---|---|");
    for (name, tally) in ["bare handlers", "seawall layers"]
        .iter()
        .zip(totals.iter_mut())
    {
        tally.micros.sort_unstable();
        let rate = tally.micros.len() as f64 / tally.elapsed.as_secs_f64();
        let p50 = percentile(&tally.micros, 0.50);
        let p99 = percentile(&tally.micros, 0.99);
        println!(
            "| {name} | {rate:.0} | {:.2} ms | {:.2} ms | {} |",
            p50 / 1e3,
            p99 / 1e3,
            tally.errors
        );
    }
    // Rounds run in pairs (bare then seawall, or seawall then bare) back to back: the median
    // of the pairs' ratios is robust to the machine's drift and to an odd slow round.
    let mut throughput: Vec<f64> = Vec::new();
    let mut tail: Vec<f64> = Vec::new();
    for (b, s) in rounds[0].iter().zip(&rounds[1]) {
        throughput.push(s.0 / b.0);
        tail.push(s.1 / b.1);
    }
    let (throughput, tail) = (median(&mut throughput), median(&mut tail));
    println!(
        "\nseawall / bare, median of {} paired rounds: throughput {:.1} % (target at least 95 %: {}), p99 {tail:.2}x (target at most 1.1x: {})",
        rounds[0].len(),
        throughput * 100.0,
        if throughput >= 0.95 { "met" } else { "not met" },
        if tail <= 1.1 { "met" } else { "not met" },
    );
    bare.shutdown().await;
    seawall.shutdown().await;
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    f64::from(sorted[index])
}

async fn round(
    addr: std::net::SocketAddr,
    ids: &Arc<Vec<i64>>,
    clients: usize,
    length: Duration,
) -> Tally {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|index| {
            let ids = ids.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut client = Client::new(addr);
                let mut tally = Tally::default();
                let mut next = index;
                while !stop.load(Ordering::Relaxed) {
                    next = (next + 7919) % ids.len();
                    let sent = Instant::now();
                    match client.get(&format!("/items/{}", ids[next])).await {
                        Ok(reply) if reply.status == http::StatusCode::OK => {
                            let micros = sent.elapsed().as_micros();
                            tally.micros.push(u32::try_from(micros).unwrap_or(u32::MAX));
                        }
                        _ => tally.errors += 1,
                    }
                }
                tally
            })
        })
        .collect();
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::default();
    for task in tasks {
        if let Ok(tally) = task.await {
            total.micros.extend(tally.micros);
            total.errors += tally.errors;
        }
    }
    total.elapsed = started.elapsed();
    total
}
