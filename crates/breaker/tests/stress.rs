//! Many tasks on a multi-threaded runtime hammering one breaker whose dependency always
//! fails: no panics, consistent counts, and half-open never admits more probes than allowed.
//! The breaker is tripped first, and since every probe fails it never closes again: every
//! call that reaches the service from then on is a probe.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use seawall_breaker::{CircuitBreakerLayer, State};
use tower::{Layer, Service, ServiceExt, service_fn};

#[test]
fn half_open_never_admits_more_than_the_permitted_probes() {
    const PROBES: u16 = 3;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    let layer = CircuitBreakerLayer::builder()
        .consecutive_faults(5)
        .permitted_probes(PROBES)
        // Short real-time open periods so that many half-open rounds happen.
        .open_duration(Duration::from_micros(200))
        .max_open_duration(Duration::from_micros(200))
        .build()
        .unwrap();
    let breaker = layer.handle();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));

    let service = {
        let (in_flight, peak, calls) = (in_flight.clone(), peak.clone(), calls.clone());
        layer.layer(service_fn(move |_: u32| {
            let (in_flight, peak, calls) = (in_flight.clone(), peak.clone(), calls.clone());
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                }
                in_flight.fetch_sub(1, Ordering::SeqCst);
                Err::<(), _>(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
            }
        }))
    };

    let rejected = runtime.block_on(async {
        let mut first = service.clone();
        for i in 0..5 {
            let _ = first.ready().await.unwrap().call(i).await;
        }
        assert_eq!(breaker.state(), State::Open);
        calls.store(0, Ordering::SeqCst);
        peak.store(0, Ordering::SeqCst);

        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let mut service = service.clone();
                tokio::spawn(async move {
                    let mut rejected = 0usize;
                    for i in 0..2_000u32 {
                        let result = service.ready().await.unwrap().call(i).await;
                        let err = result.unwrap_err();
                        if seawall_classify::cause_ref::<seawall_breaker::error::BreakerOpen>(&err)
                            .is_some()
                        {
                            rejected += 1;
                        }
                    }
                    rejected
                })
            })
            .collect();
        let mut rejected = 0;
        for task in tasks {
            rejected += task.await.unwrap();
        }
        rejected
    });

    let calls = calls.load(Ordering::SeqCst);
    assert_eq!(
        calls + rejected,
        16_000,
        "every call either reached the service or was refused"
    );
    assert!(rejected > 0, "the breaker never refused a call");
    assert!(calls > 0, "no probe ever reached the service");
    assert!(breaker.transitions() >= 2, "the breaker never moved");
    let peak = peak.load(Ordering::SeqCst);
    assert!(
        peak <= PROBES as usize,
        "{peak} calls in flight while half-open, at most {PROBES} allowed"
    );
    assert_eq!(in_flight.load(Ordering::SeqCst), 0);
}
