//! Shared helpers for Seawall's integration tests against real PostgreSQL and Redis.
//!
//! The servers come from `DATABASE_URL` and `REDIS_URL`, defaulting to the local servers that
//! `scripts/services.sh` makes sure are running.

pub mod otlp;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The PostgreSQL URL the tests use: `DATABASE_URL`, or the local server.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The Redis URL the tests use: `REDIS_URL`, or the local server.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

/// The PostgreSQL connection settings parsed from [`database_url`].
pub fn pg_config() -> tokio_postgres::Config {
    database_url()
        .parse()
        .expect("DATABASE_URL is not a valid PostgreSQL connection string")
}

/// Opens a PostgreSQL connection and drives it on a background task.
pub async fn pg_connect() -> tokio_postgres::Client {
    pg_connect_with(&pg_config())
        .await
        .expect("cannot connect to PostgreSQL: is scripts/services.sh running?")
}

/// Opens a PostgreSQL connection with the given settings, driving it on a background task.
pub async fn pg_connect_with(
    config: &tokio_postgres::Config,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        // The connection ends with an error when a test kills it on purpose.
        let _ = connection.await;
    });
    Ok(client)
}

/// A Redis client for [`redis_url`].
pub fn redis_client() -> redis::Client {
    redis::Client::open(redis_url()).expect("REDIS_URL is not a valid Redis URL")
}

/// A name no other test (or concurrent test run) uses, for tables, keys and roles.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A loopback port with nothing listening on it.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    port
}

/// Polls `check` every 10 ms until it returns `true`, for at most `limit`.
///
/// For waiting on a real server's state (a query showing up in `pg_stat_activity`, say);
/// panics with `what` if the state never arrives, so a test never hangs.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The socket address of the PostgreSQL server the tests use.
pub fn pg_socket_addr() -> std::net::SocketAddr {
    use tokio_postgres::config::Host;
    let config = pg_config();
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .expect("resolve the PostgreSQL host")
        .next()
        .expect("an address for the PostgreSQL host")
}

/// The socket address of the Redis server the tests use.
pub fn redis_socket_addr() -> std::net::SocketAddr {
    let info = redis_client().get_connection_info().clone();
    let (host, port) = match info.addr() {
        redis::ConnectionAddr::Tcp(host, port) => (host.clone(), *port),
        _ => ("127.0.0.1".to_owned(), 6379),
    };
    std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .expect("resolve the Redis host")
        .next()
        .expect("an address for the Redis host")
}
