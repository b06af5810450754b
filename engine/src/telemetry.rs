//! Logs and traces: `tracing` to stderr as text for people or as JSON lines
//! for log pipelines, and with `[tracing]`, spans exported over OTLP/gRPC to
//! a collector. Each evaluation runs in an `evaluate` span carrying its
//! event and decision ids, so every line logged while an event is decided
//! (a rule's own log calls, a refused label change), and the span a
//! collector receives, names the decision.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use serde::Deserialize;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Plain text, for people.
    #[default]
    Text,
    /// One JSON object per line, with the fields of the spans it is in.
    Json,
}

/// `[tracing]`: export spans over OTLP/gRPC.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    /// The collector, such as `http://127.0.0.1:4317`.
    pub otlp_endpoint: String,
    /// The `service.name` the spans are reported under.
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// The share of evaluations traced, 0 to 1: every event is one trace,
    /// and tracing them all costs more than most deployments want.
    #[serde(default = "default_sample_ratio")]
    pub sample_ratio: f64,
}

fn default_service_name() -> String {
    "enforcer".into()
}

fn default_sample_ratio() -> f64 {
    0.01
}

impl TracingConfig {
    /// Tracing to `otlp_endpoint` with the defaults.
    pub fn to(otlp_endpoint: impl Into<String>) -> Self {
        TracingConfig {
            otlp_endpoint: otlp_endpoint.into(),
            service_name: default_service_name(),
            sample_ratio: default_sample_ratio(),
        }
    }

    /// A mistake: the key and what is wrong with it.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let endpoint = &self.otlp_endpoint;
        let scheme_ok = endpoint.starts_with("http://") || endpoint.starts_with("https://");
        if !scheme_ok || endpoint.parse::<http::Uri>().is_err() {
            return Err((
                "otlp_endpoint",
                format!("`{endpoint}` is not a URL such as http://127.0.0.1:4317"),
            ));
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err((
                "sample_ratio",
                format!("{} is not between 0 and 1", self.sample_ratio),
            ));
        }
        if self.service_name.trim().is_empty() {
            return Err(("service_name", "is empty".into()));
        }
        Ok(())
    }
}

/// What was set up; [`Telemetry::shutdown`] sends the spans not yet
/// exported.
#[must_use = "shut it down to export the last spans"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Export the spans still buffered, and stop.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            eprintln!("OTLP export at shutdown: {error}");
        }
    }
}

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("[tracing]: {0}")]
pub struct TelemetryError(String);

/// Log to stderr in `format`, at the levels `RUST_LOG` sets, or
/// `default_directives` (such as `warn,enforcer=info`) when it is unset;
/// and with `tracing`, export spans over OTLP. The OTLP exporter runs on
/// the current tokio runtime, which must outlive the returned [`Telemetry`].
pub fn init(
    format: LogFormat,
    default_directives: &str,
    tracing: Option<&TracingConfig>,
) -> Result<Telemetry, TelemetryError> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_directives));
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let provider = tracing.map(tracer_provider).transpose()?;
    let spans = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("enforcer")));
    tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .with(filter)
        .try_init()
        .map_err(|e| TelemetryError(format!("cannot install the subscriber: {e}")))?;
    Ok(Telemetry { provider })
}

/// A tracer provider exporting in batches to the collector.
fn tracer_provider(config: &TracingConfig) -> Result<SdkTracerProvider, TelemetryError> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(&config.otlp_endpoint)
        .build()
        .map_err(|e| TelemetryError(format!("OTLP exporter to {}: {e}", config.otlp_endpoint)))?;
    let resource = opentelemetry_sdk::Resource::builder_empty()
        .with_service_name(config.service_name.clone())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.sample_ratio,
        ))))
        .with_resource(resource)
        .build())
}

/// Log to stderr in `format` (no span export), for one-shot commands.
pub fn init_logging(format: LogFormat, default_directives: &str) {
    // Only fails when a subscriber is already installed.
    let _ = init(format, default_directives, None);
}
