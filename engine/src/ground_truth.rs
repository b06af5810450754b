//! The ground-truth book: what reviews, appeals and other sources learned
//! about entities and events after the engine decided, and a compact record
//! of what the engine concluded about each entity over time, so that
//! precision and recall over a range of event time come from the book
//! alone, without the decision log.
//!
//! Truths: the latest per entity and per event id (the one labelled last,
//! by `labelled_at`), up to a capacity each; the oldest written is dropped
//! first.
//!
//! Conclusions: every decision the pipeline makes is marked, per minute of
//! event time, on each entity it concluded something about: the strongest
//! live severity it met, the strongest shadow severity, how many decisions,
//! and which rule builds fired on it at which severity. A decision acts on
//! the entities its actions and the labels it sets name; a decision (or a
//! rule's verdict) that names no one is about the event's actor, who is
//! always marked (at allow when the decision acted on others only, so that
//! a reporter is not taken for the account it reported). Marks are kept for
//! the shadow report's retention (in minutes, like its ledger) and for at
//! most a capacity of entities: the one whose last decision is oldest is
//! dropped first, and a sweep forgets every entity with no decision inside
//! the retention. An entity still active keeps its older marks until its
//! next decision prunes them (reads ignore them), so a sweep costs what it
//! drops, not every entity held.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use foldhash::fast::RandomState;
use serde::Serialize;

use crate::accuracy::{Accuracy, Confusion, RuleAccuracy};
use crate::decision::{Decision, LabelChange, RuleReport};
use crate::event::Entity;
use crate::policy::Mode;
use crate::verdict::Severity;

/// Entities whose conclusions are kept unless told otherwise.
pub const DEFAULT_MAX_ENTITIES: usize = 1_000_000;

/// Truths kept per kind of subject (entities, event ids) unless told
/// otherwise.
pub const DEFAULT_MAX_TRUTHS: usize = 1_000_000;

const MINUTE_MS: i64 = 60_000;

/// Whether an entity or an event really was abusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Truth {
    /// Acting on it was right.
    Abusive,
    /// Acting on it was wrong.
    Benign,
}

/// Where a label came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelSource {
    /// A human review.
    Review,
    /// A decided appeal: a benign one overturns decisions.
    Appeal,
    /// Anything else.
    Other,
}

/// What a label is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelSubject {
    /// An account or a group.
    Entity(Entity),
    /// One event, by the id its client gave it.
    Event(String),
}

/// One piece of ground truth, as a client submits it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroundTruth {
    /// What it is about.
    pub subject: LabelSubject,
    /// Abusive or benign.
    pub truth: Truth,
    /// Who says so.
    pub source: LabelSource,
    /// When it was learned (wall clock, Unix milliseconds).
    pub labelled_at_ms: i64,
    /// Free text such as a ticket id.
    pub reference: String,
}

impl GroundTruth {
    /// Whether it overturns the decisions that acted on its subject: a
    /// won appeal.
    pub fn overturns(&self) -> bool {
        self.source == LabelSource::Appeal && self.truth == Truth::Benign
    }
}

/// A truth as the book keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptTruth {
    /// Abusive or benign.
    pub truth: Truth,
    /// Who said so.
    pub source: LabelSource,
    /// When it was learned.
    pub labelled_at_ms: i64,
    /// Its reference.
    pub reference: String,
}

/// How much the book keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookLimits {
    /// Minutes of event time conclusions are kept (the shadow report's).
    pub retention_minutes: i64,
    /// Entities whose conclusions are kept.
    pub max_entities: usize,
    /// Truths kept about entities, and separately about event ids.
    pub max_truths: usize,
}

impl Default for BookLimits {
    fn default() -> Self {
        BookLimits {
            retention_minutes: crate::shadow_report::DEFAULT_RETENTION_MINUTES,
            max_entities: DEFAULT_MAX_ENTITIES,
            max_truths: DEFAULT_MAX_TRUTHS,
        }
    }
}

/// What the decisions of one minute concluded about one entity.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mark {
    minute: i64,
    decisions: u32,
    live: Severity,
    shadow: Severity,
    /// Rule builds (by their id in the book) that fired on the entity, at
    /// their strongest severity: a handful, so a scan beats a map.
    fired: Vec<(u32, Severity)>,
}

/// One entity's marks, oldest minute first.
#[derive(Default)]
struct Record {
    marks: VecDeque<Mark>,
}

impl Record {
    fn last_minute(&self) -> Option<i64> {
        self.marks.back().map(|m| m.minute)
    }

    /// The mark of `minute`, added in order if missing. Decisions come
    /// mostly in event-time order: the newest mark is checked first.
    fn mark_mut(&mut self, minute: i64) -> &mut Mark {
        let index = match self.marks.back() {
            Some(last) if last.minute == minute => self.marks.len() - 1,
            _ => {
                let index = self.marks.partition_point(|m| m.minute < minute);
                if self.marks.get(index).is_none_or(|m| m.minute != minute) {
                    self.marks.insert(
                        index,
                        Mark {
                            minute,
                            decisions: 0,
                            live: Severity::Allow,
                            shadow: Severity::Allow,
                            fired: Vec::new(),
                        },
                    );
                }
                index
            }
        };
        &mut self.marks[index]
    }

    /// The marks of minutes in `[first, last)`.
    fn in_range(&self, first: i64, last: i64) -> impl Iterator<Item = &Mark> {
        let start = self.marks.partition_point(|m| m.minute < first);
        self.marks
            .range(start..)
            .take_while(move |m| m.minute < last)
    }
}

/// A rule build as accuracy tells them apart.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct RuleKey {
    rule: Arc<str>,
    mode: Mode,
    candidate: bool,
}

/// The latest truth per key, bounded: the oldest written is dropped first.
struct Truths<K> {
    by_key: HashMap<K, (u64, KeptTruth), RandomState>,
    /// Keys by when they were last written.
    order: BTreeMap<u64, K>,
    next: u64,
}

impl<K: Clone + Eq + Hash> Truths<K> {
    fn new() -> Self {
        Truths {
            by_key: HashMap::default(),
            order: BTreeMap::new(),
            next: 0,
        }
    }

    /// Keep `truth` for `key` unless a truth labelled later is kept.
    fn put(&mut self, key: K, truth: KeptTruth, capacity: usize) {
        if let Some(&(written, ref kept)) = self.by_key.get(&key) {
            if kept.labelled_at_ms > truth.labelled_at_ms {
                return;
            }
            self.order.remove(&written);
        }
        self.next += 1;
        self.order.insert(self.next, key.clone());
        self.by_key.insert(key, (self.next, truth));
        while self.by_key.len() > capacity.max(1) {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.by_key.remove(&oldest);
        }
    }

    fn get(&self, key: &K) -> Option<&KeptTruth> {
        self.by_key.get(key).map(|(_, truth)| truth)
    }

    fn len(&self) -> usize {
        self.by_key.len()
    }
}

struct Inner {
    /// Rule builds seen firing, each with its id (its index here).
    rules: Vec<RuleKey>,
    rule_ids: HashMap<RuleKey, u32, RandomState>,
    /// Per rule build, the minutes it fired in (on anyone).
    rule_minutes: Vec<BTreeSet<i64>>,
    records: HashMap<Entity, Record, RandomState>,
    /// Entities by the minute of their last mark. An entry whose entity has
    /// marked a later minute since is stale and skipped: entries are only
    /// ever added, and go when their minute ages out.
    last_seen: BTreeMap<i64, Vec<Entity>>,
    /// Minutes before this are forgotten (as of the last sweep).
    keep_from: i64,
    entity_truths: Truths<Entity>,
    event_truths: Truths<String>,
}

impl Inner {
    fn rule_id(&mut self, report: &RuleReport) -> u32 {
        let key = RuleKey {
            rule: report.rule.clone(),
            mode: report.mode,
            candidate: report.candidate,
        };
        if let Some(&id) = self.rule_ids.get(&key) {
            return id;
        }
        let id = u32::try_from(self.rules.len()).unwrap_or(u32::MAX);
        self.rules.push(key.clone());
        self.rule_minutes.push(BTreeSet::new());
        self.rule_ids.insert(key, id);
        id
    }

    /// Drop the entities whose last mark is oldest until at most `max`
    /// are held.
    fn evict(&mut self, max: usize) {
        while self.records.len() > max {
            let Some(mut oldest) = self.last_seen.first_entry() else {
                return;
            };
            let minute = *oldest.key();
            match oldest.get_mut().pop() {
                Some(entity) => {
                    let current = self.records.get(&entity).and_then(Record::last_minute);
                    if current == Some(minute) {
                        self.records.remove(&entity);
                    }
                }
                None => {
                    oldest.remove();
                }
            }
        }
    }
}

/// The book, shared by every evaluation and by the labels' handler.
pub struct GroundTruthBook {
    inner: Mutex<Inner>,
    limits: BookLimits,
}

impl Default for GroundTruthBook {
    fn default() -> Self {
        GroundTruthBook::new(BookLimits::default())
    }
}

/// What one decision concluded about one entity.
struct Conclusion<'a> {
    entity: &'a Entity,
    live: Severity,
    shadow: Severity,
    fired: Vec<&'a RuleReport>,
}

impl GroundTruthBook {
    /// A book keeping as much as `limits` allow.
    pub fn new(limits: BookLimits) -> Self {
        GroundTruthBook {
            inner: Mutex::new(Inner {
                rules: Vec::new(),
                rule_ids: HashMap::default(),
                rule_minutes: Vec::new(),
                records: HashMap::default(),
                last_seen: BTreeMap::new(),
                keep_from: i64::MIN,
                entity_truths: Truths::new(),
                event_truths: Truths::new(),
            }),
            limits: BookLimits {
                retention_minutes: limits.retention_minutes.max(1),
                max_entities: limits.max_entities.max(1),
                max_truths: limits.max_truths.max(1),
            },
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Mark what `decision` concluded about each entity it concerned.
    /// A decision that concluded nothing (it allows live and in shadow, no
    /// rule fired, no action or label change) is not marked: it could only
    /// count its actor as not acted on, which an entity without marks
    /// counts as anyway, and most decisions are such. Skipping them keeps
    /// the book off the cost of the ordinary event.
    pub fn observe(&self, decision: &Decision) {
        if concluded_nothing(decision) {
            return;
        }
        let conclusions = conclusions(decision);
        let minute = decision.event.occurred_at_ms.div_euclid(MINUTE_MS);
        let prune_before = minute.saturating_sub(self.limits.retention_minutes);
        let mut inner = self.lock();
        if minute < inner.keep_from {
            // Older than anything a report can still cover.
            return;
        }
        for conclusion in conclusions {
            let fired: Vec<(u32, Severity)> = conclusion
                .fired
                .iter()
                .map(|report| (inner.rule_id(report), report.severity))
                .collect();
            for &(id, _) in &fired {
                if let Some(minutes) = inner.rule_minutes.get_mut(id as usize) {
                    minutes.insert(minute);
                }
            }
            let is_new = !inner.records.contains_key(conclusion.entity);
            if is_new {
                // Only a new entity's id is copied: this runs for every
                // decision, and most are about entities seen before.
                inner
                    .records
                    .insert(conclusion.entity.clone(), Default::default());
            }
            let Some(record) = inner.records.get_mut(conclusion.entity) else {
                continue;
            };
            let before = record.last_minute();
            while record
                .marks
                .front()
                .is_some_and(|m| m.minute < prune_before)
            {
                record.marks.pop_front();
            }
            let mark = record.mark_mut(minute);
            mark.decisions += 1;
            mark.live = mark.live.max(conclusion.live);
            mark.shadow = mark.shadow.max(conclusion.shadow);
            for (id, severity) in fired {
                match mark.fired.iter_mut().find(|(r, _)| *r == id) {
                    Some((_, strongest)) => *strongest = (*strongest).max(severity),
                    None => mark.fired.push((id, severity)),
                }
            }
            let after = record.last_minute();
            if after != before
                && let Some(after) = after
            {
                inner
                    .last_seen
                    .entry(after)
                    .or_default()
                    .push(conclusion.entity.clone());
            }
            if is_new {
                inner.evict(self.limits.max_entities);
            }
        }
    }

    /// Keep a truth (unless one labelled later is kept for its subject).
    /// For an entity, returns how many of the decisions the book still
    /// holds concerned it; for an event id, 0 (the book keeps entities'
    /// conclusions, not events': the decision log joins event ids).
    pub fn record(&self, label: &GroundTruth) -> u64 {
        let kept = KeptTruth {
            truth: label.truth,
            source: label.source,
            labelled_at_ms: label.labelled_at_ms,
            reference: label.reference.clone(),
        };
        let mut inner = self.lock();
        let capacity = self.limits.max_truths;
        match &label.subject {
            LabelSubject::Entity(entity) => {
                inner.entity_truths.put(entity.clone(), kept, capacity);
                let keep_from = inner.keep_from;
                inner.records.get(entity).map_or(0, |record| {
                    record
                        .in_range(keep_from, i64::MAX)
                        .map(|m| u64::from(m.decisions))
                        .sum()
                })
            }
            LabelSubject::Event(id) => {
                inner.event_truths.put(id.clone(), kept, capacity);
                0
            }
        }
    }

    /// The truth kept about `entity`.
    pub fn entity_truth(&self, entity: &Entity) -> Option<KeptTruth> {
        self.lock().entity_truths.get(entity).cloned()
    }

    /// The truth kept about the event `id`.
    pub fn event_truth(&self, id: &str) -> Option<KeptTruth> {
        self.lock().event_truths.get(&id.to_string()).cloned()
    }

    /// Live decisions, shadow decisions and each rule build that fired
    /// against the truth, over event times in `[from_ms, to_ms)` widened to
    /// whole minutes; `rule` keeps only that rule's builds. Costs one pass
    /// over the labelled entities and their marks in the range.
    pub fn accuracy(
        &self,
        from_ms: i64,
        to_ms: i64,
        positive: Severity,
        rule: Option<&str>,
    ) -> Accuracy {
        let inner = self.lock();
        let first = from_ms.div_euclid(MINUTE_MS).max(inner.keep_from);
        let last = to_ms.saturating_add(MINUTE_MS - 1).div_euclid(MINUTE_MS);
        let mut rows: Vec<u32> = (0..inner.rules.len() as u32)
            .filter(|&id| {
                let key = &inner.rules[id as usize];
                rule.is_none_or(|rule| *key.rule == *rule)
                    && first < last
                    && inner.rule_minutes[id as usize]
                        .range(first..last)
                        .next()
                        .is_some()
            })
            .collect();
        let mode_order = |mode: Mode| match mode {
            Mode::Enforce => 0,
            Mode::Shadow => 1,
            Mode::Disabled => 2,
        };
        rows.sort_by(|&a, &b| {
            let (a, b) = (&inner.rules[a as usize], &inner.rules[b as usize]);
            (&a.rule, a.candidate, mode_order(a.mode)).cmp(&(
                &b.rule,
                b.candidate,
                mode_order(b.mode),
            ))
        });
        let mut row_of: Vec<Option<usize>> = vec![None; inner.rules.len()];
        for (row, &id) in rows.iter().enumerate() {
            row_of[id as usize] = Some(row);
        }
        let mut by_rule = vec![Confusion::default(); rows.len()];
        let mut strongest = vec![Severity::Allow; rows.len()];

        let mut accuracy = Accuracy {
            positive_severity: positive,
            event_labels: inner.event_truths.len() as u64,
            ..Accuracy::default()
        };
        for (entity, (_, kept)) in &inner.entity_truths.by_key {
            let abusive = kept.truth == Truth::Abusive;
            accuracy.labelled_entities += 1;
            if abusive {
                accuracy.abusive += 1;
            } else {
                accuracy.benign += 1;
            }
            let mut joined = false;
            let (mut live, mut shadow) = (Severity::Allow, Severity::Allow);
            strongest.fill(Severity::Allow);
            let marks = inner
                .records
                .get(entity)
                .into_iter()
                .flat_map(|record| record.in_range(first, last));
            for mark in marks {
                joined = true;
                live = live.max(mark.live);
                shadow = shadow.max(mark.shadow);
                for &(id, severity) in &mark.fired {
                    if let Some(row) = row_of.get(id as usize).copied().flatten() {
                        strongest[row] = strongest[row].max(severity);
                    }
                }
            }
            if joined {
                accuracy.joined += 1;
            } else {
                accuracy.without_decisions += 1;
            }
            accuracy.live.add(joined && live >= positive, abusive);
            accuracy.shadow.add(joined && shadow >= positive, abusive);
            for (matrix, severity) in by_rule.iter_mut().zip(&strongest) {
                matrix.add(*severity >= positive, abusive);
            }
        }
        accuracy.rules = rows
            .iter()
            .zip(by_rule)
            .map(|(&id, matrix)| {
                let key = &inner.rules[id as usize];
                RuleAccuracy {
                    rule: key.rule.clone(),
                    mode: key.mode,
                    candidate: key.candidate,
                    matrix,
                }
            })
            .collect();
        accuracy
    }

    /// Forget conclusions older than the retention as of `watermark_ms`:
    /// entities whose last decision is older are dropped whole.
    pub fn sweep(&self, watermark_ms: i64) {
        let keep_from = watermark_ms
            .div_euclid(MINUTE_MS)
            .saturating_sub(self.limits.retention_minutes);
        let mut inner = self.lock();
        if keep_from <= inner.keep_from {
            return;
        }
        inner.keep_from = keep_from;
        let kept = inner.last_seen.split_off(&keep_from);
        let expired = std::mem::replace(&mut inner.last_seen, kept);
        for (minute, entities) in expired {
            for entity in entities {
                let current = inner.records.get(&entity).and_then(Record::last_minute);
                if current == Some(minute) {
                    inner.records.remove(&entity);
                }
            }
        }
        for minutes in &mut inner.rule_minutes {
            *minutes = minutes.split_off(&keep_from);
        }
    }

    /// Entities whose conclusions are held.
    pub fn entities_held(&self) -> usize {
        self.lock().records.len()
    }

    /// Minute marks held, over every entity.
    pub fn marks_held(&self) -> usize {
        self.lock().records.values().map(|r| r.marks.len()).sum()
    }

    /// Truths held: (about entities, about event ids).
    pub fn truths_held(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.entity_truths.len(), inner.event_truths.len())
    }
}

/// The entities a decision concluded something about, each once, the
/// actor first: what the live and shadow decisions and each rule that
/// fired concluded about it.
/// Whether `decision` allows live and in shadow with no rule firing, no
/// action and no label change.
fn concluded_nothing(decision: &Decision) -> bool {
    decision.outcome.severity == Severity::Allow
        && decision.outcome.actions.is_empty()
        && decision.label_changes.is_empty()
        && !decision.rules.iter().any(|r| r.fired())
        && decision.shadow.as_ref().is_none_or(|shadow| {
            shadow.outcome.severity == Severity::Allow
                && shadow.outcome.actions.is_empty()
                && shadow.label_changes.is_empty()
        })
}

fn conclusions(decision: &Decision) -> Vec<Conclusion<'_>> {
    let actor = &decision.event.actor;
    let no_changes: &[LabelChange] = &[];
    let shadow_changes = decision
        .shadow
        .as_ref()
        .map_or(no_changes, |s| &s.label_changes);
    let live_named = named(
        actor,
        decision
            .outcome
            .actions
            .iter()
            .map(|a| &a.entity)
            .chain(labelled(&decision.label_changes, None)),
    );
    let (shadow_severity, shadow_named) = match &decision.shadow {
        None => (decision.outcome.severity, live_named.clone()),
        // The shadow decision would also have made the live label changes.
        Some(shadow) => (
            shadow.outcome.severity,
            named(
                actor,
                shadow
                    .outcome
                    .actions
                    .iter()
                    .map(|a| &a.entity)
                    .chain(labelled(&decision.label_changes, None))
                    .chain(labelled(shadow_changes, None)),
            ),
        ),
    };

    let mut out = vec![Conclusion {
        entity: actor,
        live: Severity::Allow,
        shadow: Severity::Allow,
        fired: Vec::new(),
    }];
    fn entry<'a, 'b>(
        out: &'b mut Vec<Conclusion<'a>>,
        entity: &'a Entity,
    ) -> &'b mut Conclusion<'a> {
        let index = match out.iter().position(|c| c.entity == entity) {
            Some(index) => index,
            None => {
                out.push(Conclusion {
                    entity,
                    live: Severity::Allow,
                    shadow: Severity::Allow,
                    fired: Vec::new(),
                });
                out.len() - 1
            }
        };
        &mut out[index]
    }
    for entity in live_named {
        entry(&mut out, entity).live = decision.outcome.severity;
    }
    for entity in shadow_named {
        entry(&mut out, entity).shadow = shadow_severity;
    }
    for report in decision.rules.iter().filter(|r| r.fired()) {
        // A live rule's label changes are the decision's; a shadow rule's
        // are the shadow decision's.
        let changes = if report.mode == Mode::Shadow {
            shadow_changes
        } else {
            &decision.label_changes
        };
        let subjects = named(
            actor,
            report
                .actions
                .iter()
                .map(|a| &a.entity)
                .chain(labelled(changes, Some(&report.rule))),
        );
        for entity in subjects {
            entry(&mut out, entity).fired.push(report);
        }
    }
    out
}

/// The entities set labels name (those `rule` set, when given).
fn labelled<'a>(
    changes: &'a [LabelChange],
    rule: Option<&'a Arc<str>>,
) -> impl Iterator<Item = &'a Entity> {
    changes.iter().filter_map(move |change| match change {
        LabelChange::Set {
            entity, rule: by, ..
        } if rule.is_none_or(|rule| rule == by) => Some(entity),
        _ => None,
    })
}

/// `entities` once each, or the actor when they are none.
fn named<'a>(actor: &'a Entity, entities: impl Iterator<Item = &'a Entity>) -> Vec<&'a Entity> {
    let mut named: Vec<&Entity> = Vec::new();
    for entity in entities {
        if !named.contains(&entity) {
            named.push(entity);
        }
    }
    if named.is_empty() {
        named.push(actor);
    }
    named
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{EnforcementAction, Outcome, ShadowDecision};
    use crate::event::Event;
    use crate::verdict::Action;

    fn report(
        rule: &str,
        mode: Mode,
        severity: Severity,
        actions: &[(Action, &Entity)],
    ) -> RuleReport {
        RuleReport {
            rule: Arc::from(rule),
            version: Arc::from("1"),
            sha256: Arc::from("00"),
            mode,
            weight: 1.0,
            veto: false,
            severity,
            score: 0.0,
            reasons: Vec::new(),
            actions: actions
                .iter()
                .map(|(action, entity)| EnforcementAction {
                    action: *action,
                    entity: (*entity).clone(),
                })
                .collect(),
            fuel_used: 0,
            elapsed_us: 0,
            error: None,
            failed_closed: false,
            skipped: false,
            candidate: false,
            evidence: Vec::new(),
        }
    }

    /// A decision by `actor` at `at_ms`: live `live` with `actions` on the
    /// entities named, and a shadow decision at `shadow` if given.
    fn decision(
        id: &str,
        actor: &str,
        at_ms: i64,
        live: Severity,
        acted_on: &[&Entity],
        shadow: Option<Severity>,
        rules: Vec<RuleReport>,
    ) -> Decision {
        let outcome = |severity| Outcome {
            severity,
            score: 0.0,
            actions: acted_on
                .iter()
                .map(|entity| EnforcementAction {
                    action: Action::BlockAccount,
                    entity: (*entity).clone(),
                })
                .collect(),
        };
        Decision {
            id: Decision::id_for(id),
            event: Arc::new(Event::new(
                id,
                "message.sent",
                at_ms,
                Entity::account(actor),
            )),
            outcome: outcome(live),
            rules,
            label_changes: Vec::new(),
            shadow: shadow.map(|s| ShadowDecision {
                outcome: outcome(s),
                label_changes: Vec::new(),
                differs: s != live,
            }),
            policy_version: Arc::from("p"),
        }
    }

    fn truth(entity: &Entity, truth: Truth, at: i64) -> GroundTruth {
        GroundTruth {
            subject: LabelSubject::Entity(entity.clone()),
            truth,
            source: LabelSource::Review,
            labelled_at_ms: at,
            reference: String::new(),
        }
    }

    const M: i64 = MINUTE_MS;

    #[test]
    fn an_entity_acted_on_counts_as_positive_and_a_reporter_does_not() {
        let book = GroundTruthBook::default();
        let spammer = Entity::account("spammer");
        let reporter = Entity::account("reporter");
        let quiet = Entity::account("quiet");
        // The reporter's event blocks the spammer: the decision acts on the
        // spammer; the reporter is marked, at allow.
        book.observe(&decision(
            "r1",
            "reporter",
            M,
            Severity::Block,
            &[&spammer],
            Some(Severity::Block),
            vec![report(
                "report-velocity",
                Mode::Enforce,
                Severity::Block,
                &[(Action::BlockAccount, &spammer)],
            )],
        ));
        // A shadow rule alone would limit the quiet account.
        book.observe(&decision(
            "q1",
            "quiet",
            2 * M,
            Severity::Allow,
            &[],
            Some(Severity::Limit),
            vec![report("stranger-spray", Mode::Shadow, Severity::Limit, &[])],
        ));
        assert_eq!(book.record(&truth(&spammer, Truth::Abusive, 1)), 1);
        assert_eq!(book.record(&truth(&reporter, Truth::Benign, 1)), 1);
        assert_eq!(book.record(&truth(&quiet, Truth::Benign, 1)), 1);
        book.record(&truth(&Entity::account("never-seen"), Truth::Abusive, 1));

        let all = book.accuracy(i64::MIN, i64::MAX, Severity::Limit, None);
        assert_eq!(
            (all.labelled_entities, all.joined, all.without_decisions),
            (4, 3, 1)
        );
        assert_eq!((all.abusive, all.benign), (2, 2));
        let counts = |m: &Confusion| (m.tp, m.fp, m.fn_, m.tn);
        // Live: spammer tp, reporter tn, quiet tn, never-seen fn.
        assert_eq!(counts(&all.live), (1, 0, 1, 2));
        // Shadow: the quiet account is a false positive.
        assert_eq!(counts(&all.shadow), (1, 1, 1, 1));
        let names: Vec<&str> = all.rules.iter().map(|r| &*r.rule).collect();
        assert_eq!(names, ["report-velocity", "stranger-spray"]);
        assert_eq!(counts(&all.rules[0].matrix), (1, 0, 1, 2));
        assert_eq!(counts(&all.rules[1].matrix), (0, 1, 2, 1));

        // At block, the shadow rule's limit is no prediction.
        let strict = book.accuracy(i64::MIN, i64::MAX, Severity::Block, None);
        assert_eq!(counts(&strict.shadow), (1, 0, 1, 2));
        // The first minute only: the quiet account had no decision in it.
        let first = book.accuracy(M, 2 * M, Severity::Limit, None);
        assert_eq!((first.joined, first.without_decisions), (2, 2));
        assert_eq!(first.rules.len(), 1, "stranger-spray did not fire then");
        // One rule only.
        let one = book.accuracy(i64::MIN, i64::MAX, Severity::Limit, Some("stranger-spray"));
        assert_eq!(one.rules.len(), 1);
        assert_eq!(counts(&one.live), counts(&all.live));
    }

    #[test]
    fn the_latest_truth_wins_and_truths_are_bounded() {
        let book = GroundTruthBook::new(BookLimits {
            max_truths: 3,
            ..BookLimits::default()
        });
        let a = Entity::account("a");
        book.record(&truth(&a, Truth::Abusive, 10));
        book.record(&truth(&a, Truth::Benign, 5));
        assert_eq!(
            book.entity_truth(&a).unwrap().truth,
            Truth::Abusive,
            "older loses"
        );
        book.record(&truth(&a, Truth::Benign, 20));
        assert_eq!(book.entity_truth(&a).unwrap().truth, Truth::Benign);
        for n in 0..5 {
            book.record(&truth(
                &Entity::account(format!("e{n}")),
                Truth::Abusive,
                30,
            ));
        }
        assert_eq!(book.truths_held().0, 3);
        assert!(
            book.entity_truth(&a).is_none(),
            "the oldest written went first"
        );
        assert!(book.entity_truth(&Entity::account("e4")).is_some());
        let event = GroundTruth {
            subject: LabelSubject::Event("evt-1".into()),
            ..truth(&a, Truth::Benign, 1)
        };
        assert_eq!(book.record(&event), 0);
        assert_eq!(book.truths_held(), (3, 1));
        assert_eq!(book.event_truth("evt-1").unwrap().truth, Truth::Benign);
    }

    #[test]
    fn conclusions_are_bounded_by_entities_and_by_retention() {
        let book = GroundTruthBook::new(BookLimits {
            retention_minutes: 10,
            max_entities: 5,
            max_truths: 100,
        });
        // Eight accounts, one a minute: the three oldest are dropped.
        for n in 0..8 {
            book.observe(&decision(
                &format!("e{n}"),
                &format!("a{n}"),
                n * M,
                Severity::Review,
                &[],
                None,
                Vec::new(),
            ));
        }
        assert_eq!(book.entities_held(), 5);
        assert_eq!(
            book.record(&truth(&Entity::account("a2"), Truth::Abusive, 1)),
            0
        );
        assert_eq!(
            book.record(&truth(&Entity::account("a3"), Truth::Abusive, 1)),
            1
        );

        // One account active every minute for an hour keeps about the
        // retention's worth of marks.
        for minute in 0..60 {
            book.observe(&decision(
                &format!("busy{minute}"),
                "busy",
                minute * M,
                Severity::Review,
                &[],
                None,
                Vec::new(),
            ));
        }
        let busy = Entity::account("busy");
        assert!(book.marks_held() <= 5 * 11, "{}", book.marks_held());
        // A sweep at minute 59 forgets every entity last seen before
        // minute 49, and reads ignore older marks.
        book.sweep(59 * M);
        assert_eq!(book.entities_held(), 1);
        assert_eq!(book.record(&truth(&busy, Truth::Abusive, 1)), 11);
        let old = book.accuracy(0, 40 * M, Severity::Review, None);
        assert_eq!(old.joined, 0);
        let recent = book.accuracy(50 * M, 60 * M, Severity::Review, None);
        assert_eq!(recent.joined, 1);
        assert_eq!(recent.live.tp, 1);
        // A decision older than the retention is not marked.
        book.observe(&decision(
            "late",
            "late",
            0,
            Severity::Block,
            &[],
            None,
            Vec::new(),
        ));
        assert_eq!(book.entities_held(), 1);
    }

    #[test]
    fn shadow_and_rule_marks_follow_whom_they_name() {
        let book = GroundTruthBook::default();
        let group = Entity::group("g");
        // Live: review, no one named (the actor). Shadow: a candidate bans
        // the group.
        let mut candidate = report(
            "invite-link-abuse",
            Mode::Shadow,
            Severity::Block,
            &[(Action::BanGroup, &group)],
        );
        candidate.candidate = true;
        let mut d = decision(
            "e",
            "joiner",
            0,
            Severity::Review,
            &[],
            Some(Severity::Block),
            vec![
                report("invite-link-abuse", Mode::Enforce, Severity::Review, &[]),
                candidate,
            ],
        );
        d.shadow.as_mut().unwrap().outcome.actions = vec![EnforcementAction {
            action: Action::BanGroup,
            entity: group.clone(),
        }];
        book.observe(&d);
        book.record(&truth(&group, Truth::Abusive, 1));
        book.record(&truth(&Entity::account("joiner"), Truth::Benign, 1));
        let report = book.accuracy(i64::MIN, i64::MAX, Severity::Review, None);
        // Live reviewed the joiner (a false positive) and missed the group.
        assert_eq!((report.live.tp, report.live.fp, report.live.fn_), (0, 1, 1));
        // Shadow: the group is banned; the joiner is no longer named.
        assert_eq!(
            (report.shadow.tp, report.shadow.fp, report.shadow.tn),
            (1, 0, 1)
        );
        assert_eq!(report.rules.len(), 2);
        assert!(!report.rules[0].candidate && report.rules[1].candidate);
        assert_eq!(report.rules[1].matrix.tp, 1);
        assert_eq!(report.rules[0].matrix.fp, 1);
    }
}
