//! `WatchDecisions`: a watcher reads the decision log from its own cursor,
//! so it never slows evaluation, and sends the decisions that pass its
//! filter. It resumes exactly after a sequence it was given, and says so
//! with `OUT_OF_RANGE` when the log no longer holds what it needs.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tonic::Status;

use crate::api::{self, action_from_proto, severity_from_proto, v1};
use crate::decision::Decision;
use crate::decision_log::DecisionLog;
use crate::verdict::{Action, Severity};

/// How many decisions a watcher takes from the log at a time.
const READ_BATCH: usize = 256;

/// One `WatchDecisions` call: its filter and its place in the log.
pub struct Watcher {
    actions: Vec<Action>,
    min_severity: Severity,
    after: u64,
    log: Arc<DecisionLog>,
    stopping: watch::Receiver<bool>,
}

impl Watcher {
    /// A watcher for `request`, or `INVALID_ARGUMENT` / `OUT_OF_RANGE`
    /// naming what is wrong with it.
    pub fn new(
        request: v1::WatchDecisionsRequest,
        log: Arc<DecisionLog>,
        stopping: watch::Receiver<bool>,
    ) -> Result<Self, Status> {
        let actions = request
            .actions
            .iter()
            .enumerate()
            .map(|(index, &value)| {
                action_from_proto(value).ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "actions[{index}]: {value} is not an action type"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let min_severity = severity_from_proto(request.min_severity).ok_or_else(|| {
            Status::invalid_argument(format!(
                "min_severity: {} is not a severity",
                request.min_severity
            ))
        })?;
        let last = log.last_sequence();
        let after = match request.after_sequence {
            None => last,
            Some(after) if after > last => {
                return Err(Status::out_of_range(format!(
                    "after_sequence: {after} is ahead of the last decision logged ({last}); \
                     a log that restarted numbers from 1 again"
                )));
            }
            Some(after) => {
                // Refuse a resume from decisions already dropped now, not
                // after the first read.
                log.read_after(after, 0).map_err(gap_status)?;
                after
            }
        };
        Ok(Watcher {
            actions,
            min_severity,
            after,
            log,
            stopping,
        })
    }

    /// Send matching decisions until the client goes away, the watcher
    /// falls out of the log, or the server shuts down.
    pub async fn run(mut self, out: mpsc::Sender<Result<v1::Decision, Status>>) {
        let mut appended = self.log.subscribe();
        loop {
            let batch = match self.log.read_after(self.after, READ_BATCH) {
                Ok(batch) => batch,
                Err(gap) => {
                    let _ = out.send(Err(gap_status(gap))).await;
                    return;
                }
            };
            if batch.is_empty() {
                tokio::select! {
                    changed = appended.changed() => if changed.is_err() { return },
                    _ = super::stopped(&mut self.stopping) => {
                        let _ = out
                            .send(Err(Status::unavailable(
                                "the engine is shutting down; resume after the last sequence received",
                            )))
                            .await;
                        return;
                    }
                    _ = out.closed() => return,
                }
                continue;
            }
            for logged in batch {
                self.after = logged.sequence;
                if self.wants(&logged.decision) {
                    let decision = api::decision_to_proto(&logged.decision, logged.sequence);
                    if out.send(Ok(decision)).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    fn wants(&self, decision: &Decision) -> bool {
        decision.outcome.severity >= self.min_severity
            && (self.actions.is_empty()
                || decision
                    .outcome
                    .actions
                    .iter()
                    .any(|a| self.actions.contains(&a.action)))
    }
}

fn gap_status(gap: crate::decision_log::Gap) -> Status {
    Status::out_of_range(format!(
        "after_sequence: {gap}; decisions in between were dropped from the log"
    ))
}
