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
//! ahead.
//!
//! With a [`Backing`] (the embedded store of [`crate::durable`]), a
//! decision is written there, durably, before the log shows it or its
//! client gets it ([`commit`]); and what the log no longer keeps in memory
//! is looked for there: a decision by id, and a watcher's resume from an
//! old sequence.

mod commit;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use foldhash::fast::RandomState;

use crate::decision::Decision;
use crate::event::Entity;

pub use commit::Entry;
use commit::GroupCommit;

/// Where a log's decisions are kept durably, beyond its memory.
pub trait Backing: Send + Sync {
    /// Keep `entries`, numbered from `first_sequence`, durably: when this
    /// returns `Ok`, a crash does not lose them.
    fn write(&self, first_sequence: u64, entries: &[Entry]) -> Result<(), BackingError>;

    /// The decision with this id, if it is kept.
    fn get(&self, id: &str) -> Result<Option<Logged>, BackingError>;

    /// Up to `limit` decisions after sequence `after`, in order; a [`Gap`]
    /// (as [`ReadError::Gap`]) if some of them are no longer kept.
    fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Logged>, ReadError>;
}

/// The backing failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("decision store: {0}")]
pub struct BackingError(pub String);

/// Why decisions could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// They are no longer kept.
    #[error(transparent)]
    Gap(#[from] Gap),
    /// The backing failed.
    #[error(transparent)]
    Backing(#[from] BackingError),
}

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

/// A log of decisions, bounded in memory, optionally kept durably beyond.
/// Shared across threads.
pub struct DecisionLog {
    capacity: usize,
    inner: RwLock<Inner>,
    /// The last sequence logged; watchers wait on its changes.
    last: tokio::sync::watch::Sender<u64>,
    backing: Option<Arc<dyn Backing>>,
    group_commit: GroupCommit,
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
    /// A log keeping at most `capacity` decisions (at least one) in memory
    /// only.
    pub fn new(capacity: usize) -> Self {
        DecisionLog {
            capacity: capacity.max(1),
            inner: RwLock::new(Inner {
                first: 1,
                ..Inner::default()
            }),
            last: tokio::sync::watch::Sender::new(0),
            backing: None,
            group_commit: GroupCommit::default(),
        }
    }

    /// A log that writes every decision to `backing` before showing it,
    /// continuing after `recovered`: the newest decisions the backing
    /// holds (at most `capacity` of them are kept in memory), and the last
    /// sequence it holds.
    pub fn with_backing(
        capacity: usize,
        backing: Arc<dyn Backing>,
        last_sequence: u64,
        recovered: Vec<Logged>,
    ) -> Self {
        let log = DecisionLog {
            backing: Some(backing),
            ..DecisionLog::new(capacity)
        };
        {
            let mut inner = log.inner.write().unwrap_or_else(|p| p.into_inner());
            let skip = recovered.len().saturating_sub(log.capacity);
            let recovered = &recovered[skip..];
            inner.first = recovered
                .first()
                .map_or(last_sequence + 1, |logged| logged.sequence);
            for logged in recovered {
                let sequence = inner.push(logged.decision.clone(), log.capacity);
                debug_assert_eq!(
                    sequence, logged.sequence,
                    "recovered decisions are in order"
                );
            }
        }
        log.last.send_replace(last_sequence);
        log
    }

    /// Whether decisions are kept durably beyond memory.
    pub fn is_durable(&self) -> bool {
        self.backing.is_some()
    }

    /// Log decisions, each with the stamps its counting took, and return
    /// their sequences. With a backing, they are durable when this
    /// returns; an error means none of them was logged.
    pub fn commit(&self, entries: Vec<Entry>) -> Result<Vec<u64>, BackingError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        match &self.backing {
            None => Ok(self.append_all(entries.into_iter().map(|(decision, _)| decision))),
            Some(_) => self.group_commit.commit(self, entries),
        }
    }

    /// Write queued batches through the backing as one, then show them;
    /// each batch's outcome by its ticket. Only the group commit's single
    /// writer calls this, so sequences cannot move underneath it.
    fn write_through(
        &self,
        batches: Vec<(u64, Vec<Entry>)>,
    ) -> Vec<(u64, Result<Vec<u64>, BackingError>)> {
        let backing = self
            .backing
            .as_ref()
            .expect("only a backed log writes through");
        let entries: Vec<Entry> = batches
            .iter()
            .flat_map(|(_, b)| b.iter().cloned())
            .collect();
        let first = self.last_sequence() + 1;
        if let Err(error) = backing.write(first, &entries) {
            tracing::error!(%error, decisions = entries.len(), "decisions were not logged");
            return batches
                .into_iter()
                .map(|(t, _)| (t, Err(error.clone())))
                .collect();
        }
        let mut sequences = self
            .append_all(entries.into_iter().map(|(decision, _)| decision))
            .into_iter();
        batches
            .into_iter()
            .map(|(ticket, batch)| (ticket, Ok(sequences.by_ref().take(batch.len()).collect())))
            .collect()
    }

    /// Log a decision in memory and return its sequence. The oldest
    /// decision is dropped when the log is full.
    pub fn append(&self, decision: Arc<Decision>) -> u64 {
        let mut sequences = self.append_all([decision]);
        sequences.pop().expect("one decision in, one sequence out")
    }

    /// Log decisions in memory in order under one lock, and return their
    /// sequences. (A backed log takes decisions through [`Self::commit`].)
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

    /// The decision with this id, if it is still kept, in memory or in
    /// the backing.
    pub fn get(&self, id: &str) -> Option<Logged> {
        let in_memory = {
            let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
            inner.by_id.get(id).and_then(|&sequence| {
                inner.at(sequence).map(|decision| Logged {
                    sequence,
                    decision: decision.clone(),
                })
            })
        };
        in_memory.or_else(|| {
            let found = self.backing.as_ref()?.get(id);
            found
                .unwrap_or_else(|error| {
                    tracing::error!(%error, id, "looking a decision up");
                    None
                })
                .filter(|logged| logged.sequence <= self.last_sequence())
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
    /// there are none yet; a [`ReadError::Gap`] when some of them were
    /// dropped (from memory and from the backing).
    pub fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Logged>, ReadError> {
        match (self.read_in_memory(after, limit), &self.backing) {
            (Err(_), Some(backing)) => {
                // Older than memory: the backing has it, unless it has
                // dropped it too. It may hold a few decisions being
                // written and not yet shown; those wait their turn.
                let last = self.last_sequence();
                let mut logged = backing.read_after(after, limit)?;
                logged.retain(|l| l.sequence <= last);
                Ok(logged)
            }
            (result, _) => Ok(result?),
        }
    }

    fn read_in_memory(&self, after: u64, limit: usize) -> Result<Vec<Logged>, Gap> {
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
            ReadError::Gap(Gap {
                after: 1,
                oldest_kept: 3
            })
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
