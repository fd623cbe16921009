//! Behaviour of `ClassifyLayer` driven through tower-test mocks.

use std::task::{Context, Poll};

use seawall_classify::{
    AssumeIdempotent, BoxError, Class, ClassifyLayer, Error, FailureKind, RetryHint, from_error_fn,
};
use tower::{Layer, Service, ServiceExt};
use tower_test::mock;

fn reset() -> BoxError {
    std::io::Error::from(std::io::ErrorKind::ConnectionReset).into()
}

#[tokio::test(start_paused = true)]
async fn successful_responses_pass_through_unchanged() {
    let (service, mut handle) = mock::pair::<&str, &str>();
    let mut service = ClassifyLayer::new().layer(service);
    handle.allow(1);
    let call = service.ready().await.unwrap().call("ping");
    let (request, respond) = handle.next_request().await.unwrap();
    assert_eq!(request, "ping");
    respond.send_response("pong");
    assert_eq!(call.await.unwrap(), "pong");
}

#[tokio::test(start_paused = true)]
async fn errors_carry_their_class_and_source() {
    let (service, mut handle) = mock::pair::<(), ()>();
    let mut service = ClassifyLayer::new().layer(service);
    handle.allow(1);
    let call = service.ready().await.unwrap().call(());
    let (_, respond) = handle.next_request().await.unwrap();
    respond.send_error(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
    let err: Error = call.await.unwrap_err();
    assert_eq!(
        err.class(),
        Class::failure(FailureKind::Connect, RetryHint::Retry)
    );
    assert!(err.is::<std::io::Error>());
}

#[tokio::test(start_paused = true)]
async fn a_lost_connection_is_not_retried_unless_the_request_is_idempotent() {
    let (service, mut handle) = mock::pair::<(), ()>();
    let mut strict = ClassifyLayer::new().layer(service.clone());
    let mut relaxed = ClassifyLayer::new()
        .idempotency(AssumeIdempotent)
        .layer(service);
    handle.allow(2);

    let call = strict.ready().await.unwrap().call(());
    handle.next_request().await.unwrap().1.send_error(reset());
    let err = call.await.unwrap_err();
    assert_eq!(
        err.class(),
        Class::failure(FailureKind::Disconnect, RetryHint::Never)
    );

    let call = relaxed.ready().await.unwrap().call(());
    handle.next_request().await.unwrap().1.send_error(reset());
    let err = call.await.unwrap_err();
    assert_eq!(
        err.class(),
        Class::failure(FailureKind::Disconnect, RetryHint::Retry)
    );
}

#[tokio::test(start_paused = true)]
async fn idempotency_is_decided_per_request() {
    let (service, mut handle) = mock::pair::<&str, ()>();
    let reads_only = |sql: &&str| sql.starts_with("SELECT");
    let mut service = ClassifyLayer::new().idempotency(reads_only).layer(service);
    handle.allow(2);

    for (sql, expected) in [
        ("SELECT 1", RetryHint::Retry),
        ("INSERT 1", RetryHint::Never),
    ] {
        let call = service.ready().await.unwrap().call(sql);
        handle.next_request().await.unwrap().1.send_error(reset());
        assert_eq!(
            call.await.unwrap_err().class().retry_hint(),
            Some(expected),
            "{sql}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn custom_classifiers_decide_and_unknown_errors_are_internal() {
    let (service, mut handle) = mock::pair::<(), ()>();
    let teapot = from_error_fn(|e: &Error| {
        (e.to_string() == "teapot")
            .then_some(Class::failure(FailureKind::Invalid, RetryHint::Never))
    });
    let mut service = ClassifyLayer::new().classifier(teapot).layer(service);
    handle.allow(2);

    let call = service.ready().await.unwrap().call(());
    handle.next_request().await.unwrap().1.send_error("teapot");
    assert_eq!(call.await.unwrap_err().kind(), Some(FailureKind::Invalid));

    let call = service.ready().await.unwrap().call(());
    handle.next_request().await.unwrap().1.send_error("kettle");
    assert_eq!(call.await.unwrap_err().class(), Class::UNKNOWN_ERROR);
}

#[tokio::test(start_paused = true)]
async fn classified_errors_are_not_wrapped_twice() {
    let (service, mut handle) = mock::pair::<(), ()>();
    let mut service = ClassifyLayer::new().layer(ClassifyLayer::new().layer(service));
    handle.allow(1);
    let call = service.ready().await.unwrap().call(());
    handle.next_request().await.unwrap().1.send_error(reset());
    let err = call.await.unwrap_err();
    assert!(err.is::<std::io::Error>(), "{err:?}");
}

/// A service that is never ready: its readiness fails.
#[derive(Debug, Clone)]
struct Broken;

impl Service<()> for Broken {
    type Response = ();
    type Error = BoxError;
    type Future = std::future::Ready<Result<(), BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Err(reset()))
    }

    fn call(&mut self, _: ()) -> Self::Future {
        unreachable!("never ready")
    }
}

#[tokio::test(start_paused = true)]
async fn readiness_errors_are_classified_as_nothing_was_sent() {
    let mut service = ClassifyLayer::new().layer(Broken);
    let err = service.ready().await.unwrap_err();
    // Not ready means no request went out: safe to retry whatever the request.
    assert_eq!(
        err.class(),
        Class::failure(FailureKind::Disconnect, RetryHint::Retry)
    );
}
