//! Composable resilience middleware for tower: deadlines, retries with jitter and a budget,
//! circuit breaking, concurrency limits, and one error classification that all of them read,
//! in the order that works.
//!
//! # Quick start
//!
//! One `.layer(..)` per dependency:
//!
//! ```
//! use seawall::{StandardPipeline, WithDeadline};
//! use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Stand-in for a PostgreSQL client behind a pool of 10 connections.
//! let client = service_fn(|query: WithDeadline<&'static str>| async move {
//!     Ok::<_, std::io::Error>(query.into_inner().len())
//! });
//!
//! let pipeline = StandardPipeline::postgres(10).build()?;
//! let breaker = pipeline.breaker().expect("the preset has a breaker");
//! let mut db = ServiceBuilder::new().layer(pipeline).service(client);
//!
//! let rows = db.ready().await?.call(WithDeadline::new("SELECT 1")).await?;
//! assert_eq!(rows, 8);
//! assert_eq!(breaker.state(), seawall::breaker::State::Closed);
//! # Ok(())
//! # }
//! ```
//!
//! Every failure comes back as one type, [`Error`], whose [`Class`] is read in O(1): map it to
//! a response in one place (with feature `http`, [`http::response_parts`] does it for you).
//!
//! # One error type, from any layer
//!
//! Each layer's `Service::Error` is [`Error`], and each accepts a client whose error is
//! anything `Into<BoxError>`, so an individual layer answers a caller the same way as the
//! whole pipeline:
//!
//! ```
//! use std::time::Duration;
//! use seawall::prelude::*;
//! use seawall::FailureKind;
//! use tower::{service_fn, Layer, Service, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), seawall::ConfigError> {
//! // A client whose own error type is `std::io::Error`: no `map_err` needed.
//! let refused = service_fn(|_: WithDeadline<&'static str>| async {
//!     Err::<u64, _>(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
//! });
//!
//! let answer = |err: &seawall::Error| match err.kind() {
//!     Some(FailureKind::Rejected) => format!("503, retry after {:?}", err.retry_after()),
//!     Some(FailureKind::Timeout) => "504".to_owned(),
//!     Some(FailureKind::Invalid) => "400".to_owned(),
//!     _ => "503".to_owned(),
//! };
//!
//! // One layer on its own...
//! let breaker = CircuitBreakerLayer::builder().consecutive_faults(1).build()?;
//! let mut db = breaker.layer(refused);
//! let err = db.ready().await.unwrap().call(WithDeadline::new("SELECT 1")).await.unwrap_err();
//! assert_eq!(answer(&err), "503");
//! let err = db.ready().await.unwrap().call(WithDeadline::new("SELECT 1")).await.unwrap_err();
//! assert!(answer(&err).starts_with("503, retry after")); // the breaker is open now
//!
//! // ...or the whole pipeline: the same error type, the same answer.
//! let db = StandardPipeline::postgres(10).no_retry().build()?.layer(refused);
//! let err = db.oneshot(WithDeadline::new("SELECT 1")).await.unwrap_err();
//! assert_eq!(answer(&err), "503");
//! # Ok(())
//! # }
//! ```
//!
//! # The order, and why
//!
//! Outer to inner, around the client of one remote dependency:
//!
//! ```text
//! ClientSpanConfig -> Deadline -> Retry -> Breaker -> Limit -> AttemptTimeout -> Classify -> client
//! ```
//!
//! - **The client span outermost** ([`trace`]): one span per call, of kind client, covering
//!   everything the caller waits for; every layer's events land on it.
//! - **Deadline outermost**: it bounds everything, backoff sleeps and queue waits included,
//!   and publishes the deadline on the request so each inner layer bounds its own waiting
//!   (see [below](#deadlines-and-attempt-timeouts)).
//! - **Retry outside the breaker**: every attempt passes the breaker, so an open breaker ends
//!   retrying at once (its refusal is `Rejected`, which is never retried and never counted).
//! - **Retry outside the limit**: each attempt takes a fresh permit and none is held while
//!   retry sleeps, so a retry storm cannot hold the pool.
//! - **Attempt timeout inside the limit**: a permit is held for at most one attempt, and a
//!   half-open probe is bounded in time.
//! - **Classification innermost**: every layer above sees classified errors.
//!
//! When to deviate: put a cache lookup outside the whole pipeline (a hit should not take a
//! permit); share one breaker between several pipelines only when they reach the same
//! backend; drop the retry for non-idempotent calls that cannot be deduplicated (or mark
//! idempotency per request, [`StandardPipeline::idempotency`]), and for requests that cannot
//! be cloned ([`StandardPipeline::no_retry`] gives a pipeline whose requests need not be
//! `Clone`).
//!
//! One classifier ([`StandardPipeline::classifier`]) and one [`Policy`](classify::Policy)
//! ([`StandardPipeline::policy`]) configure every layer: what is retried, what a breaker
//! counts and what an adaptive limit learns are never decided twice.
//!
//! # Deadlines and attempt timeouts
//!
//! A request's deadline is the earlier of the pipeline's [`deadline`](StandardPipeline::deadline)
//! and one the caller set on the request ([`HasDeadline`]: a caller with a 2 s budget under a
//! preset whose deadline is 30 s gets 2 s). The deadline layer gives the request up a margin
//! before that deadline (5 ms, at most an eighth of the time left), so that the answer
//! reaches the caller in time, and that instant is what the layers inside see. Each attempt
//! then ends at the earlier of:
//!
//! | bound | error | retried? | what the breaker and an adaptive limit record |
//! |---|---|---|---|
//! | its own [`attempt_timeout`](StandardPipeline::attempt_timeout) | [`Elapsed`](timeout::error::Elapsed) (`Timeout`) | yes, if the deadline leaves time for another attempt | a timeout: a fault, a drop |
//! | the request's deadline (less the margin) | [`DeadlineExceeded`] (`Timeout`) | no: no time is left | a timeout: a fault, a drop |
//!
//! So a hung dependency opens the breaker whatever the callers' deadlines: a caller's 2 s
//! under the PostgreSQL preset's 5 s attempt timeout ends each hung attempt at 2 s, as a
//! fault, and five of them in a row open it. (Should anything still be running when the
//! deadline layer's own timer fires, it is cut there, and the layers it passed record it as a
//! timeout all the same, see [`classify::cut`]; a call whose caller went away is a
//! cancellation and counts nowhere.) A call still queued for a limit's permit when the
//! deadline comes is refused by the limit instead ([`limit::error::Reason::Deadline`], class
//! `Rejected`): it never reached the dependency, so it is not the dependency's fault.
//!
//! The attempt timeout is the bound for a dependency that answers slowly but within the
//! caller's patience: pick it from the dependency's own latency (a query that takes more
//! than 5 s is stuck), not from callers' deadlines, which bound it anyway. What can be checked
//! when the pipeline is built is: an attempt timeout longer than the pipeline's own deadline
//! (`attempt_timeout`), a breaker time window shorter than two attempts
//! (`circuit_breaker.time_window`), and a slow-call threshold no attempt can reach
//! (`circuit_breaker.slow_call_threshold`); each is a [`ConfigError`] naming the field.
//!
//! | preset | deadline | attempt timeout | attempts |
//! |---|---|---|---|
//! | [`new`](StandardPipeline::new) | 30 s | 5 s | 3 |
//! | [`postgres`](StandardPipeline::postgres) | 30 s | 5 s | 3 |
//! | [`redis`](StandardPipeline::redis) | 2 s | 500 ms | 3 |
//! | `http` | 30 s | 10 s | 3 |
//! | `grpc` | 30 s | 10 s | 1 (a gRPC request cannot be cloned) |
//!
//! # Defaults
//!
//! | part | default | why |
//! |---|---|---|
//! | deadline | 30 s | the usual request budget of an HTTP service |
//! | attempt timeout | 5 s (Redis 500 ms, HTTP 10 s) | a database query that takes longer is stuck |
//! | retry | 3 attempts, exponential from 100 ms (PostgreSQL 50 ms, Redis 10 ms), ×2, capped at 5 s (2 s, 200 ms), decorrelated jitter; conflicts and lost connections retried within 5 ms (10 ms the second time) | rides out a blip without long tails; a serialization failure or a dropped connection clears in milliseconds, so waiting 50 ms for it is pure latency |
//! | retry budget | 20 % of requests + 10/s over 10 s | caps amplification at 1.2× when everything fails |
//! | breaker | 5 consecutive faults, or 50 % of the last 100 calls (at least 20) | fast on a hard outage, steady under partial failure |
//! | breaker open | 1 s, doubled per failed probe up to 5 s, 10 % jitter, 1 probe; with [`probe`](StandardPipeline::probe), a check of the dependency every 75-100 ms decides instead | without a probe, a recovered dependency is noticed within 5 s (Polly's break is 5 s) and one user call per period is the trial; with one (the example service configures `SELECT 1` and `PING`), within 100 ms and no user call is spent on it |
//! | limit | the pool size, queue 16 times that, waits bounded by the caller's deadline (Redis: queue = limit, 100 ms); controlled delay (`Discipline::CONTROLLED_DELAY`: once the queue has stood 100 ms, at most 5 ms of wait, newest first) | the pool never waits; a burst waits, a standing queue answers at once the calls it would answer at their deadline (seawall-eval: p99 1,995 ms to 310 ms in pool-exhaustion for the same success; a FIFO queue serves more when an overload ends within the deadline: see seawall-limit); a call the queue could not reach before its deadline even at four times its recent pace is refused at once; the length only bounds memory |
//! | classifier | [`DefaultClassifier`] (HTTP: [`HttpClassifier`](seawall_classify::HttpClassifier)) | the shared vocabulary |
//! | client span | INFO, kind client, named per the semantic conventions (PostgreSQL, Redis, HTTP presets) | exported at the default filter: the dependency call is what a trace is opened for |
//! | idempotency | lost connections not retried (HTTP: by method and `Idempotency-Key`) | a request that may have run is not repeated blindly |
//!
//! # Crates
//!
//! Each layer is its own crate, re-exported here behind a feature of the same name (all but
//! `http`, `postgres`, `redis` and `sqlx` on by default; `full` turns on everything):
//! [`classify`], [`timeout`], [`limit`], [`breaker`], [`retry`], [`fallback`], [`hedge`], and
//! `fleet` (off by default: it brings the Redis client) for limits shared by a fleet.
//!
//! # A fallback around the pipeline
//!
//! [`fallback::FallbackLayer`] goes outside a [`StandardPipeline`]'s service: it answers
//! for what the caller would otherwise get, after the retries, the deadline and the breaker
//! have had their say, and an open breaker's refusal is answered from the fallback at once,
//! without touching the dependency. By default it answers for refusals, unavailability,
//! unreachable hosts, overload and timeouts, never for the caller's own mistakes:
//!
//! ```
//! use seawall::fallback::{FallbackRequest, FallbackLayer};
//! use seawall::{Error, StandardPipeline, WithDeadline};
//! use tower::{Layer, service_fn};
//!
//! # fn main() -> Result<(), seawall::ConfigError> {
//! let database = service_fn(|id: WithDeadline<u64>| async move {
//!     Ok::<_, std::io::Error>(format!("item {}", id.get_ref()))
//! });
//! let stale = service_fn(|read: FallbackRequest<WithDeadline<u64>>| async move {
//!     let id = read.request().map_or(0, |r| *r.get_ref());
//!     Ok::<_, Error>(format!("item {id}, as last cached"))
//! });
//! let reads = FallbackLayer::builder(stale)
//!     .keep_request()
//!     .build()?
//!     .layer(StandardPipeline::postgres(10).build()?.layer(database));
//! # let _ = reads;
//! # Ok(())
//! # }
//! ```
//!
//! # Hedging a slow dependency
//!
//! [`hedge::HedgeLayer`] goes around a [`StandardPipeline`]'s service too, inside a
//! fallback (`FallbackLayer` -> `HedgeLayer` -> pipeline): each attempt then goes through
//! the pipeline's breaker, limit and attempt timeout and counts in them, and the hedge is
//! held back by the same breaker and limit (their handles are gates). Set the deadline on the
//! request before the hedge, so that both attempts share it and the hedge knows how much time
//! is left; share the pipeline's retry budget, so that retries and hedges together stay
//! within one share of requests ([`StandardLayer::bound_hedge`] does all three):
//!
//! ```
//! use seawall::hedge::HedgeLayer;
//! use seawall::classify::AssumeIdempotent;
//! use seawall::{StandardPipeline, WithDeadline};
//! use tower::{Layer, service_fn};
//!
//! # fn main() -> Result<(), seawall::ConfigError> {
//! let replica = service_fn(|key: WithDeadline<&'static str>| async move {
//!     Ok::<_, std::io::Error>(key.into_inner().len())
//! });
//! let pipeline = StandardPipeline::redis(100).build()?;
//! // Reads only: every GET may go twice. Gated by the pipeline's breaker and limit, within
//! // its retry budget.
//! let hedge = pipeline.bound_hedge(HedgeLayer::builder(AssumeIdempotent));
//! let reads = hedge.build()?.layer(pipeline.layer(replica));
//! # let _ = reads;
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

pub use seawall_classify as classify;
/// axum's answer from a Seawall error: a handler returns `Result<T, Problem>` and `?`
/// converts (see [`classify::axum`]).
#[cfg(feature = "axum")]
pub use seawall_classify::axum::Problem;
pub use seawall_classify::{
    BoxError, Class, ConfigError, DeadlineExceeded, DefaultClassifier, Error, FailureKind,
    HasDeadline, Priority, RetryHint, WithDeadline, WithPriority,
};

#[cfg(feature = "breaker")]
pub use seawall_breaker as breaker;
#[cfg(feature = "fallback")]
pub use seawall_fallback as fallback;
#[cfg(feature = "fleet")]
pub use seawall_fleet as fleet;
#[cfg(feature = "hedge")]
pub use seawall_hedge as hedge;
#[cfg(feature = "limit")]
pub use seawall_limit as limit;
#[cfg(feature = "retry")]
pub use seawall_retry as retry;
#[cfg(feature = "timeout")]
pub use seawall_timeout as timeout;

#[cfg(all(
    feature = "timeout",
    feature = "limit",
    feature = "breaker",
    feature = "retry"
))]
mod builder_ext;
#[cfg(feature = "http")]
pub mod http;
#[cfg(all(
    feature = "timeout",
    feature = "limit",
    feature = "breaker",
    feature = "retry"
))]
pub mod pipeline;
pub use seawall_trace as trace;

#[cfg(all(
    feature = "timeout",
    feature = "limit",
    feature = "breaker",
    feature = "retry"
))]
pub use crate::builder_ext::ServiceBuilderExt;
#[cfg(all(
    feature = "timeout",
    feature = "limit",
    feature = "breaker",
    feature = "retry"
))]
pub use crate::pipeline::{NoRetry, Standard, StandardLayer, StandardPipeline, WithRetry};

/// The names most code needs, for `use seawall::prelude::*`.
pub mod prelude {
    pub use seawall_classify::{
        Class, ClassifierExt, ClassifyLayer, DefaultClassifier, Error, FailureKind, HasDeadline,
        RetryHint, WithDeadline,
    };

    #[cfg(feature = "breaker")]
    pub use seawall_breaker::{CircuitBreakerLayer, CountWindow, TimeWindow};
    #[cfg(feature = "fallback")]
    pub use seawall_fallback::{FallbackLayer, FallbackRequest};
    #[cfg(feature = "hedge")]
    pub use seawall_hedge::HedgeLayer;
    #[cfg(feature = "limit")]
    pub use seawall_limit::ConcurrencyLimitLayer;
    #[cfg(feature = "retry")]
    pub use seawall_retry::{Backoff, Jitter, RetryBudget, RetryLayer};
    #[cfg(feature = "timeout")]
    pub use seawall_timeout::{AttemptTimeoutLayer, DeadlineLayer};

    #[cfg(all(
        feature = "timeout",
        feature = "limit",
        feature = "breaker",
        feature = "retry"
    ))]
    pub use crate::{ServiceBuilderExt, StandardPipeline};
}

/// The README's examples, compiled as doctests.
#[cfg(all(doctest, feature = "http"))]
#[doc = include_str!("../README.md")]
mod readme {}

/// The README's examples, compiled as doctests.
#[cfg(all(doctest, feature = "http"))]
#[doc = include_str!("../../../README.md")]
mod workspace_readme {}
