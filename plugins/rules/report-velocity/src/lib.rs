//! Report velocity: an account or group that many different people report
//! in a day. One report proves little (people report by mistake, or to
//! settle scores), but many distinct reporters independently reaching for
//! the report button is one of the strongest signals a platform has, and it
//! is the only view into content on an encrypted platform, where the
//! reporters are the ones who saw it. Child-safety reports are rarer and
//! graver, so fewer of them are needed.
//!
//! The rule acts on the event's target (the account or group reported),
//! never on the reporter, and counts distinct reporters rather than reports
//! so that one account filing the same report again and again counts once.

use enforcer_sdk::*;

/// The rule.
pub struct ReportVelocity;

/// Distinct reporters in a day that send the target to review.
pub const REPORTERS_REVIEW: u64 = 5;
/// Distinct reporters in a day that limit the target and label it.
pub const REPORTERS_LIMIT: u64 = 15;
/// Distinct reporters in a day that block the account or ban the group.
pub const REPORTERS_BLOCK: u64 = 40;
/// Distinct child-safety reporters in a day that send the target to review.
pub const CHILD_SAFETY_REVIEW: u64 = 3;
/// Distinct child-safety reporters in a day that block or ban the target.
pub const CHILD_SAFETY_BLOCK: u64 = 10;
/// The label put on a target that is limited, blocked or banned.
pub const LABEL: &str = "reported-abuse";
/// How long the label lasts, in seconds (7 days).
pub const LABEL_TTL_SECONDS: u64 = 7 * DAY as u64;

impl Rule for ReportVelocity {
    fn manifest() -> Manifest {
        Manifest::new("report-velocity", "1.0.0")
            .on("report.filed")
            // Distinct accounts that reported each account or group.
            .counter(CounterSpec::distinct_actors(
                "reporters",
                &["report.filed"],
                DAY,
            ))
            // The same, for child-safety reports only.
            .counter(
                CounterSpec::distinct_actors("child_safety_reporters", &["report.filed"], DAY)
                    .only_if_text("reason", "child_safety"),
            )
            // Below both review levels the rule always allows.
            .guard(Guard::counter_at_least("reporters", DAY, REPORTERS_REVIEW).of_target())
            .guard(
                Guard::counter_at_least("child_safety_reporters", DAY, CHILD_SAFETY_REVIEW)
                    .of_target(),
            )
    }

    fn evaluate(event: &Event, state: &State) -> Verdict {
        let Some(target) = event.target() else {
            return Verdict::allow();
        };
        let reporters = state.counter(&Subject::Target, "reporters", DAY);
        let child_safety = state.counter(&Subject::Target, "child_safety_reporters", DAY);

        // Each signal gives a severity, a score and a reason; the verdict
        // takes the most severe, the highest score and every reason.
        let mut found: Vec<(Severity, f64, &str, String)> = Vec::new();
        let general = if reporters >= REPORTERS_BLOCK {
            Some((Severity::Block, 0.9, REPORTERS_BLOCK))
        } else if reporters >= REPORTERS_LIMIT {
            Some((Severity::Limit, 0.75, REPORTERS_LIMIT))
        } else if reporters >= REPORTERS_REVIEW {
            Some((Severity::Review, 0.5, REPORTERS_REVIEW))
        } else {
            None
        };
        if let Some((severity, score, threshold)) = general {
            found.push((
                severity,
                score,
                "report-velocity",
                format!(
                    "{} reported by {reporters} distinct accounts in the last day \
                     ({severity:?} at {threshold})",
                    describe(&target)
                ),
            ));
        }
        let child = if child_safety >= CHILD_SAFETY_BLOCK {
            Some((Severity::Block, 0.95, CHILD_SAFETY_BLOCK))
        } else if child_safety >= CHILD_SAFETY_REVIEW {
            Some((Severity::Review, 0.6, CHILD_SAFETY_REVIEW))
        } else {
            None
        };
        if let Some((severity, score, threshold)) = child {
            found.push((
                severity,
                score,
                "child-safety-reports",
                format!(
                    "{} reported for child safety by {child_safety} distinct accounts in the \
                     last day ({severity:?} at {threshold})",
                    describe(&target)
                ),
            ));
        }

        let Some(severity) = found.iter().map(|f| f.0).max() else {
            return Verdict::allow();
        };
        let score = found.iter().map(|f| f.1).fold(0.0, f64::max);
        let mut verdict = Verdict::new(severity, score);
        for (_, _, code, explanation) in found {
            verdict = verdict.reason(code, explanation);
        }
        if severity == Severity::Block {
            let ban = match target.kind {
                EntityKind::Account => Action::BlockAccount,
                EntityKind::Group => Action::BanGroup,
            };
            verdict = verdict.action(ban, Subject::Target);
        }
        if severity >= Severity::Limit {
            verdict = verdict.set_label(Subject::Target, LABEL, LABEL_TTL_SECONDS);
        }
        verdict
    }
}

/// `account x` or `group x`, for explanations.
fn describe(entity: &Entity) -> String {
    match entity.kind {
        EntityKind::Account => format!("account {}", entity.id),
        EntityKind::Group => format!("group {}", entity.id),
    }
}

rule!(ReportVelocity);

#[cfg(test)]
mod tests {
    use super::*;
    use enforcer_sdk::testing::{EventFixture, StateFixture, evaluate};

    fn report_of(target: Entity) -> EventFixture {
        EventFixture::new("report.filed")
            .actor(Entity::account("reporter"))
            .target(target)
            .text("reason", "spam")
    }

    fn report() -> EventFixture {
        report_of(Entity::account("reported"))
    }

    fn state(reporters: u64, child_safety: u64) -> StateFixture {
        StateFixture::new()
            .counter(Subject::Target, "reporters", DAY, reporters)
            .counter(Subject::Target, "child_safety_reporters", DAY, child_safety)
    }

    fn run(event: &EventFixture, state: &StateFixture) -> Verdict {
        evaluate::<ReportVelocity>(event, state)
    }

    fn codes(verdict: &Verdict) -> Vec<&str> {
        verdict.reasons.iter().map(|r| r.code.as_str()).collect()
    }

    fn label() -> Effect {
        Effect::SetLabel {
            subject: Subject::Target,
            label: "reported-abuse".to_string(),
            ttl_seconds: 604_800,
        }
    }

    fn on_target(action: Action) -> RecommendedAction {
        RecommendedAction {
            action,
            subject: Subject::Target,
        }
    }

    #[test]
    fn manifest_declares_the_counters_it_reads() {
        let manifest = ReportVelocity::manifest();
        assert_eq!(manifest.name, "report-velocity");
        assert_eq!(manifest.event_kinds, ["report.filed"]);
        let [all, child] = &manifest.counters[..] else {
            panic!("expected two counters, got {:?}", manifest.counters);
        };
        assert_eq!(all.name, "reporters");
        assert_eq!(all.event_kinds, ["report.filed"]);
        assert_eq!(all.aggregation, Aggregation::DistinctActors);
        assert_eq!(all.key, CounterKey::Target);
        assert_eq!(all.filter, CounterFilter::All);
        assert_eq!(all.window_seconds, DAY);
        assert_eq!(child.name, "child_safety_reporters");
        assert_eq!(child.aggregation, Aggregation::DistinctActors);
        assert_eq!(child.key, CounterKey::Target);
        assert_eq!(
            child.filter,
            CounterFilter::TextEquals("reason".into(), "child_safety".into())
        );
        assert_eq!(child.window_seconds, DAY);
    }

    #[test]
    fn a_few_reports_are_allowed() {
        assert!(run(&report(), &state(0, 0)).is_allow());
        assert!(run(&report(), &state(4, 2)).is_allow());
    }

    #[test]
    fn reporters_send_the_target_to_review_at_five() {
        assert!(run(&report(), &state(4, 0)).is_allow());
        let verdict = run(&report(), &state(5, 0));
        assert_eq!(verdict.severity, Severity::Review);
        assert_eq!(verdict.score, 0.5);
        assert!(verdict.actions.is_empty());
        assert!(verdict.effects.is_empty());
        assert_eq!(codes(&verdict), ["report-velocity"]);
        let explanation = &verdict.reasons[0].explanation;
        assert!(explanation.contains("account reported"), "{explanation}");
        assert!(explanation.contains("5 distinct accounts"), "{explanation}");
    }

    #[test]
    fn reporters_limit_and_label_the_target_at_fifteen() {
        assert_eq!(run(&report(), &state(14, 0)).severity, Severity::Review);
        let verdict = run(&report(), &state(15, 0));
        assert_eq!(verdict.severity, Severity::Limit);
        assert_eq!(verdict.score, 0.75);
        assert!(verdict.actions.is_empty());
        assert_eq!(verdict.effects, [label()]);
    }

    #[test]
    fn reporters_block_an_account_at_forty() {
        assert_eq!(run(&report(), &state(39, 0)).severity, Severity::Limit);
        let verdict = run(&report(), &state(40, 0));
        assert_eq!(verdict.severity, Severity::Block);
        assert_eq!(verdict.score, 0.9);
        assert_eq!(verdict.actions, [on_target(Action::BlockAccount)]);
        assert_eq!(verdict.effects, [label()]);
        assert!(
            verdict.reasons[0]
                .explanation
                .contains("40 distinct accounts")
        );
    }

    #[test]
    fn reporters_ban_a_group_at_forty() {
        let event = report_of(Entity::group("g1"));
        let verdict = run(&event, &state(40, 0));
        assert_eq!(verdict.severity, Severity::Block);
        assert_eq!(verdict.actions, [on_target(Action::BanGroup)]);
        assert_eq!(verdict.effects, [label()]);
        assert!(verdict.reasons[0].explanation.starts_with("group g1"));
    }

    #[test]
    fn child_safety_reports_go_to_review_at_three() {
        let event = report().text("reason", "child_safety");
        assert!(run(&event, &state(2, 2)).is_allow());
        let verdict = run(&event, &state(3, 3));
        assert_eq!(verdict.severity, Severity::Review);
        assert_eq!(verdict.score, 0.6);
        assert!(verdict.actions.is_empty());
        assert!(verdict.effects.is_empty());
        assert_eq!(codes(&verdict), ["child-safety-reports"]);
        assert!(
            verdict.reasons[0]
                .explanation
                .contains("child safety by 3 distinct accounts")
        );
    }

    #[test]
    fn child_safety_review_raises_the_score_of_a_general_review() {
        let verdict = run(&report(), &state(5, 3));
        assert_eq!(verdict.severity, Severity::Review);
        assert_eq!(verdict.score, 0.6);
        assert_eq!(codes(&verdict), ["report-velocity", "child-safety-reports"]);
    }

    #[test]
    fn child_safety_review_does_not_lower_a_limit() {
        let verdict = run(&report(), &state(15, 3));
        assert_eq!(verdict.severity, Severity::Limit);
        assert_eq!(verdict.score, 0.75);
        assert_eq!(codes(&verdict), ["report-velocity", "child-safety-reports"]);
        assert_eq!(verdict.effects, [label()]);
    }

    #[test]
    fn child_safety_reports_block_at_ten() {
        assert_eq!(run(&report(), &state(9, 9)).severity, Severity::Review);
        let verdict = run(&report(), &state(10, 10));
        assert_eq!(verdict.severity, Severity::Block);
        assert_eq!(verdict.score, 0.95);
        assert_eq!(verdict.actions, [on_target(Action::BlockAccount)]);
        assert_eq!(verdict.effects, [label()]);
        assert_eq!(codes(&verdict), ["report-velocity", "child-safety-reports"]);

        let group = run(&report_of(Entity::group("g1")), &state(10, 10));
        assert_eq!(group.severity, Severity::Block);
        assert_eq!(group.actions, [on_target(Action::BanGroup)]);
    }

    #[test]
    fn both_blocks_recommend_one_ban_with_the_higher_score() {
        let verdict = run(&report(), &state(40, 10));
        assert_eq!(verdict.severity, Severity::Block);
        assert_eq!(verdict.score, 0.95);
        assert_eq!(verdict.actions, [on_target(Action::BlockAccount)]);
        assert_eq!(verdict.effects, [label()]);
    }

    #[test]
    fn never_acts_on_the_reporter() {
        let verdict = run(&report(), &state(100, 100));
        assert!(verdict.actions.iter().all(|a| a.subject == Subject::Target));
        assert!(verdict.effects.iter().all(|e| matches!(
            e,
            Effect::SetLabel {
                subject: Subject::Target,
                ..
            }
        )));
    }

    #[test]
    fn counters_of_the_reporter_are_ignored() {
        let state = StateFixture::new()
            .counter(Subject::Actor, "reporters", DAY, 100)
            .counter(Subject::Actor, "child_safety_reporters", DAY, 100);
        assert!(run(&report(), &state).is_allow());
    }

    #[test]
    fn a_report_without_a_target_is_allowed() {
        let event = EventFixture::new("report.filed").text("reason", "child_safety");
        assert!(run(&event, &state(100, 100)).is_allow());
    }

    #[test]
    fn missing_or_odd_reason_does_not_matter() {
        // The rule reads no attribute; the engine's counters do the filtering.
        let no_reason = EventFixture::new("report.filed").target(Entity::account("reported"));
        assert!(run(&no_reason, &state(1, 0)).is_allow());
        assert_eq!(run(&no_reason, &state(5, 0)).severity, Severity::Review);
        let odd = no_reason.int("reason", 7);
        assert!(run(&odd, &state(1, 0)).is_allow());
    }
}
