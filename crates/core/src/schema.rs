//! The names Seawall reports under: span and event names, attribute keys, and metric
//! instruments. OpenTelemetry semantic-convention names where they exist, `seawall.`
//! otherwise.
//!
//! | attribute | meaning |
//! |---|---|
//! | `error.type` | the failure kind of a failed call (`timeout`, `connect`...) |
//! | `db.system.name` | `postgresql`, `redis` |
//! | `server.address`, `server.port` | the dependency's address |
//! | `seawall.layer` | which layer reports: `deadline`, `retry`, `breaker`, `limit`, `attempt_timeout`, `classify` |
//! | `seawall.class` | `success`, `failure`, `ignored` |
//! | `seawall.failure.kind` | the failure kind |
//! | `seawall.retry.attempt` | the attempt number, 1 for the first |
//! | `seawall.retry.delay_ms` | the backoff before this attempt |
//! | `seawall.breaker.name`, `seawall.breaker.state` | a breaker and its state |
//! | `seawall.breaker.previous_state` | the state a breaker left |
//! | `seawall.breaker.open_ms` | how long a breaker stays open this time |
//! | `seawall.retry.max_attempts` | a request's attempts at most |
//! | `seawall.timeout_ms` | the attempt timeout that fired |
//! | `seawall.limit.in_flight`, `seawall.limit.queued`, `seawall.limit.value` | the limit's load and its value |
//! | `seawall.limit.queue_wait_ms` | a call's wait in the queue |
//! | `seawall.deadline.remaining_ms` | time left before the request's deadline |
//! | `seawall.retry.attempts` | how many attempts a call took, when more than one |
//! | `seawall.hedge.reason` | why a slow request's hedge was not sent: `budget`, `gate`, `deadline` |
//! | `seawall.hedge.delay_ms` | how long a request waited before its hedge was sent |
//! | `seawall.fleet.mode` | where a fleet-wide limit decided: `shared` (on Redis) or `local` (its share, while Redis did not answer) |
//! | `seawall.dependency` | the dependency a call is to (the client span's name before the operation names it) |
//! | `db.namespace`, `db.operation.name`, `db.collection.name` | a database call (semantic conventions) |
//! | `http.request.method`, `url.full`, `http.response.status_code` | an HTTP call (semantic conventions) |
//! | `rpc.system`, `rpc.service`, `rpc.method` | an RPC (semantic conventions) |
//! | `otel.name`, `otel.kind`, `otel.status_code` | the exported span's name, kind and status (read by `tracing-opentelemetry`) |
//!
//! | span | meaning |
//! |---|---|
//! | `seawall.client` | one call through a pipeline to a dependency: kind client, INFO, named and attributed per the semantic conventions; the layers' events (attempts, backoff, rejections, queue waits) are its events |
//!
//! | metric | instrument | unit | attributes |
//! |---|---|---|---|
//! | `seawall.client.duration` | histogram | `s` | `seawall.dependency`, `seawall.class`, `error.type` |
//! | `seawall.calls` | counter | `{call}` | `seawall.layer`, `seawall.class`, `error.type` |
//! | `seawall.retries` | counter | `{retry}` | `seawall.dependency`, `error.type` |
//! | `seawall.retry.budget.exhausted` | counter | `{retry}` | `seawall.dependency` |
//! | `seawall.breaker.transitions` | counter | `{transition}` | `seawall.breaker.name`, `seawall.breaker.state`, `seawall.breaker.previous_state` |
//! | `seawall.breaker.state` | gauge | `{state}` (0 closed, 1 open, 2 half-open, 3 forced open, 4 disabled) | `seawall.breaker.name` |
//! | `seawall.breaker.probes` | counter | `{probe}` | `seawall.breaker.name`, `seawall.class` |
//! | `seawall.rejections` | counter | `{call}` | `seawall.layer`, `error.type`, `seawall.breaker.name` (a breaker's) |
//! | `seawall.hedges` | counter | `{hedge}` | `seawall.dependency` |
//! | `seawall.hedge.wins` | counter | `{hedge}` | `seawall.dependency` |
//! | `seawall.hedges.skipped` | counter | `{hedge}` | `seawall.dependency`, `seawall.hedge.reason` |
//! | `seawall.fleet.decisions` | counter | `{decision}` | `seawall.fleet.mode` |
//! | `seawall.limit.in_flight` | gauge | `{call}` | |
//! | `seawall.limit.queued` | gauge | `{call}` | |
//! | `seawall.limit.queue_wait` | histogram | `s` | |
//! | `seawall.limit.value` | gauge | `{call}` | |
//!
//! Durations are in seconds, as OpenTelemetry's conventions say; the `_ms` attributes exist
//! for log readers. Nothing sensitive is ever recorded: no connection strings, passwords,
//! query text or parameters, request bodies.
//!
//! The names live in this crate, the one every layer depends on, so that layers emit them
//! as constants (`tracing::debug!({ { schema::LIMIT_VALUE } = n }, ..)`), and
//! `seawall-telemetry` re-exports them. Metrics travel on `tracing` events as fields named
//! `monotonic_counter.<metric>` or `histogram.<metric>` (the `tracing-opentelemetry`
//! convention): the `FIELD_*` constants. [`ATTRIBUTES`], [`METRICS`] and [`SPANS`] list every
//! name; a test runs every layer and fails on any name it emits that is not listed.

/// Attribute: the failure kind of a failed call.
pub const ERROR_TYPE: &str = "error.type";
/// Attribute: the database system (`postgresql`, `redis`).
pub const DB_SYSTEM_NAME: &str = "db.system.name";
/// Attribute: the dependency's host.
pub const SERVER_ADDRESS: &str = "server.address";
/// Attribute: the dependency's port.
pub const SERVER_PORT: &str = "server.port";
/// Attribute: which layer reports.
pub const LAYER: &str = "seawall.layer";
/// Attribute: the class of a finished call.
pub const CLASS: &str = "seawall.class";
/// Attribute: the failure kind.
pub const FAILURE_KIND: &str = "seawall.failure.kind";
/// Attribute: the attempt number.
pub const RETRY_ATTEMPT: &str = "seawall.retry.attempt";
/// Attribute: the backoff before an attempt, in milliseconds.
pub const RETRY_DELAY_MS: &str = "seawall.retry.delay_ms";
/// Attribute: a breaker's name.
pub const BREAKER_NAME: &str = "seawall.breaker.name";
/// Attribute: a breaker's state.
pub const BREAKER_STATE: &str = "seawall.breaker.state";
/// Attribute: calls in flight at a limit.
pub const LIMIT_IN_FLIGHT: &str = "seawall.limit.in_flight";
/// Attribute: a call's wait in a limit's queue, in milliseconds.
pub const LIMIT_QUEUE_WAIT_MS: &str = "seawall.limit.queue_wait_ms";
/// Attribute: time left before the request's deadline, in milliseconds.
pub const DEADLINE_REMAINING_MS: &str = "seawall.deadline.remaining_ms";
/// Attribute: the state a breaker left.
pub const BREAKER_PREVIOUS_STATE: &str = "seawall.breaker.previous_state";
/// Attribute: how long a breaker stays open this time, in milliseconds.
pub const BREAKER_OPEN_MS: &str = "seawall.breaker.open_ms";
/// Attribute: a request's attempts at most.
pub const RETRY_MAX_ATTEMPTS: &str = "seawall.retry.max_attempts";
/// Attribute: the attempt timeout that fired, in milliseconds.
pub const TIMEOUT_MS: &str = "seawall.timeout_ms";
/// Attribute: calls queued at a limit.
pub const LIMIT_QUEUED_ATTR: &str = "seawall.limit.queued";
/// Attribute: a limit's value.
pub const LIMIT_VALUE_ATTR: &str = "seawall.limit.value";

/// Attribute: the database, schema or keyspace a client talks to.
pub const DB_NAMESPACE: &str = "db.namespace";
/// Attribute: the database operation (`SELECT`, `GET`).
pub const DB_OPERATION_NAME: &str = "db.operation.name";
/// Attribute: the table or collection an operation reads or writes.
pub const DB_COLLECTION_NAME: &str = "db.collection.name";
/// Attribute: an HTTP request's method.
pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
/// Attribute: an HTTP request's URL, without credentials or query.
pub const URL_FULL: &str = "url.full";
/// Attribute: an HTTP response's status code.
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
/// Attribute: the RPC system (`grpc`).
pub const RPC_SYSTEM: &str = "rpc.system";
/// Attribute: the RPC service (`grpc.health.v1.Health`).
pub const RPC_SERVICE: &str = "rpc.service";
/// Attribute: the RPC method (`Check`).
pub const RPC_METHOD: &str = "rpc.method";
/// Attribute: how many attempts a call took, when more than one.
pub const RETRY_ATTEMPTS: &str = "seawall.retry.attempts";
/// Attribute: the dependency a client span or call metric is about (the pipeline's name:
/// `postgresql`, `redis`, an upstream's name).
pub const DEPENDENCY: &str = "seawall.dependency";
/// Span field read by `tracing-opentelemetry`: the exported span's name.
pub const OTEL_NAME: &str = "otel.name";
/// Span field read by `tracing-opentelemetry`: the span kind (`client`).
pub const OTEL_KIND: &str = "otel.kind";
/// Span field read by `tracing-opentelemetry`: the span status (`error`).
pub const OTEL_STATUS_CODE: &str = "otel.status_code";

/// Span: one call through a pipeline to a dependency, of kind client, at INFO by default.
pub const SPAN_CLIENT: &str = "seawall.client";

/// Metric: calls through a pipeline (its client span), by dependency and outcome, with
/// their duration in seconds.
pub const CLIENT_DURATION: &str = "seawall.client.duration";
/// Metric: calls by layer and class.
pub const CALLS: &str = "seawall.calls";
/// Metric: retries started.
pub const RETRIES: &str = "seawall.retries";
/// Metric: retries refused because the budget was spent.
pub const BUDGET_EXHAUSTED: &str = "seawall.retry.budget.exhausted";
/// Metric: breaker state changes.
pub const BREAKER_TRANSITIONS: &str = "seawall.breaker.transitions";
/// Metric: active recovery probes of an open breaker, by result.
pub const BREAKER_PROBES: &str = "seawall.breaker.probes";
/// Metric: a breaker's current state.
pub const BREAKER_STATE_GAUGE: &str = "seawall.breaker.state";
/// Metric: calls refused by a layer.
pub const REJECTIONS: &str = "seawall.rejections";
/// Metric: hedges sent (second attempts of a slow request).
pub const HEDGES: &str = "seawall.hedges";
/// Metric: hedges that answered before the first attempt.
pub const HEDGE_WINS: &str = "seawall.hedge.wins";
/// Metric: hedges not sent although the request was slow, by reason.
pub const HEDGES_SKIPPED: &str = "seawall.hedges.skipped";
/// Metric: decisions of fleet-wide limits, by where they were made (`shared` on Redis, or
/// `local` on the instance's share while Redis did not answer).
pub const FLEET_DECISIONS: &str = "seawall.fleet.decisions";
/// Metric: calls in flight at a limit.
pub const LIMIT_IN_FLIGHT_GAUGE: &str = "seawall.limit.in_flight";
/// Metric: calls queued at a limit.
pub const LIMIT_QUEUED: &str = "seawall.limit.queued";
/// Metric: time calls waited in a limit's queue.
pub const LIMIT_QUEUE_WAIT: &str = "seawall.limit.queue_wait";
/// Metric: a limit's current value.
pub const LIMIT_VALUE: &str = "seawall.limit.value";

/// Event field carrying [`RETRIES`] (a counter increment).
pub const FIELD_RETRIES: &str = "monotonic_counter.seawall.retries";
/// Event field carrying [`BUDGET_EXHAUSTED`] (a counter increment).
pub const FIELD_BUDGET_EXHAUSTED: &str = "monotonic_counter.seawall.retry.budget.exhausted";
/// Event field carrying [`BREAKER_TRANSITIONS`] (a counter increment).
pub const FIELD_BREAKER_TRANSITIONS: &str = "monotonic_counter.seawall.breaker.transitions";
/// Event field carrying [`BREAKER_PROBES`] (a counter increment).
pub const FIELD_BREAKER_PROBES: &str = "monotonic_counter.seawall.breaker.probes";
/// Event field carrying [`REJECTIONS`] (a counter increment).
pub const FIELD_REJECTIONS: &str = "monotonic_counter.seawall.rejections";
/// Event field carrying [`HEDGES`] (a counter increment).
pub const FIELD_HEDGES: &str = "monotonic_counter.seawall.hedges";
/// Event field carrying [`HEDGE_WINS`] (a counter increment).
pub const FIELD_HEDGE_WINS: &str = "monotonic_counter.seawall.hedge.wins";
/// Event field carrying [`HEDGES_SKIPPED`] (a counter increment).
pub const FIELD_HEDGES_SKIPPED: &str = "monotonic_counter.seawall.hedges.skipped";
/// Event field carrying [`FLEET_DECISIONS`] (a counter increment).
pub const FIELD_FLEET_DECISIONS: &str = "monotonic_counter.seawall.fleet.decisions";
/// Event field carrying [`CLIENT_DURATION`] (a histogram sample, in seconds).
pub const FIELD_CLIENT_DURATION: &str = "histogram.seawall.client.duration";
/// Event field carrying [`LIMIT_QUEUE_WAIT`] (a histogram sample, in seconds).
pub const FIELD_LIMIT_QUEUE_WAIT: &str = "histogram.seawall.limit.queue_wait";

/// Attribute: why a hedge was not sent (`budget`, `gate`, `deadline`).
pub const HEDGE_REASON: &str = "seawall.hedge.reason";
/// Attribute: how long a request waited before its hedge was sent, in milliseconds.
pub const HEDGE_DELAY_MS: &str = "seawall.hedge.delay_ms";

/// Attribute: where a fleet-wide limit decided (`shared`, `local`).
pub const FLEET_MODE: &str = "seawall.fleet.mode";

/// Every attribute name.
pub const ATTRIBUTES: &[&str] = &[
    ERROR_TYPE,
    DB_SYSTEM_NAME,
    SERVER_ADDRESS,
    SERVER_PORT,
    LAYER,
    CLASS,
    FAILURE_KIND,
    RETRY_ATTEMPT,
    RETRY_DELAY_MS,
    RETRY_MAX_ATTEMPTS,
    BREAKER_NAME,
    BREAKER_STATE,
    BREAKER_PREVIOUS_STATE,
    BREAKER_OPEN_MS,
    TIMEOUT_MS,
    LIMIT_IN_FLIGHT,
    LIMIT_QUEUED_ATTR,
    LIMIT_VALUE_ATTR,
    LIMIT_QUEUE_WAIT_MS,
    DEADLINE_REMAINING_MS,
    DB_NAMESPACE,
    DB_OPERATION_NAME,
    DB_COLLECTION_NAME,
    HTTP_REQUEST_METHOD,
    URL_FULL,
    HTTP_RESPONSE_STATUS_CODE,
    RPC_SYSTEM,
    RPC_SERVICE,
    RPC_METHOD,
    RETRY_ATTEMPTS,
    DEPENDENCY,
    OTEL_NAME,
    OTEL_KIND,
    OTEL_STATUS_CODE,
    HEDGE_REASON,
    HEDGE_DELAY_MS,
    FLEET_MODE,
];

/// Every metric name.
pub const METRICS: &[&str] = &[
    CLIENT_DURATION,
    CALLS,
    RETRIES,
    BUDGET_EXHAUSTED,
    BREAKER_TRANSITIONS,
    BREAKER_STATE_GAUGE,
    BREAKER_PROBES,
    REJECTIONS,
    LIMIT_IN_FLIGHT_GAUGE,
    LIMIT_QUEUED,
    LIMIT_QUEUE_WAIT,
    LIMIT_VALUE,
    HEDGES,
    HEDGE_WINS,
    HEDGES_SKIPPED,
    FLEET_DECISIONS,
];

/// Every span name.
pub const SPANS: &[&str] = &[SPAN_CLIENT];

/// `true` when `field`, a field of a `tracing` event or span a layer emits, is in the
/// schema: an attribute, or a metric behind its `monotonic_counter.` / `histogram.` prefix.
/// (`message`, the event's text, is not a name.)
#[must_use]
pub fn is_known_field(field: &str) -> bool {
    if field == "message" || ATTRIBUTES.contains(&field) {
        return true;
    }
    ["monotonic_counter.", "histogram.", "counter.", "gauge."]
        .iter()
        .filter_map(|prefix| field.strip_prefix(prefix))
        .any(|metric| METRICS.contains(&metric))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_fields_name_metrics_of_the_schema() {
        for field in [
            FIELD_RETRIES,
            FIELD_BUDGET_EXHAUSTED,
            FIELD_BREAKER_TRANSITIONS,
            FIELD_REJECTIONS,
            FIELD_LIMIT_QUEUE_WAIT,
            FIELD_CLIENT_DURATION,
            FIELD_BREAKER_PROBES,
            FIELD_HEDGES,
            FIELD_HEDGE_WINS,
            FIELD_HEDGES_SKIPPED,
            FIELD_FLEET_DECISIONS,
        ] {
            assert!(is_known_field(field), "{field}");
        }
        assert!(!is_known_field("seawall.limit.limit"));
        assert!(!is_known_field("monotonic_counter.seawall.unknown"));
    }

    #[test]
    fn names_are_unique_and_prefixed() {
        let mut all: Vec<_> = ATTRIBUTES.iter().chain(METRICS).chain(SPANS).collect();
        for name in &all {
            assert!(
                name.starts_with("seawall.")
                    || ["error.", "db.", "server.", "http.", "url.", "rpc.", "otel."]
                        .iter()
                        .any(|p| name.starts_with(p)),
                "{name}"
            );
        }
        all.sort();
        let before = all.len();
        all.dedup();
        // An attribute and a metric may share a name (a limit's value is both).
        assert!(before - all.len() <= 4, "{before} vs {}", all.len());
    }
}

/// Records on the caller's span (a pipeline's client span, which declares the fields) that
/// `layer` refused the call, and returns the span's [`Refusal`] for the layer's own fields.
/// The one way an inner layer marks a refusal on the client span: a span that does not
/// declare the fields ignores them.
///
/// ```
/// use seawall_core::schema;
///
/// schema::record_refusal("breaker")
///     .with(schema::BREAKER_NAME, "orders")
///     .with(schema::BREAKER_STATE, "open");
/// ```
pub fn record_refusal(layer: &'static str) -> Refusal {
    let span = tracing::Span::current();
    span.record(LAYER, layer);
    Refusal { span }
}

/// A refusal being recorded on the caller's span; see [`record_refusal`].
#[derive(Debug)]
#[must_use = "a refusal records its fields with `with`"]
pub struct Refusal {
    span: tracing::Span,
}

impl Refusal {
    /// Records `field` (one of this module's names) as `value`.
    pub fn with(self, field: &'static str, value: impl tracing::Value) -> Self {
        self.span.record(field, value);
        self
    }
}
