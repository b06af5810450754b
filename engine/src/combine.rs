//! The combiner: many rules' verdicts, under the policy, to one outcome.
//!
//! * **Highest severity**: the most severe verdict wins; the score is the
//!   highest weighted score.
//! * **Weighted score**: weighted scores combine as independent evidence,
//!   `1 - Π(1 - min(1, weight × score))`, so two rules at 0.5 give 0.75 and
//!   a rule at 0 changes nothing; the policy's thresholds map the result to
//!   a severity.
//!
//! In both, a veto rule's block stands on its own, a fail-closed rule's
//! error raises the outcome to the policy's `fail_closed_severity`, and the
//! actions are those recommended by the rules that fired which the final
//! severity carries out (see [`EnforcementAction::min_severity`]).
//!
//! Under weighted scores, corroborating rules can raise a decision above
//! every single verdict: two limits at 0.8 combine to 0.96, a block. Its
//! actions are still only what the rules recommended, so such a decision
//! may carry no action of its own severity; the services acting on
//! decisions then apply their default for that severity. Under highest
//! severity, a decision's severity is always some rule's own.

use crate::decision::{EnforcementAction, Outcome, RuleReport};
use crate::policy::{Policy, Strategy};
use crate::verdict::Severity;

/// Combine these rules' reports under `policy`. The reports' modes are not
/// consulted: the caller chooses which reports take part.
pub fn combine<'a>(policy: &Policy, reports: impl IntoIterator<Item = &'a RuleReport>) -> Outcome {
    let mut severity = Severity::Allow;
    let mut highest_score: f64 = 0.0;
    let mut remaining_doubt = 1.0;
    let mut floor = Severity::Allow;
    let mut actions: Vec<EnforcementAction> = Vec::new();

    for report in reports {
        if report.failed_closed {
            floor = floor.max(policy.fail_closed_severity);
            continue;
        }
        if report.error.is_some() {
            continue;
        }
        let weighted = (report.weight * report.score).clamp(0.0, 1.0);
        highest_score = highest_score.max(weighted);
        remaining_doubt *= 1.0 - weighted;
        severity = severity.max(report.severity);
        if report.veto && report.severity == Severity::Block {
            floor = Severity::Block;
        }
        if report.fired() {
            actions.extend(report.actions.iter().cloned());
        }
    }

    let (severity, score) = match policy.strategy {
        Strategy::HighestSeverity => (severity, highest_score),
        Strategy::WeightedScore => {
            let score = 1.0 - remaining_doubt;
            (policy.thresholds.severity(score), score)
        }
    };
    let severity = severity.max(floor);
    actions.retain(|a| severity >= EnforcementAction::min_severity(a.action));
    actions.sort();
    actions.dedup();
    Outcome {
        severity,
        score,
        actions,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::event::Entity;
    use crate::policy::Mode;
    use crate::verdict::{Action, RuleError};

    fn report(severity: Severity, score: f64, actions: &[Action]) -> RuleReport {
        RuleReport {
            rule: Arc::from("r"),
            version: Arc::from("1"),
            sha256: Arc::from("00"),
            mode: Mode::Enforce,
            weight: 1.0,
            veto: false,
            severity,
            score,
            reasons: Vec::new(),
            actions: actions
                .iter()
                .map(|&action| EnforcementAction {
                    action,
                    entity: Entity::account("a"),
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

    fn failed(closed: bool) -> RuleReport {
        RuleReport {
            error: Some(RuleError::StackOverflow),
            failed_closed: closed,
            ..report(Severity::Allow, 0.0, &[])
        }
    }

    fn weighted() -> Policy {
        Policy::parse(
            "version = \"w\"\n[combine]\nstrategy = \"weighted_score\"\nreview = 0.4\nlimit = 0.7\nblock = 0.9\n",
        )
        .unwrap()
    }

    #[test]
    fn highest_severity_wins_and_actions_follow_it() {
        let outcome = combine(
            &Policy::default(),
            &[
                report(Severity::Review, 0.5, &[Action::BlockAccount]),
                report(
                    Severity::Limit,
                    0.8,
                    &[Action::LimitForwarding, Action::LimitForwarding],
                ),
                report(Severity::Allow, 0.1, &[Action::RemoveMedia]),
            ],
        );
        assert_eq!(outcome.severity, Severity::Limit);
        assert_eq!(outcome.score, 0.8);
        // Blocking needs a block decision; the allow verdict's action is
        // not a recommendation at all; duplicates collapse.
        let actions: Vec<Action> = outcome.actions.iter().map(|a| a.action).collect();
        assert_eq!(actions, [Action::LimitForwarding]);
    }

    #[test]
    fn weighted_scores_combine_as_independent_evidence() {
        let policy = weighted();
        let two_halves = combine(
            &policy,
            &[
                report(Severity::Review, 0.5, &[]),
                report(Severity::Review, 0.5, &[]),
            ],
        );
        assert!((two_halves.score - 0.75).abs() < 1e-12);
        assert_eq!(two_halves.severity, Severity::Limit);

        let mut heavy = report(Severity::Review, 0.5, &[Action::BlockAccount]);
        heavy.weight = 2.0;
        let outcome = combine(&policy, &[heavy]);
        assert_eq!((outcome.severity, outcome.score), (Severity::Block, 1.0));
        assert_eq!(outcome.actions.len(), 1);

        // A lone block verdict with a modest score is not a block here...
        let lone = combine(
            &policy,
            &[report(Severity::Block, 0.6, &[Action::BlockAccount])],
        );
        assert_eq!(lone.severity, Severity::Review);
        assert!(lone.actions.is_empty());
        // ...unless the rule holds a veto.
        let mut veto = report(Severity::Block, 0.6, &[Action::BlockAccount]);
        veto.veto = true;
        let vetoed = combine(&policy, &[veto]);
        assert_eq!(vetoed.severity, Severity::Block);
        assert_eq!(vetoed.actions.len(), 1);
    }

    #[test]
    fn failures_open_add_nothing_and_closed_raise_the_floor() {
        let policy = Policy::default();
        let open = combine(&policy, &[failed(false)]);
        assert_eq!((open.severity, open.score), (Severity::Allow, 0.0));
        let closed = combine(&policy, &[failed(true), report(Severity::Allow, 0.0, &[])]);
        assert_eq!(closed.severity, Severity::Review);
        let weighted_closed = combine(&weighted(), &[failed(true)]);
        assert_eq!(weighted_closed.severity, Severity::Review);
    }

    #[test]
    fn nothing_to_combine_is_allow() {
        let outcome = combine(&weighted(), &[]);
        assert_eq!(outcome.severity, Severity::Allow);
        assert_eq!(outcome.score, 0.0);
    }
}
