//! The runner: one scenario against one stack, simulated or against the real servers, and
//! what each request did.

use super::*;

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
pub(crate) type Watched = Box<dyn Fn() -> State + Send>;

/// The fault layers: (database network, database server, cache network).
pub(crate) type FaultLayers = (Vec<ChaosLayer>, Vec<ChaosLayer>, Vec<ChaosLayer>);

pub(crate) fn faults(scenario: &Scenario, seed: u64) -> FaultLayers {
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

pub(crate) async fn run_async(scenario: &Scenario, stack: Stack, seed: u64) -> Run {
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
pub(crate) fn simulated(scenario: &Scenario, seed: u64) -> (Client, Client, SharedLog) {
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
pub(crate) const SPIKE_IDS: u64 = 1 << 40;
