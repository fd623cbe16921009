//! Installing the export pipeline: `tracing` spans to OpenTelemetry, metrics, and logs.

use std::fmt;

use opentelemetry::Key;
use opentelemetry::trace::TracerProvider as _;

use crate::schema;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    Aggregation, Instrument, InstrumentKind, MeterProviderBuilder, SdkMeterProvider, Stream,
};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer as _};

/// Where traces and metrics go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exporter {
    /// OTLP over HTTP/protobuf to this base endpoint (`http://host:4318`); the signal paths
    /// `/v1/traces` and `/v1/metrics` are added. The standard `OTEL_EXPORTER_OTLP_*`
    /// variables (headers, timeout, per-signal endpoints) apply too.
    Otlp(String),
    /// Printed on standard output, for a look during development.
    Stdout,
    /// Not exported: only the logs are written.
    None,
}

/// What [`init`] sets up.
#[derive(Debug, Clone)]
pub struct Config {
    /// `service.name` of the exported resource.
    pub service_name: String,
    /// Where traces and metrics go.
    pub exporter: Exporter,
    /// The log filter, `RUST_LOG` syntax (`info,seawall=debug`).
    pub log_filter: String,
    /// Which spans and events are exported as traces, `RUST_LOG` syntax; `None` is the log
    /// filter plus `seawall=debug`, so that the layers' events (attempts, backoff, refusals,
    /// queue waits) arrive as events of the client spans without being logged.
    pub trace_filter: Option<String>,
    /// Whether to write logs to standard error.
    pub logs: bool,
    /// How long one export may take before it is abandoned.
    pub export_timeout: std::time::Duration,
}

impl Config {
    /// From the standard variables: `OTEL_SERVICE_NAME` (default `default_service`),
    /// `OTEL_TRACES_EXPORTER` (`otlp`, `console` or `none`), `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// (OTLP when set, unless the exporter says otherwise), `RUST_LOG` (default `info`) and
    /// `SEAWALL_TRACE_FILTER` (default: see [`trace_filter`](Self::trace_filter)).
    #[must_use]
    pub fn from_env(default_service: &str) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let endpoint = var("OTEL_EXPORTER_OTLP_ENDPOINT");
        let exporter = match var("OTEL_TRACES_EXPORTER").as_deref() {
            Some("none") => Exporter::None,
            Some("console") | Some("stdout") => Exporter::Stdout,
            _ => match endpoint {
                Some(endpoint) => Exporter::Otlp(endpoint),
                None => Exporter::None,
            },
        };
        Config {
            service_name: var("OTEL_SERVICE_NAME").unwrap_or_else(|| default_service.to_owned()),
            exporter,
            log_filter: var("RUST_LOG").unwrap_or_else(|| "info".to_owned()),
            trace_filter: var("SEAWALL_TRACE_FILTER"),
            logs: true,
            export_timeout: std::time::Duration::from_secs(10),
        }
    }
}

/// What went wrong setting up telemetry.
#[derive(Debug)]
pub struct InitError {
    message: String,
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot set up telemetry: {}", self.message)
    }
}

impl std::error::Error for InitError {}

fn error(message: impl fmt::Display) -> InitError {
    InitError {
        message: message.to_string(),
    }
}

/// Flushes and shuts down the exporters when dropped (or on [`shutdown`](Self::shutdown)),
/// so a process that exits loses no spans.
#[must_use = "dropping the guard shuts telemetry down"]
pub struct TelemetryGuard {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

impl fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("traces", &self.tracer.is_some())
            .field("metrics", &self.meter.is_some())
            .finish()
    }
}

impl TelemetryGuard {
    /// Exports everything pending and stops the exporters. Export failures (an unreachable
    /// endpoint) are reported in the result, never as a panic or a hang past the exporter's
    /// timeout.
    pub fn shutdown(mut self) -> Result<(), InitError> {
        self.close()
    }

    fn close(&mut self) -> Result<(), InitError> {
        let mut result = Ok(());
        if let Some(tracer) = self.tracer.take() {
            let _ = tracer.force_flush();
            if let Err(e) = tracer.shutdown() {
                result = Err(error(e));
            }
        }
        if let Some(meter) = self.meter.take() {
            let _ = meter.force_flush();
            if let Err(e) = meter.shutdown() {
                result = Err(error(e));
            }
        }
        result
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Installs a `tracing` subscriber that writes logs (filtered like `RUST_LOG`) and sends spans
/// to OpenTelemetry, and global tracer and meter providers exporting as `config` says, with
/// batching. Keep the guard alive for the life of the process.
///
/// ```no_run
/// # fn main() -> Result<(), seawall_telemetry::InitError> {
/// let _telemetry = seawall_telemetry::init(seawall_telemetry::Config::from_env("my-service"))?;
/// tracing::info!("started");
/// # Ok(())
/// # }
/// ```
pub fn init(config: Config) -> Result<TelemetryGuard, InitError> {
    install(
        config,
        None::<fn(MeterProviderBuilder) -> MeterProviderBuilder>,
    )
}

/// [`init`], with one more metric reader: metrics are always collected (whatever the
/// exporter) and `reader` sees them too. For a pull exporter such as Prometheus, whose reader
/// a service's `/metrics` endpoint reads on each scrape.
///
/// ```no_run
/// # fn demo(reader: opentelemetry_sdk::metrics::ManualReader) -> Result<(), seawall_telemetry::InitError> {
/// let config = seawall_telemetry::Config::from_env("my-service");
/// let _telemetry = seawall_telemetry::init_with_metrics_reader(config, reader)?;
/// # Ok(())
/// # }
/// ```
pub fn init_with_metrics_reader<R>(config: Config, reader: R) -> Result<TelemetryGuard, InitError>
where
    R: MetricReader,
{
    install(
        config,
        Some(move |builder: MeterProviderBuilder| builder.with_reader(reader)),
    )
}

/// Bucket boundaries, in seconds, for Seawall's duration histograms: 1 ms to 10 s, as the
/// semantic conventions advise for request durations (the SDK's default boundaries are made
/// for milliseconds).
pub(crate) const SECONDS_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// The unit, description and attributes of each metric the layers report through `tracing`
/// events (which carry no unit or description, and whose every field, the message and
/// per-call numbers included, would otherwise become an attribute), as the schema gives them.
type EventMetric = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);
const EVENT_METRICS: [EventMetric; 11] = [
    (
        schema::CLIENT_DURATION,
        "s",
        "Calls through a Seawall pipeline, by dependency and outcome, and their duration",
        &[schema::DEPENDENCY, schema::CLASS, schema::ERROR_TYPE],
    ),
    (
        schema::RETRIES,
        "{retry}",
        "Retries started",
        &[schema::DEPENDENCY, schema::ERROR_TYPE],
    ),
    (
        schema::BUDGET_EXHAUSTED,
        "{retry}",
        "Retries refused because the retry budget was spent",
        &[schema::DEPENDENCY],
    ),
    (
        schema::BREAKER_TRANSITIONS,
        "{transition}",
        "Circuit breaker state changes",
        &[
            schema::BREAKER_NAME,
            schema::BREAKER_STATE,
            schema::BREAKER_PREVIOUS_STATE,
        ],
    ),
    (
        schema::BREAKER_PROBES,
        "{probe}",
        "Active recovery probes of open circuit breakers, by result",
        &[schema::BREAKER_NAME, schema::CLASS],
    ),
    (
        schema::HEDGES,
        "{hedge}",
        "Hedges sent: second attempts of requests slower than the hedge delay",
        &[schema::DEPENDENCY],
    ),
    (
        schema::HEDGE_WINS,
        "{hedge}",
        "Hedges that answered before the first attempt",
        &[schema::DEPENDENCY],
    ),
    (
        schema::HEDGES_SKIPPED,
        "{hedge}",
        "Hedges not sent although the request was slow: budget spent, a gate closed, or too little time left",
        &[schema::DEPENDENCY, schema::HEDGE_REASON],
    ),
    (
        schema::FLEET_DECISIONS,
        "{decision}",
        "Decisions of fleet-wide limits: shared on Redis, or local while Redis did not answer",
        &[schema::FLEET_MODE],
    ),
    (
        schema::REJECTIONS,
        "{call}",
        "Calls refused by a Seawall layer",
        &[schema::LAYER, schema::ERROR_TYPE, schema::BREAKER_NAME],
    ),
    (
        schema::LIMIT_QUEUE_WAIT,
        "s",
        "Time calls waited in a concurrency limit's queue",
        &[],
    ),
];

/// The view that gives the layers' event-reported metrics their unit, description and
/// attributes, and Seawall's duration histograms boundaries in seconds.
fn seawall_view(instrument: &Instrument) -> Option<Stream> {
    let (_, unit, description, attributes) = EVENT_METRICS
        .iter()
        .find(|(name, ..)| *name == instrument.name())?;
    let mut stream = Stream::builder()
        .with_unit(*unit)
        .with_description(*description)
        .with_allowed_attribute_keys(attributes.iter().map(|key| Key::from_static_str(key)));
    if instrument.kind() == InstrumentKind::Histogram {
        stream = stream.with_aggregation(Aggregation::ExplicitBucketHistogram {
            boundaries: SECONDS_BUCKETS.to_vec(),
            record_min_max: true,
        });
    }
    stream.build().ok()
}

fn install<F>(config: Config, extra_reader: Option<F>) -> Result<TelemetryGuard, InitError>
where
    F: FnOnce(MeterProviderBuilder) -> MeterProviderBuilder,
{
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .build();
    let (tracer, meter) = match &config.exporter {
        Exporter::None => (None, None),
        Exporter::Stdout => (
            Some(
                SdkTracerProvider::builder()
                    .with_resource(resource.clone())
                    .with_simple_exporter(opentelemetry_stdout::SpanExporter::default())
                    .build(),
            ),
            Some(
                SdkMeterProvider::builder()
                    .with_periodic_exporter(opentelemetry_stdout::MetricExporter::default()),
            ),
        ),
        Exporter::Otlp(endpoint) => {
            let base = endpoint.trim_end_matches('/');
            let spans = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(format!("{base}/v1/traces"))
                .with_timeout(config.export_timeout)
                .build()
                .map_err(error)?;
            let metrics = opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_endpoint(format!("{base}/v1/metrics"))
                .with_timeout(config.export_timeout)
                .build()
                .map_err(error)?;
            (
                Some(
                    SdkTracerProvider::builder()
                        .with_resource(resource.clone())
                        .with_batch_exporter(spans)
                        .build(),
                ),
                Some(SdkMeterProvider::builder().with_periodic_exporter(metrics)),
            )
        }
    };
    let meter = match (meter, extra_reader) {
        (meter, Some(add)) => Some(add(meter.unwrap_or_else(SdkMeterProvider::builder))),
        (meter, None) => meter,
    }
    .map(|builder| {
        builder
            .with_resource(resource)
            .with_view(seawall_view)
            .build()
    });
    if let Some(meter) = &meter {
        opentelemetry::global::set_meter_provider(meter.clone());
    }
    let filter = |directives: &str| {
        EnvFilter::try_new(directives)
            .map_err(|e| error(format!("invalid log filter `{directives}`: {e}")))
    };
    let trace_filter = config
        .trace_filter
        .clone()
        .unwrap_or_else(|| format!("{},seawall=debug", config.log_filter));
    let logs = if config.logs {
        Some(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter(&config.log_filter)?),
        )
    } else {
        None
    };
    let spans = match &tracer {
        Some(provider) => Some(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("seawall"))
                .with_filter(filter(&trace_filter)?),
        ),
        None => None,
    };
    // Seawall's layers report their metrics as `tracing` events (`monotonic_counter.*`,
    // `histogram.*` fields), so that no layer crate depends on this one; every such event is
    // recorded, whatever the log filter.
    let metrics = meter.as_ref().map(|provider| {
        tracing_opentelemetry::MetricsLayer::new(provider.clone())
            .with_filter(EnvFilter::new("seawall=trace"))
    });
    tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .with(metrics)
        .try_init()
        .map_err(error)?;
    Ok(TelemetryGuard { tracer, meter })
}
