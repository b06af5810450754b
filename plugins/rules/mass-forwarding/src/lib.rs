//! Mass forwarding: one message forwarded to many chats at once, or an
//! account forwarding far more than people do in an hour. Abuse (spam, scams,
//! harmful media) spreads this way on an encrypted platform, where the
//! content itself cannot be read.

use enforcer_sdk::*;

/// The rule.
pub struct MassForwarding;

/// Chats one message may reach at once before the rule limits forwarding.
pub const FANOUT_LIMIT: i64 = 20;
/// Forwards per hour above which an account is sent to review.
pub const HOURLY_REVIEW: u64 = 100;
/// Forwards per hour above which forwarding is limited.
pub const HOURLY_LIMIT: u64 = 300;

impl Rule for MassForwarding {
    fn manifest() -> Manifest {
        Manifest::new("mass-forwarding", "1.0.0")
            .on("message.forwarded")
            .counter(CounterSpec::sum(
                "forwards",
                &["message.forwarded"],
                "chat_count",
                HOUR,
            ))
            // Ordinary forwards never reach the sandbox: the rule says
            // something only at a wide fanout or a busy hour.
            .guard(Guard::int_at_least("chat_count", FANOUT_LIMIT))
            .guard(Guard::counter_at_least("forwards", HOUR, HOURLY_REVIEW))
    }

    fn evaluate(event: &Event, state: &State) -> Verdict {
        let fanout = event.int("chat_count").unwrap_or(1);
        let last_hour = state.counter(&Subject::Actor, "forwards", HOUR);

        if fanout >= FANOUT_LIMIT || last_hour >= HOURLY_LIMIT {
            let score = (fanout as f64 / (2 * FANOUT_LIMIT) as f64)
                .max(last_hour as f64 / (2 * HOURLY_LIMIT) as f64)
                .max(0.7);
            Verdict::new(Severity::Limit, score)
                .action(Action::LimitForwarding, Subject::Actor)
                .reason(
                    "mass-forward",
                    format!("forwarded to {fanout} chats at once, {last_hour} in the last hour"),
                )
                .set_label(Subject::Actor, "mass-forwarder", u64::from(DAY))
        } else if last_hour >= HOURLY_REVIEW {
            Verdict::new(Severity::Review, 0.5).reason(
                "forward-velocity",
                format!("{last_hour} forwards in the last hour"),
            )
        } else {
            Verdict::allow()
        }
    }
}

rule!(MassForwarding);

#[cfg(test)]
mod tests {
    use super::*;
    use enforcer_sdk::testing::{EventFixture, StateFixture, evaluate};

    fn forward(chats: i64) -> EventFixture {
        EventFixture::new("message.forwarded").int("chat_count", chats)
    }

    #[test]
    fn ordinary_forward_is_allowed() {
        let state = StateFixture::new().counter(Subject::Actor, "forwards", HOUR, 12);
        assert!(evaluate::<MassForwarding>(&forward(3), &state).is_allow());
    }

    #[test]
    fn wide_fanout_limits_forwarding() {
        let verdict = evaluate::<MassForwarding>(&forward(45), &StateFixture::new());
        assert_eq!(verdict.severity, Severity::Limit);
        assert_eq!(verdict.actions[0].action, Action::LimitForwarding);
        assert!(verdict.score >= 0.7);
    }

    #[test]
    fn hourly_volume_goes_to_review_then_limit() {
        let review = StateFixture::new().counter(Subject::Actor, "forwards", HOUR, 150);
        assert_eq!(
            evaluate::<MassForwarding>(&forward(2), &review).severity,
            Severity::Review
        );
        let limit = StateFixture::new().counter(Subject::Actor, "forwards", HOUR, 400);
        assert_eq!(
            evaluate::<MassForwarding>(&forward(2), &limit).severity,
            Severity::Limit
        );
    }
}
