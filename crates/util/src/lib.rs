//! Primitives shared by Seawall's crates, so that each exists once: a seedable generator
//! ([`rng`]), packed epoch-bucket counters ([`epoch`]) and, with feature `alloc-test`, the
//! allocation-counting test harness (`alloc_test`).
//!
//! Every layer crate depends on `seawall-classify` (which re-exports the floor,
//! `seawall-core`) and on this crate; two also build on other layers: `seawall-hedge` on
//! `seawall-retry` (its budget) and, behind features, `seawall-breaker` and `seawall-limit`
//! (its gates), and `seawall-fleet` on `seawall-breaker` and `seawall-timeout` (its store's
//! calls to Redis). It is not a stable API: it follows the other crates' needs.

#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc-test")]
pub mod alloc_test;
pub mod epoch;
pub mod rng;
