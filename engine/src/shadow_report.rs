//! The live shadow comparison: every decision the pipeline makes is tallied
//! by the minute of its event time (how its live and shadow outcomes
//! compare, and what each rule build that took part did and cost), so that
//! an analyst can ask, for any time range the ledger still holds, what the
//! shadow rules would have changed: the agreement matrix of severities,
//! would-block and would-unblock counts, each build's fire rate and cost,
//! and sample disagreements with both decisions.
//!
//! Tallies are sums, so a report over a range is the sum of its minutes,
//! and the ledger's memory is bounded by its retention, not by traffic.
//! Samples are the first few disagreements of each minute.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::accuracy::Accuracy;
use crate::decision::{Decision, RuleReport};
use crate::policy::Mode;
use crate::verdict::{Action, Severity};

/// Minutes of event time the ledger keeps unless told otherwise: a day.
pub const DEFAULT_RETENTION_MINUTES: i64 = 24 * 60;

/// Disagreeing decisions kept per minute.
pub const SAMPLES_PER_MINUTE: usize = 8;

const MINUTE_MS: i64 = 60_000;

/// What one build of one rule did and cost in a range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BuildTally {
    /// The rule.
    pub rule: Arc<str>,
    /// The build.
    pub sha256: Arc<str>,
    /// The mode it ran in.
    pub mode: Mode,
    /// Whether it ran as a candidate.
    pub candidate: bool,
    /// Events it was routed (called or skipped by its guards).
    pub events: u64,
    /// Of those, calls skipped because no guard held.
    pub skipped: u64,
    /// Calls that produced no verdict.
    pub errors: u64,
    /// Verdicts by severity: allow, review, limit, block.
    pub verdicts: [u64; 4],
    /// Fuel used by its calls.
    pub fuel: u64,
    /// Time its calls took, in microseconds.
    pub elapsed_us: u64,
}

impl BuildTally {
    fn empty(report: &RuleReport) -> Self {
        BuildTally {
            rule: report.rule.clone(),
            sha256: report.sha256.clone(),
            mode: report.mode,
            candidate: report.candidate,
            events: 0,
            skipped: 0,
            errors: 0,
            verdicts: [0; 4],
            fuel: 0,
            elapsed_us: 0,
        }
    }

    /// Verdicts above allow.
    pub fn fired(&self) -> u64 {
        self.verdicts[1..].iter().sum()
    }
}

/// How often one action type was decided live, in shadow, or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ActionAgreement {
    /// The action type.
    pub action: Action,
    /// Decisions carrying it live and in shadow.
    pub both: u64,
    /// Decisions carrying it live only: the shadow rules would drop it.
    pub live_only: u64,
    /// Decisions carrying it in shadow only: the shadow rules would add it.
    pub shadow_only: u64,
}

/// The comparison over a range of event time.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ShadowReport {
    /// The range, as whole minutes: from (inclusive) and to (exclusive),
    /// Unix milliseconds.
    pub from_ms: i64,
    /// See `from_ms`.
    pub to_ms: i64,
    /// Decisions made.
    pub decisions: u64,
    /// Of those, decisions with a shadow decision (a shadow rule or
    /// candidate took part).
    pub with_shadow: u64,
    /// Decisions whose shadow severity or actions differ from the live.
    pub disagreements: u64,
    /// Live severity (row) against shadow severity (column), allow to
    /// block; a decision without a shadow decision counts on the diagonal.
    pub matrix: [[u64; 4]; 4],
    /// Decisions the shadow rules would have made a block that are not.
    pub would_block: u64,
    /// Blocks the shadow rules would not have made.
    pub would_unblock: u64,
    /// Each action type decided live or in shadow, by type.
    pub actions: Vec<ActionAgreement>,
    /// Each build that took part, by rule, then build.
    pub builds: Vec<BuildTally>,
    /// Disagreeing decisions, oldest first.
    #[serde(skip)]
    pub samples: Vec<Arc<Decision>>,
    /// Live and shadow decisions against ground truth over the same
    /// minutes (filled by the pipeline from its ground-truth book).
    pub accuracy: Accuracy,
}

#[derive(Clone, Default)]
struct Minute {
    decisions: u64,
    with_shadow: u64,
    disagreements: u64,
    matrix: [[u64; 4]; 4],
    would_block: u64,
    would_unblock: u64,
    actions: Vec<ActionAgreement>,
    /// A handful of builds: a scan beats a map.
    builds: Vec<BuildTally>,
    samples: Vec<Arc<Decision>>,
}

/// The ledger, shared by every evaluation.
pub struct ShadowLedger {
    minutes: Mutex<BTreeMap<i64, Minute>>,
    retention_minutes: i64,
}

impl Default for ShadowLedger {
    fn default() -> Self {
        ShadowLedger::new(DEFAULT_RETENTION_MINUTES)
    }
}

fn index(severity: Severity) -> usize {
    match severity {
        Severity::Allow => 0,
        Severity::Review => 1,
        Severity::Limit => 2,
        Severity::Block => 3,
    }
}

impl ShadowLedger {
    /// A ledger keeping `retention_minutes` of event time.
    pub fn new(retention_minutes: i64) -> Self {
        ShadowLedger {
            minutes: Mutex::new(BTreeMap::new()),
            retention_minutes: retention_minutes.max(1),
        }
    }

    /// Tally one decision.
    pub fn record(&self, decision: &Arc<Decision>) {
        let live = decision.outcome.severity;
        let (shadow, differs) = match &decision.shadow {
            Some(shadow) => (shadow.outcome.severity, shadow.differs),
            None => (live, false),
        };
        let minute = decision.event.occurred_at_ms.div_euclid(MINUTE_MS);
        let mut minutes = self.minutes.lock().unwrap_or_else(|e| e.into_inner());
        let tally = minutes.entry(minute).or_default();
        tally.decisions += 1;
        tally.with_shadow += u64::from(decision.shadow.is_some());
        tally.matrix[index(live)][index(shadow)] += 1;
        tally.would_block += u64::from(live < Severity::Block && shadow == Severity::Block);
        tally.would_unblock += u64::from(live == Severity::Block && shadow < Severity::Block);
        let types = |outcome: &crate::decision::Outcome| -> Vec<Action> {
            let mut types: Vec<Action> = outcome.actions.iter().map(|a| a.action).collect();
            types.sort();
            types.dedup();
            types
        };
        let live_types = types(&decision.outcome);
        let shadow_types = decision
            .shadow
            .as_ref()
            .map_or_else(|| live_types.clone(), |s| types(&s.outcome));
        let mut union = live_types.clone();
        union.extend(shadow_types.iter().copied());
        union.sort();
        union.dedup();
        for action in union {
            let agreement = agreement_for(&mut tally.actions, action);
            match (live_types.contains(&action), shadow_types.contains(&action)) {
                (true, true) => agreement.both += 1,
                (true, false) => agreement.live_only += 1,
                _ => agreement.shadow_only += 1,
            }
        }
        if differs {
            tally.disagreements += 1;
            if tally.samples.len() < SAMPLES_PER_MINUTE {
                tally.samples.push(decision.clone());
            }
        }
        for report in &decision.rules {
            let build = match tally.builds.iter_mut().position(|b| {
                b.sha256 == report.sha256
                    && b.mode == report.mode
                    && b.candidate == report.candidate
            }) {
                Some(i) => &mut tally.builds[i],
                None => {
                    tally.builds.push(BuildTally::empty(report));
                    tally.builds.last_mut().expect("just pushed")
                }
            };
            build.events += 1;
            build.skipped += u64::from(report.skipped);
            build.errors += u64::from(report.error.is_some());
            build.verdicts[index(report.severity)] += 1;
            build.fuel += report.fuel_used;
            build.elapsed_us += report.elapsed_us;
        }
    }

    /// The comparison over event times in `[from_ms, to_ms)`, widened to
    /// whole minutes and narrowed to the minutes held (so `i64::MIN` and
    /// `i64::MAX` ask for everything), with at most `max_samples`
    /// disagreements. `rule` keeps only that rule's builds (the counts of
    /// decisions stay whole).
    pub fn report(
        &self,
        from_ms: i64,
        to_ms: i64,
        rule: Option<&str>,
        max_samples: usize,
    ) -> ShadowReport {
        let minutes = self.minutes.lock().unwrap_or_else(|e| e.into_inner());
        let held = |end: Option<(&i64, &Minute)>| end.map(|(minute, _)| *minute);
        let (Some(oldest), Some(newest)) = (
            held(minutes.first_key_value()),
            held(minutes.last_key_value()),
        ) else {
            return ShadowReport::default();
        };
        let first = from_ms.div_euclid(MINUTE_MS).max(oldest);
        let last = to_ms
            .saturating_add(MINUTE_MS - 1)
            .div_euclid(MINUTE_MS)
            .min(newest + 1);
        let mut report = ShadowReport {
            from_ms: first * MINUTE_MS,
            to_ms: last.max(first) * MINUTE_MS,
            ..ShadowReport::default()
        };
        for (_, tally) in minutes.range(first..last.max(first)) {
            report.decisions += tally.decisions;
            report.with_shadow += tally.with_shadow;
            report.disagreements += tally.disagreements;
            for (row, counts) in report.matrix.iter_mut().zip(&tally.matrix) {
                for (cell, count) in row.iter_mut().zip(counts) {
                    *cell += count;
                }
            }
            report.would_block += tally.would_block;
            report.would_unblock += tally.would_unblock;
            for minute in &tally.actions {
                let total = agreement_for(&mut report.actions, minute.action);
                total.both += minute.both;
                total.live_only += minute.live_only;
                total.shadow_only += minute.shadow_only;
            }
            for build in &tally.builds {
                if rule.is_some_and(|rule| *build.rule != *rule) {
                    continue;
                }
                merge(&mut report.builds, build);
            }
            let room = max_samples.saturating_sub(report.samples.len());
            report
                .samples
                .extend(tally.samples.iter().take(room).cloned());
        }
        report.actions.sort_by_key(|a| a.action);
        report.builds.sort_by(|a, b| {
            (&a.rule, a.candidate, &a.sha256).cmp(&(&b.rule, b.candidate, &b.sha256))
        });
        report
    }

    /// Forget the minutes older than the retention, as of `watermark_ms`.
    pub fn sweep(&self, watermark_ms: i64) {
        let keep_from = watermark_ms.div_euclid(MINUTE_MS) - self.retention_minutes;
        let mut minutes = self.minutes.lock().unwrap_or_else(|e| e.into_inner());
        *minutes = minutes.split_off(&keep_from);
    }

    /// How many minutes are held.
    pub fn minutes_held(&self) -> usize {
        self.minutes.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// The tally of `action` in `actions`, added if missing.
fn agreement_for(actions: &mut Vec<ActionAgreement>, action: Action) -> &mut ActionAgreement {
    let index = match actions.iter().position(|a| a.action == action) {
        Some(index) => index,
        None => {
            actions.push(ActionAgreement {
                action,
                both: 0,
                live_only: 0,
                shadow_only: 0,
            });
            actions.len() - 1
        }
    };
    &mut actions[index]
}

fn merge(builds: &mut Vec<BuildTally>, build: &BuildTally) {
    let same = |b: &&mut BuildTally| {
        b.sha256 == build.sha256 && b.mode == build.mode && b.candidate == build.candidate
    };
    match builds.iter_mut().find(same) {
        Some(total) => {
            total.events += build.events;
            total.skipped += build.skipped;
            total.errors += build.errors;
            for (total, count) in total.verdicts.iter_mut().zip(build.verdicts) {
                *total += count;
            }
            total.fuel += build.fuel;
            total.elapsed_us += build.elapsed_us;
        }
        None => builds.push(build.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{Outcome, ShadowDecision};
    use crate::event::{Entity, Event};

    fn decision(id: &str, at_ms: i64, live: Severity, shadow: Option<Severity>) -> Arc<Decision> {
        let outcome = |severity| Outcome {
            severity,
            score: 0.0,
            actions: Vec::new(),
        };
        Arc::new(Decision {
            id: Decision::id_for(id),
            event: Arc::new(Event::new(id, "message.sent", at_ms, Entity::account("a"))),
            outcome: outcome(live),
            rules: Vec::new(),
            label_changes: Vec::new(),
            shadow: shadow.map(|s| ShadowDecision {
                outcome: outcome(s),
                label_changes: Vec::new(),
                differs: s != live,
            }),
            policy_version: Arc::from("p"),
        })
    }

    #[test]
    fn a_report_sums_the_minutes_of_its_range() {
        let ledger = ShadowLedger::new(60);
        let minute = |m: i64| m * MINUTE_MS;
        ledger.record(&decision("a", minute(1), Severity::Allow, None));
        ledger.record(&decision(
            "b",
            minute(1) + 5,
            Severity::Allow,
            Some(Severity::Block),
        ));
        ledger.record(&decision(
            "c",
            minute(2),
            Severity::Block,
            Some(Severity::Review),
        ));
        ledger.record(&decision(
            "d",
            minute(3),
            Severity::Review,
            Some(Severity::Review),
        ));

        let all = ledger.report(i64::MIN, i64::MAX, None, 10);
        assert_eq!((all.from_ms, all.to_ms), (minute(1), minute(4)));
        assert_eq!(
            (all.decisions, all.with_shadow, all.disagreements),
            (4, 3, 2)
        );
        assert_eq!((all.would_block, all.would_unblock), (1, 1));
        assert_eq!(all.matrix[0], [1, 0, 0, 1]);
        assert_eq!(all.matrix[3], [0, 1, 0, 0]);
        assert_eq!(all.matrix[1][1], 1);
        let ids: Vec<&str> = all.samples.iter().map(|d| &*d.event.id).collect();
        assert_eq!(ids, ["b", "c"]);

        // A range inside a minute is widened to it; one past the end is empty.
        let second = ledger.report(minute(2) + 10, minute(2) + 20, None, 10);
        assert_eq!(second.decisions, 1);
        assert_eq!(ledger.report(minute(9), minute(10), None, 10).decisions, 0);
        assert_eq!(ledger.report(i64::MIN, i64::MAX, None, 1).samples.len(), 1);
    }

    #[test]
    fn the_ledger_keeps_its_retention_and_a_few_samples_a_minute() {
        let ledger = ShadowLedger::new(10);
        for n in 0..100 {
            let at = n * MINUTE_MS / 4;
            ledger.record(&decision(
                &format!("e{n}"),
                at,
                Severity::Allow,
                Some(Severity::Limit),
            ));
        }
        assert_eq!(ledger.minutes_held(), 25);
        let report = ledger.report(0, MINUTE_MS, None, 100);
        assert_eq!(report.disagreements, 4);
        ledger.sweep(25 * MINUTE_MS);
        assert_eq!(ledger.minutes_held(), 10, "older minutes are forgotten");
        for n in 0..(SAMPLES_PER_MINUTE as i64 + 5) {
            ledger.record(&decision(
                &format!("s{n}"),
                30 * MINUTE_MS,
                Severity::Allow,
                Some(Severity::Block),
            ));
        }
        let busy = ledger.report(30 * MINUTE_MS, 31 * MINUTE_MS, None, 100);
        assert_eq!(busy.disagreements, SAMPLES_PER_MINUTE as u64 + 5);
        assert_eq!(busy.samples.len(), SAMPLES_PER_MINUTE);
    }
}
