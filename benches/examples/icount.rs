//! Runs N requests that succeed at once through one stack, for instruction counts
//! (`perf stat -e instructions:u` or `valgrind --tool=callgrind`): run with N and with 0, and
//! divide the difference by N.
use std::time::Duration;

use seawall_benches::{echo, runtime, sequential_calls};
use seawall_classify::WithDeadline;
use tower::Layer;

fn main() {
    let mut args = std::env::args().skip(1);
    let stack = args.next().unwrap_or_default();
    let n: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let rt = runtime();
    match stack.as_str() {
        "seawall_standard" => {
            let mut s = seawall::StandardPipeline::new("bench", 64)
                .build()
                .unwrap()
                .layer(echo::<WithDeadline<u64>>());
            sequential_calls(&rt, &mut s, n, WithDeadline::new);
        }
        "tower_trio" => {
            #[derive(Clone)]
            struct NeverRetry;
            impl<Req: Clone, Res, E> tower::retry::Policy<Req, Res, E> for NeverRetry {
                type Future = std::future::Ready<()>;
                fn retry(&mut self, _: &mut Req, _: &mut Result<Res, E>) -> Option<Self::Future> {
                    None
                }
                fn clone_request(&mut self, r: &Req) -> Option<Req> {
                    Some(r.clone())
                }
            }
            let mut s = tower::ServiceBuilder::new()
                .layer(tower::retry::RetryLayer::new(NeverRetry))
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(64))
                .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(5)))
                .service(echo::<WithDeadline<u64>>());
            sequential_calls(&rt, &mut s, n, WithDeadline::new);
        }
        "breaker" => {
            let mut s = seawall_breaker::CircuitBreakerLayer::builder()
                .consecutive_faults(5)
                .build()
                .unwrap()
                .layer(echo::<u64>());
            sequential_calls(&rt, &mut s, n, |i| i);
        }
        "breaker_window" => {
            let mut s = seawall_breaker::CircuitBreakerLayer::builder()
                .count_window(
                    seawall_breaker::CountWindow::new(100)
                        .min_calls(100)
                        .failure_rate(0.5),
                )
                .build()
                .unwrap()
                .layer(echo::<u64>());
            sequential_calls(&rt, &mut s, n, |i| i);
        }
        "limit" => {
            let mut s = seawall_limit::ConcurrencyLimitLayer::builder(64)
                .build()
                .unwrap()
                .layer(echo::<WithDeadline<u64>>());
            sequential_calls(&rt, &mut s, n, WithDeadline::new);
        }
        "retry" => {
            let mut s = seawall_retry::RetryLayer::builder()
                .build()
                .unwrap()
                .layer(echo::<WithDeadline<u64>>());
            sequential_calls(&rt, &mut s, n, WithDeadline::new);
        }
        "bare" => {
            let mut s = echo::<WithDeadline<u64>>();
            sequential_calls(&rt, &mut s, n, WithDeadline::new);
        }
        other => panic!("unknown stack {other}"),
    }
}
