//! AIMD and Gradient2 find a dependency's capacity from latency alone: latency is flat up to
//! C calls in flight and grows linearly beyond. Paused time; 200 closed-loop callers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use seawall_classify::{BoxError, WithDeadline};
use seawall_limit::ConcurrencyLimitLayer;
use seawall_limit::adaptive::{Aimd, Gradient2, LimitAlgorithm};
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
    simulate(algorithm, seconds, move |t, in_flight| {
        let c = capacity(t).max(1);
        BASE.mul_f64((in_flight as f64 / c as f64).max(1.0))
    })
    .await
}

/// Runs the callers for `seconds` against a dependency whose calls take
/// `latency(t, in flight)`, and returns the limit sampled every 100 ms.
async fn simulate(
    algorithm: impl LimitAlgorithm,
    seconds: u64,
    latency: impl Fn(Duration, usize) -> Duration + Send + Sync + 'static,
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
    let latency = Arc::new(latency);
    let service = layer.layer(service_fn({
        let in_flight = in_flight.clone();
        move |_: WithDeadline<()>| {
            let (in_flight, latency) = (in_flight.clone(), latency.clone());
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(latency(start.elapsed(), now)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, BoxError>(())
            }
        }
    }));
    drive(service, handle, start, seconds).await
}

/// 200 closed-loop callers through `service` for `seconds`; the limit every 100 ms.
async fn drive<S>(
    service: S,
    handle: seawall_limit::LimitHandle,
    start: Instant,
    seconds: u64,
) -> Vec<(Duration, usize)>
where
    S: Service<WithDeadline<()>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    S::Response: Send,
{
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

/// The capacity is 32, then 8 from 20 s to 40 s, then 32 again: the limit follows it within
/// C/2..2C each time.
async fn assert_follows(algorithm: impl LimitAlgorithm) {
    let capacity = |t: Duration| {
        if (20..40).contains(&t.as_secs()) {
            8
        } else {
            32
        }
    };
    let samples = run(algorithm, 60, capacity).await;
    let (before, during, after) = (
        median(&samples, 10, 20),
        median(&samples, 30, 40),
        median(&samples, 50, 60),
    );
    eprintln!("capacity 32, 8, 32: {before}, {during}, {after}");
    assert!((16..=64).contains(&before), "{before} at capacity 32");
    assert!((4..=16).contains(&during), "{during} at capacity 8");
    assert!((16..=64).contains(&after), "{after} back at capacity 32");
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
        eprintln!("capacity {c}: settled at {settled}");
        assert!(
            settled >= c / 2 && settled <= 2 * c,
            "capacity {c}: settled at {settled}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn aimd_follows_the_capacity_down_and_back_up() {
    assert_follows(aimd()).await;
}

fn gradient2() -> Gradient2 {
    // Started low, as its docs advise: it learns the unloaded latency from calls made below
    // the capacity.
    Gradient2::new(4, 1, 200).unwrap()
}

#[tokio::test(start_paused = true)]
async fn gradient2_settles_between_half_and_twice_the_capacity() {
    for c in [4usize, 16, 64] {
        let samples = run(gradient2(), 20, move |_| c).await;
        let settled = median(&samples, 10, 20);
        eprintln!("capacity {c}: settled at {settled}");
        assert!(
            settled >= c / 2 && settled <= 2 * c,
            "capacity {c}: settled at {settled}"
        );
        let most = samples.iter().map(|(_, l)| *l).max().unwrap();
        assert!(most <= 200, "{most} above max");
    }
}

#[tokio::test(start_paused = true)]
async fn gradient2_follows_the_capacity_down_and_back_up() {
    assert_follows(gradient2()).await;
}

#[tokio::test(start_paused = true)]
async fn gradient2_learns_a_dependency_that_became_slower_for_good() {
    // Capacity 16 throughout, but from 20 s on every call takes three times as long even
    // unloaded: the limit may dip, but comes back between C/2 and 2C.
    let samples = simulate(gradient2(), 60, |t, in_flight| {
        let base = if t >= Duration::from_secs(20) {
            BASE * 3
        } else {
            BASE
        };
        base.mul_f64((in_flight as f64 / 16.0).max(1.0))
    })
    .await;
    let after = median(&samples, 45, 60);
    eprintln!("capacity 16, three times slower: settled at {after}");
    assert!(
        (8..=32).contains(&after),
        "settled at {after} after the slowdown"
    );
}

#[tokio::test(start_paused = true)]
async fn gradient2_started_above_the_capacity_probes_its_way_down() {
    // Every call it sees at first is queued: only its probes (half the limit for a round
    // trip) show it a lower latency.
    for (initial, c) in [(20usize, 4usize), (200, 16)] {
        let samples = run(Gradient2::new(initial, 1, 200).unwrap(), 40, move |_| c).await;
        let settled = median(&samples, 20, 40);
        eprintln!("capacity {c}, started at {initial}: settled at {settled}");
        assert!(
            settled >= c / 2 && settled <= 2 * c,
            "capacity {c}, started at {initial}: settled at {settled}"
        );
    }
}
