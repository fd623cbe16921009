//! HTTP clients' errors and responses against a real server on loopback: reqwest (feature
//! `reqwest`) and hyper-util's client (feature `http`), classified by the defaults alone.

use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use seawall_classify::{Class, Classifier, FailureKind, HttpClassifier, RetryHint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server on loopback answering by path: `/busy` 503 with `Retry-After: 2`, `/flaky` 503
/// with `Retry-After: 1` the first time and 200 after, `/slow` after two seconds, `/cut` half
/// a status line and then nothing (the connection closes), anything else 200. It serves
/// until the test ends.
async fn server() -> String {
    let flaky = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let flaky = flaky.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or("/");
                let answer: &[u8] = match path {
                    "/busy" => b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 2\r\ncontent-length: 0\r\n\r\n",
                    "/cut" => b"HTTP/1.1 20",
                    "/flaky" if flaky.swap(false, std::sync::atomic::Ordering::SeqCst) => {
                        b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 0\r\n\r\n"
                    }
                    "/slow" => {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
                    }
                    _ => b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
                };
                let _ = socket.write_all(answer).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

fn class_of(error: impl Into<seawall_classify::BoxError> + 'static) -> Class {
    seawall_classify::classified(error).class()
}

#[tokio::test]
async fn reqwest_a_503_response_keeps_its_retry_after_and_its_error_is_overloaded() {
    let base = server().await;
    let client = reqwest::Client::new();
    let response = client.get(format!("{base}/busy")).send().await.unwrap();
    let class = Classifier::<_>::classify(&HttpClassifier, Ok(&response));
    assert_eq!(
        class,
        Class::failure(
            FailureKind::Overloaded,
            RetryHint::RetryAfter(Duration::from_secs(2))
        )
    );
    let err = response.error_for_status().unwrap_err();
    assert_eq!(
        class_of(err),
        Class::failure(FailureKind::Overloaded, RetryHint::Retry)
    );
}

#[tokio::test]
async fn reqwest_timeouts_refusals_and_cut_connections_get_their_classes() {
    let base = server().await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = client.get(format!("{base}/slow")).send().await.unwrap_err();
    assert_eq!(
        class_of(err),
        Class::failure(FailureKind::Timeout, RetryHint::Retry)
    );

    let closed = format!("http://127.0.0.1:{}/", seawall_tests::closed_port());
    let err = client.get(closed).send().await.unwrap_err();
    assert_eq!(
        class_of(err),
        Class::failure(FailureKind::Connect, RetryHint::Retry)
    );

    let err = client.get(format!("{base}/cut")).send().await.unwrap_err();
    let class = class_of(err);
    assert_eq!(class.kind(), Some(FailureKind::Disconnect), "{class}");

    let err = client.get("http://[::1:bad").send().await.unwrap_err();
    assert_eq!(class_of(err).kind(), Some(FailureKind::Invalid));

    let ok = client.get(format!("{base}/ok")).send().await.unwrap();
    assert!(Classifier::<_>::classify(&HttpClassifier, Ok(&ok)).is_success());
}

#[tokio::test]
async fn hyper_util_incomplete_answers_and_refusals_get_their_classes() {
    let base = server().await;
    let client: HyperClient<_, Empty<Bytes>> =
        HyperClient::builder(TokioExecutor::new()).build_http();
    let err = client
        .get(format!("{base}/cut").parse().unwrap())
        .await
        .unwrap_err();
    let class = class_of(err);
    assert_eq!(
        class,
        Class::failure(FailureKind::Disconnect, RetryHint::Retry)
    );
    // The request may have run: a request that is not idempotent is not retried.
    assert!(!class.for_request(false).is_retryable());

    let closed = format!("http://127.0.0.1:{}/", seawall_tests::closed_port());
    let err = client.get(closed.parse().unwrap()).await.unwrap_err();
    assert_eq!(
        class_of(err),
        Class::failure(FailureKind::Connect, RetryHint::Retry)
    );
}

#[tokio::test]
async fn a_reqwest_client_behind_the_pipeline_retries_a_503_after_its_retry_after() {
    use seawall::{StandardPipeline, WithDeadline};
    use tower::{Layer, ServiceExt};

    let base = server().await;
    let client = reqwest::Client::new();
    let get = tower::service_fn(move |url: WithDeadline<String>| {
        let request = client.get(url.into_inner());
        async move { request.send().await }
    });
    let layer = StandardPipeline::new("api", 8)
        .classifier(HttpClassifier)
        .build()
        .unwrap();
    let retries = layer.retry().unwrap();
    let started = tokio::time::Instant::now();
    let response = layer
        .layer(get)
        .oneshot(WithDeadline::new(format!("{base}/flaky")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(retries.retries(), 1);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for Retry-After"
    );
}
