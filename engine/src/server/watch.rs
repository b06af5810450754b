//! `WatchDecisions` and `WatchOverturns`: a watcher reads the decision log
//! (or the overturn log) from its own cursor, so it never slows the engine,
//! and sends what passes its filter. It resumes exactly after a sequence it
//! was given, and says so with `OUT_OF_RANGE` when the log no longer holds
//! what it needs.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tonic::Status;

use crate::api::{self, action_from_proto, severity_from_proto, v1};
use crate::decision::Decision;
use crate::decision_log::{DecisionLog, ReadError};
use crate::overturn::OverturnLog;
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
        let after = resume_after(
            request.after_sequence,
            log.last_sequence(),
            |after| log.read_after(after, 0).map(drop),
            "decision",
        )?;
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
                Err(error) => {
                    let _ = out.send(Err(read_status(error, "decision"))).await;
                    return;
                }
            };
            if batch.is_empty() {
                if !wait_for_more(&mut appended, &mut self.stopping, &out).await {
                    return;
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

/// Where a watcher starts: after `requested`, or after the `last`
/// sequence recorded when none was given. A cursor ahead of the log, or
/// behind what it keeps (`check` says), is `OUT_OF_RANGE` now, not after
/// the first read.
fn resume_after(
    requested: Option<u64>,
    last: u64,
    check: impl FnOnce(u64) -> Result<(), ReadError>,
    what: &str,
) -> Result<u64, Status> {
    match requested {
        None => Ok(last),
        Some(after) if after > last => Err(Status::out_of_range(format!(
            "after_sequence: {after} is ahead of the last {what} recorded ({last}); \
             a log that restarted numbers from 1 again"
        ))),
        Some(after) => {
            check(after).map_err(|error| read_status(error, what))?;
            Ok(after)
        }
    }
}

/// The status for a read that failed: `OUT_OF_RANGE` for what the log no
/// longer keeps, `UNAVAILABLE` when its store failed.
pub(super) fn read_status(error: ReadError, what: &str) -> Status {
    let gap = match error {
        ReadError::Gap(gap) => gap,
        ReadError::Backing(error) => return Status::unavailable(error.to_string()),
    };
    Status::out_of_range(format!(
        "after_sequence: {what}s after sequence {} are no longer all kept: the oldest kept is \
         {}; {what}s in between were dropped from the log",
        gap.after, gap.oldest_kept
    ))
}

/// One `WatchOverturns` call: its place among the overturns.
pub struct OverturnWatcher {
    after: u64,
    overturns: Arc<OverturnLog>,
    stopping: watch::Receiver<bool>,
}

impl OverturnWatcher {
    /// A watcher for `request`, or `OUT_OF_RANGE` when its cursor is ahead
    /// of the overturns recorded or behind those kept.
    pub fn new(
        request: v1::WatchOverturnsRequest,
        overturns: Arc<OverturnLog>,
        stopping: watch::Receiver<bool>,
    ) -> Result<Self, Status> {
        let after = resume_after(
            request.after_sequence,
            overturns.last_sequence(),
            |after| {
                overturns
                    .read_after(after, 0)
                    .map(drop)
                    .map_err(ReadError::from)
            },
            "overturn",
        )?;
        Ok(OverturnWatcher {
            after,
            overturns,
            stopping,
        })
    }

    /// Send overturns until the client goes away, the watcher falls out of
    /// the log, or the server shuts down.
    pub async fn run(mut self, out: mpsc::Sender<Result<v1::Overturn, Status>>) {
        let mut recorded = self.overturns.subscribe();
        loop {
            let batch = match self.overturns.read_after(self.after, READ_BATCH) {
                Ok(batch) => batch,
                Err(gap) => {
                    let _ = out.send(Err(read_status(gap.into(), "overturn"))).await;
                    return;
                }
            };
            if batch.is_empty() {
                if !wait_for_more(&mut recorded, &mut self.stopping, &out).await {
                    return;
                }
                continue;
            }
            for overturn in batch {
                self.after = overturn.sequence;
                if out
                    .send(Ok(api::overturn_to_proto(&overturn)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Wait until a log has more for a watcher that has read all of it: true
/// when it has, false when the watcher should end (the client went away,
/// or the engine is shutting down, which the client is told).
async fn wait_for_more<T>(
    appended: &mut watch::Receiver<u64>,
    stopping: &mut watch::Receiver<bool>,
    out: &mpsc::Sender<Result<T, Status>>,
) -> bool {
    tokio::select! {
        changed = appended.changed() => changed.is_ok(),
        _ = super::stopped(stopping) => {
            let _ = out
                .send(Err(Status::unavailable(
                    "the engine is shutting down; resume after the last sequence received",
                )))
                .await;
            false
        }
        _ = out.closed() => false,
    }
}
