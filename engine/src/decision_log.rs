//! The decision log: every decision the engine made, in the order it made
//! them, numbered, kept in memory up to a capacity; found again by id, listed
//! by entity and event time, and followed by watchers that resume by number.
//!
//! Each logged decision gets a *sequence*, one more than the one before.
//! Watchers read the log from a sequence onwards instead of being pushed
//! copies, so a slow watcher costs the engine nothing and, as long as the
//! log still holds what it has not read, misses nothing. The oldest
//! decisions are dropped when the log is full; a watcher or a resume that
//! needs one of them is told so ([`Gap`]) rather than silently skipped
//! ahead. Durable storage of the log is separate work; this one lives as
//! long as the process.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use foldhash::fast::RandomState;

use crate::decision::Decision;
use crate::event::Entity;

/// Default number of decisions kept.
pub const DEFAULT_CAPACITY: usize = 500_000;

/// A decision and its place in the log.
#[derive(Clone, Debug)]
pub struct Logged {
    /// Its sequence: the first decision logged is 1.
    pub sequence: u64,
    /// The decision.
    pub decision: Arc<Decision>,
}

/// The decisions a reader asked for are no longer kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "decisions after sequence {after} are no longer all kept: the oldest kept is {oldest_kept}"
)]
pub struct Gap {
    /// Where the reader wanted to start after.
    pub after: u64,
    /// The oldest sequence still kept.
    pub oldest_kept: u64,
}

impl Gap {
    /// Where a reader resuming after sequence `after` starts in a log
    /// whose oldest kept entry is numbered `first`: an index into the kept
    /// entries, or the gap when entries it has not read were dropped.
    pub fn start_after(after: u64, first: u64) -> Result<usize, Gap> {
        if after + 1 < first {
            return Err(Gap {
                after,
                oldest_kept: first,
            });
        }
        Ok((after + 1 - first) as usize)
    }
}

/// Where a listing by entity goes on from: the last decision of the page
/// before, by event time and sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListPosition {
    /// The event time of the last decision returned.
    pub occurred_at_ms: i64,
    /// Its sequence.
    pub sequence: u64,
}

/// One page of an entity's decisions, newest first.
#[derive(Debug, Default)]
pub struct Page {
    /// The decisions on this page.
    pub decisions: Vec<Logged>,
    /// Where the next page starts, if there is one.
    pub next: Option<ListPosition>,
}

/// An in-memory, bounded log of decisions. Shared across threads.
pub struct DecisionLog {
    capacity: usize,
    inner: RwLock<Inner>,
    /// The last sequence logged; watchers wait on its changes.
    last: tokio::sync::watch::Sender<u64>,
}

#[derive(Default)]
struct Inner {
    /// The sequence of `entries[0]`.
    first: u64,
    entries: VecDeque<Arc<Decision>>,
    by_id: HashMap<String, u64, RandomState>,
    /// Per entity (actor, target, or the entity of an action), the
    /// sequences of its decisions in log order: appending and dropping
    /// touch only the ends; listings sort by event time when asked.
    by_entity: HashMap<Entity, VecDeque<u64>, RandomState>,
}

impl DecisionLog {
    /// A log keeping at most `capacity` decisions (at least one).
    pub fn new(capacity: usize) -> Self {
        DecisionLog {
            capacity: capacity.max(1),
            inner: RwLock::new(Inner {
                first: 1,
                ..Inner::default()
            }),
            last: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Log a decision and return its sequence. The oldest decision is
    /// dropped when the log is full.
    pub fn append(&self, decision: Arc<Decision>) -> u64 {
        let mut sequences = self.append_all([decision]);
        sequences.pop().expect("one decision in, one sequence out")
    }

    /// Log decisions in order under one lock, and return their sequences.
    pub fn append_all(&self, decisions: impl IntoIterator<Item = Arc<Decision>>) -> Vec<u64> {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let sequences: Vec<u64> = decisions
            .into_iter()
            .map(|decision| inner.push(decision, self.capacity))
            .collect();
        if let Some(&last) = sequences.last() {
            // Published under the lock, so the watch value never runs
            // ahead of or behind what readers can see.
            self.last.send_replace(last);
        }
        sequences
    }

    /// How many decisions it keeps at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The decision with this id, if it is still kept.
    pub fn get(&self, id: &str) -> Option<Logged> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let sequence = *inner.by_id.get(id)?;
        inner.at(sequence).map(|decision| Logged {
            sequence,
            decision: decision.clone(),
        })
    }

    /// The sequence of the last decision logged (0 before the first).
    pub fn last_sequence(&self) -> u64 {
        *self.last.borrow()
    }

    /// How many decisions are kept now.
    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .entries
            .len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Up to `limit` decisions logged after `after`, in order. Empty when
    /// there are none yet; a [`Gap`] when some of them were dropped.
    pub fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Logged>, Gap> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let start = Gap::start_after(after, inner.first)?;
        Ok(inner
            .entries
            .iter()
            .skip(start)
            .take(limit)
            .zip(after + 1..)
            .map(|(decision, sequence)| Logged {
                sequence,
                decision: decision.clone(),
            })
            .collect())
    }

    /// A receiver that changes whenever a decision is logged.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.last.subscribe()
    }

    /// The decisions about `entity` with event time in `[from_ms, to_ms)`,
    /// newest first (by event time, then by sequence), at most `limit`,
    /// starting after `position` when given.
    pub fn list(
        &self,
        entity: &Entity,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
        position: Option<ListPosition>,
    ) -> Page {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let Some(sequences) = inner.by_entity.get(entity) else {
            return Page::default();
        };
        // Sequences start at 1, so `(t, 0)` sorts before every decision at
        // time `t`: the range is `[(from, 0), end)`, newest first.
        let start = (from_ms, 0);
        let mut end = (to_ms, 0);
        if let Some(p) = position {
            end = end.min((p.occurred_at_ms, p.sequence));
        }
        let mut matching: Vec<(i64, u64)> = sequences
            .iter()
            .filter_map(|&sequence| {
                let key = (inner.at(sequence)?.event.occurred_at_ms, sequence);
                (start <= key && key < end).then_some(key)
            })
            .collect();
        matching.sort_unstable_by(|a, b| b.cmp(a));
        let more = matching.len() > limit;
        let decisions: Vec<Logged> = matching
            .into_iter()
            .take(limit)
            .filter_map(|(_, sequence)| {
                inner.at(sequence).map(|decision| Logged {
                    sequence,
                    decision: decision.clone(),
                })
            })
            .collect();
        let next = match decisions.last() {
            Some(last) if more => Some(ListPosition {
                occurred_at_ms: last.decision.event.occurred_at_ms,
                sequence: last.sequence,
            }),
            _ => None,
        };
        Page { decisions, next }
    }
}

impl Inner {
    fn at(&self, sequence: u64) -> Option<&Arc<Decision>> {
        let index = sequence.checked_sub(self.first)?;
        self.entries.get(usize::try_from(index).ok()?)
    }

    /// Append one decision, dropping the oldest first if the log is full.
    fn push(&mut self, decision: Arc<Decision>, capacity: usize) -> u64 {
        if self.entries.len() >= capacity {
            self.drop_oldest();
        }
        let sequence = self.first + self.entries.len() as u64;
        self.by_id.insert(decision.id.clone(), sequence);
        for entity in entities_of(&decision) {
            match self.by_entity.get_mut(entity) {
                Some(sequences) => sequences.push_back(sequence),
                None => {
                    self.by_entity
                        .insert(entity.clone(), VecDeque::from([sequence]));
                }
            }
        }
        self.entries.push_back(decision);
        sequence
    }

    fn drop_oldest(&mut self) {
        let Some(oldest) = self.entries.pop_front() else {
            return;
        };
        let sequence = self.first;
        self.first += 1;
        // A later decision for the same id (none today: ids are decided
        // once) would own the index entry; only remove our own.
        if self.by_id.get(&oldest.id) == Some(&sequence) {
            self.by_id.remove(&oldest.id);
        }
        for entity in entities_of(&oldest) {
            if let Some(sequences) = self.by_entity.get_mut(entity) {
                // Sequences are appended and dropped in order: the oldest
                // decision is at the front of each of its entities' lists.
                if sequences.front() == Some(&sequence) {
                    sequences.pop_front();
                }
                if sequences.is_empty() {
                    self.by_entity.remove(entity);
                }
            }
        }
    }
}

/// The entities a decision is about: the actor, the target, and the entity
/// of every action, live or shadow. Each once.
fn entities_of(decision: &Decision) -> Vec<&Entity> {
    let mut entities: Vec<&Entity> = Vec::with_capacity(2);
    let shadow_actions = decision.shadow.iter().flat_map(|s| &s.outcome.actions);
    let candidates = std::iter::once(&decision.event.actor)
        .chain(decision.event.target.as_ref())
        .chain(
            decision
                .outcome
                .actions
                .iter()
                .chain(shadow_actions)
                .map(|a| &a.entity),
        );
    for entity in candidates {
        if !entities.contains(&entity) {
            entities.push(entity);
        }
    }
    entities
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    fn decision(id: &str, actor: &str, at_ms: i64) -> Arc<Decision> {
        Decision::allowing(Event::new(
            id,
            "message.sent",
            at_ms,
            Entity::account(actor),
        ))
    }

    fn sequences(logged: &[Logged]) -> Vec<u64> {
        logged.iter().map(|l| l.sequence).collect()
    }

    #[test]
    fn a_full_log_drops_its_oldest_from_every_index() {
        let log = DecisionLog::new(3);
        for i in 0..5 {
            assert_eq!(log.append(decision(&format!("e{i}"), "a", i)), i as u64 + 1);
        }
        assert_eq!(log.len(), 3);
        assert!(log.get("dec-e1").is_none());
        assert_eq!(log.get("dec-e2").unwrap().sequence, 3);
        let page = log.list(&Entity::account("a"), i64::MIN, i64::MAX, 10, None);
        assert_eq!(sequences(&page.decisions), [5, 4, 3]);
        assert_eq!(
            log.read_after(1, 10).unwrap_err(),
            Gap {
                after: 1,
                oldest_kept: 3
            }
        );
        assert_eq!(sequences(&log.read_after(2, 10).unwrap()), [3, 4, 5]);
        assert_eq!(sequences(&log.read_after(3, 1).unwrap()), [4]);
        assert!(log.read_after(5, 10).unwrap().is_empty());
    }

    #[test]
    fn dropping_an_entity_s_last_decision_forgets_the_entity() {
        let log = DecisionLog::new(1);
        log.append(decision("x", "first", 0));
        log.append(decision("y", "second", 0));
        let inner = log.inner.read().unwrap();
        assert_eq!(inner.by_entity.len(), 1);
        assert_eq!(inner.by_id.len(), 1);
    }

    #[test]
    fn pages_cover_a_range_once_even_with_equal_times() {
        let log = DecisionLog::new(100);
        // Three decisions share each time.
        for i in 0..30 {
            log.append(decision(&format!("e{i}"), "a", (i / 3) as i64));
        }
        let mut seen = Vec::new();
        let mut position = None;
        loop {
            let page = log.list(&Entity::account("a"), 2, 8, 4, position);
            seen.extend(sequences(&page.decisions));
            match page.next {
                Some(next) => position = Some(next),
                None => break,
            }
        }
        // Times 2..8 exclusive are events 6..24, newest first.
        assert_eq!(seen, (7..=24).rev().collect::<Vec<u64>>());
        // An empty or inverted range is empty, not a panic.
        assert!(
            log.list(&Entity::account("a"), 5, 5, 4, None)
                .decisions
                .is_empty()
        );
        assert!(
            log.list(&Entity::account("a"), 9, 1, 4, None)
                .decisions
                .is_empty()
        );
    }
}
