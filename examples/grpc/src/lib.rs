//! gRPC through Seawall: a tonic server (the standard health service, so no generated code
//! and no `protoc`) with faults injected by `seawall-chaos`, and two clients behind the
//! standard pipeline, the two ways to put one in front of tonic:
//!
//! - [`typed_checks`]: around a typed call, whose request is a message that can be cloned:
//!   the pipeline retries `UNAVAILABLE` (after the server's pushback) and never the caller's
//!   mistakes (`NOT_FOUND`, `INVALID_ARGUMENT`);
//! - [`channel_client`]: around the tonic `Channel`, for every call of a generated client,
//!   with the gRPC preset (`StandardPipeline::grpc`, then `.channel(channel)`): a gRPC
//!   request has a streaming body and cannot be cloned, so the pipeline does not retry, but
//!   its breaker reads `grpc-status` (`GrpcClassifier`), its deadline goes to the server as
//!   `grpc-timeout`, and its refusals reach the caller as `UNAVAILABLE` with a pushback, with
//!   no `map_err`.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use seawall::breaker::{CircuitBreakerLayer, CountWindow};
use seawall::pipeline::GrpcChannel;
use seawall::retry::{Backoff, Jitter, RetryLayer};
use seawall::trace::ClientSpan;
use seawall::{StandardLayer, StandardPipeline, WithDeadline};
use seawall_chaos::ChaosLayer;
use tonic::transport::{Channel, Server};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use tower::{Layer, Service};

/// The service name the server reports as serving.
pub const SERVICE: &str = "seawall.Items";

type Req = http::Request<tonic::body::Body>;
type Res = http::Response<tonic::body::Body>;

/// The `grpc-timeout` of every call the server received, in order.
#[derive(Debug, Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<Option<String>>>>);

impl Seen {
    /// The headers seen so far.
    pub fn timeouts(&self) -> Vec<Option<String>> {
        self.0.lock().expect("not poisoned").clone()
    }
}

/// Serves the health service on a free loopback port, behind `chaos`; returns its URL and
/// what it saw. A fault `chaos` injects is answered as the gRPC status of its class.
pub async fn serve(chaos: ChaosLayer) -> std::io::Result<(String, Seen)> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(SERVICE, tonic_health::ServingStatus::Serving)
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let seen = Seen::default();
    let layers = tower::ServiceBuilder::new()
        .layer(Record(seen.clone()))
        .layer(AnswerWithStatus)
        .layer(chaos);
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(
        Server::builder()
            .layer(layers)
            .add_service(health)
            .serve_with_incoming(incoming),
    );
    Ok((url, seen))
}

/// The gRPC service the example calls, as its client spans name it.
const HEALTH: &str = "grpc.health.v1.Health";

/// The pipeline around a typed health check: retries `UNAVAILABLE` (at least after the
/// server's pushback), up to three attempts within a 2 s deadline.
pub fn typed_checks(
    channel: Channel,
) -> (
    impl Service<WithDeadline<HealthCheckRequest>, Response = ServingStatus, Error = seawall::Error>
    + Clone,
    StandardLayer,
) {
    let client = HealthClient::new(channel);
    let checks = tower::service_fn(move |request: WithDeadline<HealthCheckRequest>| {
        let mut client = client.clone();
        async move {
            seawall::trace::record_rpc_method(HEALTH, "Check");
            let answer = client.check(request.into_inner()).await?;
            Ok::<_, tonic::Status>(answer.into_inner().status())
        }
    });
    let pipeline = StandardPipeline::new("health-typed", 16)
        .client_span(ClientSpan::grpc(HEALTH))
        // Opens when half of the last 50 calls fail: a third failing is the weather, not an
        // outage (five in a row, the default's other trigger, happens by chance at that rate).
        .circuit_breaker(
            CircuitBreakerLayer::builder()
                .name("health-typed")
                .count_window(CountWindow::new(50).min_calls(20).failure_rate(0.5)),
        )
        .deadline(Duration::from_secs(2))
        .attempt_timeout(Duration::from_millis(500))
        .retry(
            RetryLayer::builder().max_attempts(3).backoff(
                Backoff::exponential(Duration::from_millis(5))
                    .max_delay(Duration::from_millis(500))
                    .jitter(Jitter::Full),
            ),
        )
        .build()
        .expect("a valid pipeline");
    (pipeline.layer(checks), pipeline)
}

/// A generated client over the gRPC preset around the channel: no retries (a gRPC request
/// cannot be cloned), a breaker that opens after three faults in a row, the deadline sent as
/// `grpc-timeout`, and Seawall's errors arriving as gRPC statuses.
pub fn channel_client(
    channel: Channel,
) -> (
    HealthClient<GrpcChannel<Channel>>,
    seawall::breaker::BreakerHandle,
) {
    let pipeline = StandardPipeline::grpc(HEALTH, 16)
        .deadline(Duration::from_secs(2))
        .attempt_timeout(Duration::from_millis(500))
        .circuit_breaker(
            CircuitBreakerLayer::builder()
                .name("health-channel")
                .consecutive_faults(3)
                .open_duration(Duration::from_secs(2)),
        )
        .build()
        .expect("a valid pipeline");
    let breaker = pipeline.breaker().expect("configured");
    (HealthClient::new(pipeline.channel(channel)), breaker)
}

/// A health check of `service`.
pub fn check(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_owned(),
    }
}

/// Answers a Seawall error from the layers inside (the chaos layer's faults) with the gRPC
/// status of its class, as a trailers-only response.
#[derive(Debug, Clone, Copy)]
struct AnswerWithStatus;

impl<S> Layer<S> for AnswerWithStatus {
    type Service = AnswerWithStatusService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AnswerWithStatusService { inner }
    }
}

#[derive(Debug, Clone)]
struct AnswerWithStatusService<S> {
    inner: S,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> Service<Req> for AnswerWithStatusService<S>
where
    S: Service<Req, Response = Res, Error = seawall::Error>,
    S::Future: Send + 'static,
{
    type Response = Res;
    type Error = Infallible;
    type Future = BoxFuture<Result<Res, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The health service is always ready; a readiness error would be a status too.
        match self.inner.poll_ready(cx) {
            Poll::Ready(_) => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let future = self.inner.call(request);
        Box::pin(async move {
            Ok(future
                .await
                .unwrap_or_else(|error| tonic::Status::from(error).into_http()))
        })
    }
}

/// Records each call's `grpc-timeout`.
#[derive(Debug, Clone)]
struct Record(Seen);

impl<S> Layer<S> for Record {
    type Service = RecordService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RecordService {
            inner,
            seen: self.0.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct RecordService<S> {
    inner: S,
    seen: Seen,
}

impl<S: Service<Req>> Service<Req> for RecordService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let timeout = request
            .headers()
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        self.seen.0.lock().expect("not poisoned").push(timeout);
        self.inner.call(request)
    }
}
