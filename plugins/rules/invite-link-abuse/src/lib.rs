//! Invite link abuse: groups that spread harmful content through invite
//! links, and groups that gather abusive accounts. An invite link is how a
//! group grows past the people its members know, and a link posted on a
//! public surface (a public channel, the open web) lets anyone in; a group
//! already known to carry harmful media or text that advertises itself this
//! way is distributing it. Accounts other rules have labelled for abuse
//! joining a group mark it too, and a group so marked that then takes in
//! members by the dozen through its link is recruiting.
//!
//! Separately, a sudden surge of link shares or link joins goes to review
//! whatever the group: it is how raids and spam campaigns look from the
//! outside. Every action and label is on the group (the event's target),
//! never on the account that shared the link or joined.

use enforcer_sdk::*;

/// The rule.
pub struct InviteLinkAbuse;

/// Group labels (set by other rules) that make a public invite link a ban.
pub const HARMFUL_GROUP_LABELS: [&str; 2] = ["known-csam-media", "harmful-text"];
/// Account labels (set by other rules) that mark a group the account joins.
pub const ABUSIVE_ACCOUNT_LABELS: [&str; 3] =
    ["known-csam-media", "mass-forwarder", "stranger-sprayer"];
/// The label put on a group that an abusive account joined.
pub const ABUSIVE_MEMBER_LABEL: &str = "abusive-member";
/// How long that label lasts, in seconds (7 days).
pub const ABUSIVE_MEMBER_TTL_SECONDS: u64 = 7 * DAY as u64;
/// Joins by invite link in an hour that limit a group carrying
/// [`ABUSIVE_MEMBER_LABEL`].
pub const ABUSIVE_GROUP_LINK_JOINS: u64 = 50;
/// Joins by invite link in an hour that make a spike.
pub const SPIKE_LINK_JOINS: u64 = 200;
/// Invite link shares in an hour that make a spike.
pub const SPIKE_SHARES: u64 = 100;
/// Public invite link shares in a day that make a spike.
pub const SPIKE_PUBLIC_SHARES: u64 = 20;

impl Rule for InviteLinkAbuse {
    fn manifest() -> Manifest {
        Manifest::new("invite-link-abuse", "1.0.0")
            .on("group.invite_link_shared")
            .on("group.joined")
            // Invite link shares per group.
            .counter(CounterSpec::count("shares", &["group.invite_link_shared"], HOUR).by_target())
            // Invite link shares on public surfaces per group.
            .counter(
                CounterSpec::count("public_shares", &["group.invite_link_shared"], DAY)
                    .by_target()
                    .only_if("public"),
            )
            // Joins through an invite link per group.
            .counter(
                CounterSpec::count("link_joins", &["group.joined"], HOUR)
                    .by_target()
                    .only_if("via_invite_link"),
            )
    }

    fn evaluate(event: &Event, state: &State) -> Verdict {
        let Some(group) = event
            .target()
            .filter(|target| target.kind == EntityKind::Group)
        else {
            return Verdict::allow();
        };
        // The manifest subscribes to exactly two kinds: a share or a join.
        let is_share = event.is("group.invite_link_shared");
        let group_labels = state.labels(&Subject::Target);
        let shares = state.counter(&Subject::Target, "shares", HOUR);
        let public_shares = state.counter(&Subject::Target, "public_shares", DAY);
        let link_joins = state.counter(&Subject::Target, "link_joins", HOUR);

        let mut found = Findings::default();

        // A group known for harmful content advertising itself in public.
        let harmful: Vec<&str> = HARMFUL_GROUP_LABELS
            .into_iter()
            .filter(|l| group_labels.iter().any(|g| g == l))
            .collect();
        if !harmful.is_empty() {
            let public_now = is_share && event.bool("public") == Some(true);
            if public_now || public_shares >= 1 {
                let now = if public_now {
                    "this share is public; "
                } else {
                    ""
                };
                found.add(
                    Severity::Block,
                    0.95,
                    "harmful-group-public-link",
                    format!(
                        "group {} carries {} and its invite link was shared publicly \
                         ({now}public shares in the last day: {public_shares})",
                        group.id,
                        harmful.join(", ")
                    ),
                );
            }
        }

        // An account labelled for abuse joining.
        let mut mark_group = false;
        if !is_share {
            let actor_labels = state.labels(&Subject::Actor);
            let abusive: Vec<&str> = ABUSIVE_ACCOUNT_LABELS
                .into_iter()
                .filter(|l| actor_labels.iter().any(|a| a == l))
                .collect();
            if !abusive.is_empty() {
                mark_group = true;
                found.add(
                    Severity::Review,
                    0.5,
                    "abusive-member-joined",
                    format!(
                        "account {} carrying {} joined group {}",
                        event.actor().id,
                        abusive.join(", "),
                        group.id
                    ),
                );
            }
        }

        // A group that abusive accounts joined, recruiting through its link.
        if link_joins >= ABUSIVE_GROUP_LINK_JOINS
            && group_labels.iter().any(|l| l == ABUSIVE_MEMBER_LABEL)
        {
            found.add(
                Severity::Limit,
                0.8,
                "abusive-group-link-joins",
                format!(
                    "group {} carries {ABUSIVE_MEMBER_LABEL} and {link_joins} accounts joined \
                     by invite link in the last hour (limit at {ABUSIVE_GROUP_LINK_JOINS})",
                    group.id
                ),
            );
        }

        // A spike, whatever the group.
        if link_joins >= SPIKE_LINK_JOINS
            || shares >= SPIKE_SHARES
            || public_shares >= SPIKE_PUBLIC_SHARES
        {
            found.add(
                Severity::Review,
                0.5,
                "invite-link-spike",
                format!(
                    "group {}: {link_joins} joins by invite link and {shares} link shares in \
                     the last hour, {public_shares} public shares in the last day (spike at \
                     {SPIKE_LINK_JOINS}, {SPIKE_SHARES} or {SPIKE_PUBLIC_SHARES})",
                    group.id
                ),
            );
        }

        let mut verdict = found.verdict();
        if verdict.severity == Severity::Block {
            verdict = verdict.action(Action::BanGroup, Subject::Target);
        }
        if mark_group {
            verdict = verdict.set_label(
                Subject::Target,
                ABUSIVE_MEMBER_LABEL,
                ABUSIVE_MEMBER_TTL_SECONDS,
            );
        }
        verdict
    }
}

/// The signals that applied: the verdict takes the most severe, the highest
/// score and every reason.
#[derive(Default)]
struct Findings {
    severity: Option<Severity>,
    score: f64,
    reasons: Vec<(&'static str, String)>,
}

impl Findings {
    fn add(&mut self, severity: Severity, score: f64, code: &'static str, explanation: String) {
        self.severity = self.severity.max(Some(severity));
        self.score = self.score.max(score);
        self.reasons.push((code, explanation));
    }

    fn verdict(self) -> Verdict {
        let Some(severity) = self.severity else {
            return Verdict::allow();
        };
        self.reasons
            .into_iter()
            .fold(Verdict::new(severity, self.score), |v, (code, why)| {
                v.reason(code, why)
            })
    }
}

rule!(InviteLinkAbuse);

#[cfg(test)]
mod tests {
    use super::*;
    use enforcer_sdk::testing::{EventFixture, StateFixture, evaluate};

    fn share(public: bool) -> EventFixture {
        EventFixture::new("group.invite_link_shared")
            .actor(Entity::account("sharer"))
            .target(Entity::group("g1"))
            .bool("public", public)
            .text("link_id", "link-1")
    }

    fn join() -> EventFixture {
        EventFixture::new("group.joined")
            .actor(Entity::account("joiner"))
            .target(Entity::group("g1"))
            .bool("via_invite_link", true)
    }

    fn counters(shares: u64, public_shares: u64, link_joins: u64) -> StateFixture {
        StateFixture::new()
            .counter(Subject::Target, "shares", HOUR, shares)
            .counter(Subject::Target, "public_shares", DAY, public_shares)
            .counter(Subject::Target, "link_joins", HOUR, link_joins)
    }

    fn run(event: &EventFixture, state: &StateFixture) -> Verdict {
        evaluate::<InviteLinkAbuse>(event, state)
    }

    fn codes(verdict: &Verdict) -> Vec<&str> {
        verdict.reasons.iter().map(|r| r.code.as_str()).collect()
    }

    fn ban() -> RecommendedAction {
        RecommendedAction {
            action: Action::BanGroup,
            subject: Subject::Target,
        }
    }

    fn marked() -> Effect {
        Effect::SetLabel {
            subject: Subject::Target,
            label: "abusive-member".to_string(),
            ttl_seconds: 604_800,
        }
    }

    #[test]
    fn manifest_declares_the_counters_it_reads() {
        let manifest = InviteLinkAbuse::manifest();
        assert_eq!(manifest.name, "invite-link-abuse");
        assert_eq!(
            manifest.event_kinds,
            ["group.invite_link_shared", "group.joined"]
        );
        let [shares, public, joins] = &manifest.counters[..] else {
            panic!("expected three counters, got {:?}", manifest.counters);
        };
        assert_eq!(shares.name, "shares");
        assert_eq!(shares.event_kinds, ["group.invite_link_shared"]);
        assert_eq!(shares.aggregation, Aggregation::Count);
        assert_eq!(shares.key, CounterKey::Target);
        assert_eq!(shares.filter, CounterFilter::All);
        assert_eq!(shares.window_seconds, HOUR);
        assert_eq!(public.name, "public_shares");
        assert_eq!(public.event_kinds, ["group.invite_link_shared"]);
        assert_eq!(public.key, CounterKey::Target);
        assert_eq!(public.filter, CounterFilter::IsTrue("public".into()));
        assert_eq!(public.window_seconds, DAY);
        assert_eq!(joins.name, "link_joins");
        assert_eq!(joins.event_kinds, ["group.joined"]);
        assert_eq!(joins.key, CounterKey::Target);
        assert_eq!(
            joins.filter,
            CounterFilter::IsTrue("via_invite_link".into())
        );
        assert_eq!(joins.window_seconds, HOUR);
    }

    #[test]
    fn ordinary_shares_and_joins_are_allowed() {
        let state = counters(4, 1, 12);
        assert!(run(&share(false), &state).is_allow());
        assert!(run(&share(true), &state).is_allow());
        assert!(run(&join(), &state).is_allow());
        assert!(run(&join(), &StateFixture::new()).is_allow());
    }

    #[test]
    fn public_share_of_a_harmful_group_bans_it() {
        for label in ["known-csam-media", "harmful-text"] {
            let state = StateFixture::new().label(Subject::Target, label);
            let verdict = run(&share(true), &state);
            assert_eq!(verdict.severity, Severity::Block, "{label}");
            assert_eq!(verdict.score, 0.95);
            assert_eq!(verdict.actions, [ban()]);
            assert!(verdict.effects.is_empty());
            assert_eq!(codes(&verdict), ["harmful-group-public-link"]);
            let explanation = &verdict.reasons[0].explanation;
            assert!(explanation.contains(label), "{explanation}");
            assert!(
                explanation.contains("this share is public"),
                "{explanation}"
            );
        }
    }

    #[test]
    fn harmful_group_shared_publicly_earlier_is_banned_on_any_event() {
        let state = counters(1, 1, 1).label(Subject::Target, "harmful-text");
        // A private share and a join, after a public share in the day.
        for event in [share(false), join()] {
            let verdict = run(&event, &state);
            assert_eq!(verdict.severity, Severity::Block, "{}", event.kind);
            assert_eq!(verdict.actions, [ban()]);
            assert!(
                verdict.reasons[0]
                    .explanation
                    .ends_with("(public shares in the last day: 1)")
            );
        }
    }

    #[test]
    fn harmful_group_shared_only_privately_is_not_banned() {
        let state = counters(5, 0, 5).label(Subject::Target, "known-csam-media");
        assert!(run(&share(false), &state).is_allow());
        assert!(run(&join(), &state).is_allow());
        // A public share of a group without those labels is ordinary.
        let unlabelled = counters(5, 5, 5).label(Subject::Target, "abusive-member");
        assert!(run(&share(true), &unlabelled).is_allow());
    }

    #[test]
    fn labelled_account_joining_marks_the_group() {
        for label in ["known-csam-media", "mass-forwarder", "stranger-sprayer"] {
            let state = StateFixture::new().label(Subject::Actor, label);
            let verdict = run(&join(), &state);
            assert_eq!(verdict.severity, Severity::Review, "{label}");
            assert_eq!(verdict.score, 0.5);
            assert!(verdict.actions.is_empty());
            assert_eq!(verdict.effects, [marked()]);
            assert_eq!(codes(&verdict), ["abusive-member-joined"]);
            let explanation = &verdict.reasons[0].explanation;
            assert!(explanation.contains("account joiner"), "{explanation}");
            assert!(explanation.contains(label), "{explanation}");
        }
    }

    #[test]
    fn other_account_labels_do_not_mark_the_group() {
        let state = StateFixture::new()
            .label(Subject::Actor, "new-account-burst")
            .label(Subject::Actor, "harmful-text");
        assert!(run(&join(), &state).is_allow());
    }

    #[test]
    fn labelled_account_sharing_a_link_does_not_mark_the_group() {
        let state = StateFixture::new().label(Subject::Actor, "stranger-sprayer");
        let verdict = run(&share(false), &state);
        assert!(verdict.is_allow());
        assert!(verdict.effects.is_empty());
    }

    #[test]
    fn abusive_group_recruiting_through_its_link_is_limited_at_fifty() {
        let state = |joins| counters(0, 0, joins).label(Subject::Target, "abusive-member");
        assert!(run(&join(), &state(49)).is_allow());
        let verdict = run(&join(), &state(50));
        assert_eq!(verdict.severity, Severity::Limit);
        assert_eq!(verdict.score, 0.8);
        assert!(verdict.actions.is_empty());
        assert!(verdict.effects.is_empty());
        assert_eq!(codes(&verdict), ["abusive-group-link-joins"]);
        assert!(
            verdict.reasons[0]
                .explanation
                .contains("50 accounts joined")
        );
        // On a share too: the counter is the group's.
        assert_eq!(run(&share(false), &state(50)).severity, Severity::Limit);
        // Without the label, 50 link joins are ordinary.
        assert!(run(&join(), &counters(0, 0, 50)).is_allow());
    }

    #[test]
    fn spike_edges_go_to_review() {
        let cases = [
            (counters(0, 0, 199), counters(0, 0, 200)),
            (counters(99, 0, 0), counters(100, 0, 0)),
            (counters(0, 19, 0), counters(0, 20, 0)),
        ];
        for (below, at) in cases {
            assert!(run(&share(false), &below).is_allow());
            let verdict = run(&share(false), &at);
            assert_eq!(verdict.severity, Severity::Review);
            assert_eq!(verdict.score, 0.5);
            assert!(verdict.actions.is_empty());
            assert!(verdict.effects.is_empty());
            assert_eq!(codes(&verdict), ["invite-link-spike"]);
        }
        let verdict = run(&join(), &counters(120, 30, 250));
        let explanation = &verdict.reasons[0].explanation;
        assert!(explanation.contains("250 joins"), "{explanation}");
        assert!(explanation.contains("120 link shares"), "{explanation}");
        assert!(explanation.contains("30 public shares"), "{explanation}");
    }

    #[test]
    fn the_most_severe_wins_with_every_reason() {
        let state = counters(150, 25, 300)
            .label(Subject::Target, "harmful-text")
            .label(Subject::Target, "abusive-member")
            .label(Subject::Actor, "mass-forwarder");
        let verdict = run(&join(), &state);
        assert_eq!(verdict.severity, Severity::Block);
        assert_eq!(verdict.score, 0.95);
        assert_eq!(verdict.actions, [ban()]);
        assert_eq!(verdict.effects, [marked()]);
        assert_eq!(
            codes(&verdict),
            [
                "harmful-group-public-link",
                "abusive-member-joined",
                "abusive-group-link-joins",
                "invite-link-spike",
            ]
        );

        let limit = counters(0, 0, 200)
            .label(Subject::Target, "abusive-member")
            .label(Subject::Actor, "stranger-sprayer");
        let verdict = run(&join(), &limit);
        assert_eq!(verdict.severity, Severity::Limit);
        assert_eq!(verdict.score, 0.8);
        assert!(verdict.actions.is_empty());
        assert_eq!(verdict.effects, [marked()]);
        assert_eq!(
            codes(&verdict),
            [
                "abusive-member-joined",
                "abusive-group-link-joins",
                "invite-link-spike",
            ]
        );
    }

    #[test]
    fn no_group_target_is_allowed() {
        let state = counters(500, 500, 500)
            .label(Subject::Target, "harmful-text")
            .label(Subject::Actor, "mass-forwarder");
        let no_target = EventFixture::new("group.invite_link_shared").bool("public", true);
        assert!(run(&no_target, &state).is_allow());
        let account_target = EventFixture::new("group.joined").target(Entity::account("x"));
        assert!(run(&account_target, &state).is_allow());
    }

    #[test]
    fn missing_or_odd_public_flag_is_not_public() {
        let state = StateFixture::new().label(Subject::Target, "harmful-text");
        let bare = EventFixture::new("group.invite_link_shared").target(Entity::group("g1"));
        assert!(run(&bare, &state).is_allow());
        assert!(run(&bare.clone().text("public", "true"), &state).is_allow());
        assert!(run(&bare.clone().int("public", 1), &state).is_allow());
        assert!(run(&bare.attr("public", Value::BoolList(vec![true])), &state).is_allow());
    }

    #[test]
    fn join_without_attributes_is_judged_on_state_alone() {
        let bare = EventFixture::new("group.joined").target(Entity::group("g1"));
        assert!(run(&bare, &StateFixture::new()).is_allow());
        let state = StateFixture::new().label(Subject::Actor, "known-csam-media");
        assert_eq!(run(&bare, &state).severity, Severity::Review);
    }
}
