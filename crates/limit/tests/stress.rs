//! Many tasks on a multi-threaded runtime: the limit holds and ends at zero.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use seawall_classify::WithDeadline;
use seawall_limit::ConcurrencyLimitLayer;
use tower::{Layer, Service, ServiceExt, service_fn};

#[test]
fn in_flight_never_exceeds_max_under_contention() {
    const MAX: usize = 8;
    const TASKS: usize = 4_000;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    let current = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));

    runtime.block_on(async {
        let layer = ConcurrencyLimitLayer::builder(MAX)
            .queue(TASKS)
            .max_wait(Duration::from_secs(3600))
            .build()
            .unwrap();
        let limits = layer.handle();
        let service = {
            let (current, peak) = (current.clone(), peak.clone());
            layer.layer(service_fn(move |req: WithDeadline<usize>| {
                let (current, peak) = (current.clone(), peak.clone());
                async move {
                    let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    // Hold the permit across a few scheduling points.
                    for _ in 0..(req.get_ref() % 5) {
                        tokio::task::yield_now().await;
                    }
                    current.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, std::io::Error>(*req.get_ref())
                }
            }))
        };

        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let mut service = service.clone();
                tokio::spawn(async move {
                    service
                        .ready()
                        .await
                        .unwrap()
                        .call(WithDeadline::new(i))
                        .await
                })
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.await.unwrap().unwrap(), i);
        }
        assert_eq!(limits.in_flight(), 0);
        assert_eq!(limits.queued(), 0);
        assert_eq!(limits.admitted(), TASKS as u64);
        assert_eq!(limits.rejected(), 0);
    });
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak <= MAX, "peak in flight {peak} > {MAX}");
    assert!(peak > 1, "the test never produced concurrency");
}

#[test]
fn an_adaptive_limit_holds_under_contention_while_it_moves() {
    const MAX: usize = 8;
    const TASKS: usize = 4_000;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    let current = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));

    runtime.block_on(async {
        let layer = ConcurrencyLimitLayer::builder(MAX)
            .queue(TASKS)
            .max_wait(Duration::from_secs(3600))
            .adaptive(seawall_limit::adaptive::Aimd::new(MAX, 1, MAX).unwrap())
            .build()
            .unwrap();
        let limits = layer.handle();
        let service = {
            let (current, peak) = (current.clone(), peak.clone());
            layer.layer(service_fn(move |req: WithDeadline<usize>| {
                let (current, peak) = (current.clone(), peak.clone());
                async move {
                    let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    for _ in 0..(req.get_ref() % 5) {
                        tokio::task::yield_now().await;
                    }
                    current.fetch_sub(1, Ordering::SeqCst);
                    // Every seventh call faults: the limit keeps moving down and up.
                    if req.get_ref().is_multiple_of(7) {
                        Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
                    } else {
                        Ok(*req.get_ref())
                    }
                }
            }))
        };
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let mut service = service.clone();
                tokio::spawn(async move {
                    service
                        .ready()
                        .await
                        .unwrap()
                        .call(WithDeadline::new(i))
                        .await
                })
            })
            .collect();
        let mut faults = 0;
        for task in tasks {
            if task.await.unwrap().is_err() {
                faults += 1;
            }
        }
        assert_eq!(faults, TASKS.div_ceil(7));
        assert_eq!(limits.in_flight(), 0);
        assert_eq!(limits.queued(), 0);
        assert!((1..=MAX).contains(&limits.limit()));
    });
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak <= MAX, "peak in flight {peak} > {MAX}");
}
