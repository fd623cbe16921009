//! The pool-exhaustion scenario against a real PostgreSQL: 100 concurrent callers, a pool of 5,
//! and a concurrency limit in front of the pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use seawall_classify::{BoxError, WithDeadline, cause_ref};
use seawall_limit::{
    ConcurrencyLimitLayer,
    error::{LimitReached, Reason},
};
use seawall_tests::{database_url, pg_connect, unique_name};
use tower::{Layer, Service, ServiceExt, service_fn};

const POOL: usize = 5;
const CALLERS: usize = 100;

fn pool(application_name: &str) -> deadpool_postgres::Pool {
    let mut config = deadpool_postgres::Config::new();
    config.url = Some(database_url());
    config.application_name = Some(application_name.to_owned());
    config.pool = Some(deadpool_postgres::PoolConfig {
        max_size: POOL,
        // Short on purpose: if the limiter ever let the pool queue, this would surface.
        timeouts: deadpool_postgres::Timeouts {
            wait: Some(Duration::from_millis(100)),
            ..Default::default()
        },
        ..Default::default()
    });
    config
        .create_pool(
            Some(deadpool_postgres::Runtime::Tokio1),
            tokio_postgres::NoTls,
        )
        .expect("valid pool configuration")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_keeps_the_pool_from_ever_exhausting() {
    let name = unique_name("seawall_limit");
    let pool = pool(&name);
    let layer = ConcurrencyLimitLayer::builder(POOL)
        .queue(20)
        .max_wait(Duration::from_millis(200))
        .build()
        .unwrap();
    let limits = layer.handle();
    let service = layer.layer(service_fn(move |_: WithDeadline<()>| {
        let pool = pool.clone();
        async move {
            let client = pool.get().await?;
            client.simple_query("SELECT pg_sleep(0.05)").await?;
            Ok::<_, BoxError>(())
        }
    }));

    // Watch the server's own view of our connections while the callers run.
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicI64::new(0));
    let watcher = {
        let (done, peak, name) = (done.clone(), peak.clone(), name.clone());
        let admin = pg_connect().await;
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                let count: i64 = admin
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                        &[&name],
                    )
                    .await
                    .unwrap()
                    .get(0);
                peak.fetch_max(count, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let mut service = service.clone();
            tokio::spawn(async move { service.ready().await?.call(WithDeadline::new(())).await })
        })
        .collect();
    let mut succeeded = 0;
    let mut refused = 0;
    for caller in callers {
        match caller.await.unwrap() {
            Ok(()) => succeeded += 1,
            Err(err) => {
                let overloaded = cause_ref::<LimitReached>(&err)
                    .unwrap_or_else(|| panic!("only the limiter may refuse a call, got: {err:?}"));
                assert!(
                    matches!(
                        overloaded.reason(),
                        Reason::QueueFull | Reason::WaitedTooLong(_)
                    ),
                    "{overloaded:?}"
                );
                if let Reason::WaitedTooLong(waited) = overloaded.reason() {
                    assert_eq!(waited, Duration::from_millis(200));
                }
                refused += 1;
            }
        }
    }
    done.store(true, Ordering::SeqCst);
    watcher.await.unwrap();

    let peak = peak.load(Ordering::SeqCst);
    assert!(
        peak <= POOL as i64,
        "the server saw {peak} connections, pool is {POOL}"
    );
    assert!(peak >= 1, "the watcher never saw the pool at work");
    assert_eq!(succeeded + refused, CALLERS);
    assert!(succeeded >= POOL, "only {succeeded} calls succeeded");
    assert!(
        refused > 0,
        "100 callers on 5 slots must overflow a queue of 20"
    );
    assert_eq!(limits.admitted() as usize, succeeded);
    assert_eq!(limits.rejected() as usize, refused);
    assert_eq!(limits.in_flight(), 0);
    assert_eq!(limits.queued(), 0);
}
