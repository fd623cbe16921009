//! Behaviour of the retry layer on paused time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use seawall_classify::{
    BoxError, Class, ClassifierExt, DeadlineExceeded, DefaultClassifier, Error, FailureKind,
    RetryHint, WithDeadline, cause_ref, from_response_fn,
};
use seawall_retry::{Backoff, Jitter, RetryBudget, RetryLayer};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt, service_fn};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn failure(kind: FailureKind, retry: RetryHint) -> BoxError {
    Box::new(Error::new(Class::failure(kind, retry), "injected"))
}

/// A service that fails with `errors[i]` on call `i` (succeeding once they run out), and
/// records when each call arrived.
fn scripted(
    errors: Vec<BoxError>,
) -> (
    impl Service<WithDeadline<u32>, Response = u32, Error = BoxError, Future: Send> + Clone,
    Arc<std::sync::Mutex<Vec<Duration>>>,
) {
    let start = Instant::now();
    let errors = Arc::new(std::sync::Mutex::new(
        errors.into_iter().map(Some).collect::<Vec<_>>(),
    ));
    let times = Arc::new(std::sync::Mutex::new(Vec::new()));
    let service = service_fn({
        let times = times.clone();
        move |_: WithDeadline<u32>| {
            let mut times = times.lock().unwrap();
            let n = times.len();
            times.push(start.elapsed());
            let error = errors.lock().unwrap().get_mut(n).and_then(Option::take);
            async move {
                match error {
                    Some(error) => Err(error),
                    None => Ok(n as u32),
                }
            }
        }
    });
    (service, times)
}

fn exact(attempts: u32) -> seawall_retry::RetryBuilder {
    RetryLayer::builder()
        .max_attempts(attempts)
        .backoff(
            Backoff::exponential(ms(100))
                .max_delay(ms(5_000))
                .jitter(Jitter::None),
        )
        .no_budget()
}

fn retryable() -> BoxError {
    std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into()
}

#[tokio::test(start_paused = true)]
async fn retries_until_success_with_exact_delays() {
    let (service, times) = scripted(vec![retryable(), retryable()]);
    let mut service = exact(3).build().unwrap().layer(service);
    let answer = service
        .ready()
        .await
        .unwrap()
        .call(WithDeadline::new(0))
        .await
        .unwrap();
    assert_eq!(answer, 2);
    assert_eq!(*times.lock().unwrap(), [ms(0), ms(100), ms(300)]);
}

#[tokio::test(start_paused = true)]
async fn seeded_jitter_gives_exactly_the_schedule_of_its_seed() {
    let backoff = Backoff::exponential(ms(100))
        .max_delay(ms(5_000))
        .jitter(Jitter::Decorrelated);
    let (service, times) = scripted(vec![retryable(), retryable(), retryable()]);
    let layer = RetryLayer::builder()
        .max_attempts(4)
        .backoff(backoff)
        .no_budget()
        .seed(42)
        .build()
        .unwrap();
    let mut service = layer.layer(service);
    service
        .ready()
        .await
        .unwrap()
        .call(WithDeadline::new(0))
        .await
        .unwrap();

    // tokio's timer rounds each sleep up to the next whole millisecond.
    let mut expected = backoff.start(42);
    let mut at = 0;
    let mut schedule = vec![at];
    for _ in 0..3 {
        at += expected.next_delay(&backoff).as_nanos().div_ceil(1_000_000);
        schedule.push(at);
    }
    let times: Vec<_> = times
        .lock()
        .unwrap()
        .iter()
        .map(|t| t.as_millis())
        .collect();
    assert_eq!(times, schedule);
}

#[tokio::test(start_paused = true)]
async fn attempts_are_counted_exactly_and_the_last_error_returned() {
    let errors = (0..10)
        .map(|i| -> BoxError { std::io::Error::other(format!("failure {i}")).into() })
        .collect();
    let classifier = seawall_classify::from_error_fn(|_: &seawall_classify::Error| {
        Some(Class::failure(FailureKind::Internal, RetryHint::Retry))
    });
    let (service, times) = scripted(errors);
    let mut service = exact(3)
        .classifier(classifier)
        .build()
        .unwrap()
        .layer(service);
    let err = service
        .ready()
        .await
        .unwrap()
        .call(WithDeadline::new(0))
        .await
        .unwrap_err();
    assert_eq!(times.lock().unwrap().len(), 3);
    assert_eq!(err.to_string(), "failure 2");
}

#[tokio::test(start_paused = true)]
async fn never_and_rejected_are_not_retried() {
    for error in [
        failure(FailureKind::Invalid, RetryHint::Never),
        failure(FailureKind::Disconnect, RetryHint::Never),
        failure(FailureKind::Rejected, RetryHint::Retry),
        failure(FailureKind::Rejected, RetryHint::RetryAfter(ms(10))),
    ] {
        let description = format!("{error:?}");
        let (service, times) = scripted(vec![error]);
        let mut service = exact(3).build().unwrap().layer(service);
        let _ = service
            .ready()
            .await
            .unwrap()
            .call(WithDeadline::new(0))
            .await;
        assert_eq!(times.lock().unwrap().len(), 1, "{description}");
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_and_capped() {
    let (service, times) = scripted(vec![
        failure(FailureKind::Overloaded, RetryHint::RetryAfter(ms(3_000))),
        failure(FailureKind::Overloaded, RetryHint::RetryAfter(ms(5_000))),
    ]);
    let mut service = exact(3).build().unwrap().layer(service);
    service
        .ready()
        .await
        .unwrap()
        .call(WithDeadline::new(0))
        .await
        .unwrap();
    // 3 s as asked (more than the 100 ms backoff), then 5 s: the cap, and what was asked.
    assert_eq!(*times.lock().unwrap(), [ms(0), ms(3_000), ms(8_000)]);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_above_the_cap_is_returned_not_retried_sooner() {
    let (service, times) = scripted(vec![
        failure(FailureKind::Overloaded, RetryHint::RetryAfter(ms(3_000))),
        failure(FailureKind::Overloaded, RetryHint::RetryAfter(ms(60_000))),
    ]);
    let mut service = exact(3).build().unwrap().layer(service);
    let err = service
        .ready()
        .await
        .unwrap()
        .call(WithDeadline::new(0))
        .await
        .unwrap_err();
    // The server asked for 60 s, more than the 5 s the layer may wait: retried at 5 s, the
    // call would come back sooner than asked. The caller gets the answer and its pushback.
    assert_eq!(*times.lock().unwrap(), [ms(0), ms(3_000)]);
    assert_eq!(err.retry_after(), Some(ms(60_000)), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn the_deadline_stops_retrying_with_deadline_exceeded_and_the_last_error() {
    let (service, times) = scripted(vec![retryable(), retryable(), retryable()]);
    let layer = exact(5).build().unwrap();
    let mut service = layer.clone().layer(service);
    let request = WithDeadline::new(0).deadline_in(ms(250));
    let err = service
        .ready()
        .await
        .unwrap()
        .call(request)
        .await
        .unwrap_err();
    // Attempt 1 at 0 ms, attempt 2 at 100 ms; the next would start at 300 ms, past 250 ms.
    assert_eq!(*times.lock().unwrap(), [ms(0), ms(100)]);
    let deadline = cause_ref::<DeadlineExceeded>(&err).expect("DeadlineExceeded");
    let last = std::error::Error::source(deadline).expect("the last attempt's error");
    assert!(last.to_string().contains("refused"), "{last}");
    assert_eq!(err.class(), DeadlineExceeded::CLASS);
    assert_eq!(layer.handle().stopped_by_deadline(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_spent_budget_returns_the_last_error() {
    let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.5).unwrap();
    let layer = exact(3).budget(budget).build().unwrap();
    let (service, times) = scripted((0..20).map(|_| retryable()).collect());
    let mut service = layer.clone().layer(service);
    // Two requests deposit one retry between them.
    for _ in 0..2 {
        let _ = service
            .ready()
            .await
            .unwrap()
            .call(WithDeadline::new(0))
            .await;
    }
    assert_eq!(times.lock().unwrap().len(), 3, "2 first attempts + 1 retry");
    // Refused: the first request's only retry, and the second request's second retry.
    let handle = layer.handle();
    let budget = handle.budget().unwrap();
    assert_eq!(budget.exhausted(), 2);
    assert_eq!(layer.handle().retries(), 1);
}

#[tokio::test(start_paused = true)]
async fn failing_responses_are_retried_like_errors() {
    let calls = Arc::new(AtomicU32::new(0));
    let service = service_fn({
        let calls = calls.clone();
        move |_: WithDeadline<()>| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, BoxError>(if n < 2 { "BUSY" } else { "OK" }) }
        }
    });
    let busy = from_response_fn(|reply: &&str| {
        (*reply == "BUSY").then_some(Class::failure(FailureKind::Overloaded, RetryHint::Retry))
    })
    .or_classifier(DefaultClassifier);
    let mut service = exact(3).classifier(busy).build().unwrap().layer(service);
    let reply = service
        .ready()
        .await
        .unwrap()
        .call(WithDeadline::new(()))
        .await
        .unwrap();
    assert_eq!(reply, "OK");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[test]
fn impossible_configurations_are_errors() {
    assert_eq!(
        RetryLayer::builder()
            .max_attempts(0)
            .build()
            .unwrap_err()
            .field(),
        "max_attempts"
    );
    assert_eq!(
        RetryLayer::builder()
            .max_attempts(1_000)
            .build()
            .unwrap_err()
            .field(),
        "max_attempts"
    );
    assert_eq!(
        RetryLayer::builder()
            .backoff(Backoff::exponential(ms(100)).max_delay(ms(10)))
            .build()
            .unwrap_err()
            .field(),
        "max_delay"
    );
}

/// Amplification when the dependency fails every call: attempts per request with the
/// budget, against a naive three-retry policy.
#[tokio::test(start_paused = true)]
async fn the_budget_caps_amplification_when_everything_fails() {
    const REQUESTS: u32 = 10_000;
    let run = |layer: RetryLayer| async move {
        let calls = Arc::new(AtomicU32::new(0));
        let service = service_fn({
            let calls = calls.clone();
            move |_: WithDeadline<()>| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), BoxError>(retryable()) }
            }
        });
        let mut service = layer.layer(service);
        let start = Instant::now();
        for _ in 0..REQUESTS {
            let _ = service
                .ready()
                .await
                .unwrap()
                .call(WithDeadline::new(()))
                .await;
        }
        (
            f64::from(calls.load(Ordering::SeqCst)) / f64::from(REQUESTS),
            start.elapsed(),
        )
    };

    let naive = RetryLayer::builder()
        .max_attempts(4)
        .backoff(Backoff::constant(ms(1)))
        .no_budget()
        .build()
        .unwrap();
    let (naive, _) = run(naive).await;
    assert_eq!(naive, 4.0);

    let budgeted = RetryLayer::builder()
        .max_attempts(4)
        .backoff(Backoff::constant(ms(1)))
        .budget(RetryBudget::new(Duration::from_secs(10), 0, 0.2).unwrap())
        .build()
        .unwrap();
    let (amplification, _) = run(budgeted).await;
    assert!(
        amplification <= 1.2,
        "attempts per request {amplification} > 1.2"
    );

    // With the floor of 10 retries per second, at most 10 more per second of (simulated)
    // time, plus the floor's first window.
    let standard = RetryLayer::builder()
        .max_attempts(4)
        .backoff(Backoff::constant(ms(1)))
        .build()
        .unwrap();
    let (amplification, elapsed) = run(standard).await;
    let bound = 1.2 + 10.0 * (elapsed.as_secs_f64() + 10.0) / f64::from(REQUESTS);
    assert!(
        amplification <= bound,
        "attempts per request {amplification} > {bound}"
    );
    assert!(amplification < 1.4, "{amplification}");
}

#[tokio::test(start_paused = true)]
async fn conflicts_and_lost_connections_take_the_fast_schedule() {
    let fast = |attempts| {
        RetryLayer::builder()
            .max_attempts(attempts)
            .backoff(
                Backoff::exponential(ms(100))
                    .max_delay(ms(5_000))
                    .jitter(Jitter::None)
                    .fast_retry(ms(5)),
            )
            .no_budget()
            .build()
            .unwrap()
    };
    // A conflict, then a lost connection: retried within 5 ms, then within 10 ms.
    let (service, times) = scripted(vec![
        failure(FailureKind::Contention, RetryHint::Retry),
        failure(FailureKind::Disconnect, RetryHint::Retry),
    ]);
    let answer = fast(3).layer(service).oneshot(WithDeadline::new(1)).await;
    assert_eq!(answer.unwrap(), 2);
    let times = times.lock().unwrap().clone();
    assert!(times[1] <= ms(5), "{times:?}");
    assert!(times[2] - times[1] <= ms(10), "{times:?}");

    // Anything else keeps the main schedule, which the fast retries did not advance.
    let (service, times) = scripted(vec![
        failure(FailureKind::Contention, RetryHint::Retry),
        failure(FailureKind::Unavailable, RetryHint::Retry),
    ]);
    let answer = fast(3).layer(service).oneshot(WithDeadline::new(1)).await;
    assert_eq!(answer.unwrap(), 2);
    let times = times.lock().unwrap().clone();
    assert!(times[1] <= ms(5), "{times:?}");
    assert_eq!(times[2] - times[1], ms(100), "{times:?}");
}
