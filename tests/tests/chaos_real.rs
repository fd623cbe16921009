//! The fault proxy against the real PostgreSQL and Redis: each mode produces the error a
//! client really sees, classified as expected, and clients recover after `down()` / `up()`.

use std::time::Duration;

use seawall_chaos::proxy::{Delay, Mode, Proxy};
use seawall_classify::{FailureKind, known_class, postgres, redis as classify_redis};
use seawall_tests::{pg_config, pg_socket_addr, redis_socket_addr};
use tokio::time::Instant;

fn pg_config_via(proxy: &Proxy) -> tokio_postgres::Config {
    let server = pg_config();
    let mut config = tokio_postgres::Config::new();
    config
        .host(proxy.addr().ip().to_string())
        .port(proxy.addr().port())
        .user(server.get_user().unwrap_or("postgres"))
        .dbname(server.get_dbname().unwrap_or("postgres"))
        .connect_timeout(Duration::from_secs(2));
    config
}

async fn pg_via(proxy: &Proxy) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    seawall_tests::pg_connect_with(&pg_config_via(proxy)).await
}

fn redis_via(proxy: &Proxy) -> redis::Client {
    redis::Client::open(format!("redis://{}/", proxy.addr())).unwrap()
}

#[tokio::test]
async fn refused_connections_are_connect_failures() {
    let proxy = Proxy::start(pg_socket_addr()).await.unwrap();
    proxy.set_mode(Mode::Refuse);
    proxy.settled().await;
    let err = pg_via(&proxy).await.expect_err("the port is closed");
    assert_eq!(postgres::classify(&err).kind(), Some(FailureKind::Connect));

    let redis_proxy = Proxy::start(redis_socket_addr()).await.unwrap();
    redis_proxy.set_mode(Mode::Refuse);
    redis_proxy.settled().await;
    let err = redis_via(&redis_proxy)
        .get_multiplexed_async_connection()
        .await
        .expect_err("the port is closed");
    assert_eq!(
        classify_redis::classify(&err).kind(),
        Some(FailureKind::Connect)
    );
    proxy.shutdown().await;
    redis_proxy.shutdown().await;
}

#[tokio::test]
async fn reset_connections_are_disconnects() {
    let proxy = Proxy::start(pg_socket_addr()).await.unwrap();
    let client = pg_via(&proxy).await.unwrap();
    client.simple_query("SELECT 1").await.unwrap();
    proxy.reset();
    let err = loop {
        // The reset lands asynchronously; the next query after it fails.
        match client.simple_query("SELECT 1").await {
            Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            Err(err) => break err,
        }
    };
    assert_eq!(
        known_class(&err).and_then(|c| c.kind()),
        Some(FailureKind::Disconnect)
    );

    let redis_proxy = Proxy::start(redis_socket_addr()).await.unwrap();
    let mut conn = redis_via(&redis_proxy)
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    redis_proxy.reset();
    let err = loop {
        match redis::cmd("PING").query_async::<String>(&mut conn).await {
            Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            Err(err) => break err,
        }
    };
    assert_eq!(
        classify_redis::classify(&err).kind(),
        Some(FailureKind::Disconnect)
    );
    proxy.shutdown().await;
    redis_proxy.shutdown().await;
}

#[tokio::test]
async fn a_blackhole_ends_in_the_clients_own_timeout() {
    let proxy = Proxy::start(pg_socket_addr()).await.unwrap();
    let client = pg_via(&proxy).await.unwrap();
    proxy.set_mode(Mode::Blackhole);
    let err = tokio::time::timeout(Duration::from_millis(200), client.simple_query("SELECT 1"))
        .await
        .expect_err("nothing comes back");
    assert_eq!(
        known_class(&err).and_then(|c| c.kind()),
        Some(FailureKind::Timeout)
    );

    let redis_proxy = Proxy::start(redis_socket_addr()).await.unwrap();
    let config =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_millis(200)));
    let mut conn = redis_via(&redis_proxy)
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap();
    redis_proxy.set_mode(Mode::Blackhole);
    let err = redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .unwrap_err();
    assert_eq!(
        classify_redis::classify(&err).kind(),
        Some(FailureKind::Timeout)
    );
    proxy.shutdown().await;
    redis_proxy.shutdown().await;
}

#[tokio::test]
async fn latency_slows_round_trips_by_at_least_the_delay() {
    let proxy = Proxy::start(pg_socket_addr()).await.unwrap();
    let client = pg_via(&proxy).await.unwrap();
    let delay = Duration::from_millis(60);
    proxy.set_mode(Mode::Latency {
        up: Delay::fixed(delay),
        down: Delay::default(),
    });
    let start = Instant::now();
    client.simple_query("SELECT 1").await.unwrap();
    assert!(
        start.elapsed() >= delay,
        "a round trip took {:?}",
        start.elapsed()
    );

    let redis_proxy = Proxy::start(redis_socket_addr()).await.unwrap();
    let mut conn = redis_via(&redis_proxy)
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis_proxy.set_mode(Mode::Latency {
        up: Delay::default(),
        down: Delay::fixed(delay),
    });
    let start = Instant::now();
    let _: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    assert!(start.elapsed() >= delay);
    proxy.shutdown().await;
    redis_proxy.shutdown().await;
}

#[tokio::test]
async fn cut_after_bytes_and_counts() {
    let proxy = Proxy::start(pg_socket_addr()).await.unwrap();
    let client = pg_via(&proxy).await.unwrap();
    client.simple_query("SELECT 1").await.unwrap();
    let before = proxy.stats();
    assert_eq!(before.accepted, 1);
    assert_eq!(before.active, 1);
    assert!(before.bytes_up > 0 && before.bytes_down > 0);
    proxy.set_mode(Mode::CutAfter(before.bytes_up + before.bytes_down + 10));
    let err = loop {
        match client.simple_query("SELECT repeat('x', 10000)").await {
            Ok(_) => continue,
            Err(err) => break err,
        }
    };
    assert_eq!(
        known_class(&err).and_then(|c| c.kind()),
        Some(FailureKind::Disconnect)
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn pools_and_connection_managers_recover_after_down_and_up() {
    let proxy = Proxy::start(pg_socket_addr()).await.unwrap();
    let mut config = deadpool_postgres::Config::new();
    config.host = Some(proxy.addr().ip().to_string());
    config.port = Some(proxy.addr().port());
    config.user = pg_config().get_user().map(str::to_owned);
    config.dbname = pg_config().get_dbname().map(str::to_owned);
    config.connect_timeout = Some(Duration::from_secs(1));
    let pool = config
        .create_pool(
            Some(deadpool_postgres::Runtime::Tokio1),
            tokio_postgres::NoTls,
        )
        .unwrap();
    let query = || async {
        let client = pool.get().await?;
        client.simple_query("SELECT 1").await?;
        Ok::<_, deadpool_postgres::PoolError>(())
    };
    query().await.unwrap();

    let redis_proxy = Proxy::start(redis_socket_addr()).await.unwrap();
    let manager_config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_response_timeout(Some(Duration::from_millis(500)));
    let mut manager =
        redis::aio::ConnectionManager::new_with_config(redis_via(&redis_proxy), manager_config)
            .await
            .unwrap();
    let _: String = redis::cmd("PING").query_async(&mut manager).await.unwrap();

    proxy.down();
    redis_proxy.down();
    proxy.settled().await;
    redis_proxy.settled().await;
    assert!(query().await.is_err(), "the database is down");
    assert!(
        redis::cmd("PING")
            .query_async::<String>(&mut manager)
            .await
            .is_err()
    );

    proxy.up();
    redis_proxy.up();
    let deadline = Instant::now() + Duration::from_secs(5);
    while query().await.is_err() {
        assert!(Instant::now() < deadline, "the pool never recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while redis::cmd("PING")
        .query_async::<String>(&mut manager)
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the connection manager never recovered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let addr = proxy.addr();
    proxy.shutdown().await;
    redis_proxy.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the port closed on shutdown"
    );
}
