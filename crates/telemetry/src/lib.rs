//! Seawall's telemetry: one schema of span, event, attribute and metric names for every
//! layer, a [`Recorder`] for the metrics, and a two-line OpenTelemetry set-up.
//!
//! ```no_run
//! # fn main() -> Result<(), seawall_telemetry::InitError> {
//! // OTLP to $OTEL_EXPORTER_OTLP_ENDPOINT when set; logs filtered by $RUST_LOG.
//! let _telemetry = seawall_telemetry::init(seawall_telemetry::Config::from_env("checkout"))?;
//! # Ok(())
//! # }
//! ```
//!
//! Layers report through `tracing` (spans and events carrying the [`schema`]'s attributes)
//! and the OpenTelemetry metrics API (through a [`Recorder`]); [`init`] exports both, traces
//! through `tracing-opentelemetry`, in batches, and its guard flushes everything when the
//! process ends. See [`schema`] for every name.

#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![forbid(unsafe_code)]

mod init;
mod recorder;
pub use seawall_classify::schema;

pub use crate::init::{
    Config, Exporter, InitError, TelemetryGuard, init, init_with_metrics_reader,
};
pub use crate::recorder::Recorder;

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}
