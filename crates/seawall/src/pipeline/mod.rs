//! The standard pipeline: `Deadline -> Retry -> Breaker -> Limit -> AttemptTimeout ->
//! Classify -> client`, configured and validated in one call.
//!
//! - [`StandardPipeline`]: the configuration, with presets (builder.rs);
//! - [`StandardLayer`]: the built, validated pipeline, a tower `Layer` (layer.rs);
//! - [`Standard`]: a client wrapped in it, a tower `Service` whose bounds are stated directly
//!   (service.rs), made of [`Stage`]s that may each be switched off (stage.rs).

mod builder;
mod layer;
mod service;
mod stage;

pub use self::builder::StandardPipeline;
pub use self::layer::StandardLayer;
pub use self::service::{NoRetry, RetryMode, Standard, WithRetry};
pub use self::stage::{Stage, StageFuture};
