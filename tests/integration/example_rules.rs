//! The eight example rules, built to wasm, through the real pipeline under
//! the example policy, with state the engine keeps itself: every counter a
//! rule reads is built up here from sequences of events, and every label a
//! rule reads was set by another rule on an earlier event. Each rule is
//! shown firing on the behaviour it targets, at the exact event that
//! crosses its threshold, and staying quiet on ordinary behaviour.

use std::cell::Cell;
use std::sync::Arc;

use enforcer::banks::{BankEntry, HashBanks};
use enforcer::decision::{Decision, EnforcementAction, LabelChange, RuleReport};
use enforcer::event::{Entity, Event, Value};
use enforcer::examples::{EXAMPLE_POLICY, EXAMPLE_RULES, load_example_rules};
use enforcer::pipeline::{Pipeline, PipelineOptions};
use enforcer::policy::Policy;
use enforcer::runtime::Runtime;
use enforcer::verdict::{Action, Severity};

/// Event time the scenarios start at (late November 2025), in ms.
const T0: i64 = 1_764_000_000_000;
const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// An account three days old: young for `stranger-spray` (under 30 days),
/// not new for `new-account-burst` (under a day).
const THREE_DAYS_OLD: i64 = 3 * 86_400;
/// An account over a year old.
const OLD: i64 = 400 * 86_400;

/// The id of the entry the `known-csam` bank holds [`bank_hash`] under.
const BANK_ENTRY: &str = "csam-0001";

/// A fixed, irregular 256-bit PDQ hash for the bank.
fn bank_hash() -> [u8; 32] {
    let mut hash = [0u8; 32];
    let mut x: u32 = 0x9e37_79b9;
    for byte in &mut hash {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *byte = (x >> 7) as u8;
    }
    hash
}

/// `hash` with its first `bits` bits flipped: exactly `bits` away.
fn flipped(hash: [u8; 32], bits: usize) -> [u8; 32] {
    let mut out = hash;
    for bit in 0..bits {
        out[bit / 8] ^= 1 << (bit % 8);
    }
    out
}

/// The banks every scenario runs with: `known-csam` holds [`bank_hash`] and
/// a hash as far from it as a hash can be.
fn banks() -> HashBanks {
    let far = bank_hash().map(|b| !b);
    HashBanks::new().with_entries(
        "known-csam",
        [
            BankEntry::new(BANK_ENTRY, bank_hash()),
            BankEntry::new("csam-0002", far),
        ],
    )
}

/// A pipeline with all eight example rules and the example policy, and
/// helpers that send the event vocabulary of `plugins/EVENTS.md` through
/// it with unique event ids.
struct Sim {
    pipeline: Pipeline,
    next_id: Cell<u64>,
}

impl Sim {
    fn new() -> Self {
        let runtime = Runtime::new().expect("runtime");
        let rules = load_example_rules(&runtime)
            .unwrap_or_else(|(name, error)| panic!("load example rule {name}: {error:?}"));
        let mut names: Vec<&str> = rules.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "fake-profile",
                "harmful-text",
                "invite-link-abuse",
                "known-hash-match",
                "mass-forwarding",
                "new-account-burst",
                "report-velocity",
                "stranger-spray",
            ]
        );
        let policy = Policy::parse(EXAMPLE_POLICY).expect("the example policy parses");
        let options = PipelineOptions {
            banks: banks(),
            ..PipelineOptions::default()
        };
        let pipeline = Pipeline::new(rules, policy, options).expect("pipeline");
        Sim {
            pipeline,
            next_id: Cell::new(0),
        }
    }

    fn id(&self, kind: &str) -> String {
        let n = self.next_id.get() + 1;
        self.next_id.set(n);
        format!("{kind}-{n:06}")
    }

    /// Decide `event`, which must be new and valid, and which no rule may
    /// fail on.
    fn run(&self, event: Event) -> Arc<Decision> {
        let id = event.id.clone();
        let evaluation = self
            .pipeline
            .evaluate(event)
            .unwrap_or_else(|e| panic!("event {id} refused: {e}"));
        assert!(!evaluation.duplicate, "event {id} was taken for a repeat");
        let decision = evaluation.decision;
        for report in &decision.rules {
            assert!(
                report.error.is_none(),
                "{} failed on {id}: {:?}",
                report.rule,
                report.error
            );
        }
        assert_eq!(&*decision.policy_version, "examples-1");
        decision
    }

    fn event(&self, kind: &str, actor: &str, at: i64) -> Event {
        Event::new(self.id(kind), kind, at, Entity::account(actor))
    }

    fn forward(&self, actor: &str, chats: i64, at: i64) -> Arc<Decision> {
        let id = self.id("msg");
        self.run(
            self.event("message.forwarded", actor, at)
                .with("chat_count", Value::Int(chats))
                .with("message_id", Value::Text(id))
                .with("forward_depth", Value::Int(1)),
        )
    }

    fn message(
        &self,
        actor: &str,
        to: &str,
        to_contact: bool,
        age_seconds: i64,
        at: i64,
    ) -> Arc<Decision> {
        let id = self.id("msg");
        self.run(
            self.event("message.sent", actor, at)
                .with_target(Entity::account(to))
                .with("actor_age_seconds", Value::Int(age_seconds))
                .with("to_contact", Value::Bool(to_contact))
                .with("has_media", Value::Bool(false))
                .with("message_id", Value::Text(id)),
        )
    }

    fn block(&self, by: &str, blocked: &str, at: i64) -> Arc<Decision> {
        self.run(
            self.event("account.blocked", by, at)
                .with_target(Entity::account(blocked)),
        )
    }

    fn report(&self, by: &str, target: Entity, reason: &str, at: i64) -> Arc<Decision> {
        self.run(
            self.event("report.filed", by, at)
                .with_target(target)
                .with("reason", Value::Text(reason.into())),
        )
    }

    fn photo(&self, actor: &str, hash: [u8; 32], quality: i64, at: i64) -> Arc<Decision> {
        let media = self.id("media");
        self.run(
            self.event("media.profile_photo", actor, at)
                .with("pdq_hash", Value::Bytes(hash.to_vec()))
                .with("pdq_quality", Value::Int(quality))
                .with("media_id", Value::Text(media)),
        )
    }

    fn icon(
        &self,
        actor: &str,
        group: &str,
        hash: [u8; 32],
        quality: i64,
        at: i64,
    ) -> Arc<Decision> {
        let media = self.id("media");
        self.run(
            self.event("media.group_icon", actor, at)
                .with_target(Entity::group(group))
                .with("pdq_hash", Value::Bytes(hash.to_vec()))
                .with("pdq_quality", Value::Int(quality))
                .with("media_id", Value::Text(media)),
        )
    }

    fn profile_text(&self, actor: &str, label: &str, score: f64, at: i64) -> Arc<Decision> {
        self.run(
            self.event("profile.updated", actor, at)
                .with("field", Value::Text("description".into()))
                .with("classifier_score", Value::Float(score))
                .with("classifier_label", Value::Text(label.into())),
        )
    }

    fn group_text(
        &self,
        editor: &str,
        group: &str,
        label: &str,
        score: f64,
        at: i64,
    ) -> Arc<Decision> {
        self.run(
            self.event("group.updated", editor, at)
                .with_target(Entity::group(group))
                .with("field", Value::Text("description".into()))
                .with("classifier_score", Value::Float(score))
                .with("classifier_label", Value::Text(label.into())),
        )
    }

    fn share(&self, actor: &str, group: &str, public: bool, at: i64) -> Arc<Decision> {
        let link = format!("link-{group}");
        self.run(
            self.event("group.invite_link_shared", actor, at)
                .with_target(Entity::group(group))
                .with("public", Value::Bool(public))
                .with("link_id", Value::Text(link)),
        )
    }

    fn join(&self, actor: &str, group: &str, via_link: bool, at: i64) -> Arc<Decision> {
        self.run(
            self.event("group.joined", actor, at)
                .with_target(Entity::group(group))
                .with("via_invite_link", Value::Bool(via_link)),
        )
    }

    /// A profile snapshot of `actor` with `profile`'s attributes.
    fn snapshot(&self, actor: &str, profile: &[(&str, Value)], at: i64) -> Arc<Decision> {
        self.run(snapshot_event(self.id("snapshot"), actor, profile, at))
    }

    fn has_label(&self, entity: &Entity, label: &str, at: i64) -> bool {
        self.pipeline.live_state().has_label(entity, label, at)
    }

    fn labels(&self, entity: &Entity, at: i64) -> Vec<String> {
        self.pipeline.live_state().labels(entity, at)
    }
}

/// Event time that moves on by a fixed step at each tick.
struct Clock {
    now: Cell<i64>,
    step: i64,
}

impl Clock {
    fn new(start: i64, step: i64) -> Self {
        Clock {
            now: Cell::new(start),
            step,
        }
    }

    fn tick(&self) -> i64 {
        self.now.set(self.now.get() + self.step);
        self.now.get()
    }

    fn now(&self) -> i64 {
        self.now.get()
    }
}

fn account(id: &str) -> Entity {
    Entity::account(id)
}

fn group(id: &str) -> Entity {
    Entity::group(id)
}

fn act(action: Action, entity: Entity) -> EnforcementAction {
    EnforcementAction { action, entity }
}

/// The report of `name` in `decision`; it must have run.
fn rule<'a>(decision: &'a Decision, name: &str) -> &'a RuleReport {
    decision
        .rules
        .iter()
        .find(|r| &*r.rule == name)
        .unwrap_or_else(|| {
            let ran: Vec<&str> = decision.rules.iter().map(|r| &*r.rule).collect();
            panic!("{name} did not run on {}; ran: {ran:?}", decision.event.id)
        })
}

/// The rules that said more than allow.
fn fired(decision: &Decision) -> Vec<&str> {
    decision.fired().map(|r| &*r.rule).collect()
}

fn codes(report: &RuleReport) -> Vec<&str> {
    report.reasons.iter().map(|r| r.code.as_str()).collect()
}

/// Every explanation of a report, joined, for `contains` checks.
fn explained(report: &RuleReport) -> String {
    report
        .reasons
        .iter()
        .map(|r| r.explanation.as_str())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The labels the decision set: entity, label, expiry.
fn labels_set(decision: &Decision) -> Vec<(Entity, &str, i64)> {
    decision
        .label_changes
        .iter()
        .filter_map(|change| match change {
            LabelChange::Set {
                entity,
                label,
                expires_at_ms,
                ..
            } => Some((entity.clone(), label.as_str(), *expires_at_ms)),
            LabelChange::Clear { .. } => None,
        })
        .collect()
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() < 1e-9,
        "{what}: {actual} is not {expected}"
    );
}

/// Nothing happened: allow, no rule fired, no action, no label change.
#[track_caller]
fn assert_quiet(decision: &Decision) {
    assert_eq!(
        decision.outcome.severity,
        Severity::Allow,
        "{}: {:?}",
        decision.event.id,
        decision.rules
    );
    assert!(
        fired(decision).is_empty(),
        "{}: {:?}",
        decision.event.id,
        decision.rules
    );
    assert!(decision.outcome.actions.is_empty(), "{decision:?}");
    assert!(decision.label_changes.is_empty(), "{decision:?}");
}

/// A decision's severity and the one rule that fired, with its severity.
#[track_caller]
fn assert_fired(decision: &Decision, name: &str, rule_severity: Severity, severity: Severity) {
    assert_eq!(
        fired(decision),
        [name],
        "{}: {:?}",
        decision.event.id,
        decision.rules
    );
    assert_eq!(
        rule(decision, name).severity,
        rule_severity,
        "{name} on {}: {:?}",
        decision.event.id,
        rule(decision, name)
    );
    assert_eq!(
        decision.outcome.severity, severity,
        "decision on {} (score {}): {:?}",
        decision.event.id, decision.outcome.score, decision.rules
    );
}

// ---------------------------------------------------------------------------
// 1. mass-forwarding
// ---------------------------------------------------------------------------

/// One message forwarded to 45 chats at once: the rule limits forwarding,
/// and the decision is a limit on forwarding with the account labelled.
#[test]
fn mass_forwarding_one_forward_to_45_chats_limits_forwarding() {
    let sim = Sim::new();
    let spreader = account("spreader");

    let decision = sim.forward("spreader", 45, T0);
    assert_eq!(fired(&decision), ["mass-forwarding"]);
    let own = rule(&decision, "mass-forwarding");
    assert_eq!(own.severity, Severity::Limit);
    assert_eq!(
        own.actions,
        [act(Action::LimitForwarding, spreader.clone())]
    );
    assert_eq!(codes(own), ["mass-forward"]);
    assert!(
        explained(own).contains("forwarded to 45 chats at once, 45 in the last hour"),
        "{}",
        explained(own)
    );
    assert_eq!(
        decision.outcome.actions,
        [act(Action::LimitForwarding, spreader.clone())]
    );
    assert_eq!(
        labels_set(&decision),
        [(spreader.clone(), "mass-forwarder", T0 + DAY)]
    );
    assert!(sim.has_label(&spreader, "mass-forwarder", T0));
    // The rule limits; nothing recommends blocking anyone, so neither does
    // the decision.
    assert_eq!(
        decision.outcome.severity,
        Severity::Limit,
        "a Limit verdict (the only verdict) became a {:?} decision with score {} and \
         actions {:?}",
        decision.outcome.severity,
        decision.outcome.score,
        decision.outcome.actions
    );
}

/// Fan-out at its threshold, forwards adding up over the hour to the review
/// and then the limit threshold (at exactly the event that crosses each),
/// and ordinary forwarding.
#[test]
fn mass_forwarding_fanout_edge_and_hourly_sum_cross_review_then_limit() {
    let sim = Sim::new();

    // Ordinary forwarding.
    assert_quiet(&sim.forward("ordinary", 3, T0));
    assert!(sim.labels(&account("ordinary"), T0).is_empty());

    // Fan-out edge: 19 chats at once is allowed, 20 limits.
    assert_quiet(&sim.forward("fanout-19", 19, T0));
    let at_20 = sim.forward("fanout-20", 20, T0);
    assert_fired(&at_20, "mass-forwarding", Severity::Limit, Severity::Limit);
    assert_eq!(
        at_20.outcome.actions,
        [act(Action::LimitForwarding, account("fanout-20"))]
    );
    assert!(sim.has_label(&account("fanout-20"), "mass-forwarder", T0));

    // Five chats at a time, every 30 seconds: the hourly sum reaches 100
    // at the 20th forward and 300 at the 60th.
    let forwarder = account("forwarder");
    for n in 1..=60i64 {
        let at = T0 + n * 30 * SECOND;
        let decision = sim.forward("forwarder", 5, at);
        let sum = 5 * n;
        match n {
            1..=19 => assert_quiet(&decision),
            20..=59 => {
                assert_fired(
                    &decision,
                    "mass-forwarding",
                    Severity::Review,
                    Severity::Review,
                );
                let own = rule(&decision, "mass-forwarding");
                assert_eq!(codes(own), ["forward-velocity"]);
                assert!(
                    explained(own).contains(&format!("{sum} forwards in the last hour")),
                    "{}",
                    explained(own)
                );
                assert!(decision.outcome.actions.is_empty());
                assert!(decision.label_changes.is_empty());
                assert!(!sim.has_label(&forwarder, "mass-forwarder", at));
            }
            _ => {
                assert_fired(
                    &decision,
                    "mass-forwarding",
                    Severity::Limit,
                    Severity::Limit,
                );
                let own = rule(&decision, "mass-forwarding");
                assert_eq!(codes(own), ["mass-forward"]);
                assert!(
                    explained(own).contains("forwarded to 5 chats at once, 300 in the last hour"),
                    "{}",
                    explained(own)
                );
                assert_eq!(
                    decision.outcome.actions,
                    [act(Action::LimitForwarding, forwarder.clone())]
                );
                assert_eq!(
                    labels_set(&decision),
                    [(forwarder.clone(), "mass-forwarder", at + DAY)]
                );
                assert!(sim.has_label(&forwarder, "mass-forwarder", at));
            }
        }
    }
    // Someone else's forwards never counted towards it.
    assert_quiet(&sim.forward("ordinary", 3, T0 + 31 * MINUTE));
}

// ---------------------------------------------------------------------------
// 2. stranger-spray
// ---------------------------------------------------------------------------

/// A young account messaging non-contacts: review at 20 distinct strangers,
/// limit at 50; messages to contacts and repeats never count; an old
/// account at the same volume is left alone.
#[test]
fn stranger_spray_volume_reviews_a_young_account_then_limits() {
    let sim = Sim::new();
    let sprayer = account("sprayer");
    let clock = Clock::new(T0, 20 * SECOND);
    let tick = || clock.tick();

    // Thirty contacts, messaged twice each: ordinary, and never counted.
    for _ in 0..2 {
        for c in 0..30 {
            let decision = sim.message(
                "sprayer",
                &format!("contact-{c}"),
                true,
                THREE_DAYS_OLD,
                tick(),
            );
            assert_quiet(&decision);
        }
    }
    // Nineteen strangers, and the first five again: still below 20.
    for s in 1..=19 {
        assert_quiet(&sim.message(
            "sprayer",
            &format!("stranger-{s}"),
            false,
            THREE_DAYS_OLD,
            tick(),
        ));
    }
    for s in 1..=5 {
        assert_quiet(&sim.message(
            "sprayer",
            &format!("stranger-{s}"),
            false,
            THREE_DAYS_OLD,
            tick(),
        ));
    }
    // The 20th distinct stranger: review, as the account is young.
    for s in 20..=49 {
        let decision = sim.message(
            "sprayer",
            &format!("stranger-{s}"),
            false,
            THREE_DAYS_OLD,
            tick(),
        );
        assert_fired(
            &decision,
            "stranger-spray",
            Severity::Review,
            Severity::Review,
        );
        let own = rule(&decision, "stranger-spray");
        assert_eq!(codes(own), ["young-stranger-spray"]);
        assert!(
            explained(own).contains(&format!("messaged {s} non-contacts in the last hour")),
            "{}",
            explained(own)
        );
        assert!(explained(own).contains("3 days old"), "{}", explained(own));
        assert!(decision.outcome.actions.is_empty());
        assert!(decision.label_changes.is_empty());
    }
    // A message to a contact now says nothing new: it does not count.
    let to_contact = sim.message("sprayer", "contact-1", true, THREE_DAYS_OLD, tick());
    assert!(explained(rule(&to_contact, "stranger-spray")).contains("messaged 49 non-contacts"));
    assert!(!sim.has_label(&sprayer, "stranger-sprayer", clock.now()));

    // The 50th distinct stranger: limit and label.
    let limit_at = tick();
    let decision = sim.message("sprayer", "stranger-50", false, THREE_DAYS_OLD, limit_at);
    assert_fired(
        &decision,
        "stranger-spray",
        Severity::Limit,
        Severity::Limit,
    );
    let own = rule(&decision, "stranger-spray");
    assert_eq!(codes(own), ["stranger-spray-volume"]);
    assert!(explained(own).contains("messaged 50 non-contacts in the last hour (limit at 50)"));
    assert!(decision.outcome.actions.is_empty());
    assert_eq!(
        labels_set(&decision),
        [(sprayer.clone(), "stranger-sprayer", limit_at + 7 * DAY)]
    );
    assert!(sim.has_label(&sprayer, "stranger-sprayer", limit_at));

    // An old account messaging 30 strangers, no pushback: not suspicious.
    let mut at = T0;
    for s in 1..=30 {
        at += 30 * SECOND;
        let decision = sim.message("old-sender", &format!("stranger-{s}"), false, OLD, at);
        assert_quiet(&decision);
    }
    assert!(sim.labels(&account("old-sender"), at).is_empty());
}

/// Recipients pushing back: blocks and spam reporters add up to a limit at
/// 5 and a block at 15, with the sprayer blocked.
#[test]
fn stranger_spray_blocks_and_spam_reports_block_the_sprayer() {
    let sim = Sim::new();
    let sprayer = account("sprayer-2");
    let clock = Clock::new(T0, 10 * SECOND);
    let tick = || clock.tick();
    let send = |to: &str, at: i64| sim.message("sprayer-2", to, false, THREE_DAYS_OLD, at);

    for s in 1..=25 {
        let decision = send(&format!("stranger-{s}"), tick());
        let expected = if s < 20 {
            Severity::Allow
        } else {
            Severity::Review
        };
        assert_eq!(decision.outcome.severity, expected, "stranger {s}");
    }

    // Four blocks: complaints below the limit, still a young-account review.
    for b in 1..=4 {
        let blocked = sim.block(&format!("stranger-{b}"), "sprayer-2", tick());
        assert_quiet(&blocked);
        assert!(blocked.rules.is_empty(), "no rule reads account.blocked");
    }
    let decision = send("stranger-1", tick());
    assert_fired(
        &decision,
        "stranger-spray",
        Severity::Review,
        Severity::Review,
    );
    assert_eq!(
        codes(rule(&decision, "stranger-spray")),
        ["young-stranger-spray"]
    );

    // The fifth block: limit, for the complaints.
    assert_quiet(&sim.block("stranger-5", "sprayer-2", tick()));
    let decision = send("stranger-2", tick());
    assert_fired(
        &decision,
        "stranger-spray",
        Severity::Limit,
        Severity::Limit,
    );
    let own = rule(&decision, "stranger-spray");
    assert_eq!(codes(own), ["stranger-spray-complaints"]);
    assert!(
        explained(own).contains("blocked 5 times and reported for spam by 0 accounts"),
        "{}",
        explained(own)
    );
    assert!(decision.outcome.actions.is_empty());
    assert!(sim.has_label(&sprayer, "stranger-sprayer", clock.now()));

    // Ten blocks and four spam reporters (one reporting twice, and a scam
    // report that is not spam): fourteen complaints, still a limit.
    for b in 6..=10 {
        sim.block(&format!("stranger-{b}"), "sprayer-2", tick());
    }
    for r in 11..=14 {
        sim.report(&format!("stranger-{r}"), sprayer.clone(), "spam", tick());
    }
    sim.report("stranger-11", sprayer.clone(), "spam", tick());
    sim.report("stranger-15", sprayer.clone(), "scam", tick());
    let decision = send("stranger-3", tick());
    assert_fired(
        &decision,
        "stranger-spray",
        Severity::Limit,
        Severity::Limit,
    );
    assert!(
        explained(rule(&decision, "stranger-spray"))
            .contains("blocked 10 times and reported for spam by 4 accounts"),
        "{}",
        explained(rule(&decision, "stranger-spray"))
    );
    assert!(decision.outcome.actions.is_empty());

    // A fifth distinct spam reporter: fifteen complaints, block.
    sim.report("stranger-16", sprayer.clone(), "spam", tick());
    let block_at = tick();
    let decision = send("stranger-4", block_at);
    assert_fired(
        &decision,
        "stranger-spray",
        Severity::Block,
        Severity::Block,
    );
    let own = rule(&decision, "stranger-spray");
    assert_eq!(codes(own), ["stranger-spray-complaints"]);
    assert!(
        explained(own).contains("blocked 10 times and reported for spam by 5 accounts"),
        "{}",
        explained(own)
    );
    assert_eq!(own.actions, [act(Action::BlockAccount, sprayer.clone())]);
    assert_eq!(
        decision.outcome.actions,
        [act(Action::BlockAccount, sprayer.clone())]
    );
    assert_eq!(
        labels_set(&decision),
        [(sprayer.clone(), "stranger-sprayer", block_at + 7 * DAY)]
    );
}

// ---------------------------------------------------------------------------
// 3. report-velocity
// ---------------------------------------------------------------------------

/// Distinct reporters of an account crossing 5, 15 and 40: review, then a
/// limit with the account labelled, then a block of the account. The
/// decision takes the rule's severity; its score is the rule's weighted by
/// the policy's 0.9.
#[test]
fn report_velocity_distinct_reporters_cross_5_15_40() {
    let sim = Sim::new();
    let reported = account("reported");
    let mut at = T0;
    for n in 1..=41u64 {
        at += MINUTE;
        let decision = sim.report(&format!("reporter-{n}"), reported.clone(), "harassment", at);
        let own = rule(&decision, "report-velocity");
        assert_close(own.weight, 0.9, "weight of report-velocity");
        match n {
            1..=4 => assert_quiet(&decision),
            5..=14 => {
                assert_fired(
                    &decision,
                    "report-velocity",
                    Severity::Review,
                    Severity::Review,
                );
                assert_close(own.score, 0.5, "rule score");
                assert_close(decision.outcome.score, 0.45, "decision score");
                assert_eq!(codes(own), ["report-velocity"]);
                assert!(
                    explained(own).contains(&format!(
                        "account reported reported by {n} distinct accounts in the last day"
                    )),
                    "{}",
                    explained(own)
                );
                assert!(decision.outcome.actions.is_empty());
                assert!(decision.label_changes.is_empty());
            }
            15..=39 => {
                assert_fired(
                    &decision,
                    "report-velocity",
                    Severity::Limit,
                    Severity::Limit,
                );
                assert_close(own.score, 0.75, "rule score");
                assert_close(decision.outcome.score, 0.675, "decision score");
                assert_eq!(codes(own), ["report-velocity"]);
                assert!(own.actions.is_empty());
                assert!(decision.outcome.actions.is_empty(), "{decision:?}");
                assert_eq!(
                    labels_set(&decision),
                    [(reported.clone(), "reported-abuse", at + 7 * DAY)]
                );
                assert!(sim.has_label(&reported, "reported-abuse", at));
            }
            _ => {
                assert_fired(
                    &decision,
                    "report-velocity",
                    Severity::Block,
                    Severity::Block,
                );
                assert_close(own.score, 0.9, "rule score");
                assert_close(decision.outcome.score, 0.81, "decision score");
                assert_eq!(codes(own), ["report-velocity"]);
                assert_eq!(own.actions, [act(Action::BlockAccount, reported.clone())]);
                assert!(
                    explained(own).contains(&format!("by {n} distinct accounts")),
                    "{}",
                    explained(own)
                );
                assert_eq!(
                    decision.outcome.actions,
                    [act(Action::BlockAccount, reported.clone())]
                );
                assert_eq!(
                    labels_set(&decision),
                    [(reported.clone(), "reported-abuse", at + 7 * DAY)]
                );
            }
        }
        // Never the reporter.
        assert!(
            sim.labels(&account(&format!("reporter-{n}")), at)
                .is_empty()
        );
    }

    // One account reporting another again and again counts once.
    for n in 0..20 {
        let decision = sim.report(
            "grudge",
            account("neighbour"),
            "harassment",
            T0 + n * MINUTE,
        );
        assert_quiet(&decision);
    }
}

/// Reports on a group: review at 5 distinct reporters, a limit with the
/// group labelled at 15, and at 40 the group is banned, never an account.
#[test]
fn report_velocity_on_a_group_bans_the_group() {
    let sim = Sim::new();
    let reported = group("reported-group");
    let mut at = T0;
    for n in 1..=40 {
        at += MINUTE;
        let decision = sim.report(&format!("reporter-{n}"), reported.clone(), "spam", at);
        let own = rule(&decision, "report-velocity");
        match n {
            1..=4 => assert_quiet(&decision),
            5..=14 => {
                assert_fired(
                    &decision,
                    "report-velocity",
                    Severity::Review,
                    Severity::Review,
                );
                assert!(own.actions.is_empty());
                assert!(decision.outcome.actions.is_empty(), "{decision:?}");
                assert!(decision.label_changes.is_empty());
            }
            15..=39 => {
                assert_fired(
                    &decision,
                    "report-velocity",
                    Severity::Limit,
                    Severity::Limit,
                );
                assert!(own.actions.is_empty());
                assert!(decision.outcome.actions.is_empty(), "{decision:?}");
                assert_eq!(
                    labels_set(&decision),
                    [(reported.clone(), "reported-abuse", at + 7 * DAY)]
                );
                assert!(sim.has_label(&reported, "reported-abuse", at));
            }
            _ => {
                assert_fired(
                    &decision,
                    "report-velocity",
                    Severity::Block,
                    Severity::Block,
                );
                assert_eq!(own.actions, [act(Action::BanGroup, reported.clone())]);
                assert!(
                    explained(own)
                        .contains("group reported-group reported by 40 distinct accounts"),
                    "{}",
                    explained(own)
                );
                assert_eq!(
                    decision.outcome.actions,
                    [act(Action::BanGroup, reported.clone())]
                );
                assert_eq!(
                    labels_set(&decision),
                    [(reported.clone(), "reported-abuse", at + 7 * DAY)]
                );
            }
        }
    }
}

/// Child-safety reports: review at 3 distinct reporters, and at 10 a block
/// of the reported account.
#[test]
fn report_velocity_child_safety_reports_cross_3_and_10() {
    let sim = Sim::new();
    let reported = account("cs-reported");
    let mut at = T0;
    for n in 1..=10u64 {
        at += MINUTE;
        let decision = sim.report(
            &format!("reporter-{n}"),
            reported.clone(),
            "child_safety",
            at,
        );
        let own = rule(&decision, "report-velocity");
        match n {
            1..=2 => assert_quiet(&decision),
            3..=4 => {
                assert_fired(
                    &decision,
                    "report-velocity",
                    Severity::Review,
                    Severity::Review,
                );
                assert_eq!(codes(own), ["child-safety-reports"]);
                assert_close(own.score, 0.6, "rule score");
                assert_close(decision.outcome.score, 0.54, "decision score");
                assert!(
                    explained(own).contains(&format!(
                        "reported for child safety by {n} distinct accounts"
                    )),
                    "{}",
                    explained(own)
                );
                assert!(decision.outcome.actions.is_empty(), "{decision:?}");
                assert!(decision.label_changes.is_empty());
            }
            5..=9 => {
                // Five reporters of any reason are a review of their own.
                assert_fired(
                    &decision,
                    "report-velocity",
                    Severity::Review,
                    Severity::Review,
                );
                assert_eq!(codes(own), ["report-velocity", "child-safety-reports"]);
                assert_close(own.score, 0.6, "rule score");
                assert_close(decision.outcome.score, 0.54, "decision score");
                assert!(decision.outcome.actions.is_empty(), "{decision:?}");
                assert!(decision.label_changes.is_empty());
            }
            _ => {
                assert_fired(
                    &decision,
                    "report-velocity",
                    Severity::Block,
                    Severity::Block,
                );
                assert_eq!(codes(own), ["report-velocity", "child-safety-reports"]);
                assert_close(own.score, 0.95, "rule score");
                assert_close(decision.outcome.score, 0.855, "decision score");
                assert_eq!(own.actions, [act(Action::BlockAccount, reported.clone())]);
                assert_eq!(
                    decision.outcome.actions,
                    [act(Action::BlockAccount, reported.clone())]
                );
                assert_eq!(
                    labels_set(&decision),
                    [(reported.clone(), "reported-abuse", at + 7 * DAY)]
                );
            }
        }
    }
    // Other reasons did not count as child safety: a fresh target with
    // twelve spam reports has no child-safety reason.
    let mut at = T0;
    for n in 1..=12 {
        at += MINUTE;
        let decision = sim.report(
            &format!("reporter-{n}"),
            account("spam-reported"),
            "spam",
            at,
        );
        if n >= 5 {
            assert_eq!(
                codes(rule(&decision, "report-velocity")),
                ["report-velocity"]
            );
        }
    }
}

// ---------------------------------------------------------------------------
// 4. known-hash-match
// ---------------------------------------------------------------------------

/// SHA-256 of `data`, in hex: to check the build a decision names against
/// the embedded wasm, independently of the engine.
fn sha256_hex(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
            *word = u32::from_be_bytes(bytes.try_into().expect("4 bytes"));
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for (k, word) in K.iter().zip(w) {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(*k)
                .wrapping_add(word);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (state, add) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *state = state.wrapping_add(add);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

/// A profile photo within 31 bits of a banked hash: the veto rule blocks and
/// reports the account and removes the photo, naming the entry and the
/// distance, with the exact build that decided.
#[test]
fn known_hash_match_profile_photo_within_31_bits_blocks_and_reports() {
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let sim = Sim::new();
    let owner = account("photo-owner");

    let decision = sim.photo("photo-owner", flipped(bank_hash(), 31), 90, T0);
    assert_fired(
        &decision,
        "known-hash-match",
        Severity::Block,
        Severity::Block,
    );
    let own = rule(&decision, "known-hash-match");
    assert!(own.veto);
    assert_close(own.score, 1.0, "rule score");
    assert_eq!(
        own.actions,
        [
            act(Action::BlockAccount, owner.clone()),
            act(Action::ReportToClearinghouse, owner.clone()),
            act(Action::RemoveMedia, owner.clone()),
        ]
    );
    assert_eq!(
        decision.outcome.actions,
        [
            act(Action::BlockAccount, owner.clone()),
            act(Action::RemoveMedia, owner.clone()),
            act(Action::ReportToClearinghouse, owner.clone()),
        ]
    );
    // Only the near entry, not the far one.
    assert_eq!(codes(own), ["known-hash-match"]);
    let why = explained(own);
    assert!(why.contains("profile photo"), "{why}");
    assert!(
        why.contains(&format!("known-csam entry {BANK_ENTRY} at distance 31")),
        "{why}"
    );
    assert_eq!(
        labels_set(&decision),
        [(owner.clone(), "known-csam-media", T0 + 365 * DAY)]
    );
    assert!(sim.has_label(&owner, "known-csam-media", T0));

    // The report names the build that ran: the embedded wasm's sha256.
    assert_eq!(own.sha256.len(), 64, "{}", own.sha256);
    assert!(
        own.sha256
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{}",
        own.sha256
    );
    let wasm = EXAMPLE_RULES
        .iter()
        .find(|(name, _)| *name == "known-hash-match")
        .map(|(_, wasm)| *wasm)
        .expect("known-hash-match is embedded");
    assert_eq!(&*own.sha256, sha256_hex(wasm));
    assert_eq!(&*own.version, "1.0.0");
}

/// A group icon: the group is banned, its icon removed and the group
/// labelled too; 32 bits away and low-quality hashes are not matched.
#[test]
fn known_hash_match_group_icon_bans_the_group_and_misses_are_allowed() {
    let sim = Sim::new();
    let setter = account("icon-setter");
    let icon_group = group("icon-group");

    let decision = sim.icon("icon-setter", "icon-group", flipped(bank_hash(), 5), 80, T0);
    assert_fired(
        &decision,
        "known-hash-match",
        Severity::Block,
        Severity::Block,
    );
    assert_eq!(
        decision.outcome.actions,
        [
            act(Action::BlockAccount, setter.clone()),
            act(Action::BanGroup, icon_group.clone()),
            act(Action::RemoveMedia, icon_group.clone()),
            act(Action::ReportToClearinghouse, setter.clone()),
        ]
    );
    let why = explained(rule(&decision, "known-hash-match"));
    assert!(why.contains("icon of group icon-group"), "{why}");
    assert!(
        why.contains(&format!("{BANK_ENTRY} at distance 5")),
        "{why}"
    );
    let mut labelled = labels_set(&decision);
    labelled.sort();
    assert_eq!(
        labelled,
        [
            (setter.clone(), "known-csam-media", T0 + 365 * DAY),
            (icon_group.clone(), "known-csam-media", T0 + 365 * DAY),
        ]
    );
    assert!(sim.has_label(&icon_group, "known-csam-media", T0));
    assert!(sim.has_label(&setter, "known-csam-media", T0));

    // 32 bits away: no match.
    let far = sim.photo("near-miss", flipped(bank_hash(), 32), 90, T0 + MINUTE);
    assert_quiet(&far);
    assert!(rule(&far, "known-hash-match").reasons.is_empty());
    assert!(sim.labels(&account("near-miss"), T0 + MINUTE).is_empty());

    // The banked hash itself at quality 49: never matched, and says why.
    let flat = sim.photo("flat-photo", bank_hash(), 49, T0 + 2 * MINUTE);
    assert_quiet(&flat);
    assert_eq!(codes(rule(&flat, "known-hash-match")), ["low-quality-hash"]);
    assert!(
        sim.labels(&account("flat-photo"), T0 + 2 * MINUTE)
            .is_empty()
    );

    // Quality 50 is matched.
    let ok_quality = sim.photo("q50-photo", bank_hash(), 50, T0 + 3 * MINUTE);
    assert_fired(
        &ok_quality,
        "known-hash-match",
        Severity::Block,
        Severity::Block,
    );
    assert!(explained(rule(&ok_quality, "known-hash-match")).contains("at distance 0"));

    // An ordinary photo and an ordinary icon.
    let ordinary = bank_hash().map(|b| b.rotate_left(3) ^ 0x5a);
    assert_quiet(&sim.photo("someone", ordinary, 95, T0 + 4 * MINUTE));
    assert_quiet(&sim.icon("someone", "book-club", ordinary, 95, T0 + 5 * MINUTE));
}

// ---------------------------------------------------------------------------
// 5. harmful-text
// ---------------------------------------------------------------------------

/// Profile descriptions at the classifier thresholds: child sexualization
/// is reviewed from 0.6 and blocks the account from 0.9; spam is reviewed
/// from 0.8 and limits the account, labelled, from 0.97. The decision takes
/// the rule's severity; its score is the rule's weighted by the policy's 0.8.
#[test]
fn harmful_text_profile_descriptions_at_the_thresholds() {
    let sim = Sim::new();
    let at = |n: i64| T0 + n * MINUTE;

    // Ordinary text, and scores just below each review threshold.
    assert_quiet(&sim.profile_text("plain", "none", 0.99, at(0)));
    assert_quiet(&sim.profile_text("cs-below", "child_sexualization", 0.599, at(1)));
    assert_quiet(&sim.profile_text("spam-below", "spam", 0.799, at(2)));

    // Child sexualization at 0.6: review.
    let review = sim.profile_text("cs-review", "child_sexualization", 0.6, at(3));
    assert_fired(&review, "harmful-text", Severity::Review, Severity::Review);
    let own = rule(&review, "harmful-text");
    assert_eq!(codes(own), ["child-sexualization-text"]);
    assert!(own.actions.is_empty());
    assert_close(review.outcome.score, 0.48, "decision score");
    assert!(review.outcome.actions.is_empty(), "{review:?}");
    assert!(review.label_changes.is_empty());

    // Just below the block: still a review, with the classifier's score.
    let almost = sim.profile_text("cs-almost", "child_sexualization", 0.899, at(4));
    assert_fired(&almost, "harmful-text", Severity::Review, Severity::Review);
    assert!(rule(&almost, "harmful-text").actions.is_empty());
    assert_close(almost.outcome.score, 0.8 * 0.899, "decision score");
    assert!(almost.outcome.actions.is_empty(), "{almost:?}");
    assert!(almost.label_changes.is_empty());

    // Child sexualization at 0.9: the account is blocked and labelled.
    let block = sim.profile_text("cs-block", "child_sexualization", 0.9, at(5));
    assert_fired(&block, "harmful-text", Severity::Block, Severity::Block);
    let own = rule(&block, "harmful-text");
    assert_close(own.weight, 0.8, "weight of harmful-text");
    assert_close(own.score, 0.95, "rule score");
    assert_eq!(
        own.actions,
        [act(Action::BlockAccount, account("cs-block"))]
    );
    assert!(
        explained(own).contains("account cs-block description classified child_sexualization"),
        "{}",
        explained(own)
    );
    assert_close(block.outcome.score, 0.76, "decision score");
    assert_eq!(
        block.outcome.actions,
        [act(Action::BlockAccount, account("cs-block"))]
    );
    assert_eq!(
        labels_set(&block),
        [(account("cs-block"), "harmful-text", at(5) + 30 * DAY)]
    );

    // Spam at 0.8 and at 0.969: review; at 0.97: the account is limited
    // and labelled.
    let spam = sim.profile_text("spammer", "spam", 0.8, at(6));
    assert_fired(&spam, "harmful-text", Severity::Review, Severity::Review);
    assert_eq!(codes(rule(&spam, "harmful-text")), ["spam-text"]);
    assert_close(spam.outcome.score, 0.4, "decision score");
    assert!(spam.outcome.actions.is_empty(), "{spam:?}");
    assert!(spam.label_changes.is_empty());
    let spam = sim.profile_text("spammer", "spam", 0.969, at(7));
    assert_fired(&spam, "harmful-text", Severity::Review, Severity::Review);
    assert!(spam.outcome.actions.is_empty(), "{spam:?}");
    assert!(spam.label_changes.is_empty());
    let spam = sim.profile_text("spammer", "spam", 0.97, at(8));
    assert_fired(&spam, "harmful-text", Severity::Limit, Severity::Limit);
    assert!(rule(&spam, "harmful-text").actions.is_empty());
    assert_close(spam.outcome.score, 0.64, "decision score");
    assert!(spam.outcome.actions.is_empty(), "{spam:?}");
    assert_eq!(
        labels_set(&spam),
        [(account("spammer"), "harmful-text", at(8) + 30 * DAY)]
    );
    assert!(sim.has_label(&account("spammer"), "harmful-text", at(8)));
}

/// Group descriptions: the group, never the editor, is acted on. Child
/// sexualization at 0.9 bans the group; a scam at 0.97 limits it.
#[test]
fn harmful_text_group_descriptions_at_the_thresholds() {
    let sim = Sim::new();
    let at = |n: i64| T0 + n * MINUTE;

    assert_quiet(&sim.group_text("editor", "book-club", "none", 1.0, at(0)));
    assert_quiet(&sim.group_text("editor", "book-club", "scam", 0.799, at(1)));

    // Just below the block: a review, carrying the classifier's score.
    let review = sim.group_text("editor", "cs-group", "child_sexualization", 0.899, at(2));
    assert_fired(&review, "harmful-text", Severity::Review, Severity::Review);
    assert!(rule(&review, "harmful-text").actions.is_empty());
    assert_close(review.outcome.score, 0.8 * 0.899, "decision score");
    assert!(review.outcome.actions.is_empty(), "{review:?}");
    assert!(review.label_changes.is_empty());

    // At 0.9: the group is banned and labelled.
    let ban = sim.group_text("editor", "cs-group", "child_sexualization", 0.9, at(3));
    assert_fired(&ban, "harmful-text", Severity::Block, Severity::Block);
    let own = rule(&ban, "harmful-text");
    assert_eq!(own.actions, [act(Action::BanGroup, group("cs-group"))]);
    assert!(
        explained(own).contains("group cs-group description"),
        "{}",
        explained(own)
    );
    assert_close(ban.outcome.score, 0.76, "decision score");
    assert_eq!(
        ban.outcome.actions,
        [act(Action::BanGroup, group("cs-group"))]
    );
    assert_eq!(
        labels_set(&ban),
        [(group("cs-group"), "harmful-text", at(3) + 30 * DAY)]
    );
    assert!(sim.has_label(&group("cs-group"), "harmful-text", at(3)));
    assert!(sim.labels(&account("editor"), at(3)).is_empty());

    // A scam just below the limit: review; at 0.97: the group is limited
    // and labelled.
    let scam = sim.group_text("editor", "scam-group", "scam", 0.969, at(4));
    assert_fired(&scam, "harmful-text", Severity::Review, Severity::Review);
    assert!(scam.outcome.actions.is_empty(), "{scam:?}");
    assert!(scam.label_changes.is_empty());
    let scam = sim.group_text("editor", "scam-group", "scam", 0.97, at(5));
    assert_fired(&scam, "harmful-text", Severity::Limit, Severity::Limit);
    assert_eq!(codes(rule(&scam, "harmful-text")), ["scam-text"]);
    assert!(rule(&scam, "harmful-text").actions.is_empty());
    assert_close(scam.outcome.score, 0.64, "decision score");
    assert!(scam.outcome.actions.is_empty(), "{scam:?}");
    assert_eq!(
        labels_set(&scam),
        [(group("scam-group"), "harmful-text", at(5) + 30 * DAY)]
    );
    assert!(sim.labels(&account("editor"), at(5)).is_empty());
}

// ---------------------------------------------------------------------------
// 6. invite-link-abuse
// ---------------------------------------------------------------------------

/// A group whose icon matched the bank (labelled by known-hash-match on an
/// earlier event) shares its invite link publicly: banned. Private shares
/// before that are allowed; after it, any share within the day is a ban.
#[test]
fn invite_link_abuse_public_link_of_a_csam_group_bans_it() {
    let sim = Sim::new();
    let csam_group = group("csam-group");

    let icon = sim.icon("admin", "csam-group", flipped(bank_hash(), 2), 90, T0);
    assert_eq!(icon.outcome.severity, Severity::Block);
    assert!(sim.has_label(&csam_group, "known-csam-media", T0));

    // A private share: not advertising.
    assert_quiet(&sim.share("member-1", "csam-group", false, T0 + MINUTE));

    // A public share: ban.
    let public = sim.share("member-2", "csam-group", true, T0 + 2 * MINUTE);
    assert_fired(
        &public,
        "invite-link-abuse",
        Severity::Block,
        Severity::Block,
    );
    let own = rule(&public, "invite-link-abuse");
    assert_eq!(codes(own), ["harmful-group-public-link"]);
    let why = explained(own);
    assert!(
        why.contains("group csam-group carries known-csam-media"),
        "{why}"
    );
    assert!(why.contains("this share is public"), "{why}");
    assert_eq!(
        public.outcome.actions,
        [act(Action::BanGroup, csam_group.clone())]
    );
    // Never the account that shared it.
    assert!(sim.labels(&account("member-2"), T0 + 2 * MINUTE).is_empty());

    // A private share three hours later: the public one is still within
    // the day.
    let later = sim.share("member-1", "csam-group", false, T0 + 3 * HOUR);
    assert_fired(
        &later,
        "invite-link-abuse",
        Severity::Block,
        Severity::Block,
    );
    assert!(
        explained(rule(&later, "invite-link-abuse")).contains("public shares in the last day: 1"),
        "{}",
        explained(rule(&later, "invite-link-abuse"))
    );
    assert_eq!(later.outcome.actions, [act(Action::BanGroup, csam_group)]);

    // An ordinary group sharing its link, publicly and privately.
    assert_quiet(&sim.share("member-1", "book-club", true, T0 + 4 * HOUR));
    assert_quiet(&sim.share("member-1", "book-club", false, T0 + 4 * HOUR + MINUTE));
}

/// An account labelled `mass-forwarder` (by mass-forwarding, on an earlier
/// event) joins a group: the group is marked `abusive-member`, and once
/// marked, 50 joins by link in an hour limit it. Ordinary joins are fine.
#[test]
fn invite_link_abuse_abusive_member_marks_the_group() {
    let sim = Sim::new();
    let open_group = group("open-group");

    // Ordinary joins and shares.
    for (n, via_link) in [(1, true), (2, false), (3, true)] {
        let joined = sim.join(
            &format!("friend-{n}"),
            "open-group",
            via_link,
            T0 + n * MINUTE,
        );
        assert_quiet(&joined);
    }
    assert_quiet(&sim.share("friend-1", "open-group", false, T0 + 4 * MINUTE));
    assert!(sim.labels(&open_group, T0 + 4 * MINUTE).is_empty());

    // A mass forwarder, labelled by its own behaviour.
    let forwarded = sim.forward("forwarder-x", 25, T0 + 5 * MINUTE);
    assert_eq!(forwarded.outcome.severity, Severity::Limit);
    assert!(sim.has_label(&account("forwarder-x"), "mass-forwarder", T0 + 5 * MINUTE));

    let join_at = T0 + 6 * MINUTE;
    let joined = sim.join("forwarder-x", "open-group", true, join_at);
    assert_fired(
        &joined,
        "invite-link-abuse",
        Severity::Review,
        Severity::Review,
    );
    let own = rule(&joined, "invite-link-abuse");
    assert_eq!(codes(own), ["abusive-member-joined"]);
    assert!(
        explained(own)
            .contains("account forwarder-x carrying mass-forwarder joined group open-group"),
        "{}",
        explained(own)
    );
    assert!(joined.outcome.actions.is_empty());
    assert_eq!(
        labels_set(&joined),
        [(open_group.clone(), "abusive-member", join_at + 7 * DAY)]
    );
    assert!(sim.has_label(&open_group, "abusive-member", join_at));
    assert!(!sim.has_label(&account("forwarder-x"), "abusive-member", join_at));

    // Recruiting: joins by link in the hour reach 50 (two friends and the
    // forwarder joined by link already) and the marked group is limited.
    for n in 4..=50 {
        let at = join_at + (n - 3) * 30 * SECOND;
        let decision = sim.join(&format!("recruit-{n}"), "open-group", true, at);
        if n < 50 {
            assert_quiet(&decision);
        } else {
            assert_fired(
                &decision,
                "invite-link-abuse",
                Severity::Limit,
                Severity::Limit,
            );
            let own = rule(&decision, "invite-link-abuse");
            assert_eq!(codes(own), ["abusive-group-link-joins"]);
            assert!(
                explained(own).contains("50 accounts joined by invite link in the last hour"),
                "{}",
                explained(own)
            );
            assert!(decision.outcome.actions.is_empty());
        }
    }

    // The same 50 joins into a group nobody abusive joined: nothing.
    for n in 1..=50 {
        let at = T0 + n * 30 * SECOND;
        assert_quiet(&sim.join(&format!("member-{n}"), "clean-group", true, at));
    }
}

// ---------------------------------------------------------------------------
// 7. new-account-burst
// ---------------------------------------------------------------------------

/// An hour-old account sending 60 messages in 10 minutes is limited at the
/// 60th; an old account sending the same, or a new one sending them over
/// 20 minutes, is not.
#[test]
fn new_account_burst_limits_60_messages_in_10_minutes() {
    let sim = Sim::new();
    let newcomer = account("newcomer");

    // To contacts, so that stranger-spray has nothing to say.
    for n in 1..=60i64 {
        let at = T0 + (n - 1) * 9 * SECOND;
        let decision = sim.message("newcomer", &format!("contact-{}", n % 7), true, 3600, at);
        if n < 60 {
            assert_quiet(&decision);
            continue;
        }
        assert_fired(
            &decision,
            "new-account-burst",
            Severity::Limit,
            Severity::Limit,
        );
        let own = rule(&decision, "new-account-burst");
        assert_eq!(codes(own), ["new-account-burst"]);
        let why = explained(own);
        assert!(why.contains("account 1h00m old"), "{why}");
        assert!(
            why.contains("sent 60 messages in the last 10 minutes"),
            "{why}"
        );
        assert!(decision.outcome.actions.is_empty());
        assert_eq!(
            labels_set(&decision),
            [(newcomer.clone(), "new-account-burst", at + DAY)]
        );
        assert!(sim.has_label(&newcomer, "new-account-burst", at));
    }

    // An old account sending exactly the same.
    for n in 1..=61i64 {
        let at = T0 + (n - 1) * 9 * SECOND;
        let decision = sim.message("old-timer", &format!("contact-{}", n % 7), true, OLD, at);
        assert_eq!(
            rule(&decision, "new-account-burst").severity,
            Severity::Allow
        );
        assert!(rule(&decision, "new-account-burst").reasons.is_empty());
        assert_quiet(&decision);
    }
    assert!(sim.labels(&account("old-timer"), T0 + HOUR).is_empty());

    // A new account sending 60 messages over 20 minutes: never 60 in ten.
    for n in 1..=60i64 {
        let at = T0 + (n - 1) * 20 * SECOND;
        let decision = sim.message("steady", &format!("contact-{}", n % 7), true, 3600, at);
        assert_quiet(&decision);
    }
}

// ---------------------------------------------------------------------------
// 8. fake-profile
// ---------------------------------------------------------------------------

/// An `account.snapshot` event with these attributes.
fn snapshot_event(id: String, actor: &str, profile: &[(&str, Value)], at: i64) -> Event {
    profile.iter().fold(
        Event::new(id, "account.snapshot", at, Entity::account(actor)),
        |event, (name, value)| event.with(*name, value.clone()),
    )
}

/// A snapshot's attributes: the counts, then the flags, then an optional
/// description.
fn profile(
    [followers, follows, posts, likes, age_days]: [i64; 5],
    [default_theme, default_image, verified, has_url]: [bool; 4],
    description: Option<&str>,
) -> Vec<(&'static str, Value)> {
    let mut attributes = vec![
        ("followers_count", Value::Int(followers)),
        ("friends_count", Value::Int(follows)),
        ("statuses_count", Value::Int(posts)),
        ("favourites_count", Value::Int(likes)),
        ("listed_count", Value::Int(0)),
        ("account_age_seconds", Value::Int(age_days * 86_400)),
        ("default_profile", Value::Bool(default_theme)),
        ("default_profile_image", Value::Bool(default_image)),
        ("verified", Value::Bool(verified)),
        ("has_url", Value::Bool(has_url)),
    ];
    if let Some(text) = description {
        attributes.push(("description", Value::Text(text.into())));
    }
    attributes
}

/// Snapshots are judged by `fake-profile` alone, through the example
/// policy: a settled account and a verified one pass, looks alone go to
/// review, an automated poster is limited and labelled, a new follow
/// spammer with a bare profile is blocked.
#[test]
fn fake_profile_reviews_limits_and_blocks_by_profile_score() {
    let sim = Sim::new();
    let at = T0;

    let ordinary = profile(
        [180, 240, 2_100, 900, 1_000],
        [false, false, false, true],
        Some("Allotments and bees."),
    );
    let decision = sim.snapshot("gardener", &ordinary, at);
    assert_quiet(&decision);
    assert_eq!(decision.outcome.score, 0.0);

    // One signal (the default image): allowed, but the score is kept.
    let egg = profile(
        [180, 240, 2_100, 900, 1_000],
        [false, true, false, true],
        Some("Allotments and bees."),
    );
    let decision = sim.snapshot("egg", &egg, at);
    assert_quiet(&decision);
    assert_close(decision.outcome.score, 0.25, "one weak signal");

    let bare_new = profile([3, 20, 4, 2, 7], [true, true, false, false], None);
    let decision = sim.snapshot("newcomer", &bare_new, at);
    assert_fired(
        &decision,
        "fake-profile",
        Severity::Review,
        Severity::Review,
    );
    assert_close(decision.outcome.score, 0.65, "looks alone");
    assert_eq!(
        codes(rule(&decision, "fake-profile")),
        [
            "fake-profile",
            "fake-profile-default-image",
            "fake-profile-no-description",
            "fake-profile-young",
            "fake-profile-default-theme",
            "fake-profile-no-url",
        ]
    );
    assert!(decision.outcome.actions.is_empty());
    assert!(decision.label_changes.is_empty());

    let poster = profile(
        [900, 30, 120_000, 0, 730],
        [true, false, false, true],
        Some(""),
    );
    let decision = sim.snapshot("feed-8812", &poster, at);
    assert_fired(&decision, "fake-profile", Severity::Limit, Severity::Limit);
    let why = explained(rule(&decision, "fake-profile"));
    assert!(why.contains("120000 posts in 730 days: 164 a day"), "{why}");
    assert!(decision.outcome.actions.is_empty());
    assert_eq!(
        labels_set(&decision),
        [(account("feed-8812"), "fake-profile", at + 7 * DAY)]
    );
    assert!(sim.has_label(&account("feed-8812"), "fake-profile", at + 7 * DAY - 1));
    assert!(!sim.has_label(&account("feed-8812"), "fake-profile", at + 7 * DAY));

    let spammer = profile([4, 1_900, 4, 2, 7], [true, true, false, false], None);
    let decision = sim.snapshot("follow-5531", &spammer, at);
    assert_fired(&decision, "fake-profile", Severity::Block, Severity::Block);
    assert_close(decision.outcome.score, 0.95, "follow spammer");
    assert_eq!(
        decision.outcome.actions,
        [act(Action::BlockAccount, account("follow-5531"))]
    );
    assert_eq!(
        labels_set(&decision),
        [(account("follow-5531"), "fake-profile", at + 7 * DAY)]
    );

    let verified = profile([4, 1_900, 4, 2, 7], [true, true, true, false], None);
    let decision = sim.snapshot("newsroom", &verified, at);
    assert_quiet(&decision);
    assert_eq!(decision.outcome.score, 0.0);
}

/// The wasm build and the native twin the throughput benchmark runs give
/// the same decision on every combination of the rule's signals.
#[test]
fn fake_profile_wasm_and_native_agree() {
    let runtime = Runtime::new().unwrap();
    let pipeline = |rules: Vec<Arc<dyn enforcer::rule::Rule>>| {
        assert_eq!(rules.len(), 8);
        let policy = Policy::parse(EXAMPLE_POLICY).unwrap();
        Pipeline::new(rules, policy, PipelineOptions::default()).unwrap()
    };
    let wasm = pipeline(load_example_rules(&runtime).unwrap());
    let native = pipeline(enforcer_examples::native::example_rules());

    let mut severities = [0usize; 4];
    for n in 0..512u32 {
        let bit = |b: u32| n & (1 << b) != 0;
        let attributes = profile(
            [
                if bit(0) { 3 } else { 300 },
                if bit(1) { 2_000 } else { 250 },
                if bit(2) {
                    0
                } else if bit(3) {
                    90_000
                } else {
                    800
                },
                if bit(3) { 0 } else { 40 },
                if bit(4) { 5 } else { 700 },
            ],
            [bit(5), bit(6), n % 97 == 0, !bit(7)],
            (!bit(8)).then_some("a description"),
        );
        let event = |id: String| snapshot_event(id, &format!("acct-{n}"), &attributes, T0);
        let a = wasm.evaluate(event(format!("w-{n}"))).unwrap().decision;
        let b = native.evaluate(event(format!("n-{n}"))).unwrap().decision;
        assert_eq!(a.outcome, b.outcome, "snapshot {n}");
        assert_eq!(a.label_changes, b.label_changes, "snapshot {n}");
        assert_eq!(fired(&a), fired(&b), "snapshot {n}");
        let (ra, rb) = (rule(&a, "fake-profile"), rule(&b, "fake-profile"));
        assert_eq!(
            (ra.severity, ra.score, &ra.reasons, &ra.actions),
            (rb.severity, rb.score, &rb.reasons, &rb.actions),
            "snapshot {n}"
        );
        severities[a.outcome.severity as usize] += 1;
    }
    // The grid reaches every severity.
    assert!(severities.iter().all(|&n| n > 0), "{severities:?}");
}

// ---------------------------------------------------------------------------
// 9. window edges
// ---------------------------------------------------------------------------

/// An hour window read at t + 3600 s no longer holds an event at t; read a
/// millisecond earlier it does. Shown for a sum (mass-forwarding's hourly
/// forwards) and a distinct count (stranger-spray's strangers).
#[test]
fn window_edges_through_the_pipeline() {
    let sim = Sim::new();

    // Forwards: 10 chats at T0, eight more of 10 within the hour, and a
    // last 10 that makes 100 only if the one at T0 is still in the window.
    for (actor, last_at) in [("edge-in", T0 + HOUR - 1), ("edge-out", T0 + HOUR)] {
        assert_quiet(&sim.forward(actor, 10, T0));
        for k in 1..=8 {
            assert_quiet(&sim.forward(actor, 10, T0 + k * 5 * MINUTE));
        }
        let last = sim.forward(actor, 10, last_at);
        if actor == "edge-in" {
            assert_fired(&last, "mass-forwarding", Severity::Review, Severity::Review);
            assert!(
                explained(rule(&last, "mass-forwarding")).contains("100 forwards in the last hour")
            );
        } else {
            assert_quiet(&last);
        }
    }
    // Counting goes on past the edge: 80 + 10 + 10 within the hour.
    let next = sim.forward("edge-out", 10, T0 + HOUR + 500);
    assert_fired(&next, "mass-forwarding", Severity::Review, Severity::Review);
    assert!(explained(rule(&next, "mass-forwarding")).contains("100 forwards in the last hour"));

    // Strangers: one at T0, 48 more within the hour, and a 50th distinct
    // that limits only if the first is still in the window.
    for (actor, last_at) in [("spray-in", T0 + HOUR - 1), ("spray-out", T0 + HOUR)] {
        assert_quiet(&sim.message(actor, "stranger-0", false, OLD, T0));
        for s in 1..=48 {
            let at = T0 + s * MINUTE;
            assert_quiet(&sim.message(actor, &format!("stranger-{s}"), false, OLD, at));
        }
        let last = sim.message(actor, "stranger-49", false, OLD, last_at);
        if actor == "spray-in" {
            assert_fired(&last, "stranger-spray", Severity::Limit, Severity::Limit);
            assert!(explained(rule(&last, "stranger-spray")).contains("messaged 50 non-contacts"));
            assert!(sim.has_label(&account(actor), "stranger-sprayer", last_at));
        } else {
            assert_quiet(&last);
            assert!(!sim.has_label(&account(actor), "stranger-sprayer", last_at));
        }
    }
}

// ---------------------------------------------------------------------------
// 10. out of order
// ---------------------------------------------------------------------------

/// A deterministic shuffle (xorshift, Fisher-Yates).
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let j = (seed % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// What one history event is: a forward of some chats, or a message.
#[derive(Clone, Debug)]
enum Step {
    Forward {
        at: i64,
        chats: i64,
    },
    Message {
        at: i64,
        to: String,
        to_contact: bool,
    },
}

/// The same events delivered in event-time order and shuffled (each
/// keeping its event time) leave the same counters: a final event decided
/// after them gets the same decision, with the sums the test computes.
#[test]
fn out_of_order_arrival_gives_the_same_final_decision() {
    let last = T0 + 2 * HOUR;
    let last_second = last / 1000;

    // Forwards over the 80 minutes before the final one, two of them at
    // the window's edge (3600 s before: out; 3599 s before: in).
    let mut history: Vec<Step> = (1..=40i64)
        .map(|i| Step::Forward {
            at: last - i * 2 * MINUTE + (i * 7_919) % 60_000,
            chats: 1 + (i * 7) % 13,
        })
        .collect();
    history.push(Step::Forward {
        at: last - HOUR,
        chats: 9,
    });
    history.push(Step::Forward {
        at: last - HOUR + SECOND,
        chats: 11,
    });
    // Messages from a young account over the same span, to 40 recipients,
    // some of whom have it as a contact.
    for i in 1..=60i64 {
        history.push(Step::Message {
            at: last - i * 80 * SECOND + (i * 4_999) % 30_000,
            to: format!("r-{}", (i * 17) % 40),
            to_contact: i % 5 == 0,
        });
    }

    // What the final events should see, counted here independently.
    let in_window = |at: i64| at / 1000 > last_second - 3600;
    let expected_forwards: i64 = 5 + history
        .iter()
        .filter_map(|s| match s {
            Step::Forward { at, chats } if in_window(*at) => Some(*chats),
            _ => None,
        })
        .sum::<i64>();
    let mut strangers: Vec<&str> = history
        .iter()
        .filter_map(|s| match s {
            Step::Message {
                at,
                to,
                to_contact: false,
            } if in_window(*at) => Some(to.as_str()),
            _ => None,
        })
        .chain(["r-final"])
        .collect();
    strangers.sort_unstable();
    strangers.dedup();
    let expected_strangers = strangers.len();
    assert!(
        (100..300).contains(&expected_forwards),
        "the history must end in the review band: {expected_forwards}"
    );
    assert!(
        (20..50).contains(&expected_strangers),
        "the history must end in the review band: {expected_strangers}"
    );

    let replay = |steps: &[Step]| {
        let sim = Sim::new();
        for step in steps {
            match step {
                Step::Forward { at, chats } => {
                    sim.forward("ooo-forwarder", *chats, *at);
                }
                Step::Message { at, to, to_contact } => {
                    sim.message("ooo-sender", to, *to_contact, THREE_DAYS_OLD, *at);
                }
            }
        }
        let forward = sim.forward("ooo-forwarder", 5, last);
        let message = sim.message("ooo-sender", "r-final", false, THREE_DAYS_OLD, last);
        (forward, message)
    };

    let mut in_order = history.clone();
    in_order.sort_by_key(|s| match s {
        Step::Forward { at, .. } | Step::Message { at, .. } => *at,
    });
    let mut shuffled = history.clone();
    shuffle(&mut shuffled, 0x5eed_1234_abcd_0001);
    assert_ne!(
        format!("{in_order:?}"),
        format!("{shuffled:?}"),
        "the shuffle must change the order"
    );
    // Newest first: every event but the first arrives late.
    let mut reversed = in_order.clone();
    reversed.reverse();

    let (forward, message) = replay(&in_order);
    assert_fired(
        &forward,
        "mass-forwarding",
        Severity::Review,
        Severity::Review,
    );
    assert!(
        explained(rule(&forward, "mass-forwarding"))
            .contains(&format!("{expected_forwards} forwards in the last hour")),
        "expected {expected_forwards}: {}",
        explained(rule(&forward, "mass-forwarding"))
    );
    assert_fired(
        &message,
        "stranger-spray",
        Severity::Review,
        Severity::Review,
    );
    assert!(
        explained(rule(&message, "stranger-spray"))
            .contains(&format!("messaged {expected_strangers} non-contacts")),
        "expected {expected_strangers}: {}",
        explained(rule(&message, "stranger-spray"))
    );

    for order in [&shuffled, &reversed] {
        let (other_forward, other_message) = replay(order);
        for (a, b) in [(&forward, &other_forward), (&message, &other_message)] {
            assert_eq!(a.outcome, b.outcome);
            let strip = |d: &Decision| -> Vec<(String, Severity, f64, Vec<String>)> {
                d.rules
                    .iter()
                    .map(|r| {
                        (
                            r.rule.to_string(),
                            r.severity,
                            r.score,
                            r.reasons.iter().map(|x| x.explanation.clone()).collect(),
                        )
                    })
                    .collect()
            };
            assert_eq!(strip(a), strip(b));
            assert_eq!(a.label_changes, b.label_changes);
        }
    }
}

// ---------------------------------------------------------------------------
// 11. labels expire
// ---------------------------------------------------------------------------

/// `mass-forwarder` lasts a day: a rule reading it an hour later sees it, a
/// rule reading it two days later does not; `abusive-member` lasts 7 days.
#[test]
fn labels_expire_for_the_state_and_for_the_rules_that_read_them() {
    let sim = Sim::new();
    let forwarder = account("day-forwarder");

    let set = sim.forward("day-forwarder", 30, T0);
    assert_eq!(
        labels_set(&set),
        [(forwarder.clone(), "mass-forwarder", T0 + DAY)]
    );
    assert!(!sim.has_label(&forwarder, "mass-forwarder", T0 - 1));
    assert!(sim.has_label(&forwarder, "mass-forwarder", T0));
    assert!(sim.has_label(&forwarder, "mass-forwarder", T0 + DAY - 1));
    assert!(!sim.has_label(&forwarder, "mass-forwarder", T0 + DAY));
    assert_eq!(sim.labels(&forwarder, T0 + 12 * HOUR), ["mass-forwarder"]);
    assert!(sim.labels(&forwarder, T0 + DAY).is_empty());

    // An hour later, joining marks the group.
    let soon_at = T0 + HOUR;
    let soon = sim.join("day-forwarder", "group-soon", true, soon_at);
    assert_fired(
        &soon,
        "invite-link-abuse",
        Severity::Review,
        Severity::Review,
    );
    assert!(sim.has_label(&group("group-soon"), "abusive-member", soon_at));

    // Two days later the label is gone, and joining marks nothing.
    let later_at = T0 + 2 * DAY;
    assert!(!sim.has_label(&forwarder, "mass-forwarder", later_at));
    let later = sim.join("day-forwarder", "group-later", true, later_at);
    assert_quiet(&later);
    assert!(!sim.has_label(&group("group-later"), "abusive-member", later_at));
    assert!(sim.labels(&group("group-later"), later_at).is_empty());

    // The group's mark lasts seven days from the join.
    let soon_group = group("group-soon");
    assert!(sim.has_label(&soon_group, "abusive-member", soon_at + 7 * DAY - 1));
    assert!(!sim.has_label(&soon_group, "abusive-member", soon_at + 7 * DAY));

    // Forwarding again renews the account's label from the new event.
    let renew_at = T0 + 3 * DAY;
    sim.forward("day-forwarder", 30, renew_at);
    assert!(sim.has_label(&forwarder, "mass-forwarder", renew_at + DAY - 1));
    let again = sim.join("day-forwarder", "group-again", true, renew_at + HOUR);
    assert_fired(
        &again,
        "invite-link-abuse",
        Severity::Review,
        Severity::Review,
    );
}

/// A label that expired and is set again later applies from the new event
/// on: it does not reach back over the time it had lapsed. An event from
/// inside the lapse, arriving after the renewal (late, as events may),
/// must not see it, neither in the state nor through a rule that reads it.
#[test]
fn a_label_renewed_after_it_lapsed_does_not_cover_the_lapse() {
    let sim = Sim::new();
    let forwarder = account("lapsing-forwarder");

    sim.forward("lapsing-forwarder", 30, T0);
    let lapsed_at = T0 + 2 * DAY;
    assert!(!sim.has_label(&forwarder, "mass-forwarder", lapsed_at));

    // Labelled again on day three.
    let renew_at = T0 + 3 * DAY;
    let renewed = sim.forward("lapsing-forwarder", 30, renew_at);
    assert_eq!(
        labels_set(&renewed),
        [(forwarder.clone(), "mass-forwarder", renew_at + DAY)]
    );
    assert!(sim.has_label(&forwarder, "mass-forwarder", renew_at));
    assert!(sim.has_label(&forwarder, "mass-forwarder", T0 + HOUR));

    // Day two, between the two labels, is still unlabelled, and a join
    // from day two, arriving late, marks nothing.
    let records = sim.pipeline.live_state().label_records(&forwarder);
    let state_sees_it = sim.has_label(&forwarder, "mass-forwarder", lapsed_at);
    let late_join = sim.join("lapsing-forwarder", "lapse-group", true, lapsed_at);
    assert!(
        !state_sees_it && fired(&late_join).is_empty(),
        "the renewed label reaches back over the lapse: label records {records:?}; \
         has_label at day two: {state_sees_it}; late join on day two fired {:?} and set {:?}",
        fired(&late_join),
        labels_set(&late_join)
    );
    assert_quiet(&late_join);
}
