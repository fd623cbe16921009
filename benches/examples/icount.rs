//! Runs N requests that succeed at once through one stack, for instruction counts
//! (`scripts/icount.sh`: callgrind's total at N and at 0, the difference divided by N).
//!
//! Each stack runs in a function of its own, never inlined into `main`, so that adding a
//! stack does not change how the others are compiled.

use seawall_benches::{echo, runtime, sequential_calls, tower_trio};
use seawall_classify::WithDeadline;
use tokio::runtime::Runtime;
use tower::{Layer, Service};

fn main() {
    let mut args = std::env::args().skip(1);
    let stack = args.next().unwrap_or_default();
    let n: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let rt = runtime();
    match stack.as_str() {
        "bare" => run(&rt, n, echo::<WithDeadline<u64>>(), WithDeadline::new),
        "tower_trio" => run(&rt, n, tower_trio::<WithDeadline<u64>>(), WithDeadline::new),
        "seawall_standard" => run(
            &rt,
            n,
            seawall::StandardPipeline::new("bench", 64)
                .build()
                .unwrap()
                .layer(echo::<WithDeadline<u64>>()),
            WithDeadline::new,
        ),
        "breaker" => run(
            &rt,
            n,
            seawall_breaker::CircuitBreakerLayer::builder()
                .consecutive_faults(5)
                .build()
                .unwrap()
                .layer(echo::<u64>()),
            |i| i,
        ),
        "breaker_window" => run(
            &rt,
            n,
            seawall_breaker::CircuitBreakerLayer::builder()
                .count_window(
                    seawall_breaker::CountWindow::new(100)
                        .min_calls(100)
                        .failure_rate(0.5),
                )
                .build()
                .unwrap()
                .layer(echo::<u64>()),
            |i| i,
        ),
        "limit" => run(
            &rt,
            n,
            seawall_limit::ConcurrencyLimitLayer::builder(64)
                .build()
                .unwrap()
                .layer(echo::<WithDeadline<u64>>()),
            WithDeadline::new,
        ),
        "retry" => run(
            &rt,
            n,
            seawall_retry::RetryLayer::builder()
                .build()
                .unwrap()
                .layer(echo::<WithDeadline<u64>>()),
            WithDeadline::new,
        ),
        "recloser" => run(&rt, n, seawall_benches::recloser_echo(), |i| i),
        "failsafe" => run(&rt, n, seawall_benches::failsafe_echo(), |i| i),
        "tower_resilience" => run(&rt, n, seawall_benches::tower_resilience_echo(), |i| i),
        "tower_timeout" => run(
            &rt,
            n,
            tower::timeout::TimeoutLayer::new(std::time::Duration::from_secs(5))
                .layer(echo::<WithDeadline<u64>>()),
            WithDeadline::new,
        ),
        "tower_concurrency_limit" => run(
            &rt,
            n,
            tower::limit::ConcurrencyLimitLayer::new(64).layer(echo::<WithDeadline<u64>>()),
            WithDeadline::new,
        ),
        "tower_retry" => run(
            &rt,
            n,
            tower::retry::RetryLayer::new(seawall_benches::NeverRetry)
                .layer(echo::<WithDeadline<u64>>()),
            WithDeadline::new,
        ),
        "attempt_timeout" => run(
            &rt,
            n,
            seawall_timeout::AttemptTimeoutLayer::try_new(std::time::Duration::from_secs(5))
                .unwrap()
                .layer(echo::<WithDeadline<u64>>()),
            WithDeadline::new,
        ),
        "deadline" => run(
            &rt,
            n,
            seawall_timeout::DeadlineLayer::try_new(std::time::Duration::from_secs(30))
                .unwrap()
                .layer(echo::<WithDeadline<u64>>()),
            WithDeadline::new,
        ),
        "fallback" => run(
            &rt,
            n,
            seawall::fallback::FallbackLayer::builder(tower::service_fn(
                |_: seawall::fallback::FallbackRequest<u64>| async {
                    Ok::<_, seawall_classify::Error>(0_u64)
                },
            ))
            .build()
            .unwrap()
            .layer(seawall_benches::echo_classified::<u64>()),
            |i| i,
        ),
        "hedge" => run(
            &rt,
            n,
            rt.block_on(async { seawall_benches::seawall_hedge_echo(false) }),
            WithDeadline::new,
        ),
        "hedge_learnt" => run(
            &rt,
            n,
            rt.block_on(async { seawall_benches::seawall_hedge_echo(true) }),
            WithDeadline::new,
        ),
        "tower_hedge" => run(
            &rt,
            n,
            rt.block_on(async { seawall_benches::tower_hedge_echo() }),
            WithDeadline::new,
        ),
        "bare_classified" => run(&rt, n, seawall_benches::echo_classified::<u64>(), |i| i),
        "old_request_span" => run(
            &rt,
            n,
            seawall_benches::echo_in_request_span::<u64>(),
            |i| i,
        ),
        "client_span" => run(&rt, n, seawall_benches::echo_in_client_span::<u64>(), |i| i),
        other => panic!("unknown stack {other}"),
    }
}

#[inline(never)]
fn run<S, Req>(rt: &Runtime, n: u64, mut service: S, request: impl Fn(u64) -> Req)
where
    S: Service<Req>,
    S::Error: std::fmt::Debug,
{
    sequential_calls(rt, &mut service, n, request);
}
