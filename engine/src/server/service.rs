//! The `enforcement.v1.Enforcement` service: each method checks its
//! request, answers a bad one with a status naming the field, and hands the
//! work to the evaluator, the decision log, the pipeline's reports and
//! ground truth, or the overturn log.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::Stream;
use tokio::sync::watch;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::evaluator::Evaluator;
use super::rate_limit::ClientKey;
use super::{ServerOptions, labels, stream, watch as watching};
use crate::api::{self, FieldError, v1};
use crate::clearinghouse::ClearinghouseReport;
use crate::decision::Decision;
use crate::decision_log::{DecisionLog, ListPosition};
use crate::metrics::{Refusal as Refused, Stage};
use crate::overturn::OverturnLog;
use crate::pipeline::Pipeline;
use crate::verdict::Severity;

/// Default and largest numbers of sample disagreements in a shadow report.
const DEFAULT_SHADOW_SAMPLES: u32 = 10;
const MAX_SHADOW_SAMPLES: u32 = 100;

/// Default and largest numbers of decisions one `ExportReports` reads.
const DEFAULT_EXPORT_DECISIONS: u32 = 1000;
const MAX_EXPORT_DECISIONS: u32 = 10_000;

/// Default and largest page sizes of `ListDecisions`.
const DEFAULT_PAGE_SIZE: u32 = 100;
const MAX_PAGE_SIZE: u32 = 1000;

/// The data-plane service.
pub struct EnforcementService {
    pub(super) evaluator: Evaluator,
    pub(super) log: Arc<DecisionLog>,
    /// For shadow reports and ground truth.
    pub(super) pipeline: Arc<Pipeline>,
    /// Won appeals' overturns of logged decisions.
    pub(super) overturns: Arc<OverturnLog>,
    pub(super) options: ServerOptions,
    /// Turns true when the server starts shutting down: long streams end.
    pub(super) stopping: watch::Receiver<bool>,
}

/// `INVALID_ARGUMENT` for a field the engine cannot use.
pub fn invalid_argument(error: FieldError) -> Status {
    Status::invalid_argument(error.to_string())
}

type ResultStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl v1::enforcement_server::Enforcement for EnforcementService {
    async fn evaluate(
        &self,
        request: Request<v1::EvaluateRequest>,
    ) -> Result<Response<v1::EvaluateResponse>, Status> {
        let client = ClientKey::of(&request);
        if self.options.rate_limits.take(&client, 1) == 0 {
            self.count_refused(Refused::RateLimited);
            return Err(self.options.rate_limits.refusal(&client));
        }
        // Shed rather than queue without end: a client that backs off, or
        // another node, will do better than a wait that only grows.
        let waiting = self.evaluator.queue().batches(Stage::Waiting);
        if waiting >= self.options.max_waiting_batches as i64 {
            self.count_refused(Refused::Shed);
            return Err(Status::resource_exhausted(format!(
                "the engine is overloaded: {waiting} batches are waiting for an evaluation \
                 thread (`max_waiting_batches`); retry with backoff"
            )));
        }
        match self
            .evaluator
            .evaluate(vec![request.into_inner()])
            .await?
            .pop()
        {
            Some(Ok(response)) => Ok(Response::new(response)),
            Some(Err(error)) => Err(invalid_argument(error)),
            None => Err(Status::internal("the evaluator returned no result")),
        }
    }

    type EvaluateStreamStream = ResultStream<v1::EvaluateStreamResponse>;

    async fn evaluate_stream(
        &self,
        request: Request<Streaming<v1::EvaluateRequest>>,
    ) -> Result<Response<Self::EvaluateStreamStream>, Status> {
        let (results, receiver) = tokio::sync::mpsc::channel(self.options.stream_batch);
        let client = ClientKey::of(&request);
        tokio::spawn(stream::run(
            request.into_inner(),
            results,
            self.evaluator.clone(),
            self.options.clone(),
            client,
            self.stopping.clone(),
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn get_decision(
        &self,
        request: Request<v1::GetDecisionRequest>,
    ) -> Result<Response<v1::Decision>, Status> {
        let id = request.into_inner().decision_id;
        if id.is_empty() {
            return Err(Status::invalid_argument("decision_id: is empty"));
        }
        match self.log.get(&id) {
            Some(logged) => Ok(Response::new(
                self.with_overturns(&logged.decision, logged.sequence),
            )),
            None => Err(Status::not_found(format!(
                "no decision `{id}` is kept: never made, or dropped from the log"
            ))),
        }
    }

    async fn get_shadow_report(
        &self,
        request: Request<v1::ShadowReportRequest>,
    ) -> Result<Response<v1::ShadowReport>, Status> {
        let request = request.into_inner();
        let from = optional_ms(request.from.as_ref(), "from")?.unwrap_or(i64::MIN);
        let to = optional_ms(request.to.as_ref(), "to")?.unwrap_or(i64::MAX);
        let max_samples = match request.max_samples {
            0 => DEFAULT_SHADOW_SAMPLES,
            n if n > MAX_SHADOW_SAMPLES => {
                return Err(Status::invalid_argument(format!(
                    "max_samples: {n} is over the limit of {MAX_SHADOW_SAMPLES}"
                )));
            }
            n => n,
        };
        let positive = match v1::Severity::try_from(request.positive_severity) {
            Ok(v1::Severity::Unspecified) => Severity::Limit,
            Ok(v1::Severity::Allow) => {
                return Err(Status::invalid_argument(
                    "positive_severity: SEVERITY_ALLOW would count every decision as acting; \
                     use SEVERITY_REVIEW, SEVERITY_LIMIT or SEVERITY_BLOCK",
                ));
            }
            Ok(severity) => {
                api::severity_from_proto(severity as i32).expect("a known severity converts")
            }
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "positive_severity: {} is not a severity",
                    request.positive_severity
                )));
            }
        };
        let rule = (!request.rule.is_empty()).then_some(request.rule.as_str());
        let report = self
            .pipeline
            .shadow_report(from, to, rule, max_samples as usize, positive);
        let sequence_of = |id: &str| self.log.get(id).map_or(0, |logged| logged.sequence);
        Ok(Response::new(api::shadow_report_to_proto(
            &report,
            sequence_of,
        )))
    }

    async fn list_decisions(
        &self,
        request: Request<v1::ListDecisionsRequest>,
    ) -> Result<Response<v1::ListDecisionsResponse>, Status> {
        let request = request.into_inner();
        let entity = request
            .entity
            .ok_or_else(|| Status::invalid_argument("entity: is missing"))
            .and_then(|e| api::entity_from_proto(e, "entity").map_err(invalid_argument))?;
        if entity.id.is_empty() {
            return Err(Status::invalid_argument("entity.id: is empty"));
        }
        let from_ms = optional_ms(request.from.as_ref(), "from")?.unwrap_or(i64::MIN);
        let to_ms = optional_ms(request.to.as_ref(), "to")?.unwrap_or(i64::MAX);
        let page_size = match request.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n <= MAX_PAGE_SIZE => n,
            n => {
                return Err(Status::invalid_argument(format!(
                    "page_size: {n} is over the limit of {MAX_PAGE_SIZE}"
                )));
            }
        };
        let position = match request.page_token.as_str() {
            "" => None,
            token => Some(parse_page_token(token).ok_or_else(|| {
                Status::invalid_argument(
                    "page_token: is not a token ListDecisions returned; send it unchanged",
                )
            })?),
        };
        let page = self
            .log
            .list(&entity, from_ms, to_ms, page_size as usize, position);
        Ok(Response::new(v1::ListDecisionsResponse {
            decisions: page
                .decisions
                .iter()
                .map(|l| self.with_overturns(&l.decision, l.sequence))
                .collect(),
            next_page_token: page.next.map(page_token).unwrap_or_default(),
        }))
    }

    type WatchDecisionsStream = ResultStream<v1::Decision>;

    async fn watch_decisions(
        &self,
        request: Request<v1::WatchDecisionsRequest>,
    ) -> Result<Response<Self::WatchDecisionsStream>, Status> {
        let watcher = watching::Watcher::new(
            request.into_inner(),
            self.log.clone(),
            self.stopping.clone(),
        )?;
        let (decisions, receiver) = tokio::sync::mpsc::channel(self.options.stream_batch);
        tokio::spawn(watcher.run(decisions));
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn submit_labels(
        &self,
        request: Request<v1::SubmitLabelsRequest>,
    ) -> Result<Response<v1::SubmitLabelsResponse>, Status> {
        let now = now_ms();
        // Every label is checked before any is kept: a bad request changes
        // nothing.
        let labels =
            api::labels_from_proto(request.into_inner().labels, now).map_err(invalid_argument)?;
        let (pipeline, log, overturns) = (
            self.pipeline.clone(),
            self.log.clone(),
            self.overturns.clone(),
        );
        // An appeal looks its entity's decisions up and sorts them: work
        // for a blocking thread, not the async ones.
        let outcomes = tokio::task::spawn_blocking(move || {
            labels::submit(&labels, &pipeline, &log, &overturns, now)
        })
        .await
        .map_err(|e| Status::internal(format!("labels were not applied: {e}")))?;
        Ok(Response::new(v1::SubmitLabelsResponse {
            results: outcomes
                .iter()
                .map(|outcome| v1::LabelResult {
                    joined_decisions: outcome.joined,
                    overturns: outcome
                        .overturns
                        .iter()
                        .map(|o| api::overturn_to_proto(o))
                        .collect(),
                })
                .collect(),
        }))
    }

    type WatchOverturnsStream = ResultStream<v1::Overturn>;

    async fn export_reports(
        &self,
        request: Request<v1::ExportReportsRequest>,
    ) -> Result<Response<v1::ExportReportsResponse>, Status> {
        let request = request.into_inner();
        let limit = match request.limit {
            0 => DEFAULT_EXPORT_DECISIONS,
            n if n > MAX_EXPORT_DECISIONS => {
                return Err(Status::invalid_argument(format!(
                    "limit: {n} is over the limit of {MAX_EXPORT_DECISIONS}"
                )));
            }
            n => n,
        };
        let after = request.after_sequence;
        let logged = self
            .log
            .read_after(after, limit as usize)
            .map_err(|error| watching::read_status(error, "decision"))?;
        let last_sequence = logged.last().map_or(after, |l| l.sequence);
        let reports = logged
            .iter()
            .filter_map(|l| ClearinghouseReport::of(&l.decision, l.sequence))
            .map(|report| api::clearinghouse_report_to_proto(&report))
            .collect();
        Ok(Response::new(v1::ExportReportsResponse {
            reports,
            last_sequence,
        }))
    }

    async fn watch_overturns(
        &self,
        request: Request<v1::WatchOverturnsRequest>,
    ) -> Result<Response<Self::WatchOverturnsStream>, Status> {
        let watcher = watching::OverturnWatcher::new(
            request.into_inner(),
            self.overturns.clone(),
            self.stopping.clone(),
        )?;
        let (overturns, receiver) = tokio::sync::mpsc::channel(self.options.stream_batch);
        tokio::spawn(watcher.run(overturns));
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

impl EnforcementService {
    /// Count an event refused before evaluation, when metrics are kept.
    fn count_refused(&self, reason: Refused) {
        if let Some(metrics) = &self.options.metrics {
            metrics.observe_refused(reason, 1);
        }
    }

    /// A logged decision as the API returns it, with its overturns.
    fn with_overturns(&self, decision: &Decision, sequence: u64) -> v1::Decision {
        let mut wire = api::decision_to_proto(decision, sequence);
        wire.overturns = self
            .overturns
            .of_decision(&decision.id)
            .iter()
            .map(|o| api::overturn_to_proto(o))
            .collect();
        wire
    }
}

/// The wall clock in Unix milliseconds: when a label without a time was
/// learned, and when an overturn is recorded.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Milliseconds since the epoch of an optional timestamp field.
fn optional_ms(
    timestamp: Option<&prost_types::Timestamp>,
    field: &str,
) -> Result<Option<i64>, Status> {
    let Some(timestamp) = timestamp else {
        return Ok(None);
    };
    api::timestamp_ms(timestamp)
        .map(Some)
        .map_err(|m| Status::invalid_argument(format!("{field}: {m}")))
}

/// Page tokens are opaque to clients; inside they are the position of the
/// last decision returned.
fn page_token(position: ListPosition) -> String {
    format!("v1.{}.{}", position.occurred_at_ms, position.sequence)
}

fn parse_page_token(token: &str) -> Option<ListPosition> {
    let mut parts = token.strip_prefix("v1.")?.splitn(2, '.');
    let occurred_at_ms = parts.next()?.parse().ok()?;
    let sequence = parts.next()?.parse().ok()?;
    Some(ListPosition {
        occurred_at_ms,
        sequence,
    })
}
