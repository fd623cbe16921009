//! Behaviour of the attempt timeout and the deadline on paused time, through tower-test mocks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall_classify::{
    Class, DeadlineExceeded, Error, FailureKind, HasDeadline, RetryHint, WithDeadline, cause_ref,
    cut,
};
use seawall_timeout::{AttemptTimeoutLayer, DeadlineLayer, MAX_TIMEOUT, error::Elapsed};
use tokio::time::{Instant, advance};
use tokio_test::{assert_pending, assert_ready, assert_ready_ok, task};
use tower::{Layer, Service, ServiceExt};
use tower_test::mock;

type Req = WithDeadline<u32>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn class_of(err: &Error) -> Class {
    err.class()
}

fn attempt(timeout_ms: u64) -> AttemptTimeoutLayer {
    AttemptTimeoutLayer::try_new(ms(timeout_ms)).unwrap()
}

#[tokio::test(start_paused = true)]
async fn attempt_times_out_exactly_at_the_bound() {
    let (service, mut handle) = mock::pair::<Req, u32>();
    let mut service = attempt(100).layer(service);
    handle.allow(1);

    let mut call = task::spawn(service.ready().await.unwrap().call(WithDeadline::new(1)));
    let (_request, _respond) = handle.next_request().await.unwrap();
    advance(ms(99)).await;
    assert_pending!(call.poll());
    advance(ms(1)).await;
    let err = assert_ready!(call.poll()).unwrap_err();
    assert_eq!(
        class_of(&err),
        Class::failure(FailureKind::Timeout, RetryHint::Retry)
    );
    let elapsed = cause_ref::<Elapsed>(&err).expect("an Elapsed in the chain");
    assert_eq!(elapsed.timeout(), ms(100));
}

#[tokio::test(start_paused = true)]
async fn responses_within_the_bound_pass_through() {
    let (service, mut handle) = mock::pair::<Req, u32>();
    let mut service = attempt(100).layer(service);
    handle.allow(1);

    let mut call = task::spawn(service.ready().await.unwrap().call(WithDeadline::new(1)));
    let (request, respond) = handle.next_request().await.unwrap();
    assert_eq!(*request.get_ref(), 1);
    advance(ms(99)).await;
    respond.send_response(7);
    assert_eq!(assert_ready_ok!(call.poll()), 7);
}

#[tokio::test(start_paused = true)]
async fn inner_errors_keep_their_type() {
    let (service, mut handle) = mock::pair::<Req, u32>();
    let mut service = attempt(100).layer(service);
    handle.allow(1);

    let call = service.ready().await.unwrap().call(WithDeadline::new(1));
    let (_, respond) = handle.next_request().await.unwrap();
    respond.send_error(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
    let err = call.await.unwrap_err();
    assert!(err.is::<std::io::Error>(), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn a_sooner_deadline_shrinks_the_attempt_and_is_not_retryable() {
    let (service, mut handle) = mock::pair::<Req, u32>();
    let mut service = attempt(100).layer(service);
    handle.allow(1);

    let request = WithDeadline::new(1).deadline_in(ms(30));
    let mut call = task::spawn(service.ready().await.unwrap().call(request));
    let _pending = handle.next_request().await.unwrap();
    advance(ms(29)).await;
    assert_pending!(call.poll());
    advance(ms(1)).await;
    let err = assert_ready!(call.poll()).unwrap_err();
    assert_eq!(class_of(&err), DeadlineExceeded::CLASS);
    assert!(cause_ref::<DeadlineExceeded>(&err).is_some());
}

#[tokio::test(start_paused = true)]
async fn a_later_deadline_does_not_extend_the_attempt() {
    let (service, mut handle) = mock::pair::<Req, u32>();
    let mut service = attempt(100).layer(service);
    handle.allow(1);

    let request = WithDeadline::new(1).deadline_in(Duration::from_secs(10));
    let mut call = task::spawn(service.ready().await.unwrap().call(request));
    let _pending = handle.next_request().await.unwrap();
    advance(ms(100)).await;
    let err = assert_ready!(call.poll()).unwrap_err();
    assert!(cause_ref::<Elapsed>(&err).is_some());
}

#[tokio::test(start_paused = true)]
async fn a_request_past_its_deadline_never_reaches_the_service() {
    let (service, mut handle) = mock::pair::<Req, u32>();
    let mut service = attempt(100).layer(service);
    handle.allow(1);

    let request = WithDeadline::new(1).deadline_at(Instant::now());
    let err = service
        .ready()
        .await
        .unwrap()
        .call(request)
        .await
        .unwrap_err();
    assert_eq!(class_of(&err), DeadlineExceeded::CLASS);
    let mut next = task::spawn(handle.next_request());
    assert_pending!(next.poll());
}

#[tokio::test(start_paused = true)]
async fn readiness_does_not_count_by_default() {
    let (service, mut handle) = mock::pair::<Req, u32>();
    let mut service = attempt(100).layer(service);
    handle.allow(0);

    let mut ready = task::spawn(service.ready());
    assert_pending!(ready.poll());
    advance(ms(500)).await;
    assert_pending!(ready.poll());
    handle.allow(1);
    assert_ready_ok!(ready.poll());
    drop(ready);

    let mut call = task::spawn(service.call(WithDeadline::new(1)));
    let _pending = handle.next_request().await.unwrap();
    advance(ms(99)).await;
    assert_pending!(call.poll());
    advance(ms(1)).await;
    assert!(assert_ready!(call.poll()).is_err());
}

#[tokio::test(start_paused = true)]
async fn counted_readiness_times_out_without_reaching_the_service() {
    let (service, mut handle) = mock::pair::<Req, u32>();
    let mut service = attempt(100).include_readiness(true).layer(service);
    handle.allow(0);

    let mut ready = task::spawn(service.ready());
    assert_pending!(ready.poll());
    advance(ms(99)).await;
    assert_pending!(ready.poll());
    advance(ms(1)).await;
    // Reports ready so the caller is not stuck, and its call fails at once.
    assert_ready_ok!(ready.poll());
    drop(ready);
    let err = service.call(WithDeadline::new(1)).await.unwrap_err();
    assert!(cause_ref::<Elapsed>(&err).is_some());
    assert_eq!(class_of(&err), Elapsed::CLASS);
    let mut next = task::spawn(handle.next_request());
    assert_pending!(next.poll());
}

#[tokio::test(start_paused = true)]
async fn counted_readiness_leaves_the_rest_of_the_timeout_for_the_call() {
    let (service, mut handle) = mock::pair::<Req, u32>();
    let mut service = attempt(100).include_readiness(true).layer(service);
    handle.allow(0);

    let mut ready = task::spawn(service.ready());
    assert_pending!(ready.poll());
    advance(ms(60)).await;
    handle.allow(1);
    assert_ready_ok!(ready.poll());
    drop(ready);

    let mut call = task::spawn(service.call(WithDeadline::new(1)));
    let _pending = handle.next_request().await.unwrap();
    advance(ms(39)).await;
    assert_pending!(call.poll());
    advance(ms(1)).await;
    assert!(assert_ready!(call.poll()).is_err());

    // The next call starts a fresh clock.
    handle.allow(1);
    let mut call = task::spawn(service.ready().await.unwrap().call(WithDeadline::new(2)));
    let _pending = handle.next_request().await.unwrap();
    advance(ms(99)).await;
    assert_pending!(call.poll());
}

#[tokio::test(start_paused = true)]
async fn deadline_is_published_to_inner_layers() {
    let (service, mut handle) = mock::pair::<Req, u32>();
    let mut service = DeadlineLayer::try_new(ms(250)).unwrap().layer(service);
    handle.allow(1);

    let start = Instant::now();
    let call = service.ready().await.unwrap().call(WithDeadline::new(1));
    let (request, respond) = handle.next_request().await.unwrap();
    // The instant the layer gives up at: its 5 ms margin before the budget ends.
    assert_eq!(request.deadline(), Some(start + ms(245)));
    respond.send_response(1);
    assert_eq!(call.await.unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_earlier_deadline_on_the_request_is_kept() {
    let (service, mut handle) = mock::pair::<Req, u32>();
    let mut service = DeadlineLayer::try_new(ms(250)).unwrap().layer(service);
    handle.allow(2);

    let earlier = Instant::now() + ms(40);
    let mut call = task::spawn(
        service
            .ready()
            .await
            .unwrap()
            .call(WithDeadline::new(1).deadline_at(earlier)),
    );
    let (request, _respond) = handle.next_request().await.unwrap();
    // The caller's deadline, less the margin (5 ms, an eighth of the 40 ms left).
    assert_eq!(request.deadline(), Some(earlier - ms(5)));
    advance(ms(35)).await;
    let err = assert_ready!(call.poll()).unwrap_err();
    assert_eq!(class_of(&err), DeadlineExceeded::CLASS);

    let later = Instant::now() + Duration::from_secs(60);
    let _call = service
        .ready()
        .await
        .unwrap()
        .call(WithDeadline::new(2).deadline_at(later));
    let (request, _respond) = handle.next_request().await.unwrap();
    assert_eq!(request.deadline(), Some(Instant::now() + ms(245)));
}

/// The deadline gives a request up `margin` before it ends (5 ms by default, at most an
/// eighth of the time left), so that the error reaches the caller before its deadline.
async fn fires_at(layer: DeadlineLayer, at: Duration) {
    let (service, mut handle) = mock::pair::<Req, u32>();
    let mut service = layer.layer(service);
    handle.allow(1);

    let mut call = task::spawn(service.ready().await.unwrap().call(WithDeadline::new(1)));
    let _pending = handle.next_request().await.unwrap();
    advance(at - ms(1)).await;
    assert_pending!(call.poll());
    advance(ms(1)).await;
    let err = assert_ready!(call.poll()).unwrap_err();
    assert_eq!(class_of(&err), DeadlineExceeded::CLASS);
    assert!(!class_of(&err).is_retryable());
}

#[tokio::test(start_paused = true)]
async fn deadline_fires_its_margin_before_the_budget() {
    fires_at(DeadlineLayer::try_new(ms(250)).unwrap(), ms(245)).await;
}

#[tokio::test(start_paused = true)]
async fn the_margin_is_at_most_an_eighth_of_the_time_left() {
    fires_at(DeadlineLayer::try_new(ms(16)).unwrap(), ms(14)).await;
}

#[tokio::test(start_paused = true)]
async fn without_a_margin_the_deadline_fires_exactly_at_the_budget() {
    fires_at(
        DeadlineLayer::try_new(ms(250))
            .unwrap()
            .margin(Duration::ZERO),
        ms(250),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn deadline_then_attempt_timeout_uses_the_smaller_bound() {
    let (service, mut handle) = mock::pair::<Req, u32>();
    let stack = tower::ServiceBuilder::new()
        .layer(DeadlineLayer::try_new(ms(150)).unwrap())
        .layer(attempt(100));
    let mut service = stack.service(service);
    handle.allow(2);

    // First attempt: the attempt timeout (100 ms) is the smaller bound.
    let mut call = task::spawn(service.ready().await.unwrap().call(WithDeadline::new(1)));
    let _pending = handle.next_request().await.unwrap();
    advance(ms(100)).await;
    let err = assert_ready!(call.poll()).unwrap_err();
    assert!(cause_ref::<Elapsed>(&err).is_some());
    drop(call);

    // With 30 ms of the deadline left, the attempt gets 30 ms, not 100.
    let request = WithDeadline::new(2).deadline_in(ms(30));
    let mut call = task::spawn(service.ready().await.unwrap().call(request));
    let _pending = handle.next_request().await.unwrap();
    advance(ms(30)).await;
    let err = assert_ready!(call.poll()).unwrap_err();
    assert!(cause_ref::<DeadlineExceeded>(&err).is_some());
}

#[test]
fn zero_and_absurd_durations_are_configuration_errors() {
    let err = AttemptTimeoutLayer::try_new(Duration::ZERO).unwrap_err();
    assert_eq!(err.field(), "timeout");
    assert!(err.to_string().contains("greater than zero"), "{err}");
    let err = DeadlineLayer::try_new(MAX_TIMEOUT + ms(1)).unwrap_err();
    assert_eq!(err.field(), "budget");
    assert!(AttemptTimeoutLayer::try_new(MAX_TIMEOUT).is_ok());
}

/// A call that never answers, and notes, when it is dropped, why (see `seawall_classify::cut`).
fn hung(
    seen: &Arc<Mutex<Vec<Option<Class>>>>,
) -> impl Service<Req, Response = u32, Error = Error> + use<> {
    struct Note(Arc<Mutex<Vec<Option<Class>>>>);
    impl Drop for Note {
        fn drop(&mut self) {
            self.0.lock().unwrap().push(cut::current());
        }
    }
    let seen = seen.clone();
    tower::service_fn(move |_: Req| {
        let note = Note(seen.clone());
        async move {
            std::future::pending::<()>().await;
            drop(note);
            Ok::<u32, Error>(0)
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_call_cut_by_a_timeout_is_dropped_as_that_timeout_and_a_cancelled_one_as_nothing() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut by_deadline = DeadlineLayer::try_new(ms(100)).unwrap().layer(hung(&seen));
    let err = by_deadline
        .ready()
        .await
        .unwrap()
        .call(WithDeadline::new(1))
        .await
        .unwrap_err();
    assert_eq!(class_of(&err), DeadlineExceeded::CLASS);
    let mut by_attempt = attempt(50).layer(hung(&seen));
    let err = by_attempt
        .ready()
        .await
        .unwrap()
        .call(WithDeadline::new(2))
        .await
        .unwrap_err();
    assert_eq!(class_of(&err), Elapsed::CLASS);
    // The inner call is dropped when the timer fires, not when the caller drops the future.
    let mut call = task::spawn(
        by_deadline
            .ready()
            .await
            .unwrap()
            .call(WithDeadline::new(3)),
    );
    assert_pending!(call.poll());
    advance(ms(95)).await;
    assert!(assert_ready!(call.poll()).is_err());
    assert_eq!(
        seen.lock().unwrap().len(),
        3,
        "dropped at the timer, before the future"
    );
    drop(call);
    // The caller going away is a cancellation.
    let mut call = task::spawn(
        by_deadline
            .ready()
            .await
            .unwrap()
            .call(WithDeadline::new(4)),
    );
    assert_pending!(call.poll());
    drop(call);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            Some(DeadlineExceeded::CLASS),
            Some(Elapsed::CLASS),
            Some(DeadlineExceeded::CLASS),
            None
        ]
    );
}
