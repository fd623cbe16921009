//! The shared error-classification vocabulary of Seawall.
//!
//! Every Seawall layer has to agree on what a finished call means: the retry layer decides
//! whether to try again, the circuit breaker and the adaptive limiter whether to count a
//! fault, and a handler which HTTP status to answer with. This crate gives them one small
//! `Copy` value to agree on, [`Class`]:
//!
//! - [`Class::Success`], [`Class::Ignored`] (a cancelled call: it counts nowhere), or
//!   [`Class::Failure`] holding a [`Failure`]:
//! - a [`FailureKind`] (whose fault and what sort: `Timeout`, `Connect`, `Disconnect`,
//!   `Overloaded`, `Unavailable`, `Contention`, `Rejected`, `Invalid`, `Internal`) and
//! - a [`RetryHint`] (`Retry`, `RetryAfter(d)`, `Never`).
//!
//! A [`Classifier`] turns a response or an error into a `Class` without allocating.
//! [`DefaultClassifier`] finds known error types anywhere in an error's `source()` chain:
//! `std::io::Error`, tower's and tokio's timeouts, every Seawall layer's errors, and with
//! features `postgres`, `sqlx` and `redis` the errors of `tokio-postgres`,
//! `deadpool-postgres`, `sqlx` and `redis` (see [`postgres`], [`sqlx`] and [`redis`] for the
//! tables; PostgreSQL's SQLSTATE codes have one table, [`sqlstate`], whichever client reported
//! them). With feature `http`,
//! [`HttpClassifier`] classifies responses by status and `Retry-After`.
//!
//! [`ClassifyLayer`] wraps a client so its errors become [`Error`]: the source error plus its
//! class, readable in O(1) by every layer above and by the handler that maps it to a
//! response.
//!
//! # Example
//!
//! ```
//! use seawall_classify::{BoxError, Class, ClassifyLayer, Error, FailureKind, RetryHint};
//! use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut client = ServiceBuilder::new()
//!     .layer(ClassifyLayer::new())
//!     .service(service_fn(|_: &'static str| async {
//!         Err::<(), BoxError>(std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into())
//!     }));
//!
//! let err: Error = client.ready().await.unwrap().call("GET").await.unwrap_err();
//! match err.class() {
//!     Class::Failure(f) if f.kind == FailureKind::Connect => assert!(f.is_retryable()),
//!     other => panic!("unexpected {other}"),
//! }
//! # }
//! ```
//!
//! # Which kinds are faults
//!
//! [`FailureKind::is_fault`] says whether a kind counts against a breaker or an adaptive
//! limiter by default: remote trouble does (`Timeout`, `Connect`, `Disconnect`, `Overloaded`,
//! `Unavailable`, `Internal`); the caller's own mistakes (`Invalid`), local decisions
//! (`Rejected`) and a healthy database arbitrating concurrent transactions (`Contention`)
//! do not. Layers let you override this per instance.
//!
//! # Deadlines
//!
//! Requests carry their end-to-end deadline through [`HasDeadline`] (implemented for
//! [`WithDeadline`] and `http::Request`), so that every layer inside the one that set it can
//! bound its own waiting by it; see the [`deadline`] module. [`DeadlineExceeded`] is the one
//! error every layer returns when that deadline stops it.
//!
//! # Idempotency
//!
//! A [`FailureKind::Disconnect`] means the request may have run. Classifiers report it as
//! retryable; [`Class::for_request`] then downgrades it to [`RetryHint::Never`] for a
//! request that is not idempotent. [`ClassifyLayer`] asks an [`Idempotency`] policy once per
//! call and applies it.

#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod default;
pub mod future;
mod layer;
mod service;

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "grpc")]
pub mod grpc;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "reqwest")]
pub mod reqwest;
pub mod sqlstate;
#[cfg(feature = "sqlx")]
pub mod sqlx;

use std::fmt;

pub use crate::default::{AsError, DefaultClassifier, classified, known_class};
#[cfg(feature = "http")]
pub use crate::http::HttpClassifier;
pub use crate::layer::ClassifyLayer;
pub use crate::service::Classify;
/// The contract floor, re-exported: the vocabulary, the classifier contract, request
/// context and the schema (see [`seawall_core`]).
pub use seawall_core::{
    AssumeIdempotent, AssumeNotIdempotent, BoxError, Chain, Class, Classifier, ClassifierExt,
    ConfigError, DeadlineExceeded, Error, ErrorFn, Failure, FailureKind, HasDeadline,
    HttpIdempotency, Idempotency, KindSet, LimitSample, Map, Or, Policy, Priority, ResponseFn,
    ResponsesOnly, RetryHint, WithDeadline, WithPriority, call_instant, cause_ref, chain,
    classified_error, classify_outcome, cut, deadline, floor_class, from_error_fn,
    from_response_fn, inner_accessors, io, is_caused_by, schema,
};

/// `true` when `value`'s `Display` output starts with `prefix`, without allocating.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
fn display_starts_with(value: &dyn fmt::Display, prefix: &str) -> bool {
    struct Prefix<'a> {
        rest: &'a str,
        mismatch: bool,
    }
    impl fmt::Write for Prefix<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let n = s.len().min(self.rest.len());
            if s.as_bytes()[..n] != self.rest.as_bytes()[..n] {
                self.mismatch = true;
                return Err(fmt::Error);
            }
            self.rest = &self.rest[n..];
            if self.rest.is_empty() {
                // Matched: stop formatting early.
                return Err(fmt::Error);
            }
            Ok(())
        }
    }
    let mut probe = Prefix {
        rest: prefix,
        mismatch: false,
    };
    let _ = fmt::write(&mut probe, format_args!("{value}"));
    !probe.mismatch && probe.rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_prefix_matches_without_formatting_everything() {
        let value = format_args!("{}{}", "error connecting", " to server: refused").to_string();
        assert!(display_starts_with(&value, "error connecting to server"));
        assert!(!display_starts_with(&value, "error communicating"));
        assert!(!display_starts_with(&"short", "shorter"));
        assert!(display_starts_with(&"anything", ""));
    }
}

/// The README's examples, compiled as doctests.
#[cfg(all(doctest, feature = "http"))]
#[doc = include_str!("../README.md")]
mod readme {}
