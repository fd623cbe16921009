//! Spans and metrics reach a real OTLP receiver, decoded and checked field by field.

use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use seawall_classify::{Class, FailureKind, RetryHint};
use seawall_telemetry::{Config, Exporter, Recorder, init, schema};
use seawall_tests::otlp::{self, attribute};
use tracing::Instrument;

const SECRET: &str = "hunter2-do-not-export";

/// A stand-in for an instrumented client call: a request span, an attempt span under it, a
/// retry event, and the error status on the failed attempt. The client's connection string
/// holds a password; its connection error is logged the way a service would log it, and the
/// password must not be exported.
async fn instrumented_request() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let database_url = format!("postgres://app:{SECRET}@127.0.0.1:{port}/orders");
    let request = tracing::info_span!("checkout.request", "seawall.layer" = "retry");
    async {
        let failure = tokio_postgres::connect(&database_url, tokio_postgres::NoTls)
            .await
            .err()
            .expect("nothing listens there");
        let class = seawall_classify::postgres::classify(&failure);
        let error = seawall_classify::Error::new(class, failure);
        tracing::warn!(error = %error, "error.type" = class.kind().map_or("none", |k| k.as_str()), "connect failed");
        let attempt = tracing::info_span!(
            "checkout.attempt",
            "seawall.retry.attempt" = 1,
            "otel.status_code" = "ERROR",
            "error.type" = "timeout"
        );
        async {
            tracing::info!(
                "seawall.failure.kind" = "timeout",
                "seawall.retry.delay_ms" = 100,
                "retrying"
            );
        }
        .instrument(attempt)
        .await;
    }
    .instrument(request)
    .await;
}

/// Seawall's own layers at work: a retry over a breaker over a client that always fails, so
/// that retries happen and the breaker opens. Their metrics come from their `tracing` events.
async fn real_layers() {
    use tower::{Layer, ServiceExt};
    let breaker = seawall_breaker::CircuitBreakerLayer::builder()
        .name("orders-db")
        .consecutive_faults(2)
        .build()
        .unwrap();
    let retry = seawall_retry::RetryLayer::builder()
        .max_attempts(3)
        .backoff(seawall_retry::Backoff::constant(Duration::from_millis(1)))
        .no_budget()
        .build()
        .unwrap();
    let client = tower::service_fn(|_: seawall_classify::WithDeadline<()>| async {
        seawall::trace::record_db_operation("SELECT", Some("orders"));
        Err::<(), _>(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
    });
    let span = seawall::trace::ClientSpanLayer::new(
        seawall::trace::ClientSpanConfig::postgresql()
            .namespace("shop")
            .server("db.internal", 5432),
    );
    let service = span.layer(retry.layer(breaker.layer(client)));
    let _ = service
        .oneshot(seawall_classify::WithDeadline::new(()))
        .await;
}

#[test]
fn spans_events_and_metrics_arrive_with_the_schema() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (addr, received) = runtime.block_on(seawall_tests::otlp::start());
    let guard = init(Config {
        service_name: "seawall-test".to_owned(),
        exporter: Exporter::Otlp(format!("http://{addr}")),
        log_filter: "debug".to_owned(),
        trace_filter: None,
        logs: false,
        export_timeout: Duration::from_secs(5),
    })
    .expect("telemetry set up");

    runtime.block_on(instrumented_request());
    runtime.block_on(real_layers());
    let recorder = Recorder::global();
    recorder.call(
        "retry",
        Class::failure(FailureKind::Timeout, RetryHint::Retry),
    );
    guard.shutdown().expect("everything exported");

    let everything: Vec<u8> = received
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(_, body)| body.clone())
        .collect();
    assert!(
        !String::from_utf8_lossy(&everything).contains(SECRET),
        "a secret was exported"
    );

    let resource = otlp::span_resources(&received)
        .into_iter()
        .next()
        .expect("a resource");
    assert_eq!(
        attribute(&resource.attributes, "service.name").as_deref(),
        Some("seawall-test")
    );
    let spans = otlp::spans(&received);
    let all: Vec<_> = spans.iter().collect();
    let request = all
        .iter()
        .find(|s| s.name == "checkout.request")
        .expect("request span");
    let attempt = all
        .iter()
        .find(|s| s.name == "checkout.attempt")
        .expect("attempt span");
    assert_eq!(
        attempt.parent_span_id, request.span_id,
        "the attempt is the request's child"
    );
    assert_eq!(attempt.trace_id, request.trace_id);
    assert_eq!(
        attribute(&request.attributes, schema::LAYER).as_deref(),
        Some("retry")
    );
    assert_eq!(
        attribute(&attempt.attributes, schema::RETRY_ATTEMPT).as_deref(),
        Some("1")
    );
    assert_eq!(
        attribute(&attempt.attributes, schema::ERROR_TYPE).as_deref(),
        Some("timeout")
    );
    let status = attempt.status.as_ref().expect("a status");
    assert_eq!(status.code, StatusCode::Error as i32);
    let event = attempt
        .events
        .iter()
        .find(|e| e.name == "retrying")
        .expect("the retry event");
    assert_eq!(
        attribute(&event.attributes, schema::FAILURE_KIND).as_deref(),
        Some("timeout")
    );

    let metrics = otlp::metric_names(&received);
    assert!(metrics.iter().any(|m| m == schema::CALLS), "{metrics:?}");
    // Recorded by the layers themselves, through their events.
    assert!(
        metrics.iter().any(|m| m == schema::BREAKER_TRANSITIONS),
        "{metrics:?}"
    );
    assert!(metrics.iter().any(|m| m == schema::RETRIES), "{metrics:?}");

    // The client span: kind client, named and attributed per the semantic conventions, with
    // one event per attempt. The third attempt met the breaker the first two had opened.
    let client = all
        .iter()
        .find(|s| s.name == "SELECT orders")
        .unwrap_or_else(|| {
            panic!(
                "the client span, named after the operation: {:?}",
                all.iter()
                    .map(|s| (&s.name, &s.attributes))
                    .collect::<Vec<_>>()
            )
        });
    assert_eq!(client.kind, SpanKind::Client as i32);
    for (key, value) in [
        (schema::DB_SYSTEM_NAME, "postgresql"),
        (schema::DB_NAMESPACE, "shop"),
        (schema::DB_OPERATION_NAME, "SELECT"),
        (schema::DB_COLLECTION_NAME, "orders"),
        (schema::SERVER_ADDRESS, "db.internal"),
        (schema::SERVER_PORT, "5432"),
        (schema::ERROR_TYPE, "rejected"),
        (schema::LAYER, "breaker"),
        (schema::BREAKER_NAME, "orders-db"),
        (schema::BREAKER_STATE, "open"),
        (schema::RETRY_ATTEMPTS, "3"),
    ] {
        assert_eq!(
            attribute(&client.attributes, key).as_deref(),
            Some(value),
            "{key}"
        );
    }
    let status = client.status.as_ref().expect("a status");
    assert_eq!(status.code, StatusCode::Error as i32);
    let attempts: Vec<_> = client
        .events
        .iter()
        .filter(|e| e.name == "attempt")
        .collect();
    let numbers: Vec<_> = attempts
        .iter()
        .map(|e| attribute(&e.attributes, schema::RETRY_ATTEMPT))
        .collect();
    assert_eq!(
        numbers,
        [Some("1".into()), Some("2".into()), Some("3".into())]
    );
    assert_eq!(
        attribute(&attempts[0].attributes, schema::RETRY_DELAY_MS).as_deref(),
        Some("1"),
        "the backoff before the second attempt"
    );
    assert_eq!(
        attribute(&attempts[2].attributes, schema::ERROR_TYPE).as_deref(),
        Some("rejected")
    );
    assert!(
        client
            .events
            .iter()
            .any(|e| e.name == "call refused: circuit breaker open"),
        "the refusal is an event of the span"
    );

    // The connection error was exported (as an event of the request span) without the
    // password of the connection string.
    let logged = request
        .events
        .iter()
        .find(|e| e.name == "connect failed")
        .expect("the error event");
    assert_eq!(
        attribute(&logged.attributes, schema::ERROR_TYPE).as_deref(),
        Some("connect")
    );
}
