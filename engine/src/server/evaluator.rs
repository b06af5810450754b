//! The bridge from async request handlers to the pipeline: events are
//! evaluated on blocking threads, never on the async workers, so a slow rule
//! cannot stall I/O; and at most `workers` batches run at once, so load
//! beyond what the machine can evaluate waits (and pushes back on clients
//! through gRPC flow control) instead of piling up threads.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tonic::Status;

use crate::api::{self, FieldError, v1};
use crate::decision::Decision;
use crate::decision_log::DecisionLog;
use crate::media::{ImageLimits, hash_attached_image};
use crate::metrics::{EvaluationQueue, Metrics, Refusal as Refused, Stage};
use crate::pipeline::{EvaluateError, Evaluation, Pipeline};

/// One event's result: its evaluation, or why it was not evaluated.
pub type EventResult = Result<v1::EvaluateResponse, FieldError>;

/// One event evaluated, not yet logged: the view its request asked for,
/// and its evaluation.
type Evaluated = (v1::DecisionView, Result<Evaluation, Refusal>);

/// Why one event of a batch was not decided.
enum Refusal {
    /// The event is malformed: answered for this event alone.
    Invalid(FieldError),
    /// The state could not be reached: the whole batch is answered
    /// `UNAVAILABLE`, to be retried.
    StateUnavailable(String),
}

/// How long a copy of an event waits for the first copy's decision to be
/// logged.
const DUPLICATE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Where a batch stands when its worker is given back.
enum Step {
    /// Logged and rendered (an in-memory log takes no time to write).
    Answered(Result<Vec<EventResult>, Status>),
    /// Evaluated; its durable write still to wait for.
    ToLog(Vec<Evaluated>),
}

fn worker_failed(error: tokio::task::JoinError) -> Status {
    Status::internal(format!("evaluation worker failed: {error}"))
}

/// Runs batches of wire events through the pipeline and logs the decisions.
#[derive(Clone)]
pub struct Evaluator {
    pipeline: Arc<Pipeline>,
    log: Arc<DecisionLog>,
    permits: Arc<Semaphore>,
    /// What an image sent inside an event may cost to decode.
    image_limits: Arc<ImageLimits>,
    /// Batches waiting, evaluating and logging, and stream events held.
    queue: Arc<EvaluationQueue>,
    /// Where decisions, duplicates and refusals are counted, if anywhere.
    metrics: Option<Arc<Metrics>>,
}

impl Evaluator {
    /// An evaluator running at most `workers` batches at once.
    pub fn new(
        pipeline: Arc<Pipeline>,
        log: Arc<DecisionLog>,
        workers: usize,
        image_limits: ImageLimits,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        Evaluator {
            pipeline,
            log,
            permits: Arc::new(Semaphore::new(workers.max(1))),
            image_limits: Arc::new(image_limits),
            queue: Arc::default(),
            metrics,
        }
    }

    /// Its queue depths.
    pub fn queue(&self) -> &Arc<EvaluationQueue> {
        &self.queue
    }

    /// Evaluate a batch of requests on a blocking thread, once a worker is
    /// free; one result per request, in order.
    ///
    /// A durable log's write is waited for after the worker is given back:
    /// a worker holding its place while the disk syncs would leave the
    /// group commit nothing to group, and the engine would decide one
    /// batch per sync.
    pub async fn evaluate(
        &self,
        requests: Vec<v1::EvaluateRequest>,
    ) -> Result<Vec<EventResult>, Status> {
        let waiting = self.queue.enter(Stage::Waiting);
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("the engine is shutting down"))?;
        drop(waiting);
        let evaluating = self.queue.enter(Stage::Evaluating);
        let this = self.clone();
        let durable = self.log.is_durable();
        let step = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _evaluating = evaluating;
            let evaluated = this.evaluate_all(requests);
            if durable {
                Step::ToLog(evaluated)
            } else {
                Step::Answered(this.log_and_render(evaluated))
            }
        })
        .await
        .map_err(worker_failed)?;
        match step {
            Step::Answered(answered) => answered,
            Step::ToLog(evaluated) => {
                let this = self.clone();
                let logging = self.queue.enter(Stage::Logging);
                tokio::task::spawn_blocking(move || {
                    let _logging = logging;
                    this.log_and_render(evaluated)
                })
                .await
                .map_err(worker_failed)?
            }
        }
    }

    /// Evaluate each request.
    fn evaluate_all(&self, requests: Vec<v1::EvaluateRequest>) -> Vec<Evaluated> {
        requests
            .into_iter()
            .map(|request| (request.view(), self.evaluate_one(request.event)))
            .collect()
    }

    /// Log the new decisions together (durably, when the log is: before
    /// any reply), and render each in the view its request asked for. A
    /// log that cannot keep the decisions fails the whole batch with
    /// `UNAVAILABLE`: no client gets a decision that is not logged.
    ///
    /// Each new decision is counted in the metrics once it is logged; each
    /// event answered otherwise is counted as a duplicate or a refusal.
    fn log_and_render(&self, evaluated: Vec<Evaluated>) -> Result<Vec<EventResult>, Status> {
        let events = evaluated.len() as u64;
        if let Some(why) = evaluated.iter().find_map(|(_, result)| match result {
            Err(Refusal::StateUnavailable(why)) => Some(why.clone()),
            _ => None,
        }) {
            // Nothing of the batch is answered, so nothing of it is
            // remembered: each event of it is decided afresh when retried.
            for (_, result) in &evaluated {
                if let Ok(evaluation) = result
                    && !evaluation.duplicate
                {
                    self.pipeline.forget(&evaluation.decision);
                }
            }
            self.count_refused(Refused::StateUnavailable, events);
            return Err(Status::unavailable(why));
        }
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
                self.count_refused(Refused::LogUnavailable, events);
                return Err(Status::unavailable(format!(
                    "{error}; the events were not decided, retry them"
                )));
            }
        };
        if let Some(metrics) = &self.metrics {
            for (decision, _) in &fresh {
                metrics.observe_decision(decision);
            }
        }
        let rendered: Result<Vec<EventResult>, Status> = evaluated
            .into_iter()
            .map(|(view, result)| {
                let evaluation = match result {
                    Ok(evaluation) => evaluation,
                    Err(Refusal::Invalid(bad_event)) => return Ok(Err(bad_event)),
                    Err(Refusal::StateUnavailable(_)) => unreachable!("refused above"),
                };
                let sequence = if evaluation.duplicate {
                    self.logged_sequence(&evaluation.decision)?
                } else {
                    sequences.next().expect("a sequence per new decision")
                };
                Ok(Ok(v1::EvaluateResponse {
                    decision: Some(api::decision_view_to_proto(
                        &evaluation.decision,
                        sequence,
                        view,
                    )),
                    duplicate: evaluation.duplicate,
                }))
            })
            .collect();
        if let Some(metrics) = &self.metrics {
            match &rendered {
                Ok(results) => {
                    let invalid = results.iter().filter(|r| r.is_err()).count();
                    let duplicates = results
                        .iter()
                        .filter(|r| r.as_ref().is_ok_and(|response| response.duplicate))
                        .count();
                    metrics.observe_refused(Refused::Invalid, invalid as u64);
                    metrics.observe_duplicates(duplicates as u64);
                }
                // The new decisions are logged (and counted); the rest of
                // the batch was not answered.
                Err(_) => {
                    metrics.observe_refused(Refused::FirstCopyUnlogged, events - fresh.len() as u64)
                }
            }
        }
        rendered
    }

    fn count_refused(&self, reason: Refused, events: u64) {
        if let Some(metrics) = &self.metrics {
            metrics.observe_refused(reason, events);
        }
    }

    /// The sequence of a decision made before, for a copy of its event.
    /// The first copy's decision may still be on its way to the log: the
    /// copy waits for it, so that no client is given a decision the log
    /// could lose. One the log has since dropped is answered with 0.
    fn logged_sequence(&self, decision: &Decision) -> Result<u64, Status> {
        let deadline = std::time::Instant::now() + DUPLICATE_WAIT;
        loop {
            if let Some(logged) = self.log.get(&decision.id) {
                return Ok(logged.sequence);
            }
            if !self.log.is_durable() {
                return Ok(0);
            }
            let waited_out = std::time::Instant::now() >= deadline;
            if waited_out || !self.pipeline.remembers(&decision.event.id) {
                // Its write failed (and the event was forgotten), or is
                // taking far too long.
                return Err(Status::unavailable(format!(
                    "event {}: the decision of its first copy is not logged; retry it",
                    decision.event.id
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    fn evaluate_one(&self, event: Option<v1::Event>) -> Result<Evaluation, Refusal> {
        let event = event.ok_or_else(|| {
            Refusal::Invalid(FieldError {
                field: "event".into(),
                message: "is missing".into(),
            })
        })?;
        let mut event = api::event_from_proto(event, "event").map_err(Refusal::Invalid)?;
        // Everything logged from here on (a rule's own log calls, a label
        // change that failed) names the event and its decision.
        let span = tracing::info_span!(
            "evaluate",
            event = %event.id,
            decision = %Decision::id_for(&event.id)
        );
        let _in_span = span.enter();
        // Decoding an image is the costliest check of an event, so it runs
        // here on the evaluation thread, never on an async worker.
        hash_attached_image(&mut event, &self.image_limits).map_err(|e| {
            Refusal::Invalid(FieldError {
                field: format!("event.attributes.{}", e.attribute),
                message: e.message,
            })
        })?;
        let evaluation = self.pipeline.evaluate(event).map_err(|e| match e {
            EvaluateError::Invalid(e) => Refusal::Invalid(api::prefix_field(e, "event")),
            EvaluateError::StateUnavailable(_) => Refusal::StateUnavailable(e.to_string()),
        })?;
        tracing::debug!(
            severity = ?evaluation.decision.outcome.severity,
            duplicate = evaluation.duplicate,
            "decided"
        );
        Ok(evaluation)
    }
}
