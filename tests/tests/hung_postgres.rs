//! A hung PostgreSQL opens the breaker when the caller's deadline (2 s) is shorter than the
//! preset's attempt timeout (5 s): the pattern of `examples/axum-sqlx` (a sqlx `PgPool` behind
//! `StandardPipeline::postgres`, one deadline per request), against the real server and
//! through the fault proxy.

use std::time::Duration;

use seawall::breaker::State;
use seawall::{FailureKind, StandardPipeline, WithDeadline};
use seawall_chaos::proxy::{Mode, Proxy};
use seawall_tests::{database_url, pg_socket_addr};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::time::Instant;
use tower::{Layer, ServiceExt, service_fn};

const CALLER_DEADLINE: Duration = Duration::from_secs(2);
const POOL: u32 = 8;

/// Runs `hung` requests at once through the PostgreSQL preset around `pool` (each runs `sql`,
/// which does not answer within the deadline), then one more; checks that each hung request
/// fails with a timeout, that the breaker is open afterwards, and that the last request is
/// refused with a `Retry-After`. (That each answer arrives by its deadline is checked on
/// paused time in `crates/seawall/tests/hung.rs`: on the wall clock of a loaded machine a
/// task can be woken late by any amount, so it is not asserted here.)
async fn hung_requests_open_the_breaker(pool: PgPool, sql: &'static str, hung: usize) {
    let layer = StandardPipeline::postgres(POOL as usize).build().unwrap();
    let breaker = layer.breaker().unwrap();
    let db = layer.layer(service_fn(move |query: WithDeadline<String>| {
        run(pool.clone(), query.into_inner())
    }));
    let calls: Vec<_> = (0..hung)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                let deadline = Instant::now() + CALLER_DEADLINE;
                let request = WithDeadline::new(sql.to_owned()).deadline_at(deadline);
                db.oneshot(request).await
            })
        })
        .collect();
    for call in calls {
        let err = call.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), Some(FailureKind::Timeout), "{err:?}");
    }
    assert_eq!(
        breaker.state(),
        State::Open,
        "the hung calls opened the breaker"
    );

    let err = db
        .oneshot(WithDeadline::new(sql.to_owned()).deadline_in(CALLER_DEADLINE))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::Rejected), "{err:?}");
    assert!(
        err.retry_after()
            .is_some_and(|after| after > Duration::ZERO)
    );
}

async fn run(pool: PgPool, sql: String) -> Result<(), sqlx::Error> {
    sqlx::query(&sql).execute(&pool).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_queries_open_the_breaker_under_a_short_caller_deadline() {
    let pool = PgPoolOptions::new()
        .max_connections(POOL)
        .connect(&database_url())
        .await
        .expect("PostgreSQL: is scripts/services.sh running?");
    // Six queries that take 3 s, against a 2 s deadline: the breaker opens after five.
    hung_requests_open_the_breaker(pool, "SELECT 1 FROM pg_sleep(3)", 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_pool_opens_the_breaker_under_a_short_caller_deadline() {
    let proxy = Proxy::start(pg_socket_addr()).await.unwrap();
    proxy.set_mode(Mode::Blackhole);
    proxy.settled().await;
    // sqlx's default 30 s acquire timeout: only the caller's deadline ends the wait.
    let pool = PgPoolOptions::new()
        .max_connections(POOL)
        .connect_lazy(&format!("postgres://postgres@{}/postgres", proxy.addr()))
        .unwrap();
    hung_requests_open_the_breaker(pool, "SELECT 1", 7).await;
    proxy.shutdown().await;
}
