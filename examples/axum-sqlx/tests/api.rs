//! The example against the real PostgreSQL (behind the fault proxy) and Redis, served on
//! loopback and driven over HTTP.

use std::time::Duration;

use seawall_chaos::proxy::Proxy;
use seawall_example_axum_sqlx::{AppState, Item, app, create_schema};
use seawall_tests::{pg_socket_addr, redis_url};
use serde_json::{Value, json};

struct Running {
    base: String,
    proxy: Proxy,
    http: reqwest::Client,
    state: AppState,
}

async fn start() -> Running {
    let proxy = Proxy::start(pg_socket_addr()).await.unwrap();
    let url = format!("postgres://postgres@{}/postgres", proxy.addr());
    // A short acquire timeout: with the database down, each attempt gives up quickly and
    // the request's 2 s deadline holds all three attempts with room to spare.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_millis(200))
        .connect(&url)
        .await
        .expect("PostgreSQL through the proxy: is scripts/services.sh running?");
    create_schema(&pool).await.unwrap();
    let redis = redis::aio::ConnectionManager::new(redis::Client::open(redis_url()).unwrap())
        .await
        .unwrap();
    let state = AppState::new(pool, redis).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = app(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Running {
        base,
        proxy,
        http: reqwest::Client::new(),
        state,
    }
}

impl Running {
    async fn post(&self, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}/items", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, id: i64) -> reqwest::Response {
        self.http
            .get(format!("{}/items/{id}", self.base))
            .send()
            .await
            .unwrap()
    }
}

fn cache(response: &reqwest::Response) -> &str {
    response.headers()["x-cache"].to_str().unwrap()
}

#[tokio::test]
async fn writes_and_reads_through_the_cache_and_survives_the_database_going_down() {
    let app = start().await;

    let created = app.post(json!({ "name": "anchor", "value": 7 })).await;
    assert_eq!(created.status(), 201);
    let item: Item = created.json().await.unwrap();
    assert_eq!((item.name.as_str(), item.value), ("anchor", 7));

    let first = app.get(item.id).await;
    assert_eq!((first.status().as_u16(), cache(&first)), (200, "miss"));
    assert_eq!(first.json::<Item>().await.unwrap(), item);
    let second = app.get(item.id).await;
    assert_eq!((second.status().as_u16(), cache(&second)), (200, "hit"));

    // The caller's mistakes: 422 and 400, problem+json, and the breaker does not notice.
    let empty = app.post(json!({ "name": "", "value": 1 })).await;
    assert_eq!(empty.status(), 422);
    let broken = app
        .http
        .post(format!("{}/items", app.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), 400);
    assert_eq!(app.get(i64::MAX).await.status(), 404);

    // A second item, written but never read: not in the cache.
    let other: Item = app
        .post(json!({ "name": "other", "value": 8 }))
        .await
        .json()
        .await
        .unwrap();

    // The database goes down. The cached item is still served; the other is answered at once
    // with 503, problem+json and a Retry-After, without the database's own message.
    app.proxy.down();
    let cached = app.get(item.id).await;
    assert_eq!((cached.status().as_u16(), cache(&cached)), (200, "hit"));
    let failed = app.get(other.id).await;
    assert_eq!(failed.status(), 503);
    assert_eq!(failed.headers()["content-type"], "application/problem+json");
    assert!(failed.headers().contains_key("retry-after"));
    let body = failed.text().await.unwrap();
    assert!(!body.contains("127.0.0.1"), "internals leaked: {body}");

    // Back up: served again once the breaker lets a call through.
    app.proxy.up();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let again = app.get(other.id).await;
        if again.status() == 200 {
            assert_eq!(again.json::<Item>().await.unwrap(), other);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not back within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        app.state.db_breaker.state(),
        seawall::breaker::State::Closed
    );
}
