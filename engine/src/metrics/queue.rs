//! Where evaluation work stands: batches waiting for a worker, being
//! evaluated, waiting for the durable log; and events read from
//! `EvaluateStream` calls and not yet answered.
//!
//! Kept whether or not metrics are served (an atomic add as a batch enters
//! and leaves each stage costs nothing beside its evaluation). Each count
//! is held by a guard, so a call dropped mid-way (a client gone) leaves
//! nothing counted behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Where a batch of events is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Waiting for an evaluation worker (all `workers` are busy).
    Waiting,
    /// Being evaluated on a worker.
    Evaluating,
    /// Evaluated, its decisions waiting for the durable log's write.
    Logging,
}

impl Stage {
    /// Every stage, in index order.
    pub const ALL: [Stage; 3] = [Stage::Waiting, Stage::Evaluating, Stage::Logging];

    /// Its label value.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Waiting => "waiting",
            Stage::Evaluating => "evaluating",
            Stage::Logging => "logging",
        }
    }

    fn index(self) -> usize {
        match self {
            Stage::Waiting => 0,
            Stage::Evaluating => 1,
            Stage::Logging => 2,
        }
    }
}

/// The evaluator's queue depths.
#[derive(Debug, Default)]
pub struct EvaluationQueue {
    batches: [AtomicI64; Stage::ALL.len()],
    stream_events: AtomicI64,
}

impl EvaluationQueue {
    /// Count a batch in `stage` until the guard is dropped.
    pub fn enter(self: &Arc<Self>, stage: Stage) -> InStage {
        self.batches[stage.index()].fetch_add(1, Ordering::Relaxed);
        InStage {
            queue: self.clone(),
            stage,
        }
    }

    /// Count `events` read from a stream until the guard is dropped.
    pub fn hold_stream_events(self: &Arc<Self>, events: usize) -> StreamEvents {
        let events = events as i64;
        self.stream_events.fetch_add(events, Ordering::Relaxed);
        StreamEvents {
            queue: self.clone(),
            events,
        }
    }

    /// Batches in `stage` now.
    pub fn batches(&self, stage: Stage) -> i64 {
        self.batches[stage.index()].load(Ordering::Relaxed)
    }

    /// Events read from streams and not yet answered.
    pub fn stream_events(&self) -> i64 {
        self.stream_events.load(Ordering::Relaxed)
    }
}

/// A batch counted in a stage.
#[derive(Debug)]
pub struct InStage {
    queue: Arc<EvaluationQueue>,
    stage: Stage,
}

impl Drop for InStage {
    fn drop(&mut self) {
        self.queue.batches[self.stage.index()].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Stream events counted as read and unanswered.
#[derive(Debug)]
pub struct StreamEvents {
    queue: Arc<EvaluationQueue>,
    events: i64,
}

impl Drop for StreamEvents {
    fn drop(&mut self) {
        self.queue
            .stream_events
            .fetch_sub(self.events, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_while_held() {
        let queue = Arc::new(EvaluationQueue::default());
        let waiting = queue.enter(Stage::Waiting);
        let evaluating = [
            queue.enter(Stage::Evaluating),
            queue.enter(Stage::Evaluating),
        ];
        let events = queue.hold_stream_events(7);
        assert_eq!(Stage::ALL.map(|stage| queue.batches(stage)), [1, 2, 0]);
        assert_eq!(queue.stream_events(), 7);
        drop((waiting, evaluating, events));
        assert_eq!(Stage::ALL.map(|stage| queue.batches(stage)), [0, 0, 0]);
        assert_eq!(queue.stream_events(), 0);
    }
}
