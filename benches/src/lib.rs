//! Shared helpers for Seawall's Criterion benches.
//!
//! Every bench measures a stack next to its baselines in the same run (a bare service,
//! tower's built-in, a peer crate), so the figures to compare are ratios, not absolute times.

use std::future::Future;
use std::time::Duration;

use seawall_classify::WithDeadline;
use tokio::runtime::Runtime;
use tokio::time::Instant;
use tower::{Service, ServiceExt};

/// A current-thread runtime with the time driver, as a client task would use.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("build a tokio runtime")
}

/// A runtime with two worker threads, for contention benches on this 2-core machine.
pub fn runtime_two_threads() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("build a tokio runtime")
}

/// Runs `iters` sequential calls (`ready` then `call`) through `service`, built by `make` from
/// the request index, and returns the time taken. A failed call panics.
pub fn sequential_calls<S, Req, F>(
    runtime: &Runtime,
    service: &mut S,
    iters: u64,
    make: F,
) -> Duration
where
    S: Service<Req>,
    S::Error: std::fmt::Debug,
    F: Fn(u64) -> Req,
{
    calls::<false, _, _, _>(runtime, service, iters, make)
}

/// Runs `iters` sequential calls like [`sequential_calls`], where a call may be refused (a
/// rate limit the loop outpaces): refusals count as calls.
pub fn calls_allowing_refusals<S, Req, F>(
    runtime: &Runtime,
    service: &mut S,
    iters: u64,
    make: F,
) -> Duration
where
    S: Service<Req>,
    S::Error: std::fmt::Debug,
    F: Fn(u64) -> Req,
{
    calls::<true, _, _, _>(runtime, service, iters, make)
}

/// The loop of both: `REFUSALS` is a constant, so that neither pays for the other's check.
fn calls<const REFUSALS: bool, S, Req, F>(
    runtime: &Runtime,
    service: &mut S,
    iters: u64,
    make: F,
) -> Duration
where
    S: Service<Req>,
    S::Error: std::fmt::Debug,
    F: Fn(u64) -> Req,
{
    runtime.block_on(async {
        let start = Instant::now();
        for i in 0..iters {
            let response = service.ready().await.unwrap().call(make(i)).await;
            if REFUSALS {
                std::hint::black_box(response.is_ok());
            } else {
                std::hint::black_box(response.unwrap());
            }
        }
        start.elapsed()
    })
}

/// Runs `iters` calls split over two tasks, each with its own clone of `service` (so both
/// contend on the service's shared state), and returns the time taken.
pub fn contended_calls<S, Req, F>(runtime: &Runtime, service: &S, iters: u64, make: F) -> Duration
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: std::fmt::Debug,
    S::Response: Send,
    Req: Send + 'static,
    F: Fn(u64) -> Req + Clone + Send + 'static,
{
    runtime.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let mut service = service.clone();
                let make = make.clone();
                tokio::spawn(async move {
                    for i in 0..iters / 2 {
                        let response = service.ready().await.unwrap().call(make(i)).await;
                        std::hint::black_box(response.unwrap());
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("bench task panicked");
        }
        start.elapsed()
    })
}

/// A trivially fast service standing in for a client whose work is done elsewhere.
pub fn echo<Req>() -> impl Service<
    Req,
    Response = Req,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<Req, std::convert::Infallible>> + Send,
> + Clone
+ Send
where
    Req: Send + 'static,
{
    tower::service_fn(|req: Req| async move { Ok(req) })
}

/// A service that answers after yielding to the scheduler once, so that every layer above it
/// sees a pending call and does its full work (timers created, permits held across a poll).
pub fn yield_once<Req>() -> impl Service<
    Req,
    Response = Req,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<Req, std::convert::Infallible>> + Send,
> + Clone
+ Send
where
    Req: Send + 'static,
{
    tower::service_fn(|req: Req| async move {
        tokio::task::yield_now().await;
        Ok(req)
    })
}

/// tower's `Retry` with the most trivial policy: clone the request, never retry.
#[derive(Debug, Clone, Copy)]
pub struct NeverRetry;

impl<Req: Clone, Res, E> tower::retry::Policy<Req, Res, E> for NeverRetry {
    type Future = std::future::Ready<()>;

    fn retry(&mut self, _: &mut Req, _: &mut Result<Res, E>) -> Option<Self::Future> {
        None
    }

    fn clone_request(&mut self, request: &Req) -> Option<Req> {
        Some(request.clone())
    }
}

/// The baseline of the pipeline benches: tower's `Retry` (trivial policy),
/// `GlobalConcurrencyLimit` and `Timeout` around [`echo`].
pub fn tower_trio<Req>() -> impl Service<
    Req,
    Response = Req,
    Error = tower::BoxError,
    Future = impl Future<Output = Result<Req, tower::BoxError>> + Send,
> + Clone
+ Send
where
    Req: Clone + Send + 'static,
{
    tower::ServiceBuilder::new()
        .layer(tower::retry::RetryLayer::new(NeverRetry))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(64))
        .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(5)))
        .service(echo::<Req>())
}

/// [`echo`] with Seawall's error type, what a client span wraps in a pipeline.
pub fn echo_classified<Req>() -> impl Service<
    Req,
    Response = Req,
    Error = seawall_classify::Error,
    Future = impl Future<Output = Result<Req, seawall_classify::Error>> + Send,
> + Clone
+ Send
where
    Req: Send + 'static,
{
    tower::service_fn(|req: Req| async move { Ok(req) })
}

/// [`echo_classified`] in the span the retry layer created per request before the client
/// span replaced it (DEBUG, two fields, entered at each poll): the old cost, kept to compare.
pub fn echo_in_request_span<Req>() -> impl Service<
    Req,
    Response = Req,
    Error = seawall_classify::Error,
    Future = impl Future<Output = Result<Req, seawall_classify::Error>> + Send,
> + Clone
+ Send
where
    Req: Send + 'static,
{
    use tracing::Instrument as _;
    tower::service_fn(|req: Req| {
        let span = tracing::debug_span!(
            target: "seawall::retry",
            "seawall.request",
            { seawall_classify::schema::LAYER } = "retry",
            { seawall_classify::schema::RETRY_MAX_ATTEMPTS } = 3u32
        );
        async move { Ok(req) }.instrument(span)
    })
}

/// [`echo_classified`] in a pipeline's client span (PostgreSQL, with its address).
pub fn echo_in_client_span<Req>() -> impl Service<
    Req,
    Response = Req,
    Error = seawall_classify::Error,
    Future = impl Future<Output = Result<Req, seawall_classify::Error>> + Send,
> + Clone
+ Send
where
    Req: Send + 'static,
{
    use tower::Layer as _;
    seawall::trace::ClientSpanLayer::new(
        seawall::trace::ClientSpanConfig::postgresql()
            .namespace("app")
            .server("127.0.0.1", 5432),
    )
    .layer(echo_classified::<Req>())
}

/// recloser's breaker (its defaults) around [`echo`], as a tower service: every breaker pays
/// the same `ready` + `call` harness.
pub fn recloser_echo() -> impl Service<
    u64,
    Response = u64,
    Error = recloser::Error<std::io::Error>,
    Future = impl Future<Output = Result<u64, recloser::Error<std::io::Error>>> + Send,
> + Clone
+ Send {
    let breaker = recloser::AsyncRecloser::from(recloser::Recloser::default());
    tower::service_fn(move |req: u64| breaker.call(async move { Ok::<u64, std::io::Error>(req) }))
}

/// failsafe's breaker (its defaults) around [`echo`], as a tower service.
pub fn failsafe_echo() -> impl Service<
    u64,
    Response = u64,
    Error = failsafe::Error<std::io::Error>,
    Future = impl Future<Output = Result<u64, failsafe::Error<std::io::Error>>> + Send,
> + Clone
+ Send {
    let breaker = failsafe::Config::new().build();
    tower::service_fn(move |req: u64| {
        failsafe::futures::CircuitBreaker::call(
            &breaker,
            async move { Ok::<u64, std::io::Error>(req) },
        )
    })
}

/// tower-resilience's breaker (a 100-call window at 50 %) around [`echo`].
pub fn tower_resilience_echo() -> impl Service<
    u64,
    Response = u64,
    Error = tower_resilience_circuitbreaker::CircuitBreakerError<std::convert::Infallible>,
    Future = impl Future<
        Output = Result<
            u64,
            tower_resilience_circuitbreaker::CircuitBreakerError<std::convert::Infallible>,
        >,
    > + Send,
> + Clone
+ Send {
    use tower::Layer;
    tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
        .failure_rate_threshold(0.5)
        .sliding_window_size(100)
        .build()
        .expect("a valid breaker")
        .layer(echo::<u64>())
}

/// tower's hedge policy for the benches: every request may be hedged (a clone of it).
#[derive(Debug, Clone, Copy)]
pub struct HedgeEverything;

impl<Req: Clone> tower::hedge::Policy<Req> for HedgeEverything {
    fn clone_request(&self, request: &Req) -> Option<Req> {
        Some(request.clone())
    }

    fn can_retry(&self, _: &Req) -> bool {
        true
    }
}

/// tower's `Hedge` around [`echo`]: p95 of recent latencies, after 100 of them, over a 10 s
/// rotating histogram (the same learnt delay as Seawall's default).
pub fn tower_hedge_echo() -> impl Service<
    WithDeadline<u64>,
    Response = WithDeadline<u64>,
    Error = tower::BoxError,
    Future = impl Future<Output = Result<WithDeadline<u64>, tower::BoxError>> + Send,
> + Send {
    tower::hedge::Hedge::new::<WithDeadline<u64>>(
        echo::<WithDeadline<u64>>(),
        HedgeEverything,
        100,
        0.95,
        std::time::Duration::from_secs(10),
    )
}

/// Seawall's `HedgeLayer` around [`echo`]: every request idempotent, the learnt p95 delay
/// (`learnt`) or a fixed 50 ms.
pub fn seawall_hedge_echo(
    learnt: bool,
) -> impl Service<
    WithDeadline<u64>,
    Response = WithDeadline<u64>,
    Error = seawall_classify::Error,
    Future = impl Future<Output = Result<WithDeadline<u64>, seawall_classify::Error>> + Send,
> + Clone
+ Send {
    use tower::Layer;
    let builder = seawall::hedge::HedgeLayer::builder(seawall_classify::AssumeIdempotent);
    let builder = if learnt {
        builder
    } else {
        builder.after(std::time::Duration::from_millis(50))
    };
    builder
        .build()
        .expect("a valid hedge")
        .layer(echo::<WithDeadline<u64>>())
}
