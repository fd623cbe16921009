//! AIMD finds a dependency's capacity from latency alone: latency is flat up to C calls in
//! flight and grows linearly beyond. Paused time; 200 closed-loop callers.
//!
//! Gradient2 does not settle in this set-up: under sustained overload its long-term average
//! catches up with the short-term one, the gradient returns to 1, and the queue allowance
//! keeps the limit growing (medians of 43, 46 and 200 for C = 4, 16 and 64). It shrinks on a
//! latency *rise*, which `adaptive.rs` tests; tuning it to settle is open work.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use seawall_classify::{BoxError, WithDeadline};
use seawall_limit::ConcurrencyLimitLayer;
use seawall_limit::adaptive::{Aimd, LimitAlgorithm};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt, service_fn};

const BASE: Duration = Duration::from_millis(10);

/// Runs the callers for `seconds` with the dependency's capacity `capacity(t)`, and returns
/// the limit sampled every 100 ms.
async fn run(
    algorithm: impl LimitAlgorithm,
    seconds: u64,
    capacity: impl Fn(Duration) -> usize + Send + Sync + 'static,
) -> Vec<(Duration, usize)> {
    let layer = ConcurrencyLimitLayer::builder(1)
        .queue(1_000)
        .max_wait(Duration::from_secs(60))
        .adaptive(algorithm)
        .build()
        .unwrap();
    let handle = layer.handle();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let capacity = Arc::new(capacity);
    let service = layer.layer(service_fn({
        let in_flight = in_flight.clone();
        move |_: WithDeadline<()>| {
            let (in_flight, capacity) = (in_flight.clone(), capacity.clone());
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                let c = capacity(start.elapsed()).max(1);
                let load = (now as f64 / c as f64).max(1.0);
                tokio::time::sleep(BASE.mul_f64(load)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, BoxError>(())
            }
        }
    }));
    let end = start + Duration::from_secs(seconds);
    let callers: Vec<_> = (0..200)
        .map(|_| {
            let mut service = service.clone();
            tokio::spawn(async move {
                while Instant::now() < end {
                    if let Ok(ready) = service.ready().await {
                        let _ = ready.call(WithDeadline::new(())).await;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect();
    let mut samples = Vec::new();
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
        samples.push((start.elapsed(), handle.limit()));
    }
    for caller in callers {
        caller.await.unwrap();
    }
    samples
}

fn median(samples: &[(Duration, usize)], from: u64, to: u64) -> usize {
    let mut limits: Vec<_> = samples
        .iter()
        .filter(|(t, _)| (Duration::from_secs(from)..Duration::from_secs(to)).contains(t))
        .map(|(_, l)| *l)
        .collect();
    limits.sort();
    limits[limits.len() / 2]
}

fn aimd() -> Aimd {
    // A call 1.5 x slower than unloaded counts as a drop.
    Aimd::new(20, 1, 200).unwrap().timeout(BASE.mul_f64(1.5))
}

#[tokio::test(start_paused = true)]
async fn aimd_settles_between_half_and_twice_the_capacity() {
    for c in [4usize, 16, 64] {
        let samples = run(aimd(), 20, move |_| c).await;
        let settled = median(&samples, 10, 20);
        assert!(
            settled >= c / 2 && settled <= 2 * c,
            "capacity {c}: settled at {settled}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn aimd_follows_the_capacity_down_and_back_up() {
    let capacity = |t: Duration| {
        if (20..40).contains(&t.as_secs()) {
            8
        } else {
            32
        }
    };
    let samples = run(aimd(), 60, capacity).await;
    let (before, during, after) = (
        median(&samples, 10, 20),
        median(&samples, 30, 40),
        median(&samples, 50, 60),
    );
    assert!((16..=64).contains(&before), "{before} at capacity 32");
    assert!((4..=16).contains(&during), "{during} at capacity 8");
    assert!((16..=64).contains(&after), "{after} back at capacity 32");
}
