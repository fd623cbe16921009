//! A circuit breaker for tower services: fail fast while a dependency is failing, probe it
//! carefully, and close again when it answers.
//!
//! States are `Closed` (traffic flows), `Open` (rejecting), `HalfOpen` (probing), plus
//! `ForcedOpen` and `Disabled` set by hand through a [`BreakerHandle`].
//!
//! - Outcomes come from the shared classification ([`seawall_classify`]): only faults
//!   ([`Policy::is_fault`](seawall_classify::Policy::is_fault), the policy every layer
//!   shares; set it with [`CircuitBreakerBuilder::policy`]) count, so the
//!   caller's own mistakes (`Invalid`), local refusals (`Rejected`, including another
//!   breaker's) and cancelled calls never open a breaker. Slow calls can count too.
//! - Trip policies ([`TripPolicy`]) are apart from the gate that admits calls:
//!   [`ConsecutiveFaults`] (the default, 5), a true sliding [`CountWindow`] (a ring of the
//!   last N outcomes), a bucketed [`TimeWindow`], each with a failure rate and a slow-call
//!   rate and a minimum number of calls; the breaker opens when any configured policy says
//!   so. All are lock-free.
//! - Open: `call` fails at once with [`BreakerOpen`](error::BreakerOpen) naming the breaker
//!   and the time until the next probe (class `Rejected`, `RetryAfter`); `poll_ready` never
//!   blocks. The open period doubles (capped, with jitter) each time a probe fails, and resets
//!   when the breaker closes. With a [`Probe`], a cheap check of the dependency runs in the
//!   background while open, and its first success ends the open period at once.
//! - Half-open: at most `permitted_probes` calls in flight; that many successes close it, one
//!   fault reopens it. A probe whose future is dropped releases its slot and counts as
//!   neither, so a hung or cancelled probe never wedges the breaker (put the attempt timeout
//!   inside the breaker so probes are bounded in time).
//! - The closed path takes no lock and allocates nothing.
//!
//! # Example
//!
//! ```
//! use seawall_breaker::{error::BreakerOpen, CircuitBreakerLayer, State};
//! use seawall_classify::cause_ref;
//! use tower::{service_fn, Layer, Service, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), seawall_classify::BoxError> {
//! let breaker = CircuitBreakerLayer::builder().name("db").consecutive_faults(2).build()?;
//! let handle = breaker.handle();
//! let mut db = breaker.layer(service_fn(|_: ()| async {
//!     Err::<(), _>(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
//! }));
//!
//! for _ in 0..2 {
//!     let _ = db.ready().await?.call(()).await;
//! }
//! assert_eq!(handle.state(), State::Open);
//! let err = db.ready().await?.call(()).await.unwrap_err();
//! // One error type: the class in O(1), the breaker's own error as the source.
//! assert_eq!(err.kind(), Some(seawall_classify::FailureKind::Rejected));
//! assert!(err.retry_after().is_some());
//! let open = cause_ref::<BreakerOpen>(&err).expect("rejected by the breaker");
//! assert_eq!(open.name(), "db");
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
mod gate;
mod handle;
mod layer;
mod service;
mod trip;

pub use crate::gate::State;
pub use crate::gate::probe::{MIN_PROBE_INTERVAL, Probe, ProbeOutcome, ProbeStats};
pub use crate::handle::BreakerHandle;
pub use crate::layer::{CircuitBreakerBuilder, CircuitBreakerLayer, MAX_OPEN_DURATION};
pub use crate::service::CircuitBreaker;
pub use crate::trip::any_of::AnyOf;
pub use crate::trip::window::{CountWindow, TimeWindow};
pub use crate::trip::{ConsecutiveFaults, Outcome, TripPolicy, WindowStats};
/// Re-exported: the error the breaker returns, and the policy that says what counts as a fault.
pub use seawall_classify::{Error, Policy};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}
