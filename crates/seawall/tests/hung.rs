//! A hung dependency opens the breaker whatever the caller's deadline: every preset, on paused
//! time, with callers whose deadline (2 s) is shorter than the preset's attempt timeout.

use std::time::Duration;

use seawall::breaker::{CircuitBreakerLayer, State};
use seawall::limit::{ConcurrencyLimitLayer, adaptive::Aimd};
use seawall::{FailureKind, HasDeadline, StandardPipeline, WithDeadline};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt, service_fn};

const CALLER_DEADLINE: Duration = Duration::from_secs(2);

/// Sends requests one after another (made by `request`, each with the caller's 2 s deadline)
/// through `service`, whose client never answers, until its breaker is open and one more
/// request was refused at once. Checks that no answer came after its request's deadline, and
/// returns how many requests reached the client before the breaker opened.
macro_rules! hung_until_open {
    ($layer:expr, $request:expr) => {
        hung_until_open!($layer, $request, ())
    };
    ($layer:expr, $request:expr, $response:ty) => {{
        let layer = $layer;
        let breaker = layer.breaker().expect("the preset has a breaker");
        let mut service = layer.layer(never_answers::<_, $response>(&$request));
        let mut hung = 0;
        loop {
            let mut request = $request;
            let deadline = Instant::now() + CALLER_DEADLINE;
            request.set_deadline(deadline);
            let open = breaker.state() == State::Open;
            let started = Instant::now();
            let err = service
                .ready()
                .await
                .unwrap()
                .call(request)
                .await
                .unwrap_err();
            assert!(
                Instant::now() <= deadline,
                "answered after its deadline: {err:?}"
            );
            if open {
                assert_eq!(err.kind(), Some(FailureKind::Rejected), "{err:?}");
                assert!(err.retry_after().is_some_and(|d| d > Duration::ZERO));
                assert_eq!(started, Instant::now(), "refused at once");
                break hung;
            }
            // A timeout; or the breaker opened between two attempts of this request, and
            // the retry met it.
            assert!(
                matches!(
                    err.kind(),
                    Some(FailureKind::Timeout | FailureKind::Rejected)
                ),
                "{err:?}"
            );
            hung += 1;
            assert!(
                hung <= 5,
                "the breaker did not open after {hung} hung requests"
            );
        }
    }};
}

/// A client that never answers requests of `_like`'s type. Named, with its request type
/// fixed, so that the compiler does not infer it through every layer of the pipeline (which
/// took minutes).
fn never_answers<Req, Resp: Send + 'static>(
    _like: &Req,
) -> impl Service<Req, Response = Resp, Error = std::io::Error, Future: Send + 'static>
+ Clone
+ use<Req, Resp> {
    service_fn(|_: Req| std::future::pending::<Result<Resp, std::io::Error>>())
}

#[tokio::test(start_paused = true)]
async fn a_hung_postgres_opens_the_breaker_under_a_short_caller_deadline() {
    // The preset's attempt timeout is 5 s: the caller's 2 s deadline ends each attempt.
    let hung = hung_until_open!(
        StandardPipeline::postgres(4).build().unwrap(),
        WithDeadline::new("SELECT 1 FROM pg_sleep(3)")
    );
    // Five faults in a row open it: the deadline's cut is a fault, and it is never retried.
    assert_eq!(hung, 5);
}

#[tokio::test(start_paused = true)]
async fn a_hung_dependency_opens_the_general_presets_breaker() {
    let hung = hung_until_open!(
        StandardPipeline::new("dep", 4).build().unwrap(),
        WithDeadline::new(1)
    );
    assert_eq!(hung, 5);
}

#[tokio::test(start_paused = true)]
async fn a_hung_redis_opens_the_breaker() {
    // 500 ms attempts within the 2 s deadline: three attempts a request, each a fault; the
    // second request's retry meets the breaker it opened.
    let hung = hung_until_open!(
        StandardPipeline::redis(4).build().unwrap(),
        WithDeadline::new("GET k")
    );
    assert_eq!(hung, 2);
}

#[cfg(feature = "http")]
#[tokio::test(start_paused = true)]
async fn a_hung_http_upstream_opens_the_breaker() {
    let hung = hung_until_open!(
        StandardPipeline::http("api", 4).build().unwrap(),
        http::Request::get("http://api.internal/items/1")
            .body(())
            .unwrap(),
        http::Response<()>
    );
    assert_eq!(hung, 5);
}

#[tokio::test(start_paused = true)]
async fn a_hung_dependency_opens_the_breaker_without_an_attempt_timeout() {
    // Only the deadline bounds an attempt: its own cut is what the breaker records.
    let hung = hung_until_open!(
        StandardPipeline::postgres(4)
            .no_attempt_timeout()
            .build()
            .unwrap(),
        WithDeadline::new("SELECT 1")
    );
    assert_eq!(hung, 5);
}

#[tokio::test(start_paused = true)]
async fn a_hung_probe_reopens_the_breaker_instead_of_wedging_it() {
    let layer = StandardPipeline::postgres(4)
        .circuit_breaker(
            CircuitBreakerLayer::builder()
                .name("postgres")
                .consecutive_faults(1)
                .jitter(0.0)
                .open_duration(Duration::from_millis(100)),
        )
        .build()
        .unwrap();
    let breaker = layer.breaker().unwrap();
    let request = || WithDeadline::new(()).deadline_in(CALLER_DEADLINE);
    let mut service = layer.layer(never_answers::<_, ()>(&request()));
    let _ = service.ready().await.unwrap().call(request()).await;
    assert_eq!(breaker.state(), State::Open);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The first call after the open period is the probe; it hangs until the deadline cuts it.
    let err = service
        .ready()
        .await
        .unwrap()
        .call(request())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::Timeout));
    assert_eq!(breaker.state(), State::Open, "the hung probe reopened it");
    assert_eq!(breaker.transitions(), 3, "closed, open, half-open, open");
}

#[tokio::test(start_paused = true)]
async fn the_adaptive_limit_learns_from_calls_cut_by_the_deadline() {
    for attempt_timeout in [None, Some(Duration::from_secs(5))] {
        let pipeline = StandardPipeline::new("dep", 20)
            .no_retry()
            .no_circuit_breaker()
            .concurrency_limit(
                ConcurrencyLimitLayer::builder(40).adaptive(Aimd::new(10, 1, 40).unwrap()),
            );
        let pipeline = match attempt_timeout {
            Some(timeout) => pipeline.attempt_timeout(timeout),
            None => pipeline.no_attempt_timeout(),
        };
        let layer = pipeline.build().unwrap();
        let limit = layer.limit().unwrap();
        let mut service = layer.layer(never_answers::<_, ()>(&WithDeadline::new(())));
        for _ in 0..3 {
            let request = WithDeadline::new(()).deadline_in(CALLER_DEADLINE);
            let err = service
                .ready()
                .await
                .unwrap()
                .call(request)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), Some(FailureKind::Timeout));
        }
        // AIMD takes a tenth off on a drop (once per generation of calls).
        assert!(
            limit.limit() < 10,
            "attempt timeout {attempt_timeout:?}: {}",
            limit.limit()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn calls_late_from_the_queue_of_a_busy_dependency_do_not_open_the_breaker() {
    // A dependency that answers every call in 1.5 s, two at a time, with six callers whose
    // deadline is 2 s: a call that queues gets its permit with at most half a second left and
    // its deadline ends it. That is the queue's doing, not a hung dependency's.
    let layer = StandardPipeline::postgres(2).build().unwrap();
    let breaker = layer.breaker().unwrap();
    let service = layer.layer(service_fn(|query: WithDeadline<u32>| async move {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        Ok::<_, std::io::Error>(query.into_inner())
    }));
    let mut served = 0;
    for round in 0..5 {
        let calls: Vec<_> = (0..6)
            .map(|n| {
                let request = WithDeadline::new(round * 10 + n).deadline_in(CALLER_DEADLINE);
                tokio::spawn(service.clone().oneshot(request))
            })
            .collect();
        for call in calls {
            match call.await.unwrap() {
                Ok(_) => served += 1,
                Err(err) => assert_eq!(err.kind(), Some(FailureKind::Rejected), "{err:?}"),
            }
        }
        assert_eq!(breaker.state(), State::Closed, "round {round}");
    }
    assert_eq!(served, 10, "two a round, as the dependency can");
}
