//! Behaviour of the concurrency limit on paused time, through tower-test mocks.

use std::time::Duration;

use seawall_classify::{Error, FailureKind, Policy, WithDeadline, cause_ref};
use seawall_limit::{
    ConcurrencyLimit, ConcurrencyLimitLayer, LimitHandle,
    error::{LimitReached, Reason},
};
use tokio::time::{Instant, advance};
use tokio_test::{assert_pending, assert_ready, assert_ready_ok, task};
use tower::{Layer, Service, ServiceExt};
use tower_test::mock;

type Req = WithDeadline<u32>;
type Mock = mock::Mock<Req, u32>;
type Handle = mock::Handle<Req, u32>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn limit(
    max: usize,
    queue: usize,
    max_wait_ms: u64,
) -> (ConcurrencyLimit<Mock>, Handle, LimitHandle) {
    let (service, handle) = mock::pair::<Req, u32>();
    let layer = ConcurrencyLimitLayer::builder(max)
        .queue(queue)
        .max_wait(ms(max_wait_ms))
        .build()
        .unwrap();
    let limits = layer.handle();
    (layer.layer(service), handle, limits)
}

fn overloaded_reason(err: &Error) -> Option<Reason> {
    cause_ref::<LimitReached>(err).map(LimitReached::reason)
}

#[tokio::test(start_paused = true)]
async fn calls_within_the_limit_go_straight_through() {
    let (mut service, mut handle, limits) = limit(2, 0, 100);
    handle.allow(2);
    let a = service.ready().await.unwrap().call(WithDeadline::new(1));
    let b = service.ready().await.unwrap().call(WithDeadline::new(2));
    assert_eq!(limits.in_flight(), 2);
    for _ in 0..2 {
        let (request, respond) = handle.next_request().await.unwrap();
        respond.send_response(*request.get_ref() * 10);
    }
    assert_eq!(a.await.unwrap(), 10);
    assert_eq!(b.await.unwrap(), 20);
    assert_eq!(limits.in_flight(), 0);
    assert_eq!(limits.admitted(), 2);
}

#[tokio::test(start_paused = true)]
async fn queued_calls_are_admitted_in_fifo_order() {
    let (mut service, mut handle, limits) = limit(1, 3, 1_000);
    handle.allow(10);

    let first = task::spawn(service.ready().await.unwrap().call(WithDeadline::new(0)));
    let mut queued: Vec<_> = (1..=3)
        .map(|i| task::spawn(service.call(WithDeadline::new(i))))
        .collect();
    for call in &mut queued {
        assert_pending!(call.poll());
    }
    assert_eq!(limits.queued(), 3);

    let (request, respond) = handle.next_request().await.unwrap();
    assert_eq!(*request.get_ref(), 0);
    respond.send_response(0);
    assert_eq!(first.await.unwrap(), 0);

    for (expected, call) in (1..=3).zip(queued.iter_mut()) {
        assert_pending!(call.poll());
        let (request, respond) = handle.next_request().await.unwrap();
        assert_eq!(*request.get_ref(), expected, "FIFO order");
        respond.send_response(expected);
        assert_eq!(assert_ready_ok!(call.poll()), expected);
    }
    assert_eq!(limits.queued(), 0);
    assert_eq!(limits.admitted(), 4);
}

#[tokio::test(start_paused = true)]
async fn fifo_holds_whatever_order_waiters_are_polled_in() {
    let (mut service, mut handle, _) = limit(1, 3, 1_000);
    handle.allow(10);
    let first = task::spawn(service.ready().await.unwrap().call(WithDeadline::new(0)));
    let mut queued: Vec<_> = (1..=3)
        .map(|i| task::spawn(service.call(WithDeadline::new(i))))
        .collect();
    for call in queued.iter_mut().rev() {
        assert_pending!(call.poll());
    }
    handle.next_request().await.unwrap().1.send_response(0);
    first.await.unwrap();
    // Poll the last waiter first: it must still wait behind the others.
    for call in queued.iter_mut().rev() {
        let _ = call.poll();
    }
    let (request, _respond) = handle.next_request().await.unwrap();
    assert_eq!(*request.get_ref(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_refuses_at_once() {
    let (mut service, mut handle, limits) = limit(1, 2, 1_000);
    handle.allow(10);
    let _running = service.ready().await.unwrap().call(WithDeadline::new(0));
    let mut waiting: Vec<_> = (1..=2)
        .map(|i| task::spawn(service.call(WithDeadline::new(i))))
        .collect();
    for call in &mut waiting {
        assert_pending!(call.poll());
    }
    let mut refused = task::spawn(service.ready().await.unwrap().call(WithDeadline::new(3)));
    let err = assert_ready!(refused.poll()).unwrap_err();
    assert_eq!(overloaded_reason(&err), Some(Reason::QueueFull));
    assert_eq!(err.kind(), Some(seawall_classify::FailureKind::Rejected));
    assert!(
        !err.class().is_retryable(),
        "a local refusal is never retried"
    );
    assert!(
        err.retry_after().is_some(),
        "but the caller is told when to come back"
    );
    assert!(
        !err.class().is_fault(),
        "a local rejection is not the dependency's fault"
    );
    assert_eq!(limits.rejected(), 1);
    assert_eq!(limits.queued(), 2);
}

#[tokio::test(start_paused = true)]
async fn queue_zero_refuses_beyond_the_limit() {
    let (mut service, mut handle, _) = limit(1, 0, 1);
    handle.allow(10);
    let _running = service.ready().await.unwrap().call(WithDeadline::new(0));
    let err = service
        .ready()
        .await
        .unwrap()
        .call(WithDeadline::new(1))
        .await
        .unwrap_err();
    assert_eq!(overloaded_reason(&err), Some(Reason::QueueFull));
}

#[tokio::test(start_paused = true)]
async fn a_queued_call_waits_exactly_max_wait() {
    let (mut service, mut handle, limits) = limit(1, 4, 200);
    handle.allow(10);
    let _running = service.ready().await.unwrap().call(WithDeadline::new(0));
    let mut waiting = task::spawn(service.call(WithDeadline::new(1)));
    assert_pending!(waiting.poll());
    advance(ms(199)).await;
    assert_pending!(waiting.poll());
    advance(ms(1)).await;
    let err = assert_ready!(waiting.poll()).unwrap_err();
    assert_eq!(
        overloaded_reason(&err),
        Some(Reason::WaitedTooLong(ms(200)))
    );
    assert_eq!(limits.queued(), 0);
    assert_eq!(limits.rejected(), 1);
}

/// A call whose deadline comes before its permit is refused then, as a local refusal: it never
/// reached the dependency, so a breaker outside must not count it as the dependency's timeout.
#[tokio::test(start_paused = true)]
async fn no_call_waits_past_its_deadline_and_its_refusal_is_not_a_fault() {
    let (mut service, mut handle, limits) = limit(1, 4, 1_000);
    handle.allow(10);
    let _running = service.ready().await.unwrap().call(WithDeadline::new(0));
    let mut waiting = task::spawn(service.call(WithDeadline::new(1).deadline_in(ms(50))));
    assert_pending!(waiting.poll());
    advance(ms(49)).await;
    assert_pending!(waiting.poll());
    advance(ms(1)).await;
    let err = assert_ready!(waiting.poll()).unwrap_err();
    assert_eq!(overloaded_reason(&err), Some(Reason::Deadline(ms(50))));
    assert_eq!(err.kind(), Some(FailureKind::Rejected));
    assert!(!Policy::STANDARD.is_fault(err.class()));
    assert_eq!(limits.queued(), 0);
    assert_eq!(limits.rejected(), 1);

    // A deadline already gone is refused without queueing.
    let expired = WithDeadline::new(2).deadline_at(Instant::now());
    let err = service.call(expired).await.unwrap_err();
    assert_eq!(
        overloaded_reason(&err),
        Some(Reason::Deadline(Duration::ZERO))
    );
    assert_eq!(limits.rejected(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_permit_freed_during_the_wait_admits_the_waiter() {
    let (mut service, mut handle, limits) = limit(1, 4, 200);
    handle.allow(10);
    let running = task::spawn(service.ready().await.unwrap().call(WithDeadline::new(0)));
    let mut waiting = task::spawn(service.call(WithDeadline::new(1)));
    assert_pending!(waiting.poll());
    let (_, respond) = handle.next_request().await.unwrap();
    advance(ms(120)).await;
    respond.send_response(0);
    running.await.unwrap();
    assert_pending!(waiting.poll());
    let (request, respond) = handle.next_request().await.unwrap();
    assert_eq!(*request.get_ref(), 1);
    respond.send_response(1);
    assert_eq!(assert_ready_ok!(waiting.poll()), 1);
    assert_eq!(limits.total_queue_wait(), ms(120));
}

#[tokio::test(start_paused = true)]
async fn dropping_futures_releases_permits_and_queue_places() {
    let (mut service, mut handle, limits) = limit(1, 4, 1_000);
    handle.allow(10);
    let running = service.ready().await.unwrap().call(WithDeadline::new(0));
    let mut waiting = task::spawn(service.call(WithDeadline::new(1)));
    assert_pending!(waiting.poll());
    assert_eq!((limits.in_flight(), limits.queued()), (1, 1));
    drop(waiting);
    assert_eq!(limits.queued(), 0);
    drop(running);
    assert_eq!(limits.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_clone_never_inherits_a_reserved_permit() {
    let (mut service, mut handle, limits) = limit(1, 0, 1);
    handle.allow(10);
    service.ready().await.unwrap();
    assert_eq!(limits.in_flight(), 1, "poll_ready reserved the only permit");
    let mut clone = service.clone();
    let err = clone
        .ready()
        .await
        .unwrap()
        .call(WithDeadline::new(1))
        .await
        .unwrap_err();
    assert_eq!(overloaded_reason(&err), Some(Reason::QueueFull));
    drop(service);
    assert_eq!(
        limits.in_flight(),
        0,
        "dropping the service frees its reservation"
    );
}

#[tokio::test(start_paused = true)]
async fn every_service_built_by_one_layer_shares_the_limit() {
    let layer = ConcurrencyLimitLayer::builder(1).queue(0).build().unwrap();
    let (a, mut handle_a) = mock::pair::<Req, u32>();
    let (b, mut handle_b) = mock::pair::<Req, u32>();
    handle_a.allow(1);
    handle_b.allow(1);
    let mut a = layer.layer(a);
    let mut b = layer.layer(b);
    let _running = a.ready().await.unwrap().call(WithDeadline::new(0));
    let err = b
        .ready()
        .await
        .unwrap()
        .call(WithDeadline::new(1))
        .await
        .unwrap_err();
    assert!(overloaded_reason(&err).is_some());
}

#[test]
fn impossible_configurations_are_errors() {
    let err = ConcurrencyLimitLayer::builder(0).build().unwrap_err();
    assert_eq!(err.field(), "max");
    let err = ConcurrencyLimitLayer::builder(1)
        .queue(5)
        .max_wait(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "max_wait");
    let err = ConcurrencyLimitLayer::builder(1)
        .max_wait(Duration::from_secs(7200))
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "max_wait");
    let err = ConcurrencyLimitLayer::builder(1)
        .queue(usize::MAX)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "queue");
    assert!(
        ConcurrencyLimitLayer::builder(1)
            .queue(0)
            .max_wait(Duration::ZERO)
            .build()
            .is_ok()
    );
}

/// A limit of one, with a queue of `queue`, in front of a service that takes 100 ms a call and
/// counts its calls; five calls that waited in line have taught the queue its pace (a place
/// every 100 ms).
async fn paced_limit(
    queue: usize,
) -> (
    impl Service<Req, Response = (), Error = Error, Future: Send> + Clone + Send + 'static,
    LimitHandle,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let service = tower::service_fn(move |_: Req| {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async {
            tokio::time::sleep(ms(100)).await;
            Ok::<_, std::io::Error>(())
        }
    });
    let layer = ConcurrencyLimitLayer::builder(1)
        .queue(queue)
        .max_wait(Duration::from_secs(60))
        .build()
        .unwrap();
    let handle = layer.handle();
    let service = layer.layer(service);
    let mut taught = Vec::new();
    for _ in 0..5 {
        taught.push(tokio::spawn(service.clone().oneshot(in_time(ms(2_000)))));
        tokio::task::yield_now().await;
    }
    for call in taught {
        call.await.unwrap().unwrap();
    }
    (service, handle, calls)
}

/// A request with `left` until its deadline.
fn in_time(left: Duration) -> Req {
    WithDeadline::new(0_u32).deadline_in(left)
}

/// A queue that drains one call per 100 ms refuses at once a call it would answer after its
/// deadline, and keeps one it can answer in time; the pace is learnt from the calls it
/// admitted.
#[tokio::test(start_paused = true)]
async fn a_call_the_queue_cannot_answer_in_time_is_refused_at_once() {
    let (service, handle, _) = paced_limit(1_000).await;
    let mut calls = Vec::new();
    // Twenty more in line, then one with 0.4 s left: at place 20 it would get its permit in
    // about 2 s (0.5 s even at four times the pace), so it is refused at once; one with 3 s
    // left waits and is answered in time.
    for _ in 0..20 {
        calls.push(tokio::spawn(service.clone().oneshot(in_time(ms(10_000)))));
    }
    tokio::task::yield_now().await;
    assert_eq!(handle.queued(), 19);
    let started = Instant::now();
    let refused = service.clone().oneshot(in_time(ms(400))).await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::ZERO, "refused without waiting");
    assert!(
        matches!(overloaded_reason(&refused), Some(Reason::TooLate(expected)) if expected >= ms(2_000)),
        "{refused}"
    );
    let served = service.clone().oneshot(in_time(ms(3_000))).await;
    assert!(served.is_ok(), "{served:?}");
    assert!(started.elapsed() <= ms(3_000));
    for call in calls {
        call.await.unwrap().unwrap();
    }
}

/// A call whose permit comes with less time left than a call takes at the recent pace is
/// refused then and never reaches the service: the dependency does no work whose answer
/// would come after the caller has given up.
#[tokio::test(start_paused = true)]
async fn a_permit_too_late_for_a_whole_call_goes_to_the_next_in_line() {
    let (service, _, calls) = paced_limit(100).await;
    let before = calls.load(std::sync::atomic::Ordering::Relaxed);
    // One call holds the permit for 100 ms; the next has 160 ms left: admitted to the queue
    // (it might have made it), but at its turn 60 ms are left for a 100 ms call.
    let holder = tokio::spawn(service.clone().oneshot(in_time(ms(10_000))));
    tokio::task::yield_now().await;
    let started = Instant::now();
    let refused = service.clone().oneshot(in_time(ms(160))).await.unwrap_err();
    assert_eq!(started.elapsed(), ms(100), "refused when its turn came");
    assert!(
        matches!(overloaded_reason(&refused), Some(Reason::TooLate(_))),
        "{refused}"
    );
    holder.await.unwrap().unwrap();
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::Relaxed),
        before + 1,
        "only the holder reached the service"
    );
}

#[tokio::test(start_paused = true)]
async fn a_newcomer_never_takes_a_permit_given_back_to_a_queued_call() {
    // A fixed limit keeps its free permits spare and gives one to the queue only when a
    // call waits there: the permit `first` gives back goes to `queued`, not to `newcomer`,
    // although `newcomer` asks for one before `queued` is polled again.
    let (mut service, mut handle, limits) = limit(1, 4, 1_000);
    handle.allow(10);
    let first = task::spawn(service.ready().await.unwrap().call(WithDeadline::new(0)));
    let mut queued = task::spawn(service.ready().await.unwrap().call(WithDeadline::new(1)));
    assert_pending!(queued.poll());
    handle.next_request().await.unwrap().1.send_response(0);
    assert_eq!(first.await.unwrap(), 0);

    let mut newcomer = task::spawn(service.ready().await.unwrap().call(WithDeadline::new(2)));
    assert_pending!(newcomer.poll());
    assert_eq!(
        limits.queued(),
        1,
        "the permit went to the waiting call, which left the queue; the newcomer queues"
    );
    assert_eq!(limits.in_flight(), 1, "the permit is the waiting call's");
    assert_pending!(queued.poll());
    let (request, respond) = handle.next_request().await.unwrap();
    assert_eq!(*request.get_ref(), 1, "the queued call goes first");
    respond.send_response(1);
    assert_eq!(assert_ready_ok!(queued.poll()), 1);

    assert_pending!(newcomer.poll());
    let (request, respond) = handle.next_request().await.unwrap();
    assert_eq!(*request.get_ref(), 2);
    respond.send_response(2);
    assert_eq!(assert_ready_ok!(newcomer.poll()), 2);
    assert_eq!(limits.in_flight(), 0);
    assert_eq!(limits.queued(), 0);
}

#[tokio::test(start_paused = true)]
async fn after_the_queue_drains_calls_within_the_limit_go_straight_through_again() {
    let (mut service, mut handle, limits) = limit(2, 4, 1_000);
    handle.allow(20);
    // Fill the limit and queue two calls behind it.
    let running: Vec<_> = (0..2)
        .map(|i| task::spawn(service.call_ready_now(i)))
        .collect();
    let mut queued: Vec<_> = (2..4)
        .map(|i| task::spawn(service.call_ready_now(i)))
        .collect();
    for call in &mut queued {
        assert_pending!(call.poll());
    }
    assert_eq!(limits.queued(), 2);
    for _ in 0..2 {
        handle.next_request().await.unwrap().1.send_response(0);
    }
    for call in running {
        call.await.unwrap();
    }
    for call in &mut queued {
        assert_pending!(call.poll());
    }
    for _ in 0..2 {
        handle.next_request().await.unwrap().1.send_response(0);
    }
    for call in &mut queued {
        assert_ready_ok!(call.poll());
    }
    assert_eq!((limits.in_flight(), limits.queued()), (0, 0));

    // Every permit is free again, wherever it went while calls queued.
    let again: Vec<_> = (4..6)
        .map(|i| task::spawn(service.call_ready_now(i)))
        .collect();
    assert_eq!(limits.in_flight(), 2);
    assert_eq!(limits.queued(), 0, "neither call queued");
    for _ in 0..2 {
        handle.next_request().await.unwrap().1.send_response(0);
    }
    for call in again {
        call.await.unwrap();
    }
    assert_eq!(limits.in_flight(), 0);
}

/// `ready` then `call`, for a test that drives the future itself.
trait CallReadyNow {
    fn call_ready_now(&mut self, i: u32) -> <ConcurrencyLimit<Mock> as Service<Req>>::Future;
}

impl CallReadyNow for ConcurrencyLimit<Mock> {
    fn call_ready_now(&mut self, i: u32) -> <ConcurrencyLimit<Mock> as Service<Req>>::Future {
        let mut ready = task::spawn(self.ready());
        assert_ready!(ready.poll()).unwrap();
        drop(ready);
        self.call(WithDeadline::new(i))
    }
}

/// A client whose call takes the request's value in milliseconds, or fails with a timeout
/// at the request's deadline if that comes first (as an attempt timeout inside the limit
/// ends a call at the deadline).
fn timed_out_at_the_deadline()
-> impl Service<Req, Response = u32, Error = Error, Future: Send> + Clone {
    tower::service_fn(move |request: Req| async move {
        use seawall_classify::HasDeadline;
        let done = Instant::now() + ms(u64::from(*request.get_ref()));
        match request.deadline() {
            Some(deadline) if deadline < done => {
                tokio::time::sleep_until(deadline).await;
                Err(Error::new(
                    seawall_classify::Class::failure(
                        FailureKind::Timeout,
                        seawall_classify::RetryHint::Retry,
                    ),
                    "deadline",
                ))
            }
            _ => {
                tokio::time::sleep_until(done).await;
                Ok(request.into_inner())
            }
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_call_whose_deadline_went_to_the_queue_is_the_limits_refusal_not_a_timeout() {
    let layer = ConcurrencyLimitLayer::builder(1)
        .queue(4)
        .max_wait(ms(10_000))
        .build()
        .unwrap();
    let service = layer.layer(timed_out_at_the_deadline());
    // One permit, three calls with 2 s each: two of 600 ms, then one of 5 s, which gets its
    // permit after 1.2 s in the queue (the queue's pace, 600 ms a place, says it fits in the
    // 0.8 s left) and is ended by its deadline 0.8 s later.
    let calls: Vec<_> = [600, 600, 5_000]
        .into_iter()
        .map(|work| {
            let call = service
                .clone()
                .oneshot(WithDeadline::new(work).deadline_in(ms(2_000)));
            tokio::spawn(call)
        })
        .collect();
    let mut results = Vec::new();
    for call in calls {
        results.push(call.await.unwrap());
    }
    assert_eq!(results[0].as_ref().unwrap(), &600);
    assert_eq!(results[1].as_ref().unwrap(), &600);
    let err = results[2].as_ref().unwrap_err();
    assert_eq!(
        overloaded_reason(err),
        Some(Reason::LateFromQueue {
            waited: ms(1_200),
            ran: ms(800)
        }),
        "{err:?}"
    );
    assert_eq!(err.kind(), Some(FailureKind::Rejected));
    assert!(!Policy::STANDARD.is_fault(err.class()));

    // A call that had its whole time at the dependency keeps its timeout: a hung
    // dependency still shows.
    let err = service
        .oneshot(WithDeadline::new(5_000).deadline_in(ms(2_000)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::Timeout), "{err:?}");
}
