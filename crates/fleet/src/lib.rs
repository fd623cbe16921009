//! Rate limits and concurrency budgets for tower services, on one instance or shared by a
//! whole fleet of them through Redis.
//!
//! Every limit elsewhere in Seawall is per process. Real services run many replicas: ten
//! instances with a pool of 20 each open 200 connections against a PostgreSQL whose
//! `max_connections` is 100, and a per-instance rate limit of 100/s becomes 1,000/s at the
//! dependency. The two layers here take a [`Fleet`] (a Redis server) and hold one limit for
//! every instance that builds it under the same name:
//!
//! - [`RateLimitLayer`]: GCRA (at most `burst` calls at once, then one per interval), per key
//!   if given a key function. Locally, one atomic word per key, updated lock-free. Fleet-wide,
//!   the schedule lives on Redis, moved atomically by a server-side script on Redis's own
//!   clock; to keep Redis off the hot path an instance leases a few tokens at a time
//!   ([`lease`](RateLimitBuilder::lease)), which costs some accuracy (documented there).
//! - [`ConcurrencyBudgetLayer`]: at most N calls in flight. Fleet-wide, each call holds a
//!   permit on Redis, a lease its instance renews while the call runs: a crashed instance's
//!   permits return when their lease ends, never leaked.
//!
//! Refusals are `Rejected` with a `retry_after`, like every local refusal in Seawall.
//!
//! **When Redis does not answer** (each operation is bounded by a timeout, 50 ms by default,
//! behind a circuit breaker): the decision is made on this instance's share of the limit
//! (`limit / expected_replicas`), logged once when it starts and when it ends, and counted
//! ([`Fleet::local_decisions`]). A Redis fault never fails a request by itself, and the next
//! operation Redis answers makes the limits shared again.
//!
//! # Example
//!
//! ```no_run
//! use seawall_fleet::{ConcurrencyBudgetLayer, Fleet, RateLimitLayer};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let fleet = Fleet::builder("redis://127.0.0.1:6379/").expected_replicas(4).build()?;
//! // 200 calls a second and 40 in flight, across every instance.
//! let rate = RateLimitLayer::builder(200.0).fleet(&fleet, "orders-db").build()?;
//! let budget = ConcurrencyBudgetLayer::builder(40).fleet(&fleet, "orders-db").build()?;
//! let client = service_fn(|id: u64| async move { Ok::<_, std::io::Error>(id) });
//! let db = rate.layer(budget.layer(client));
//! assert_eq!(db.oneshot(7).await?, 7);
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
mod handle;
mod layer;
mod service;
mod shared;

pub use crate::handle::{ConcurrencyBudgetHandle, RateLimitHandle};
pub use crate::layer::{
    ConcurrencyBudgetBuilder, ConcurrencyBudgetLayer, RateLimitBuilder, RateLimitLayer,
};
pub use crate::service::{ConcurrencyBudget, RateLimit};
pub use crate::shared::budget::Permit;
pub use crate::shared::rate::{AllRequests, KeyOf};
pub use crate::shared::store::{Fleet, FleetBuilder};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}
