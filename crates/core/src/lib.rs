//! Seawall's contract floor: what every Seawall crate agrees on, with no optional dependency.
//!
//! - **The vocabulary of outcomes.** [`Class`] ([`Class::Success`], [`Class::Ignored`], or a
//!   [`Failure`]: a [`FailureKind`] and a [`RetryHint`]), what each class means to a layer
//!   ([`Policy`]), and [`Error`], the error every Seawall layer returns: a source error and
//!   its class, read in O(1).
//! - **The classifier contract.** [`Classifier`] and its combinators
//!   ([`ClassifierExt`], [`from_error_fn`], [`from_response_fn`], [`ResponsesOnly`]); the
//!   error types the floor itself knows ([`floor_class`]). Knowledge of clients (SQLSTATE,
//!   Redis, HTTP, gRPC) is seawall-classify's.
//! - **Configuration errors**: [`ConfigError`], naming the layer and the field.
//! - **Request context.** The end-to-end deadline and the priority under overload
//!   ([`HasDeadline`], [`WithDeadline`], [`WithPriority`], [`Priority`],
//!   [`DeadlineExceeded`]), whether a request survives a lost connection ([`Idempotency`]),
//!   the instant a call began ([`call_instant`]) and why an unfinished call was dropped
//!   ([`cut`]).
//! - **The telemetry schema** ([`schema`]): every span, attribute and metric name, and the
//!   one helper through which a layer records a refusal on the caller's span.
//!
//! Most users never name this crate: seawall-classify and the `seawall` facade re-export
//! all of it.

#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod accessors;
pub mod call_instant;
mod class;
mod classifier;
mod config;
pub mod cut;
pub mod deadline;
mod error;
mod idempotency;
pub mod io;
mod known;
mod policy;
pub mod schema;

pub use crate::class::{Class, Failure, FailureKind, RetryHint};
pub use crate::classifier::{
    Classifier, ClassifierExt, ErrorFn, Map, Or, ResponseFn, ResponsesOnly, classified_error,
    classify_outcome, from_error_fn, from_response_fn,
};
pub use crate::config::ConfigError;
pub use crate::deadline::{DeadlineExceeded, HasDeadline, Priority, WithDeadline, WithPriority};
pub use crate::error::{Chain, Error, cause_ref, chain, is_caused_by};
pub use crate::idempotency::{AssumeIdempotent, AssumeNotIdempotent, HttpIdempotency, Idempotency};
pub use crate::known::floor_class;
pub use crate::policy::{KindSet, LimitSample, Policy};

/// The boxed error type tower middleware passes around.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}
