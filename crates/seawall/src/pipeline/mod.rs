//! The standard pipeline: `Deadline -> Retry -> Breaker -> Limit -> AttemptTimeout ->
//! Classify -> client`, configured and validated in one call.
//!
//! - [`StandardPipeline`]: the configuration, with presets (builder.rs; the gRPC preset and
//!   its channel in grpc.rs);
//! - [`StandardLayer`]: the built, validated pipeline, a tower `Layer` (layer.rs);
//! - [`Standard`]: a client wrapped in it, a tower `Service` whose bounds are stated directly
//!   (service.rs), made of [`Stage`]s that may each be switched off (stage.rs).

mod builder;
#[cfg(feature = "grpc")]
mod grpc;
mod layer;
mod service;
mod stage;

pub use self::builder::StandardPipeline;
#[cfg(feature = "grpc")]
pub use self::grpc::GrpcChannel;
pub use self::layer::StandardLayer;
pub use self::service::{NoRetry, RetryMode, Standard, WithRetry};
pub use self::stage::{Stage, StageFuture};
