//! Behaviour of the circuit breaker on paused time, through tower-test mocks.

use std::time::Duration;

use seawall_breaker::{
    CircuitBreaker, CircuitBreakerBuilder, CircuitBreakerLayer, CountWindow, State, TimeWindow,
    error::BreakerOpen,
};
use seawall_classify::{
    BoxError, Class, ClassifierExt, DefaultClassifier, Error, FailureKind, RetryHint, cause_ref,
    from_error_fn,
};
use tokio::time::advance;
use tokio_test::{assert_pending, assert_ready_ok, task};
use tower::{Layer, Service, ServiceExt};
use tower_test::mock;

type Mock = mock::Mock<u32, u32>;
type Handle = mock::Handle<u32, u32>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn refused() -> std::io::Error {
    std::io::Error::from(std::io::ErrorKind::ConnectionRefused)
}

fn invalid() -> Error {
    Error::new(
        Class::failure(FailureKind::Invalid, RetryHint::Never),
        "bad input",
    )
}

fn exact() -> CircuitBreakerBuilder {
    CircuitBreakerLayer::builder()
        .name("test")
        .jitter(0.0)
        .open_duration(ms(1_000))
        .max_open_duration(ms(8_000))
}

fn breaker(
    builder: CircuitBreakerBuilder,
) -> (CircuitBreaker<Mock>, Handle, seawall_breaker::BreakerHandle) {
    let layer = builder.build().unwrap();
    let breaker = layer.handle();
    let (service, mut handle) = mock::pair::<u32, u32>();
    handle.allow(u64::MAX);
    (layer.layer(service), handle, breaker)
}

/// Calls once and answers with `outcome` (Ok or the error), returning the call's result.
async fn call_with(
    service: &mut CircuitBreaker<Mock>,
    handle: &mut Handle,
    outcome: Result<u32, BoxError>,
) -> Result<u32, Error> {
    let call = service.ready().await.unwrap().call(1);
    let mut call = task::spawn(call);
    if let std::task::Poll::Ready(result) = call.poll() {
        // Refused without reaching the service.
        return result;
    }
    let (_, respond) = handle
        .next_request()
        .await
        .expect("the call reached the service");
    match outcome {
        Ok(value) => respond.send_response(value),
        Err(error) => respond.send_error(error),
    }
    call.await
}

fn is_open_error(result: &Result<u32, Error>) -> bool {
    result
        .as_ref()
        .err()
        .is_some_and(|e| cause_ref::<BreakerOpen>(e).is_some())
}

#[tokio::test(start_paused = true)]
async fn opens_after_five_consecutive_failures_and_rejects_without_calling() {
    let (mut service, mut handle, breaker) = breaker(exact());
    for i in 0..5 {
        assert_eq!(breaker.state(), State::Closed, "before fault {i}");
        let result = call_with(&mut service, &mut handle, Err(refused().into())).await;
        assert!(!is_open_error(&result));
    }
    assert_eq!(breaker.state(), State::Open);

    let err = service.ready().await.unwrap().call(1).await.unwrap_err();
    let open = cause_ref::<BreakerOpen>(&err).expect("BreakerOpen");
    assert_eq!(open.name(), "test");
    assert_eq!(open.retry_after(), ms(1_000));
    let class = err.class();
    assert_eq!(
        class,
        Class::failure(FailureKind::Rejected, RetryHint::RetryAfter(ms(1_000)))
    );
    assert!(!class.is_fault());
    let mut next = task::spawn(handle.next_request());
    assert_pending!(next.poll(), "an open breaker never calls the service");
}

#[tokio::test(start_paused = true)]
async fn a_success_resets_the_consecutive_count() {
    let (mut service, mut handle, breaker) = breaker(exact().consecutive_faults(3));
    for _ in 0..2 {
        let _ = call_with(&mut service, &mut handle, Err(refused().into())).await;
    }
    call_with(&mut service, &mut handle, Ok(1)).await.unwrap();
    for _ in 0..2 {
        let _ = call_with(&mut service, &mut handle, Err(refused().into())).await;
    }
    assert_eq!(breaker.state(), State::Closed);
    let _ = call_with(&mut service, &mut handle, Err(refused().into())).await;
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn caller_errors_and_rejections_never_count() {
    let (mut service, mut handle, breaker) = breaker(exact().consecutive_faults(2));
    for _ in 0..10 {
        let _ = call_with(&mut service, &mut handle, Err(invalid().into())).await;
        let rejected = Error::new(
            Class::failure(FailureKind::Rejected, RetryHint::Retry),
            "queue full",
        );
        let _ = call_with(&mut service, &mut handle, Err(rejected.into())).await;
    }
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn ignored_outcomes_count_nowhere() {
    let ignore_all =
        from_error_fn(|_: &Error| Some(Class::Ignored)).or_classifier(DefaultClassifier);
    let (mut service, mut handle, breaker) =
        breaker_with(exact().consecutive_faults(1).classifier(ignore_all));
    for _ in 0..5 {
        let call = service.ready().await.unwrap().call(1);
        handle.next_request().await.unwrap().1.send_error(refused());
        let _ = call.await;
    }
    assert_eq!(breaker.state(), State::Closed);
}

fn breaker_with<C: Clone>(
    builder: CircuitBreakerBuilder<C>,
) -> (
    CircuitBreaker<Mock, C>,
    Handle,
    seawall_breaker::BreakerHandle,
) {
    let layer = builder.build().unwrap();
    let breaker = layer.handle();
    let (service, mut handle) = mock::pair::<u32, u32>();
    handle.allow(u64::MAX);
    (layer.layer(service), handle, breaker)
}

#[tokio::test(start_paused = true)]
async fn a_count_window_trips_on_the_exact_fault_after_many_successes() {
    let window = CountWindow::new(100).min_calls(100).failure_rate(0.5);
    let (mut service, mut handle, breaker) = breaker(exact().count_window(window));
    for _ in 0..1_000 {
        call_with(&mut service, &mut handle, Ok(1)).await.unwrap();
    }
    for i in 1..=50 {
        assert_eq!(breaker.state(), State::Closed, "before fault {i}");
        let _ = call_with(&mut service, &mut handle, Err(refused().into())).await;
    }
    assert_eq!(
        breaker.state(),
        State::Open,
        "50 of the last 100 calls failed"
    );
}

#[tokio::test(start_paused = true)]
async fn time_window_faults_expire() {
    let window = TimeWindow::new(ms(10_000), 10)
        .min_calls(3)
        .failure_rate(0.6);
    let (mut service, mut handle, breaker) = breaker(exact().time_window(window));
    for _ in 0..2 {
        let _ = call_with(&mut service, &mut handle, Err(refused().into())).await;
    }
    advance(ms(10_000)).await;
    // The two old faults have left the window: one more is 1 of 1, below min_calls.
    let _ = call_with(&mut service, &mut handle, Err(refused().into())).await;
    call_with(&mut service, &mut handle, Ok(1)).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.stats().unwrap().calls, 2);
    let _ = call_with(&mut service, &mut handle, Err(refused().into())).await;
    assert_eq!(breaker.state(), State::Open, "2 of 3 = 67 % >= 60 %");
}

#[tokio::test(start_paused = true)]
async fn slow_successes_can_open_the_breaker() {
    let window = CountWindow::new(4).min_calls(4).slow_rate(0.75);
    let (mut service, mut handle, breaker) =
        breaker(exact().count_window(window).slow_call_threshold(ms(100)));
    for i in 0..4 {
        let mut call = task::spawn(service.ready().await.unwrap().call(1));
        let (_, respond) = handle.next_request().await.unwrap();
        advance(ms(if i == 0 { 10 } else { 150 })).await;
        respond.send_response(1);
        assert_ready_ok!(call.poll());
    }
    assert_eq!(breaker.state(), State::Open, "3 of 4 calls were slow");
}

async fn trip(service: &mut CircuitBreaker<Mock>, handle: &mut Handle, faults: usize) {
    for _ in 0..faults {
        let _ = call_with(service, handle, Err(refused().into())).await;
    }
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_exactly_the_permitted_probes() {
    let (mut service, mut handle, breaker) =
        breaker(exact().consecutive_faults(1).permitted_probes(2));
    trip(&mut service, &mut handle, 1).await;
    advance(ms(999)).await;
    assert!(is_open_error(&service.ready().await.unwrap().call(1).await));
    advance(ms(1)).await;

    let mut clones: Vec<_> = (0..3).map(|_| service.clone()).collect();
    let mut calls = Vec::new();
    for clone in &mut clones {
        calls.push(task::spawn(clone.ready().await.unwrap().call(1)));
    }
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_pending!(calls[0].poll());
    assert_pending!(calls[1].poll());
    let third = calls.pop().unwrap().await;
    assert!(is_open_error(&third), "a third probe is refused: {third:?}");

    for _ in 0..2 {
        handle.next_request().await.unwrap().1.send_response(1);
    }
    for call in calls {
        call.await.unwrap();
    }
    assert_eq!(
        breaker.state(),
        State::Closed,
        "two probe successes close it"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_doubles_the_open_period_and_closing_resets_it() {
    let (mut service, mut handle, breaker) = breaker(exact().consecutive_faults(1));
    trip(&mut service, &mut handle, 1).await;
    for expected in [2_000, 4_000, 8_000, 8_000] {
        advance(breaker.retry_after().unwrap()).await;
        let _ = call_with(&mut service, &mut handle, Err(refused().into())).await;
        assert_eq!(breaker.state(), State::Open);
        assert_eq!(breaker.retry_after(), Some(ms(expected)), "capped at 8 s");
    }
    advance(ms(8_000)).await;
    call_with(&mut service, &mut handle, Ok(1)).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
    trip(&mut service, &mut handle, 1).await;
    assert_eq!(
        breaker.retry_after(),
        Some(ms(1_000)),
        "back to the base period"
    );
}

#[tokio::test(start_paused = true)]
async fn jitter_shortens_the_open_period_within_bounds() {
    for seed in 0..50 {
        let builder = exact().jitter(0.5).seed(seed).consecutive_faults(1);
        let (mut service, mut handle, breaker) = breaker(builder);
        trip(&mut service, &mut handle, 1).await;
        let wait = breaker.retry_after().unwrap();
        assert!(wait > ms(500) && wait <= ms(1_000), "seed {seed}: {wait:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_dropped_probe_releases_its_slot() {
    let (mut service, mut handle, breaker) = breaker(exact().consecutive_faults(1));
    trip(&mut service, &mut handle, 1).await;
    advance(ms(1_000)).await;

    let mut probe = task::spawn(service.ready().await.unwrap().call(1));
    assert_pending!(probe.poll());
    let _request = handle.next_request().await.unwrap();
    assert!(
        is_open_error(&service.ready().await.unwrap().call(2).await),
        "slot taken"
    );
    drop(probe);
    assert_eq!(breaker.state(), State::HalfOpen);
    call_with(&mut service, &mut handle, Ok(1)).await.unwrap();
    assert_eq!(
        breaker.state(),
        State::Closed,
        "the next probe got the slot"
    );
}

#[tokio::test(start_paused = true)]
async fn a_reserved_probe_slot_is_not_inherited_and_is_freed_with_the_service() {
    let (mut service, mut handle, breaker) = breaker(exact().consecutive_faults(1));
    trip(&mut service, &mut handle, 1).await;
    advance(ms(1_000)).await;

    service.ready().await.unwrap(); // reserves the only probe slot
    let mut clone = service.clone();
    assert!(is_open_error(&clone.ready().await.unwrap().call(1).await));
    drop(service);
    call_with(&mut clone, &mut handle, Ok(1)).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn poll_ready_never_blocks_while_open() {
    let (mut service, mut handle, breaker) = breaker(exact().consecutive_faults(1));
    trip(&mut service, &mut handle, 1).await;
    handle.allow(0); // the inner service would never be ready
    let mut ready = task::spawn(service.ready());
    assert_ready_ok!(ready.poll());
    drop(ready);
    assert!(is_open_error(&service.call(1).await));
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn manual_controls_force_open_disable_and_reset() {
    let (mut service, mut handle, breaker) = breaker(exact().consecutive_faults(1));
    breaker.force_open();
    assert!(is_open_error(&service.ready().await.unwrap().call(1).await));
    advance(ms(60_000)).await;
    assert_eq!(
        breaker.state(),
        State::ForcedOpen,
        "no timer ends a forced open"
    );

    breaker.disable();
    for _ in 0..5 {
        let result = call_with(&mut service, &mut handle, Err(refused().into())).await;
        assert!(!is_open_error(&result));
    }
    assert_eq!(breaker.state(), State::Disabled);

    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
    trip(&mut service, &mut handle, 1).await;
    assert_eq!(breaker.state(), State::Open);
    assert!(breaker.transitions() >= 4);
}

#[test]
fn impossible_configurations_are_errors() {
    let field = |b: CircuitBreakerBuilder| b.build().unwrap_err().field();
    assert_eq!(field(exact().consecutive_faults(0)), "consecutive_faults");
    assert_eq!(
        field(exact().open_duration(Duration::ZERO)),
        "open_duration"
    );
    assert_eq!(
        field(exact().max_open_duration(ms(10))),
        "max_open_duration"
    );
    assert_eq!(field(exact().jitter(1.0)), "jitter");
    assert_eq!(field(exact().permitted_probes(0)), "permitted_probes");
    assert_eq!(
        field(exact().count_window(CountWindow::new(10).slow_rate(0.5))),
        "slow_call_threshold"
    );
    assert_eq!(
        field(exact().count_window(CountWindow::new(10).min_calls(20).failure_rate(0.5))),
        "min_calls"
    );
    assert_eq!(
        field(exact().time_window(TimeWindow::new(ms(1_000), 10).failure_rate(2.0))),
        "failure_rate"
    );
}
