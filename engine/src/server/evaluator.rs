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
use crate::media::{ImageLimits, hash_attached_image};
use crate::pipeline::{Evaluation, Pipeline};

/// One event's result: its evaluation, or why it was not evaluated.
pub type EventResult = Result<v1::EvaluateResponse, FieldError>;

/// Runs batches of wire events through the pipeline and logs the decisions.
#[derive(Clone)]
pub struct Evaluator {
    pipeline: Arc<Pipeline>,
    log: Arc<DecisionLog>,
    permits: Arc<Semaphore>,
    /// What an image sent inside an event may cost to decode.
    image_limits: Arc<ImageLimits>,
}

impl Evaluator {
    /// An evaluator running at most `workers` batches at once.
    pub fn new(
        pipeline: Arc<Pipeline>,
        log: Arc<DecisionLog>,
        workers: usize,
        image_limits: ImageLimits,
    ) -> Self {
        Evaluator {
            pipeline,
            log,
            permits: Arc::new(Semaphore::new(workers.max(1))),
            image_limits: Arc::new(image_limits),
        }
    }

    /// Evaluate a batch of requests on a blocking thread, once a worker is
    /// free; one result per request, in order.
    pub async fn evaluate(
        &self,
        requests: Vec<v1::EvaluateRequest>,
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
            this.evaluate_batch(requests)
        })
        .await
        .map_err(|e| Status::internal(format!("evaluation worker failed: {e}")))?
    }

    /// Evaluate each request, log the new decisions together (durably,
    /// when the log is: before any reply), and render each in the view
    /// its request asked for. A log that cannot keep the decisions fails
    /// the whole batch with `UNAVAILABLE`: no client gets a decision that
    /// is not logged.
    fn evaluate_batch(
        &self,
        requests: Vec<v1::EvaluateRequest>,
    ) -> Result<Vec<EventResult>, Status> {
        let evaluated: Vec<(v1::DecisionView, Result<Evaluation, FieldError>)> = requests
            .into_iter()
            .map(|request| (request.view(), self.evaluate_one(request.event)))
            .collect();
        let fresh: Vec<_> = evaluated
            .iter()
            .filter_map(|(_, result)| result.as_ref().ok())
            .filter(|evaluation| !evaluation.duplicate)
            .map(|evaluation| (evaluation.decision.clone(), evaluation.stamps))
            .collect();
        let mut sequences = match self.log.commit(fresh.clone()) {
            Ok(sequences) => sequences.into_iter(),
            Err(error) => {
                // A retry must evaluate afresh, not be handed the decision
                // that was never logged.
                for (decision, _) in &fresh {
                    self.pipeline.forget(decision);
                }
                return Err(Status::unavailable(format!(
                    "{error}; the events were not decided, retry them"
                )));
            }
        };
        Ok(evaluated
            .into_iter()
            .map(|(view, result)| {
                let evaluation = result?;
                let sequence = if evaluation.duplicate {
                    // Logged when it was first decided, unless the log has
                    // dropped it since (or the first evaluation is still
                    // being logged: then 0).
                    self.log
                        .get(&evaluation.decision.id)
                        .map_or(0, |logged| logged.sequence)
                } else {
                    sequences.next().expect("a sequence per new decision")
                };
                Ok(v1::EvaluateResponse {
                    decision: Some(api::decision_view_to_proto(
                        &evaluation.decision,
                        sequence,
                        view,
                    )),
                    duplicate: evaluation.duplicate,
                })
            })
            .collect())
    }

    fn evaluate_one(&self, event: Option<v1::Event>) -> Result<Evaluation, FieldError> {
        let event = event.ok_or_else(|| FieldError {
            field: "event".into(),
            message: "is missing".into(),
        })?;
        let mut event = api::event_from_proto(event, "event")?;
        // Decoding an image is the costliest check of an event, so it runs
        // here on the evaluation thread, never on an async worker.
        hash_attached_image(&mut event, &self.image_limits).map_err(|e| FieldError {
            field: format!("event.attributes.{}", e.attribute),
            message: e.message,
        })?;
        self.pipeline
            .evaluate(event)
            .map_err(|e| api::prefix_field(e, "event"))
    }
}
