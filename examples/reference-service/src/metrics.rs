//! The HTTP server metrics and `/metrics`: every OpenTelemetry metric of the process (the
//! Seawall schema and the HTTP server's), in Prometheus text format through the
//! OpenTelemetry Prometheus exporter.

use http::{Response, StatusCode};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Histogram, Meter, MeterProvider as _, UpDownCounter};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use prometheus::{Encoder as _, TextEncoder};

use seawall::breaker::{BreakerHandle, State};
use seawall::limit::LimitHandle;
use seawall_telemetry::schema;

use crate::problem::{self, Body};

/// The instrument scope of the service's own metrics.
pub const SCOPE: &str = "seawall-example-service";

/// Semantic-convention bucket boundaries of `http.server.request.duration`, in seconds.
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Reads one figure from a limit's handle.
type Read = fn(&LimitHandle) -> usize;

/// The registry `/metrics` reads, and the service's instruments.
#[derive(Clone)]
pub struct Metrics {
    registry: prometheus::Registry,
    meter: Meter,
    // Keeps a standalone provider alive (the process-wide one lives in the telemetry guard).
    _provider: Option<SdkMeterProvider>,
    /// `http.server.request.duration` (s), by method, route and status.
    pub request_duration: Histogram<f64>,
    /// `http.server.active_requests`.
    pub active_requests: UpDownCounter<i64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// A Prometheus reader filling `registry`, to pass to
/// [`seawall_telemetry::init_with_metrics_reader`].
pub fn prometheus_reader(
    registry: &prometheus::Registry,
) -> Result<opentelemetry_prometheus::PrometheusExporter, String> {
    opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .build()
        .map_err(|e| format!("cannot set up the Prometheus exporter: {e}"))
}

impl Metrics {
    /// The process-wide metrics: instruments from the global meter provider (installed by
    /// [`seawall_telemetry::init_with_metrics_reader`] with [`prometheus_reader`] over
    /// `registry`), which also receives the Seawall layers' metrics.
    #[must_use]
    pub fn global(registry: prometheus::Registry) -> Metrics {
        Self::with_meter(registry, opentelemetry::global::meter(SCOPE), None)
    }

    /// Metrics of their own: a meter provider and registry for this instance only (for
    /// running several instances in one process, as the tests and the load run do).
    pub fn standalone() -> Result<Metrics, String> {
        let registry = prometheus::Registry::new();
        let provider = SdkMeterProvider::builder()
            .with_reader(prometheus_reader(&registry)?)
            .build();
        let meter = provider.meter(SCOPE);
        Ok(Self::with_meter(registry, meter, Some(provider)))
    }

    fn with_meter(
        registry: prometheus::Registry,
        meter: Meter,
        provider: Option<SdkMeterProvider>,
    ) -> Metrics {
        let request_duration = meter
            .f64_histogram("http.server.request.duration")
            .with_unit("s")
            .with_description("Duration of HTTP server requests.")
            .with_boundaries(DURATION_BUCKETS.to_vec())
            .build();
        let active_requests = meter
            .i64_up_down_counter("http.server.active_requests")
            .with_unit("{request}")
            .with_description("Number of active HTTP server requests.")
            .build();
        Metrics {
            registry,
            meter,
            _provider: provider,
            request_duration,
            active_requests,
        }
    }

    /// Reports the pool's connections on each collection: `db.client.connections.usage` by
    /// state (idle, used) and `db.client.connection.max`. (The semantic conventions have
    /// since renamed the first `db.client.connection.count`; in Prometheus that becomes a
    /// gauge ending in `_count`, a suffix reserved for histograms and summaries, which
    /// `promtool check metrics` rejects. The older name says the same and passes.)
    pub fn observe_pool(&self, pool: &deadpool_postgres::Pool, max: usize) {
        let pool_name = KeyValue::new("db.client.connection.pool.name", "postgres");
        let counted = pool.clone();
        let name = pool_name.clone();
        self.meter
            .i64_observable_up_down_counter("db.client.connections.usage")
            .with_unit("{connection}")
            .with_description("Connections in the pool, by state.")
            .with_callback(move |observer| {
                let status = counted.status();
                let idle = i64::try_from(status.available).unwrap_or(0);
                let used = i64::try_from(status.size).unwrap_or(0) - idle;
                observer.observe(
                    idle,
                    &[
                        name.clone(),
                        KeyValue::new("db.client.connection.state", "idle"),
                    ],
                );
                observer.observe(
                    used,
                    &[
                        name.clone(),
                        KeyValue::new("db.client.connection.state", "used"),
                    ],
                );
            })
            .build();
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.meter
            .i64_observable_up_down_counter("db.client.connection.max")
            .with_unit("{connection}")
            .with_description("The most connections the pool opens.")
            .with_callback(move |observer| observer.observe(max, std::slice::from_ref(&pool_name)))
            .build();
    }

    /// Reports a breaker's state on each collection (`seawall.breaker.state`: 0 closed,
    /// 1 open, 2 half-open, 3 forced open, 4 disabled), by breaker name.
    pub fn observe_breaker(&self, breaker: &BreakerHandle) {
        let breaker = breaker.clone();
        self.meter
            .i64_observable_gauge(schema::BREAKER_STATE_GAUGE)
            .with_unit("{state}")
            .with_description("A circuit breaker's state: 0 closed, 1 open, 2 half-open, 3 forced open, 4 disabled.")
            .with_callback(move |observer| {
                let state = match breaker.state() {
                    State::Closed => 0,
                    State::Open => 1,
                    State::HalfOpen => 2,
                    State::ForcedOpen => 3,
                    State::Disabled => 4,
                };
                observer.observe(
                    state,
                    &[KeyValue::new(schema::BREAKER_NAME, breaker.name().to_owned())],
                );
            })
            .build();
    }

    /// Reports a concurrency limit on each collection: `seawall.limit.in_flight`,
    /// `seawall.limit.queued` and `seawall.limit.value`, by `db.system.name`.
    pub fn observe_limit(&self, system: &'static str, limit: &LimitHandle) {
        let gauges: [(&str, &str, Read); 3] = [
            (
                schema::LIMIT_IN_FLIGHT_GAUGE,
                "Calls in flight at the limit.",
                LimitHandle::in_flight,
            ),
            (
                schema::LIMIT_QUEUED,
                "Calls waiting in the limit's queue.",
                LimitHandle::queued,
            ),
            (
                schema::LIMIT_VALUE,
                "The limit's current value.",
                LimitHandle::limit,
            ),
        ];
        for (name, description, read) in gauges {
            let limit = limit.clone();
            self.meter
                .i64_observable_gauge(name)
                .with_unit("{call}")
                .with_description(description)
                .with_callback(move |observer| {
                    let value = i64::try_from(read(&limit)).unwrap_or(i64::MAX);
                    observer.observe(value, &[KeyValue::new(schema::DB_SYSTEM_NAME, system)]);
                })
                .build();
        }
    }

    /// `GET /metrics`: the Prometheus text format.
    pub fn render(&self) -> Response<Body> {
        let mut text = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut text)
            .is_err()
        {
            return problem::internal();
        }
        problem::respond(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            text,
        )
    }
}
