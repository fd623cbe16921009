//! Shared by the service's tests: a service in-process behind fault proxies, and a small
//! keep-alive HTTP client.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::SocketAddr;

use seawall_chaos::proxy::Proxy;
#[allow(unused_imports)]
pub use seawall_example_service::client::{Client, Reply, request};
use seawall_example_service::{App, Config, Layers, Metrics, Running};

/// The admin token of the test services.
pub const TOKEN: &str = "test-admin-token-0123456789";

/// A service whose PostgreSQL and Redis are reached through fault proxies.
pub struct Harness {
    pub pg: Proxy,
    pub redis: Proxy,
    pub running: Running,
    pub app: App,
}

/// The variables of a test service: short timeouts so faults show within a test's time.
pub fn test_vars(pg: SocketAddr, redis: SocketAddr) -> HashMap<String, String> {
    let server = seawall_tests::pg_config();
    let user = server.get_user().unwrap_or("postgres");
    let db = server.get_dbname().unwrap_or("postgres");
    [
        ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
        ("DATABASE_URL", format!("postgres://{user}@{pg}/{db}")),
        ("REDIS_URL", format!("redis://{redis}/")),
        ("DB_POOL_MAX", "8".to_owned()),
        ("DB_POOL_WAIT_MS", "500".to_owned()),
        ("REQUEST_TIMEOUT_MS", "2000".to_owned()),
        ("DB_TIMEOUT_MS", "500".to_owned()),
        ("REDIS_TIMEOUT_MS", "100".to_owned()),
        ("CACHE_TTL_S", "60".to_owned()),
        ("SHUTDOWN_GRACE_MS", "3000".to_owned()),
        ("ADMIN_TOKEN", TOKEN.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(change: impl FnOnce(&mut HashMap<String, String>)) -> Harness {
        let pg = Proxy::start(seawall_tests::pg_socket_addr()).await.unwrap();
        let redis = Proxy::start(seawall_tests::redis_socket_addr())
            .await
            .unwrap();
        let mut vars = test_vars(pg.addr(), redis.addr());
        change(&mut vars);
        let config = Config::from_lookup(|name| vars.get(name).cloned()).unwrap();
        let app = App::new(config, Layers::Seawall, Metrics::standalone().unwrap())
            .await
            .unwrap();
        let running = Running::start(app.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Harness {
            pg,
            redis,
            running,
            app,
        }
    }

    pub fn client(&self) -> Client {
        Client::new(self.running.addr)
    }
}
