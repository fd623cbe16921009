//! An axum service answering from Seawall's error (feature `axum`), served on loopback: the
//! pipeline lives in the router's state, a handler returns `Result<_, seawall::Problem>`, and
//! the caller gets problem+json with the status and `Retry-After` of the class, and nothing
//! of the dependency's own message.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::get;
use seawall::breaker::CircuitBreakerLayer;
use seawall::{NoRetry, Standard, StandardPipeline, WithDeadline};
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt};

type Db = BoxCloneSyncService<WithDeadline<i64>, String, seawall::Error>;

#[derive(Clone)]
struct AppState {
    db: Db,
}

async fn item(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<String, seawall::Problem> {
    // `?` turns any failure into its answer: 503 and Retry-After, 504, 400...
    Ok(state.db.oneshot(WithDeadline::new(id)).await?)
}

#[tokio::test]
async fn a_failing_dependency_is_answered_with_problem_json_and_retry_after() {
    // A database that refuses every connection, behind a pipeline whose breaker opens on
    // the first fault.
    let refusing = tower::service_fn(|_: WithDeadline<i64>| async {
        Err::<String, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "secret-host:5432 refused",
        ))
    });
    let pipeline = StandardPipeline::postgres(4)
        .no_retry()
        .circuit_breaker(
            CircuitBreakerLayer::builder()
                .consecutive_faults(1)
                .open_duration(Duration::from_secs(3)),
        )
        .build()
        .unwrap();
    let db: Standard<_, _, _, NoRetry> = pipeline.layer(refusing);
    let app = axum::Router::new()
        .route("/items/{id}", get(item))
        .with_state(AppState {
            db: BoxCloneSyncService::new(db),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = reqwest::Client::new();
    // The refusal itself: a fault of the dependency, 503 with the default Retry-After.
    let first = client
        .get(format!("http://{addr}/items/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 503);
    assert_eq!(first.headers()["content-type"], "application/problem+json");
    assert_eq!(first.headers()["retry-after"], "1");
    let body = first.text().await.unwrap();
    assert!(
        body.contains(r#""status":503"#) && body.contains(r#""seawall_class":"connect""#),
        "{body}"
    );
    assert!(
        !body.contains("secret-host"),
        "the dependency's message leaked: {body}"
    );

    // Now the breaker is open: refused at once, told when to come back.
    let second = client
        .get(format!("http://{addr}/items/2"))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 503);
    let retry_after: u64 = second.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((2..=3).contains(&retry_after), "{retry_after}");
    let body = second.text().await.unwrap();
    assert!(body.contains(r#""seawall_class":"rejected""#), "{body}");
}
