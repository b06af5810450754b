//! Harmful text: a profile or group name or description that an upstream
//! text classifier flags as sexualizing children, spam, a scam or hate.
//! Messages are encrypted, but names and descriptions are shown to people
//! who have not chosen to talk to the account or join the group, and are
//! where abusers advertise, so they are classified before anything else.
//!
//! The classifier's confidence decides what happens. Content sexualizing
//! children is acted on at lower confidence, and blocks the account or bans
//! the group when the classifier is sure; spam, scams and hate limit the
//! account or group only when the classifier is nearly certain, because a
//! false positive there silences an ordinary user. Everything in between
//! goes to human review. A score outside [0, 1] is not trusted.

use enforcer_sdk::*;

/// The rule.
pub struct HarmfulText;

/// Classifier score for `child_sexualization` that blocks the account or
/// bans the group.
pub const CHILD_SEXUALIZATION_BLOCK: f64 = 0.9;
/// Classifier score for `child_sexualization` that sends it to review.
pub const CHILD_SEXUALIZATION_REVIEW: f64 = 0.6;
/// Classifier score for `spam`, `scam` or `hate` that limits the subject.
pub const ABUSE_LIMIT: f64 = 0.97;
/// Classifier score for `spam`, `scam` or `hate` that sends it to review.
pub const ABUSE_REVIEW: f64 = 0.8;
/// The label put on a limited or blocked account or group.
pub const LABEL: &str = "harmful-text";
/// How long the label lasts, in seconds (30 days).
pub const LABEL_TTL_SECONDS: u64 = 30 * DAY as u64;

impl Rule for HarmfulText {
    fn manifest() -> Manifest {
        Manifest::new("harmful-text", "1.0.0")
            .on("profile.updated")
            .on("group.updated")
            // No label acts below the lowest threshold of any label.
            .guard(Guard::float_at_least(
                "classifier_score",
                CHILD_SEXUALIZATION_REVIEW.min(ABUSE_REVIEW),
            ))
    }

    fn evaluate(event: &Event, _state: &State) -> Verdict {
        let Some(label) = event.text("classifier_label") else {
            return Verdict::allow();
        };
        let (code, child) = match label.as_str() {
            "child_sexualization" => ("child-sexualization-text", true),
            "spam" => ("spam-text", false),
            "scam" => ("scam-text", false),
            "hate" => ("hate-text", false),
            _ => return Verdict::allow(),
        };
        let Some(score) = event
            .float("classifier_score")
            .filter(|s| (0.0..=1.0).contains(s))
        else {
            return Verdict::allow();
        };

        let (severity, verdict_score, threshold) = if child {
            if score >= CHILD_SEXUALIZATION_BLOCK {
                (Severity::Block, 0.95, CHILD_SEXUALIZATION_BLOCK)
            } else if score >= CHILD_SEXUALIZATION_REVIEW {
                (Severity::Review, score, CHILD_SEXUALIZATION_REVIEW)
            } else {
                return Verdict::allow();
            }
        } else if score >= ABUSE_LIMIT {
            (Severity::Limit, 0.8, ABUSE_LIMIT)
        } else if score >= ABUSE_REVIEW {
            (Severity::Review, 0.5, ABUSE_REVIEW)
        } else {
            return Verdict::allow();
        };

        // The subject: the account for its profile, the group for its own.
        let (subject, entity) = if event.is("group.updated") {
            let Some(group) = event.target() else {
                return Verdict::allow();
            };
            (Subject::Target, group)
        } else {
            (Subject::Actor, event.actor())
        };
        let owner = match entity.kind {
            EntityKind::Account => format!("account {}", entity.id),
            EntityKind::Group => format!("group {}", entity.id),
        };
        let field = event
            .text("field")
            .unwrap_or_else(|| "unknown field".to_string());

        let mut verdict = Verdict::new(severity, verdict_score).reason(
            code,
            format!(
                "{owner} {field} classified {label} with score {score} ({severity:?} at \
                 {threshold})"
            ),
        );
        if severity == Severity::Block {
            let ban = match entity.kind {
                EntityKind::Account => Action::BlockAccount,
                EntityKind::Group => Action::BanGroup,
            };
            verdict = verdict.action(ban, subject.clone());
        }
        if severity >= Severity::Limit {
            verdict = verdict.set_label(subject, LABEL, LABEL_TTL_SECONDS);
        }
        verdict
    }
}

rule!(HarmfulText);

#[cfg(test)]
mod tests {
    use super::*;
    use enforcer_sdk::testing::{EventFixture, StateFixture, evaluate};

    fn profile(label: &str, score: f64) -> EventFixture {
        EventFixture::new("profile.updated")
            .actor(Entity::account("acct-1"))
            .text("field", "description")
            .text("classifier_label", label)
            .float("classifier_score", score)
    }

    fn group(label: &str, score: f64) -> EventFixture {
        EventFixture::new("group.updated")
            .actor(Entity::account("editor"))
            .target(Entity::group("g1"))
            .text("field", "name")
            .text("classifier_label", label)
            .float("classifier_score", score)
    }

    fn run(event: &EventFixture) -> Verdict {
        evaluate::<HarmfulText>(event, &StateFixture::new())
    }

    fn label(subject: Subject) -> Effect {
        Effect::SetLabel {
            subject,
            label: "harmful-text".to_string(),
            ttl_seconds: 30 * 86_400,
        }
    }

    fn act(action: Action, subject: Subject) -> RecommendedAction {
        RecommendedAction { action, subject }
    }

    #[test]
    fn manifest_subscribes_to_both_updates_and_reads_no_counter() {
        let manifest = HarmfulText::manifest();
        assert_eq!(manifest.name, "harmful-text");
        assert_eq!(manifest.event_kinds, ["profile.updated", "group.updated"]);
        assert!(manifest.counters.is_empty());
    }

    #[test]
    fn ordinary_text_is_allowed() {
        assert!(run(&profile("none", 0.99)).is_allow());
        assert!(run(&group("none", 1.0)).is_allow());
        assert!(run(&profile("spam", 0.1)).is_allow());
        assert!(run(&profile("child_sexualization", 0.05)).is_allow());
        assert!(run(&profile("harassment", 1.0)).is_allow());
        // Labels are matched exactly.
        assert!(run(&profile("Child_Sexualization", 1.0)).is_allow());
    }

    #[test]
    fn child_sexualization_in_a_profile_blocks_the_account() {
        let verdict = run(&profile("child_sexualization", 0.93));
        assert_eq!(verdict.severity, Severity::Block);
        assert_eq!(verdict.score, 0.95);
        assert_eq!(verdict.actions, [act(Action::BlockAccount, Subject::Actor)]);
        assert_eq!(verdict.effects, [label(Subject::Actor)]);
        let [reason] = &verdict.reasons[..] else {
            panic!("expected one reason, got {:?}", verdict.reasons);
        };
        assert_eq!(reason.code, "child-sexualization-text");
        for part in [
            "account acct-1",
            "description",
            "child_sexualization",
            "0.93",
        ] {
            assert!(reason.explanation.contains(part), "{}", reason.explanation);
        }
    }

    #[test]
    fn child_sexualization_in_a_group_bans_the_group() {
        let verdict = run(&group("child_sexualization", 0.9));
        assert_eq!(verdict.severity, Severity::Block);
        assert_eq!(verdict.score, 0.95);
        assert_eq!(verdict.actions, [act(Action::BanGroup, Subject::Target)]);
        assert_eq!(verdict.effects, [label(Subject::Target)]);
        let explanation = &verdict.reasons[0].explanation;
        assert!(explanation.contains("group g1 name"), "{explanation}");
    }

    #[test]
    fn child_sexualization_edges() {
        assert!(run(&profile("child_sexualization", 0.599)).is_allow());

        let review = run(&profile("child_sexualization", 0.6));
        assert_eq!(review.severity, Severity::Review);
        assert_eq!(review.score, 0.6);
        assert!(review.actions.is_empty());
        assert!(review.effects.is_empty());

        let high_review = run(&group("child_sexualization", 0.899));
        assert_eq!(high_review.severity, Severity::Review);
        assert_eq!(high_review.score, 0.899);
        assert!(high_review.actions.is_empty());

        assert_eq!(
            run(&group("child_sexualization", 0.9)).severity,
            Severity::Block
        );
    }

    #[test]
    fn spam_scam_and_hate_edges() {
        for kind in ["spam", "scam", "hate"] {
            assert!(run(&profile(kind, 0.799)).is_allow(), "{kind}");

            let review = run(&profile(kind, 0.8));
            assert_eq!(review.severity, Severity::Review, "{kind}");
            assert_eq!(review.score, 0.5);
            assert!(review.actions.is_empty());
            assert!(review.effects.is_empty());
            assert_eq!(review.reasons[0].code, format!("{kind}-text"));

            let below = run(&profile(kind, 0.969));
            assert_eq!(below.severity, Severity::Review, "{kind}");

            let limit = run(&profile(kind, 0.97));
            assert_eq!(limit.severity, Severity::Limit, "{kind}");
            assert_eq!(limit.score, 0.8);
            assert!(limit.actions.is_empty());
            assert_eq!(limit.effects, [label(Subject::Actor)]);
            assert!(limit.reasons[0].explanation.contains("0.97"));
        }
    }

    #[test]
    fn abusive_group_text_is_limited_on_the_group() {
        let verdict = run(&group("scam", 1.0));
        assert_eq!(verdict.severity, Severity::Limit);
        assert!(verdict.actions.is_empty());
        assert_eq!(verdict.effects, [label(Subject::Target)]);
        // Never the editor's account.
        assert!(!verdict.effects.contains(&label(Subject::Actor)));
    }

    #[test]
    fn group_update_without_a_group_is_allowed() {
        let event = EventFixture::new("group.updated")
            .text("classifier_label", "child_sexualization")
            .float("classifier_score", 1.0);
        assert!(run(&event).is_allow());
    }

    #[test]
    fn missing_field_is_named_unknown() {
        let event = EventFixture::new("profile.updated")
            .text("classifier_label", "hate")
            .float("classifier_score", 0.99);
        let verdict = run(&event);
        assert_eq!(verdict.severity, Severity::Limit);
        assert!(verdict.reasons[0].explanation.contains("unknown field"));
    }

    #[test]
    fn missing_or_odd_classifier_output_is_allowed() {
        let bare = EventFixture::new("profile.updated").text("field", "name");
        assert!(run(&bare).is_allow());
        // A label without a score, a score without a label.
        assert!(run(&bare.clone().text("classifier_label", "child_sexualization")).is_allow());
        assert!(run(&bare.clone().float("classifier_score", 1.0)).is_allow());
        // An integer score is not converted; a text label of another type.
        let int_score = bare
            .clone()
            .text("classifier_label", "child_sexualization")
            .int("classifier_score", 1);
        assert!(run(&int_score).is_allow());
        let list_label = bare
            .clone()
            .attr("classifier_label", Value::TextList(vec!["spam".into()]))
            .float("classifier_score", 1.0);
        assert!(run(&list_label).is_allow());
        // Scores outside [0, 1] are not trusted.
        for score in [f64::NAN, f64::INFINITY, -0.5, 1.01, 97.0] {
            let event = bare
                .clone()
                .text("classifier_label", "child_sexualization")
                .float("classifier_score", score);
            assert!(run(&event).is_allow(), "{score}");
        }
    }
}
