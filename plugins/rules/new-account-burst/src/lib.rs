//! New account burst: an account less than a day old that sends messages in
//! bursts. Spam and scam operations register accounts in bulk and use each
//! one as hard as they can before it is caught, so they send at full speed
//! from the first minutes. A real new user spends the first day finding
//! contacts and sends a few dozen messages. Because the signal is the
//! account's age, accounts whose age is not known are left alone.

use enforcer_sdk::*;

/// The rule.
pub struct NewAccountBurst;

/// Accounts younger than this, in seconds (1 day), are judged.
pub const NEW_ACCOUNT_SECONDS: i64 = DAY as i64;
/// The short window a burst is measured over, in seconds (10 minutes).
pub const BURST_WINDOW: u32 = 10 * MINUTE;
/// Messages in [`BURST_WINDOW`] that limit a new account.
pub const BURST_LIMIT: u64 = 60;
/// Messages in an hour that limit a new account.
pub const HOURLY_LIMIT: u64 = 200;
/// Messages in an hour that block a new account.
pub const HOURLY_BLOCK: u64 = 500;
/// The label put on a limited or blocked account.
pub const LABEL: &str = "new-account-burst";
/// How long the label lasts, in seconds (1 day).
pub const LABEL_TTL_SECONDS: u64 = DAY as u64;

impl Rule for NewAccountBurst {
    fn manifest() -> Manifest {
        Manifest::new("new-account-burst", "1.0.0")
            .on("message.sent")
            // Messages each account sent, read over 10 minutes and an hour.
            .counter(CounterSpec::count("sent", &["message.sent"], HOUR))
            // Only accounts under a day old are judged.
            .guard(Guard::int_below("actor_age_seconds", NEW_ACCOUNT_SECONDS))
    }

    fn evaluate(event: &Event, state: &State) -> Verdict {
        // An absent, non-integer or negative age is not known to be new.
        let Some(age) = event
            .int("actor_age_seconds")
            .filter(|age| (0..NEW_ACCOUNT_SECONDS).contains(age))
        else {
            return Verdict::allow();
        };
        let age = format!("{}h{:02}m", age / 3600, age % 3600 / 60);

        let hour = state.counter(&Subject::Actor, "sent", HOUR);
        if hour >= HOURLY_BLOCK {
            return Verdict::new(Severity::Block, 0.95)
                .action(Action::BlockAccount, Subject::Actor)
                .reason(
                    "new-account-burst",
                    format!(
                        "account {age} old sent {hour} messages in the last hour \
                         (block at {HOURLY_BLOCK})"
                    ),
                )
                .set_label(Subject::Actor, LABEL, LABEL_TTL_SECONDS);
        }

        let burst = state.counter(&Subject::Actor, "sent", BURST_WINDOW);
        if burst >= BURST_LIMIT || hour >= HOURLY_LIMIT {
            return Verdict::new(Severity::Limit, 0.8)
                .reason(
                    "new-account-burst",
                    format!(
                        "account {age} old sent {burst} messages in the last 10 minutes and \
                         {hour} in the last hour (limit at {BURST_LIMIT} or {HOURLY_LIMIT})"
                    ),
                )
                .set_label(Subject::Actor, LABEL, LABEL_TTL_SECONDS);
        }
        Verdict::allow()
    }
}

rule!(NewAccountBurst);

#[cfg(test)]
mod tests {
    use super::*;
    use enforcer_sdk::testing::{EventFixture, StateFixture, evaluate};

    const NEW: i64 = 2 * 3600 + 5 * 60;

    fn sent(age: i64) -> EventFixture {
        EventFixture::new("message.sent")
            .actor(Entity::account("fresh"))
            .target(Entity::account("someone"))
            .bool("to_contact", false)
            .int("actor_age_seconds", age)
    }

    fn state(ten_minutes: u64, hour: u64) -> StateFixture {
        StateFixture::new()
            .counter(Subject::Actor, "sent", BURST_WINDOW, ten_minutes)
            .counter(Subject::Actor, "sent", HOUR, hour)
    }

    fn run(event: &EventFixture, state: &StateFixture) -> Verdict {
        evaluate::<NewAccountBurst>(event, state)
    }

    fn label() -> Effect {
        Effect::SetLabel {
            subject: Subject::Actor,
            label: "new-account-burst".to_string(),
            ttl_seconds: 86_400,
        }
    }

    #[test]
    fn manifest_declares_the_counter_it_reads() {
        let manifest = NewAccountBurst::manifest();
        assert_eq!(manifest.name, "new-account-burst");
        assert_eq!(manifest.event_kinds, ["message.sent"]);
        let [sent] = &manifest.counters[..] else {
            panic!("expected one counter, got {:?}", manifest.counters);
        };
        assert_eq!(sent.name, "sent");
        assert_eq!(sent.event_kinds, ["message.sent"]);
        assert_eq!(sent.aggregation, Aggregation::Count);
        assert_eq!(sent.key, CounterKey::Actor);
        assert_eq!(sent.filter, CounterFilter::All);
        // The longest window read; the 10-minute read is within it.
        assert_eq!(sent.window_seconds, HOUR);
        assert!(BURST_WINDOW < sent.window_seconds);
    }

    #[test]
    fn ordinary_new_account_is_allowed() {
        assert!(run(&sent(NEW), &state(5, 30)).is_allow());
        assert!(run(&sent(NEW), &StateFixture::new()).is_allow());
    }

    #[test]
    fn ten_minute_burst_limits_at_sixty() {
        assert!(run(&sent(NEW), &state(59, 59)).is_allow());
        let verdict = run(&sent(NEW), &state(60, 60));
        assert_eq!(verdict.severity, Severity::Limit);
        assert_eq!(verdict.score, 0.8);
        assert!(verdict.actions.is_empty());
        assert_eq!(verdict.effects, [label()]);
        let [reason] = &verdict.reasons[..] else {
            panic!("expected one reason, got {:?}", verdict.reasons);
        };
        assert_eq!(reason.code, "new-account-burst");
        assert!(
            reason
                .explanation
                .contains("2h05m old sent 60 messages in the last 10 minutes"),
            "{}",
            reason.explanation
        );
    }

    #[test]
    fn hourly_volume_limits_at_two_hundred() {
        assert!(run(&sent(NEW), &state(10, 199)).is_allow());
        let verdict = run(&sent(NEW), &state(10, 200));
        assert_eq!(verdict.severity, Severity::Limit);
        assert_eq!(verdict.score, 0.8);
        assert!(verdict.actions.is_empty());
        assert_eq!(verdict.effects, [label()]);
        assert!(
            verdict.reasons[0]
                .explanation
                .contains("200 in the last hour")
        );
    }

    #[test]
    fn hourly_volume_blocks_at_five_hundred() {
        assert_eq!(run(&sent(NEW), &state(10, 499)).severity, Severity::Limit);
        let verdict = run(&sent(NEW), &state(10, 500));
        assert_eq!(verdict.severity, Severity::Block);
        assert_eq!(verdict.score, 0.95);
        assert_eq!(
            verdict.actions,
            [RecommendedAction {
                action: Action::BlockAccount,
                subject: Subject::Actor,
            }]
        );
        assert_eq!(verdict.effects, [label()]);
        assert!(
            verdict.reasons[0]
                .explanation
                .contains("500 messages in the last hour")
        );
    }

    #[test]
    fn the_ten_minute_read_is_not_the_hourly_one() {
        // 100 in the hour but not in the last 10 minutes: allowed.
        let spread = StateFixture::new().counter(Subject::Actor, "sent", HOUR, 100);
        assert!(run(&sent(NEW), &spread).is_allow());
    }

    #[test]
    fn accounts_a_day_old_or_older_are_not_judged() {
        let just_new = NEW_ACCOUNT_SECONDS - 1;
        assert_eq!(
            run(&sent(just_new), &state(60, 60)).severity,
            Severity::Limit
        );
        assert!(run(&sent(NEW_ACCOUNT_SECONDS), &state(60, 600)).is_allow());
        assert!(run(&sent(400 * NEW_ACCOUNT_SECONDS), &state(60, 600)).is_allow());
        // A brand-new account is judged.
        assert_eq!(run(&sent(0), &state(0, 500)).severity, Severity::Block);
    }

    #[test]
    fn missing_or_odd_age_is_allowed() {
        let bare = EventFixture::new("message.sent");
        let busy = state(600, 6000);
        assert!(run(&bare, &busy).is_allow());
        assert!(run(&bare.clone().text("actor_age_seconds", "60"), &busy).is_allow());
        assert!(run(&bare.clone().float("actor_age_seconds", 60.0), &busy).is_allow());
        assert!(run(&bare.clone().int("actor_age_seconds", -1), &busy).is_allow());
        assert!(run(&bare.clone().int("actor_age_seconds", i64::MIN), &busy).is_allow());
        assert!(
            run(
                &bare.attr("actor_age_seconds", Value::IntList(vec![60])),
                &busy
            )
            .is_allow()
        );
    }

    #[test]
    fn other_accounts_counters_are_ignored() {
        let state = StateFixture::new().counter(Subject::Target, "sent", HOUR, 1000);
        assert!(run(&sent(NEW), &state).is_allow());
    }
}
