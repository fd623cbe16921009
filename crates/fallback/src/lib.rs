//! Answers from a fallback service when the primary fails with chosen classes of failure.
//!
//! A fallback written by hand usually catches too much: it hides the caller's own mistakes
//! (a constraint violation answered with a default) and bugs. [`FallbackLayer`] answers from
//! the fallback only for the [`FailureKind`](seawall_classify::FailureKind)s it is given, by default the ones that say the
//! dependency cannot answer now ([`DEFAULT_TRIGGERS`]: local refusals such as an open
//! breaker, unavailability, unreachable hosts, overload and timeouts), and never for
//! [`FailureKind::Invalid`](seawall_classify::FailureKind::Invalid), the caller's fault, which the builder refuses.
//!
//! The fallback service receives a [`FallbackRequest`]: the primary's class (so it can say what it
//! answered for) and, when the layer was built with
//! [`keep_request`](FallbackBuilder::keep_request), a copy of the request made before the
//! primary call (the only allocation-free way to have it: the primary consumed the
//! original). When the fallback fails too, the caller gets the primary's error, class
//! unchanged, with the fallback's failure attached as [`FallbackFailed`](error::FallbackFailed).
//!
//! Typical uses: a stale value from a cache when the database's breaker is open, a default
//! answer for a recommendation service, a secondary replica.
//!
//! # Example
//!
//! ```
//! use seawall_classify::{Class, Error, FailureKind, RetryHint};
//! use seawall_fallback::{FallbackRequest, FallbackLayer};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The database is down...
//! let database = service_fn(|id: u64| async move {
//!     Err::<String, _>(Error::new(
//!         Class::failure(FailureKind::Unavailable, RetryHint::Retry),
//!         std::io::Error::other("the database is starting up"),
//!     ))
//! });
//! // ...so the last value the cache kept answers, marked stale.
//! let stale_cache = service_fn(|fallback: FallbackRequest<u64>| async move {
//!     let id = fallback.request().copied().unwrap_or_default();
//!     Ok::<_, Error>(format!("item {id} (stale)"))
//! });
//! let reads = FallbackLayer::builder(stale_cache)
//!     .keep_request()
//!     .build()?
//!     .layer(database);
//! assert_eq!(reads.oneshot(7).await?, "item 7 (stale)");
//! # Ok(())
//! # }
//! ```
//!
//! # Where it goes
//!
//! Outside the whole resilience pipeline (`FallbackLayer` around a
//! `StandardPipeline`'s service): the fallback then answers for what the caller would
//! otherwise get, after retries, the deadline and the breaker have had their say, and an
//! open breaker's refusal (`Rejected`) answers at once from the fallback without touching
//! the dependency. Inside the retry layer it would answer the first failure and hide it from
//! the retries.

#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![forbid(unsafe_code)]

pub mod error;
pub mod future;
mod layer;
mod request;
mod service;

pub use crate::layer::{DEFAULT_TRIGGERS, FallbackBuilder, FallbackLayer};
pub use crate::request::{FallbackRequest, KeepRequest, NoRequest, RequestCopy};
pub use crate::service::Fallback;

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}
