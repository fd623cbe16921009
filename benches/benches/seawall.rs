//! The one Criterion entry point: each layer against a bare service and against tower's
//! built-in equivalent, in the same run.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use seawall_benches::{
    NeverRetry, calls_allowing_refusals, contended_calls, echo, echo_classified,
    echo_in_client_span, echo_in_request_span, failsafe_echo, recloser_echo, runtime,
    runtime_two_threads, seawall_hedge_echo, sequential_calls, tower_hedge_echo,
    tower_resilience_echo, tower_trio, yield_once,
};
use seawall_breaker::{CircuitBreakerLayer, CountWindow};
use seawall_classify::{ClassifyLayer, WithDeadline};
use seawall_limit::ConcurrencyLimitLayer;
use seawall_retry::RetryLayer;
use seawall_timeout::{AttemptTimeoutLayer, DeadlineLayer};
use tower::Layer;

fn timeout(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("timeout");

    let mut bare = echo::<WithDeadline<u64>>();
    group.bench_function("bare", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut bare, n, WithDeadline::new))
    });

    let mut tower_timeout = tower::timeout::TimeoutLayer::new(Duration::from_secs(5))
        .layer(echo::<WithDeadline<u64>>());
    group.bench_function("tower_timeout", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut tower_timeout, n, WithDeadline::new))
    });

    let mut attempt = AttemptTimeoutLayer::try_new(Duration::from_secs(5))
        .unwrap()
        .layer(echo::<WithDeadline<u64>>());
    group.bench_function("seawall_attempt_timeout", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut attempt, n, WithDeadline::new))
    });

    let mut deadline = DeadlineLayer::try_new(Duration::from_secs(30))
        .unwrap()
        .layer(echo::<WithDeadline<u64>>());
    group.bench_function("seawall_deadline", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut deadline, n, WithDeadline::new))
    });

    let mut both = DeadlineLayer::try_new(Duration::from_secs(30))
        .unwrap()
        .layer(
            AttemptTimeoutLayer::try_new(Duration::from_secs(5))
                .unwrap()
                .layer(echo::<WithDeadline<u64>>()),
        );
    group.bench_function("seawall_deadline_and_attempt", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut both, n, WithDeadline::new))
    });
    group.finish();

    // The same, with a service that is pending once per call: timers are really created and
    // registered, as they are for any call that does I/O.
    let mut group = c.benchmark_group("timeout_pending");
    let mut bare = yield_once::<WithDeadline<u64>>();
    group.bench_function("bare", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut bare, n, WithDeadline::new))
    });
    let mut tower_timeout = tower::timeout::TimeoutLayer::new(Duration::from_secs(5))
        .layer(yield_once::<WithDeadline<u64>>());
    group.bench_function("tower_timeout", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut tower_timeout, n, WithDeadline::new))
    });
    let mut attempt = AttemptTimeoutLayer::try_new(Duration::from_secs(5))
        .unwrap()
        .layer(yield_once::<WithDeadline<u64>>());
    group.bench_function("seawall_attempt_timeout", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut attempt, n, WithDeadline::new))
    });
    let mut deadline = DeadlineLayer::try_new(Duration::from_secs(30))
        .unwrap()
        .layer(yield_once::<WithDeadline<u64>>());
    group.bench_function("seawall_deadline", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut deadline, n, WithDeadline::new))
    });
    group.finish();
}

fn limit(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("limit");

    let mut bare = echo::<WithDeadline<u64>>();
    group.bench_function("bare", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut bare, n, WithDeadline::new))
    });

    let mut tower_limit =
        tower::limit::ConcurrencyLimitLayer::new(64).layer(echo::<WithDeadline<u64>>());
    group.bench_function("tower_concurrency_limit", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut tower_limit, n, WithDeadline::new))
    });

    let mut seawall_limit = ConcurrencyLimitLayer::builder(64)
        .build()
        .unwrap()
        .layer(echo::<WithDeadline<u64>>());
    group.bench_function("seawall_concurrency_limit", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut seawall_limit, n, WithDeadline::new))
    });

    let mut adaptive = ConcurrencyLimitLayer::builder(64)
        .adaptive(seawall_limit::adaptive::Aimd::new(64, 1, 200).unwrap())
        .build()
        .unwrap()
        .layer(echo::<WithDeadline<u64>>());
    group.bench_function("seawall_adaptive_aimd", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut adaptive, n, WithDeadline::new))
    });
    let mut gradient = ConcurrencyLimitLayer::builder(64)
        .adaptive(seawall_limit::adaptive::Gradient2::new(64, 1, 200).unwrap())
        .build()
        .unwrap()
        .layer(echo::<WithDeadline<u64>>());
    group.bench_function("seawall_adaptive_gradient2", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut gradient, n, WithDeadline::new))
    });
    // The peer crate's adaptive limiter, same bounds.
    let mut peer_aimd = tower_resilience_adaptive::AdaptiveLimiterLayer::new(
        tower_resilience_adaptive::Aimd::builder()
            .initial_limit(64)
            .min_limit(1)
            .max_limit(200)
            .build()
            .unwrap(),
    )
    .layer(echo::<WithDeadline<u64>>());
    group.bench_function("tower_resilience_adaptive_aimd", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut peer_aimd, n, WithDeadline::new))
    });
    let mut peer_gradient = tower_resilience_adaptive::AdaptiveLimiterLayer::new(
        tower_resilience_adaptive::Gradient2::builder()
            .initial_limit(64)
            .min_limit(1)
            .max_limit(200)
            .build()
            .unwrap(),
    )
    .layer(echo::<WithDeadline<u64>>());
    group.bench_function("tower_resilience_adaptive_gradient2", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut peer_gradient, n, WithDeadline::new))
    });

    // Two tasks contending on one shared limit.
    let rt2 = runtime_two_threads();
    let shared_bare = echo::<WithDeadline<u64>>();
    group.bench_function("bare_2_threads", |b| {
        b.iter_custom(|n| contended_calls(&rt2, &shared_bare, n, WithDeadline::new))
    });
    let tower_shared =
        tower::limit::GlobalConcurrencyLimitLayer::new(64).layer(echo::<WithDeadline<u64>>());
    group.bench_function("tower_global_concurrency_limit_2_threads", |b| {
        b.iter_custom(|n| contended_calls(&rt2, &tower_shared, n, WithDeadline::new))
    });
    let seawall_shared = ConcurrencyLimitLayer::builder(64)
        .build()
        .unwrap()
        .layer(echo::<WithDeadline<u64>>());
    group.bench_function("seawall_concurrency_limit_2_threads", |b| {
        b.iter_custom(|n| contended_calls(&rt2, &seawall_shared, n, WithDeadline::new))
    });
    group.finish();
}

fn classify(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("classify");
    let mut bare = echo::<u64>();
    group.bench_function("bare", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut bare, n, |i| i))
    });
    let mut classified = ClassifyLayer::new().layer(echo::<u64>());
    group.bench_function("seawall_classify", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut classified, n, |i| i))
    });
    group.finish();
}

fn breaker(c: &mut Criterion) {
    let rt = runtime();
    let rt2 = runtime_two_threads();
    let mut group = c.benchmark_group("breaker");

    let seawall_default = || {
        CircuitBreakerLayer::builder()
            .build()
            .unwrap()
            .layer(echo::<u64>())
    };
    let seawall_window = || {
        CircuitBreakerLayer::builder()
            .count_window(CountWindow::new(100).min_calls(100).failure_rate(0.5))
            .build()
            .unwrap()
            .layer(echo::<u64>())
    };
    macro_rules! both {
        ($name:literal, $make:expr) => {{
            let mut service = $make();
            group.bench_function($name, |b| {
                b.iter_custom(|n| sequential_calls(&rt, &mut service, n, |i| i))
            });
            let shared = $make();
            group.bench_function(concat!($name, "_2_threads"), |b| {
                b.iter_custom(|n| contended_calls(&rt2, &shared, n, |i| i))
            });
        }};
    }

    both!("bare", echo::<u64>);
    both!("seawall_consecutive", seawall_default);
    both!("seawall_count_window", seawall_window);
    both!("recloser", recloser_echo);
    both!("failsafe", failsafe_echo);
    both!("tower_resilience", tower_resilience_echo);
    group.finish();
}

fn retry(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("retry");
    let mut bare = echo::<WithDeadline<u64>>();
    group.bench_function("bare", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut bare, n, WithDeadline::new))
    });
    let mut tower_retry =
        tower::retry::RetryLayer::new(NeverRetry).layer(echo::<WithDeadline<u64>>());
    group.bench_function("tower_retry_trivial_policy", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut tower_retry, n, WithDeadline::new))
    });
    let mut no_budget = RetryLayer::builder()
        .no_budget()
        .build()
        .unwrap()
        .layer(echo::<WithDeadline<u64>>());
    group.bench_function("seawall_retry_no_budget", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut no_budget, n, WithDeadline::new))
    });
    let mut budgeted = RetryLayer::builder()
        .build()
        .unwrap()
        .layer(echo::<WithDeadline<u64>>());
    group.bench_function("seawall_retry_with_budget", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut budgeted, n, WithDeadline::new))
    });
    group.finish();
}

fn pipeline(c: &mut Criterion) {
    let rt = runtime();
    let rt2 = runtime_two_threads();
    let mut group = c.benchmark_group("pipeline");

    let tower_trio = tower_trio::<WithDeadline<u64>>;
    let standard = || {
        seawall::StandardPipeline::new("bench", 64)
            .build()
            .unwrap()
            .layer(echo::<WithDeadline<u64>>())
    };

    macro_rules! both {
        ($name:literal, $make:expr) => {{
            let mut service = $make();
            group.bench_function($name, |b| {
                b.iter_custom(|n| sequential_calls(&rt, &mut service, n, WithDeadline::new))
            });
            let shared = $make();
            group.bench_function(concat!($name, "_2_threads"), |b| {
                b.iter_custom(|n| contended_calls(&rt2, &shared, n, WithDeadline::new))
            });
        }};
    }
    both!("bare", echo::<WithDeadline<u64>>);
    both!("tower_timeout_retry_limit", tower_trio);
    both!("seawall_standard", standard);
    group.finish();
}

/// A hedged service whose calls answer at once (the closed path every request pays): tower's
/// `Hedge` and Seawall's `HedgeLayer`, fixed and learnt delay, next to the bare service.
fn hedge(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("hedge");
    let mut bare = echo::<WithDeadline<u64>>();
    group.bench_function("bare", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut bare, n, WithDeadline::new))
    });
    let mut tower_hedge = rt.block_on(async { tower_hedge_echo() });
    group.bench_function("tower_hedge", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut tower_hedge, n, WithDeadline::new))
    });
    let mut fixed = rt.block_on(async { seawall_hedge_echo(false) });
    group.bench_function("seawall_hedge_fixed", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut fixed, n, WithDeadline::new))
    });
    let mut learnt = rt.block_on(async { seawall_hedge_echo(true) });
    group.bench_function("seawall_hedge_learnt", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut learnt, n, WithDeadline::new))
    });
    group.finish();
}

/// The fleet's limits per call, next to the local ones and tower's: rate limits that never
/// bind (tower's `RateLimit`, the local GCRA, per key locally and fleet-wide on the Redis at
/// `REDIS_URL` with leases of 1,000 tokens), and a concurrency budget (local, fleet-wide: one Redis round trip per call, releases batched), next to
/// Seawall's `ConcurrencyLimit`.
fn fleet(c: &mut Criterion) {
    use seawall_fleet::{ConcurrencyBudgetLayer, Fleet, RateLimitLayer};
    // Redis needs the I/O driver, which the other groups' runtime leaves out.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let fleet = Fleet::builder(url)
        .prefix("seawall-bench")
        .build()
        .expect("a valid Redis URL");
    let name = format!("bench-{}", std::process::id());
    let mut group = c.benchmark_group("fleet");
    let mut bare = echo::<u64>();
    group.bench_function("bare", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut bare, n, |i| i))
    });
    let mut tower_rate = rt.block_on(async {
        tower::limit::RateLimitLayer::new(u64::MAX, Duration::from_secs(1)).layer(echo::<u64>())
    });
    group.bench_function("tower_rate_limit", |b| {
        b.iter_custom(|n| calls_allowing_refusals(&rt, &mut tower_rate, n, |i| i))
    });
    let local = RateLimitLayer::builder(1_000_000_000.0)
        .burst(1_000_000)
        .build()
        .unwrap();
    let mut local_rate = local.layer(echo::<u64>());
    group.bench_function("seawall_rate_limit_local", |b| {
        b.iter_custom(|n| calls_allowing_refusals(&rt, &mut local_rate, n, |i| i))
    });
    // 64 keys of 1,000,000 a second each: more than the loop reaches on any key, so the
    // limits never bind and the figures are their cost, Redis's leases amortised.
    let keyed = RateLimitLayer::builder(1_000_000.0)
        .burst(10_000)
        .key(|id: &u64| id % 64)
        .build()
        .unwrap();
    let mut keyed_rate = keyed.layer(echo::<u64>());
    group.bench_function("seawall_rate_limit_local_64_keys", |b| {
        b.iter_custom(|n| calls_allowing_refusals(&rt, &mut keyed_rate, n, |i| i))
    });
    let shared = RateLimitLayer::builder(1_000_000.0)
        .burst(10_000)
        .lease(1_000)
        .key(|id: &u64| id % 64)
        .fleet(&fleet, name.clone())
        .build()
        .unwrap();
    let mut fleet_rate = shared.layer(echo::<u64>());
    group.bench_function("seawall_rate_limit_fleet_64_keys_lease_1000", |b| {
        b.iter_custom(|n| calls_allowing_refusals(&rt, &mut fleet_rate, n, |i| i))
    });
    let mut limit = ConcurrencyLimitLayer::builder(64)
        .build()
        .unwrap()
        .layer(echo::<WithDeadline<u64>>());
    group.bench_function("seawall_concurrency_limit", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut limit, n, WithDeadline::new))
    });
    let mut local_budget = ConcurrencyBudgetLayer::builder(64)
        .build()
        .unwrap()
        .layer(echo::<u64>());
    group.bench_function("seawall_budget_local", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut local_budget, n, |i| i))
    });
    let mut fleet_budget = ConcurrencyBudgetLayer::builder(64)
        .fleet(&fleet, name)
        .build()
        .unwrap()
        .layer(echo::<u64>());
    group.bench_function("seawall_budget_fleet", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut fleet_budget, n, |i| i))
    });
    group.finish();
    fn refused<F>(limit: &RateLimitLayer<F>, which: &str) {
        eprintln!(
            "fleet: the {which} rate limit refused {} of {} calls",
            limit.handle().rejected(),
            limit.handle().admitted() + limit.handle().rejected()
        );
    }
    refused(&local, "local");
    refused(&keyed, "local, 64 keys");
    refused(&shared, "fleet, 64 keys");
    if fleet.local_decisions() > 0 {
        eprintln!(
            "fleet: {} decisions were local (Redis did not answer): the fleet figures are not Redis's",
            fleet.local_decisions()
        );
    }
}

/// A call's span with no subscriber installed: the client span next to the request span the
/// retry layer made before it, and no span at all.
fn span(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("span");
    let mut bare = echo_classified::<u64>();
    group.bench_function("bare", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut bare, n, |i| i))
    });
    let mut old = echo_in_request_span::<u64>();
    group.bench_function("old_request_span", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut old, n, |i| i))
    });
    let mut client = echo_in_client_span::<u64>();
    group.bench_function("client_span", |b| {
        b.iter_custom(|n| sequential_calls(&rt, &mut client, n, |i| i))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = classify, timeout, limit, breaker, retry, pipeline, span, hedge, fleet
}
criterion_main!(benches);
