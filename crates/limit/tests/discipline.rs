//! The queue's discipline on paused time: a burst waits and is served in order; a standing
//! queue sheds within its short timeout and serves the newest first; priorities; a dropped
//! waiter frees nothing it did not hold.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall_classify::{Error, Priority, WithDeadline, WithPriority, cause_ref};
use seawall_limit::{
    ConcurrencyLimitLayer, Discipline, LimitHandle,
    error::{LimitReached, Reason},
};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

/// A request: its name, and how long the call holds its permit, with its deadline and
/// priority.
type Req = WithPriority<WithDeadline<(u32, u64)>>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A limit of `max` over a client that takes the request's time; the names of the calls
/// that reached the client, in order.
struct Rig {
    service: tower::util::BoxCloneService<Req, u32, Error>,
    limits: LimitHandle,
    started: Arc<Mutex<Vec<u32>>>,
}

fn rig(max: usize, queue: usize, discipline: Discipline) -> Rig {
    let started = Arc::new(Mutex::new(Vec::new()));
    let log = started.clone();
    let layer = ConcurrencyLimitLayer::builder(max)
        .queue(queue)
        .max_wait(Duration::from_secs(10))
        .discipline(discipline)
        .build()
        .unwrap();
    let limits = layer.handle();
    let service = ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(move |request: Req| {
            let log = log.clone();
            async move {
                let (name, hold) = *request.get_ref().get_ref();
                log.lock().unwrap().push(name);
                sleep(ms(hold)).await;
                Ok::<_, std::io::Error>(name)
            }
        }));
    Rig {
        service: tower::util::BoxCloneService::new(service),
        limits,
        started,
    }
}

impl Rig {
    /// Sends a call (it joins the queue at once if it must wait).
    async fn send(
        &self,
        name: u32,
        hold: u64,
        priority: Priority,
    ) -> JoinHandle<Result<u32, Error>> {
        let request = WithDeadline::new((name, hold))
            .deadline_in(Duration::from_secs(5))
            .with_priority(priority);
        let call = tokio::spawn(self.service.clone().oneshot(request));
        // Let it reach the limit before the next is sent.
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        call
    }

    fn started(&self) -> Vec<u32> {
        self.started.lock().unwrap().clone()
    }
}

fn reason(error: &Error) -> Option<Reason> {
    cause_ref::<LimitReached>(error).map(LimitReached::reason)
}

/// Standing after 50 ms; then at most 10 ms of wait.
const CODEL: Discipline = Discipline::ControlledDelay {
    interval: Duration::from_millis(50),
    target: Duration::from_millis(10),
};

#[tokio::test(start_paused = true)]
async fn a_burst_waits_and_is_served_in_order() {
    let rig = rig(1, 10, CODEL);
    // One call holds the permit for 20 ms; a burst of three queues behind it. Each is served
    // before the queue has stood for 50 ms, so none is shed, and in the order they came.
    let calls = [
        rig.send(0, 20, Priority::Default).await,
        rig.send(1, 10, Priority::Default).await,
        rig.send(2, 10, Priority::Default).await,
        rig.send(3, 1, Priority::Default).await,
    ];
    assert_eq!(rig.limits.queued(), 3);
    for (name, call) in calls.into_iter().enumerate() {
        assert_eq!(call.await.unwrap().unwrap(), name as u32);
    }
    assert_eq!(rig.started(), [0, 1, 2, 3]);
    assert_eq!(rig.limits.rejected(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_standing_queue_sheds_within_its_short_timeout() {
    let rig = rig(1, 10, CODEL);
    let holder = rig.send(0, 1_000, Priority::Default).await;
    let began = Instant::now();
    // The first waiter: the queue stands from 50 ms on, and it has waited longer than the
    // 10 ms target by then: shed at 50 ms, not at its 5 s deadline.
    let first = rig
        .send(1, 1, Priority::Default)
        .await
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(reason(&first), Some(Reason::Shed(_))), "{first}");
    assert_eq!(began.elapsed(), ms(50));
    // The queue is empty for a moment, but still standing: the next waits 10 ms at most.
    let began = Instant::now();
    let second = rig
        .send(2, 1, Priority::Default)
        .await
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(reason(&second), Some(Reason::Shed(ms(10))), "{second}");
    assert_eq!(began.elapsed(), ms(10));
    // Only an interval with nothing to queue ends the standing queue.
    holder.abort();
    sleep(ms(60)).await;
    let holder = rig.send(3, 1_000, Priority::Default).await;
    let began = Instant::now();
    let third = rig
        .send(4, 1, Priority::Default)
        .await
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        began.elapsed(),
        ms(50),
        "a burst again: it waits the interval"
    );
    assert!(matches!(reason(&third), Some(Reason::Shed(_))));
    holder.abort();
    assert_eq!(rig.started(), [0, 3]);
}

#[tokio::test(start_paused = true)]
async fn a_standing_queue_serves_the_newest_first() {
    // Target = interval: under a standing queue a waiter may wait 50 ms.
    let rig = rig(
        1,
        10,
        Discipline::ControlledDelay {
            interval: ms(50),
            target: ms(50),
        },
    );
    let holder = rig.send(0, 70, Priority::Default).await;
    // The first waiter is shed when the queue has stood for 50 ms; those that joined at
    // 30 ms may wait until 80 ms. At 70 ms the permit comes back and goes to the newest,
    // then to the one before, and so on.
    let first = rig.send(1, 2, Priority::Default).await;
    sleep(ms(30)).await;
    let calls = [
        rig.send(2, 2, Priority::Default).await,
        rig.send(3, 2, Priority::Default).await,
        rig.send(4, 2, Priority::Default).await,
    ];
    assert!(matches!(
        reason(&first.await.unwrap().unwrap_err()),
        Some(Reason::Shed(_))
    ));
    holder.await.unwrap().unwrap();
    let answers: Vec<_> = futures_join(calls).await;
    assert_eq!(rig.started(), [0, 4, 3, 2]);
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
}

#[tokio::test(start_paused = true)]
async fn fifo_serves_the_oldest_first_however_long_the_queue_stands() {
    let rig = rig(1, 10, Discipline::Fifo);
    let holder = rig.send(0, 500, Priority::Default).await;
    let calls = [
        rig.send(1, 5, Priority::Default).await,
        rig.send(2, 5, Priority::Default).await,
        rig.send(3, 5, Priority::Default).await,
    ];
    holder.await.unwrap().unwrap();
    let answers: Vec<_> = futures_join(calls).await;
    assert!(answers.iter().all(Result::is_ok));
    assert_eq!(rig.started(), [0, 1, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn the_highest_priority_is_served_first_and_the_lowest_gives_up_its_place() {
    let rig = rig(1, 2, Discipline::Fifo);
    let holder = rig.send(0, 10, Priority::Default).await;
    let sheddable = rig.send(1, 5, Priority::Sheddable).await;
    let default = rig.send(2, 5, Priority::Default).await;
    // The queue is full: a critical call takes the sheddable one's place.
    let critical = rig.send(3, 5, Priority::Critical).await;
    let displaced = sheddable.await.unwrap().unwrap_err();
    assert_eq!(
        reason(&displaced),
        Some(Reason::Displaced(Priority::Critical))
    );
    // Full of calls of its priority or higher: a default call is refused.
    let refused = rig
        .send(4, 5, Priority::Default)
        .await
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(reason(&refused), Some(Reason::QueueFull));
    holder.await.unwrap().unwrap();
    assert_eq!(critical.await.unwrap().unwrap(), 3);
    assert_eq!(default.await.unwrap().unwrap(), 2);
    assert_eq!(rig.started(), [0, 3, 2]);
}

#[tokio::test(start_paused = true)]
async fn a_sheddable_call_waits_none_in_a_standing_queue() {
    let rig = rig(1, 10, CODEL);
    let holder = rig.send(0, 1_000, Priority::Default).await;
    let _ = rig.send(1, 1, Priority::Default).await.await.unwrap();
    // Standing now: a sheddable call is shed at once, a default one after the target.
    let began = Instant::now();
    let shed = rig
        .send(2, 1, Priority::Sheddable)
        .await
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(reason(&shed), Some(Reason::Shed(Duration::ZERO)));
    assert_eq!(began.elapsed(), Duration::ZERO);
    holder.abort();
}

#[tokio::test(start_paused = true)]
async fn a_critical_call_may_wait_the_interval_in_a_standing_queue() {
    let rig = rig(1, 10, CODEL);
    let holder = rig.send(0, 1_000, Priority::Default).await;
    let _ = rig.send(1, 1, Priority::Default).await.await.unwrap();
    // Standing now: a default call waits 10 ms at most, a critical one the 50 ms interval.
    let began = Instant::now();
    let critical = rig.send(2, 1, Priority::Critical).await;
    let default = rig.send(3, 1, Priority::Default).await;
    let default = default.await.unwrap().unwrap_err();
    assert_eq!(reason(&default), Some(Reason::Shed(ms(10))));
    let critical = critical.await.unwrap().unwrap_err();
    assert_eq!(reason(&critical), Some(Reason::Shed(ms(50))));
    assert_eq!(began.elapsed(), ms(50));
    holder.abort();
}

#[tokio::test(start_paused = true)]
async fn a_dropped_waiter_frees_nothing_it_did_not_hold() {
    let rig = rig(1, 10, Discipline::Fifo);
    let holder = rig.send(0, 20, Priority::Default).await;
    let dropped = rig.send(1, 5, Priority::Default).await;
    let kept = rig.send(2, 5, Priority::Default).await;
    assert_eq!(rig.limits.queued(), 2);
    dropped.abort();
    sleep(ms(1)).await;
    assert_eq!(rig.limits.queued(), 1);
    assert_eq!(rig.limits.in_flight(), 1, "the holder's permit only");
    holder.await.unwrap().unwrap();
    assert_eq!(kept.await.unwrap().unwrap(), 2);
    assert_eq!(rig.limits.in_flight(), 0);
    assert_eq!(rig.started(), [0, 2]);
}

#[tokio::test(start_paused = true)]
async fn a_permit_handed_to_a_waiter_that_is_dropped_goes_to_the_next() {
    let layer = ConcurrencyLimitLayer::builder(1).queue(4).build().unwrap();
    let limits = layer.handle();
    let mut service =
        ServiceBuilder::new()
            .layer(layer)
            .service(service_fn(|_: WithDeadline<()>| async {
                Ok::<_, std::io::Error>(())
            }));
    let holder = service.ready().await.unwrap().call(WithDeadline::new(()));
    let handed = service.ready().await.unwrap().call(WithDeadline::new(()));
    let next = service.ready().await.unwrap().call(WithDeadline::new(()));
    assert_eq!(limits.queued(), 2);
    holder.await.unwrap();
    // The permit went to `handed`, which is dropped before it polls: the next gets it.
    assert_eq!(limits.queued(), 1);
    assert_eq!(limits.in_flight(), 1);
    drop(handed);
    assert_eq!(limits.in_flight(), 1, "given on to the next waiter");
    assert_eq!(limits.queued(), 0);
    next.await.unwrap();
    assert_eq!(limits.in_flight(), 0);
}

#[test]
fn a_controlled_delay_with_a_target_above_its_interval_is_refused_at_build() {
    let error = ConcurrencyLimitLayer::builder(1)
        .discipline(Discipline::ControlledDelay {
            interval: ms(10),
            target: ms(20),
        })
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("discipline.target"), "{error}");
    let error = ConcurrencyLimitLayer::builder(1)
        .discipline(Discipline::ControlledDelay {
            interval: Duration::ZERO,
            target: Duration::ZERO,
        })
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("discipline.interval"), "{error}");
}

/// Awaits every call, in order.
async fn futures_join<const N: usize>(
    calls: [JoinHandle<Result<u32, Error>>; N],
) -> Vec<Result<u32, Error>> {
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap());
    }
    answers
}
