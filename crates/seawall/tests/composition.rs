//! The composition rules of the standard pipeline, pinned down on paused time with a
//! tower-test mock as the client.

use std::time::Duration;

use seawall::breaker::{CircuitBreakerLayer, State, error::BreakerOpen};
use seawall::limit::ConcurrencyLimitLayer;
use seawall::retry::{Backoff, Jitter, RetryBudget, RetryLayer};
use seawall::{
    Class, DeadlineExceeded, Error, FailureKind, RetryHint, Standard, StandardPipeline,
    WithDeadline,
};
use seawall_classify::cause_ref;
use tokio::time::{Instant, advance};
use tokio_test::{assert_pending, task};
use tower::{Layer, Service, ServiceExt};
use tower_test::mock;

type Req = WithDeadline<u32>;
type Client = mock::Mock<Req, u32>;
type Handle = mock::Handle<Req, u32>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn refused() -> std::io::Error {
    std::io::Error::from(std::io::ErrorKind::ConnectionRefused)
}

/// A pipeline with exact timings: no jitter anywhere.
fn pipeline() -> StandardPipeline {
    StandardPipeline::new("dep", 4)
        .deadline(ms(1_000))
        .attempt_timeout(ms(300))
        .retry(
            RetryLayer::builder()
                .max_attempts(3)
                .backoff(
                    Backoff::exponential(ms(100))
                        .max_delay(ms(1_000))
                        .jitter(Jitter::None),
                )
                .budget(RetryBudget::new(Duration::from_secs(10), 10, 0.2).unwrap()),
        )
        .circuit_breaker(
            CircuitBreakerLayer::builder()
                .name("dep")
                .consecutive_faults(5)
                .jitter(0.0)
                .open_duration(ms(1_000)),
        )
        .concurrency_limit(ConcurrencyLimitLayer::builder(4).queue(4).max_wait(ms(500)))
}

fn build(pipeline: StandardPipeline) -> (Standard<Client>, Handle, seawall::StandardLayer) {
    let layer = pipeline.build().unwrap();
    let (client, mut handle) = mock::pair::<Req, u32>();
    handle.allow(u64::MAX);
    (layer.layer(client), handle, layer)
}

/// No request is waiting at the client (it may also have been dropped: then none can come).
fn no_more_requests(handle: &mut Handle) -> bool {
    !matches!(handle.poll_request(), std::task::Poll::Ready(Some(_)))
}

/// Sends one request to a client that never answers; returns when each attempt reached the
/// client, and the request's error.
async fn unanswered(mut service: Standard<Client>, handle: &mut Handle) -> (Vec<Duration>, Error) {
    let start = Instant::now();
    let call = tokio::spawn(async move {
        service
            .ready()
            .await
            .unwrap()
            .call(WithDeadline::new(1))
            .await
    });
    let mut arrivals = Vec::new();
    let mut requests = Vec::new();
    while let Some(request) = tokio::select! {
        r = handle.next_request() => r,
        _ = tokio::time::sleep(ms(2_000)) => None,
    } {
        arrivals.push(start.elapsed());
        requests.push(request);
    }
    (arrivals, call.await.unwrap().unwrap_err())
}

fn is_breaker_open(err: &Error) -> bool {
    cause_ref::<BreakerOpen>(err).is_some()
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_ends_retrying_at_once_and_spends_no_budget() {
    let (mut service, mut handle, layer) = build(
        pipeline().retry(
            RetryLayer::builder()
                .max_attempts(3)
                .budget(RetryBudget::new(Duration::from_secs(10), 0, 1.0).unwrap()),
        ),
    );
    let breaker = layer.breaker().unwrap();
    let budget = layer.retry().unwrap().budget().unwrap().clone();
    breaker.force_open();
    // Give the budget something to spend, so that "spends nothing" can fail.
    for _ in 0..3 {
        budget.deposit();
    }
    let available = budget.available();

    let err = service
        .ready()
        .await
        .unwrap()
        .call(WithDeadline::new(1))
        .await
        .unwrap_err();
    assert!(is_breaker_open(&err), "{err:?}");
    assert_eq!(err.kind(), Some(FailureKind::Rejected));
    assert_eq!(layer.retry().unwrap().retries(), 0);
    assert!(no_more_requests(&mut handle), "the client was never called");
    // The request's own deposit was added; nothing was withdrawn.
    assert_eq!(budget.available(), available + 1);
}

#[tokio::test(start_paused = true)]
async fn a_breaker_that_opens_mid_request_stops_its_retries() {
    let pipeline = pipeline().circuit_breaker(
        CircuitBreakerLayer::builder()
            .name("dep")
            .consecutive_faults(1)
            .jitter(0.0),
    );
    let (mut service, mut handle, layer) = build(pipeline);
    let call = tokio::spawn(async move {
        service
            .ready()
            .await
            .unwrap()
            .call(WithDeadline::new(1))
            .await
    });
    handle.next_request().await.unwrap().1.send_error(refused());
    let err = call.await.unwrap().unwrap_err();
    assert!(
        is_breaker_open(&err),
        "the retry met the open breaker: {err:?}"
    );
    assert_eq!(layer.breaker().unwrap().state(), State::Open);
    assert!(
        no_more_requests(&mut handle),
        "exactly one call reached the client"
    );
}

#[tokio::test(start_paused = true)]
async fn no_limiter_permit_is_held_while_retry_sleeps() {
    let (mut service, mut handle, layer) = build(pipeline());
    let limit = layer.limit().unwrap();
    let mut call = task::spawn(service.ready().await.unwrap().call(WithDeadline::new(1)));
    assert_pending!(call.poll());
    let (_, respond) = handle.next_request().await.unwrap();
    assert_eq!(limit.in_flight(), 1, "the attempt holds a permit");
    respond.send_error(refused());
    assert_pending!(call.poll());
    // Backing off for 100 ms: no permit held at any point of the sleep.
    for _ in 0..10 {
        assert_eq!(limit.in_flight(), 0);
        advance(ms(10)).await;
        let _ = call.poll();
    }
    let (_, respond) = handle.next_request().await.unwrap();
    assert_eq!(limit.in_flight(), 1);
    respond.send_response(7);
    assert_eq!(call.await.unwrap(), 7);
    assert_eq!(limit.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn no_request_outlives_its_deadline_and_the_error_says_deadline() {
    let (service, mut handle, _layer) = build(pipeline().attempt_timeout(ms(600)));
    // The client never answers.
    let (arrivals, err) = unanswered(service, &mut handle).await;
    // Attempt 1: 0..600 ms (its own timeout); backoff 100 ms; attempt 2 starts at 700 ms and
    // gets only the 300 ms left.
    assert_eq!(arrivals, [ms(0), ms(700)]);
    assert!(cause_ref::<DeadlineExceeded>(&err).is_some(), "{err:?}");
    assert_eq!(
        err.class(),
        Class::failure(FailureKind::Timeout, RetryHint::Never)
    );
}

#[tokio::test(start_paused = true)]
async fn each_attempt_is_bounded_by_its_own_timeout_first() {
    let (service, mut handle, _layer) = build(pipeline());
    // The client never answers.
    let (arrivals, err) = unanswered(service, &mut handle).await;
    // 300 ms attempts, then 100 ms and 200 ms backoffs: 0, 400, 900 (capped by the deadline).
    assert_eq!(arrivals, [ms(0), ms(400), ms(900)]);
    assert!(cause_ref::<DeadlineExceeded>(&err).is_some(), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn half_open_probes_are_not_multiplied_by_retries() {
    let pipeline = pipeline().circuit_breaker(
        CircuitBreakerLayer::builder()
            .name("dep")
            .consecutive_faults(1)
            .jitter(0.0)
            .open_duration(ms(1_000))
            .permitted_probes(1),
    );
    let (mut service, mut handle, layer) = build(pipeline);
    let breaker = layer.breaker().unwrap();
    let mut first = service.clone();
    let call = tokio::spawn(async move {
        first
            .ready()
            .await
            .unwrap()
            .call(WithDeadline::new(1))
            .await
    });
    handle.next_request().await.unwrap().1.send_error(refused());
    let _ = call.await.unwrap();
    assert_eq!(breaker.state(), State::Open);

    advance(ms(1_000)).await;
    let call = tokio::spawn(async move {
        service
            .ready()
            .await
            .unwrap()
            .call(WithDeadline::new(2))
            .await
    });
    handle.next_request().await.unwrap().1.send_error(refused());
    let err = call.await.unwrap().unwrap_err();
    assert!(is_breaker_open(&err), "{err:?}");
    assert!(
        no_more_requests(&mut handle),
        "one probe, not one per retry"
    );
}

#[tokio::test(start_paused = true)]
async fn caller_errors_are_neither_retried_nor_counted() {
    let pipeline = pipeline().circuit_breaker(
        CircuitBreakerLayer::builder()
            .name("dep")
            .consecutive_faults(2),
    );
    let (service, mut handle, layer) = build(pipeline);
    for _ in 0..10 {
        let mut service = service.clone();
        let call = tokio::spawn(async move {
            service
                .ready()
                .await
                .unwrap()
                .call(WithDeadline::new(1))
                .await
        });
        let invalid = Error::new(
            Class::failure(FailureKind::Invalid, RetryHint::Never),
            "bad",
        );
        handle.next_request().await.unwrap().1.send_error(invalid);
        let err = call.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), Some(FailureKind::Invalid));
    }
    assert_eq!(layer.breaker().unwrap().state(), State::Closed);
    assert_eq!(layer.retry().unwrap().retries(), 0);
}

#[test]
fn configurations_that_cannot_work_are_errors_naming_the_field() {
    let err = pipeline().attempt_timeout(ms(2_000)).build().unwrap_err();
    assert_eq!(err.field(), "attempt_timeout");
    let err = pipeline()
        .retry(RetryLayer::builder().max_attempts(0))
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "max_attempts");
    let err = pipeline()
        .concurrency_limit(ConcurrencyLimitLayer::builder(0))
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "max");
    let err = pipeline()
        .circuit_breaker(
            CircuitBreakerLayer::builder().count_window(
                seawall::breaker::CountWindow::new(10)
                    .min_calls(50)
                    .failure_rate(0.5),
            ),
        )
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "min_calls");
    let err = pipeline()
        .circuit_breaker(
            CircuitBreakerLayer::builder()
                .time_window(seawall::breaker::TimeWindow::new(ms(500), 5).failure_rate(0.5)),
        )
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "circuit_breaker.time_window");
    // The attempt timeout is 300 ms: no call can take 300 ms or more.
    let err = pipeline()
        .circuit_breaker(CircuitBreakerLayer::builder().slow_call_threshold(ms(300)))
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "circuit_breaker.slow_call_threshold");
    assert!(err.to_string().contains("no call could be slow"), "{err}");
    assert!(pipeline().no_retry().no_circuit_breaker().build().is_ok());
}

/// A request type that cannot be cloned, such as one with a streaming body.
struct Streaming(u32);

#[tokio::test(start_paused = true)]
async fn without_retries_a_request_need_not_be_clone() {
    let layer = StandardPipeline::new("dep", 2).no_retry().build().unwrap();
    assert!(layer.retry().is_none());
    let client = tower::service_fn(|req: WithDeadline<Streaming>| async move {
        Ok::<_, std::io::Error>(req.into_inner().0 * 2)
    });
    let answer = layer
        .layer(client)
        .oneshot(WithDeadline::new(Streaming(21)))
        .await
        .unwrap();
    assert_eq!(answer, 42);
}

#[tokio::test(start_paused = true)]
async fn one_classifier_and_one_policy_reach_every_layer() {
    use seawall::classify::{Policy, from_response_fn};
    use seawall::limit::adaptive::Aimd;

    // The client answers with a status code; 503 is a failure only the classifier knows of.
    let busy = from_response_fn(|status: &u16| {
        (*status == 503).then_some(Class::failure(FailureKind::Overloaded, RetryHint::Never))
    });
    let layer = StandardPipeline::new("dep", 8)
        .no_retry()
        .classifier(busy)
        .policy(Policy::standard())
        .concurrency_limit(ConcurrencyLimitLayer::builder(8).adaptive(Aimd::new(8, 1, 8).unwrap()))
        .circuit_breaker(
            CircuitBreakerLayer::builder()
                .consecutive_faults(3)
                .jitter(0.0),
        )
        .build()
        .unwrap();
    let limit = layer.limit().unwrap();
    let breaker = layer.breaker().unwrap();
    let mut service = layer.layer(tower::service_fn(|_: WithDeadline<u32>| async {
        Ok::<u16, std::io::Error>(503)
    }));
    for _ in 0..3 {
        let status = service
            .ready()
            .await
            .unwrap()
            .call(WithDeadline::new(1))
            .await
            .unwrap();
        assert_eq!(status, 503);
    }
    // The same responses shrank the adaptive limit and opened the breaker.
    assert!(limit.limit() < 8, "limit {}", limit.limit());
    assert_eq!(breaker.state(), State::Open);

    // A policy that does not count `Overloaded` leaves both alone.
    let lenient = Policy::standard().fault(FailureKind::Overloaded, false);
    let layer = StandardPipeline::new("dep", 8)
        .no_retry()
        .classifier(busy)
        .policy(lenient)
        .concurrency_limit(ConcurrencyLimitLayer::builder(8).adaptive(Aimd::new(8, 1, 8).unwrap()))
        .build()
        .unwrap();
    let (limit, breaker) = (layer.limit().unwrap(), layer.breaker().unwrap());
    let mut service = layer.layer(tower::service_fn(|_: WithDeadline<u32>| async {
        Ok::<u16, std::io::Error>(503)
    }));
    for _ in 0..10 {
        let _ = service
            .ready()
            .await
            .unwrap()
            .call(WithDeadline::new(1))
            .await;
    }
    assert_eq!(limit.limit(), 8);
    assert_eq!(breaker.state(), State::Closed);
}
