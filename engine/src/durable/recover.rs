//! Recovery at start: the state image of the last checkpoint, the
//! decisions and overturns recorded after it replayed onto it in the order
//! they were made, and the newest decisions taken back into the in-memory
//! log and the pipeline's memory of recent event ids.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::DurableError;
use super::checkpoint;
use super::store::DecisionStore;
use crate::decision_log::{DecisionLog, Logged};
use crate::overturn::{Overturn, OverturnLog};
use crate::pipeline::{Pipeline, RestoredStamps};
use crate::state::MemoryState;

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
    /// Overturns replayed onto it.
    pub overturns_replayed: u64,
    /// Decisions taken back into memory.
    pub in_memory: usize,
    /// How long it took.
    pub elapsed: Duration,
}

/// The logs a recovery hands back.
pub struct RecoveredLogs {
    /// The decision log, going on from the store.
    pub decisions: DecisionLog,
    /// The overturns, likewise.
    pub overturns: OverturnLog,
    /// What was found and done.
    pub recovered: Recovered,
}

/// Bring `pipeline`'s state back from `dir` and `store`, and return the
/// logs that go on from the store, keeping `capacity` decisions in memory.
pub fn recover(
    dir: &std::path::Path,
    store: Arc<DecisionStore>,
    pipeline: &Pipeline,
    capacity: usize,
) -> Result<RecoveredLogs, DurableError> {
    let started = Instant::now();
    let mut recovered = Recovered::default();
    let bounds = store.bounds()?;
    recovered.last_sequence = bounds.map_or(0, |(_, last)| last);
    let overturns = store.overturns()?;

    let (mut replay_after, mut overturns_after) = (0, 0);
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
            overturns_after = checkpoint.covers_overturns;
            pipeline.restore_state(checkpoint.images)
        }
        None => RestoredStamps::default(),
    };
    // Each overturn goes back where it was made: before the first decision
    // logged after it. (Label changes are replayed in the order they were
    // made, so stretches merge and split as they did.)
    let mut pending = overturns
        .iter()
        .filter(|o| o.sequence > overturns_after)
        .peekable();
    let live = pipeline.live_state();
    loop {
        let batch = store.after(replay_after, REPLAY_BATCH)?;
        let Some(last) = batch.last() else { break };
        replay_after = last.sequence;
        for stored in &batch {
            while let Some(overturn) = pending.next_if(|o| o.after_decision < stored.sequence) {
                clear_again(live, overturn);
                recovered.overturns_replayed += 1;
            }
            pipeline.replay(&stored.decision, stored.stamps, &restored);
        }
        recovered.replayed += batch.len() as u64;
    }
    for overturn in pending {
        clear_again(live, overturn);
        recovered.overturns_replayed += 1;
    }

    let mut tail = Vec::new();
    let mut after = recovered.last_sequence.saturating_sub(capacity as u64);
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
    let decisions =
        DecisionLog::with_backing(capacity, store.clone(), recovered.last_sequence, tail);
    let overturns = OverturnLog::with_backing(capacity, store, overturns);
    recovered.elapsed = started.elapsed();
    Ok(RecoveredLogs {
        decisions,
        overturns,
        recovered,
    })
}

/// Clear again the labels an overturn cleared.
fn clear_again(live: &MemoryState, overturn: &Overturn) {
    for change in &overturn.labels_cleared {
        if let crate::decision::LabelChange::Set { label, .. } = change {
            live.clear_label(&overturn.entity, label, overturn.cleared_as_of_ms);
        }
    }
}
