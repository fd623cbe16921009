//! The client span as a subscriber sees it: one per call, a child of the caller's span, at
//! the configured level, with the dependency's attributes, the outcome, and what the layers
//! did; HTTP and gRPC calls recorded by `RecordHttpLayer` without credentials or query.

#![cfg(feature = "http")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall::trace::{ClientSpanConfig, RecordHttpLayer, record_db_operation, record_rpc_method};
use seawall::{StandardPipeline, WithDeadline};
use tower::{Layer, ServiceExt, service_fn};
use tracing::Level;
use tracing::field::{Field, Visit};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// What a subscriber saw of each span: its name, its parent's name, its fields as recorded,
/// and the messages of the events inside it.
#[derive(Debug, Default, Clone)]
struct Seen {
    name: String,
    parent: Option<String>,
    fields: BTreeMap<String, String>,
    events: Vec<String>,
}

#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Seen>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Spans {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let span = ctx.span(id).unwrap();
        let mut seen = Seen {
            name: attrs.metadata().name().to_owned(),
            parent: span.parent().map(|p| p.name().to_owned()),
            ..Seen::default()
        };
        attrs.record(&mut Fields(&mut seen.fields));
        let mut spans = self.0.lock().unwrap();
        span.extensions_mut().insert(spans.len());
        spans.push(seen);
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        let span = ctx.span(id).unwrap();
        let index = *span.extensions().get::<usize>().unwrap();
        values.record(&mut Fields(&mut self.0.lock().unwrap()[index].fields));
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.event_span(event) {
            let index = *span.extensions().get::<usize>().unwrap();
            let mut fields = BTreeMap::new();
            event.record(&mut Fields(&mut fields));
            let message = fields.remove("message").unwrap_or_default();
            self.0.lock().unwrap()[index].events.push(message);
        }
    }
}

/// Runs `calls` under a subscriber at `level` and returns the spans it saw.
fn seen<F: std::future::Future<Output = ()>>(
    level: LevelFilter,
    calls: impl FnOnce() -> F,
) -> Vec<Seen> {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry()
        .with(spans.clone())
        .with(level);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || runtime.block_on(calls()));
    spans.0.lock().unwrap().clone()
}

fn refused() -> std::io::Error {
    std::io::Error::from(std::io::ErrorKind::ConnectionRefused)
}

#[test]
fn a_database_call_is_one_client_span_under_the_callers_span() {
    let spans = seen(LevelFilter::INFO, || async {
        let db = StandardPipeline::postgres(4)
            .client_span(
                ClientSpanConfig::postgresql()
                    .namespace("shop")
                    .server("10.0.0.5", 5432),
            )
            .build()
            .unwrap()
            .layer(service_fn(|_: WithDeadline<u32>| async {
                record_db_operation("SELECT", Some("items"));
                Ok::<_, std::io::Error>(1)
            }));
        let caller = tracing::info_span!("GET /items");
        let _in = caller.enter();
        db.oneshot(WithDeadline::new(7)).await.unwrap();
    });
    let client: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "seawall.client")
        .collect();
    assert_eq!(client.len(), 1, "{spans:?}");
    let client = client[0];
    assert_eq!(client.parent.as_deref(), Some("GET /items"));
    for (key, value) in [
        ("otel.kind", "client"),
        ("otel.name", "SELECT items"),
        ("db.system.name", "postgresql"),
        ("db.namespace", "shop"),
        ("db.operation.name", "SELECT"),
        ("db.collection.name", "items"),
        ("server.address", "10.0.0.5"),
        ("server.port", "5432"),
        ("seawall.class", "success"),
    ] {
        assert_eq!(
            client.fields.get(key).map(String::as_str),
            Some(value),
            "{key}"
        );
    }
    assert!(!client.fields.contains_key("error.type"));
    assert!(
        !client.fields.contains_key("seawall.retry.attempts"),
        "one attempt"
    );
}

#[test]
fn retries_and_the_breakers_refusal_are_on_the_span() {
    let spans = seen(LevelFilter::DEBUG, || async {
        let db = StandardPipeline::postgres(4)
            .circuit_breaker(
                seawall::breaker::CircuitBreakerLayer::builder()
                    .name("postgres")
                    .consecutive_faults(2),
            )
            .retry(
                seawall::retry::RetryLayer::builder()
                    .max_attempts(3)
                    .backoff(seawall::retry::Backoff::constant(Duration::from_millis(5)))
                    .no_budget(),
            )
            .build()
            .unwrap()
            .layer(service_fn(|_: WithDeadline<u32>| async {
                Err::<u32, _>(refused())
            }));
        let _ = db.oneshot(WithDeadline::new(7)).await;
    });
    let client = spans.iter().find(|s| s.name == "seawall.client").unwrap();
    for (key, value) in [
        ("seawall.class", "failure"),
        ("error.type", "rejected"),
        ("otel.status_code", "error"),
        ("seawall.retry.attempts", "3"),
        ("seawall.layer", "breaker"),
        ("seawall.breaker.name", "postgres"),
        ("seawall.breaker.state", "open"),
    ] {
        assert_eq!(
            client.fields.get(key).map(String::as_str),
            Some(value),
            "{key}"
        );
    }
    let attempts = client.events.iter().filter(|e| *e == "attempt").count();
    assert_eq!(attempts, 3, "{:?}", client.events);
    assert!(
        client
            .events
            .iter()
            .any(|e| e == "call refused: circuit breaker open")
    );
}

#[test]
fn a_queue_wait_is_on_the_span() {
    let spans = seen(LevelFilter::INFO, || async {
        let db = StandardPipeline::postgres(1)
            .build()
            .unwrap()
            .layer(service_fn(|_: WithDeadline<u32>| async {
                tokio::time::sleep(Duration::from_millis(40)).await;
                Ok::<_, std::io::Error>(1)
            }));
        let (a, b) = tokio::join!(
            db.clone().oneshot(WithDeadline::new(1)),
            db.clone().oneshot(WithDeadline::new(2))
        );
        a.unwrap();
        b.unwrap();
    });
    let waits: Vec<_> = spans
        .iter()
        .filter_map(|s| s.fields.get("seawall.limit.queue_wait_ms"))
        .collect();
    assert_eq!(
        waits,
        ["40"],
        "the second call waited for the first's permit"
    );
}

#[test]
fn the_level_is_configurable_and_the_span_can_be_switched_off() {
    let spans = seen(LevelFilter::INFO, || async {
        let client = || service_fn(|_: WithDeadline<u32>| async { Ok::<_, std::io::Error>(1) });
        let debug = StandardPipeline::redis(4)
            .client_span(ClientSpanConfig::redis().level(Level::DEBUG))
            .build()
            .unwrap()
            .layer(client());
        let off = StandardPipeline::redis(4)
            .no_client_span()
            .build()
            .unwrap()
            .layer(client());
        debug.oneshot(WithDeadline::new(1)).await.unwrap();
        off.oneshot(WithDeadline::new(1)).await.unwrap();
    });
    assert!(spans.is_empty(), "{spans:?}");
    let spans = seen(LevelFilter::DEBUG, || async {
        let debug = StandardPipeline::redis(4)
            .client_span(ClientSpanConfig::redis().level(Level::DEBUG))
            .build()
            .unwrap()
            .layer(service_fn(|_: WithDeadline<u32>| async {
                Ok::<_, std::io::Error>(1)
            }));
        debug.oneshot(WithDeadline::new(1)).await.unwrap();
    });
    assert_eq!(spans.len(), 1);
    assert_eq!(
        spans[0].fields.get("otel.name").map(String::as_str),
        Some("redis")
    );
}

#[test]
fn http_calls_are_recorded_without_credentials_or_query() {
    let spans = seen(LevelFilter::INFO, || async {
        let upstream = service_fn(|request: http::Request<()>| async move {
            let status = if request.uri().path().ends_with("Check") {
                200
            } else {
                503
            };
            Ok::<_, std::io::Error>(http::Response::builder().status(status).body(()).unwrap())
        });
        let api = StandardPipeline::http("payments", 4)
            .no_retry()
            .build()
            .unwrap()
            .layer(RecordHttpLayer.layer(upstream));
        let request =
            http::Request::get("https://user:secret@api.example.com:8443/v1/charges?token=abc")
                .body(())
                .unwrap();
        let response = api.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 503);
        let grpc = http::Request::post("http://10.0.0.9:50051/grpc.health.v1.Health/Check")
            .header("content-type", "application/grpc")
            .body(())
            .unwrap();
        api.oneshot(grpc).await.unwrap();
    });
    let [http, grpc] = &spans[..] else {
        panic!("{spans:?}")
    };
    for (key, value) in [
        ("otel.name", "GET"),
        ("http.request.method", "GET"),
        ("url.full", "https://api.example.com:8443/v1/charges"),
        ("server.address", "api.example.com"),
        ("server.port", "8443"),
        ("http.response.status_code", "503"),
        ("seawall.class", "failure"),
        ("error.type", "overloaded"),
        ("otel.status_code", "error"),
    ] {
        assert_eq!(
            http.fields.get(key).map(String::as_str),
            Some(value),
            "{key}"
        );
    }
    let all: String = format!("{http:?}");
    assert!(!all.contains("secret") && !all.contains("token"), "{all}");
    for (key, value) in [
        ("otel.name", "grpc.health.v1.Health/Check"),
        ("rpc.system", "grpc"),
        ("rpc.service", "grpc.health.v1.Health"),
        ("rpc.method", "Check"),
        ("seawall.class", "success"),
    ] {
        assert_eq!(
            grpc.fields.get(key).map(String::as_str),
            Some(value),
            "{key}"
        );
    }
}

#[test]
fn a_typed_rpc_is_named_by_its_service_and_method() {
    let spans = seen(LevelFilter::INFO, || async {
        let health = StandardPipeline::new("health", 4)
            .client_span(ClientSpanConfig::grpc("grpc.health.v1.Health").server("10.0.0.9", 50051))
            .build()
            .unwrap()
            .layer(service_fn(|_: WithDeadline<u32>| async {
                record_rpc_method("grpc.health.v1.Health", "Check");
                Ok::<_, std::io::Error>(1)
            }));
        health.oneshot(WithDeadline::new(1)).await.unwrap();
    });
    let [rpc] = &spans[..] else {
        panic!("{spans:?}")
    };
    for (key, value) in [
        ("otel.name", "grpc.health.v1.Health/Check"),
        ("rpc.system", "grpc"),
        ("rpc.service", "grpc.health.v1.Health"),
        ("rpc.method", "Check"),
        ("server.port", "50051"),
    ] {
        assert_eq!(
            rpc.fields.get(key).map(String::as_str),
            Some(value),
            "{key}"
        );
    }
}

#[cfg(feature = "reqwest")]
#[test]
fn reqwest_calls_are_recorded_too() {
    let spans = seen(LevelFilter::INFO, || async {
        let upstream = service_fn(|_: reqwest::Request| async {
            let answer = http::Response::builder().status(502).body("").unwrap();
            Ok::<_, std::io::Error>(reqwest::Response::from(answer))
        });
        // A `reqwest::Request` carries no deadline, so the span layer goes around the client
        // on its own here (a pipeline takes the request in a `WithDeadline`).
        let api = seawall::trace::ClientSpanLayer::new(ClientSpanConfig::http().name("payments"))
            .classifier(seawall::classify::HttpClassifier)
            .layer(
                RecordHttpLayer
                    .layer(upstream)
                    .map_err(seawall::classify::classified),
            );
        let url = reqwest::Url::parse("https://user:secret@api.example.com/v1/charges?token=abc")
            .unwrap();
        let request = reqwest::Request::new(reqwest::Method::POST, url);
        let response = api.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 502);
    });
    let [call] = &spans[..] else {
        panic!("{spans:?}")
    };
    for (key, value) in [
        ("otel.name", "POST"),
        ("http.request.method", "POST"),
        ("url.full", "https://api.example.com/v1/charges"),
        ("server.address", "api.example.com"),
        ("server.port", "443"),
        ("http.response.status_code", "502"),
        ("error.type", "unavailable"),
    ] {
        assert_eq!(
            call.fields.get(key).map(String::as_str),
            Some(value),
            "{key}"
        );
    }
    let all = format!("{call:?}");
    assert!(!all.contains("secret") && !all.contains("token"), "{all}");
}

#[test]
fn a_call_cut_by_the_callers_deadline_is_a_timeout_on_the_span() {
    let spans = seen(LevelFilter::INFO, || async {
        let db = StandardPipeline::postgres(4)
            .build()
            .unwrap()
            .layer(service_fn(|_: WithDeadline<u32>| {
                std::future::pending::<Result<u32, std::io::Error>>()
            }));
        // A 2 s deadline under the preset's 5 s attempt timeout.
        let request = WithDeadline::new(7).deadline_in(Duration::from_secs(2));
        let _ = db.oneshot(request).await;
    });
    let client = spans.iter().find(|s| s.name == "seawall.client").unwrap();
    for (key, value) in [
        ("seawall.class", "failure"),
        ("error.type", "timeout"),
        ("otel.status_code", "error"),
    ] {
        assert_eq!(
            client.fields.get(key).map(String::as_str),
            Some(value),
            "{key}"
        );
    }
}
