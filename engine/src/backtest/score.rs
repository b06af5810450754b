//! Scoring replays against the labels: confusion matrices of events and
//! entities, the precision/recall curve, score distributions, each rule on
//! its own and with the others, and where a candidate and a baseline part.
//!
//! An event counts as acted on when its decision reaches the positive
//! severity. An entity counts as acted on when a decision at the positive
//! severity carried an action on it. An entity's label comes from the
//! entity truth file when it names the entity, and otherwise from its own
//! events: abusive when any event it acted in is labelled abusive. Events
//! whose id repeats an earlier one are judged once, as the engine judges
//! them once.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::input::{EntityTruth, Truth};
use super::replay::Replay;
use super::report::{
    ClassOutcome, Comparison, Confusion, CurvePoint, Disagreement, EntitySplit, RuleStats,
    RunReport, SCORE_BINS, ScoreDistribution, SeverityMetrics, Side, ratio,
};
use crate::event::{Entity, Event};
use crate::verdict::Severity;

/// At most this many points on a precision/recall curve; with more
/// distinct scores, thresholds are taken at evenly spaced ranks.
pub const MAX_CURVE_POINTS: usize = 200;

/// The severities reports judge at.
const JUDGED: [Severity; 3] = [Severity::Review, Severity::Limit, Severity::Block];

/// What is known about each entity, and what each run did to it.
pub struct Entities {
    index: HashMap<Entity, usize>,
    labels: Vec<EntityLabel>,
}

struct EntityLabel {
    abusive: bool,
    class: String,
    /// Named by the entity truth file, so events do not change it.
    given: bool,
}

impl Entities {
    /// Every entity the truth file names, and every actor of `events`.
    pub fn label(events: &[Arc<Event>], truths: &[Truth], given: &[EntityTruth]) -> Self {
        let mut entities = Entities {
            index: HashMap::new(),
            labels: Vec::new(),
        };
        for truth in given {
            let label = EntityLabel {
                abusive: truth.abusive,
                class: truth
                    .class
                    .clone()
                    .unwrap_or_else(|| default_class(truth.abusive)),
                given: true,
            };
            entities.insert(truth.entity.clone(), label);
        }
        for (event, truth) in events.iter().zip(truths) {
            match entities.index.get(&event.actor) {
                Some(&at) => {
                    let label = &mut entities.labels[at];
                    if !label.given && truth.abusive && !label.abusive {
                        label.abusive = true;
                        label.class = truth.class_name().to_owned();
                    }
                }
                None => {
                    let label = EntityLabel {
                        abusive: truth.abusive,
                        class: truth.class_name().to_owned(),
                        given: false,
                    };
                    entities.insert(event.actor.clone(), label);
                }
            }
        }
        entities
    }

    /// Add an entity; a truth file naming one twice: the last line counts.
    fn insert(&mut self, entity: Entity, label: EntityLabel) {
        match self.index.entry(entity) {
            Entry::Occupied(at) => self.labels[*at.get()] = label,
            Entry::Vacant(slot) => {
                slot.insert(self.labels.len());
                self.labels.push(label);
            }
        }
    }

    /// How many entities are judged.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// How many are labelled abusive.
    pub fn abusive(&self) -> usize {
        self.labels.iter().filter(|l| l.abusive).count()
    }

    /// Each entity with its label, in the order of [`Entities::acted`]:
    /// the truth file's order, then each actor's first event.
    pub(super) fn labelled(&self) -> Vec<(&Entity, bool)> {
        let mut entities = vec![None; self.labels.len()];
        for (entity, &at) in &self.index {
            entities[at] = Some(entity);
        }
        entities
            .into_iter()
            .zip(&self.labels)
            .filter_map(|(entity, label)| Some((entity?, label.abusive)))
            .collect()
    }

    /// The position of `entity` in [`Entities::labelled`] and
    /// [`Entities::acted`].
    pub(super) fn position(&self, entity: &Entity) -> Option<usize> {
        self.index.get(entity).copied()
    }

    /// For each entity, the most severe decision that carried an action on
    /// it (`None`: never acted on).
    pub(super) fn acted(&self, replay: &Replay) -> Vec<Option<Severity>> {
        let mut acted = vec![None; self.labels.len()];
        for decided in &replay.decided {
            if decided.duplicate {
                continue;
            }
            for action in &decided.actions {
                if let Some(&at) = self.index.get(&action.entity) {
                    acted[at] = acted[at].max(Some(decided.severity));
                }
            }
        }
        acted
    }
}

fn default_class(abusive: bool) -> String {
    if abusive { "abusive" } else { "benign" }.to_owned()
}

/// The report of one replay.
pub fn run_report(
    replay: &Replay,
    truths: &[Truth],
    entities: &Entities,
    positive: Severity,
) -> RunReport {
    let judged = || {
        replay
            .decided
            .iter()
            .zip(truths)
            .filter(|(decided, _)| !decided.duplicate)
    };
    let mut severities = [0u64; 4];
    for (decided, _) in judged() {
        severities[decided.severity as usize] += 1;
    }
    let acted = entities.acted(replay);
    let events_at = |severity: Severity| {
        let mut confusion = Confusion::default();
        for (decided, truth) in judged() {
            confusion.add(decided.severity >= severity, truth.abusive);
        }
        confusion.metrics()
    };
    let entities_at = |severity: Severity| {
        let mut confusion = Confusion::default();
        for (label, acted) in entities.labels.iter().zip(&acted) {
            confusion.add(acted.is_some_and(|s| s >= severity), label.abusive);
        }
        confusion.metrics()
    };

    let mut classes: BTreeMap<&str, ClassOutcome> = BTreeMap::new();
    let mut bins: BTreeMap<&str, (bool, Vec<u64>)> = BTreeMap::new();
    for (decided, truth) in judged() {
        let class = class_entry(&mut classes, truth.class_name(), truth.abusive);
        class.events += 1;
        class.events_acted += u64::from(decided.severity >= positive);
        let (_, counts) = bins
            .entry(truth.class_name())
            .or_insert_with(|| (truth.abusive, vec![0; SCORE_BINS]));
        counts[score_bin(decided.score)] += 1;
    }
    for (label, acted) in entities.labels.iter().zip(&acted) {
        let class = class_entry(&mut classes, &label.class, label.abusive);
        class.entities += 1;
        class.entities_acted += u64::from(acted.is_some_and(|s| s >= positive));
    }

    let (rule_stats, overlaps) = rule_stats(replay, truths);
    RunReport {
        rules: replay.rules.clone(),
        policy_version: replay.policy_version.clone(),
        severities,
        events: events_at(positive),
        entities: entities_at(positive),
        by_severity: JUDGED
            .iter()
            .map(|&severity| SeverityMetrics {
                severity,
                events: events_at(severity),
                entities: entities_at(severity),
            })
            .collect(),
        pr_curve: pr_curve(judged().map(|(d, t)| (d.score, t.abusive))),
        score_distributions: bins
            .into_iter()
            .map(|(class, (abusive, bins))| ScoreDistribution {
                class: class.to_owned(),
                abusive,
                bins,
            })
            .collect(),
        classes: classes.into_values().collect(),
        rule_stats,
        overlaps,
    }
}

fn class_entry<'m, 'a>(
    classes: &'m mut BTreeMap<&'a str, ClassOutcome>,
    class: &'a str,
    abusive: bool,
) -> &'m mut ClassOutcome {
    classes.entry(class).or_insert_with(|| ClassOutcome {
        class: class.to_owned(),
        abusive,
        events: 0,
        events_acted: 0,
        entities: 0,
        entities_acted: 0,
    })
}

/// The bin of a score in `[0, 1]`; 1 falls in the last bin.
fn score_bin(score: f64) -> usize {
    ((score.clamp(0.0, 1.0) * SCORE_BINS as f64) as usize).min(SCORE_BINS - 1)
}

/// Precision and recall with "score at least t" as the prediction, for
/// each distinct positive score t (or [`MAX_CURVE_POINTS`] of them), in
/// increasing t.
pub fn pr_curve(scored: impl Iterator<Item = (f64, bool)>) -> Vec<CurvePoint> {
    let mut scored: Vec<(f64, bool)> = scored.collect();
    let positives = scored.iter().filter(|(_, abusive)| *abusive).count() as u64;
    let negatives = scored.len() as u64 - positives;
    // Highest first: walking down, each distinct score's prediction
    // adds every event at that score.
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut points = Vec::new();
    let (mut tp, mut fp) = (0u64, 0u64);
    let mut at = 0;
    while at < scored.len() {
        let threshold = scored[at].0;
        if threshold <= 0.0 {
            break;
        }
        while at < scored.len() && scored[at].0 == threshold {
            if scored[at].1 {
                tp += 1;
            } else {
                fp += 1;
            }
            at += 1;
        }
        let confusion = Confusion {
            tp,
            fp,
            fn_: positives - tp,
            tn: negatives - fp,
        };
        points.push(CurvePoint {
            threshold,
            precision: confusion.precision(),
            recall: confusion.recall(),
            confusion,
        });
    }
    points.reverse();
    thin(points)
}

fn thin(points: Vec<CurvePoint>) -> Vec<CurvePoint> {
    if points.len() <= MAX_CURVE_POINTS {
        return points;
    }
    let last = points.len() - 1;
    (0..MAX_CURVE_POINTS)
        .map(|n| points[n * last / (MAX_CURVE_POINTS - 1)])
        .collect()
}

fn rule_stats(replay: &Replay, truths: &[Truth]) -> (Vec<RuleStats>, Vec<Vec<u64>>) {
    let rules = replay.rules.len();
    let mut overlaps = vec![vec![0u64; rules]; rules];
    let mut confusion = vec![Confusion::default(); rules];
    let mut alone = vec![0u64; rules];
    let mut fired_here = vec![false; rules];
    for (decided, truth) in replay.decided.iter().zip(truths) {
        if decided.duplicate {
            continue;
        }
        fired_here.iter_mut().for_each(|f| *f = false);
        for fired in &decided.fired {
            fired_here[usize::from(fired.rule)] = true;
        }
        for (rule, &fired) in fired_here.iter().enumerate() {
            confusion[rule].add(fired, truth.abusive);
        }
        for a in &decided.fired {
            for b in &decided.fired {
                overlaps[usize::from(a.rule)][usize::from(b.rule)] += 1;
            }
        }
        if let [only] = decided.fired.as_slice() {
            alone[usize::from(only.rule)] += 1;
        }
    }
    let stats = replay
        .rules
        .iter()
        .enumerate()
        .map(|(rule, build)| {
            let counts = &replay.counts[rule];
            let fired = confusion[rule].tp + confusion[rule].fp;
            RuleStats {
                name: build.name.clone(),
                events: counts.events,
                fired,
                fire_rate: ratio(fired, counts.events),
                fired_on_abusive: confusion[rule].tp,
                events_metrics: confusion[rule].metrics(),
                errors: counts.errors,
                verdicts: counts.verdicts,
                fired_alone: alone[rule],
            }
        })
        .collect();
    (stats, overlaps)
}

/// Where the candidate and the baseline part, with the `top` most telling
/// event disagreements.
pub fn compare(
    candidate: &Replay,
    baseline: &Replay,
    events: &[Arc<Event>],
    truths: &[Truth],
    entities: &Entities,
    positive: Severity,
    top: usize,
) -> Comparison {
    let mut severity_matrix = [[0u64; 4]; 4];
    let mut differing = Vec::new();
    for (at, (c, b)) in candidate.decided.iter().zip(&baseline.decided).enumerate() {
        if c.duplicate {
            continue;
        }
        severity_matrix[c.severity as usize][b.severity as usize] += 1;
        if c.severity != b.severity || c.actions != b.actions {
            differing.push(at);
        }
    }
    let events_differ = differing.len() as u64;
    // Largest severity gap first, then the larger score gap, then the
    // earliest: a total order, so the pick is the same on every run.
    differing.sort_by(|&x, &y| {
        let gap = |at: usize| {
            (candidate.decided[at].severity as i8 - baseline.decided[at].severity as i8).abs()
        };
        let score_gap =
            |at: usize| (candidate.decided[at].score - baseline.decided[at].score).abs();
        gap(y)
            .cmp(&gap(x))
            .then(score_gap(y).total_cmp(&score_gap(x)))
            .then(x.cmp(&y))
    });
    let top_disagreements = differing
        .into_iter()
        .take(top)
        .map(|at| Disagreement {
            event_id: events[at].id.clone(),
            kind: events[at].kind.clone(),
            actor: events[at].actor.to_string(),
            occurred_at_ms: events[at].occurred_at_ms,
            class: truths[at].class_name().to_owned(),
            abusive: truths[at].abusive,
            candidate: side(candidate, at),
            baseline: side(baseline, at),
        })
        .collect();

    let acted_c = entities.acted(candidate);
    let acted_b = entities.acted(baseline);
    let mut candidate_only = EntitySplit::default();
    let mut baseline_only = EntitySplit::default();
    for ((label, c), b) in entities.labels.iter().zip(&acted_c).zip(&acted_b) {
        let c = c.is_some_and(|s| s >= positive);
        let b = b.is_some_and(|s| s >= positive);
        let split = match (c, b) {
            (true, false) => &mut candidate_only,
            (false, true) => &mut baseline_only,
            _ => continue,
        };
        if label.abusive {
            split.abusive += 1;
        } else {
            split.benign += 1;
        }
    }
    Comparison {
        events_differ,
        severity_matrix,
        candidate_only,
        baseline_only,
        top_disagreements,
    }
}

fn side(replay: &Replay, at: usize) -> Side {
    let decided = &replay.decided[at];
    Side {
        severity: decided.severity,
        score: decided.score,
        fired: decided
            .fired
            .iter()
            .map(|f| replay.rules[usize::from(f.rule)].name.clone())
            .collect(),
        actions: decided
            .actions
            .iter()
            .map(|a| format!("{} {}", a.action.name(), a.entity))
            .collect(),
    }
}
