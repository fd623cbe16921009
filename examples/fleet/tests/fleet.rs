//! Real processes on loopback sharing limits through the real Redis server (`REDIS_URL`,
//! default the local one): the figures the README states, checked. The runs take turns, so
//! that none is measured while another loads the machine.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use seawall_example_fleet::{budget_run, crash_run, outage_run, rate_run};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_seawall-fleet-demo"))
}

fn redis() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn four_processes_admit_within_five_percent_of_the_fleet_rate() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let figures = runtime()
        .block_on(rate_run(exe(), &redis(), 4, 200.0, Duration::from_secs(10)))
        .unwrap();
    assert!(
        figures.error() <= 0.05,
        "{:.1}/s admitted for a limit of 200/s: {figures:?}",
        figures.admitted_rate()
    );
    for worker in &figures.workers {
        assert!(worker.admitted > 0 && worker.refused > 0, "{figures:?}");
        assert_eq!(worker.failed, 0);
    }
}

#[test]
fn four_processes_never_have_more_in_flight_than_the_fleet_budget() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let figures = runtime()
        .block_on(budget_run(exe(), &redis(), 4, 8, Duration::from_secs(3)))
        .unwrap();
    assert!(figures.most_in_flight <= 8, "{figures:?}");
    assert!(
        figures.most_in_flight >= 4,
        "the budget was used: {figures:?}"
    );
    assert!(figures.served > 0);
    assert!(
        figures
            .workers
            .iter()
            .all(|w| w.failed == 0 && w.refused > 0)
    );
}

#[test]
fn a_killed_process_permits_return_within_the_lease() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lease = Duration::from_secs(1);
    let back = runtime()
        .block_on(crash_run(exe(), &redis(), 4, lease))
        .unwrap();
    // Renewed every third of the lease until the kill; polled every 10 ms after it.
    assert!(back <= lease + Duration::from_millis(100), "{back:?}");
}

#[test]
fn a_redis_outage_fails_no_call_and_shared_mode_resumes() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = runtime();
    let redis = redis();
    let host = redis
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let figures = runtime
        .block_on(async {
            let target = tokio::net::lookup_host(host).await?.next().unwrap();
            outage_run(
                exe(),
                target,
                4,
                Duration::from_secs(6),
                Duration::from_secs(2),
                Duration::from_secs(2),
            )
            .await
        })
        .unwrap();
    assert_eq!(figures.failed(), 0, "{figures:?}");
    assert!(figures.local() > 0, "the local shares applied: {figures:?}");
    assert!(
        figures.shared_after().iter().all(|&n| n > 0),
        "every process shared again: {figures:?}"
    );
}
