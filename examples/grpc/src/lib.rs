//! gRPC through Seawall: two clients behind the standard pipeline, the two ways to put one in
//! front of tonic, calling a test server ([`server`]: the standard health service, so no
//! generated code and no `protoc`, with faults injected by `seawall-chaos`):
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

use std::time::Duration;

use seawall::breaker::{CircuitBreakerLayer, CountWindow};
use seawall::pipeline::GrpcChannel;
use seawall::retry::{Backoff, Jitter, RetryLayer};
use seawall::trace::ClientSpanConfig;
use seawall::{StandardLayer, StandardPipeline, WithDeadline};
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use tower::{Layer, Service};

pub mod server;

pub use server::{SERVICE, Seen, serve};

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
        .client_span(ClientSpanConfig::grpc(HEALTH))
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
