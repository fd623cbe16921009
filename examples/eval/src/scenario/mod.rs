//! The scenarios (here), the stacks they run against (`stack.rs`), and the runner
//! (`run.rs`).

mod run;
mod stack;

pub use self::run::{Client, Clients, Outcome, Record, Run, drive, run};
pub use self::stack::Stack;
use self::stack::*;

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
