//! The routes against the real PostgreSQL and Redis (each behind a fault proxy): bad input,
//! admin auth, idempotent writes, the read-through cache, and degradation.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Harness, TOKEN, request};
use http::{Method, StatusCode};
use http_body_util::Full;

fn unique(prefix: &str) -> String {
    seawall_tests::unique_name(prefix)
}

/// Checks the problem+json shape and that nothing internal shows.
fn assert_problem(reply: &common::Reply, status: StatusCode) {
    assert_eq!(
        reply.status,
        status,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let body = reply.json();
    assert_eq!(body["status"], status.as_u16());
    for field in ["type", "title", "detail"] {
        assert!(body[field].is_string(), "{field} missing: {body}");
    }
    let text = String::from_utf8_lossy(&reply.body).to_lowercase();
    for leak in [
        "select",
        "insert",
        "postgres://",
        "redis://",
        "sqlstate",
        "error:",
        "password",
    ] {
        assert!(!text.contains(leak), "the body leaks `{leak}`: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_gets_its_status_and_a_problem_body() {
    let harness = Harness::start().await;
    let mut client = harness.client();
    let json = |body: &str| Full::new(Bytes::from(body.to_owned()));
    let item = r#"{"name":"n","value":1}"#;
    let key = unique("bad");
    let big = format!(r#"{{"name":"n","value":1,"pad":"{}"}}"#, "x".repeat(70_000));
    let cases: Vec<(&str, http::Request<Full<Bytes>>, StatusCode)> = vec![
        (
            "malformed JSON",
            request(Method::POST, "/items")
                .header("content-type", "application/json")
                .header("idempotency-key", &key)
                .body(json("{\"name\":"))
                .unwrap(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "missing Idempotency-Key",
            request(Method::POST, "/items")
                .header("content-type", "application/json")
                .body(json(item))
                .unwrap(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "Idempotency-Key too long",
            request(Method::POST, "/items")
                .header("content-type", "application/json")
                .header("idempotency-key", "k".repeat(129))
                .body(json(item))
                .unwrap(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "Idempotency-Key with a space",
            request(Method::POST, "/items")
                .header("content-type", "application/json")
                .header("idempotency-key", "a b")
                .body(json(item))
                .unwrap(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad X-Request-Timeout-Ms",
            request(Method::GET, "/items/1")
                .header("x-request-timeout-ms", "soon")
                .body(Full::default())
                .unwrap(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown path",
            request(Method::GET, "/nothing/here")
                .body(Full::default())
                .unwrap(),
            StatusCode::NOT_FOUND,
        ),
        (
            "id not a number",
            request(Method::GET, "/items/abc")
                .body(Full::default())
                .unwrap(),
            StatusCode::NOT_FOUND,
        ),
        (
            "absent item",
            request(Method::GET, &format!("/items/{}", i64::MAX))
                .body(Full::default())
                .unwrap(),
            StatusCode::NOT_FOUND,
        ),
        (
            "DELETE /items",
            request(Method::DELETE, "/items")
                .body(Full::default())
                .unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            "PUT /items/1",
            request(Method::PUT, "/items/1").body(json(item)).unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            "POST /health",
            request(Method::POST, "/health")
                .body(Full::default())
                .unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            "body over 64 KiB",
            request(Method::POST, "/items")
                .header("content-type", "application/json")
                .header("idempotency-key", &key)
                .body(json(&big))
                .unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "text body",
            request(Method::POST, "/items")
                .header("content-type", "text/plain")
                .header("idempotency-key", &key)
                .body(json(item))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "no content type",
            request(Method::POST, "/items")
                .header("idempotency-key", &key)
                .body(json(item))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "empty name",
            request(Method::POST, "/items")
                .header("content-type", "application/json")
                .header("idempotency-key", &key)
                .body(json(r#"{"name":"","value":1}"#))
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "value not an integer",
            request(Method::POST, "/items")
                .header("content-type", "application/json")
                .header("idempotency-key", &key)
                .body(json(r#"{"name":"n","value":"1"}"#))
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "name too long",
            request(Method::POST, "/items")
                .header("content-type", "application/json")
                .header("idempotency-key", &key)
                .body(json(&format!(
                    r#"{{"name":"{}","value":1}}"#,
                    "n".repeat(201)
                )))
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (what, req, status) in cases {
        let method = req.method().clone();
        let reply = client.send(req).await.unwrap();
        assert_problem(&reply, status);
        if status == StatusCode::METHOD_NOT_ALLOWED {
            let allow = reply.header("allow").unwrap_or_default();
            assert!(
                !allow.is_empty() && !allow.contains(method.as_str()),
                "{what}: {allow}"
            );
        }
    }
    // Nothing was written under the key all those bad requests used, and the service serves.
    // On a new connection: the server may close the last one after an answer to a request
    // whose body it did not read, and a write resent after that race is a (correct) replay.
    let mut client = harness.client();
    let reply = client.post_item(&key, "n", 1).await.unwrap();
    assert_eq!(reply.status, StatusCode::CREATED);
    assert!(reply.header("idempotent-replayed").is_none());
    let id = reply.json()["id"].as_i64().unwrap();
    assert_eq!(
        client.get(&format!("/items/{id}")).await.unwrap().json()["name"],
        "n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_needs_the_token_and_is_off_without_one() {
    let harness = Harness::start().await;
    let mut client = harness.client();
    let admin = |path: &str, method: Method, token: Option<&str>| {
        let mut builder = request(method, path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        builder.body(Full::default()).unwrap()
    };
    for token in [
        None,
        Some("wrong-token-0123456789abc"),
        Some(&TOKEN[..TOKEN.len() - 1]),
    ] {
        let reply = client
            .send(admin("/admin/breakers", Method::GET, token))
            .await
            .unwrap();
        assert_problem(&reply, StatusCode::UNAUTHORIZED);
        let reply = client
            .send(admin(
                "/admin/breakers/postgres/isolate",
                Method::POST,
                token,
            ))
            .await
            .unwrap();
        assert_problem(&reply, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        harness
            .app
            .database()
            .breaker
            .as_ref()
            .unwrap()
            .state()
            .as_str(),
        "closed",
        "no unauthorised call changed anything"
    );
    let reply = client
        .send(admin("/admin/breakers", Method::GET, Some(TOKEN)))
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    let names: Vec<_> = reply.json()["breakers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["postgres", "redis"]);
    let reply = client
        .send(admin(
            "/admin/breakers/postgres/isolate",
            Method::POST,
            Some(TOKEN),
        ))
        .await
        .unwrap();
    assert_eq!(reply.json()["state"], "forced_open");
    let reply = client
        .send(admin(
            "/admin/breakers/postgres/reset",
            Method::POST,
            Some(TOKEN),
        ))
        .await
        .unwrap();
    assert_eq!(reply.json()["state"], "closed");
    let reply = client
        .send(admin(
            "/admin/breakers/nope/reset",
            Method::POST,
            Some(TOKEN),
        ))
        .await
        .unwrap();
    assert_problem(&reply, StatusCode::NOT_FOUND);
    let reply = client
        .send(admin(
            "/admin/breakers/postgres/reset",
            Method::GET,
            Some(TOKEN),
        ))
        .await
        .unwrap();
    assert_problem(&reply, StatusCode::METHOD_NOT_ALLOWED);

    let off = Harness::start_with(|vars| {
        vars.remove("ADMIN_TOKEN");
    })
    .await;
    let mut client = off.client();
    for token in [None, Some(TOKEN)] {
        let reply = client
            .send(admin("/admin/breakers", Method::GET, token))
            .await
            .unwrap();
        assert_problem(&reply, StatusCode::NOT_FOUND);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_key_never_writes_twice_even_concurrently() {
    let harness = Harness::start().await;
    let key = unique("idem");
    // Sixteen clients send the same write at once.
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let mut client = harness.client();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            client.post_item(&key, "same", 7).await.unwrap()
        }));
    }
    let mut ids = Vec::new();
    let mut replayed = 0;
    for task in tasks {
        let reply = task.await.unwrap();
        assert_eq!(reply.status, StatusCode::CREATED);
        replayed += usize::from(reply.header("idempotent-replayed") == Some("true"));
        ids.push(reply.json()["id"].as_i64().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every answer names the same row");
    assert_eq!(replayed, 15, "one write, fifteen replays");
    // A later retry (the first answer was lost) gets the same item; another body is refused.
    let mut client = harness.client();
    let again = client.post_item(&key, "same", 7).await.unwrap();
    assert_eq!(again.json()["id"].as_i64(), Some(ids[0]));
    let other = client.post_item(&key, "same", 8).await.unwrap();
    assert_problem(&other, StatusCode::UNPROCESSABLE_ENTITY);
    let db = seawall_tests::pg_connect().await;
    let rows = db
        .query_one(
            "SELECT count(*) FROM seawall_items WHERE idempotency_key = $1",
            &[&key],
        )
        .await
        .unwrap();
    assert_eq!(rows.get::<_, i64>(0), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_fill_the_cache_and_survive_either_dependency() {
    let harness = Harness::start().await;
    let mut client = harness.client();
    let created = client
        .post_item(&unique("read"), "cached", 1)
        .await
        .unwrap();
    let cached_id = created.json()["id"].as_i64().unwrap();
    let uncached = client
        .post_item(&unique("read"), "uncached", 2)
        .await
        .unwrap();
    let uncached_id = uncached.json()["id"].as_i64().unwrap();
    let path = format!("/items/{cached_id}");
    assert_eq!(
        client.get(&path).await.unwrap().header("x-cache"),
        Some("miss")
    );
    let hit = client.get(&path).await.unwrap();
    assert_eq!(hit.header("x-cache"), Some("hit"));
    assert_eq!(hit.json()["name"], "cached");

    // PostgreSQL isolated: cached reads still served, everything else fails fast with 503.
    let db_breaker = harness.app.database().breaker.clone().unwrap();
    db_breaker.force_open();
    let accepted = harness.pg.stats().accepted;
    assert_eq!(client.get(&path).await.unwrap().status, StatusCode::OK);
    let miss = client.get(&format!("/items/{uncached_id}")).await.unwrap();
    assert_problem(&miss, StatusCode::SERVICE_UNAVAILABLE);
    assert!(miss.header("retry-after").is_some());
    let write = client.post_item(&unique("read"), "w", 3).await.unwrap();
    assert_problem(&write, StatusCode::SERVICE_UNAVAILABLE);
    let retry_after: u64 = write.header("retry-after").unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    let health = client.get("/health").await.unwrap();
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.json()["status"], "down");
    assert_eq!(harness.pg.stats().accepted, accepted);
    db_breaker.reset();

    // Redis gone: reads come from PostgreSQL; once the breaker opens, Redis costs nothing.
    harness.redis.down();
    harness.redis.settled().await;
    let cache_breaker = harness.app.cache().breaker.clone().unwrap();
    let started = tokio::time::Instant::now();
    while cache_breaker.state().as_str() != "open" {
        let reply = client.get(&path).await.unwrap();
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json()["name"], "cached");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the Redis breaker never opened"
        );
    }
    let accepted = harness.redis.stats().accepted;
    for _ in 0..20 {
        let reply = client.get(&path).await.unwrap();
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("x-cache"), Some("bypass"));
    }
    assert_eq!(
        harness.redis.stats().accepted,
        accepted,
        "no Redis connection tried"
    );
    let health = client.get("/health").await.unwrap();
    assert_eq!(health.status, StatusCode::OK);
    let health = health.json();
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["dependencies"]["redis"]["status"], "down");
    assert_eq!(health["dependencies"]["redis"]["breaker"], "open");
    assert!(health["dependencies"]["redis"]["last_failure"]["class"].is_string());
    assert_eq!(health["dependencies"]["postgres"]["status"], "up");
    assert_eq!(health["dependencies"]["postgres"]["pool"]["max"], 8);

    // Redis back: the cache answers again without a restart.
    harness.redis.up();
    harness.redis.settled().await;
    let started = tokio::time::Instant::now();
    loop {
        let reply = client.get(&path).await.unwrap();
        if reply.header("x-cache") == Some("hit") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the cache never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A read PostgreSQL cannot answer is served from Redis's stale copy of the item, marked
/// `X-Cache: stale`: with its breaker open (at once, PostgreSQL untouched) and with the
/// server out of reach. An item never read has no stale copy and fails as before; writes
/// never fall back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_served_stale_when_postgresql_cannot_answer() {
    let harness = Harness::start().await;
    let mut client = harness.client();
    let created = client.post_item(&unique("stale"), "kept", 5).await.unwrap();
    let id = created.json()["id"].as_i64().unwrap();
    let never_read = client
        .post_item(&unique("stale"), "never read", 6)
        .await
        .unwrap();
    let never_read = format!("/items/{}", never_read.json()["id"].as_i64().unwrap());
    let path = format!("/items/{id}");
    // The first read fills the cache: the fresh copy and the stale one.
    assert_eq!(
        client.get(&path).await.unwrap().header("x-cache"),
        Some("miss")
    );
    // The fresh copy expires (deleted here, as its TTL would delete it).
    let mut redis = seawall_tests::redis_client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("DEL")
        .arg(format!("seawall:item:{id}"))
        .query_async(&mut redis)
        .await
        .unwrap();

    let db_breaker = harness.app.database().breaker.clone().unwrap();
    db_breaker.force_open();
    let accepted = harness.pg.stats().accepted;
    let stale = client.get(&path).await.unwrap();
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.header("x-cache"), Some("stale"));
    assert_eq!(stale.json()["name"], "kept");
    assert_eq!(stale.json()["value"], 5);
    assert_problem(
        &client.get(&never_read).await.unwrap(),
        StatusCode::SERVICE_UNAVAILABLE,
    );
    let write = client.post_item(&unique("stale"), "w", 7).await.unwrap();
    assert_problem(&write, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        harness.pg.stats().accepted,
        accepted,
        "PostgreSQL untouched"
    );
    db_breaker.reset();

    // PostgreSQL out of reach (its connections cut, new ones refused): the same answers,
    // once the attempts have failed or the breaker has opened.
    harness.pg.down();
    harness.pg.settled().await;
    for _ in 0..3 {
        let stale = client.get(&path).await.unwrap();
        assert_eq!(
            stale.status,
            StatusCode::OK,
            "{:?}",
            String::from_utf8_lossy(&stale.body)
        );
        assert_eq!(stale.header("x-cache"), Some("stale"));
        assert_eq!(stale.json()["name"], "kept");
    }
    assert_problem(
        &client.get(&never_read).await.unwrap(),
        StatusCode::SERVICE_UNAVAILABLE,
    );
    harness.pg.up();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_deadline_bounds_the_request() {
    let harness = Harness::start().await;
    let mut client = harness.client();
    let created = client.post_item(&unique("dl"), "slow", 1).await.unwrap();
    let id = created.json()["id"].as_i64().unwrap();
    // Both dependencies hang: the answer comes at the client's deadline, not the service's.
    harness.pg.set_mode(seawall_chaos::proxy::Mode::Blackhole);
    harness
        .redis
        .set_mode(seawall_chaos::proxy::Mode::Blackhole);
    let started = tokio::time::Instant::now();
    let reply = client
        .send(
            request(Method::GET, &format!("/items/{id}"))
                .header("x-request-timeout-ms", "300")
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(
        matches!(
            reply.status,
            StatusCode::GATEWAY_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE
        ),
        "{reply:?}"
    );
    assert_problem(&reply, reply.status);
    assert!(
        took < Duration::from_millis(1300),
        "took {took:?} for a 300 ms deadline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_in_prometheus_text() {
    let harness = Harness::start().await;
    let mut client = harness.client();
    client.get("/health").await.unwrap();
    let reply = client.get("/metrics").await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let text = String::from_utf8(reply.body.to_vec()).unwrap();
    for name in [
        "http_server_request_duration_seconds_bucket{",
        "http_route=\"/health\"",
        "db_client_connection_max{",
        "seawall_breaker_state{",
        "seawall_limit_value{",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
}

/// Two instances of the service on one Redis, with `vars` set on both, and their
/// `FLEET_NAME`.
async fn two_instances(vars: &[(&str, &str)]) -> (Harness, Harness, String) {
    let name = unique("fleet").replace(['.', ':'], "-");
    let settings = |all: &mut std::collections::HashMap<String, String>| {
        for (key, value) in vars {
            all.insert((*key).to_owned(), (*value).to_owned());
        }
        all.insert("FLEET_NAME".to_owned(), name.clone());
    };
    (
        Harness::start_with(settings).await,
        Harness::start_with(settings).await,
        name.clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_rate_of_postgresql_calls() {
    let (a, b, _) = two_instances(&[("FLEET_RATE_LIMIT", "2")]).await;
    let (mut client_a, mut client_b) = (a.client(), b.client());
    // The fleet's one token this half second goes to the first write; the other instance's
    // write, at once after it, finds the fleet's rate spent.
    let first = client_a.post_item(&unique("fleet"), "a", 1).await.unwrap();
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.json());
    let refused = client_b.post_item(&unique("fleet"), "b", 2).await.unwrap();
    assert_problem(&refused, StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.header("retry-after").is_some());
    // Half a second later the fleet has a token again, for either instance.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let later = client_b.post_item(&unique("fleet"), "b", 3).await.unwrap();
    assert_eq!(later.status, StatusCode::CREATED, "{:?}", later.json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_budget_of_postgresql_calls_in_flight() {
    let (a, b, name) =
        two_instances(&[("FLEET_DB_CONCURRENCY", "1"), ("DB_TIMEOUT_MS", "1500")]).await;
    let (mut client_a, mut client_b) = (a.client(), b.client());
    // The permits held in the fleet (leases in Redis's sorted set), waited for to be `wanted`.
    let mut redis = seawall_tests::redis_client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = format!("seawall-service:budget:{name}");
    let mut permits_become = async |wanted: u64| {
        for _ in 0..400 {
            let held: u64 = redis::cmd("ZCARD")
                .arg(&key)
                .query_async(&mut redis)
                .await
                .unwrap();
            if held == wanted {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("the fleet's permits never became {wanted}");
    };
    assert_eq!(
        client_b
            .post_item(&unique("fleet"), "b", 1)
            .await
            .unwrap()
            .status,
        StatusCode::CREATED
    );
    // B's permit goes back a moment after its response (removed by B's background task).
    permits_become(0).await;
    // While instance A's write is slow (PostgreSQL answers 300 ms late through A's proxy),
    // it holds the fleet's one call in flight, and instance B's write is refused.
    a.pg.set_mode(seawall_chaos::proxy::Mode::Latency {
        up: seawall_chaos::proxy::Delay::fixed(std::time::Duration::from_millis(300)),
        down: seawall_chaos::proxy::Delay::default(),
    });
    let slow = tokio::spawn(async move { client_a.post_item(&unique("fleet"), "slow", 2).await });
    permits_become(1).await;
    let other = client_b.post_item(&unique("fleet"), "b", 3).await.unwrap();
    assert_problem(&other, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(slow.await.unwrap().unwrap().status, StatusCode::CREATED);
    // A's call is over and its permit goes back: B's writes run again.
    permits_become(0).await;
    let after = client_b.post_item(&unique("fleet"), "b", 4).await.unwrap();
    assert_eq!(after.status, StatusCode::CREATED, "{:?}", after.json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_retried_inside_the_pipeline_is_not_marked_replayed() {
    use seawall::WithDeadline;
    use seawall_example_service::deps::{DbOp, DbReply, NewItem};
    use tower::ServiceExt;

    let h = Harness::start().await;
    let db = h.app.database().service.clone();
    let new = NewItem::new(unique("retried"), "gear".to_owned(), 7);
    let insert = |new: NewItem| db.clone().oneshot(WithDeadline::new(DbOp::Insert(new)));
    // The second attempt of one request (its first wrote the row, and its answer was lost):
    // the same request id.
    let DbReply::Created(first) = insert(new.clone()).await.unwrap() else {
        panic!("the first write creates the row");
    };
    assert_eq!(
        insert(new.clone()).await.unwrap(),
        DbReply::Created(first.clone()),
        "an attempt of the same request finds its own write: not a replay"
    );
    // Another request with the same key and body: a replay.
    let again = NewItem::new(new.key.clone(), new.name.clone(), new.value);
    assert_eq!(insert(again).await.unwrap(), DbReply::Replayed(first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calls_statement_timeout_does_not_stay_on_its_connection() {
    use seawall::WithDeadline;
    use seawall_example_service::deps::DbOp;
    use tower::ServiceExt;

    let h = Harness::start_with(|vars| {
        vars.insert("DB_POOL_MAX".to_owned(), "1".to_owned());
    })
    .await;
    let database = h.app.database();
    // A read with 300 ms left: its statement runs under a 300 ms timeout.
    database
        .service
        .clone()
        .oneshot(WithDeadline::new(DbOp::Get(-1)).deadline_in(Duration::from_millis(300)))
        .await
        .unwrap();
    // The pool's one connection, as the recovery probe or a later caller gets it.
    let client = database.pool.get().await.unwrap();
    let row = client
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "0", "the server's default again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_ping_goes_through_the_databases_concurrency_limit() {
    let h = Harness::start().await;
    let limit = h.app.database().limit.clone().unwrap();
    let before = limit.admitted();
    let mut client = h.client();
    let reply = client.get("/health").await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(
        limit.admitted(),
        before + 1,
        "the ping took a permit like any call"
    );
}
