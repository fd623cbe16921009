//! Fault injection for testing resilience: a tower layer that injects errors, latency and
//! hangs into calls, and a TCP proxy that breaks real connections on command.
//!
//! Resilience code that has never seen a fault does not work. Seawall's own tests, its
//! evaluation binary and its example service get their faults from here, against real
//! PostgreSQL and Redis servers, without mocking the clients and without touching the
//! servers themselves:
//!
//! - [`ChaosLayer`]: with given probabilities (seeded, so runs repeat exactly), fail a call
//!   with an error of a chosen class, delay its answer, or never answer; optionally only
//!   within a window of time or of call numbers.
//! - [`proxy::Proxy`]: sits between a client and a real server; switch it at run time to
//!   added latency, blackhole, refusing connections, limited bandwidth, cutting connections
//!   after N bytes, reset existing connections, or `down()` / `up()` for a restart. It counts
//!   connections and bytes, and leaves no task or socket behind after `shutdown`. The
//!   `seawall-chaos-proxy` binary runs one from the command line.

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
pub mod proxy;
mod service;

pub use crate::handle::{ChaosHandle, ChaosStats};
pub use crate::layer::{ChaosBuilder, ChaosLayer};
pub use crate::service::Chaos;
/// Re-exported: the error injected faults come as, and the vocabulary to give them a class.
pub use seawall_classify::{Class, Error, FailureKind, RetryHint};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}
