//! Recovery at start: the state image of the last checkpoint, the
//! decisions logged after it replayed onto it, and the newest decisions
//! taken back into the in-memory log and the pipeline's memory of recent
//! event ids.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::DurableError;
use super::checkpoint;
use super::store::DecisionStore;
use crate::decision_log::{DecisionLog, Logged};
use crate::pipeline::{Pipeline, RestoredStamps};

/// Decisions read from the store at a time while replaying.
const REPLAY_BATCH: usize = 4096;

/// What a recovery found and did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The last sequence in the store: the log goes on after it.
    pub last_sequence: u64,
    /// The sequence the checkpoint covered, if there was one.
    pub checkpoint: Option<u64>,
    /// Decisions replayed onto the checkpoint's state.
    pub replayed: u64,
    /// Decisions taken back into memory.
    pub in_memory: usize,
    /// How long it took.
    pub elapsed: Duration,
}

/// Bring `pipeline`'s state back from `dir` and `store`, and return the
/// decision log that goes on from the store, keeping `capacity` decisions
/// in memory.
pub fn recover(
    dir: &std::path::Path,
    store: Arc<DecisionStore>,
    pipeline: &Pipeline,
    capacity: usize,
) -> Result<(DecisionLog, Recovered), DurableError> {
    let started = Instant::now();
    let mut recovered = Recovered::default();
    let bounds = store.bounds()?;
    recovered.last_sequence = bounds.map_or(0, |(_, last)| last);

    let mut replay_after = 0;
    let restored = match checkpoint::load(dir)? {
        Some(checkpoint) => {
            if let Some((first, _)) = bounds
                && checkpoint.covers + 1 < first
            {
                // Pruning keeps everything after the checkpoint; a store
                // missing some of it was not pruned by this engine.
                return Err(DurableError::Corrupt(format!(
                    "the checkpoint covers decisions up to {} but the store begins at {first}",
                    checkpoint.covers
                )));
            }
            recovered.checkpoint = Some(checkpoint.covers);
            replay_after = checkpoint.covers;
            pipeline.restore_state(checkpoint.images)
        }
        None => RestoredStamps::default(),
    };
    loop {
        let batch = store.after(replay_after, REPLAY_BATCH)?;
        let Some(last) = batch.last() else { break };
        replay_after = last.sequence;
        for stored in &batch {
            pipeline.replay(&stored.decision, stored.stamps, &restored);
        }
        recovered.replayed += batch.len() as u64;
    }

    let newest_from = recovered.last_sequence.saturating_sub(capacity as u64);
    let mut tail = Vec::new();
    let mut after = newest_from;
    loop {
        let batch = store.after(after, REPLAY_BATCH)?;
        let Some(last) = batch.last() else { break };
        after = last.sequence;
        tail.extend(batch.into_iter().map(|stored| Logged {
            sequence: stored.sequence,
            decision: stored.decision,
        }));
    }
    for logged in &tail {
        pipeline.remember(&logged.decision);
    }
    recovered.in_memory = tail.len();
    let log = DecisionLog::with_backing(capacity, store, recovered.last_sequence, tail);
    recovered.elapsed = started.elapsed();
    Ok((log, recovered))
}
