//! Prometheus metrics for `enforcer serve`: what each rule build costs and
//! does, what the engine decided, the data plane's calls, the evaluation
//! queue, and the size of the state and the decision log. `docs/metrics.md`
//! lists every series.
//!
//! * [`Metrics`]: the handle the server observes into and the endpoint
//!   encodes, every name prefixed `enforcer_`.
//! * `rules`, `decisions`: counters of each fresh decision, observed once
//!   it is logged; `histogram`: the lock-free histogram they use.
//! * `grpc`: the tower layer on the gRPC server.
//! * `queue`: the evaluator's queue depths; `gauges`: gauges read from
//!   their sources at scrape time.
//! * `endpoint`: the `/metrics` endpoint.

mod decisions;
mod endpoint;
mod gauges;
mod grpc;
mod histogram;
mod names;
mod queue;
mod rules;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

pub use decisions::Refusal;
pub use endpoint::{CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE, serve_metrics};
pub use gauges::Sources;
pub use grpc::{CountedBody, GrpcMetricsLayer, GrpcMetricsService};
pub use queue::{EvaluationQueue, InStage, Stage, StreamEvents};

use crate::decision::Decision;
use decisions::DecisionMetrics;
use gauges::SourceGauges;
use grpc::GrpcMetrics;
use rules::RuleMetrics;

/// Everything counted by one serving engine. Cheap to share (`Arc`); two
/// handles are equal only if they are the same metrics.
pub struct Metrics {
    registry: Registry,
    rules: Arc<RuleMetrics>,
    decisions: Arc<DecisionMetrics>,
    grpc: Arc<GrpcMetrics>,
    gauges: Arc<SourceGauges>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl PartialEq for Metrics {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The series kept outside the registry's own metrics: written at scrape.
#[derive(Debug)]
struct Collected {
    rules: Arc<RuleMetrics>,
    decisions: Arc<DecisionMetrics>,
    gauges: Arc<SourceGauges>,
}

impl Collector for Collected {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "build_info",
            "Always 1; the engine's version is in the label.",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(1)
            .encode(family.encode_family(&[("version", env!("CARGO_PKG_VERSION"))])?)?;
        self.rules.encode(&mut encoder)?;
        self.decisions.encode(&mut encoder)?;
        self.gauges.encode(&mut encoder)
    }
}

impl Metrics {
    /// Fresh metrics, every counter at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("enforcer");
        let grpc = Arc::new(GrpcMetrics::register(&mut registry));
        let rules = Arc::new(RuleMetrics::default());
        let decisions = Arc::new(DecisionMetrics::default());
        let gauges = Arc::new(SourceGauges::default());
        registry.register_collector(Box::new(Collected {
            rules: rules.clone(),
            decisions: decisions.clone(),
            gauges: gauges.clone(),
        }));
        Metrics {
            registry,
            rules,
            decisions,
            grpc,
            gauges,
        }
    }

    /// Count a decision just made and logged: its severity, actions and
    /// shadow decision, and each rule's report (call or skip, time, fuel,
    /// verdict or error). Call it once per decision, never for a copy.
    pub fn observe_decision(&self, decision: &Decision) {
        self.decisions.observe(decision);
        self.rules.observe(&decision.rules);
    }

    /// Count `n` events answered with the decision of an earlier copy.
    pub fn observe_duplicates(&self, n: u64) {
        if n > 0 {
            self.decisions.duplicates(n);
        }
    }

    /// Count `n` events answered without a decision, for `reason`.
    pub fn observe_refused(&self, reason: Refusal, n: u64) {
        if n > 0 {
            self.decisions.refused(reason, n);
        }
    }

    /// Read the engine's gauges from `sources` from now on (the server
    /// does this as it starts).
    pub fn watch(&self, sources: Sources) {
        *self
            .gauges
            .sources
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(sources);
    }

    /// Every series in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// Every series in the OpenMetrics text format.
    pub fn encode_openmetrics(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}
