//! Logs: `tracing` to stderr as text for people or as JSON lines for log
//! pipelines. Each evaluation runs in an `evaluate` span carrying its event
//! and decision ids, so every line logged while an event is decided (a
//! rule's own log calls, a refused label change) names the decision.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Plain text, for people.
    #[default]
    Text,
    /// One JSON object per line, with the fields of the spans it is in.
    Json,
}

/// Log to stderr in `format`, at the levels `RUST_LOG` sets, or
/// `default_directives` (such as `warn,enforcer=info`) when it is unset.
pub fn init_logging(format: LogFormat, default_directives: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_directives));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().with_current_span(true).init(),
    }
}
