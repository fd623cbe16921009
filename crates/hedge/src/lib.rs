//! Sends a second attempt of a slow idempotent request, and answers with whichever attempt
//! succeeds first: a few percent more load for a much shorter latency tail.
//!
//! One slow call in fifty makes a request's p99 the slow call's latency. [`HedgeLayer`]
//! waits for the usual answer time, the hedge delay (fixed with
//! [`after`](HedgeBuilder::after), or by default the 95th percentile of recent latencies,
//! learnt lock-free), and when the first attempt has not answered by then, sends the same
//! request again. The first success answers; the other attempt is dropped, which cancels it.
//!
//! A hand-written hedge doubles the load exactly when a dependency struggles: every call is
//! slow, so every call is hedged. This one is bounded so that it cannot amplify an outage:
//! - **Idempotent requests only**, as the [`Idempotency`](seawall_classify::Idempotency)
//!   policy given to [`HedgeLayer::builder`] decides: the same policy the pipeline's
//!   classification uses for lost connections.
//! - **A budget**: hedges are withdrawn from a
//!   [`RetryBudget`](seawall_retry::RetryBudget) (default: 10 % of requests plus one a
//!   second over 10 s), or share the retry layer's.
//! - **Gates**: no hedge while the breaker the hedge would go through is not closed, or while
//!   the limit is full (feature `breaker` and `limit` make their handles [`HedgeGate`]s).
//! - **The deadline**: no hedge when less time is left than the request has already waited.
//! - **Failures are not hedged**: a first attempt that fails before the delay returns its
//!   error (retrying is the retry layer's job); one that fails while its hedge runs waits for
//!   the hedge, and if both fail the caller gets the first attempt's error.
//!
//! Hedges sent, won and skipped (by reason) are counted in the [`HedgeHandle`] and reported
//! as the `seawall.hedges`, `seawall.hedge.wins` and `seawall.hedges.skipped` metrics.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use seawall_classify::{AssumeIdempotent, Error, WithDeadline};
//! use seawall_hedge::HedgeLayer;
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The first call to a replica stalls for a second; the others answer in 10 ms.
//! let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
//! let replica = service_fn(move |key: WithDeadline<&'static str>| {
//!     let n = calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
//!     async move {
//!         let wait = if n == 0 { 1_000 } else { 10 };
//!         tokio::time::sleep(Duration::from_millis(wait)).await;
//!         Ok::<_, Error>(key.into_inner().len())
//!     }
//! });
//! let hedge = HedgeLayer::builder(AssumeIdempotent)
//!     .after(Duration::from_millis(50))
//!     .build()?;
//! let handle = hedge.handle();
//!
//! let started = tokio::time::Instant::now();
//! let answer = hedge.layer(replica).oneshot(WithDeadline::new("GET k")).await?;
//! assert_eq!(answer, 5);
//! // The hedge, sent at 50 ms, answered at 60 ms.
//! assert_eq!(started.elapsed(), Duration::from_millis(60));
//! assert_eq!((handle.sent(), handle.won()), (1, 1));
//! # Ok(())
//! # }
//! ```
//!
//! # Where it goes
//!
//! Around the dependency's pipeline, inside a fallback: `FallbackLayer` →
//! `HedgeLayer` → `StandardPipeline`. Each attempt then goes through the pipeline's breaker,
//! limit and attempt timeout (and counts in them), and the hedge is gated by that breaker and
//! that limit (`.gate(pipeline.breaker())`, `.gate(pipeline.limit())`). Give the request its
//! deadline before the hedge (`WithDeadline::deadline_in`, or a `DeadlineLayer` outside it),
//! so that both attempts share one deadline and the hedge knows it. Share the pipeline's
//! retry budget (`.shared_budget(..)`) to bound retries and hedges together.

#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![forbid(unsafe_code)]

pub mod future;
mod gate;
mod handle;
mod latency;
mod layer;
mod service;

pub use crate::gate::HedgeGate;
pub use crate::handle::HedgeHandle;
pub use crate::layer::{HedgeBuilder, HedgeLayer, MAX_DELAY};
pub use crate::service::Hedge;

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}
