//! Several processes sharing one fleet-wide rate limit and one concurrency budget through
//! Redis, and the figures that say whether they hold: the admitted rate across every
//! process, the most calls in flight at a shared server, how soon a killed process's permits
//! return, and what a Redis outage costs.
//!
//! The binary (`seawall-fleet-demo`) is both the parent that runs a measurement and the
//! worker processes it starts (`worker` subcommand); the tests drive the same functions.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use seawall_chaos::proxy::Proxy;
use seawall_classify::Error;
use seawall_fleet::error::{BudgetSpent, RateLimited};
use seawall_fleet::{ConcurrencyBudgetLayer, Fleet, RateLimitLayer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};

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

fn millis(value: &str) -> Result<Duration, String> {
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

fn parse_tick(line: &str) -> Option<Tick> {
    let mut parts = line.strip_prefix("tick ")?.split_whitespace();
    Some((
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    ))
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One call to the counting server: connect, send a byte, wait for its byte back.
async fn counted_call(server: SocketAddr) -> io::Result<u64> {
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

/// What a worker process printed.
#[derive(Debug, Clone, Default)]
pub struct WorkerOutput {
    /// Its report.
    pub report: WorkerReport,
    /// Its ticks.
    pub ticks: Vec<Tick>,
}

/// `processes` workers alike, on the limits named `name`, beginning together 1.5 s from now.
fn alike(processes: u32, name: &str, worker: impl Fn(WorkerArgs) -> WorkerArgs) -> Vec<WorkerArgs> {
    let template = worker(WorkerArgs {
        redis: String::new(),
        name: unique(name),
        rate: None,
        max: None,
        replicas: processes,
        start_ms: unix_ms() + 1_500,
        duration: Duration::from_secs(5),
        tasks: 4,
        server: None,
        lease: Duration::from_secs(5),
    });
    vec![template; processes as usize]
}

async fn run_workers(exe: &Path, all: &[WorkerArgs]) -> io::Result<Vec<WorkerOutput>> {
    let children: Vec<_> = all
        .iter()
        .map(|args| {
            tokio::process::Command::new(exe)
                .args(args.to_args())
                .kill_on_drop(true)
                .stdout(std::process::Stdio::piped())
                .output()
        })
        .collect();
    let mut outputs = Vec::new();
    for child in children {
        let output = child.await?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let report = stdout
            .lines()
            .find_map(WorkerReport::parse)
            .ok_or_else(|| {
                io::Error::other(format!(
                    "a worker printed no report ({}): {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                ))
            })?;
        outputs.push(WorkerOutput {
            report,
            ticks: stdout.lines().filter_map(parse_tick).collect(),
        });
    }
    Ok(outputs)
}

/// A name no other run uses.
pub fn unique(name: &str) -> String {
    format!("{name}-{}-{}", std::process::id(), unix_ms())
}

/// The figures of a run of processes sharing one rate limit.
#[derive(Debug, Clone)]
pub struct RateFigures {
    /// The fleet-wide rate.
    pub rate: f64,
    /// How long they sent calls.
    pub duration: Duration,
    /// Each process's report.
    pub workers: Vec<WorkerReport>,
}

impl RateFigures {
    /// Calls admitted across every process.
    pub fn admitted(&self) -> u64 {
        self.workers.iter().map(|w| w.admitted).sum()
    }

    /// The admitted rate across every process, per second.
    pub fn admitted_rate(&self) -> f64 {
        self.admitted() as f64 / self.duration.as_secs_f64()
    }

    /// How far the admitted rate is from the limit, as a share of it.
    pub fn error(&self) -> f64 {
        (self.admitted_rate() - self.rate).abs() / self.rate
    }
}

/// `processes` processes sending as fast as they can through one fleet-wide rate limit of
/// `rate` per second, for `duration`.
pub async fn rate_run(
    exe: &Path,
    redis: &str,
    processes: u32,
    rate: f64,
    duration: Duration,
) -> io::Result<RateFigures> {
    let all = alike(processes, "rate", |worker| WorkerArgs {
        redis: redis.to_owned(),
        rate: Some(rate),
        duration,
        ..worker
    });
    let workers = run_workers(exe, &all).await?;
    Ok(RateFigures {
        rate,
        duration,
        workers: workers.into_iter().map(|w| w.report).collect(),
    })
}

/// A TCP server counting the calls it is serving at once, each held for a while: what every
/// process's calls reach, so that the fleet's in-flight count is observed in one place.
#[derive(Debug)]
pub struct CountingServer {
    addr: SocketAddr,
    current: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    served: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingServer {
    /// Starts one on a free loopback port, holding each call for `hold`.
    pub async fn start(hold: Duration) -> io::Result<CountingServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let current = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let served = Arc::new(AtomicU64::new(0));
        let task = {
            let (current, most, served) = (current.clone(), most.clone(), served.clone());
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let (current, most, served) = (current.clone(), most.clone(), served.clone());
                    tokio::spawn(async move {
                        let mut byte = [0];
                        if stream.read_exact(&mut byte).await.is_err() {
                            return;
                        }
                        let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(hold).await;
                        current.fetch_sub(1, Ordering::SeqCst);
                        served.fetch_add(1, Ordering::Relaxed);
                        let _ = stream.write_all(&byte).await;
                    });
                }
            })
        };
        Ok(CountingServer {
            addr,
            current,
            most,
            served,
            task,
        })
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Calls being served now.
    pub fn current(&self) -> usize {
        self.current.load(Ordering::SeqCst)
    }

    /// The most calls it served at once.
    pub fn most(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }

    /// Calls served.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

impl Drop for CountingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The figures of a run of processes sharing one concurrency budget.
#[derive(Debug, Clone)]
pub struct BudgetFigures {
    /// The fleet-wide budget.
    pub max: u32,
    /// The most calls the shared server saw at once.
    pub most_in_flight: usize,
    /// Calls the server served.
    pub served: u64,
    /// Each process's report.
    pub workers: Vec<WorkerReport>,
}

/// `processes` processes, 4 calls at once each, through one fleet-wide budget of `max`, to
/// one counting server holding each call 20 ms.
pub async fn budget_run(
    exe: &Path,
    redis: &str,
    processes: u32,
    max: u32,
    duration: Duration,
) -> io::Result<BudgetFigures> {
    let server = CountingServer::start(Duration::from_millis(20)).await?;
    let all = alike(processes, "budget", |worker| WorkerArgs {
        redis: redis.to_owned(),
        max: Some(max),
        duration,
        server: Some(server.addr()),
        ..worker
    });
    let workers = run_workers(exe, &all).await?;
    Ok(BudgetFigures {
        max,
        most_in_flight: server.most(),
        served: server.served(),
        workers: workers.into_iter().map(|w| w.report).collect(),
    })
}

/// Live permits of a budget on Redis now (leases not ended), read as the server's clock says.
async fn live_permits(redis: &str, name: &str) -> redis::RedisResult<u64> {
    let client = redis::Client::open(redis)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let (seconds, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await?;
    let now_ms = seconds * 1_000 + micros / 1_000;
    redis::cmd("ZCOUNT")
        .arg(format!("seawall-demo:budget:{name}"))
        .arg(format!("({now_ms}"))
        .arg("+inf")
        .query_async(&mut conn)
        .await
}

/// A process takes a whole budget of `max` with calls that hang, and is killed with SIGKILL:
/// how long until its permits are free again, with leases of `lease`.
pub async fn crash_run(exe: &Path, redis: &str, max: u32, lease: Duration) -> io::Result<Duration> {
    let server = CountingServer::start(Duration::from_secs(120)).await?;
    let name = unique("crash");
    let args = WorkerArgs {
        redis: redis.to_owned(),
        name: name.clone(),
        rate: None,
        max: Some(max),
        replicas: 1,
        start_ms: unix_ms(),
        duration: Duration::from_secs(120),
        tasks: max,
        server: Some(server.addr()),
        lease,
    };
    let mut child = tokio::process::Command::new(exe)
        .args(args.to_args())
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let waited = tokio::time::Instant::now();
    while server.current() < max as usize {
        if waited.elapsed() > Duration::from_secs(20) {
            return Err(io::Error::other("the process never took the whole budget"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A renewal has run since, so the leases are fresh.
    tokio::time::sleep(lease / 2).await;
    let held = live_permits(redis, &name).await.map_err(io::Error::other)?;
    if held != u64::from(max) {
        return Err(io::Error::other(format!("{held} permits held, not {max}")));
    }
    child.start_kill()?;
    child.wait().await?;
    let killed = tokio::time::Instant::now();
    loop {
        let held = live_permits(redis, &name).await.map_err(io::Error::other)?;
        if held == 0 {
            return Ok(killed.elapsed());
        }
        if killed.elapsed() > lease * 10 {
            return Err(io::Error::other(format!(
                "{held} permits still held {:?} after the kill",
                killed.elapsed()
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The figures of a run through a Redis outage.
#[derive(Debug, Clone)]
pub struct OutageFigures {
    /// When Redis went away and came back, in ms since the start.
    pub down: (u64, u64),
    /// Each process's output.
    pub workers: Vec<WorkerOutput>,
}

impl OutageFigures {
    /// Calls that failed (for a reason other than a limit's refusal).
    pub fn failed(&self) -> u64 {
        self.workers.iter().map(|w| w.report.failed).sum()
    }

    /// Decisions made on the local shares.
    pub fn local(&self) -> u64 {
        self.workers.iter().map(|w| w.report.local).sum()
    }

    /// Calls admitted.
    pub fn admitted(&self) -> u64 {
        self.workers.iter().map(|w| w.report.admitted).sum()
    }

    /// Shared decisions made from one second after Redis came back to the end, per process.
    pub fn shared_after(&self) -> Vec<u64> {
        self.workers
            .iter()
            .map(|w| {
                let back = w
                    .ticks
                    .iter()
                    .find(|(ms, _, _)| *ms >= self.down.1 + 1_000)
                    .map_or(0, |t| t.1);
                w.report.shared.saturating_sub(back)
            })
            .collect()
    }
}

/// `processes` processes through one rate limit and one budget on Redis behind the fault
/// proxy, which stops Redis from answering (connections refused and reset) for `down` from
/// `from` into a run of `duration`.
pub async fn outage_run(
    exe: &Path,
    redis: SocketAddr,
    processes: u32,
    duration: Duration,
    from: Duration,
    down: Duration,
) -> io::Result<OutageFigures> {
    let proxy = Proxy::start(redis).await?;
    let all = alike(processes, "outage", |worker| WorkerArgs {
        redis: format!("redis://{}/", proxy.addr()),
        rate: Some(400.0),
        max: Some(8),
        duration,
        ..worker
    });
    let start_ms = all[0].start_ms;
    let switch = async {
        tokio::time::sleep(Duration::from_millis(start_ms.saturating_sub(unix_ms())) + from).await;
        proxy.down();
        let went = unix_ms().saturating_sub(start_ms);
        tokio::time::sleep(down).await;
        proxy.up();
        (went, unix_ms().saturating_sub(start_ms))
    };
    let (workers, down) = tokio::join!(run_workers(exe, &all), switch);
    proxy.shutdown().await;
    Ok(OutageFigures {
        down,
        workers: workers?,
    })
}
