//! `EvaluateStream`: events in, results out, in order, with bounded work in
//! flight.
//!
//! Events are read in batches of whatever has already arrived (up to
//! `stream_batch`), and at most `stream_batches_in_flight` batches are being
//! evaluated at once. When the client stops reading results, the results
//! channel fills, this task stops reading events, and gRPC flow control
//! pushes back on the client: memory per stream stays bounded.

use std::collections::VecDeque;

use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tonic::{Status, Streaming};

use super::ServerOptions;
use super::evaluator::{Evaluator, EventResult};
use super::limits::explain_oversized;
use super::rate_limit::ClientKey;
use crate::api::v1;
use crate::metrics::{Refusal as Refused, StreamEvents};

type Results = mpsc::Sender<Result<v1::EvaluateStreamResponse, Status>>;

/// A batch being evaluated: the event ids (for error results) and the work.
struct InFlight {
    ids: Vec<String>,
    work: JoinHandle<Result<Vec<EventResult>, Status>>,
    /// The ids of the events read after those in `work` and refused for
    /// the client's rate limit, with the refusal: answered after them.
    over_limit: Option<(Vec<String>, Status)>,
    /// Its events, counted as read and unanswered until it is delivered
    /// (or dropped with the stream).
    _pending: StreamEvents,
}

/// Serve one `EvaluateStream` call until the client ends its side, the
/// client goes away, or the server shuts down.
pub async fn run(
    events: Streaming<v1::EvaluateRequest>,
    results: Results,
    evaluator: Evaluator,
    options: ServerOptions,
    client: ClientKey,
    mut stopping: watch::Receiver<bool>,
) {
    let mut events = events.ready_chunks(options.stream_batch.max(1));
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut reading = true;
    // Why the stream ends with an error, once the work in flight is done.
    let mut ending: Option<Status> = None;
    loop {
        if !reading && in_flight.is_empty() {
            break;
        }
        let room = in_flight.len() < options.stream_batches_in_flight.max(1);
        tokio::select! {
            // Deliver finished batches first: results in order, and work
            // in flight bounded.
            biased;
            done = async { (&mut in_flight.front_mut().expect("not empty").work).await },
                if !in_flight.is_empty() =>
            {
                let batch = in_flight.pop_front().expect("not empty");
                if !deliver(&results, batch.ids, done).await
                    || !refuse(&results, batch.over_limit).await
                {
                    return;
                }
            }
            _ = super::stopped(&mut stopping), if reading => {
                reading = false;
                ending = Some(Status::unavailable(
                    "the engine is shutting down: every event read was answered; \
                     resend the events after the last result to another engine or later",
                ));
            }
            chunk = events.next(), if reading && room => match chunk {
                None => reading = false,
                Some(chunk) => {
                    let mut ids: Vec<String> = Vec::with_capacity(chunk.len());
                    let mut batch = Vec::with_capacity(chunk.len());
                    for item in chunk {
                        match item {
                            Ok(request) => {
                                ids.push(request.event.as_ref().map(|e| e.id.clone()).unwrap_or_default());
                                batch.push(request);
                            }
                            Err(status) => {
                                // The transport failed, or a message was
                                // too large: read nothing more, answer what
                                // was read, then end with the reason.
                                reading = false;
                                ending = Some(explain_oversized(status));
                                break;
                            }
                        }
                    }
                    if !batch.is_empty() {
                        let _pending = evaluator.queue().hold_stream_events(batch.len());
                        let admitted = options.rate_limits.take(&client, batch.len());
                        let over_limit = (admitted < batch.len()).then(|| {
                            batch.truncate(admitted);
                            if let Some(metrics) = &options.metrics {
                                metrics.observe_refused(Refused::RateLimited, (ids.len() - admitted) as u64);
                            }
                            (ids.split_off(admitted), options.rate_limits.refusal(&client))
                        });
                        let work = if batch.is_empty() {
                            tokio::spawn(std::future::ready(Ok(Vec::new())))
                        } else {
                            let evaluator = evaluator.clone();
                            tokio::spawn(async move { evaluator.evaluate(batch).await })
                        };
                        in_flight.push_back(InFlight { ids, work, over_limit, _pending });
                    }
                }
            },
        }
    }
    if let Some(status) = ending {
        let _ = results.send(Err(status)).await;
    }
}

/// Answer each event refused for its client's rate limit, in order; false
/// when the client has gone.
async fn refuse(results: &Results, over_limit: Option<(Vec<String>, Status)>) -> bool {
    let Some((ids, status)) = over_limit else {
        return true;
    };
    for event_id in ids {
        let response = v1::EvaluateStreamResponse {
            event_id,
            result: Some(v1::evaluate_stream_response::Result::Error(
                v1::EventError {
                    code: status.code() as i32,
                    field: String::new(),
                    message: status.message().to_string(),
                },
            )),
        };
        if results.send(Ok(response)).await.is_err() {
            return false;
        }
    }
    true
}

/// Send a finished batch's results; false when the client has gone.
async fn deliver(
    results: &Results,
    ids: Vec<String>,
    done: Result<Result<Vec<EventResult>, Status>, tokio::task::JoinError>,
) -> bool {
    let done =
        done.unwrap_or_else(|e| Err(Status::internal(format!("evaluation task failed: {e}"))));
    let evaluated = match done {
        Ok(evaluated) => evaluated,
        Err(status) => {
            let _ = results.send(Err(status)).await;
            return false;
        }
    };
    for (event_id, result) in ids.into_iter().zip(evaluated) {
        let result = match result {
            Ok(response) => v1::evaluate_stream_response::Result::Evaluated(response),
            Err(error) => v1::evaluate_stream_response::Result::Error(v1::EventError {
                code: tonic::Code::InvalidArgument as i32,
                field: error.field,
                message: error.message,
            }),
        };
        let response = v1::EvaluateStreamResponse {
            event_id,
            result: Some(result),
        };
        if results.send(Ok(response)).await.is_err() {
            return false;
        }
    }
    true
}
