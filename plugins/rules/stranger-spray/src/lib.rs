//! Stranger spray: an account that messages many people who do not have it
//! in their contacts. Spam, scams and unsolicited sexual contact all start
//! with a first message to a stranger, and on an encrypted platform the
//! content cannot be read, so the shape of the behaviour is the signal: how
//! many distinct non-contacts an account reaches in an hour, and how those
//! recipients react (blocking the sender, reporting it as spam). Ordinary
//! users message a handful of new people a day and are rarely blocked.
//!
//! A high volume of strangers alone limits the account; a moderate volume
//! does so only when recipients push back, and blocks it when they push back
//! hard. A moderate volume from a young account, with no pushback yet, goes
//! to human review.

use enforcer_sdk::*;

/// The rule.
pub struct StrangerSpray;

/// Distinct non-contacts in an hour at or above which complaints or a young
/// account make the behaviour suspicious; below it the rule always allows.
pub const STRANGERS_SUSPICIOUS: u64 = 20;
/// Distinct non-contacts in an hour that limit an account on their own.
pub const STRANGERS_LIMIT: u64 = 50;
/// Blocks plus spam reporters in a day that, with suspicious volume, limit
/// the account.
pub const COMPLAINTS_LIMIT: u64 = 5;
/// Blocks plus spam reporters in a day that, with suspicious volume, block
/// the account.
pub const COMPLAINTS_BLOCK: u64 = 15;
/// An account younger than this, in seconds (30 days), is young. An absent
/// or negative age is treated as not young.
pub const YOUNG_ACCOUNT_SECONDS: i64 = 30 * DAY as i64;
/// The label put on a limited or blocked account.
pub const LABEL: &str = "stranger-sprayer";
/// How long the label lasts, in seconds (7 days).
pub const LABEL_TTL_SECONDS: u64 = 7 * DAY as u64;

impl Rule for StrangerSpray {
    fn manifest() -> Manifest {
        Manifest::new("stranger-spray", "1.0.0")
            .on("message.sent")
            // Distinct recipients each account messaged who do not have it
            // in their contacts.
            .counter(
                CounterSpec::distinct_targets("strangers", &["message.sent"], HOUR)
                    .only_if_not("to_contact"),
            )
            // Times each account was blocked (it is the target of the block).
            .counter(CounterSpec::count("blocks", &["account.blocked"], DAY).by_target())
            // Distinct accounts that reported each account for spam.
            .counter(
                CounterSpec::distinct_actors("spam_reports", &["report.filed"], DAY)
                    .only_if_text("reason", "spam"),
            )
            // Below the suspicious count of strangers the rule always allows.
            .guard(Guard::counter_at_least(
                "strangers",
                HOUR,
                STRANGERS_SUSPICIOUS,
            ))
    }

    fn evaluate(event: &Event, state: &State) -> Verdict {
        let strangers = state.counter(&Subject::Actor, "strangers", HOUR);
        if strangers < STRANGERS_SUSPICIOUS {
            return Verdict::allow();
        }

        let blocks = state.counter(&Subject::Actor, "blocks", DAY);
        let spam_reports = state.counter(&Subject::Actor, "spam_reports", DAY);
        let complaints = blocks.saturating_add(spam_reports);
        let volume = format!("messaged {strangers} non-contacts in the last hour");
        let pushback = format!(
            "blocked {blocks} times and reported for spam by {spam_reports} accounts in the \
             last day"
        );

        if complaints >= COMPLAINTS_BLOCK {
            let verdict = Verdict::new(Severity::Block, 0.95)
                .action(Action::BlockAccount, Subject::Actor)
                .reason(
                    "stranger-spray-complaints",
                    format!("{volume}; {pushback} (block at {COMPLAINTS_BLOCK})"),
                );
            return with_volume_reason(verdict, strangers).set_label(
                Subject::Actor,
                LABEL,
                LABEL_TTL_SECONDS,
            );
        }

        if strangers >= STRANGERS_LIMIT || complaints >= COMPLAINTS_LIMIT {
            let mut verdict = Verdict::new(Severity::Limit, 0.8);
            if complaints >= COMPLAINTS_LIMIT {
                verdict = verdict.reason(
                    "stranger-spray-complaints",
                    format!("{volume}; {pushback} (limit at {COMPLAINTS_LIMIT})"),
                );
            }
            return with_volume_reason(verdict, strangers).set_label(
                Subject::Actor,
                LABEL,
                LABEL_TTL_SECONDS,
            );
        }

        // Only now is the account's age worth a host call.
        match event_age(event) {
            Some(age) if age < YOUNG_ACCOUNT_SECONDS => Verdict::new(Severity::Review, 0.5).reason(
                "young-stranger-spray",
                format!(
                    "{volume}; the account is {} days old (young under {} days)",
                    age / i64::from(DAY),
                    YOUNG_ACCOUNT_SECONDS / i64::from(DAY)
                ),
            ),
            _ => Verdict::allow(),
        }
    }
}

/// Adds the volume reason when the volume alone reaches the limit.
fn with_volume_reason(verdict: Verdict, strangers: u64) -> Verdict {
    if strangers >= STRANGERS_LIMIT {
        verdict.reason(
            "stranger-spray-volume",
            format!(
                "messaged {strangers} non-contacts in the last hour (limit at {STRANGERS_LIMIT})"
            ),
        )
    } else {
        verdict
    }
}

/// The sender's age in seconds; `None` if absent, of another type or negative.
fn event_age(event: &Event) -> Option<i64> {
    event.int("actor_age_seconds").filter(|age| *age >= 0)
}

rule!(StrangerSpray);

#[cfg(test)]
mod tests {
    use super::*;
    use enforcer_sdk::testing::{EventFixture, StateFixture, evaluate};

    const OLD: i64 = 400 * DAY as i64;
    const YOUNG: i64 = 3 * DAY as i64;

    fn sent(age: i64) -> EventFixture {
        EventFixture::new("message.sent")
            .actor(Entity::account("sender"))
            .target(Entity::account("recipient"))
            .bool("to_contact", false)
            .int("actor_age_seconds", age)
    }

    fn state(strangers: u64, blocks: u64, spam_reports: u64) -> StateFixture {
        StateFixture::new()
            .counter(Subject::Actor, "strangers", HOUR, strangers)
            .counter(Subject::Actor, "blocks", DAY, blocks)
            .counter(Subject::Actor, "spam_reports", DAY, spam_reports)
    }

    fn run(event: &EventFixture, state: &StateFixture) -> Verdict {
        evaluate::<StrangerSpray>(event, state)
    }

    fn codes(verdict: &Verdict) -> Vec<&str> {
        verdict.reasons.iter().map(|r| r.code.as_str()).collect()
    }

    fn assert_labelled(verdict: &Verdict) {
        assert_eq!(
            verdict.effects,
            [Effect::SetLabel {
                subject: Subject::Actor,
                label: "stranger-sprayer".to_string(),
                ttl_seconds: 604_800,
            }]
        );
    }

    #[test]
    fn manifest_declares_the_counters_it_reads() {
        let manifest = StrangerSpray::manifest();
        assert_eq!(manifest.name, "stranger-spray");
        assert_eq!(manifest.event_kinds, ["message.sent"]);
        let [strangers, blocks, spam] = &manifest.counters[..] else {
            panic!("expected three counters, got {:?}", manifest.counters);
        };
        assert_eq!(strangers.name, "strangers");
        assert_eq!(strangers.event_kinds, ["message.sent"]);
        assert_eq!(strangers.aggregation, Aggregation::DistinctTargets);
        assert_eq!(strangers.key, CounterKey::Actor);
        assert_eq!(
            strangers.filter,
            CounterFilter::IsFalse("to_contact".into())
        );
        assert_eq!(strangers.window_seconds, HOUR);

        assert_eq!(blocks.name, "blocks");
        assert_eq!(blocks.event_kinds, ["account.blocked"]);
        assert_eq!(blocks.aggregation, Aggregation::Count);
        assert_eq!(blocks.key, CounterKey::Target);
        assert_eq!(blocks.filter, CounterFilter::All);
        assert_eq!(blocks.window_seconds, DAY);

        assert_eq!(spam.name, "spam_reports");
        assert_eq!(spam.event_kinds, ["report.filed"]);
        assert_eq!(spam.aggregation, Aggregation::DistinctActors);
        assert_eq!(spam.key, CounterKey::Target);
        assert_eq!(
            spam.filter,
            CounterFilter::TextEquals("reason".into(), "spam".into())
        );
        assert_eq!(spam.window_seconds, DAY);
    }

    #[test]
    fn ordinary_sender_is_allowed() {
        assert!(run(&sent(OLD), &state(3, 0, 0)).is_allow());
        assert!(run(&sent(YOUNG), &state(3, 0, 0)).is_allow());
        assert!(run(&sent(OLD), &StateFixture::new()).is_allow());
    }

    #[test]
    fn complaints_without_volume_are_allowed() {
        // Blocked and reported a lot, but messaging few strangers: not spray.
        let verdict = run(&sent(YOUNG), &state(19, 40, 40));
        assert!(verdict.is_allow());
        assert!(verdict.effects.is_empty());
    }

    #[test]
    fn volume_alone_limits_at_the_threshold() {
        assert!(run(&sent(OLD), &state(49, 0, 0)).is_allow());
        let verdict = run(&sent(OLD), &state(50, 0, 0));
        assert_eq!(verdict.severity, Severity::Limit);
        assert_eq!(verdict.score, 0.8);
        assert!(verdict.actions.is_empty());
        assert_eq!(codes(&verdict), ["stranger-spray-volume"]);
        assert!(verdict.reasons[0].explanation.contains("50 non-contacts"));
        assert_labelled(&verdict);
    }

    #[test]
    fn moderate_volume_with_complaints_limits() {
        // One below the complaint threshold: allowed for an old account.
        assert!(run(&sent(OLD), &state(20, 2, 2)).is_allow());
        // Blocks and spam reporters add up.
        let verdict = run(&sent(OLD), &state(20, 3, 2));
        assert_eq!(verdict.severity, Severity::Limit);
        assert_eq!(verdict.score, 0.8);
        assert!(verdict.actions.is_empty());
        assert_eq!(codes(&verdict), ["stranger-spray-complaints"]);
        let explanation = &verdict.reasons[0].explanation;
        assert!(explanation.contains("20 non-contacts"), "{explanation}");
        assert!(explanation.contains("blocked 3 times"), "{explanation}");
        assert!(explanation.contains("by 2 accounts"), "{explanation}");
        assert_labelled(&verdict);
    }

    #[test]
    fn complaints_need_the_suspicious_volume() {
        assert!(run(&sent(OLD), &state(19, 5, 0)).is_allow());
        assert_eq!(run(&sent(OLD), &state(20, 5, 0)).severity, Severity::Limit);
        assert_eq!(run(&sent(OLD), &state(20, 0, 5)).severity, Severity::Limit);
    }

    #[test]
    fn heavy_complaints_block_the_account() {
        assert_eq!(run(&sent(OLD), &state(20, 10, 4)).severity, Severity::Limit);
        let verdict = run(&sent(OLD), &state(20, 10, 5));
        assert_eq!(verdict.severity, Severity::Block);
        assert_eq!(verdict.score, 0.95);
        assert_eq!(
            verdict.actions,
            [RecommendedAction {
                action: Action::BlockAccount,
                subject: Subject::Actor,
            }]
        );
        assert_eq!(codes(&verdict), ["stranger-spray-complaints"]);
        assert!(verdict.reasons[0].explanation.contains("blocked 10 times"));
        assert_labelled(&verdict);
    }

    #[test]
    fn block_with_high_volume_gives_both_reasons() {
        let verdict = run(&sent(OLD), &state(80, 15, 0));
        assert_eq!(verdict.severity, Severity::Block);
        assert_eq!(
            codes(&verdict),
            ["stranger-spray-complaints", "stranger-spray-volume"]
        );
        assert_labelled(&verdict);
    }

    #[test]
    fn young_account_with_moderate_volume_goes_to_review() {
        let verdict = run(&sent(YOUNG), &state(20, 0, 0));
        assert_eq!(verdict.severity, Severity::Review);
        assert_eq!(verdict.score, 0.5);
        assert!(verdict.actions.is_empty());
        assert!(verdict.effects.is_empty());
        assert_eq!(codes(&verdict), ["young-stranger-spray"]);
        assert!(verdict.reasons[0].explanation.contains("3 days old"));
        assert!(run(&sent(YOUNG), &state(19, 0, 0)).is_allow());
    }

    #[test]
    fn youth_ends_at_thirty_days() {
        let just_young = YOUNG_ACCOUNT_SECONDS - 1;
        assert_eq!(
            run(&sent(just_young), &state(20, 0, 0)).severity,
            Severity::Review
        );
        assert!(run(&sent(YOUNG_ACCOUNT_SECONDS), &state(20, 0, 0)).is_allow());
    }

    #[test]
    fn young_account_with_complaints_is_limited_not_reviewed() {
        let verdict = run(&sent(YOUNG), &state(20, 5, 0));
        assert_eq!(verdict.severity, Severity::Limit);
    }

    #[test]
    fn missing_or_odd_age_is_not_young() {
        let no_age = EventFixture::new("message.sent")
            .target(Entity::account("recipient"))
            .bool("to_contact", false);
        assert!(run(&no_age, &state(30, 0, 0)).is_allow());

        let text_age = no_age.clone().text("actor_age_seconds", "3600");
        assert!(run(&text_age, &state(30, 0, 0)).is_allow());

        let float_age = no_age.clone().float("actor_age_seconds", 3600.0);
        assert!(run(&float_age, &state(30, 0, 0)).is_allow());

        let negative_age = no_age.clone().int("actor_age_seconds", -5);
        assert!(run(&negative_age, &state(30, 0, 0)).is_allow());

        let extreme_age = no_age.int("actor_age_seconds", i64::MIN);
        assert!(run(&extreme_age, &state(30, 0, 0)).is_allow());
    }

    #[test]
    fn missing_age_does_not_stop_volume_or_complaints() {
        let no_attributes = EventFixture::new("message.sent");
        assert_eq!(
            run(&no_attributes, &state(50, 0, 0)).severity,
            Severity::Limit
        );
        assert_eq!(
            run(&no_attributes, &state(20, 15, 0)).severity,
            Severity::Block
        );
    }

    #[test]
    fn huge_counters_do_not_overflow() {
        let verdict = run(&sent(OLD), &state(u64::MAX, u64::MAX, u64::MAX));
        assert_eq!(verdict.severity, Severity::Block);
    }

    #[test]
    fn counters_of_the_recipient_are_not_the_senders() {
        // The rule reads the sender's counters, never the recipient's.
        let elsewhere = StateFixture::new()
            .counter(Subject::Target, "strangers", HOUR, 100)
            .counter(Subject::Target, "blocks", DAY, 100);
        assert!(run(&sent(OLD), &elsewhere).is_allow());
    }
}
