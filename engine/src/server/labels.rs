//! `SubmitLabels`' work, on a blocking thread: each label is kept in the
//! pipeline's ground-truth book and joined to the decisions it concerns,
//! and a won appeal overturns the live decisions that acted on its
//! subject.

use std::sync::Arc;

use crate::decision::Decision;
use crate::decision_log::DecisionLog;
use crate::ground_truth::{GroundTruth, LabelSubject};
use crate::overturn::{Overturn, OverturnLog};
use crate::pipeline::Pipeline;

/// What one label joined and changed.
pub struct LabelOutcome {
    /// For an entity, the decisions about it the book holds; for an event
    /// id, 1 if the decision log holds its decision, else 0.
    pub joined: u64,
    /// The overturns it recorded.
    pub overturns: Vec<Arc<Overturn>>,
}

/// Keep, join and act on `labels` in order; `now_ms` is the wall clock.
pub fn submit(
    labels: &[GroundTruth],
    pipeline: &Pipeline,
    log: &DecisionLog,
    overturns: &OverturnLog,
    now_ms: i64,
) -> Vec<LabelOutcome> {
    labels
        .iter()
        .map(|label| {
            let held = pipeline.ground_truth().record(label);
            let joined = match &label.subject {
                LabelSubject::Entity(_) => held,
                LabelSubject::Event(id) => u64::from(log.get(&Decision::id_for(id)).is_some()),
            };
            LabelOutcome {
                joined,
                overturns: overturns.overturn(label, log, pipeline.live_state(), now_ms),
            }
        })
        .collect()
}
