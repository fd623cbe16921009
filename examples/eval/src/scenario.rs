//! The scenarios, the stacks they run against, and the runner.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall::breaker::State;
use seawall::classify::AssumeIdempotent;
use seawall::fallback::{FallbackLayer, FallbackRequest};
use seawall::hedge::HedgeLayer;
use seawall::limit::{ConcurrencyLimitLayer, Discipline};
use seawall::{Class, Error, FailureKind, Priority, RetryHint, StandardPipeline};
use seawall_chaos::ChaosLayer;
use tokio::time::Instant;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt};

use crate::peers::{self, Clock, Sizing};
use crate::sim::{Log, Model, Request, SharedLog, dependency};

/// Which stack a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Stack {
    /// What the post-mortems describe: no limit, a 30 s timeout, 3 immediate retries on
    /// every error.
    Naive,
    /// tower's built-in middleware, as a competent user composes it.
    Tower,
    /// The closest peer crate, tower-resilience, with its presets.
    #[value(name = "tower-resilience")]
    TowerResilience,
    /// The facade's standard pipeline alone: the `seawall` stack without the hedge or the
    /// fallback it has in the scenarios made for them (run only there, as the "without").
    #[value(name = "seawall-pipeline")]
    SeawallPipeline,
    /// The facade's standard pipeline for the dependency, with its defaults; in `long-tail`
    /// with a hedge, in `database-down` with a stale-cache fallback.
    Seawall,
}

impl Stack {
    /// Every stack, in report order.
    pub const ALL: [Stack; 4] = [
        Stack::Naive,
        Stack::Tower,
        Stack::TowerResilience,
        Stack::Seawall,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Stack::Naive => "naive",
            Stack::Tower => "tower",
            Stack::TowerResilience => "tower-resilience",
            Stack::SeawallPipeline => "seawall-pipeline",
            Stack::Seawall => "seawall",
        }
    }

    /// How the stack is configured, for the report: every choice, and where it comes from.
    pub fn config(self) -> &'static str {
        match self {
            Stack::Naive => {
                "tower `Timeout` of 30 s around tower `Retry` with a policy that retries every \
                 error 3 times at once; no limit, no breaker. What the post-mortems describe."
            }
            Stack::Tower => {
                "tower 0.5's built-ins, outermost first: `Timeout` = the caller's 2 s deadline; \
                 `Retry` with the policy a tower user writes (tower ships none): every error \
                 retried (tower does not classify errors), at most 2 retries, \
                 `ExponentialBackoff` 50 ms..2 s with jitter 0.5, tower's `TpsBudget` with its \
                 defaults (10 s window, 10 retries/s floor, 20 %), successes deposited; \
                 `LoadShed` (a full limit fails fast instead of queueing without bound); \
                 `ConcurrencyLimit` = the pool size (database 10, cache 1,000); `Timeout` per \
                 attempt: database 1 s (half the caller's deadline), cache 500 ms (Seawall's \
                 Redis preset)."
            }
            Stack::TowerResilience => {
                "tower-resilience 0.14, outermost first (Resilience4j's order, which it \
                 follows): time limiter = the caller's 2 s deadline; retry \
                 `RetryLayer::exponential_backoff()` preset (3 attempts, 100 ms doubling), \
                 open-circuit refusals not retried (its documentation's advice); circuit \
                 breaker `CircuitBreakerLayer::fast_fail()` preset (its choice for \
                 latency-sensitive callers: 25 % of 20 calls, open 10 s, 1 trial call), default \
                 classifier (every error counts); time limiter per attempt (database 1 s, cache \
                 500 ms); bulkhead = the pool size, `reject_when_full`. On the simulated clock \
                 the breaker's open-state timer is kept on tokio's clock (it reads \
                 `std::time::Instant`, which a paused clock does not move): same 10 s wait, same \
                 single trial; real mode runs it unmodified."
            }
            Stack::SeawallPipeline => {
                "The `seawall` stack without its scenario's extra layer: the standard pipelines \
                 alone, run in `long-tail` and `database-down` only, so that each shows what the \
                 hedge or the fallback adds."
            }
            Stack::Seawall => {
                "`StandardPipeline::postgres(10)` (database) and `StandardPipeline::redis(1000)` \
                 (cache) with their defaults and a recovery probe (one call of the dependency's \
                 own client); the caller's 2 s deadline travels with each request \
                 (`WithDeadline`). In `long-tail`, `HedgeLayer` around the database's pipeline \
                 (reads are idempotent; its defaults: the learnt p95 delay; gated by the \
                 pipeline's breaker and limit; the pipeline's retry budget shared). In \
                 `database-down`, `FallbackLayer` around the database's pipeline answering \
                 from the cache's stale copy (its default triggers: refusals, unavailability, \
                 unreachable host, overload, timeouts)."
            }
        }
    }
}

/// A fault scenario: the production failure it reproduces, its traffic and its faults.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Its name on the command line.
    pub name: &'static str,
    /// The production failure it reproduces.
    pub reproduces: &'static str,
    /// How long traffic is sent.
    pub duration: Duration,
    /// Requests per second.
    pub rate: u32,
    /// Each request's deadline, set by the caller.
    pub deadline: Duration,
    /// The dependency (the database).
    pub model: Model,
    /// When the fault is on: (from, to).
    pub fault: (Duration, Duration),
    /// What the fault layer does during the scenario.
    pub faults: Faults,
    /// A cache in front of the database, or none.
    pub cache: Cache,
    /// The layer the `seawall` stack adds to its pipeline in this scenario, if any.
    pub extra: Extra,
    /// Sheddable requests per second sent during the fault on top of the traffic, whose
    /// requests are then critical (the priority-spike scenario); 0 for none.
    pub spike: u32,
    /// The database limit's queue discipline for the Seawall stacks, in place of the
    /// preset's (`--queue`); `None`: the preset's.
    pub queue: Option<Discipline>,
}

/// How reads use a cache in front of the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    /// No cache: reads go to the database.
    None,
    /// Reads try the cache first and every item is in it: the cache is the dependency under
    /// fault, and a read falls back to the database when the cache fails.
    InFront,
    /// Half the items are in the cache fresh (even ids); the others are read from the
    /// database. The cache also keeps a stale copy of every item. The database is the
    /// dependency under fault.
    HalfFresh,
}

impl Cache {
    /// Whether the cache is the dependency under fault (its calls are the ones measured).
    pub fn is_measured(self) -> bool {
        self == Cache::InFront
    }
}

/// The layer the `seawall` stack adds around the database's pipeline in a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    /// None: the pipeline alone.
    None,
    /// `HedgeLayer`.
    Hedge,
    /// `FallbackLayer` answering from the cache's stale copy.
    StaleFallback,
}

impl Scenario {
    /// The stacks to run for `chosen`: `seawall-pipeline` runs, next to `seawall`, only where
    /// the `seawall` stack adds a layer to its pipeline (elsewhere the two are the same).
    pub fn stacks(&self, chosen: &[Stack]) -> Vec<Stack> {
        let mut stacks: Vec<Stack> = chosen
            .iter()
            .copied()
            .filter(|&s| s != Stack::SeawallPipeline || self.extra != Extra::None)
            .collect();
        if self.extra != Extra::None && chosen.contains(&Stack::Seawall) {
            stacks.push(Stack::SeawallPipeline);
        }
        stacks.sort();
        stacks.dedup();
        stacks
    }
}

/// Faults injected by seawall-chaos's fault layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Faults {
    /// None (the capacity model alone makes the trouble).
    None,
    /// The database host is unreachable during the fault window: connections hang.
    Down,
    /// Every database call fails with a retryable error during the window.
    AllFail,
    /// Throughout: this share of calls fail transiently (retryable); caller errors are set
    /// on the model.
    Transient(f64),
    /// The cache never answers during the window.
    CacheHangs,
    /// The database refuses connections during the window (its process is down).
    DbRefuses,
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn db_model(seed: u64) -> Model {
    Model {
        slots: 10,
        pool_wait: secs(30),
        latency: Duration::from_millis(20),
        slow: Vec::new(),
        tail: (0.0, 1.0),
        caller_errors: 0.0,
        seed,
    }
}

/// Every scenario, in report order.
pub fn all(seed: u64) -> Vec<Scenario> {
    let base = Scenario {
        name: "",
        reproduces: "",
        duration: secs(60),
        rate: 200,
        deadline: secs(2),
        model: db_model(seed),
        fault: (secs(20), secs(30)),
        faults: Faults::None,
        cache: Cache::None,
        extra: Extra::None,
        spike: 0,
        queue: None,
    };
    vec![
        Scenario {
            name: "pool-exhaustion",
            reproduces: "a slow-query spike exhausts the connection pool; every request queues behind it",
            model: Model {
                slow: vec![(secs(20), secs(30), 10.0)],
                ..db_model(seed)
            },
            ..base.clone()
        },
        Scenario {
            name: "dependency-restart",
            reproduces: "the database host restarts: for 10 s connections hang unanswered, and clients without timeouts pile up",
            faults: Faults::Down,
            ..base.clone()
        },
        Scenario {
            name: "slow-dependency",
            reproduces: "a brown-out: latency x20 for 20 s and requests hang with no timeout",
            model: Model {
                slow: vec![(secs(20), secs(40), 20.0)],
                ..db_model(seed)
            },
            fault: (secs(20), secs(40)),
            ..base.clone()
        },
        Scenario {
            name: "retry-storm",
            reproduces: "for 10 s every call fails, and retries multiply the load on the dependency",
            faults: Faults::AllFail,
            ..base.clone()
        },
        Scenario {
            name: "transient-errors",
            reproduces: "10 % transient failures worth retrying and 2 % caller errors that must never be retried",
            faults: Faults::Transient(0.10),
            model: Model {
                caller_errors: 0.02,
                ..db_model(seed)
            },
            fault: (secs(0), secs(60)),
            ..base.clone()
        },
        Scenario {
            name: "cache-outage",
            reproduces: "the cache hangs; reads must fall back to the database instead of waiting on it",
            faults: Faults::CacheHangs,
            cache: Cache::InFront,
            ..base.clone()
        },
        Scenario {
            name: "long-tail",
            reproduces: "2 % of calls take 20 times longer (a GC pause, a cold page, a busy replica); the p99 is the slow call",
            model: Model {
                tail: (0.02, 20.0),
                ..db_model(seed)
            },
            fault: (secs(0), secs(60)),
            extra: Extra::Hedge,
            ..base.clone()
        },
        Scenario {
            name: "database-down",
            reproduces: "the database is down for 10 s; half the reads miss the cache, whose stale copies could answer them",
            faults: Faults::DbRefuses,
            cache: Cache::HalfFresh,
            extra: Extra::StaleFallback,
            ..base.clone()
        },
        Scenario {
            name: "priority-spike",
            reproduces: "for 10 s a flood of prefetch work, 10 times the pool's capacity, lands on top of the requests users wait for",
            spike: 5_000,
            ..base
        },
    ]
}

/// The names of every scenario.
pub fn names() -> Vec<&'static str> {
    all(0).into_iter().map(|s| s.name).collect()
}

/// One request's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered.
    Success,
    /// Failed after reaching (or waiting for) the dependency.
    Failure,
    /// Refused at once by a layer of the stack (breaker open, limit or queue full).
    Rejected,
}

/// One request, as the caller saw it.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    /// When it was sent, since the run started.
    pub sent: Duration,
    /// How long until it finished.
    pub latency: Duration,
    /// How it ended.
    pub outcome: Outcome,
    /// Whether a layer of the stack refused it (class `Rejected`), at once or after a wait.
    pub refused: bool,
}

/// Everything one run of one scenario with one stack produced.
#[derive(Debug)]
pub struct Run {
    /// The stack.
    pub stack: Stack,
    /// One record per request, in the order they were sent.
    pub records: Vec<Record>,
    /// Calls made to the database, per request: their classes in order (`None`: never
    /// answered).
    pub calls: Vec<Vec<Option<Class>>>,
    /// The most calls inside the database at once, per second.
    pub peak_by_second: Vec<u64>,
    /// The breaker's state at the end of each second (Seawall only).
    pub breaker_by_second: Vec<Option<State>>,
    /// The spike's sheddable requests: (answered in time, sent).
    pub spike: (usize, usize),
}

/// A client of the database or of the cache, as the stacks wrap it. Every stack answers with
/// Seawall's one error type, so they are compared on the same classes.
pub type Client = BoxCloneSyncService<Request, u64, Error>;

/// The clients a run wraps in its stack.
#[derive(Debug)]
pub struct Clients {
    /// The database's.
    pub db: Client,
    /// The cache's.
    pub cache: Client,
    /// The call log of the dependency under fault (the database's, the cache's in the cache
    /// scenario).
    pub measured: SharedLog,
}

/// Reads the state of the breaker a timeline shows.
type Watched = Box<dyn Fn() -> State + Send>;

/// The fault layers: (database network, database server, cache network).
type FaultLayers = (Vec<ChaosLayer>, Vec<ChaosLayer>, Vec<ChaosLayer>);

fn faults(scenario: &Scenario, seed: u64) -> FaultLayers {
    let window = scenario.fault.0..scenario.fault.1;
    let class = |kind, retry| Class::failure(kind, retry);
    let layer =
        |builder: seawall_chaos::ChaosBuilder| builder.seed(seed).build().expect("valid chaos");
    match scenario.faults {
        Faults::None => (Vec::new(), Vec::new(), Vec::new()),
        // Calls sent on pooled connections get no answer: they hold their pool slot until
        // the caller gives up.
        Faults::Down => (
            Vec::new(),
            vec![layer(ChaosLayer::builder().hang(1.0).during(window))],
            Vec::new(),
        ),
        Faults::AllFail => (
            Vec::new(),
            vec![layer(
                ChaosLayer::builder()
                    .error(1.0, class(FailureKind::Unavailable, RetryHint::Retry))
                    .during(window),
            )],
            Vec::new(),
        ),
        Faults::Transient(transient) => (
            Vec::new(),
            vec![layer(
                ChaosLayer::builder()
                    .error(transient, class(FailureKind::Contention, RetryHint::Retry))
                    .during(window),
            )],
            Vec::new(),
        ),
        Faults::CacheHangs => (
            Vec::new(),
            Vec::new(),
            vec![layer(ChaosLayer::builder().hang(1.0).during(window))],
        ),
        Faults::DbRefuses => (
            vec![layer(
                ChaosLayer::builder()
                    .error(1.0, class(FailureKind::Connect, RetryHint::Retry))
                    .during(window),
            )],
            Vec::new(),
            Vec::new(),
        ),
    }
}

/// The naive client: 3 immediate retries on any error, a 30 s timeout, no limit.
#[derive(Debug, Clone, Copy)]
struct RetryEverything(u32);

impl tower::retry::Policy<Request, u64, Error> for RetryEverything {
    type Future = std::future::Ready<()>;

    fn retry(&mut self, _: &mut Request, result: &mut Result<u64, Error>) -> Option<Self::Future> {
        match result {
            Err(_) if self.0 > 0 => {
                self.0 -= 1;
                Some(std::future::ready(()))
            }
            _ => None,
        }
    }

    fn clone_request(&mut self, request: &Request) -> Option<Request> {
        Some(request.clone())
    }
}

fn naive(client: Client) -> Client {
    let stack = tower::ServiceBuilder::new()
        .layer(tower::timeout::TimeoutLayer::new(secs(30)))
        .layer(tower::retry::RetryLayer::new(RetryEverything(3)))
        .service(client)
        // tower's timeout answers with a `BoxError`: classify it like any other error.
        .map_err(seawall::classify::classified);
    BoxCloneSyncService::new(stack)
}

/// What the `seawall` stack puts around a dependency's pipeline.
enum Around {
    /// Nothing: the pipeline alone.
    Nothing,
    /// `HedgeLayer`, bounded by the pipeline's breaker, limit and retry budget.
    Hedge,
    /// `FallbackLayer` answering from this client (the cache's stale copy).
    StaleFrom(Client),
}

/// A client of the `seawall` stack: its pipeline, and around it what the scenario adds, as
/// the crates' documentation places them.
fn seawall(
    client: Client,
    pipeline: StandardPipeline,
    around: Around,
) -> (Client, Option<seawall::breaker::BreakerHandle>) {
    let layer = pipeline.build().expect("the presets are valid");
    let breaker = layer.breaker();
    let piped = layer.layer(client);
    let client = match around {
        Around::Nothing => BoxCloneSyncService::new(piped),
        Around::Hedge => {
            let hedge = layer.bound_hedge(HedgeLayer::builder(AssumeIdempotent).name("database"));
            let hedge = hedge.build().expect("valid hedge settings");
            BoxCloneSyncService::new(hedge.layer(piped))
        }
        Around::StaleFrom(stale_cache) => {
            let stale = tower::service_fn(move |read: FallbackRequest<Request>| {
                let copy = read.into_request().expect("the layer keeps the request");
                stale_cache.clone().oneshot(copy)
            });
            let fallback = FallbackLayer::builder(stale)
                .keep_request()
                .build()
                .expect("valid fallback settings");
            BoxCloneSyncService::new(fallback.layer(piped))
        }
    };
    (client, breaker)
}

/// The id of a recovery probe's call: outside every scenario's requests, so that it is never
/// counted as one.
const PROBE: u64 = u64::MAX;

/// A breaker's recovery probe: one call of the dependency's client itself (`SELECT` for the
/// database, `GET` for the cache), as a user would configure it, every 200 ms at most while
/// the breaker is open.
fn probe(client: Client) -> seawall::breaker::Probe {
    seawall::breaker::Probe::new(move || {
        let call = client
            .clone()
            .oneshot(crate::sim::request(PROBE, None, Priority::Default));
        async move { call.await.map(drop) }
    })
}

/// Runs `scenario` with `stack` on tokio's paused clock: minutes of traffic in moments, and
/// the same seed gives the same run.
pub fn run(scenario: &Scenario, stack: Stack, seed: u64) -> Run {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run_async(scenario, stack, seed))
}

async fn run_async(scenario: &Scenario, stack: Stack, seed: u64) -> Run {
    let (db_client, cache_client, db_log) = simulated(scenario, seed);
    let clients = Clients {
        db: db_client,
        cache: cache_client,
        measured: db_log,
    };
    drive(scenario, stack, seed, Clock::Simulated, clients, async {}).await
}

/// The simulated database and cache, and the call log of the dependency under fault (the
/// database's, the cache's in the cache scenario).
fn simulated(scenario: &Scenario, seed: u64) -> (Client, Client, SharedLog) {
    let db_log: SharedLog = Arc::new(Mutex::new(Log::default()));
    let cache_log: SharedLog = Arc::new(Mutex::new(Log::default()));
    let (db_network, db_server, cache_network) = faults(scenario, seed);
    let db_client = dependency(
        scenario.model.clone(),
        db_network,
        db_server,
        db_log.clone(),
    );
    let cache_client = dependency(
        Model {
            slots: 1_000,
            pool_wait: secs(30),
            latency: Duration::from_millis(1),
            slow: Vec::new(),
            tail: (0.0, 1.0),
            caller_errors: 0.0,
            seed: seed ^ 0xCAC4E,
        },
        cache_network,
        Vec::new(),
        cache_log.clone(),
    );
    // The load that counts is the load on the dependency under fault: the cache when the
    // cache fails (a fallback read from the database is the point, not extra load).
    let measured = if scenario.cache.is_measured() {
        cache_log
    } else {
        db_log
    };
    (db_client, cache_client, measured)
}

/// Sends the scenario's traffic through `stack` around the given clients, while `faults`
/// runs alongside (it switches a proxy's modes in real mode), and collects what happened.
pub async fn drive(
    scenario: &Scenario,
    stack: Stack,
    seed: u64,
    clock: Clock,
    clients: Clients,
    faults: impl std::future::Future<Output = ()> + Send + 'static,
) -> Run {
    let Clients {
        db: db_client,
        cache: cache_client,
        measured: measured_log,
    } = clients;
    let faults = tokio::spawn(faults);
    let db_sizing = Sizing {
        limit: scenario.model.slots,
        attempt_timeout: secs(1),
        deadline: scenario.deadline,
    };
    let cache_sizing = Sizing {
        limit: 1_000,
        attempt_timeout: Duration::from_millis(500),
        deadline: scenario.deadline,
    };
    // Each stack's clients, and readers of their breakers' states where the stack has them.
    let (db, cache, db_breaker, cache_breaker): (Client, Client, Option<Watched>, Option<Watched>) =
        match stack {
            Stack::Naive => (naive(db_client), naive(cache_client), None, None),
            Stack::Tower => (
                peers::tower_stack(db_client, db_sizing, seed),
                peers::tower_stack(cache_client, cache_sizing, seed ^ 0xCAC4E),
                None,
                None,
            ),
            Stack::TowerResilience => {
                let (db, db_breaker) = peers::resilience_stack(db_client, db_sizing, clock);
                let (cache, cache_breaker) =
                    peers::resilience_stack(cache_client, cache_sizing, clock);
                (
                    db,
                    cache,
                    Some(Box::new(move || db_breaker.state())),
                    Some(Box::new(move || cache_breaker.state())),
                )
            }
            Stack::Seawall | Stack::SeawallPipeline => {
                let (cache, cache_breaker) = seawall(
                    cache_client.clone(),
                    StandardPipeline::redis(1_000)
                        .seed(seed ^ 0xCAC4E)
                        .probe(probe(cache_client)),
                    Around::Nothing,
                );
                let around = match (stack, scenario.extra) {
                    (Stack::Seawall, Extra::Hedge) => Around::Hedge,
                    (Stack::Seawall, Extra::StaleFallback) => Around::StaleFrom(cache.clone()),
                    _ => Around::Nothing,
                };
                let (db, db_breaker) = seawall(
                    db_client.clone(),
                    with_queue(
                        StandardPipeline::postgres(scenario.model.slots),
                        scenario.model.slots,
                        scenario.queue,
                    )
                    .seed(seed)
                    .probe(probe(db_client)),
                    around,
                );
                let reader = |breaker: seawall::breaker::BreakerHandle| -> Watched {
                    Box::new(move || breaker.state())
                };
                (db, cache, db_breaker.map(reader), cache_breaker.map(reader))
            }
        };
    // The timeline shows the breaker of the dependency under fault.
    let breaker = if scenario.cache.is_measured() {
        cache_breaker
    } else {
        db_breaker
    };

    let start = Instant::now();
    let total = u64::from(scenario.rate) * scenario.duration.as_secs();
    let seconds = scenario.duration.as_secs() as usize + 1;
    let sampler = breaker.map(|breaker| {
        tokio::spawn(async move {
            let mut states = Vec::new();
            for second in 1..=seconds {
                tokio::time::sleep_until(start + secs(second as u64)).await;
                states.push(Some(breaker()));
            }
            states
        })
    });

    // The spike: sheddable requests during the fault, sent by a task of their own, counted
    // apart from the records (which are the requests users wait for).
    let spike = (scenario.spike > 0).then(|| {
        let (db, deadline, rate) = (db.clone(), scenario.deadline, scenario.spike);
        let (from, to) = scenario.fault;
        tokio::spawn(async move {
            let count = u64::from(rate) * (to - from).as_secs();
            let mut calls = Vec::with_capacity(count as usize);
            for n in 0..count {
                let at = from + Duration::from_nanos(n * 1_000_000_000 / u64::from(rate));
                tokio::time::sleep_until(start + at).await;
                let request =
                    crate::sim::request(SPIKE_IDS + n, Some(deadline), Priority::Sheddable);
                let call = db.clone().oneshot(request);
                calls.push(tokio::spawn(async move {
                    let began = Instant::now();
                    call.await.is_ok() && began.elapsed() <= deadline
                }));
            }
            let sent = calls.len();
            let mut answered = 0;
            for call in calls {
                answered += usize::from(call.await.unwrap_or(false));
            }
            (answered, sent)
        })
    });
    let priority = if scenario.spike > 0 {
        Priority::Critical
    } else {
        Priority::Default
    };
    let mut tasks = Vec::with_capacity(total as usize);
    for id in 0..total {
        let sent = Duration::from_nanos(id * 1_000_000_000 / u64::from(scenario.rate));
        tokio::time::sleep_until(start + sent).await;
        let (db, cache, reads) = (db.clone(), cache.clone(), scenario.cache);
        let deadline = scenario.deadline;
        tasks.push(tokio::spawn(async move {
            let began = Instant::now();
            let request = || crate::sim::request(id, Some(deadline), priority);
            let cached = match reads {
                Cache::None => false,
                Cache::InFront => true,
                Cache::HalfFresh => id % 2 == 0,
            };
            let result = if cached {
                match cache.oneshot(request()).await {
                    Ok(value) => Ok(value),
                    Err(_) => db.oneshot(request()).await,
                }
            } else {
                db.oneshot(request()).await
            };
            let latency = began.elapsed();
            let refused =
                matches!(&result, Err(error) if error.kind() == Some(FailureKind::Rejected));
            let outcome = match result {
                // An answer after the caller's deadline is of no use to the caller.
                Ok(_) if latency <= deadline => Outcome::Success,
                Ok(_) => Outcome::Failure,
                Err(error) => {
                    let rejected = error.kind() == Some(FailureKind::Rejected);
                    if rejected && latency < Duration::from_millis(1) {
                        Outcome::Rejected
                    } else {
                        Outcome::Failure
                    }
                }
            };
            Record {
                sent,
                latency,
                outcome,
                refused,
            }
        }));
    }
    let mut records = Vec::with_capacity(tasks.len());
    for task in tasks {
        records.push(task.await.expect("request task"));
    }
    faults.await.expect("fault driver");
    let spike = match spike {
        Some(spike) => spike.await.expect("spike task"),
        None => (0, 0),
    };
    let breaker_by_second = match sampler {
        Some(sampler) => sampler.await.expect("sampler task"),
        None => vec![None; seconds],
    };

    let log = measured_log.lock().expect("call log");
    let calls = (0..total)
        .map(|id| log.calls.get(&id).cloned().unwrap_or_default())
        .collect();
    let peak_by_second = log.peak_by_second.lock().expect("peaks").clone();
    Run {
        stack,
        records,
        calls,
        peak_by_second,
        breaker_by_second,
        spike,
    }
}

/// The ids of the spike's requests: apart from the traffic's.
const SPIKE_IDS: u64 = 1 << 40;

/// The PostgreSQL preset with the queue discipline `queue` in place of its own (the same
/// queue length and wait), when one is given.
fn with_queue(
    pipeline: StandardPipeline,
    slots: usize,
    queue: Option<Discipline>,
) -> StandardPipeline {
    match queue {
        Some(discipline) => pipeline.concurrency_limit(
            ConcurrencyLimitLayer::builder(slots)
                .queue(slots * 16)
                .max_wait(secs(30))
                .discipline(discipline),
        ),
        None => pipeline,
    }
}
