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
//! | `seawall.limit.in_flight`, `seawall.limit.queue_wait_ms` | the limit's load and a call's wait |
//! | `seawall.deadline.remaining_ms` | time left before the request's deadline |
//!
//! | metric | instrument | unit | attributes |
//! |---|---|---|---|
//! | `seawall.calls` | counter | `{call}` | `seawall.layer`, `seawall.class`, `error.type` |
//! | `seawall.retries` | counter | `{retry}` | `error.type` |
//! | `seawall.retry.budget.exhausted` | counter | `{retry}` | |
//! | `seawall.breaker.transitions` | counter | `{transition}` | `seawall.breaker.name`, `seawall.breaker.state` |
//! | `seawall.breaker.state` | gauge | `1` (0 closed, 1 open, 2 half-open, 3 forced open, 4 disabled) | `seawall.breaker.name` |
//! | `seawall.rejections` | counter | `{call}` | `seawall.layer`, `error.type` |
//! | `seawall.limit.in_flight` | gauge | `{call}` | |
//! | `seawall.limit.queued` | gauge | `{call}` | |
//! | `seawall.limit.queue_wait` | histogram | `s` | |
//! | `seawall.limit.value` | gauge | `{call}` | |
//!
//! Durations are in seconds, as OpenTelemetry's conventions say; the `_ms` attributes exist
//! for log readers. Nothing sensitive is ever recorded: no connection strings, passwords,
//! query text or parameters, request bodies.

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

/// Metric: calls by layer and class.
pub const CALLS: &str = "seawall.calls";
/// Metric: retries started.
pub const RETRIES: &str = "seawall.retries";
/// Metric: retries refused because the budget was spent.
pub const BUDGET_EXHAUSTED: &str = "seawall.retry.budget.exhausted";
/// Metric: breaker state changes.
pub const BREAKER_TRANSITIONS: &str = "seawall.breaker.transitions";
/// Metric: a breaker's current state.
pub const BREAKER_STATE_GAUGE: &str = "seawall.breaker.state";
/// Metric: calls refused by a layer.
pub const REJECTIONS: &str = "seawall.rejections";
/// Metric: calls in flight at a limit.
pub const LIMIT_IN_FLIGHT_GAUGE: &str = "seawall.limit.in_flight";
/// Metric: calls queued at a limit.
pub const LIMIT_QUEUED: &str = "seawall.limit.queued";
/// Metric: time calls waited in a limit's queue.
pub const LIMIT_QUEUE_WAIT: &str = "seawall.limit.queue_wait";
/// Metric: a limit's current value.
pub const LIMIT_VALUE: &str = "seawall.limit.value";
