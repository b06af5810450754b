//! Group commit: decisions are written to the log's durable backing before
//! anyone sees them, and the evaluation threads that log at the same moment
//! share one write (one `fsync`) instead of queueing for one each.
//!
//! Whoever logs when no write is running becomes the writer: it takes
//! everything queued so far (its own batch and any others), writes it in
//! one go, shows it in the in-memory log, hands each waiting thread its
//! sequences and, if more was queued meanwhile, writes again. The others
//! wait on a condition variable. There is no writer thread to start or
//! stop, and a batch is never waiting for a timer.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

use super::{BackingError, DecisionLog};
use crate::decision::Decision;
use crate::pipeline::CountStamps;

/// A decision and the stamps its counting took, as the backing keeps them.
pub type Entry = (Arc<Decision>, CountStamps);

/// What a batch's wait ends with: its sequences, or why it was not logged.
type Outcome = Result<Vec<u64>, BackingError>;

#[derive(Default)]
struct Queue {
    /// Batches waiting for the next write, oldest first, by ticket.
    waiting: Vec<(u64, Vec<Entry>)>,
    /// Outcomes not yet collected, by ticket.
    done: HashMap<u64, Outcome>,
    next_ticket: u64,
    writing: bool,
}

/// The queue of batches waiting to be written.
#[derive(Default)]
pub(super) struct GroupCommit {
    queue: Mutex<Queue>,
    finished: Condvar,
}

impl GroupCommit {
    /// Write `batch` through `log`'s backing (with whatever else is
    /// queued) and return its sequences once it is durable and shown.
    pub(super) fn commit(&self, log: &DecisionLog, batch: Vec<Entry>) -> Outcome {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.waiting.push((ticket, batch));
        loop {
            if let Some(outcome) = queue.done.remove(&ticket) {
                return outcome;
            }
            if queue.writing {
                queue = self.finished.wait(queue).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            queue.writing = true;
            let batches = std::mem::take(&mut queue.waiting);
            let tickets: Vec<u64> = batches.iter().map(|(ticket, _)| *ticket).collect();
            drop(queue);
            // A panic would leave `writing` set and every later caller
            // waiting forever: it becomes an error for this write's batches.
            let outcomes = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                log.write_through(batches)
            }))
            .unwrap_or_else(|_| {
                let failed = BackingError("writing decisions panicked".into());
                tickets.iter().map(|&t| (t, Err(failed.clone()))).collect()
            });
            queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.writing = false;
            queue.done.extend(outcomes);
            self.finished.notify_all();
        }
    }
}
