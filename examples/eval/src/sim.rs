//! The simulated dependency: a capacity model (connection slots with a wait queue, like a
//! pool in front of a database) with a latency distribution, behind seawall-chaos's fault
//! layer for the faults a scenario schedules.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use seawall::{
    BoxError, Class, Error, FailureKind, Priority, RetryHint, WithDeadline, WithPriority,
};
use seawall_chaos::ChaosLayer;
use seawall_util::rng::SplitMix64;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt, util::BoxCloneSyncService};

/// A request: its number in the run, its deadline, and its priority (critical or sheddable
/// in the priority-spike scenario, default elsewhere).
pub type Request = WithPriority<WithDeadline<u64>>;

/// Request number `id`, due within `deadline` (none: no deadline), at `priority`.
pub fn request(id: u64, deadline: Option<Duration>, priority: Priority) -> Request {
    let request = WithDeadline::new(id);
    match deadline {
        Some(deadline) => request.deadline_in(deadline),
        None => request,
    }
    .with_priority(priority)
}

/// The number of `request` in its run.
pub fn id_of(request: &Request) -> u64 {
    *request.get_ref().get_ref()
}

/// How the dependency behaves over a run.
#[derive(Debug, Clone)]
pub struct Model {
    /// Connection slots: calls beyond this wait in the pool's queue.
    pub slots: usize,
    /// How long a call waits for a slot before the pool gives up (an `Overloaded` error).
    pub pool_wait: Duration,
    /// Median service time of a call.
    pub latency: Duration,
    /// Windows (from, to) during which service times are multiplied by the factor.
    pub slow: Vec<(Duration, Duration, f64)>,
    /// A long tail: (share, factor): that share of calls, drawn at random, take the factor
    /// times longer. `(0.0, 1.0)` for none.
    pub tail: (f64, f64),
    /// Share of requests that are the caller's mistake (a constraint violation, say): the
    /// server answers them with the same error however often they are sent.
    pub caller_errors: f64,
    /// Seed of the latency draws and of which requests are mistakes.
    pub seed: u64,
}

/// What happened at the dependency during a run, for the report.
#[derive(Debug, Default)]
pub struct Log {
    /// Calls made to the dependency, per request: the class each ended with, `None` while
    /// unanswered (or never answered).
    pub calls: HashMap<u64, Vec<Option<Class>>>,
    /// Calls outstanding at the dependency now (waiting for a slot, running, or hung).
    pub in_flight: AtomicU64,
    /// The most calls inside the dependency at once, per one-second bucket.
    pub peak_by_second: Mutex<Vec<u64>>,
}

/// Shared handle on the log.
pub type SharedLog = Arc<Mutex<Log>>;

#[derive(Clone)]
struct Capacity {
    /// Decides the answer once the call has been served: server-side faults live here, so
    /// failed calls still take a slot for their service time.
    answer: BoxCloneSyncService<Request, u64, Error>,
    model: Arc<Model>,
    slots: Arc<Semaphore>,
    draws: Arc<AtomicU64>,
    start: Instant,
}

impl Capacity {
    fn service_time(&self, now: Duration) -> Duration {
        let n = self.draws.fetch_add(1, Ordering::Relaxed);
        let mut draws = SplitMix64::new(self.model.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let r = draws.next_f64();
        // A skewed distribution around the median: most calls near it, a long-ish tail.
        let mut factor = 0.5 + r * r * 2.0;
        let (share, tail) = self.model.tail;
        if share > 0.0 && draws.next_f64() < share {
            factor *= tail;
        }
        let slow = self
            .model
            .slow
            .iter()
            .filter(|(from, to, _)| (*from..*to).contains(&now))
            .map(|(_, _, factor)| *factor)
            .fold(1.0, f64::max);
        self.model.latency.mul_f64(factor * slow)
    }
}

impl Service<Request> for Capacity {
    type Response = u64;
    type Error = Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64, Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let permit =
                tokio::time::timeout(this.model.pool_wait, this.slots.clone().acquire_owned())
                    .await
                    .map_err(|_| {
                        Error::new(
                            Class::failure(FailureKind::Overloaded, RetryHint::Retry),
                            "timed out waiting for a pool connection",
                        )
                    })?
                    .expect("the slot semaphore is never closed");
            let time = this.service_time(this.start.elapsed());
            tokio::time::sleep(time).await;
            // The slot is held until the answer comes (or the caller gives up).
            let answer = this.answer.clone().oneshot(request).await;
            drop(permit);
            answer
        })
    }
}

/// Records every call made to the dependency, its class, and how many are outstanding.
#[derive(Clone)]
struct Recorder<S> {
    inner: S,
    log: SharedLog,
    start: Instant,
}

/// Counts a call as outstanding until dropped (answered, failed, or abandoned by its caller).
struct Outstanding {
    log: SharedLog,
}

impl Outstanding {
    fn enter(log: &SharedLog, start: Instant) -> Outstanding {
        let log_ref = log.lock().unwrap();
        let now = log_ref.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        let second = start.elapsed().as_secs() as usize;
        let mut peaks = log_ref.peak_by_second.lock().unwrap();
        if peaks.len() <= second {
            peaks.resize(second + 1, 0);
        }
        peaks[second] = peaks[second].max(now);
        drop(peaks);
        drop(log_ref);
        Outstanding { log: log.clone() }
    }
}

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.log
            .lock()
            .unwrap()
            .in_flight
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl<S> Service<Request> for Recorder<S>
where
    S: Service<Request, Response = u64> + Clone + Send + 'static,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send,
{
    type Response = u64;
    type Error = Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64, Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner
            .poll_ready(cx)
            .map_err(seawall::classify::classified)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let id = id_of(&request);
        let log = self.log.clone();
        let index = {
            let mut log = log.lock().unwrap();
            let calls = log.calls.entry(id).or_default();
            calls.push(None);
            calls.len() - 1
        };
        let outstanding = Outstanding::enter(&log, self.start);
        let call = self.inner.call(request);
        Box::pin(async move {
            let result = call.await.map_err(seawall::classify::classified);
            drop(outstanding);
            let class = match &result {
                Ok(_) => Class::Success,
                Err(error) => error.class(),
            };
            log.lock().unwrap().calls.entry(id).or_default()[index] = Some(class);
            result
        })
    }
}

/// The dependency as one cloneable service: a recorder outermost, then the `network`
/// fault layers (a refused or hung connection never reaches the server), the capacity model,
/// and the `server` fault layers (errors the server answers with after doing the work).
pub fn dependency(
    model: Model,
    network: Vec<ChaosLayer>,
    server: Vec<ChaosLayer>,
    log: SharedLog,
) -> BoxCloneSyncService<Request, u64, Error> {
    let (share, seed) = (model.caller_errors, model.seed);
    let mut answer: BoxCloneSyncService<Request, u64, Error> =
        BoxCloneSyncService::new(tower::service_fn(move |request: Request| async move {
            let id = id_of(&request);
            if SplitMix64::new(seed ^ id.wrapping_mul(0xA24B_AED4_963E_E407)).next_f64() < share {
                return Err(Error::new(
                    Class::failure(FailureKind::Invalid, RetryHint::Never),
                    "duplicate key value violates unique constraint",
                ));
            }
            Ok(id)
        }));
    for fault in server {
        answer = BoxCloneSyncService::new(fault.layer(answer));
    }
    let capacity = Capacity {
        answer,
        slots: Arc::new(Semaphore::new(model.slots)),
        model: Arc::new(model),
        draws: Arc::new(AtomicU64::new(0)),
        start: Instant::now(),
    };
    let mut service = BoxCloneSyncService::new(capacity);
    for fault in network {
        service = BoxCloneSyncService::new(fault.layer(service));
    }
    recorded(service, log)
}

/// Wraps a client so that every call it makes is recorded in `log`: counted per request,
/// classified, and tracked while outstanding. Its errors, of any type, come out as Seawall's
/// one [`Error`].
pub fn recorded<S>(client: S, log: SharedLog) -> BoxCloneSyncService<Request, u64, Error>
where
    S: Service<Request, Response = u64> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send,
{
    BoxCloneSyncService::new(Recorder {
        inner: client,
        log,
        start: Instant::now(),
    })
}
