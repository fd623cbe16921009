//! The stacks a Rust team would pick instead of Seawall, configured as a competent user would
//! from each library's own documentation and defaults: tower's built-in middleware, and the
//! closest peer crate, tower-resilience. Every choice is written down in
//! [`Stack::config`](crate::scenario::Stack::config), which the report prints.
//!
//! Both stacks answer with Seawall's one error type so that the report compares every stack
//! on the same classes; the conversion only names what the peer's own error says (a timeout,
//! a local refusal), it decides nothing. tower's own errors (`Elapsed`, `Overloaded`) are
//! classified by `seawall::classify::classified` like any other.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use seawall::breaker::State;
use seawall::{BoxError, Class, Error};
use seawall_util::rng::AtomicSplitMix64;
use tokio::time::Instant;
use tower::retry::backoff::{Backoff, ExponentialBackoff, ExponentialBackoffMaker, MakeBackoff};
use tower::retry::budget::{Budget, TpsBudget};
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_resilience_bulkhead::{BulkheadLayer, BulkheadServiceError};
use tower_resilience_circuitbreaker::{
    CircuitBreakerError, CircuitBreakerHandle, CircuitBreakerLayer, CircuitState, DefaultClassifier,
};
use tower_resilience_retry::RetryLayer as ResilienceRetryLayer;
use tower_resilience_timelimiter::{TimeLimiterError, TimeLimiterLayer};

use crate::scenario::Client;
use crate::sim::Request;

/// Which clock a run keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// tokio's paused clock (simulated runs).
    Simulated,
    /// The wall clock (real mode).
    Real,
}

/// What the peer stacks are given: the same figures Seawall's presets get for the dependency.
#[derive(Debug, Clone, Copy)]
pub struct Sizing {
    /// Most calls in flight (the pool size, or the cache's limit).
    pub limit: usize,
    /// Each attempt's timeout.
    pub attempt_timeout: Duration,
    /// The whole call's timeout: the caller's deadline.
    pub deadline: Duration,
}

/// A refusal decided by tower-resilience's own layers, before the dependency was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// tower-resilience's bulkhead was full.
    BulkheadFull,
    /// tower-resilience's circuit breaker is open.
    CircuitOpen,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::BulkheadFull => "bulkhead full",
            Refusal::CircuitOpen => "circuit open",
        })
    }
}

impl std::error::Error for Refusal {}

fn refused(refusal: Refusal) -> Error {
    Error::new(Class::rejected(Duration::ZERO), refusal)
}

/// A timeout of tower-resilience's time limiter, classified as tower's own.
fn timed_out() -> Error {
    Error::from_inner(tower::timeout::error::Elapsed::new())
}

// ---------------------------------------------------------------------------------------
// tower

/// The jitter source of tower's backoff: one generator shared by every request's backoff
/// (tower clones the policy, and so its generator, per request: a cloned generator would
/// give every request the same delays).
#[derive(Debug, Clone)]
struct SharedRng(Arc<AtomicSplitMix64>);

impl tower::util::rng::Rng for SharedRng {
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
}

/// The retry policy a tower user writes (tower ships the trait, not a policy): every error is
/// retried (tower has no classification of errors), at most twice, after an exponential
/// backoff with jitter, while tower's retry budget allows; successes deposit into the budget,
/// as tower's documentation shows.
#[derive(Debug, Clone)]
struct TowerPolicy {
    retries_left: u32,
    budget: Arc<TpsBudget>,
    backoff: ExponentialBackoff<SharedRng>,
}

impl tower::retry::Policy<Request, u64, BoxError> for TowerPolicy {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _: &mut Request,
        result: &mut Result<u64, BoxError>,
    ) -> Option<Self::Future> {
        match result {
            Ok(_) => {
                self.budget.deposit();
                None
            }
            Err(_) if self.retries_left > 0 && self.budget.withdraw() => {
                self.retries_left -= 1;
                Some(self.backoff.next_backoff())
            }
            Err(_) => None,
        }
    }

    fn clone_request(&mut self, request: &Request) -> Option<Request> {
        Some(request.clone())
    }
}

/// tower's built-ins: `Timeout` (the caller's deadline) → `Retry` (the policy above, tower's
/// `TpsBudget` with its defaults, `ExponentialBackoff` 50 ms..2 s, jitter 0.5) → `LoadShed` →
/// `ConcurrencyLimit` → `Timeout` (per attempt) → the client.
pub fn tower_stack(client: Client, sizing: Sizing, seed: u64) -> Client {
    let backoff = ExponentialBackoffMaker::new(
        Duration::from_millis(50),
        Duration::from_secs(2),
        0.5,
        SharedRng(Arc::new(AtomicSplitMix64::new(seed))),
    )
    .expect("a valid backoff")
    .make_backoff();
    let policy = TowerPolicy {
        retries_left: 2,
        budget: Arc::new(TpsBudget::default()),
        backoff,
    };
    let stack = ServiceBuilder::new()
        .timeout(sizing.deadline)
        .retry(policy)
        .load_shed()
        .concurrency_limit(sizing.limit)
        .timeout(sizing.attempt_timeout)
        .service(client)
        .map_err(seawall::classify::classified);
    BoxCloneSyncService::new(stack)
}

// ---------------------------------------------------------------------------------------
// tower-resilience

fn from_breaker(error: CircuitBreakerError<Error>) -> Error {
    match error {
        CircuitBreakerError::OpenCircuit => refused(Refusal::CircuitOpen),
        CircuitBreakerError::Inner(error) => error,
    }
}

fn from_bulkhead(error: BulkheadServiceError<Error>) -> Error {
    match error {
        BulkheadServiceError::Bulkhead(_) => refused(Refusal::BulkheadFull),
        BulkheadServiceError::Inner(error) => error,
    }
}

fn from_limiter(error: TimeLimiterError<Error>) -> Error {
    match error {
        TimeLimiterError::Timeout => timed_out(),
        TimeLimiterError::Inner(error) => error,
    }
}

fn is_open_circuit(error: &Error) -> bool {
    error.source_ref().downcast_ref::<Refusal>() == Some(&Refusal::CircuitOpen)
}

/// The breaker's wait in the open state: its `fast_fail` preset's.
const OPEN_WAIT: Duration = Duration::from_secs(10);

/// tower-resilience's breaker, as the timelines show it.
#[derive(Clone)]
pub struct PeerBreaker {
    handle: CircuitBreakerHandle<DefaultClassifier>,
    timer: Option<Arc<OpenTimer>>,
}

impl std::fmt::Debug for PeerBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerBreaker")
            .field("state", &self.state())
            .finish()
    }
}

impl PeerBreaker {
    /// Its state, in Seawall's terms.
    pub fn state(&self) -> State {
        if self
            .timer
            .as_ref()
            .is_some_and(|t| t.trial.load(Ordering::Acquire))
        {
            return State::HalfOpen;
        }
        match self.handle.state() {
            CircuitState::Closed => State::Closed,
            CircuitState::Open => State::Open,
            CircuitState::HalfOpen => State::HalfOpen,
        }
    }
}

/// tower-resilience: its time limiter (the caller's deadline) → retry
/// (`RetryLayer::exponential_backoff()` preset: 3 attempts, 100 ms ×2; open-circuit refusals
/// not retried, as its documentation recommends) → circuit breaker (`fast_fail()` preset) →
/// time limiter (per attempt) → bulkhead (`reject_when_full`) → the client: Resilience4j's
/// order, which tower-resilience follows (retry outermost, the breaker seeing every attempt).
pub fn resilience_stack(client: Client, sizing: Sizing, clock: Clock) -> (Client, PeerBreaker) {
    let opened_at = Arc::new(Mutex::new(None::<Instant>));
    let mut breaker = CircuitBreakerLayer::fast_fail().name("dependency");
    if clock == Clock::Simulated {
        // The breaker times its open state with `std::time::Instant`, which tokio's paused
        // clock does not move: on the simulated clock, `OpenTimer` keeps that one timer (the
        // same wait, the same single trial call), and the breaker's own never fires.
        let opened = opened_at.clone();
        breaker = breaker
            .wait_duration_in_open(Duration::from_secs(86_400 * 365))
            .on_state_transition(move |_, to| {
                if to == CircuitState::Open {
                    *opened.lock().expect("open time") = Some(Instant::now());
                }
            });
    }
    let (breaker, handle) = breaker.build_with_handle().expect("a valid preset");
    let bulkhead = BulkheadLayer::builder()
        .max_concurrent_calls(sizing.limit)
        .reject_when_full()
        .build()
        .expect("a valid bulkhead");
    let attempt = TimeLimiterLayer::builder()
        .timeout_duration(sizing.attempt_timeout)
        .build();

    let inner = bulkhead.layer(client).map_err(from_bulkhead);
    let inner = attempt.layer(inner).map_err(from_limiter);
    let inner = breaker.layer(inner).map_err(from_breaker);
    let (gated, timer): (Client, _) = match clock {
        Clock::Real => (BoxCloneSyncService::new(inner), None),
        Clock::Simulated => {
            let timer = Arc::new(OpenTimer {
                handle: handle.clone(),
                opened_at,
                trial: AtomicBool::new(false),
            });
            let gate = OpenTimerService {
                inner: BoxCloneSyncService::new(inner),
                timer: timer.clone(),
            };
            (BoxCloneSyncService::new(gate), Some(timer))
        }
    };
    let retry = ResilienceRetryLayer::<Request, u64, Error>::exponential_backoff()
        .retry_on(|error: &Error| !is_open_circuit(error))
        .build();
    let whole = TimeLimiterLayer::builder()
        .timeout_duration(sizing.deadline)
        .build()
        .layer(retry.layer(gated))
        .map_err(from_limiter);
    (
        BoxCloneSyncService::new(whole),
        PeerBreaker { handle, timer },
    )
}

/// The open-state timer of tower-resilience's breaker, kept on tokio's clock (simulated runs
/// only). While the breaker is open, calls are refused until `OPEN_WAIT` has passed since it
/// opened; then one call is let through as the trial (the breaker closed for it, as its
/// half-open state would admit it); a failed trial opens it again.
struct OpenTimer {
    handle: CircuitBreakerHandle<DefaultClassifier>,
    opened_at: Arc<Mutex<Option<Instant>>>,
    /// A trial call is running: every other call is refused.
    trial: AtomicBool,
}

#[derive(Clone)]
struct OpenTimerService {
    inner: Client,
    timer: Arc<OpenTimer>,
}

/// Ends a trial that was dropped before it finished: the breaker opens again with its wait
/// already over, so that the next call is the trial (the permit of a half-open breaker is
/// freed the same way).
struct TrialGuard {
    timer: Arc<OpenTimer>,
    finished: bool,
}

impl Drop for TrialGuard {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let timer = self.timer.clone();
        tokio::spawn(async move {
            timer.handle.force_open().await;
            *timer.opened_at.lock().expect("open time") = Some(Instant::now() - OPEN_WAIT);
            timer.trial.store(false, Ordering::Release);
        });
    }
}

impl Service<Request> for OpenTimerService {
    type Response = u64;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<u64, Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let (inner, timer) = (self.inner.clone(), self.timer.clone());
        Box::pin(async move {
            if timer.trial.load(Ordering::Acquire) {
                return Err(refused(Refusal::CircuitOpen));
            }
            if !timer.handle.is_open() {
                return inner.oneshot(request).await;
            }
            let opened = *timer.opened_at.lock().expect("open time");
            let due = opened.is_none_or(|at| Instant::now() >= at + OPEN_WAIT);
            if !due || timer.trial.swap(true, Ordering::AcqRel) {
                return Err(refused(Refusal::CircuitOpen));
            }
            let mut guard = TrialGuard {
                timer: timer.clone(),
                finished: false,
            };
            timer.handle.force_closed().await;
            let result = inner.oneshot(request).await;
            if result.is_err() {
                timer.handle.force_open().await;
            }
            guard.finished = true;
            timer.trial.store(false, Ordering::Release);
            result
        })
    }
}
