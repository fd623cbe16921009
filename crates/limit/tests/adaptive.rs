//! Adaptive limits find a dependency's capacity on their own, on paused time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use seawall_classify::{BoxError, Class, Error, FailureKind, RetryHint, WithDeadline};
use seawall_limit::adaptive::{Aimd, Gradient2, LimitAlgorithm, Sample};
use seawall_limit::{ConcurrencyLimitLayer, LimitHandle};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt, service_fn};

const CAPACITY: usize = 20;

/// A dependency with `CAPACITY` workers: beyond that, calls queue (service time grows with
/// the load) and, past twice the capacity, are refused as overloaded (53300-style).
#[derive(Clone)]
struct Dependency {
    in_flight: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    served: Arc<AtomicUsize>,
    refuse_past: usize,
}

impl Dependency {
    fn new(refuse_past: usize) -> Self {
        Dependency {
            in_flight: Arc::default(),
            refused: Arc::default(),
            served: Arc::default(),
            refuse_past,
        }
    }

    fn service(
        &self,
    ) -> impl Service<WithDeadline<u32>, Response = (), Error = BoxError, Future: Send> + Clone + use<>
    {
        let this = self.clone();
        service_fn(move |_: WithDeadline<u32>| {
            let this = this.clone();
            async move {
                let now = this.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                let result = if now > this.refuse_past {
                    this.refused.fetch_add(1, Ordering::SeqCst);
                    Err::<(), BoxError>(Box::new(Error::new(
                        Class::failure(FailureKind::Overloaded, RetryHint::Retry),
                        "too many connections",
                    )))
                } else {
                    let load = (now as f64 / CAPACITY as f64).max(1.0);
                    tokio::time::sleep(Duration::from_secs_f64(0.010 * load)).await;
                    this.served.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                };
                this.in_flight.fetch_sub(1, Ordering::SeqCst);
                result
            }
        })
    }
}

/// Runs 100 closed-loop callers for `seconds` through `layer` and returns the limit sampled
/// every 100 ms over the last half of the run.
async fn drive(layer: ConcurrencyLimitLayer, dependency: &Dependency, seconds: u64) -> Vec<usize> {
    let handle: LimitHandle = layer.handle();
    let service = layer.layer(dependency.service());
    let end = Instant::now() + Duration::from_secs(seconds);
    let callers: Vec<_> = (0..100)
        .map(|_| {
            let mut service = service.clone();
            tokio::spawn(async move {
                while Instant::now() < end {
                    if let Ok(ready) = service.ready().await {
                        let _ = ready.call(WithDeadline::new(0)).await;
                    }
                    // A moment between calls, so that paused time can move.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect();
    let mut limits = Vec::new();
    let start = Instant::now();
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if start.elapsed() > Duration::from_secs(seconds / 2) {
            limits.push(handle.limit());
        }
    }
    for caller in callers {
        caller.await.unwrap();
    }
    limits
}

fn layer(builder: seawall_limit::ConcurrencyLimitBuilder) -> ConcurrencyLimitLayer {
    builder.queue(0).max_wait(Duration::ZERO).build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn aimd_settles_near_the_capacity_and_spares_the_dependency() {
    let dependency = Dependency::new(CAPACITY);
    let aimd = Aimd::new(5, 1, 200).unwrap();
    let limits = drive(
        layer(ConcurrencyLimitLayer::builder(200).adaptive(aimd)),
        &dependency,
        20,
    )
    .await;
    let (low, high) = (*limits.iter().min().unwrap(), *limits.iter().max().unwrap());
    assert!(
        low >= CAPACITY / 2 && high <= CAPACITY + 3,
        "limit ranged {low}..={high}"
    );
    let rate = |d: &Dependency| {
        let refused = d.refused.load(Ordering::SeqCst) as f64;
        refused / (refused + d.served.load(Ordering::SeqCst) as f64)
    };
    // AIMD probes for capacity by design (each probe past it costs one refusal), so some
    // calls are refused; far fewer than with a fixed limit above the capacity.
    let adaptive_rate = rate(&dependency);
    let fixed = Dependency::new(CAPACITY);
    drive(layer(ConcurrencyLimitLayer::builder(200)), &fixed, 20).await;
    let fixed_rate = rate(&fixed);
    assert!(fixed_rate > 0.5, "{fixed_rate}");
    assert!(
        adaptive_rate < fixed_rate / 3.0,
        "{adaptive_rate} vs {fixed_rate}"
    );
}

#[tokio::test(start_paused = true)]
async fn gradient2_shrinks_the_limit_when_latency_rises_with_load() {
    // No refusals: only latency says the dependency is saturated.
    let dependency = Dependency::new(usize::MAX);
    let gradient = Gradient2::new(100, 5, 200).unwrap();
    let limits = drive(
        layer(ConcurrencyLimitLayer::builder(200).adaptive(gradient)),
        &dependency,
        30,
    )
    .await;
    let average = limits.iter().sum::<usize>() as f64 / limits.len() as f64;
    assert!(
        average < 3.0 * CAPACITY as f64,
        "the limit should approach the capacity ({CAPACITY}), averaged {average}"
    );
}

#[tokio::test(start_paused = true)]
async fn caller_errors_and_dropped_calls_do_not_move_the_limit() {
    let invalid = service_fn(|_: WithDeadline<u32>| async {
        Err::<(), BoxError>(Box::new(Error::new(
            Class::failure(FailureKind::Invalid, RetryHint::Never),
            "syntax error",
        )))
    });
    let layer = layer(ConcurrencyLimitLayer::builder(50).adaptive(Aimd::new(10, 1, 50).unwrap()));
    let handle = layer.handle();
    let mut service = layer.layer(invalid);
    for _ in 0..100 {
        let _ = service
            .ready()
            .await
            .unwrap()
            .call(WithDeadline::new(0))
            .await;
    }
    assert_eq!(
        handle.limit(),
        10,
        "caller errors say nothing about capacity"
    );

    let hanging = service_fn(|_: WithDeadline<u32>| std::future::pending::<Result<(), BoxError>>());
    let layer =
        self::layer(ConcurrencyLimitLayer::builder(50).adaptive(Aimd::new(10, 1, 50).unwrap()));
    let handle = layer.handle();
    let mut service = layer.layer(hanging);
    for _ in 0..100 {
        let call = service.ready().await.unwrap().call(WithDeadline::new(0));
        let _ = tokio::time::timeout(Duration::from_millis(1), call).await;
    }
    assert_eq!(
        handle.limit(),
        10,
        "calls dropped by their caller say nothing either"
    );
    assert_eq!(handle.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_shrinking_limit_retires_permits_as_they_come_back() {
    let (release, gate) = tokio::sync::watch::channel(false);
    let layer = layer(ConcurrencyLimitLayer::builder(50).adaptive(Aimd::new(10, 1, 50).unwrap()));
    let handle = layer.handle();
    let service = layer.layer(service_fn(move |fail: WithDeadline<bool>| {
        let mut gate = gate.clone();
        async move {
            let _ = gate.wait_for(|open| *open).await;
            if *fail.get_ref() {
                Err::<(), BoxError>(
                    std::io::Error::from(std::io::ErrorKind::ConnectionReset).into(),
                )
            } else {
                Ok(())
            }
        }
    }));
    // Ten calls hold all ten permits; all of them fail, so the limit shrinks while they are
    // still held.
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let mut service = service.clone();
            tokio::spawn(async move {
                service
                    .ready()
                    .await
                    .unwrap()
                    .call(WithDeadline::new(true))
                    .await
            })
        })
        .collect();
    tokio::task::yield_now().await;
    assert_eq!(handle.in_flight(), 10);
    release.send_replace(true);
    for call in calls {
        let _ = call.await.unwrap();
    }
    let limit = handle.limit();
    assert!(limit < 10, "ten faults shrink the limit: {limit}");
    assert_eq!(handle.in_flight(), 0);

    // Exactly `limit` calls fit now.
    release.send_replace(false);
    let mut held = Vec::new();
    for _ in 0..limit {
        let mut service = service.clone();
        held.push(tokio::spawn(async move {
            service
                .ready()
                .await
                .unwrap()
                .call(WithDeadline::new(false))
                .await
        }));
    }
    tokio::task::yield_now().await;
    assert_eq!(handle.in_flight(), limit);
    let mut extra = service.clone();
    let refused = extra
        .ready()
        .await
        .unwrap()
        .call(WithDeadline::new(false))
        .await;
    assert!(refused.is_err(), "the shrunk limit holds");
    release.send_replace(true);
    for call in held {
        call.await.unwrap().unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn the_handle_shows_the_algorithms_latency_inputs() {
    let layer =
        layer(ConcurrencyLimitLayer::builder(50).adaptive(Gradient2::new(10, 1, 50).unwrap()));
    let handle = layer.handle();
    let mut service = layer.layer(service_fn(|_: WithDeadline<u32>| async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok::<_, BoxError>(())
    }));
    for _ in 0..5 {
        service
            .ready()
            .await
            .unwrap()
            .call(WithDeadline::new(0))
            .await
            .unwrap();
    }
    let (short, long) = handle.rtt().expect("Gradient2 keeps its inputs");
    assert_eq!(short, Duration::from_millis(20));
    assert_eq!(long, Duration::from_millis(20));
    let fixed = ConcurrencyLimitLayer::builder(5).build().unwrap();
    assert_eq!(fixed.handle().rtt(), None);
}

/// A call through `service` that answers when told: `Ok` or a fault.
fn held(
    service: &(
         impl Service<
        WithDeadline<tokio::sync::oneshot::Receiver<bool>>,
        Response = (),
        Error = Error,
        Future: Send,
    > + Clone
         + Send
         + 'static
     ),
) -> (
    tokio::sync::oneshot::Sender<bool>,
    tokio::task::JoinHandle<Result<(), Error>>,
) {
    let (answer, told) = tokio::sync::oneshot::channel();
    let mut service = service.clone();
    let call = tokio::spawn(async move {
        service
            .ready()
            .await
            .unwrap()
            .call(WithDeadline::new(told))
            .await
    });
    (answer, call)
}

#[tokio::test(start_paused = true)]
async fn a_limit_that_went_down_and_back_up_is_a_new_generation() {
    let layer = layer(ConcurrencyLimitLayer::builder(100).adaptive(Aimd::new(10, 5, 100).unwrap()));
    let handle = layer.handle();
    let service = layer.layer(service_fn(
        |told: WithDeadline<tokio::sync::oneshot::Receiver<bool>>| async move {
            if told.into_inner().await.unwrap_or(true) {
                Err::<(), BoxError>(
                    std::io::Error::from(std::io::ErrorKind::ConnectionReset).into(),
                )
            } else {
                Ok(())
            }
        },
    ));
    // The first generation under 10: five calls held.
    let first: Vec<_> = (0..5).map(|_| held(&service)).collect();
    tokio::task::yield_now().await;
    // A fault of that generation: 10 -> 9.
    let (fail, call) = held(&service);
    fail.send(true).unwrap();
    let _ = call.await.unwrap();
    assert_eq!(handle.limit(), 9);
    // A success under 9, with the limit in use: 9 -> 10.
    let (succeed, call) = held(&service);
    succeed.send(false).unwrap();
    call.await.unwrap().unwrap();
    assert_eq!(handle.limit(), 10);
    // The first generation's faults were answered by the decrease already, though the limit
    // reads 10 again.
    for (fail, call) in first {
        fail.send(true).unwrap();
        let _ = call.await.unwrap();
        assert_eq!(
            handle.limit(),
            10,
            "a fault admitted under the first 10 moved the second"
        );
    }
}

/// An algorithm that raises the limit by one per sample; the first sample's update waits
/// (a bounded number of yields) for a second update to have run, as a thread preempted
/// between an update and applying its limit does.
#[derive(Debug, Default)]
struct Stepping {
    updates: AtomicUsize,
    second_done: std::sync::atomic::AtomicBool,
    /// The limit the latest update computed.
    last: Arc<AtomicUsize>,
}

impl LimitAlgorithm for Stepping {
    fn initial(&self) -> usize {
        5
    }

    fn update(&self, _: Sample) -> usize {
        let n = self.updates.fetch_add(1, Ordering::SeqCst) + 1;
        let limit = 5 + n;
        self.last.store(limit, Ordering::SeqCst);
        if n == 1 {
            for _ in 0..100_000 {
                if self.second_done.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::yield_now();
            }
            // The second has returned, and applied its limit meanwhile if it could.
            for _ in 0..1_000 {
                std::thread::yield_now();
            }
        } else {
            self.second_done.store(true, Ordering::SeqCst);
        }
        limit
    }

    fn bounds(&self) -> (usize, usize) {
        (1, 100)
    }
}

#[test]
fn limit_changes_are_applied_in_the_order_the_algorithm_made_them() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let algorithm = Stepping::default();
    let last = algorithm.last.clone();
    let layer = layer(ConcurrencyLimitLayer::builder(100).adaptive(algorithm));
    let handle = layer.handle();
    let service = layer.layer(service_fn(
        |told: WithDeadline<tokio::sync::oneshot::Receiver<()>>| async move {
            let _ = told.into_inner().await;
            Ok::<(), BoxError>(())
        },
    ));
    let (answers, calls): (Vec<_>, Vec<_>) = (0..2)
        .map(|_| {
            let (answer, told) = tokio::sync::oneshot::channel();
            let call = runtime.spawn(service.clone().oneshot(WithDeadline::new(told)));
            (answer, call)
        })
        .unzip();
    while handle.in_flight() < 2 {
        std::thread::yield_now();
    }
    // Both answered from outside the runtime: each call is woken through the runtime's
    // shared queue, so the two finish on the two worker threads at once.
    for answer in answers {
        answer.send(()).unwrap();
    }
    runtime.block_on(async {
        for call in calls {
            call.await.unwrap().unwrap();
        }
    });
    assert_eq!(last.load(Ordering::SeqCst), 7, "two updates");
    assert_eq!(
        handle.limit(),
        7,
        "the layer's limit is the algorithm's latest"
    );
    assert_eq!(handle.in_flight(), 0);
}
