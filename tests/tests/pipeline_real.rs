//! The standard pipeline around real clients: a deadpool-postgres pool and a redis
//! `ConnectionManager`, each reaching its server through the fault proxy. With
//! the dependency gone the breaker opens and calls are refused without touching the network;
//! once it is back, calls succeed again without restarting anything.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use seawall::breaker::{CircuitBreakerLayer, State};
use seawall::retry::{Backoff, RetryLayer};
use seawall::{BoxError, FailureKind, StandardPipeline, WithDeadline};
use seawall_chaos::proxy::Proxy;
use seawall_tests::{pg_config, pg_socket_addr, redis_socket_addr};
use tower::{Layer, ServiceExt, service_fn};

fn pipeline(name: &str, max: usize) -> StandardPipeline {
    StandardPipeline::new(name, max)
        .deadline(Duration::from_secs(3))
        .attempt_timeout(Duration::from_secs(1))
        .retry(
            RetryLayer::builder()
                .max_attempts(2)
                .backoff(Backoff::constant(Duration::from_millis(20))),
        )
        .circuit_breaker(
            CircuitBreakerLayer::builder()
                .name(name)
                .consecutive_faults(3)
                .open_duration(Duration::from_millis(200))
                .jitter(0.0),
        )
}

/// Calls `call` until it succeeds, for at most five seconds.
async fn until_ok<F, Fut, T>(mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, seawall::Error>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match call().await {
            Ok(value) => return value,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("the dependency never came back: {err:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_behind_the_pipeline_fails_fast_when_down_and_recovers() {
    let proxy = Proxy::start(pg_socket_addr()).await.unwrap();
    let addr = proxy.addr();
    let server = pg_config();
    let mut config = deadpool_postgres::Config::new();
    config.host = Some(addr.ip().to_string());
    config.port = Some(addr.port());
    config.user = server.get_user().map(str::to_owned);
    config.dbname = server.get_dbname().map(str::to_owned);
    config.connect_timeout = Some(Duration::from_secs(1));
    config.pool = Some(deadpool_postgres::PoolConfig {
        max_size: 4,
        timeouts: deadpool_postgres::Timeouts {
            wait: Some(Duration::from_secs(1)),
            create: Some(Duration::from_secs(1)),
            recycle: Some(Duration::from_secs(1)),
        },
        ..Default::default()
    });
    let pool = config
        .create_pool(
            Some(deadpool_postgres::Runtime::Tokio1),
            tokio_postgres::NoTls,
        )
        .unwrap();
    let reached = Arc::new(AtomicU32::new(0));

    let layer = pipeline("postgres", 4).build().unwrap();
    let breaker = layer.breaker().unwrap();
    let db = layer.layer(service_fn({
        let reached = reached.clone();
        move |_: WithDeadline<()>| {
            reached.fetch_add(1, Ordering::SeqCst);
            let pool = pool.clone();
            async move {
                let client = pool.get().await?;
                let row = client.query_one("SELECT 1::int4", &[]).await?;
                Ok::<i32, BoxError>(row.get(0))
            }
        }
    }));

    assert_eq!(db.clone().oneshot(WithDeadline::new(())).await.unwrap(), 1);

    // The server goes away: existing connections are cut and new ones refused.
    proxy.down();
    while breaker.state() != State::Open {
        let err = db.clone().oneshot(WithDeadline::new(())).await.unwrap_err();
        assert!(
            matches!(
                err.kind(),
                Some(FailureKind::Connect | FailureKind::Disconnect | FailureKind::Rejected)
            ),
            "{err:?}"
        );
    }
    let (reached_before, accepted_before) =
        (reached.load(Ordering::SeqCst), proxy.stats().accepted);
    for _ in 0..100 {
        let err = db.clone().oneshot(WithDeadline::new(())).await.unwrap_err();
        assert_eq!(err.kind(), Some(FailureKind::Rejected));
    }
    assert_eq!(
        reached.load(Ordering::SeqCst),
        reached_before,
        "the client was not called"
    );
    assert_eq!(
        proxy.stats().accepted,
        accepted_before,
        "nothing touched the network"
    );

    // Back: after the open period a probe gets through and the pool reconnects.
    proxy.up();
    let value = until_ok(|| db.clone().oneshot(WithDeadline::new(()))).await;
    assert_eq!(value, 1);
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_behind_the_pipeline_fails_fast_when_down_and_recovers() {
    let proxy = Proxy::start(redis_socket_addr()).await.unwrap();
    let client = redis::Client::open(format!("redis://{}/", proxy.addr())).unwrap();
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_response_timeout(Some(Duration::from_millis(500)));
    let manager = redis::aio::ConnectionManager::new_with_config(client, config)
        .await
        .unwrap();

    let layer = StandardPipeline::redis(16)
        .circuit_breaker(
            CircuitBreakerLayer::builder()
                .name("redis")
                .consecutive_faults(3)
                .open_duration(Duration::from_millis(200))
                .jitter(0.0),
        )
        .build()
        .unwrap();
    let breaker = layer.breaker().unwrap();
    let cache = layer.layer(service_fn(move |_: WithDeadline<()>| {
        let mut manager = manager.clone();
        async move { redis::cmd("PING").query_async::<String>(&mut manager).await }
    }));

    assert_eq!(
        cache.clone().oneshot(WithDeadline::new(())).await.unwrap(),
        "PONG"
    );
    proxy.down();
    let mut tries = 0;
    while breaker.state() != State::Open {
        let result = cache.clone().oneshot(WithDeadline::new(())).await;
        if result.is_ok() {
            // The connection outlived the reset (it was idle when the proxy went down, and a
            // reconnect got in before the refusal): reset it again.
            proxy.down();
        }
        tries += 1;
        assert!(
            tries < 1_000,
            "the breaker never opened ({:?}), the last call: {result:?}",
            breaker.state()
        );
    }
    let accepted_before = proxy.stats().accepted;
    for _ in 0..100 {
        let err = cache
            .clone()
            .oneshot(WithDeadline::new(()))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), Some(FailureKind::Rejected));
    }
    assert_eq!(
        proxy.stats().accepted,
        accepted_before,
        "nothing touched the network"
    );

    proxy.up();
    let pong = until_ok(|| cache.clone().oneshot(WithDeadline::new(()))).await;
    assert_eq!(pong, "PONG");
    assert_eq!(breaker.state(), State::Closed);
}
