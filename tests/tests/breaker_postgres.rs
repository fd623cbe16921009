//! The circuit breaker in front of a real PostgreSQL that goes away and comes back (through
//! the fault proxy).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use seawall_breaker::{CircuitBreakerLayer, State, error::BreakerOpen};
use seawall_chaos::proxy::{Mode, Proxy};
use seawall_classify::{BoxError, FailureKind, cause_ref};
use seawall_tests::{pg_config, pg_socket_addr};
use tower::{Layer, Service, ServiceExt, service_fn};

#[tokio::test]
async fn opens_while_postgres_is_unreachable_and_a_probe_closes_it() {
    let proxy = Proxy::start(pg_socket_addr()).await.unwrap();
    proxy.set_mode(Mode::Refuse);
    proxy.settled().await;
    let addr = proxy.addr();
    let reached = Arc::new(AtomicU32::new(0));

    let layer = CircuitBreakerLayer::builder()
        .name("postgres")
        .consecutive_faults(3)
        .open_duration(Duration::from_millis(200))
        .jitter(0.0)
        .build()
        .unwrap();
    let breaker = layer.handle();
    let mut service = layer.layer(service_fn({
        let reached = reached.clone();
        move |sql: &'static str| {
            reached.fetch_add(1, Ordering::SeqCst);
            let server = pg_config();
            let mut config = tokio_postgres::Config::new();
            config
                .host(addr.ip().to_string())
                .port(addr.port())
                .user(server.get_user().unwrap_or("postgres"))
                .dbname(server.get_dbname().unwrap_or("postgres"))
                .connect_timeout(Duration::from_secs(5));
            async move {
                let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client.simple_query(sql).await?;
                Ok::<_, BoxError>(())
            }
        }
    }));

    // The server is unreachable: three connection failures open the breaker.
    for _ in 0..3 {
        let err = service
            .ready()
            .await
            .unwrap()
            .call("SELECT 1")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), Some(FailureKind::Connect));
    }
    assert_eq!(breaker.state(), State::Open);

    // Open: calls fail at once and never reach the client or the network.
    let reached_before = reached.load(Ordering::SeqCst);
    for _ in 0..1_000 {
        let err = service
            .ready()
            .await
            .unwrap()
            .call("SELECT 1")
            .await
            .unwrap_err();
        let open = cause_ref::<BreakerOpen>(&err).expect("refused by the breaker");
        assert_eq!(open.name(), "postgres");
    }
    assert_eq!(reached.load(Ordering::SeqCst), reached_before);
    assert_eq!(proxy.stats().accepted, 0);

    // The server answers again; once the open period is over, one probe closes the breaker.
    proxy.up();
    proxy.settled().await;
    tokio::time::sleep(breaker.retry_after().unwrap_or_default()).await;
    service
        .ready()
        .await
        .unwrap()
        .call("SELECT 1")
        .await
        .expect("the probe reaches the server");
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(proxy.stats().accepted, 1);
    proxy.shutdown().await;
}
