//! The fault layer injects what it is told, at the rates it is told, repeatably.

use std::time::Duration;

use seawall_chaos::error::InjectedFault;
use seawall_chaos::{ChaosLayer, proxy::Delay};
use seawall_classify::{Class, FailureKind, RetryHint, cause_ref};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt, service_fn};

/// Runs `n` calls one after another (hung calls are given up after 1 s of paused time),
/// returning (errors, hung, delayed) as observed from outside.
async fn run_calls(layer: &ChaosLayer, n: u32) -> (u32, u32, u32) {
    let mut service = layer.layer(service_fn(
        |x: u32| async move { Ok::<_, std::io::Error>(x) },
    ));
    let (mut errors, mut hung, mut delayed) = (0, 0, 0);
    for i in 0..n {
        let start = Instant::now();
        let call = service.ready().await.unwrap().call(i);
        match tokio::time::timeout(Duration::from_secs(1), call).await {
            Err(_) => hung += 1,
            Ok(Err(err)) => {
                assert!(cause_ref::<InjectedFault>(&err).is_some());
                errors += 1;
            }
            Ok(Ok(x)) => {
                assert_eq!(x, i);
                if start.elapsed() > Duration::ZERO {
                    delayed += 1;
                }
            }
        }
    }
    (errors, hung, delayed)
}

fn unavailable() -> Class {
    Class::failure(FailureKind::Unavailable, RetryHint::Retry)
}

#[tokio::test(start_paused = true)]
async fn observed_rates_match_the_configuration_over_100_000_calls() {
    let layer = ChaosLayer::builder()
        .seed(42)
        .error(0.10, unavailable())
        .hang(0.02)
        .latency(0.25, Delay::fixed(Duration::from_millis(5)))
        .build()
        .unwrap();
    let n = 100_000;
    let (errors, hung, delayed) = run_calls(&layer, n).await;
    let rate = |count: u32| f64::from(count) / f64::from(n);
    // Within half a percentage point (the seed makes the run exact; the tolerance states how
    // close a seeded run is to the configuration).
    assert!(
        (rate(errors) - 0.10).abs() < 0.005,
        "error rate {}",
        rate(errors)
    );
    assert!(
        (rate(hung) - 0.02).abs() < 0.005,
        "hang rate {}",
        rate(hung)
    );
    // Latency applies to the calls that neither failed nor hung.
    let passed = n - errors - hung;
    let latency_rate = f64::from(delayed) / f64::from(passed);
    assert!(
        (latency_rate - 0.25).abs() < 0.005,
        "latency rate {latency_rate}"
    );
    let stats = layer.stats();
    assert_eq!(
        (stats.errors, stats.hangs, stats.delayed),
        (u64::from(errors), u64::from(hung), u64::from(delayed))
    );
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_injects_the_same_faults() {
    let run = |seed| async move {
        let layer = ChaosLayer::builder()
            .seed(seed)
            .error(0.3, unavailable())
            .build()
            .unwrap();
        let mut service = layer.layer(service_fn(
            |x: u32| async move { Ok::<_, std::io::Error>(x) },
        ));
        let mut failed = Vec::new();
        for i in 0..200 {
            failed.push(service.ready().await.unwrap().call(i).await.is_err());
        }
        failed
    };
    assert_eq!(run(1).await, run(1).await);
    assert_ne!(run(1).await, run(2).await);
}

#[tokio::test(start_paused = true)]
async fn injected_errors_carry_their_class() {
    let layer = ChaosLayer::builder()
        .error(1.0, unavailable())
        .build()
        .unwrap();
    let mut service = layer.layer(service_fn(
        |x: u32| async move { Ok::<_, std::io::Error>(x) },
    ));
    let err = service.ready().await.unwrap().call(1).await.unwrap_err();
    assert_eq!(err.class(), unavailable());
    assert_eq!(seawall_classify::known_class(&err), Some(unavailable()));
}

#[tokio::test(start_paused = true)]
async fn latency_delays_the_answer_by_exactly_the_delay() {
    let layer = ChaosLayer::builder()
        .latency(1.0, Delay::fixed(Duration::from_millis(250)))
        .build()
        .unwrap();
    let mut service = layer.layer(service_fn(
        |x: u32| async move { Ok::<_, std::io::Error>(x) },
    ));
    let start = Instant::now();
    service.ready().await.unwrap().call(1).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(250));
}

#[tokio::test(start_paused = true)]
async fn faults_stay_inside_their_window() {
    let by_time = ChaosLayer::builder()
        .error(1.0, unavailable())
        .during(Duration::from_secs(10)..Duration::from_secs(20))
        .build()
        .unwrap();
    let mut service = by_time.layer(service_fn(
        |x: u32| async move { Ok::<_, std::io::Error>(x) },
    ));
    assert!(service.ready().await.unwrap().call(1).await.is_ok());
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(service.ready().await.unwrap().call(2).await.is_err());
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(service.ready().await.unwrap().call(3).await.is_ok());

    let by_count = ChaosLayer::builder()
        .error(1.0, unavailable())
        .calls(2..4)
        .build()
        .unwrap();
    let mut service = by_count.layer(service_fn(
        |x: u32| async move { Ok::<_, std::io::Error>(x) },
    ));
    let mut outcomes = Vec::new();
    for i in 0..6 {
        outcomes.push(service.ready().await.unwrap().call(i).await.is_ok());
    }
    assert_eq!(outcomes, [true, true, false, false, true, true]);
}

#[test]
fn probabilities_outside_zero_to_one_are_errors() {
    assert_eq!(
        ChaosLayer::builder()
            .error(1.5, unavailable())
            .build()
            .unwrap_err()
            .field(),
        "error"
    );
    assert_eq!(
        ChaosLayer::builder()
            .latency(-0.1, Delay::default())
            .build()
            .unwrap_err()
            .field(),
        "latency"
    );
    assert_eq!(
        ChaosLayer::builder()
            .error(0.6, unavailable())
            .hang(0.6)
            .build()
            .unwrap_err()
            .field(),
        "hang"
    );
}
