//! The measurements: the rate across processes, the budget at a shared server, a killed
//! worker's permits, a Redis outage.

use super::*;

/// What a worker process printed.
#[derive(Debug, Clone, Default)]
pub struct WorkerOutput {
    /// Its report.
    pub report: WorkerReport,
    /// Its ticks.
    pub ticks: Vec<Tick>,
}

/// `processes` workers alike, on the limits named `name`, beginning together 1.5 s from now.
pub(crate) fn alike(
    processes: u32,
    name: &str,
    worker: impl Fn(WorkerArgs) -> WorkerArgs,
) -> Vec<WorkerArgs> {
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

pub(crate) async fn run_workers(exe: &Path, all: &[WorkerArgs]) -> io::Result<Vec<WorkerOutput>> {
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
pub(crate) async fn live_permits(redis: &str, name: &str) -> redis::RedisResult<u64> {
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
