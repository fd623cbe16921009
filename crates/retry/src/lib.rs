//! A ready retry policy for tower services: backoff with jitter, a lock-free retry budget,
//! `Retry-After`, and end-to-end deadlines.
//!
//! tower's `Retry` needs a `Policy` you write yourself. [`RetryLayer`] is one that decides from
//! the shared classification ([`seawall_classify`]) alone:
//!
//! - it retries failures whose hint is `Retry`, and waits at least the remote's
//!   `RetryAfter(d)`; a `d` longer than the backoff's `max_delay` is not retried (the caller
//!   gets the answer and its pushback rather than a retry sooner than asked);
//! - it never retries `Never`, and never retries `Rejected`: an open breaker or a reached
//!   limit said no, and retrying would only hammer it (the [`Policy`]
//!   every layer shares decides; [`RetryBuilder::policy`] changes it);
//! - at most `max_attempts` attempts in all;
//! - delays from a [`Backoff`]: constant or exponential, with jitter `None`, `Full`, `Equal`
//!   or `Decorrelated` ([`Jitter`]), cap first and jitter after, seedable for exact tests;
//! - a [`RetryBudget`] (20 % of requests plus 10 retries per second over 10 s by default)
//!   caps how much retries can add when everything fails;
//! - no backoff sleep or new attempt starts when the request's deadline
//!   ([`HasDeadline`](seawall_classify::HasDeadline)) would pass first: the request then
//!   fails with [`DeadlineExceeded`](seawall_classify::DeadlineExceeded), whose source is
//!   the last attempt's error.
//!
//! Requests must be `Clone` (they are cloned before each attempt that may be followed by
//! another) and carry their deadline through `HasDeadline` (`http::Request`, or
//! [`WithDeadline`] around anything else). A request that
//! succeeds at once allocates nothing beyond its clone. Retries go to a clone of a spare copy
//! of the wrapped service, kept since its first call (see [`Retry`]), so a call that never
//! retries does not clone the service.
//!
//! With feature `postgres`, [`postgres::transaction`] retries a whole PostgreSQL transaction
//! on serialization failures and deadlocks.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use seawall_classify::WithDeadline;
//! use seawall_retry::{Backoff, RetryLayer};
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//! use tower::{service_fn, Layer, Service, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), seawall_classify::BoxError> {
//! let calls = Arc::new(AtomicU32::new(0));
//! let retry = RetryLayer::builder()
//!     .max_attempts(3)
//!     .backoff(Backoff::exponential(Duration::from_millis(50)))
//!     .build()?;
//! let mut flaky = retry.layer(service_fn({
//!     let calls = calls.clone();
//!     move |_: WithDeadline<()>| {
//!         let n = calls.fetch_add(1, Ordering::SeqCst);
//!         async move {
//!             if n == 0 {
//!                 Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
//!             } else {
//!                 Ok("ok")
//!             }
//!         }
//!     }
//! }));
//!
//! let answer = flaky.ready().await?.call(WithDeadline::new(())).await?;
//! assert_eq!(answer, "ok");
//! assert_eq!(calls.load(Ordering::SeqCst), 2, "refused once, retried once");
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
mod handle;
mod layer;
#[cfg(feature = "postgres")]
pub mod postgres;
mod schedule;
mod service;

pub use crate::handle::RetryHandle;
pub use crate::layer::{MAX_ATTEMPTS, RetryBuilder, RetryLayer};
pub use crate::schedule::backoff::{Backoff, BackoffState, Jitter};
pub use crate::schedule::budget::RetryBudget;
pub use crate::service::Retry;
/// Re-exported: the error the retry layer returns, the policy that says what is retried, and
/// the request wrapper that carries a deadline.
pub use seawall_classify::{Error, Policy, WithDeadline};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}
