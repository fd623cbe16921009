//! HTTP clients behind the HTTP preset against a real server on loopback: reqwest through
//! `seawall::http::Reqwest`, hyper-util's client through `CollectBodyLayer`. A 503 is
//! classified with no classifier of the user's; a body cut after the response's head is the
//! attempt's error: retried where the request may be replayed, counted by the breaker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use seawall::http::{CollectBodyLayer, Reqwest};
use seawall::{FailureKind, RetryHint, StandardPipeline};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tower::{Layer, ServiceExt};

/// How many requests the server received, by path.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<HashMap<String, u32>>>);

impl Seen {
    fn count(&self, path: &str) -> u32 {
        self.0.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

const FULL: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n0123456789";
// The head promises ten bytes; three come, then the connection closes.
const CUT: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n012";

/// A server on loopback answering by path: `/cut-once` a cut body the first time and the
/// whole body after, `/cut` always a cut body, `/unavailable` always 503 (no `Retry-After`),
/// `/retry-after-zero` 503 with `Retry-After: 0` once and 200 after. One request per
/// connection.
async fn server() -> (String, Seen) {
    let seen = Seen::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let counts = counts.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let nth = {
                    let mut counts = counts.0.lock().unwrap();
                    let count = counts.entry(path.clone()).or_default();
                    *count += 1;
                    *count
                };
                let answer: &[u8] = match (path.as_str(), nth) {
                    ("/cut-once", 1) | ("/cut", _) => CUT,
                    ("/unavailable", _) => {
                        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
                    }
                    ("/retry-after-zero", 1) => {
                        b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 0\r\ncontent-length: 0\r\n\r\n"
                    }
                    _ => FULL,
                };
                let _ = socket.write_all(answer).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

fn get(url: String) -> http::Request<Bytes> {
    http::Request::get(url).body(Bytes::new()).unwrap()
}

/// The HTTP preset with a breaker that opens on the third fault in a row, and fast retries.
fn pipeline()
-> seawall::StandardLayer<seawall::classify::HttpClassifier, seawall::classify::HttpIdempotency> {
    StandardPipeline::http("api", 4)
        .circuit_breaker(
            seawall::breaker::CircuitBreakerLayer::builder()
                .name("api")
                .consecutive_faults(3)
                // Read by the tests: it cannot trip with fewer than ten calls.
                .count_window(
                    seawall::breaker::CountWindow::new(10)
                        .min_calls(10)
                        .failure_rate(0.5),
                ),
        )
        .retry(
            seawall::retry::RetryLayer::builder()
                .max_attempts(3)
                .backoff(seawall::retry::Backoff::constant(Duration::from_millis(5))),
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn reqwest_a_503_is_classified_by_the_preset_alone_and_the_last_one_is_the_answer() {
    let (base, seen) = server().await;
    let layer = pipeline();
    let breaker = layer.breaker().unwrap();
    let api = layer.layer(
        Reqwest::new(reqwest::Client::new())
            .collect_body(1 << 20)
            .unwrap(),
    );

    // A 503 with `Retry-After: 0` is retried, and the second answer is the response.
    let response = api
        .clone()
        .oneshot(get(format!("{base}/retry-after-zero")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.body(), &Bytes::from_static(b"0123456789"));
    assert_eq!(seen.count("/retry-after-zero"), 2);

    // Always 503: three attempts, each a fault; after the last the caller gets the 503 itself
    // (the upstream answered), and the breaker is open.
    let response = api
        .clone()
        .oneshot(get(format!("{base}/unavailable")))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(seen.count("/unavailable"), 3);
    assert_eq!(breaker.state(), seawall::breaker::State::Open);
}

#[tokio::test]
async fn reqwest_a_body_cut_mid_stream_is_retried_when_the_request_may_be_replayed() {
    let (base, seen) = server().await;
    let layer = pipeline();
    let breaker = layer.breaker().unwrap();
    let api = layer.layer(
        Reqwest::new(reqwest::Client::new())
            .collect_body(1 << 20)
            .unwrap(),
    );

    // A GET may be replayed: the cut body is a `Disconnect`, retried, and the second answer
    // comes whole.
    let response = api
        .clone()
        .oneshot(get(format!("{base}/cut-once")))
        .await
        .unwrap();
    assert_eq!(response.body(), &Bytes::from_static(b"0123456789"));
    assert_eq!(seen.count("/cut-once"), 2);

    // A POST without an idempotency key may have run: not retried, and the error says so.
    let post = http::Request::post(format!("{base}/cut"))
        .body(Bytes::from("{}"))
        .unwrap();
    let err = api.clone().oneshot(post).await.unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::Disconnect), "{err:?}");
    assert_eq!(err.failure().unwrap().retry, RetryHint::Never);
    assert_eq!(seen.count("/cut"), 1);
    // Two cut bodies and nothing in between but one success: the breaker counted them.
    let stats = breaker.stats().unwrap();
    assert_eq!(stats.faults, 2, "{stats:?}");
}

#[tokio::test]
async fn hyper_util_a_body_cut_mid_stream_is_the_attempts_error() {
    let (base, seen) = server().await;
    let client: HyperClient<_, Full<Bytes>> =
        HyperClient::builder(TokioExecutor::new()).build_http();
    let client = tower::service_fn(move |request: http::Request<Bytes>| {
        client.request(request.map(Full::new))
    });
    let api = pipeline().layer(CollectBodyLayer::new(1 << 20).unwrap().layer(client));

    let response = api
        .clone()
        .oneshot(get(format!("{base}/cut-once")))
        .await
        .unwrap();
    assert_eq!(response.body(), &Bytes::from_static(b"0123456789"));
    assert_eq!(seen.count("/cut-once"), 2, "retried once");

    // A body over the limit is the caller's setting, never retried.
    let small = pipeline().layer(CollectBodyLayer::new(4).unwrap().layer(tower::service_fn({
        let client: HyperClient<_, Full<Bytes>> =
            HyperClient::builder(TokioExecutor::new()).build_http();
        move |request: http::Request<Bytes>| client.request(request.map(Full::new))
    })));
    let err = small
        .oneshot(get(format!("{base}/whole")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(FailureKind::Invalid), "{err:?}");
    assert!(seawall::classify::is_caused_by::<seawall::http::BodyTooLarge>(&err));
    assert_eq!(seen.count("/whole"), 1);
}
