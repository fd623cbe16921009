//! Defects found in review of the breaker, each pinned by the test that showed it: a panic
//! that leaks a probe slot, a recovery probe that dies, a just-closed breaker that re-trips on
//! faults from before it closed, a ticket used after the breaker moved on, a probe slot held
//! while the inner service is not ready.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall_breaker::error::BreakerOpen;
use seawall_breaker::{CircuitBreakerLayer, ConsecutiveFaults, Outcome, Probe, State, TripPolicy};
use seawall_classify::cause_ref;
use tokio::time::{Instant, advance};
use tokio_test::{assert_pending, assert_ready, task};
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_test::mock;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn refused() -> std::io::Error {
    std::io::Error::from(std::io::ErrorKind::ConnectionRefused)
}

/// One fault opens it for 100 ms, with one probe and no jitter.
fn quick() -> seawall_breaker::CircuitBreakerBuilder {
    CircuitBreakerLayer::builder()
        .name("dep")
        .consecutive_faults(1)
        .open_duration(ms(100))
        .jitter(0.0)
        .permitted_probes(1)
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_the_inner_call_does_not_wedge_a_half_open_breaker() {
    let layer = quick().build().unwrap();
    let breaker = layer.handle();
    let panics = Arc::new(AtomicBool::new(false));
    let up = Arc::new(AtomicBool::new(false));
    let mut service = layer.layer(service_fn({
        let (panics, up) = (panics.clone(), up.clone());
        move |_: u32| {
            assert!(!panics.load(Ordering::SeqCst), "the client's own bug");
            let up = up.load(Ordering::SeqCst);
            async move { if up { Ok(1) } else { Err(refused()) } }
        }
    }));
    let _ = service.ready().await.unwrap().call(1).await;
    assert_eq!(breaker.state(), State::Open);
    advance(ms(100)).await;
    // The probe's call panics inside `call`, before any future exists.
    panics.store(true, Ordering::SeqCst);
    service.ready().await.unwrap();
    let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| drop(service.call(2))));
    assert!(panicked.is_err());
    panics.store(false, Ordering::SeqCst);
    up.store(true, Ordering::SeqCst);
    // The slot came back: the next call is the probe, and its success closes the breaker.
    assert_eq!(service.ready().await.unwrap().call(3).await.unwrap(), 1);
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_probe_counts_as_failed_and_the_breaker_still_closes() {
    let checks = Arc::new(AtomicU32::new(0));
    let up = Arc::new(AtomicBool::new(false));
    let layer = quick()
        .probe(Probe::new({
            let (checks, up) = (checks.clone(), up.clone());
            move || {
                let n = checks.fetch_add(1, Ordering::SeqCst);
                let up = up.load(Ordering::SeqCst);
                async move {
                    // The user's check has an `unwrap()` that fails for the first few.
                    assert!(n >= 3, "probe {n} panics");
                    if up { Ok(()) } else { Err(refused()) }
                }
            }
        }))
        .build()
        .unwrap();
    let breaker = layer.handle();
    let mut service = layer.layer(service_fn({
        let up = up.clone();
        move |_: u32| {
            let up = up.load(Ordering::SeqCst);
            async move { if up { Ok(1) } else { Err(refused()) } }
        }
    }));
    let _ = service.ready().await.unwrap().call(1).await;
    assert_eq!(breaker.state(), State::Open);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        checks.load(Ordering::SeqCst) > 3,
        "probing went on after the panics"
    );
    assert!(
        breaker.probes().unwrap().failed >= 3,
        "a panic is a failed probe"
    );
    up.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        breaker.state(),
        State::HalfOpen,
        "a probe found the dependency back"
    );
    assert_eq!(service.ready().await.unwrap().call(2).await.unwrap(), 1);
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn a_breaker_that_outlives_its_runtime_gets_a_new_prober() {
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    };
    let up = Arc::new(AtomicBool::new(false));
    let probe = Probe::new({
        let up = up.clone();
        move || {
            let up = up.load(Ordering::SeqCst);
            async move { if up { Ok(()) } else { Err(refused()) } }
        }
    });
    let first = runtime();
    let (breaker, mut service) = first.block_on(async {
        let layer = quick().probe(probe).build().unwrap();
        let mut service = layer.layer(service_fn(|_: u32| async { Err::<u32, _>(refused()) }));
        let _ = service.ready().await.unwrap().call(1).await;
        (layer.handle(), service)
    });
    assert_eq!(breaker.state(), State::Open);
    // Setup code's runtime ends, and the prober task with it.
    drop(first);
    up.store(true, Ordering::SeqCst);
    runtime().block_on(async {
        // A call in the new runtime sees no prober, and starts one.
        let err = service.ready().await.unwrap().call(2).await.unwrap_err();
        assert!(cause_ref::<BreakerOpen>(&err).is_some());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            breaker.state(),
            State::HalfOpen,
            "the new prober found it back"
        );
    });
}

/// A trip policy whose `reset` first runs a hook, as a call that lands in the moment between
/// the breaker's closing and its policy's reset would.
struct Gap {
    inner: ConsecutiveFaults,
    hook: Hook,
}

impl std::fmt::Debug for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gap").finish_non_exhaustive()
    }
}

impl TripPolicy for Gap {
    fn record(&self, outcome: Outcome, now: Instant) -> bool {
        self.inner.record(outcome, now)
    }
    fn reset(&self, now: Instant) {
        let hook = self.hook.lock().unwrap().take();
        if let Some(mut hook) = hook {
            hook();
        }
        self.inner.reset(now);
    }
    fn needs_clock(&self) -> bool {
        false
    }
}

type Hook = Arc<Mutex<Option<Box<dyn FnMut() + Send>>>>;

/// A breaker opening on two faults in a row, whose policy runs `hook` when reset, over a
/// client that fails while `up` is false; and a call that fails through it.
fn gapped(
    up: &Arc<AtomicBool>,
) -> (
    impl Service<u32, Response = u32, Error = seawall_classify::Error, Future: Send>
    + Clone
    + Send
    + 'static,
    seawall_breaker::BreakerHandle,
    Hook,
) {
    let hook: Hook = Arc::new(Mutex::new(None));
    let layer = quick()
        .build_with_policy(Gap {
            inner: ConsecutiveFaults::new(2),
            hook: hook.clone(),
        })
        .unwrap();
    let handle = layer.handle();
    let up = up.clone();
    let service = layer.layer(service_fn(move |_: u32| {
        let up = up.load(Ordering::SeqCst);
        async move { if up { Ok(1) } else { Err(refused()) } }
    }));
    (service, handle, hook)
}

/// What a call made in the gap does: a fault, if the breaker admits it.
fn fault_in_the_gap(
    service: impl Service<u32, Response = u32, Error = seawall_classify::Error> + Send + 'static,
    up: Arc<AtomicBool>,
) -> Box<dyn FnMut() + Send> {
    let mut service = Some(service);
    Box::new(move || {
        let mut service = service.take().unwrap();
        up.store(false, Ordering::SeqCst);
        let mut ready = task::spawn(service.ready());
        let _ = assert_ready!(ready.poll());
        drop(ready);
        let mut call = task::spawn(service.call(9));
        let _ = assert_ready!(call.poll());
    })
}

#[tokio::test(start_paused = true)]
async fn a_just_closed_breaker_does_not_retrip_on_faults_from_before() {
    let up = Arc::new(AtomicBool::new(false));
    let (mut service, breaker, hook) = gapped(&up);
    for _ in 0..2 {
        let _ = service.ready().await.unwrap().call(1).await;
    }
    assert_eq!(breaker.state(), State::Open);
    advance(ms(100)).await;
    *hook.lock().unwrap() = Some(fault_in_the_gap(service.clone(), up.clone()));
    up.store(true, Ordering::SeqCst);
    // The probe succeeds and closes the breaker; one fault after closing is one in a row.
    assert_eq!(service.ready().await.unwrap().call(2).await.unwrap(), 1);
    assert_eq!(
        breaker.state(),
        State::Closed,
        "re-tripped on the faults before it closed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_breaker_forced_closed_does_not_retrip_on_faults_from_before() {
    let up = Arc::new(AtomicBool::new(false));
    let (mut service, breaker, hook) = gapped(&up);
    for _ in 0..2 {
        let _ = service.ready().await.unwrap().call(1).await;
    }
    assert_eq!(breaker.state(), State::Open);
    *hook.lock().unwrap() = Some(fault_in_the_gap(service.clone(), up.clone()));
    breaker.force_closed();
    assert_eq!(
        breaker.state(),
        State::Closed,
        "re-tripped on the faults before it closed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_closed_ticket_kept_while_the_inner_is_not_ready_is_not_used_after_the_breaker_opened() {
    let (inner, mut handle) = mock::pair::<u32, u32>();
    let layer = quick().build().unwrap();
    let breaker = layer.handle();
    let mut service = layer.layer(inner);
    handle.allow(0);
    {
        let mut ready = task::spawn(service.ready());
        assert_pending!(ready.poll(), "admitted, waiting for the inner service");
    }
    breaker.force_open();
    handle.allow(1);
    service.ready().await.unwrap();
    let mut call = task::spawn(service.call(1));
    let std::task::Poll::Ready(result) = call.poll() else {
        panic!("admitted after the breaker opened: the call waits at the dependency");
    };
    let err = result.unwrap_err();
    assert!(cause_ref::<BreakerOpen>(&err).is_some(), "{err:?}");
    assert!(
        !matches!(handle.poll_request(), std::task::Poll::Ready(Some(_))),
        "the call never reached the dependency"
    );
}

#[tokio::test(start_paused = true)]
async fn a_probe_slot_is_not_held_while_the_inner_service_is_not_ready() {
    let layer = quick().build().unwrap();
    let breaker = layer.handle();
    let (stuck, mut stuck_handle) = mock::pair::<u32, u32>();
    stuck_handle.allow(0);
    let mut waiting = layer.layer(stuck);
    let mut working = layer.layer(service_fn(
        |x: u32| async move { Ok::<_, std::io::Error>(x) },
    ));
    breaker.force_open();
    breaker.reset();
    let mut failing = layer.layer(service_fn(|_: u32| async { Err::<u32, _>(refused()) }));
    let _ = failing.ready().await.unwrap().call(1).await;
    assert_eq!(breaker.state(), State::Open);
    advance(ms(100)).await;
    {
        let mut ready = task::spawn(waiting.ready());
        assert_pending!(
            ready.poll(),
            "took the probe slot, then waits for its inner service"
        );
    }
    // Another caller, whose service is ready, may probe meanwhile.
    assert_eq!(working.ready().await.unwrap().call(7).await.unwrap(), 7);
    assert_eq!(breaker.state(), State::Closed);
}
