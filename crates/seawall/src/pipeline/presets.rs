//! The presets: the general defaults and one per kind of dependency (the gRPC one is in
//! grpc.rs).

use std::marker::PhantomData;
use std::time::Duration;

use seawall_breaker::{CircuitBreakerLayer, CountWindow};
use seawall_classify::{AssumeNotIdempotent, DefaultClassifier, Policy};
use seawall_limit::{ConcurrencyLimitLayer, Discipline};
use seawall_retry::{Backoff, Jitter, RetryBudget, RetryLayer};

use super::StandardPipeline;
use crate::trace::ClientSpanConfig;

/// The presets' fast schedule for conflicts and lost connections: up to 5 ms, doubling.
const FAST_RETRY: Duration = Duration::from_millis(5);

impl StandardPipeline {
    /// The general defaults, for a dependency whose client can run `max_in_flight` calls at
    /// once (its pool size). See the table in the [crate docs](crate#defaults).
    pub fn new(name: &str, max_in_flight: usize) -> Self {
        StandardPipeline {
            client_span: Some(ClientSpanConfig::new(name)),
            deadline: Some(Duration::from_secs(30)),
            retry: Some(
                RetryLayer::builder()
                    .max_attempts(3)
                    .backoff(
                        Backoff::exponential(Duration::from_millis(100))
                            .max_delay(Duration::from_secs(5))
                            .jitter(Jitter::Decorrelated)
                            .fast_retry(FAST_RETRY),
                    )
                    .budget(RetryBudget::standard()),
            ),
            breaker: Some(
                CircuitBreakerLayer::builder()
                    .name(name)
                    .consecutive_faults(5)
                    .count_window(CountWindow::new(100).min_calls(20).failure_rate(0.5))
                    .open_duration(Duration::from_secs(1))
                    .max_open_duration(Duration::from_secs(5)),
            ),
            // The caller's deadline decides how long a call may wait (a call the queue
            // would answer too late is refused at once), and a standing queue sheds within
            // 5 ms (controlled delay); the queue's length only bounds memory.
            limit: Some(
                ConcurrencyLimitLayer::builder(max_in_flight)
                    .queue(max_in_flight.saturating_mul(16))
                    .max_wait(Duration::from_secs(30))
                    .discipline(Discipline::CONTROLLED_DELAY),
            ),
            attempt_timeout: Some(Duration::from_secs(5)),
            classifier: DefaultClassifier,
            idempotency: AssumeNotIdempotent,
            policy: Policy::STANDARD,
            mode: PhantomData,
        }
    }

    /// PostgreSQL through a pool of `pool_size` connections: the limit is the pool, so the
    /// pool itself never waits; 5 s per attempt (a query), 30 s per request; retries from
    /// 50 ms (a restarted server accepts connections within a second or two).
    pub fn postgres(pool_size: usize) -> Self {
        let mut pipeline =
            Self::new("postgres", pool_size).client_span(ClientSpanConfig::postgresql());
        pipeline.retry = pipeline.retry.map(|retry| {
            retry.backoff(
                Backoff::exponential(Duration::from_millis(50))
                    .max_delay(Duration::from_secs(2))
                    .fast_retry(FAST_RETRY),
            )
        });
        pipeline
    }

    /// Redis over a multiplexed connection: many calls in flight (`max_in_flight`), each
    /// fast: 500 ms per attempt, 2 s per request, retries from 10 ms capped at 200 ms, a
    /// short queue (a cache that cannot answer quickly is better skipped).
    pub fn redis(max_in_flight: usize) -> Self {
        let mut pipeline = Self::new("redis", max_in_flight).client_span(ClientSpanConfig::redis());
        pipeline.deadline = Some(Duration::from_secs(2));
        pipeline.attempt_timeout = Some(Duration::from_millis(500));
        pipeline.retry = pipeline.retry.map(|retry| {
            retry.backoff(
                Backoff::exponential(Duration::from_millis(10))
                    .max_delay(Duration::from_millis(200))
                    .fast_retry(FAST_RETRY),
            )
        });
        pipeline.limit = Some(
            ConcurrencyLimitLayer::builder(max_in_flight)
                .queue(max_in_flight)
                .max_wait(Duration::from_millis(100))
                .discipline(Discipline::CONTROLLED_DELAY),
        );
        pipeline
    }
}

#[cfg(feature = "http")]
impl StandardPipeline<seawall_classify::HttpClassifier, seawall_classify::HttpIdempotency> {
    /// An HTTP upstream: responses classified by status and `Retry-After`, lost connections
    /// retried for idempotent methods and keyed requests only; 10 s per attempt, 30 s per
    /// request. Requests are `http::Request<B>`s (for reqwest, through
    /// [`http::Reqwest`](crate::http::Reqwest); wrap hyper-util's client in
    /// [`http::CollectBodyLayer`](crate::http::CollectBodyLayer) so that a body cut
    /// mid-stream is the attempt's error).
    ///
    /// A failing response (a 503, say) is retried and counted as a fault like an error, but
    /// it is still an answer: after the last attempt the caller gets it as `Ok(response)`,
    /// to answer as it sees fit; an `Err` means no response came.
    pub fn http(name: &str, max_in_flight: usize) -> Self {
        let mut pipeline = StandardPipeline::new(name, max_in_flight)
            .classifier(seawall_classify::HttpClassifier)
            .idempotency(seawall_classify::HttpIdempotency)
            .client_span(ClientSpanConfig::http().name(name));
        pipeline.attempt_timeout = Some(Duration::from_secs(10));
        pipeline
    }
}
