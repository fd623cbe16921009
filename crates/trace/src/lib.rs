//! Client spans: one span per call to a dependency, of kind client, named and attributed per
//! the OpenTelemetry semantic conventions, carrying what the layers did to the call.
//!
//! Every seawall's `StandardPipeline` is outermost wrapped in a
//! [`ClientSpanLayer`]: each call gets a `seawall.client` span at INFO (exported at the
//! default filter), a child of the caller's span. It carries:
//!
//! - the dependency, from the [`ClientSpanConfig`] configuration: `db.system.name`, `db.namespace`,
//!   `server.address`, `server.port` (or `rpc.system`, `rpc.service`);
//! - the operation, recorded by the client while it runs, inside the span:
//!   [`record_db_operation`] (`db.operation.name`, `db.collection.name`, and the span renamed
//!   `SELECT items` as the conventions say), [`RecordHttpLayer`] for HTTP clients
//!   (`http.request.method`, `url.full` without credentials or query,
//!   `http.response.status_code`; `rpc.service`/`rpc.method` for gRPC);
//! - the outcome: `seawall.class`, and on failure `error.type` and status Error;
//! - what the layers did, as attributes (always exported with the span):
//!   `seawall.retry.attempts` when the call took more than one attempt, `seawall.layer` and
//!   `seawall.breaker.state` (or `seawall.limit.*`) when a layer refused it,
//!   `seawall.limit.queue_wait_ms` when it waited for a permit;
//! - and as events, one per attempt (its class, error type and the backoff before the next),
//!   per refusal, per timeout and per queue admission: the layers' DEBUG events, which
//!   [`seawall_telemetry::init`](https://docs.rs/seawall-telemetry) exports into traces (not
//!   into logs) by default.
//!
//! One span per call with an event per attempt, rather than a span per attempt: a viewer then
//! shows one bar per dependency call (the time the caller waited, backoff included) with
//! the attempts marked on it, and a healthy call, almost every call, costs one span, not
//! two. The level is [`ClientSpanConfig::level`]; the per-attempt detail is the events' filter
//! (`seawall=debug` in traces by default; `seawall=info` leaves the attributes only).
//!
//! With no subscriber, or one that does not want the span, the layer costs a level check
//! per call (see the `span` bench).
//!
//! ```
//! use seawall_classify::ClassifyLayer;
//! use seawall_trace::{ClientSpanConfig, ClientSpanLayer, record_db_operation};
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = service_fn(|id: i64| async move {
//!     // Inside the call's span: name the operation.
//!     record_db_operation("SELECT", Some("items"));
//!     Ok::<_, std::io::Error>(id)
//! });
//! // The standard pipeline puts this layer outermost (`.client_span(config)`); on its own it
//! // wraps any stack whose error is Seawall's.
//! let config = ClientSpanConfig::postgresql().namespace("shop").server("10.0.0.5", 5432);
//! let traced = ClientSpanLayer::new(config).layer(ClassifyLayer::new().layer(client));
//! assert_eq!(traced.oneshot(7).await?, 7);
//! # Ok(())
//! # }
//! ```

#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![forbid(unsafe_code)]

pub mod future;
#[cfg(feature = "http")]
mod http;
mod layer;
mod service;
mod span;

#[cfg(feature = "http")]
pub use crate::http::{HttpRequest, HttpStatus, RecordHttp, RecordHttpFuture, RecordHttpLayer};
pub use crate::layer::ClientSpanLayer;
pub use crate::service::ClientSpan;
pub use crate::span::{ClientSpanConfig, record_db_operation, record_rpc_method};
