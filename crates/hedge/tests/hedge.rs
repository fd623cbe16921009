//! The hedge layer on tokio's paused clock: when it hedges, what it never hedges, how the
//! budget and the gates bound it, and what it buys on a dependency with a long tail.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use seawall_breaker::CircuitBreakerLayer;
use seawall_classify::{AssumeIdempotent, Class, Error, FailureKind, RetryHint, WithDeadline};
use seawall_hedge::{Hedge, HedgeBuilder, HedgeHandle, HedgeLayer};
use seawall_limit::ConcurrencyLimitLayer;
use seawall_retry::RetryBudget;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

type Request = WithDeadline<u64>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What one call of the replica does: how long it takes and whether it fails.
#[derive(Clone, Copy, Debug)]
struct Plan {
    latency: Duration,
    fails: bool,
}

fn answers_in(latency: Duration) -> Plan {
    Plan {
        latency,
        fails: false,
    }
}

fn fails_after(latency: Duration) -> Plan {
    Plan {
        latency,
        fails: true,
    }
}

/// A dependency whose n-th call (counting from 0, hedges included) follows `plan(n)`. It
/// counts its calls and the calls still running (a dropped call stops counting).
#[derive(Clone)]
struct Replica {
    plan: Arc<dyn Fn(usize) -> Plan + Send + Sync>,
    calls: Arc<AtomicUsize>,
    running: Arc<AtomicUsize>,
}

impl Replica {
    fn new(plan: impl Fn(usize) -> Plan + Send + Sync + 'static) -> Self {
        Replica {
            plan: Arc::new(plan),
            calls: Arc::default(),
            running: Arc::default(),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }
}

struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Service<Request> for Replica {
    type Response = (u64, usize);
    type Error = Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<(u64, usize), Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let plan = (self.plan)(n);
        self.running.fetch_add(1, Ordering::SeqCst);
        let running = Running(self.running.clone());
        Box::pin(async move {
            let _running = running;
            tokio::time::sleep(plan.latency).await;
            if plan.fails {
                Err(Error::new(
                    Class::failure(FailureKind::Unavailable, RetryHint::Retry),
                    std::io::Error::other(format!("call {n} failed")),
                ))
            } else {
                Ok((request.into_inner(), n))
            }
        })
    }
}

fn fixed(delay: Duration) -> HedgeBuilder<AssumeIdempotent> {
    HedgeLayer::builder(AssumeIdempotent).after(delay)
}

fn request(id: u64) -> Request {
    WithDeadline::new(id)
}

/// `replica` behind a hedge after `delay`, and the hedge's handle.
fn hedged(delay: Duration, replica: &Replica) -> (Hedge<Replica, AssumeIdempotent>, HedgeHandle) {
    let layer = fixed(delay).build().unwrap();
    (layer.layer(replica.clone()), layer.handle())
}

#[tokio::test(start_paused = true)]
async fn a_slow_first_attempt_is_hedged_and_the_hedge_answers() {
    let replica = Replica::new(|n| answers_in(if n == 0 { ms(1_000) } else { ms(10) }));
    let (service, handle) = hedged(ms(50), &replica);
    let started = Instant::now();
    let answer = service.oneshot(request(7)).await.unwrap();
    assert_eq!(answer, (7, 1), "the hedge (call 1) answered");
    assert_eq!(started.elapsed(), ms(60));
    assert_eq!((handle.sent(), handle.won()), (1, 1));
    assert_eq!(replica.running(), 0, "the first attempt was cancelled");
}

#[tokio::test(start_paused = true)]
async fn a_first_attempt_answering_before_the_delay_is_never_hedged() {
    let replica = Replica::new(|_| answers_in(ms(49)));
    let (service, handle) = hedged(ms(50), &replica);
    let mut service = service;
    for id in 0..20 {
        let answer = service
            .ready()
            .await
            .unwrap()
            .call(request(id))
            .await
            .unwrap();
        assert_eq!(answer.0, id);
    }
    assert_eq!(replica.calls(), 20);
    assert_eq!(handle.sent(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_first_attempt_wins_when_it_answers_before_its_hedge() {
    // The first attempt takes 80 ms; its hedge, sent at 50 ms, would take 100 ms.
    let replica = Replica::new(|n| answers_in(if n == 0 { ms(80) } else { ms(100) }));
    let (service, handle) = hedged(ms(50), &replica);
    let started = Instant::now();
    let answer = service.oneshot(request(1)).await.unwrap();
    assert_eq!((answer.1, started.elapsed()), (0, ms(80)));
    assert_eq!((handle.sent(), handle.won()), (1, 0));
    assert_eq!(replica.running(), 0, "the hedge was cancelled");
}

#[tokio::test(start_paused = true)]
async fn requests_the_policy_calls_not_idempotent_are_never_hedged() {
    let replica = Replica::new(|_| answers_in(ms(500)));
    // Even ids are reads, odd ids writes.
    let reads_only = |r: &Request| r.get_ref().is_multiple_of(2);
    let layer = HedgeLayer::builder(reads_only)
        .after(ms(50))
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(replica.clone());
    service
        .ready()
        .await
        .unwrap()
        .call(request(1))
        .await
        .unwrap();
    assert_eq!((replica.calls(), handle.sent()), (1, 0), "a write");
    service
        .ready()
        .await
        .unwrap()
        .call(request(2))
        .await
        .unwrap();
    assert_eq!((replica.calls(), handle.sent()), (3, 1), "a read");
}

#[tokio::test(start_paused = true)]
async fn no_hedge_when_the_deadline_leaves_less_time_than_was_waited() {
    let replica = Replica::new(|_| answers_in(ms(500)));
    let (service, handle) = hedged(ms(50), &replica);
    let mut service = service;
    // 90 ms to go: after 50 ms, 40 ms are left, less than the 50 the first attempt took.
    let short = request(1).deadline_in(ms(90));
    service.ready().await.unwrap().call(short).await.unwrap();
    assert_eq!(replica.calls(), 1);
    assert_eq!((handle.sent(), handle.skipped_for_deadline()), (0, 1));
    // A deadline already past is never hedged either.
    let past = request(2).deadline_at(Instant::now());
    service.ready().await.unwrap().call(past).await.unwrap();
    assert_eq!((replica.calls(), handle.skipped_for_deadline()), (2, 2));
    // 100 ms to go leaves the hedge the 50 ms the first attempt had.
    let enough = request(3).deadline_in(ms(100));
    service.ready().await.unwrap().call(enough).await.unwrap();
    assert_eq!((replica.calls(), handle.sent()), (4, 1));
}

/// One request through a hedge gated by a limit of `permits` that the attempts go through:
/// the replica's calls and the hedge's handle after it.
async fn through_a_limit_of(permits: usize, replica: &Replica) -> (usize, HedgeHandle) {
    let limit = ConcurrencyLimitLayer::builder(permits).build().unwrap();
    let layer = fixed(ms(50)).gate(limit.handle()).build().unwrap();
    let before = replica.calls();
    layer
        .layer(limit.layer(replica.clone()))
        .oneshot(request(1))
        .await
        .unwrap();
    (replica.calls() - before, layer.handle())
}

#[tokio::test(start_paused = true)]
async fn a_full_limit_holds_hedges_back() {
    let replica = Replica::new(|_| answers_in(ms(200)));
    // One permit, held by the first attempt: no room for its hedge.
    let (calls, handle) = through_a_limit_of(1, &replica).await;
    assert_eq!(calls, 1);
    assert_eq!((handle.sent(), handle.skipped_for_gate()), (0, 1));
    // With two permits, one is free for the hedge.
    let (calls, handle) = through_a_limit_of(2, &replica).await;
    assert_eq!((calls, handle.sent()), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn a_breaker_that_is_not_closed_holds_hedges_back() {
    let replica = Replica::new(|_| answers_in(ms(200)));
    let breaker = CircuitBreakerLayer::builder().build().unwrap();
    let layer = fixed(ms(50)).gate(breaker.handle()).build().unwrap();
    let handle = layer.handle();
    let service = layer.layer(breaker.layer(replica.clone()));

    service.clone().oneshot(request(1)).await.unwrap();
    assert_eq!((replica.calls(), handle.sent()), (2, 1), "closed: hedged");

    breaker.handle().force_open();
    let refused = service.clone().oneshot(request(2)).await.unwrap_err();
    assert_eq!(
        refused.kind(),
        Some(FailureKind::Rejected),
        "refused at once, never slow"
    );
    breaker.handle().disable();
    service.clone().oneshot(request(3)).await.unwrap();
    assert_eq!((replica.calls(), handle.sent()), (4, 2), "disabled: hedged");
}

#[tokio::test(start_paused = true)]
async fn a_closed_gate_holds_the_hedge_back_and_spends_no_budget() {
    let replica = Replica::new(|_| answers_in(ms(200)));
    let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gate = {
        let open = open.clone();
        move || open.load(Ordering::SeqCst)
    };
    let layer = fixed(ms(50)).gate(gate).build().unwrap();
    let handle = layer.handle();
    let before = handle.budget().available();
    let service = layer.layer(replica.clone());
    service.clone().oneshot(request(1)).await.unwrap();
    assert_eq!((replica.calls(), handle.skipped_for_gate()), (1, 1));
    assert!(handle.budget().available() >= before, "nothing withdrawn");
    open.store(true, Ordering::SeqCst);
    service.oneshot(request(2)).await.unwrap();
    assert_eq!((replica.calls(), handle.sent()), (3, 1));
}

#[tokio::test(start_paused = true)]
async fn a_first_attempt_failing_before_the_delay_returns_its_error_unhedged() {
    let replica = Replica::new(|_| fails_after(ms(10)));
    let (service, handle) = hedged(ms(50), &replica);
    let error = service.oneshot(request(1)).await.unwrap_err();
    assert_eq!(error.kind(), Some(FailureKind::Unavailable));
    assert_eq!((replica.calls(), handle.sent()), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn a_first_attempt_failing_while_its_hedge_runs_waits_for_the_hedge() {
    // The first attempt fails at 80 ms; the hedge, sent at 50 ms, answers at 110 ms.
    let replica = Replica::new(|n| {
        if n == 0 {
            fails_after(ms(80))
        } else {
            answers_in(ms(60))
        }
    });
    let (service, _) = hedged(ms(50), &replica);
    let started = Instant::now();
    let answer = service.oneshot(request(1)).await.unwrap();
    assert_eq!((answer.1, started.elapsed()), (1, ms(110)));
}

#[tokio::test(start_paused = true)]
async fn when_both_attempts_fail_the_caller_gets_the_first_attempts_error() {
    let replica = Replica::new(|n| fails_after(if n == 0 { ms(80) } else { ms(100) }));
    let (service, _) = hedged(ms(50), &replica);
    let started = Instant::now();
    let error = service.oneshot(request(1)).await.unwrap_err();
    assert!(error.to_string().contains("call 0 failed"), "{error}");
    assert_eq!(started.elapsed(), ms(150), "both were waited for");
}

#[tokio::test(start_paused = true)]
async fn a_dropped_call_cancels_both_attempts() {
    let replica = Replica::new(|_| answers_in(ms(10_000)));
    let (service, _) = hedged(ms(50), &replica);
    let mut service = service;
    let call = service.ready().await.unwrap().call(request(1));
    let gave_up = tokio::time::timeout(ms(100), call).await;
    assert!(gave_up.is_err());
    assert_eq!(replica.calls(), 2, "the hedge was sent at 50 ms");
    assert_eq!(
        replica.running(),
        0,
        "dropping the call dropped both attempts"
    );
}

#[tokio::test(start_paused = true)]
async fn during_a_total_outage_hedges_stay_within_the_budget() {
    // Every call hangs; each request gives up after a second. 100 requests a second for 8 s.
    let replica = Replica::new(|_| answers_in(ms(60_000)));
    let layer = fixed(ms(50))
        .budget(RetryBudget::new(Duration::from_secs(10), 0, 0.1).unwrap())
        .build()
        .unwrap();
    let handle = layer.handle();
    let service = layer.layer(replica.clone());
    let mut requests = Vec::new();
    for id in 0..800 {
        let call = service.clone().oneshot(request(id).deadline_in(ms(1_000)));
        requests.push(tokio::spawn(tokio::time::timeout(ms(1_000), call)));
        tokio::time::sleep(ms(10)).await;
    }
    for request in requests {
        assert!(request.await.unwrap().is_err(), "nothing answers");
    }
    let hedges = replica.calls() - 800;
    assert_eq!(hedges as u64, handle.sent());
    assert!(hedges > 0, "the budget allowed some");
    assert!(hedges <= 80, "{hedges} hedges for 800 requests at 10 %");
    assert_eq!(handle.skipped_for_budget(), 800 - handle.sent());
}

/// p99 of `n` requests, one every 5 ms, through `service`.
async fn p99<S>(service: S, n: u64) -> Duration
where
    S: Service<Request, Response = (u64, usize), Error = Error> + Clone + Send + 'static,
    S::Future: Send,
{
    let mut tasks = Vec::new();
    for id in 0..n {
        let call = service.clone().oneshot(request(id).deadline_in(ms(2_000)));
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            call.await.expect("answered");
            started.elapsed()
        }));
        tokio::time::sleep(ms(5)).await;
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.push(task.await.unwrap());
    }
    latencies.sort();
    latencies[latencies.len() * 99 / 100]
}

#[tokio::test(start_paused = true)]
async fn on_a_long_tail_the_learnt_delay_cuts_p99_for_a_few_percent_more_calls() {
    // 2 % of calls take 20 times the usual 10-20 ms.
    let tail = |n: usize| {
        let usual = ms(10 + (n as u64 * 7) % 11);
        answers_in(if n % 50 == 17 { usual * 20 } else { usual })
    };
    let bare = p99(Replica::new(tail), 2_000).await;

    let replica = Replica::new(tail);
    let layer = HedgeLayer::builder(AssumeIdempotent).build().unwrap();
    let handle = layer.handle();
    let hedged = p99(layer.layer(replica.clone()), 2_000).await;

    let delay = handle.delay().expect("learnt from 2,000 calls");
    eprintln!(
        "p99 without hedging {bare:?}, with {hedged:?}; delay {delay:?}; {} hedges, {} won",
        handle.sent(),
        handle.won()
    );
    assert!(
        delay >= ms(19) && delay <= ms(23),
        "p95 of 10-20 ms: {delay:?}"
    );
    assert!(
        bare >= ms(200),
        "without hedging p99 is a slow call: {bare:?}"
    );
    assert!(
        hedged <= delay + ms(20),
        "with hedging p99 is the delay plus one usual call: {hedged:?}"
    );
    let extra = replica.calls() - 2_000;
    assert_eq!(extra as u64, handle.sent());
    assert!(
        extra <= 2_000 * 8 / 100,
        "{extra} hedges for 2,000 requests"
    );
    assert!(handle.won() * 2 >= handle.sent(), "{handle:?}");
}

#[tokio::test(start_paused = true)]
async fn the_learnt_delay_hedges_nothing_until_it_has_seen_enough_calls() {
    // Half the calls take 10 ms, half 300 ms; the 33rd is a slow one.
    let slow = |n: usize| (n < 32 && n % 2 == 1) || n == 32;
    let replica = Replica::new(move |n| answers_in(if slow(n) { ms(300) } else { ms(10) }));
    let layer = HedgeLayer::builder(AssumeIdempotent)
        .after_percentile(0.5)
        .min_samples(32)
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(replica.clone());
    for id in 0..32 {
        service
            .ready()
            .await
            .unwrap()
            .call(request(id))
            .await
            .unwrap();
    }
    assert_eq!((replica.calls(), handle.sent()), (32, 0));
    let delay = handle.delay().expect("32 calls seen");
    assert!(delay >= ms(10) && delay < ms(12), "{delay:?}");
    let started = Instant::now();
    service
        .ready()
        .await
        .unwrap()
        .call(request(99))
        .await
        .unwrap();
    assert!(started.elapsed() < ms(300), "hedged");
    assert_eq!(handle.sent(), 1);
}

#[test]
fn bad_settings_are_refused_at_build() {
    let refused = |builder: HedgeBuilder<AssumeIdempotent>, setting: &str| {
        let error = builder.build().unwrap_err();
        assert!(error.to_string().contains(setting), "{error}");
    };
    refused(fixed(Duration::ZERO), "after");
    refused(fixed(Duration::from_secs(7_200)), "after");
    let learnt = || HedgeLayer::builder(AssumeIdempotent);
    refused(learnt().after_percentile(0.3), "after_percentile");
    refused(learnt().after_percentile(1.0), "after_percentile");
    refused(learnt().learning_window(ms(500)), "learning_window");
    refused(learnt().min_samples(0), "min_samples");
    assert!(learnt().after_percentile(0.99).build().is_ok());
}

/// A hedge and a retry layer inside it sharing one budget (as `bound_hedge` wires them), over
/// a replica answering every call in `latency`; runs `requests` requests one after another.
async fn shared_budget_run(requests: u64, latency: Duration) -> (Arc<RetryBudget>, HedgeHandle) {
    let budget = Arc::new(RetryBudget::new(Duration::from_secs(10), 0, 0.5).unwrap());
    let replica = tower::service_fn(move |request: Request| async move {
        tokio::time::sleep(latency).await;
        Ok::<_, Error>(request.into_inner())
    });
    let retry = seawall_retry::RetryLayer::builder()
        .shared_budget(budget.clone())
        .build()
        .unwrap();
    let hedge = HedgeLayer::builder(AssumeIdempotent)
        .after(ms(10))
        .shared_budget(budget.clone())
        .build()
        .unwrap();
    let handle = hedge.handle();
    let mut service = hedge.layer(retry.layer(replica));
    for n in 0..requests {
        service
            .ready()
            .await
            .unwrap()
            .call(WithDeadline::new(n))
            .await
            .unwrap();
    }
    (budget, handle)
}

#[tokio::test(start_paused = true)]
async fn a_request_through_a_hedge_and_a_retry_sharing_a_budget_deposits_once() {
    // Fast answers, never hedged: 20 requests at 0.5 each are 10 retries, not 20.
    let (budget, handle) = shared_budget_run(20, ms(1)).await;
    assert_eq!(handle.sent(), 0);
    assert_eq!(budget.available(), 10, "one deposit per request");

    // Slow answers, each hedged when the budget allows: every second request (the hedge's
    // own attempt through the retry layer deposits nothing either).
    let (budget, handle) = shared_budget_run(20, ms(50)).await;
    assert_eq!(
        handle.sent(),
        10,
        "hedges within the budget's half of requests"
    );
    assert_eq!(budget.available(), 0);
}
