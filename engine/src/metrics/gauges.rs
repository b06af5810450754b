//! Gauges read from their sources when scraped: the evaluation queue, the
//! state stores' sizes, remembered event ids, the decision log, and Redis'
//! health. Nothing on the hot path; each read here is O(1) (the counter
//! histories and labels come from what the last sweep counted).

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::queue::{EvaluationQueue, Stage};
use crate::decision_log::DecisionLog;
use crate::pipeline::Pipeline;
use crate::state::StateBackend;

/// What a serving engine's gauges are read from.
pub struct Sources {
    /// The pipeline: its state and remembered event ids.
    pub pipeline: Arc<Pipeline>,
    /// The decision log.
    pub log: Arc<DecisionLog>,
    /// The evaluator's queue depths.
    pub queue: Arc<EvaluationQueue>,
    /// Its evaluation threads.
    pub workers: usize,
}

/// The sources, once a server has attached them.
#[derive(Default)]
pub(super) struct SourceGauges {
    pub(super) sources: Mutex<Option<Sources>>,
}

impl std::fmt::Debug for SourceGauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceGauges").finish_non_exhaustive()
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    ConstCounter::new(value).encode(encoder.encode_descriptor(
        name,
        help,
        None,
        MetricType::Counter,
    )?)
}

/// A count as a gauge value.
fn int(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

impl SourceGauges {
    pub(super) fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        let Some(sources) = sources.as_ref() else {
            return Ok(());
        };

        gauge(
            encoder,
            "evaluation_workers",
            "Evaluation threads: batches evaluated at once at most.",
            int(sources.workers),
        )?;
        let mut family = encoder.encode_descriptor(
            "evaluation_batches",
            "Batches of events by stage: waiting for a worker, being evaluated, waiting for the durable log.",
            None,
            MetricType::Gauge,
        )?;
        for stage in Stage::ALL {
            ConstGauge::new(sources.queue.batches(stage))
                .encode(family.encode_family(&[("stage", stage.name())])?)?;
        }
        gauge(
            encoder,
            "stream_events_pending",
            "Events read from EvaluateStream calls and not yet answered.",
            sources.queue.stream_events(),
        )?;

        gauge(
            encoder,
            "remembered_event_ids",
            "Event ids remembered for idempotency (a repeat gets the first decision).",
            int(sources.pipeline.remembered_events()),
        )?;
        match sources.pipeline.state() {
            StateBackend::Memory(stores) => {
                let stores = [("live", &stores.live), ("shadow", &stores.shadow)];
                let mut family = encoder.encode_descriptor(
                    "state_entities",
                    "Accounts and groups with a record in the in-memory state, by store (shadow: counters only shadow rules read).",
                    None,
                    MetricType::Gauge,
                )?;
                for (name, store) in stores {
                    ConstGauge::new(int(store.entities()))
                        .encode(family.encode_family(&[("store", name)])?)?;
                }
                let mut family = encoder.encode_descriptor(
                    "state_counter_series",
                    "Counter histories (one per entity and counter) in the in-memory state, as of the last sweep.",
                    None,
                    MetricType::Gauge,
                )?;
                for (name, store) in stores {
                    ConstGauge::new(int(store.swept_size().series))
                        .encode(family.encode_family(&[("store", name)])?)?;
                }
                let mut family = encoder.encode_descriptor(
                    "state_labels",
                    "Labels on entities in the in-memory state, as of the last sweep.",
                    None,
                    MetricType::Gauge,
                )?;
                for (name, store) in stores {
                    ConstGauge::new(int(store.swept_size().labels))
                        .encode(family.encode_family(&[("store", name)])?)?;
                }
            }
            StateBackend::Redis(redis) => {
                let health = redis.health();
                counter(
                    encoder,
                    "redis_calls",
                    "Calls to Redis made by this node (tried or not).",
                    health.calls,
                )?;
                counter(
                    encoder,
                    "redis_failures",
                    "Calls to Redis that failed when tried: errors and timeouts.",
                    health.failures,
                )?;
                counter(
                    encoder,
                    "redis_not_tried",
                    "Calls to Redis failed at once because Redis had just failed (within retry_after_ms).",
                    health.not_tried,
                )?;
                gauge(
                    encoder,
                    "redis_up",
                    "1 when the last Redis call tried succeeded, 0 when it failed.",
                    i64::from(!health.down),
                )?;
            }
        }

        let log = &sources.log;
        gauge(
            encoder,
            "decision_log_decisions",
            "Decisions kept in memory by the decision log.",
            int(log.len()),
        )?;
        gauge(
            encoder,
            "decision_log_capacity",
            "Most decisions the decision log keeps in memory.",
            int(log.capacity()),
        )?;
        gauge(
            encoder,
            "decision_log_last_sequence",
            "Sequence of the last decision logged (it goes on across restarts).",
            int(log.last_sequence()),
        )
    }
}
