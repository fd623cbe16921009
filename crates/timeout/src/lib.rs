//! Attempt timeouts and end-to-end deadlines for tower services.
//!
//! Requests that hang with no timeout are where many outages start. This crate has two
//! layers, meant to be used together:
//!
//! - [`DeadlineLayer`] gives a whole request an end-to-end budget (retries, backoff sleeps
//!   and queueing included) and publishes it on the request, through
//!   [`HasDeadline`], so that every layer inside uses
//!   `min(own bound, time remaining)`. What it publishes is the instant it gives up at (the
//!   deadline less a small margin), so that the layers inside end a call first, as an
//!   outcome a breaker counts. A deadline that is already on the request is kept when
//!   earlier. When it passes, the error is [`DeadlineExceeded`](error::DeadlineExceeded):
//!   a `Timeout` that is never retried, since no time is left.
//! - [`AttemptTimeoutLayer`] bounds one attempt, by its own timeout or the request's
//!   remaining time, whichever is sooner, with a single timer per call. When its own timeout
//!   fires the error is [`Elapsed`](error::Elapsed), a `Timeout` worth retrying; when the
//!   deadline cut the attempt short, it is `DeadlineExceeded`. It can also count the wait for
//!   the inner service's readiness ([`AttemptTimeoutLayer::include_readiness`]).
//!
//! Both layers' `Service::Error` is [`seawall_classify::Error`], the one error type of every
//! Seawall layer: outer layers and handlers read the class in O(1), and the inner service's
//! error may be anything `Into<BoxError>`, passed through unchanged when it is already a
//! Seawall error.
//!
//! Requests carry the deadline through [`HasDeadline`],
//! implemented for `http::Request<B>` (feature `http`, in the extensions) and for
//! [`WithDeadline<R>`](WithDeadline), a wrapper for any other request.
//!
//! # Example
//!
//! The standard order is deadline outermost, attempt timeout next to the client (in the full
//! pipeline, retry, breaker and limiter sit between them):
//!
//! ```
//! use std::time::Duration;
//! use seawall_classify::{HasDeadline, WithDeadline};
//! use seawall_timeout::{AttemptTimeoutLayer, DeadlineLayer};
//! use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), seawall_classify::BoxError> {
//! let mut db = ServiceBuilder::new()
//!     .layer(DeadlineLayer::try_new(Duration::from_secs(30))?)
//!     .layer(AttemptTimeoutLayer::try_new(Duration::from_secs(5))?)
//!     .service(service_fn(|query: WithDeadline<&'static str>| async move {
//!         // Tell the database how long it has, rounded up to whole milliseconds.
//!         let left = query.remaining().unwrap_or(Duration::from_secs(5));
//!         let statement_timeout_ms = left.as_millis().max(1);
//!         Ok::<_, std::io::Error>(statement_timeout_ms)
//!     }));
//!
//! let ms = db.ready().await?.call(WithDeadline::new("SELECT 1")).await?;
//! // The deadline layer gives up 5 ms early (its margin), and says so to the layers inside.
//! assert_eq!(ms, 29_995);
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

pub mod error;
pub mod future;
#[cfg(feature = "grpc")]
pub mod grpc;
mod layer;
mod service;

pub use crate::layer::{AttemptTimeoutLayer, DEFAULT_MARGIN, DeadlineLayer, MAX_TIMEOUT};
pub use crate::service::{AttemptTimeout, Deadline};
/// Re-exported: the error both layers return.
pub use seawall_classify::Error;
pub use seawall_classify::{HasDeadline, WithDeadline};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}
