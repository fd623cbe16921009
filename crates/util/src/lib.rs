//! Primitives shared by Seawall's crates, so that each exists once: a seedable generator
//! ([`rng`]), packed epoch-bucket counters ([`epoch`]) and, with feature `alloc-test`, the
//! allocation-counting test harness (`alloc_test`).
//!
//! The layer crates depend on `seawall-classify` and on this crate only. It is not a stable
//! API: it follows the other crates' needs.

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
