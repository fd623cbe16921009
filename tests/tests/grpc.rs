//! gRPC through a Seawall pipeline, against a real tonic server on loopback (the standard
//! health service, so no generated code of our own): `grpc-status` answers classified at the
//! channel (feature `grpc`), the deadline sent as `grpc-timeout`, the caller's mistakes not
//! counted as faults, `UNAVAILABLE` counted, and Seawall's refusal reaching the gRPC caller as
//! `UNAVAILABLE` with the server-style pushback.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use seawall::StandardPipeline;
use seawall::breaker::{CircuitBreakerLayer, State};
use seawall::classify::grpc::{GrpcClassifier, PUSHBACK};
use seawall::timeout::grpc::GrpcTimeoutLayer;
use tonic::transport::{Endpoint, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tower::{Layer, Service, ServiceExt};

/// What the server saw and what it should inject.
#[derive(Clone, Default)]
struct Faults {
    unavailable: Arc<Mutex<u32>>,
    timeouts_seen: Arc<Mutex<Vec<String>>>,
}

/// A server-side layer: records each call's `grpc-timeout` and answers `UNAVAILABLE`
/// (trailers-only, with a pushback) while `unavailable` is above zero.
#[derive(Clone)]
struct FaultLayer(Faults);

impl<S> Layer<S> for FaultLayer {
    type Service = FaultService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        FaultService {
            inner,
            faults: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct FaultService<S> {
    inner: S,
    faults: Faults,
}

type Req = http::Request<tonic::body::Body>;
type Res = http::Response<tonic::body::Body>;

impl<S> Service<Req> for FaultService<S>
where
    S: Service<Req, Response = Res> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Res;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Res, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        if let Some(timeout) = request.headers().get("grpc-timeout") {
            let seen = timeout.to_str().unwrap_or("?").to_owned();
            self.faults.timeouts_seen.lock().unwrap().push(seen);
        }
        let inject = {
            let mut left = self.faults.unavailable.lock().unwrap();
            let inject = *left > 0;
            *left = left.saturating_sub(1);
            inject
        };
        if inject {
            let mut status = tonic::Status::unavailable("warming up");
            status
                .metadata_mut()
                .insert(PUSHBACK, "250".parse().unwrap());
            return Box::pin(async move { Ok(status.into_http()) });
        }
        Box::pin(self.inner.call(request))
    }
}

async fn server(faults: Faults) -> String {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("seawall.Items", tonic_health::ServingStatus::Serving)
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(async move {
        Server::builder()
            .layer(FaultLayer(faults))
            .add_service(health)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    format!("http://{addr}")
}

fn check(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_owned(),
    }
}

#[tokio::test]
async fn a_tonic_channel_behind_the_pipeline() {
    let faults = Faults::default();
    let url = server(faults.clone()).await;
    let channel = Endpoint::from_shared(url).unwrap().connect_lazy();
    // A gRPC request has a streaming body and cannot be cloned: a pipeline without retries.
    let pipeline = StandardPipeline::new("grpc", 8)
        .no_retry()
        .classifier(GrpcClassifier)
        .deadline(Duration::from_secs(2))
        .attempt_timeout(Duration::from_secs(1))
        .circuit_breaker(
            CircuitBreakerLayer::builder()
                .name("grpc")
                .consecutive_faults(2)
                .open_duration(Duration::from_secs(5)),
        )
        .build()
        .unwrap();
    let breaker = pipeline.breaker().unwrap();
    // Seawall's errors become gRPC statuses for the generated client.
    let service = pipeline
        .layer(GrpcTimeoutLayer.layer(channel))
        .map_err(tonic::Status::from);
    let mut client = HealthClient::new(service);

    // A healthy call, with the request's deadline (2 s) sent along.
    let answer = client.check(check("seawall.Items")).await.unwrap();
    assert_eq!(answer.into_inner().status(), ServingStatus::Serving);
    let seen = faults.timeouts_seen.lock().unwrap().clone();
    let millis: u64 = seen[0].trim_end_matches('m').parse().unwrap();
    assert!((1_500..=2_000).contains(&millis), "grpc-timeout {seen:?}");

    // NOT_FOUND is the caller's mistake: many of them never open the breaker.
    for _ in 0..5 {
        let status = client.check(check("no.such.Service")).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound);
    }
    assert_eq!(breaker.state(), State::Closed);

    // UNAVAILABLE is a fault of the server: two in a row open it.
    *faults.unavailable.lock().unwrap() = 2;
    for _ in 0..2 {
        let status = client.check(check("seawall.Items")).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
    }
    assert_eq!(breaker.state(), State::Open);

    // Refused by the open breaker without reaching the server: UNAVAILABLE, with a pushback
    // telling the caller when to come back.
    let calls = faults.timeouts_seen.lock().unwrap().len();
    let status = client.check(check("seawall.Items")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    let pushback: u64 = status
        .metadata()
        .get(PUSHBACK)
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=5_000).contains(&pushback), "{pushback}");
    assert_eq!(
        faults.timeouts_seen.lock().unwrap().len(),
        calls,
        "the server was not called"
    );
}

#[tokio::test]
async fn unavailable_is_retried_where_the_request_can_be_cloned() {
    let faults = Faults::default();
    let url = server(faults.clone()).await;
    let channel = Endpoint::from_shared(url).unwrap().connect_lazy();
    let client = HealthClient::new(channel);
    // Around the typed call, the request is a message that can be cloned: the pipeline
    // retries, and the client's error, a `tonic::Status`, is classified by its code.
    let checks = tower::service_fn(move |request: seawall::WithDeadline<HealthCheckRequest>| {
        let mut client = client.clone();
        async move {
            let answer = client.check(request.into_inner()).await?;
            Ok::<_, tonic::Status>(answer.into_inner().status())
        }
    });
    let retry = seawall::retry::RetryLayer::builder()
        .max_attempts(3)
        // The backoff's cap bounds a pushback too: leave room for it.
        .backoff(
            seawall::retry::Backoff::exponential(Duration::from_millis(10))
                .max_delay(Duration::from_secs(1))
                .jitter(seawall::retry::Jitter::None),
        )
        .seed(1);
    let pipeline = StandardPipeline::new("grpc-typed", 8)
        .retry(retry)
        .build()
        .unwrap();
    let retries = pipeline.retry().unwrap();
    let mut checks = pipeline.layer(checks);

    // One UNAVAILABLE with a pushback of 250 ms: retried after it, and the call succeeds.
    *faults.unavailable.lock().unwrap() = 1;
    let started = tokio::time::Instant::now();
    let status = checks
        .ready()
        .await
        .unwrap()
        .call(seawall::WithDeadline::new(check("seawall.Items")))
        .await
        .unwrap();
    assert_eq!(status, ServingStatus::Serving);
    assert_eq!(retries.retries(), 1);
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "the pushback was honoured"
    );

    // INVALID_ARGUMENT-like answers (NOT_FOUND) are the caller's: not retried.
    let err = checks
        .ready()
        .await
        .unwrap()
        .call(seawall::WithDeadline::new(check("no.such.Service")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(seawall::FailureKind::Invalid));
    assert_eq!(retries.retries(), 1);
}
