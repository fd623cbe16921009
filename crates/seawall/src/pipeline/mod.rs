//! The standard pipeline: its order in one place (`stack.rs`: the client span,
//! `Deadline -> Retry -> Breaker -> Limit -> AttemptTimeout -> Classify -> client`),
//! configured and validated in one call.
//!
//! - stack.rs: [`StandardLayer`], the built pipeline, and [`Standard`], a client wrapped in
//!   it, outer to inner;
//! - stage.rs: how a stage is switched off ([`Stage`], [`RetryMode`]);
//! - builder.rs: [`StandardPipeline`], the configuration and its validation; presets.rs the
//!   presets, grpc.rs the gRPC preset and its channel;
//! - handles.rs: the built pipeline's handles.

mod builder;
#[cfg(feature = "grpc")]
mod grpc;
mod handles;
mod presets;
mod stack;
mod stage;

pub use self::builder::StandardPipeline;
#[cfg(feature = "grpc")]
pub use self::grpc::GrpcChannel;
pub use self::stack::{Standard, StandardLayer};
pub use self::stage::{NoRetry, RetryMode, Stage, StageFuture, WithRetry};
