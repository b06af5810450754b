//! Overturns: a won appeal (ground truth from an appeal saying benign)
//! lifts what live decisions did to an entity. For each logged decision
//! that acted on the entity (or, for an event-id label, each entity the
//! event's decision acted on) it records an [`Overturn`]: the actions
//! lifted and the labels cleared, with the appeal's source and reference.
//! The labels the decision set on the entity are cleared from the live
//! state as of the decision's event time, so later events no longer see
//! them. Decisions themselves are never rewritten: the overturn is a record
//! beside them.
//!
//! Overturns are numbered like decisions and kept up to a capacity, oldest
//! dropped; watchers read them from a sequence exactly as they read the
//! decision log, and the services that carry out bans lift them. Each
//! (decision, entity) is overturned once while its overturn is kept, so
//! the same appeal submitted twice overturns nothing new.
//!
//! Finding the decisions is a lookup in the decision log's index of the
//! entity (its kept decisions, sorted by event time: O(k log k) for k of
//! them), or one lookup by id for an event; decisions the log has dropped
//! cannot be overturned (their actions were carried out long ago, and the
//! appeal's truth is still kept in the ground-truth book).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use foldhash::fast::RandomState;

use crate::decision::{Decision, EnforcementAction, LabelChange};
use crate::decision_log::{BackingError, DecisionLog, Gap};
use crate::event::Entity;
use crate::ground_truth::{GroundTruth, LabelSource, LabelSubject};
use crate::state::MemoryState;

/// One decision's actions on one entity, lifted by a won appeal.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Overturn {
    /// Its place among the overturns: the first is 1.
    pub sequence: u64,
    /// The decision overturned.
    pub decision_id: String,
    /// The event the decision was about.
    pub event_id: String,
    /// Whose actions are lifted.
    pub entity: Entity,
    /// The decision's live actions on the entity.
    pub lifted: Vec<EnforcementAction>,
    /// The labels the decision had set on the entity, now cleared.
    pub labels_cleared: Vec<LabelChange>,
    /// The appeal's source.
    pub source: LabelSource,
    /// The appeal's reference.
    pub reference: String,
    /// When the appeal was decided (wall clock, Unix milliseconds).
    pub labelled_at_ms: i64,
    /// When the overturn was recorded (wall clock, Unix milliseconds).
    pub overturned_at_ms: i64,
    /// The event time the labels were cleared as of: the decision's.
    pub cleared_as_of_ms: i64,
    /// The decision log's last sequence when it was recorded: where a
    /// recovery replays it among the decisions.
    pub after_decision: u64,
}

/// Where overturns are kept durably.
pub trait OverturnBacking: Send + Sync {
    /// Keep these overturns: when this returns `Ok`, a crash does not lose
    /// them.
    fn write_overturns(&self, overturns: &[Arc<Overturn>]) -> Result<(), BackingError>;
}

/// Every overturn recorded, numbered, bounded. Shared across threads.
pub struct OverturnLog {
    capacity: usize,
    inner: RwLock<Inner>,
    /// The last sequence recorded; watchers wait on its changes.
    last: tokio::sync::watch::Sender<u64>,
    backing: Option<Arc<dyn OverturnBacking>>,
}

#[derive(Default)]
struct Inner {
    /// The sequence of `entries[0]`.
    first: u64,
    entries: VecDeque<Arc<Overturn>>,
    /// Per decision id, the sequences of its overturns, oldest first.
    by_decision: HashMap<String, Vec<u64>, RandomState>,
}

impl Inner {
    fn at(&self, sequence: u64) -> Option<&Arc<Overturn>> {
        let index = sequence.checked_sub(self.first)?;
        self.entries.get(usize::try_from(index).ok()?)
    }

    fn of_decision(&self, id: &str) -> impl Iterator<Item = &Arc<Overturn>> {
        self.by_decision
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|&sequence| self.at(sequence))
    }

    fn push(&mut self, mut overturn: Overturn, capacity: usize) -> Arc<Overturn> {
        if self.entries.len() >= capacity
            && let Some(oldest) = self.entries.pop_front()
        {
            let sequence = self.first;
            self.first += 1;
            if let Some(sequences) = self.by_decision.get_mut(&oldest.decision_id) {
                sequences.retain(|&s| s != sequence);
                if sequences.is_empty() {
                    self.by_decision.remove(&oldest.decision_id);
                }
            }
        }
        overturn.sequence = self.first + self.entries.len() as u64;
        let overturn = Arc::new(overturn);
        self.by_decision
            .entry(overturn.decision_id.clone())
            .or_default()
            .push(overturn.sequence);
        self.entries.push_back(overturn.clone());
        overturn
    }
}

impl OverturnLog {
    /// A log keeping at most `capacity` overturns (at least one).
    pub fn new(capacity: usize) -> Self {
        OverturnLog {
            capacity: capacity.max(1),
            inner: RwLock::new(Inner {
                first: 1,
                ..Inner::default()
            }),
            last: tokio::sync::watch::Sender::new(0),
            backing: None,
        }
    }

    /// A log that writes every overturn to `backing` before it counts as
    /// recorded, continuing after `recovered` (every overturn the backing
    /// holds, in order).
    pub fn with_backing(
        capacity: usize,
        backing: Arc<dyn OverturnBacking>,
        recovered: Vec<Overturn>,
    ) -> Self {
        let log = OverturnLog {
            backing: Some(backing),
            ..OverturnLog::new(capacity)
        };
        {
            let mut inner = log.inner.write().unwrap_or_else(|p| p.into_inner());
            if let Some(first) = recovered.first() {
                inner.first = first.sequence;
            }
            for overturn in recovered {
                let sequence = overturn.sequence;
                let pushed = inner.push(overturn, log.capacity);
                debug_assert_eq!(
                    pushed.sequence, sequence,
                    "recovered overturns are in order"
                );
            }
            let last = inner.first + inner.entries.len() as u64 - 1;
            log.last.send_replace(last);
        }
        log
    }

    /// Overturn what a won appeal names: each kept live decision that
    /// acted on its entity, or each entity its event's decision acted on,
    /// once. Clears the labels each overturned decision set on the entity
    /// from `state`, and returns the overturns recorded (none for a label
    /// that is not a won appeal). `now_ms` is the wall clock.
    pub fn overturn(
        &self,
        appeal: &GroundTruth,
        log: &DecisionLog,
        state: &MemoryState,
        now_ms: i64,
    ) -> Vec<Arc<Overturn>> {
        if !appeal.overturns() {
            return Vec::new();
        }
        // What to lift: (decision, entity), oldest decision first.
        let targets: Vec<(Arc<Decision>, Entity)> = match &appeal.subject {
            LabelSubject::Entity(entity) => {
                let mut page = log.list(entity, i64::MIN, i64::MAX, usize::MAX, None);
                page.decisions.sort_by_key(|logged| logged.sequence);
                page.decisions
                    .into_iter()
                    .map(|logged| (logged.decision, entity.clone()))
                    .collect()
            }
            LabelSubject::Event(event_id) => {
                let Some(logged) = log.get(&Decision::id_for(event_id)) else {
                    return Vec::new();
                };
                let mut entities: Vec<Entity> = Vec::new();
                for action in &logged.decision.outcome.actions {
                    if !entities.contains(&action.entity) {
                        entities.push(action.entity.clone());
                    }
                }
                entities
                    .into_iter()
                    .map(|entity| (logged.decision.clone(), entity))
                    .collect()
            }
        };

        // One writer at a time, from the check to the record, so that two
        // copies of one appeal cannot both overturn the same decision.
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let mut recorded = Vec::new();
        for (decision, entity) in targets {
            let lifted: Vec<EnforcementAction> = decision
                .outcome
                .actions
                .iter()
                .filter(|a| a.entity == entity)
                .cloned()
                .collect();
            if lifted.is_empty()
                || inner
                    .of_decision(&decision.id)
                    .any(|done| done.entity == entity)
            {
                continue;
            }
            let labels_cleared: Vec<LabelChange> = decision
                .label_changes
                .iter()
                .filter(
                    |change| matches!(change, LabelChange::Set { entity: on, .. } if *on == entity),
                )
                .cloned()
                .collect();
            for change in &labels_cleared {
                if let LabelChange::Set { label, .. } = change {
                    // As of the decision's event time: the stretch it set
                    // (with anything it was merged into) goes, and a later,
                    // separate stretch stays.
                    state.clear_label(&entity, label, decision.event.occurred_at_ms);
                }
            }
            let overturn = Overturn {
                sequence: 0,
                decision_id: decision.id.clone(),
                event_id: decision.event.id.clone(),
                entity,
                lifted,
                labels_cleared,
                source: appeal.source,
                reference: appeal.reference.clone(),
                labelled_at_ms: appeal.labelled_at_ms,
                overturned_at_ms: now_ms,
                cleared_as_of_ms: decision.event.occurred_at_ms,
                after_decision: log.last_sequence(),
            };
            recorded.push(inner.push(overturn, self.capacity));
        }
        if let (Some(backing), false) = (&self.backing, recorded.is_empty())
            && let Err(error) = backing.write_overturns(&recorded)
        {
            // The labels are cleared and the overturns recorded in memory;
            // a crash before the next checkpoint would bring the labels
            // back. Nothing better can be done than to say so loudly.
            tracing::error!(%error, overturns = recorded.len(), "overturns were not kept durably");
        }
        if let Some(last) = recorded.last() {
            // Published under the lock, as the decision log does.
            self.last.send_replace(last.sequence);
        }
        recorded
    }

    /// The overturns of the decision `id` still kept, oldest first.
    pub fn of_decision(&self, id: &str) -> Vec<Arc<Overturn>> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner.of_decision(id).cloned().collect()
    }

    /// The sequence of the last overturn recorded (0 before the first).
    pub fn last_sequence(&self) -> u64 {
        *self.last.borrow()
    }

    /// How many overturns are kept.
    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .entries
            .len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Up to `limit` overturns recorded after `after`, in order; a [`Gap`]
    /// when some of them were dropped.
    pub fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Arc<Overturn>>, Gap> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let start = Gap::start_after(after, inner.first)?;
        Ok(inner
            .entries
            .iter()
            .skip(start)
            .take(limit)
            .cloned()
            .collect())
    }

    /// A receiver that changes whenever an overturn is recorded.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.last.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Outcome;
    use crate::event::Event;
    use crate::ground_truth::Truth;
    use crate::verdict::{Action, Severity};

    fn blocking(id: &str, account: &str, at_ms: i64) -> Arc<Decision> {
        let entity = Entity::account(account);
        Arc::new(Decision {
            id: Decision::id_for(id),
            event: Arc::new(Event::new(id, "media.profile_photo", at_ms, entity.clone())),
            outcome: Outcome {
                severity: Severity::Block,
                score: 1.0,
                actions: vec![EnforcementAction {
                    action: Action::BlockAccount,
                    entity: entity.clone(),
                }],
            },
            rules: Vec::new(),
            label_changes: vec![LabelChange::Set {
                entity,
                label: "bad".into(),
                expires_at_ms: at_ms + 86_400_000,
                rule: Arc::from("r"),
            }],
            shadow: None,
            policy_version: Arc::from("p"),
        })
    }

    fn appeal(subject: LabelSubject, source: LabelSource, truth: Truth) -> GroundTruth {
        GroundTruth {
            subject,
            truth,
            source,
            labelled_at_ms: 5,
            reference: "ticket-1".into(),
        }
    }

    #[test]
    fn a_won_appeal_overturns_once_and_clears_the_labels() {
        let log = DecisionLog::new(100);
        let state = MemoryState::new();
        let overturns = OverturnLog::new(100);
        let a = Entity::account("a");
        for (n, at) in [(1, 1_000), (2, 2_000)] {
            let decision = blocking(&format!("e{n}"), "a", at);
            state.set_label(&a, "bad", at, 86_400);
            log.append(decision);
        }
        log.append(Decision::allowing(Event::new(
            "quiet",
            "message.sent",
            3_000,
            a.clone(),
        )));
        assert!(state.has_label(&a, "bad", 5_000));

        let entity = LabelSubject::Entity(a.clone());
        // A review saying benign, or an appeal saying abusive, lifts nothing.
        for label in [
            appeal(entity.clone(), LabelSource::Review, Truth::Benign),
            appeal(entity.clone(), LabelSource::Appeal, Truth::Abusive),
        ] {
            assert!(overturns.overturn(&label, &log, &state, 9).is_empty());
        }
        let won = appeal(entity, LabelSource::Appeal, Truth::Benign);
        let first = overturns.overturn(&won, &log, &state, 9);
        let ids: Vec<&str> = first.iter().map(|o| &*o.decision_id).collect();
        assert_eq!(
            ids,
            ["dec-e1", "dec-e2"],
            "the allowing decision acted on no one"
        );
        assert_eq!(first[0].sequence, 1);
        assert_eq!(first[0].labels_cleared.len(), 1);
        assert!(!state.has_label(&a, "bad", 5_000));
        assert!(
            overturns.overturn(&won, &log, &state, 10).is_empty(),
            "once"
        );
        assert_eq!(overturns.of_decision("dec-e2")[0].sequence, 2);

        // An event-id appeal for a decision already overturned: nothing new.
        let event = appeal(
            LabelSubject::Event("e1".into()),
            LabelSource::Appeal,
            Truth::Benign,
        );
        assert!(overturns.overturn(&event, &log, &state, 11).is_empty());
        let unknown = appeal(
            LabelSubject::Event("nope".into()),
            LabelSource::Appeal,
            Truth::Benign,
        );
        assert!(overturns.overturn(&unknown, &log, &state, 11).is_empty());
        assert_eq!(overturns.last_sequence(), 2);
    }

    #[test]
    fn the_log_is_bounded_and_a_reader_behind_it_gets_a_gap() {
        let log = DecisionLog::new(100);
        let state = MemoryState::new();
        let overturns = OverturnLog::new(2);
        for n in 0..3 {
            let decision = blocking(&format!("e{n}"), &format!("a{n}"), 1_000);
            log.append(decision);
            let label = appeal(
                LabelSubject::Event(format!("e{n}")),
                LabelSource::Appeal,
                Truth::Benign,
            );
            assert_eq!(overturns.overturn(&label, &log, &state, 1).len(), 1);
        }
        assert_eq!(overturns.len(), 2);
        assert!(overturns.of_decision("dec-e0").is_empty());
        assert_eq!(
            overturns.read_after(0, 10).unwrap_err(),
            Gap {
                after: 0,
                oldest_kept: 2
            }
        );
        let rest: Vec<u64> = overturns
            .read_after(1, 10)
            .unwrap()
            .iter()
            .map(|o| o.sequence)
            .collect();
        assert_eq!(rest, [2, 3]);
        assert!(overturns.read_after(3, 10).unwrap().is_empty());
    }
}
