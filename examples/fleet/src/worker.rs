//! One worker process: its options, its calls through the fleet's limits, and what it
//! reports.

use super::*;

/// What one worker process does: the `worker` subcommand's options.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// The Redis server (or the fault proxy in front of it).
    #[arg(long)]
    pub redis: String,
    /// The limits' name, shared by every worker of a run.
    #[arg(long)]
    pub name: String,
    /// The fleet-wide rate, per second (none: no rate limit).
    #[arg(long)]
    pub rate: Option<f64>,
    /// The fleet-wide calls in flight (none: no budget).
    #[arg(long)]
    pub max: Option<u32>,
    /// The instances expected to share the limits.
    #[arg(long)]
    pub replicas: u32,
    /// When to begin, in milliseconds since the Unix epoch (every worker begins together).
    #[arg(long = "start-ms")]
    pub start_ms: u64,
    /// How long to send calls, in milliseconds.
    #[arg(long = "duration-ms", value_parser = millis)]
    pub duration: Duration,
    /// Calls sent at once, each as soon as the previous one ended.
    #[arg(long)]
    pub tasks: u32,
    /// The counting server each call goes to (none: calls answer at once).
    #[arg(long)]
    pub server: Option<SocketAddr>,
    /// A budget permit's lease, in milliseconds.
    #[arg(long = "lease-ms", value_parser = millis)]
    pub lease: Duration,
}

pub(crate) fn millis(value: &str) -> Result<Duration, String> {
    value
        .parse()
        .map(Duration::from_millis)
        .map_err(|_| format!("`{value}` is not a whole number of milliseconds"))
}

impl WorkerArgs {
    /// The command line of the `worker` subcommand.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "worker".to_owned(),
            format!("--redis={}", self.redis),
            format!("--name={}", self.name),
            format!("--replicas={}", self.replicas),
            format!("--start-ms={}", self.start_ms),
            format!("--duration-ms={}", self.duration.as_millis()),
            format!("--tasks={}", self.tasks),
            format!("--lease-ms={}", self.lease.as_millis()),
        ];
        if let Some(rate) = self.rate {
            args.push(format!("--rate={rate}"));
        }
        if let Some(max) = self.max {
            args.push(format!("--max={max}"));
        }
        if let Some(server) = self.server {
            args.push(format!("--server={server}"));
        }
        args
    }
}

/// What a worker counted, printed as its last line (`report admitted=.. ...`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Calls admitted.
    pub admitted: u64,
    /// Calls refused by the rate limit or the budget.
    pub refused: u64,
    /// Calls that failed otherwise (never, if a Redis fault fails no call).
    pub failed: u64,
    /// Decisions made on Redis.
    pub shared: u64,
    /// Decisions made on the local share.
    pub local: u64,
}

impl WorkerReport {
    fn line(&self) -> String {
        format!(
            "report admitted={} refused={} failed={} shared={} local={}",
            self.admitted, self.refused, self.failed, self.shared, self.local
        )
    }

    /// Reads a report line.
    pub fn parse(line: &str) -> Option<WorkerReport> {
        let fields = line.strip_prefix("report ")?;
        let mut report = WorkerReport::default();
        for field in fields.split_whitespace() {
            let (key, value) = field.split_once('=')?;
            let value: u64 = value.parse().ok()?;
            match key {
                "admitted" => report.admitted = value,
                "refused" => report.refused = value,
                "failed" => report.failed = value,
                "shared" => report.shared = value,
                "local" => report.local = value,
                _ => return None,
            }
        }
        Some(report)
    }
}

/// A tick a worker prints every 250 ms: (ms since the start, shared decisions, local ones).
pub type Tick = (u64, u64, u64);

pub(crate) fn parse_tick(line: &str) -> Option<Tick> {
    let mut parts = line.strip_prefix("tick ")?.split_whitespace();
    Some((
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    ))
}

/// One call to the counting server: connect, send a byte, wait for its byte back.
pub(crate) async fn counted_call(server: SocketAddr) -> io::Result<u64> {
    let mut stream = TcpStream::connect(server).await?;
    stream.write_all(&[1]).await?;
    let mut answer = [0];
    stream.read_exact(&mut answer).await?;
    Ok(u64::from(answer[0]))
}

/// Runs a worker: builds the fleet-wide limits, sends calls from `start_ms` for `duration`,
/// prints ticks and, last, its report.
pub async fn worker(args: &WorkerArgs) -> Result<WorkerReport, Box<dyn std::error::Error>> {
    let fleet = Fleet::builder(&args.redis)
        .prefix("seawall-demo")
        .expected_replicas(args.replicas)
        .open_duration(Duration::from_millis(500))
        .build()?;
    let server = args.server;
    let mut service: BoxCloneSyncService<u64, u64, Error> =
        BoxCloneSyncService::new(tower::service_fn(move |id: u64| async move {
            match server {
                Some(server) => counted_call(server)
                    .await
                    .map_err(seawall_classify::classified),
                None => Ok(id),
            }
        }));
    if let Some(max) = args.max {
        let budget = ConcurrencyBudgetLayer::builder(max)
            .fleet(&fleet, &args.name)
            .lease(args.lease)
            .build()?;
        service = BoxCloneSyncService::new(budget.layer(service));
    }
    if let Some(rate) = args.rate {
        let limit = RateLimitLayer::builder(rate)
            .fleet(&fleet, &args.name)
            .build()?;
        service = BoxCloneSyncService::new(limit.layer(service));
    }

    let start = args.start_ms;
    let wait = start.saturating_sub(unix_ms());
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let end = tokio::time::Instant::now() + args.duration;
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let ticker = {
        let fleet = fleet.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(250));
            loop {
                interval.tick().await;
                println!(
                    "tick {} {} {}",
                    unix_ms().saturating_sub(start),
                    fleet.shared_decisions(),
                    fleet.local_decisions()
                );
            }
        })
    };
    let mut tasks = Vec::new();
    for task in 0..args.tasks {
        let (mut service, counts) = (service.clone(), counts.clone());
        tasks.push(tokio::spawn(async move {
            let mut id = u64::from(task) << 32;
            while tokio::time::Instant::now() < end {
                id += 1;
                let result = service.ready().await?.call(id).await;
                let counter = match &result {
                    Ok(_) => 0,
                    Err(error) if error.is::<RateLimited>() || error.is::<BudgetSpent>() => 1,
                    Err(_) => 2,
                };
                counts[counter].fetch_add(1, Ordering::Relaxed);
                if result.is_err() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            Ok::<_, Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    ticker.abort();
    let report = WorkerReport {
        admitted: counts[0].load(Ordering::Relaxed),
        refused: counts[1].load(Ordering::Relaxed),
        failed: counts[2].load(Ordering::Relaxed),
        shared: fleet.shared_decisions(),
        local: fleet.local_decisions(),
    };
    println!("{}", report.line());
    Ok(report)
}
