//! The stacks a scenario runs against: Seawall's pipeline, the naive client, and the
//! peers' (see `peers.rs`).

use super::*;

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

/// The naive client: 3 immediate retries on any error, a 30 s timeout, no limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryEverything(pub(crate) u32);

pub(crate) fn naive(client: Client) -> Client {
    let stack = tower::ServiceBuilder::new()
        .layer(tower::timeout::TimeoutLayer::new(secs(30)))
        .layer(tower::retry::RetryLayer::new(RetryEverything(3)))
        .service(client)
        // tower's timeout answers with a `BoxError`: classify it like any other error.
        .map_err(seawall::classify::classified);
    BoxCloneSyncService::new(stack)
}

/// What the `seawall` stack puts around a dependency's pipeline.
pub(crate) enum Around {
    /// Nothing: the pipeline alone.
    Nothing,
    /// `HedgeLayer`, bounded by the pipeline's breaker, limit and retry budget.
    Hedge,
    /// `FallbackLayer` answering from this client (the cache's stale copy).
    StaleFrom(Client),
}

/// A client of the `seawall` stack: its pipeline, and around it what the scenario adds, as
/// the crates' documentation places them.
pub(crate) fn seawall(
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
pub(crate) const PROBE: u64 = u64::MAX;

/// A breaker's recovery probe: one call of the dependency's client itself (`SELECT` for the
/// database, `GET` for the cache), as a user would configure it, every 200 ms at most while
/// the breaker is open.
pub(crate) fn probe(client: Client) -> seawall::breaker::Probe {
    seawall::breaker::Probe::new(move || {
        let call = client
            .clone()
            .oneshot(crate::sim::request(PROBE, None, Priority::Default));
        async move { call.await.map(drop) }
    })
}

/// The PostgreSQL preset with the queue discipline `queue` in place of its own (the same
/// queue length and wait), when one is given.
pub(crate) fn with_queue(
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
