//! The binary as its README runs it, exporting to an OTLP receiver with the default log
//! filter: what arrives, decoded with the OpenTelemetry protobuf definitions, has a client
//! span per PostgreSQL and Redis call under the request's server span, with the semantic
//! conventions' attributes, and a request refused by an open breaker shows the refusal.

mod common;

use std::collections::HashMap;

use common::{Client, test_vars};
use http::StatusCode;
use seawall_chaos::proxy::Proxy;
use seawall_tests::otlp::{self, Span, attribute};

const CLIENT: i32 = 3;
const SERVER: i32 = 2;
const ERROR: i32 = 2;

fn attr(span: &Span, key: &str) -> Option<String> {
    attribute(&span.attributes, key)
}

/// The client spans under `server`, in start order, as `name` (kind client checked).
fn children<'a>(spans: &'a [Span], server: &Span) -> Vec<&'a Span> {
    let mut children: Vec<_> = spans
        .iter()
        .filter(|s| s.parent_span_id == server.span_id)
        .collect();
    children.sort_by_key(|s| s.start_time_unix_nano);
    for child in &children {
        assert_eq!(child.kind, CLIENT, "{} is a client span", child.name);
        assert_eq!(child.trace_id, server.trace_id);
    }
    children
}

/// The traces as a tree, one line per span: name, kind, duration and the attributes that say
/// what happened (the README's picture of a trace comes from here).
fn render(spans: &[Span]) -> String {
    const SHOWN: [&str; 9] = [
        "db.system.name",
        "server.port",
        "http.response.status_code",
        "seawall.class",
        "error.type",
        "seawall.retry.attempts",
        "seawall.layer",
        "seawall.breaker.state",
        "seawall.limit.queue_wait_ms",
    ];
    fn line(out: &mut String, spans: &[Span], span: &Span, depth: usize) {
        let kind = match span.kind {
            SERVER => "server",
            CLIENT => "client",
            _ => "internal",
        };
        let ms = (span.end_time_unix_nano - span.start_time_unix_nano) as f64 / 1e6;
        let attributes: Vec<String> = SHOWN
            .iter()
            .filter_map(|key| attr(span, key).map(|v| format!("{key}={v}")))
            .collect();
        let events: Vec<String> = span
            .events
            .iter()
            .map(
                |e| match attribute(&e.attributes, "seawall.retry.attempt") {
                    Some(n) => format!("{} {n}", e.name),
                    None => e.name.clone(),
                },
            )
            .collect();
        out.push_str(&format!(
            "{}{} [{kind}] {ms:.1} ms  {}{}\n",
            "  ".repeat(depth),
            span.name,
            attributes.join(" "),
            if events.is_empty() {
                String::new()
            } else {
                format!("  events: {}", events.join(", "))
            }
        ));
        let mut children: Vec<&Span> = spans
            .iter()
            .filter(|s| s.parent_span_id == span.span_id)
            .collect();
        children.sort_by_key(|s| s.start_time_unix_nano);
        for child in children {
            line(out, spans, child, depth + 1);
        }
    }
    let mut roots: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id.is_empty())
        .collect();
    roots.sort_by_key(|s| s.start_time_unix_nano);
    let mut out = String::new();
    for root in roots {
        line(&mut out, spans, root, 0);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependency_calls_are_client_spans_under_the_server_span() {
    let (receiver, received) = otlp::start().await;
    let pg = Proxy::start(seawall_tests::pg_socket_addr()).await.unwrap();
    let redis = Proxy::start(seawall_tests::redis_socket_addr())
        .await
        .unwrap();
    let port = seawall_tests::closed_port();
    let mut vars: HashMap<String, String> = test_vars(pg.addr(), redis.addr());
    vars.insert("LISTEN_ADDR".into(), format!("127.0.0.1:{port}"));
    vars.insert(
        "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
        format!("http://{receiver}"),
    );
    let mut binary = common::Binary::start(&vars).await;
    let mut client = Client::new(format!("127.0.0.1:{port}").parse().unwrap());

    let key = seawall_tests::unique_name("traced");
    let created = client.post_item(&key, "traced", 7).await.unwrap();
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.json()["id"].as_i64().unwrap();
    let read = client.get(&format!("/items/{id}")).await.unwrap();
    assert_eq!(read.status, StatusCode::OK);

    // PostgreSQL down: reads of an item not in the cache fail until the breaker opens, then
    // are refused by it without a call.
    pg.down();
    let mut refused = false;
    for _ in 0..30 {
        let reply = client.get("/items/987654321").await.unwrap();
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        let metrics = client.get("/health").await.unwrap();
        if metrics.json()["dependencies"]["postgres"]["breaker"] == "open" {
            refused = true;
            let reply = client.get("/items/987654322").await.unwrap();
            assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
            break;
        }
    }
    assert!(refused, "the breaker opened");
    pg.up();

    // SIGTERM: the service drains and its telemetry guard flushes every span.
    assert_eq!(binary.terminate().await.code(), Some(0));

    let spans = otlp::spans(&received);
    eprintln!("{}", render(&spans));
    let server = |name: &str| -> Vec<&Span> {
        spans
            .iter()
            .filter(|s| s.name == name && s.kind == SERVER)
            .collect()
    };

    // POST: the server span, then PostgreSQL's INSERT.
    let post = server("POST /items");
    assert_eq!(post.len(), 1, "one POST");
    let calls = children(&spans, post[0]);
    let names: Vec<_> = calls.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["INSERT seawall_items"]);
    let insert = calls[0];
    for (key, value) in [
        ("db.system.name", "postgresql"),
        ("db.operation.name", "INSERT"),
        ("db.collection.name", "seawall_items"),
        (
            "db.namespace",
            seawall_tests::pg_config()
                .get_dbname()
                .unwrap_or("postgres"),
        ),
        ("server.address", "127.0.0.1"),
        ("server.port", &pg.addr().port().to_string()),
        ("seawall.class", "success"),
    ] {
        assert_eq!(attr(insert, key).as_deref(), Some(value), "INSERT {key}");
    }
    assert_eq!(attr(insert, "error.type"), None);

    // GET of an item not cached yet: Redis GET (a miss), PostgreSQL SELECT, Redis SET.
    let gets = server("GET /items/{id}");
    let first = gets
        .iter()
        .copied()
        .find(|get| {
            children(&spans, get)
                .first()
                .is_some_and(|c| attr(c, "seawall.class").as_deref() == Some("success"))
        })
        .expect("the successful GET");
    let calls = children(&spans, first);
    let names: Vec<_> = calls.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["GET", "SELECT seawall_items", "SET"]);
    for redis_call in [calls[0], calls[2]] {
        assert_eq!(attr(redis_call, "db.system.name").as_deref(), Some("redis"));
        assert_eq!(
            attr(redis_call, "server.port").as_deref(),
            Some(redis.addr().port().to_string().as_str())
        );
        assert_eq!(attr(redis_call, "db.namespace").as_deref(), Some("0"));
    }

    // With PostgreSQL down: failed calls carry the error type and status Error, with an
    // event per attempt; then the breaker refuses, and the span says who refused.
    let failed: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == "SELECT seawall_items" && attr(s, "error.type").is_some())
        .collect();
    assert!(!failed.is_empty());
    let connect = failed
        .iter()
        .find(|s| attr(s, "error.type").as_deref() == Some("connect"))
        .expect("a call that failed to connect");
    assert_eq!(connect.status.as_ref().unwrap().code, ERROR);
    let attempts = connect
        .events
        .iter()
        .filter(|e| e.name == "attempt")
        .count();
    assert!(attempts >= 1, "attempt events on the span");
    let rejected = spans
        .iter()
        .find(|s| attr(s, "seawall.layer").as_deref() == Some("breaker"))
        .expect("a call refused by the breaker");
    assert_eq!(attr(rejected, "error.type").as_deref(), Some("rejected"));
    assert_eq!(
        attr(rejected, "seawall.breaker.state").as_deref(),
        Some("open")
    );
    assert_eq!(rejected.status.as_ref().unwrap().code, ERROR);
    assert!(
        rejected
            .events
            .iter()
            .any(|e| e.name == "call refused: circuit breaker open"),
        "the refusal is an event of the span"
    );
    // A refused call's server span is the refused GET's (the `/health` ping is refused by
    // the open breaker too, under `GET /health`).
    let parents: Vec<&str> = spans
        .iter()
        .filter(|s| attr(s, "seawall.layer").as_deref() == Some("breaker"))
        .filter_map(|refused| {
            spans
                .iter()
                .find(|s| s.span_id == refused.parent_span_id)
                .map(|parent| parent.name.as_str())
        })
        .collect();
    assert!(parents.contains(&"GET /items/{id}"), "{parents:?}");
}
