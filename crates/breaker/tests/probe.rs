//! Active recovery probes, on paused time: the probe (not a user call) finds the dependency
//! back, within an interval; one probe in flight, never more often than the interval allows;
//! none once the breaker is closed; what they found is in the handle.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use seawall_breaker::{CircuitBreakerLayer, Probe, State};
use seawall_classify::FailureKind;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt, service_fn};

/// A dependency that is up or down, counting the user calls that reach it.
#[derive(Clone, Default)]
struct Dependency {
    up: Arc<AtomicBool>,
    calls: Arc<AtomicU32>,
}

impl Dependency {
    fn client(
        &self,
    ) -> impl Service<u32, Response = u32, Error = std::io::Error, Future: Send> + Clone + use<>
    {
        let dependency = self.clone();
        service_fn(move |x: u32| {
            let dependency = dependency.clone();
            async move {
                dependency.calls.fetch_add(1, Ordering::SeqCst);
                if dependency.up.load(Ordering::SeqCst) {
                    Ok(x)
                } else {
                    Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
                }
            }
        })
    }

    /// A probe of it that takes 5 ms, counting probes and the most ever in flight at once.
    fn probe(
        &self,
        probes: Arc<AtomicU32>,
        in_flight: Arc<AtomicU32>,
        most: Arc<AtomicU32>,
    ) -> Probe {
        let up = self.up.clone();
        Probe::new(move || {
            let (up, probes, in_flight, most) =
                (up.clone(), probes.clone(), in_flight.clone(), most.clone());
            async move {
                probes.fetch_add(1, Ordering::SeqCst);
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                if up.load(Ordering::SeqCst) {
                    Ok(())
                } else {
                    Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
                }
            }
        })
        .interval(Duration::from_millis(100))
        .timeout(Duration::from_millis(50))
    }
}

#[tokio::test(start_paused = true)]
async fn the_probe_finds_the_dependency_back_and_user_calls_never_probe() {
    let dependency = Dependency::default();
    let probes = Arc::<AtomicU32>::default();
    let in_flight = Arc::<AtomicU32>::default();
    let most = Arc::<AtomicU32>::default();
    let layer = CircuitBreakerLayer::builder()
        .name("db")
        .consecutive_faults(2)
        .open_duration(Duration::from_millis(500))
        .probe(dependency.probe(probes.clone(), in_flight.clone(), most.clone()))
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(dependency.client());
    for _ in 0..2 {
        let _ = service.ready().await.unwrap().call(1).await;
    }
    assert_eq!(handle.state(), State::Open);
    let reached = dependency.calls.load(Ordering::SeqCst);

    // Down for 10 s, past many open periods: every user call is refused without reaching the
    // dependency; only probes go out, one at a time, at most one per 75 ms.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let error = service.ready().await.unwrap().call(1).await.unwrap_err();
        assert_eq!(error.kind(), Some(FailureKind::Rejected));
        assert!(error.retry_after().unwrap() <= Duration::from_millis(100));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        dependency.calls.load(Ordering::SeqCst),
        reached,
        "no user call probed"
    );
    let sent = probes.load(Ordering::SeqCst);
    assert!(
        (95..=200).contains(&sent),
        "{sent} probes in 10 s at a 50-100 ms interval"
    );
    assert_eq!(
        most.load(Ordering::SeqCst),
        1,
        "one probe in flight at a time"
    );
    let stats = handle.probes().unwrap();
    assert_eq!(stats.succeeded, 0);
    assert_eq!(
        u64::from(sent),
        stats.failed + u64::from(in_flight.load(Ordering::SeqCst))
    );
    assert!(!stats.last.unwrap().ok);

    // Back: the next probe (within an interval and its 5 ms) ends the open period; the next
    // user call is the trial, and closes the breaker.
    dependency.up.store(true, Ordering::SeqCst);
    let back = Instant::now();
    while handle.state() == State::Open {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(
        back.elapsed() <= Duration::from_millis(106),
        "{:?}",
        back.elapsed()
    );
    assert_eq!(handle.state(), State::HalfOpen);
    assert!(handle.probes().unwrap().last.unwrap().ok);
    assert_eq!(service.ready().await.unwrap().call(7).await.unwrap(), 7);
    assert_eq!(handle.state(), State::Closed);

    // Closed: the prober stops.
    let after = probes.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        probes.load(Ordering::SeqCst),
        after,
        "no probe while closed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_trial_reopens_and_the_probe_keeps_watching() {
    let dependency = Dependency::default();
    let probes = Arc::<AtomicU32>::default();
    let layer = CircuitBreakerLayer::builder()
        .consecutive_faults(1)
        .probe(dependency.probe(probes.clone(), Arc::default(), Arc::default()))
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(dependency.client());
    let _ = service.ready().await.unwrap().call(1).await;
    assert_eq!(handle.state(), State::Open);
    // The probe sees it up, but it is down again by the time the trial runs.
    dependency.up.store(true, Ordering::SeqCst);
    while handle.state() == State::Open {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    dependency.up.store(false, Ordering::SeqCst);
    let _ = service.ready().await.unwrap().call(1).await;
    assert_eq!(handle.state(), State::Open, "the failed trial reopened it");
    let before = probes.load(Ordering::SeqCst);
    dependency.up.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        probes.load(Ordering::SeqCst) > before,
        "still probing after the reopen"
    );
    assert_eq!(handle.state(), State::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn a_hung_probe_is_bounded_by_its_timeout_and_holds_back_no_other() {
    let started = Arc::<AtomicU32>::default();
    let up = Arc::new(AtomicBool::new(false));
    let (counter, back) = (started.clone(), up.clone());
    let layer = CircuitBreakerLayer::builder()
        .consecutive_faults(1)
        .probe(
            Probe::new(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let back = back.load(Ordering::SeqCst);
                async move {
                    if !back {
                        std::future::pending::<()>().await;
                    }
                    Ok::<(), std::io::Error>(())
                }
            })
            .interval(Duration::from_millis(100))
            .timeout(Duration::from_millis(1_000)),
        )
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(service_fn(|_: u32| async {
        Err::<u32, _>(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
    }));
    let _ = service.ready().await.unwrap().call(1).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let stats = handle.probes().unwrap();
    // A probe starts every 75-100 ms although each hangs for its whole 1 s timeout, up to 2
    // out at once: about 2 a second (one probe alone would be one a second), of which all
    // but the 2 out have failed.
    let count = started.load(Ordering::SeqCst);
    assert!((7..=10).contains(&count), "{count} probes started");
    assert_eq!(u64::from(count) - stats.failed, 2, "{stats:?}");
    assert_eq!(stats.last.unwrap().took, Duration::from_millis(1_000));
    assert_eq!(handle.state(), State::Open);
    // The dependency is back: noticed when the older of the 2 out times out and the next
    // starts, within about half a timeout, not a whole one.
    up.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(handle.state(), State::HalfOpen);
}

#[test]
fn a_probe_too_frequent_or_without_a_timeout_is_refused_at_build() {
    let probe = || Probe::new(|| async { Ok::<(), std::io::Error>(()) });
    let error = CircuitBreakerLayer::builder()
        .probe(probe().interval(Duration::from_millis(10)))
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("probe.interval"), "{error}");
    let error = CircuitBreakerLayer::builder()
        .probe(probe().timeout(Duration::ZERO))
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("probe.timeout"), "{error}");
}

#[test]
fn without_a_runtime_the_timer_decides_as_before() {
    // Opened by a future polled outside any tokio runtime: no prober can start, so the open
    // period's timer decides, as without a probe (the refusal's retry-after is the timer's).
    let layer = CircuitBreakerLayer::builder()
        .consecutive_faults(1)
        .open_duration(Duration::from_secs(10))
        .probe(Probe::new(|| async { Ok::<(), std::io::Error>(()) }))
        .build()
        .unwrap();
    let handle = layer.handle();
    let service = layer.layer(service_fn(|_: u32| async {
        Err::<u32, _>(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
    }));
    let mut call = tokio_test::task::spawn(service.ready_oneshot());
    let mut service = match call.poll() {
        std::task::Poll::Ready(Ok(service)) => service,
        _ => panic!("ready at once"),
    };
    drop(call);
    let mut call = tokio_test::task::spawn(service.call(1));
    assert!(call.poll().is_ready());
    assert_eq!(handle.state(), State::Open);
    assert!(handle.retry_after().unwrap() > Duration::from_secs(9));
    assert_eq!(
        handle.probes().unwrap().succeeded + handle.probes().unwrap().failed,
        0
    );
}
