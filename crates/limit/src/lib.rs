//! A concurrency limit for tower services, with a bounded queue (FIFO, or controlled delay
//! with adaptive LIFO: [`Discipline`]), request priorities ([`Priority`]), a maximum wait,
//! and deadline awareness.
//!
//! Connection-pool exhaustion is the classic outage: more callers than connections, every
//! caller waits for the pool, the pool's own timeout fires deep inside, and the errors that
//! come out say nothing useful. [`ConcurrencyLimitLayer`] puts the bound in front of the
//! client instead:
//!
//! - at most `max` calls in flight, across every clone of the service;
//! - callers beyond that wait in a queue of bounded length, in FIFO order or as the
//!   [`Discipline`] says, highest [`Priority`] first, for at most `max_wait`, and never past
//!   their request's deadline ([`HasDeadline`](seawall_classify::HasDeadline));
//! - then fail fast with [`LimitReached`](error::LimitReached) (class `Rejected`: a local
//!   refusal that the retry layer never retries and no breaker counts as a fault, with
//!   `max_wait` as its `retry_after` for the caller), also when the request's deadline
//!   ended the wait ([`Reason::Deadline`](error::Reason::Deadline): the call never reached
//!   the dependency, so a breaker outside does not count it as a timeout);
//! - `queue(0)` refuses at once any call beyond the limit;
//! - permits are released as soon as the response future completes or is dropped.
//!
//! A [`LimitHandle`] reads in-flight calls, queue length and totals. A call admitted at once
//! allocates nothing; a queued call allocates its wait. The service's error is
//! [`seawall_classify::Error`], like every Seawall layer's; an adaptive limit learns from the
//! configured classifier and [`Policy`], as the breaker does.
//!
//! Size `max` to the client's pool: then the pool never waits and never times out, and the
//! queue, whose bounds you chose, is the only place anything waits.
//!
//! # Readiness: where the limit waits
//!
//! tower's `ConcurrencyLimit` answers `Poll::Pending` from `poll_ready` until a permit is
//! free, so whatever is outside it feels the pressure. This limit does not: `poll_ready`
//! takes a free permit when there is one and otherwise reports ready at once, and the call
//! waits (or is refused) in its response future. Only there is the request known, and with it
//! its deadline and [`Priority`], which decide whether it waits, how long, and in which
//! line; `poll_ready` has no request to ask. What composes differently:
//!
//! - an outer `tower::load_shed::LoadShed` never sheds on the limit's account: use
//!   `queue(0)`, which refuses at once any call beyond the limit, with a class that says so;
//! - an outer `tower::buffer::Buffer` forwards every call at once: its bound no longer holds
//!   callers back, the limit's queue (length, `max_wait`, the deadline) does;
//! - a balancer that chooses by readiness (tower's p2c) sees every endpoint ready: it has to
//!   read the load from [`LimitHandle`] (`in_flight`, `queued`) instead;
//! - the inner service must be `Clone`: a call admitted from the queue drives a clone of it.
//!
//! Inside the limit (the breaker, the attempt timeout, the client) readiness is tower's:
//! the limit polls the inner service's `poll_ready` before each call it sends.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use seawall_classify::{cause_ref, WithDeadline};
//! use seawall_limit::{error::LimitReached, ConcurrencyLimitLayer};
//! use tower::{service_fn, Service, ServiceExt, Layer};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), seawall_classify::BoxError> {
//! let layer = ConcurrencyLimitLayer::builder(1).queue(0).build()?;
//! let mut service = layer.layer(service_fn(|_: WithDeadline<()>| async {
//!     tokio::time::sleep(Duration::from_secs(1)).await;
//!     Ok::<_, std::io::Error>(())
//! }));
//!
//! let first = service.ready().await?.call(WithDeadline::new(()));
//! // The only permit is taken and there is no queue: the second call is refused at once.
//! let err = service.ready().await?.call(WithDeadline::new(())).await.unwrap_err();
//! assert_eq!(err.kind(), Some(seawall_classify::FailureKind::Rejected));
//! assert!(cause_ref::<LimitReached>(&err).is_some());
//! first.await?;
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

pub mod adaptive;
mod admission;
pub mod error;
pub mod future;
mod handle;
mod layer;
mod service;

pub use crate::admission::queue::{Discipline, MAX_WAIT_LIMIT};
pub use crate::handle::LimitHandle;
pub use crate::layer::{ConcurrencyLimitBuilder, ConcurrencyLimitLayer, MAX_LIMIT, MAX_QUEUE};
pub use crate::service::ConcurrencyLimit;
/// Re-exported: the error the limit returns, the policy an adaptive limit learns by, and the
/// request wrapper that carries a deadline.
pub use seawall_classify::{Error, Policy, Priority, WithDeadline, WithPriority};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}
