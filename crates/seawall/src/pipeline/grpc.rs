//! The gRPC preset: a tonic `Channel` behind the standard pipeline, its errors as statuses.

use std::time::Duration;

use seawall_classify::AssumeNotIdempotent;
use seawall_classify::grpc::GrpcClassifier;
use seawall_timeout::grpc::{GrpcTimeout, GrpcTimeoutLayer};
use tower::util::MapErr;
use tower_layer::Layer;

use super::{NoRetry, Standard, StandardLayer, StandardPipeline};
use crate::trace::{ClientSpanConfig, RecordHttp, RecordHttpLayer};

/// A channel (any `Service<http::Request<B>>`, such as `tonic::transport::Channel`) behind
/// the gRPC preset: what [`StandardLayer::channel`] builds, for a generated client's `new`.
/// Its errors are `tonic::Status`es, so that the generated client passes on their code and
/// pushback.
pub type GrpcChannel<S, I = AssumeNotIdempotent> = MapErr<
    Standard<RecordHttp<GrpcTimeout<S>>, GrpcClassifier, I, NoRetry>,
    fn(seawall_classify::Error) -> tonic::Status,
>;

impl StandardPipeline<GrpcClassifier, AssumeNotIdempotent, NoRetry> {
    /// A gRPC service reached through a channel that carries `max_in_flight` calls at once:
    /// responses classified by their `grpc-status` ([`GrpcClassifier`]), no retries (a gRPC
    /// request is a stream that cannot be cloned), 10 s per attempt and 30 s per request, a
    /// client span named for `service` (`rpc.system=grpc`). Build it and wrap the channel with
    /// [`StandardLayer::channel`], which also sends the deadline as `grpc-timeout` and answers
    /// Seawall's refusals and timeouts as statuses (an open breaker is `UNAVAILABLE` with the
    /// time until its next probe as pushback):
    ///
    /// ```no_run
    /// use seawall::StandardPipeline;
    /// use tonic_health::pb::health_client::HealthClient;
    /// use tonic_health::pb::HealthCheckRequest;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051").connect_lazy();
    /// let pipeline = StandardPipeline::grpc("grpc.health.v1.Health", 16).build()?;
    /// let mut health = HealthClient::new(pipeline.channel(channel));
    /// let answer = health.check(HealthCheckRequest { service: String::new() }).await;
    /// // A refusal arrives as a status a gRPC caller understands: no `map_err`.
    /// if let Err(status) = answer {
    ///     println!("{:?}: {}", status.code(), status.message());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn grpc(service: &str, max_in_flight: usize) -> Self {
        StandardPipeline::new(service, max_in_flight)
            .no_retry()
            .classifier(GrpcClassifier)
            .client_span(ClientSpanConfig::grpc(service))
            .attempt_timeout(Duration::from_secs(10))
    }
}

impl<I: Clone> StandardLayer<GrpcClassifier, I, NoRetry> {
    /// Wraps a gRPC channel: the pipeline around it, with the deadline sent as `grpc-timeout`
    /// ([`GrpcTimeoutLayer`]) and the call's method and status recorded on the client span
    /// ([`RecordHttpLayer`]) inside, and Seawall's errors turned into `tonic::Status`es
    /// outside (`From<Error> for tonic::Status`), which is what a generated client needs.
    pub fn channel<S>(&self, channel: S) -> GrpcChannel<S, I> {
        let to_status: fn(seawall_classify::Error) -> tonic::Status =
            seawall_classify::grpc::into_status;
        MapErr::new(
            self.layer(RecordHttpLayer.layer(GrpcTimeoutLayer.layer(channel))),
            to_status,
        )
    }
}
