//! Idempotency: an event id seen again within the retention window is not
//! evaluated (or counted) twice; it gets the decision it got the first time.
//!
//! The first arrival of an id claims it and evaluates; a copy arriving while
//! that evaluation runs waits for it rather than racing it. Waiting is rare
//! (a client retrying before its first attempt finished), so it goes
//! through one shared lock and condition variable, touched by the
//! evaluating thread only when someone is actually waiting: the common path
//! is one map insert and one map update.
//!
//! Records are kept for a retention window of event time and at most a
//! fixed number of them; [`SeenEvents::sweep`] enforces both.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use foldhash::fast::RandomState;

use crate::decision::Decision;

/// Default retention of seen event ids: ten minutes of event time, far
/// longer than any client's retries.
pub const DEFAULT_RETENTION_MS: i64 = 10 * 60 * 1000;

/// Default cap on remembered ids: bounds how many decisions are held. Each
/// holds its decision and event: about 1.5 KB for the simulator's events,
/// so about 1.5 GB at the cap; large events weigh more, until event size is
/// capped at intake.
pub const DEFAULT_MAX_REMEMBERED: usize = 1_000_000;

/// One event id's record.
struct Seen {
    occurred_at_ms: i64,
    /// `None` while the first arrival is being evaluated.
    decision: Option<Arc<Decision>>,
}

/// The ids seen recently and the decisions they got.
pub struct SeenEvents {
    /// Keyed by client-chosen ids, so hashed with a per-process seed.
    seen: DashMap<Box<str>, Seen, RandomState>,
    retention_ms: i64,
    max_remembered: usize,
    waiters: AtomicUsize,
    wait_lock: Mutex<()>,
    finished: Condvar,
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
/// completing (the evaluation panicked), it releases the id for the next
/// arrival.
pub struct ClaimGuard<'a> {
    seen: &'a SeenEvents,
    id: &'a str,
    completed: bool,
}

impl ClaimGuard<'_> {
    /// Record the decision and wake any copy of the event waiting for it.
    pub fn complete(mut self, decision: Arc<Decision>) {
        if let Some(mut record) = self.seen.seen.get_mut(self.id) {
            record.decision = Some(decision);
        }
        self.completed = true;
        self.seen.wake_waiters();
    }
}

impl Drop for ClaimGuard<'_> {
    fn drop(&mut self) {
        if !self.completed {
            self.seen
                .seen
                .remove_if(self.id, |_, record| record.decision.is_none());
            self.seen.wake_waiters();
        }
    }
}

impl SeenEvents {
    /// Remember ids for `retention_ms` of event time, and at most
    /// `max_remembered` of them.
    pub fn new(retention_ms: i64, max_remembered: usize) -> Self {
        SeenEvents {
            seen: DashMap::default(),
            retention_ms,
            max_remembered: max_remembered.max(1),
            waiters: AtomicUsize::new(0),
            wait_lock: Mutex::new(()),
            finished: Condvar::new(),
        }
    }

    /// Claim `id` for evaluation, or get the decision it already has
    /// (waiting if a copy is being evaluated right now).
    pub fn claim<'a>(&'a self, id: &'a str, occurred_at_ms: i64) -> Claim<'a> {
        loop {
            match self.seen.entry(Box::from(id)) {
                Entry::Vacant(vacant) => {
                    vacant.insert(Seen {
                        occurred_at_ms,
                        decision: None,
                    });
                    return Claim::New(ClaimGuard {
                        seen: self,
                        id,
                        completed: false,
                    });
                }
                Entry::Occupied(occupied) => {
                    if let Some(decision) = &occupied.get().decision {
                        return Claim::Seen(decision.clone());
                    }
                }
            }
            if let Some(decision) = self.wait_for(id) {
                return Claim::Seen(decision);
            }
            // The evaluation was abandoned: claim the id afresh.
        }
    }

    /// Remember a decision made before a restart, so that a retry of its
    /// event gets it again. A record already there is left alone.
    pub fn remember(&self, decision: Arc<Decision>) {
        if let Entry::Vacant(vacant) = self.seen.entry(Box::from(decision.event.id.as_str())) {
            vacant.insert(Seen {
                occurred_at_ms: decision.event.occurred_at_ms,
                decision: Some(decision),
            });
        }
    }

    /// Forget the event of `decision`, if this is the decision remembered
    /// for it.
    pub fn forget(&self, decision: &Arc<Decision>) {
        self.seen
            .remove_if(decision.event.id.as_str(), |_, record| {
                record
                    .decision
                    .as_ref()
                    .is_some_and(|kept| Arc::ptr_eq(kept, decision))
            });
    }

    /// Wait while `id` is being evaluated; its decision, or `None` if the
    /// evaluation was abandoned.
    fn wait_for(&self, id: &str) -> Option<Arc<Decision>> {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let mut guard = self.wait_lock.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = loop {
            match self.seen.get(id) {
                None => break None,
                Some(record) => {
                    if let Some(decision) = &record.decision {
                        break Some(decision.clone());
                    }
                }
            }
            // The timeout only guards against a missed wake-up; the
            // evaluating thread notifies under the same lock.
            guard = self
                .finished
                .wait_timeout(guard, Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        };
        drop(guard);
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        outcome
    }

    fn wake_waiters(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _guard = self.wait_lock.lock().unwrap_or_else(|p| p.into_inner());
            self.finished.notify_all();
        }
    }

    /// Forget ids whose events are older than the retention window before
    /// `watermark_ms`, then the oldest beyond the cap. Returns how many
    /// were forgotten.
    pub fn sweep(&self, watermark_ms: i64) -> usize {
        let before = self.seen.len();
        let mut horizon = watermark_ms.saturating_sub(self.retention_ms);
        if before > self.max_remembered {
            // Keep the newest `max_remembered`: find the event time that
            // many records are at or after. (The map may have shrunk since
            // `before` was read, hence the fresh length.)
            let mut times: Vec<i64> = self.seen.iter().map(|r| r.occurred_at_ms).collect();
            let cut = times.len().saturating_sub(self.max_remembered);
            if cut > 0 {
                let (_, nth, _) = times.select_nth_unstable(cut);
                horizon = horizon.max(*nth);
            }
        }
        // Records still being evaluated are kept whatever their age.
        self.seen
            .retain(|_, record| record.occurred_at_ms >= horizon || record.decision.is_none());
        before.saturating_sub(self.seen.len())
    }

    /// Whether `id` is remembered.
    pub fn contains(&self, id: &str) -> bool {
        self.seen.contains_key(id)
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Entity, Event};

    fn decision(id: &str) -> Arc<Decision> {
        Decision::allowing(Event::new(id, "message.sent", 0, Entity::account("a")))
    }

    #[test]
    fn a_decided_id_returns_its_decision_and_an_abandoned_one_is_free() {
        let seen = SeenEvents::new(DEFAULT_RETENTION_MS, 10);
        let Claim::New(guard) = seen.claim("a", 0) else {
            panic!("new id")
        };
        guard.complete(decision("a"));
        assert!(matches!(seen.claim("a", 0), Claim::Seen(d) if d.event.id == "a"));
        let Claim::New(guard) = seen.claim("b", 0) else {
            panic!("new id")
        };
        drop(guard);
        assert!(matches!(seen.claim("b", 0), Claim::New(_)));
    }

    /// Sweeps racing each other (and shrinking the map under one another)
    /// neither panic nor keep more than the cap.
    #[test]
    fn concurrent_sweeps_keep_the_cap() {
        let seen = SeenEvents::new(i64::MAX / 4, 100);
        for n in 0..1_000i64 {
            let id = format!("e{n}");
            let Claim::New(guard) = seen.claim(&id, n) else {
                panic!("new id")
            };
            guard.complete(decision(&id));
        }
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| seen.sweep(1_000));
            }
        });
        assert_eq!(seen.len(), 100);
        // The newest were kept.
        assert!(matches!(seen.claim("e999", 999), Claim::Seen(_)));
        assert!(matches!(seen.claim("e0", 0), Claim::New(_)));
    }
}
