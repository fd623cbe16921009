//! The example's claims, checked against its real server on loopback.

use std::time::Duration;

use seawall::{Class, FailureKind, RetryHint, WithDeadline};
use seawall_chaos::ChaosLayer;
use seawall_example_grpc::{SERVICE, channel_client, check, serve, typed_checks};
use tonic::transport::Endpoint;
use tower::{Service, ServiceExt};

fn unavailable(pushback_ms: u64) -> Class {
    Class::failure(
        FailureKind::Unavailable,
        RetryHint::RetryAfter(Duration::from_millis(pushback_ms)),
    )
}

#[tokio::test]
async fn unavailable_is_retried_and_not_found_is_not() {
    // The first two calls the server sees answer UNAVAILABLE.
    let chaos = ChaosLayer::builder()
        .error(1.0, unavailable(30))
        .calls(0..2)
        .build()
        .unwrap();
    let (url, seen) = serve(chaos).await.unwrap();
    let (mut typed, pipeline) = typed_checks(Endpoint::from_shared(url).unwrap().connect_lazy());
    let started = tokio::time::Instant::now();
    let status = typed
        .ready()
        .await
        .unwrap()
        .call(WithDeadline::new(check(SERVICE)))
        .await
        .unwrap();
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    assert_eq!(pipeline.retry().unwrap().retries(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(60),
        "each pushback was honoured"
    );
    assert_eq!(seen.timeouts().len(), 3);

    let err = typed
        .ready()
        .await
        .unwrap()
        .call(WithDeadline::new(check("no.such.Service")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::Invalid));
    assert_eq!(pipeline.retry().unwrap().retries(), 2, "not retried");
}

#[tokio::test]
async fn the_channel_pipeline_sends_the_deadline_and_its_breaker_answers_unavailable() {
    let chaos = ChaosLayer::builder()
        .error(1.0, unavailable(30))
        .calls(1..4)
        .build()
        .unwrap();
    let (url, seen) = serve(chaos).await.unwrap();
    let (mut client, breaker) = channel_client(Endpoint::from_shared(url).unwrap().connect_lazy());

    // Served, with the request's deadline (2 s) as grpc-timeout.
    client.check(check(SERVICE)).await.unwrap();
    let timeout = seen.timeouts()[0].clone().expect("grpc-timeout sent");
    let millis: u64 = timeout.trim_end_matches('m').parse().unwrap();
    assert!((1_500..=2_000).contains(&millis), "{timeout}");

    // Three UNAVAILABLE answers open the breaker...
    for _ in 0..3 {
        let status = client.check(check(SERVICE)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
    }
    assert_eq!(breaker.state(), seawall::breaker::State::Open);
    // ...and the next call is refused without reaching the server: UNAVAILABLE, with the
    // time until the breaker's next probe as the pushback.
    let calls = seen.timeouts().len();
    let status = client.check(check(SERVICE)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    let pushback: u64 = status
        .metadata()
        .get("grpc-retry-pushback-ms")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2_000).contains(&pushback), "{pushback}");
    assert_eq!(seen.timeouts().len(), calls);
}
