//! The example's binary against the real PostgreSQL and Redis, each behind the fault proxy,
//! driven over HTTP on loopback.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use seawall_chaos::proxy::{Delay, Mode, Proxy};
use seawall_tests::{pg_socket_addr, redis_socket_addr};
use serde_json::{Value, json};

struct Running {
    base: String,
    pg: Proxy,
    redis: Proxy,
    http: reqwest::Client,
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(budget_ms: u64) -> Running {
    let pg = Proxy::start(pg_socket_addr()).await.unwrap();
    let redis = Proxy::start(redis_socket_addr()).await.unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_seawall-example-axum-sqlx"))
        .env(
            "DATABASE_URL",
            format!("postgres://postgres@{}/postgres", pg.addr()),
        )
        .env("REDIS_URL", format!("redis://{}/", redis.addr()))
        .env("ADDR", "127.0.0.1:0")
        .env("BUDGET_MS", budget_ms.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map(|_| line)
    })
    .await
    .unwrap()
    .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| {
            panic!("the example did not start (is scripts/services.sh running?): {line:?}")
        })
        .to_owned();
    Running {
        base,
        pg,
        redis,
        http: reqwest::Client::new(),
        child,
    }
}

impl Running {
    async fn post(&self, body: Value) -> reqwest::Response {
        let url = format!("{}/items", self.base);
        self.http.post(url).json(&body).send().await.unwrap()
    }

    async fn get(&self, id: i64) -> reqwest::Response {
        let url = format!("{}/items/{id}", self.base);
        self.http.get(url).send().await.unwrap()
    }

    async fn create(&self, name: &str) -> i64 {
        let created = self.post(json!({ "name": name, "value": 7 })).await;
        assert_eq!(created.status(), 201);
        created.json::<Value>().await.unwrap()["id"]
            .as_i64()
            .unwrap()
    }
}

fn cache(response: &reqwest::Response) -> &str {
    response.headers()["x-cache"].to_str().unwrap()
}

#[tokio::test]
async fn writes_and_reads_through_the_cache_and_survives_the_database_going_down() {
    let app = start(2000).await;

    let created = app.post(json!({ "name": "anchor", "value": 7 })).await;
    assert_eq!(created.status(), 201);
    let item: Value = created.json().await.unwrap();
    assert_eq!(
        (&item["name"], &item["value"]),
        (&json!("anchor"), &json!(7))
    );
    let id = item["id"].as_i64().unwrap();

    let first = app.get(id).await;
    assert_eq!((first.status().as_u16(), cache(&first)), (200, "miss"));
    assert_eq!(first.json::<Value>().await.unwrap(), item);
    let second = app.get(id).await;
    assert_eq!((second.status().as_u16(), cache(&second)), (200, "hit"));

    // The caller's mistakes: 400 with problem+json, and an unknown id 404.
    let empty = app.post(json!({ "name": "", "value": 1 })).await;
    assert_eq!(empty.status(), 400);
    assert_eq!(empty.headers()["content-type"], "application/problem+json");
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
    let other = app.create("other").await;

    // The database goes down. The cached item is still served; the other is answered at once
    // with 503, problem+json and a Retry-After, without the database's own message.
    app.pg.down();
    let cached = app.get(id).await;
    assert_eq!((cached.status().as_u16(), cache(&cached)), (200, "hit"));
    let failed = app.get(other).await;
    assert_eq!(failed.status(), 503);
    assert_eq!(failed.headers()["content-type"], "application/problem+json");
    assert!(failed.headers().contains_key("retry-after"));
    let body = failed.text().await.unwrap();
    assert!(!body.contains("127.0.0.1"), "internals leaked: {body}");

    // Back up: served again once the breaker lets a call through.
    app.pg.up();
    let until = tokio::time::Instant::now() + Duration::from_secs(15);
    while app.get(other).await.status() != 200 {
        assert!(tokio::time::Instant::now() < until, "not back within 15 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_read_whose_calls_each_fit_its_budget_but_not_together_fails_at_its_one_deadline() {
    // A 500 ms budget per request.
    let app = start(500).await;
    let id = app.create("slow").await;

    // Each call alone fits the budget: Redis answers 400 ms late (inside the Redis preset's
    // 500 ms attempt timeout), PostgreSQL 60 ms late per round trip (the pool's check of the
    // connection and the query: at least 120 ms, inside its 300 ms acquire timeout).
    app.redis.set_mode(Mode::Latency {
        up: Delay::fixed(Duration::from_millis(400)),
        down: Delay::default(),
    });
    app.pg.set_mode(Mode::Latency {
        up: Delay::fixed(Duration::from_millis(60)),
        down: Delay::default(),
    });

    // The read misses the cache (at least 400 ms), leaving at most 100 ms of its one
    // deadline for a database call that takes at least 120 ms: 504, at the deadline. With a
    // deadline per call, the database call would have had 500 ms of its own and the read
    // answered 200 after the deadline.
    let slow = app.get(id).await;
    assert_eq!(slow.status(), 504);
    assert_eq!(slow.headers()["content-type"], "application/problem+json");
    let body: Value = slow.json().await.unwrap();
    assert_eq!(body["seawall_class"], "timeout");
}
