//! Idempotency: an event id seen again within the retention window is not
//! evaluated (or counted) twice; it gets the decision it got the first time.
//!
//! The first arrival of an id claims it and evaluates; a copy arriving while
//! that evaluation runs waits for it rather than racing it. Records are
//! kept for a retention window of event time and then swept.

use std::sync::{Arc, Condvar, Mutex};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::decision::Decision;

/// Default retention of seen event ids: a day of event time.
pub const DEFAULT_RETENTION_MS: i64 = 24 * 3600 * 1000;

/// Where one event id's evaluation stands.
enum Progress {
    Running,
    Done(Arc<Decision>),
    /// The evaluating thread gave up (it panicked): the next arrival
    /// evaluates afresh.
    Abandoned,
}

struct Slot {
    occurred_at_ms: i64,
    progress: Mutex<Progress>,
    finished: Condvar,
}

/// The ids seen recently and the decisions they got.
pub struct SeenEvents {
    slots: DashMap<String, Arc<Slot>>,
    retention_ms: i64,
}

/// What [`SeenEvents::claim`] found.
pub enum Claim<'a> {
    /// The id is new: evaluate it and [complete](ClaimGuard::complete) the
    /// guard.
    New(ClaimGuard<'a>),
    /// The id was decided before.
    Seen(Arc<Decision>),
}

/// The right and duty to evaluate one event id. Dropped without
/// completing, it releases the id for the next arrival.
pub struct ClaimGuard<'a> {
    seen: &'a SeenEvents,
    id: String,
    slot: Arc<Slot>,
    completed: bool,
}

impl ClaimGuard<'_> {
    /// Record the decision and wake any copy of the event waiting for it.
    pub fn complete(mut self, decision: Arc<Decision>) {
        self.finish(Progress::Done(decision));
        self.completed = true;
    }

    fn finish(&self, progress: Progress) {
        *self.slot.progress.lock().unwrap_or_else(|p| p.into_inner()) = progress;
        self.slot.finished.notify_all();
    }
}

impl Drop for ClaimGuard<'_> {
    fn drop(&mut self) {
        if !self.completed {
            self.seen
                .slots
                .remove_if(&self.id, |_, slot| Arc::ptr_eq(slot, &self.slot));
            self.finish(Progress::Abandoned);
        }
    }
}

impl SeenEvents {
    /// Remember ids for `retention_ms` of event time.
    pub fn new(retention_ms: i64) -> Self {
        SeenEvents {
            slots: DashMap::new(),
            retention_ms,
        }
    }

    /// Claim `id` for evaluation, or get the decision it already has
    /// (waiting if a copy is being evaluated right now).
    pub fn claim(&self, id: &str, occurred_at_ms: i64) -> Claim<'_> {
        loop {
            let slot = match self.slots.entry(id.to_string()) {
                Entry::Vacant(vacant) => {
                    let slot = Arc::new(Slot {
                        occurred_at_ms,
                        progress: Mutex::new(Progress::Running),
                        finished: Condvar::new(),
                    });
                    vacant.insert(slot.clone());
                    return Claim::New(ClaimGuard {
                        seen: self,
                        id: id.to_string(),
                        slot,
                        completed: false,
                    });
                }
                Entry::Occupied(occupied) => occupied.get().clone(),
            };
            let mut progress = slot.progress.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                match &*progress {
                    Progress::Done(decision) => return Claim::Seen(decision.clone()),
                    Progress::Abandoned => break,
                    Progress::Running => {
                        progress = slot
                            .finished
                            .wait(progress)
                            .unwrap_or_else(|p| p.into_inner());
                    }
                }
            }
        }
    }

    /// Forget ids whose events are older than the retention window before
    /// `watermark_ms`. Returns how many were forgotten.
    pub fn sweep(&self, watermark_ms: i64) -> usize {
        let horizon = watermark_ms.saturating_sub(self.retention_ms);
        let before = self.slots.len();
        self.slots.retain(|_, slot| slot.occurred_at_ms >= horizon);
        before - self.slots.len()
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}
