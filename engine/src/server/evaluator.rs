//! The bridge from async request handlers to the pipeline: events are
//! evaluated on blocking threads, never on the async workers, so a slow rule
//! cannot stall I/O; and at most `workers` batches run at once, so load
//! beyond what the machine can evaluate waits (and pushes back on clients
//! through gRPC flow control) instead of piling up threads.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tonic::Status;

use crate::api::{self, FieldError, v1};
use crate::decision_log::DecisionLog;
use crate::pipeline::Pipeline;

/// One event's result: its evaluation, or why it was not evaluated.
pub type EventResult = Result<v1::EvaluateResponse, FieldError>;

/// Runs batches of wire events through the pipeline and logs the decisions.
#[derive(Clone)]
pub struct Evaluator {
    pipeline: Arc<Pipeline>,
    log: Arc<DecisionLog>,
    permits: Arc<Semaphore>,
}

impl Evaluator {
    /// An evaluator running at most `workers` batches at once.
    pub fn new(pipeline: Arc<Pipeline>, log: Arc<DecisionLog>, workers: usize) -> Self {
        Evaluator {
            pipeline,
            log,
            permits: Arc::new(Semaphore::new(workers.max(1))),
        }
    }

    /// Evaluate a batch of events (as found in requests: possibly missing)
    /// on a blocking thread, once a worker is free; one result per event,
    /// in order.
    pub async fn evaluate(
        &self,
        events: Vec<Option<v1::Event>>,
    ) -> Result<Vec<EventResult>, Status> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("the engine is shutting down"))?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            events
                .into_iter()
                .map(|event| this.evaluate_one(event))
                .collect()
        })
        .await
        .map_err(|e| Status::internal(format!("evaluation worker failed: {e}")))
    }

    fn evaluate_one(&self, event: Option<v1::Event>) -> EventResult {
        let event = event.ok_or_else(|| FieldError {
            field: "event".into(),
            message: "is missing".into(),
        })?;
        let event = api::event_from_proto(event, "event")?;
        let evaluation = self
            .pipeline
            .evaluate(event)
            .map_err(|e| api::prefix_field(e, "event"))?;
        let sequence = if evaluation.duplicate {
            // Logged when it was first decided, unless the log has dropped
            // it since (or the first evaluation is still being logged).
            self.log
                .get(&evaluation.decision.id)
                .map_or(0, |logged| logged.sequence)
        } else {
            self.log.append(evaluation.decision.clone())
        };
        Ok(v1::EvaluateResponse {
            decision: Some(api::decision_to_proto(&evaluation.decision, sequence)),
            duplicate: evaluation.duplicate,
        })
    }
}
