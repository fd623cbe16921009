//! The recorder layers call to report metrics.

use std::fmt;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter};
use seawall_classify::Class;

use crate::schema;

/// Seawall's metric instruments, created once from a meter and shared (cheap to clone).
///
/// With no meter provider installed the instruments are no-ops and each call costs next to
/// nothing; with one installed (see [`init`](crate::init)), they are exported with it.
///
/// ```
/// use seawall_classify::{Class, FailureKind, RetryHint};
/// use seawall_telemetry::Recorder;
///
/// let recorder = Recorder::global();
/// recorder.call("breaker", Class::failure(FailureKind::Timeout, RetryHint::Retry));
/// recorder.breaker_transition("postgres", "open");
/// ```
#[derive(Clone)]
pub struct Recorder {
    calls: Counter<u64>,
    retries: Counter<u64>,
    budget_exhausted: Counter<u64>,
    transitions: Counter<u64>,
    breaker_state: Gauge<u64>,
    rejections: Counter<u64>,
    in_flight: Gauge<u64>,
    queued: Gauge<u64>,
    queue_wait: Histogram<f64>,
    limit: Gauge<u64>,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

impl Recorder {
    /// The instruments, from the global meter provider's `seawall` meter.
    #[must_use]
    pub fn global() -> Self {
        Self::new(&opentelemetry::global::meter("seawall"))
    }

    /// The instruments, from `meter`.
    #[must_use]
    pub fn new(meter: &Meter) -> Self {
        Recorder {
            calls: meter
                .u64_counter(schema::CALLS)
                .with_unit("{call}")
                .with_description("Calls seen by a Seawall layer, by class")
                .build(),
            retries: meter
                .u64_counter(schema::RETRIES)
                .with_unit("{retry}")
                .with_description("Retries started")
                .build(),
            budget_exhausted: meter
                .u64_counter(schema::BUDGET_EXHAUSTED)
                .with_unit("{retry}")
                .with_description("Retries refused because the retry budget was spent")
                .build(),
            transitions: meter
                .u64_counter(schema::BREAKER_TRANSITIONS)
                .with_unit("{transition}")
                .with_description("Circuit breaker state changes")
                .build(),
            breaker_state: meter
                .u64_gauge(schema::BREAKER_STATE_GAUGE)
                .with_unit("{state}")
                .with_description("Circuit breaker state: 0 closed, 1 open, 2 half-open, 3 forced open, 4 disabled")
                .build(),
            rejections: meter
                .u64_counter(schema::REJECTIONS)
                .with_unit("{call}")
                .with_description("Calls refused by a Seawall layer")
                .build(),
            in_flight: meter
                .u64_gauge(schema::LIMIT_IN_FLIGHT_GAUGE)
                .with_unit("{call}")
                .with_description("Calls in flight at a concurrency limit")
                .build(),
            queued: meter
                .u64_gauge(schema::LIMIT_QUEUED)
                .with_unit("{call}")
                .with_description("Calls waiting in a concurrency limit's queue")
                .build(),
            queue_wait: meter
                .f64_histogram(schema::LIMIT_QUEUE_WAIT)
                .with_unit("s")
                .with_description("Time calls waited in a concurrency limit's queue")
                .build(),
            limit: meter
                .u64_gauge(schema::LIMIT_VALUE)
                .with_unit("{call}")
                .with_description("A concurrency limit's current value")
                .build(),
        }
    }

    /// A call finished with `class` at `layer`.
    pub fn call(&self, layer: &'static str, class: Class) {
        let mut attributes = vec![
            KeyValue::new(schema::LAYER, layer),
            KeyValue::new(schema::CLASS, class.as_str()),
        ];
        if let Some(kind) = class.kind() {
            attributes.push(KeyValue::new(schema::ERROR_TYPE, kind.as_str()));
        }
        self.calls.add(1, &attributes);
    }

    /// A retry started after a failure of `class`.
    pub fn retry(&self, class: Class) {
        let kind = class.kind().map_or("none", |k| k.as_str());
        self.retries
            .add(1, &[KeyValue::new(schema::ERROR_TYPE, kind)]);
    }

    /// A retry was refused because the budget was spent.
    pub fn budget_exhausted(&self) {
        self.budget_exhausted.add(1, &[]);
    }

    /// Breaker `name` moved to `state` (as `State::as_str` names it).
    pub fn breaker_transition(&self, name: &str, state: &'static str) {
        let name = KeyValue::new(schema::BREAKER_NAME, name.to_owned());
        self.transitions.add(
            1,
            &[name.clone(), KeyValue::new(schema::BREAKER_STATE, state)],
        );
        let value = match state {
            "closed" => 0,
            "open" => 1,
            "half_open" => 2,
            "forced_open" => 3,
            _ => 4,
        };
        self.breaker_state.record(value, &[name]);
    }

    /// `layer` refused a call, for `reason` (a failure kind name).
    pub fn rejection(&self, layer: &'static str, reason: &'static str) {
        self.rejections.add(
            1,
            &[
                KeyValue::new(schema::LAYER, layer),
                KeyValue::new(schema::ERROR_TYPE, reason),
            ],
        );
    }

    /// A concurrency limit's state now.
    pub fn limit_state(&self, in_flight: usize, queued: usize, limit: usize) {
        self.in_flight.record(in_flight as u64, &[]);
        self.queued.record(queued as u64, &[]);
        self.limit.record(limit as u64, &[]);
    }

    /// A call waited `wait` in a concurrency limit's queue.
    pub fn queue_wait(&self, wait: Duration) {
        self.queue_wait.record(wait.as_secs_f64(), &[]);
    }
}
