//! A short run of real mode against the local PostgreSQL and Redis (started by
//! `scripts/services.sh`), through the fault proxy.

use std::time::Duration;

use seawall_eval::scenario::Stack;
use seawall_eval::{evaluate_real, real, scenario};

#[test]
fn real_mode_runs_against_the_local_servers() {
    let targets = real::Targets {
        postgres: std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
        redis: std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned()),
    };
    let base = scenario::all(1)
        .into_iter()
        .find(|s| s.name == "slow-dependency")
        .unwrap();
    let short = scenario::Scenario {
        duration: Duration::from_secs(3),
        rate: 20,
        fault: (Duration::from_secs(1), Duration::from_secs(2)),
        ..base
    };
    let (result, runs) = evaluate_real(short, 1, &Stack::ALL, &targets).expect("real mode runs");
    assert_eq!(runs.len(), 4);
    for (stack, metrics) in &result.runs {
        assert_eq!(metrics.requests, 60, "{stack:?}");
        assert!(
            metrics.success_pct > 0.0,
            "{stack:?} served nothing: {metrics:?}"
        );
        assert!(metrics.peak_in_flight >= 1, "{stack:?}: {metrics:?}");
    }
    // The injected latency reached the requests sent during the fault.
    assert!(
        result.runs[0].1.max >= Duration::from_millis(400),
        "{:?}",
        result.runs[0].1
    );
}
