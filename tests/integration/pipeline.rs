//! The pipeline end to end: decisions with provenance, the shadow decision
//! that changes nothing live, idempotency, failure modes and bad input.

use std::sync::{Arc, Barrier};

use enforcer::decision::{Decision, EnforcementAction, LabelChange};
use enforcer::event::{Entity, Event, Value};
use enforcer::examples::{EXAMPLE_POLICY, load_example_rules};
use enforcer::pipeline::{EvaluateError, Pipeline, PipelineError, PipelineOptions};
use enforcer::policy::{Mode, Policy};
use enforcer::rule::Rule;
use enforcer::runtime::Runtime;
use enforcer::verdict::{Action, Severity};

use crate::common::plugin;

const T0: i64 = 1_764_000_000_000;

fn example_rules(runtime: &Runtime) -> Vec<Arc<dyn Rule>> {
    load_example_rules(runtime).unwrap_or_else(|(name, e)| panic!("load {name}: {e}"))
}

fn demo_options() -> PipelineOptions {
    PipelineOptions {
        banks: enforcer::demo::banks(),
        ..PipelineOptions::default()
    }
}

fn pipeline(rules: Vec<Arc<dyn Rule>>, policy: &str) -> Pipeline {
    Pipeline::new(rules, Policy::parse(policy).unwrap(), demo_options()).unwrap()
}

fn decide(pipeline: &Pipeline, event: &Event) -> Arc<Decision> {
    pipeline.evaluate(event.clone()).unwrap().decision
}

#[test]
fn a_known_hash_decision_names_every_rule_and_carries_every_action() {
    let runtime = Runtime::new().unwrap();
    let pipeline = pipeline(example_rules(&runtime), EXAMPLE_POLICY);
    let mut icon = enforcer::demo::BANKED_HASH;
    icon[5] ^= 0xff; // 8 bits away
    let event = Event::new("icon-1", "media.group_icon", T0, Entity::account("ring-1"))
        .with_target(Entity::group("grp-1"))
        .with("pdq_hash", Value::Bytes(icon.to_vec()))
        .with("pdq_quality", Value::Int(88))
        .with("media_id", Value::Text("m-1".into()));
    let decision = decide(&pipeline, &event);

    assert_eq!(decision.outcome.severity, Severity::Block);
    let account = Entity::account("ring-1");
    let group = Entity::group("grp-1");
    let expected = [
        (Action::BlockAccount, &account),
        (Action::BanGroup, &group),
        (Action::RemoveMedia, &group),
        (Action::ReportToClearinghouse, &account),
    ];
    for (action, entity) in expected {
        assert!(
            decision.outcome.actions.contains(&EnforcementAction {
                action,
                entity: entity.clone()
            }),
            "missing {action:?} on {entity}: {:?}",
            decision.outcome.actions
        );
    }
    let rule_sha = |name: &str| {
        let rule = example_rules(&runtime)
            .into_iter()
            .find(|r| r.name() == name)
            .unwrap();
        rule.sha256().to_string()
    };
    let report = &decision.rules[0];
    assert_eq!(decision.rules.len(), 1, "only the hash rule subscribes");
    assert_eq!(&*report.rule, "known-hash-match");
    assert_eq!(&*report.sha256, rule_sha("known-hash-match"));
    assert_eq!(report.mode, Mode::Enforce);
    assert!(report.veto);
    assert!(report.fuel_used > 0);
    assert!(report.error.is_none());
    let reason = &report.reasons[0];
    assert_eq!(reason.code, "known-hash-match");
    assert!(
        reason.explanation.contains("ncmec-demo-0001") && reason.explanation.contains("distance 8"),
        "{}",
        reason.explanation
    );
    assert_eq!(&*decision.policy_version, "examples-1");
    assert_eq!(decision.id, "dec-icon-1");
    // The evidence survives serialization, as an API client will read it.
    let json = serde_json::to_value(&*decision).unwrap();
    assert_eq!(json["rules"][0]["sha256"], rule_sha("known-hash-match"));
    assert_eq!(json["severity"], "block");
}

/// The demo traffic with the new-account rule in shadow mode must give
/// exactly the live decisions and live state of a pipeline without it.
#[test]
fn a_shadow_rule_changes_nothing_live() {
    let runtime = Runtime::new().unwrap();
    let without: Vec<Arc<dyn Rule>> = example_rules(&runtime)
        .into_iter()
        .filter(|r| r.name() != "new-account-burst")
        .collect();
    let shadow_policy = format!("{EXAMPLE_POLICY}\n[rules.new-account-burst]\nmode = \"shadow\"\n");
    let live_only = pipeline(without, EXAMPLE_POLICY);
    let with_shadow = pipeline(example_rules(&runtime), &shadow_policy);

    // The demo, then a new account messaging its contacts at a bot's rate:
    // only the shadow rule objects to that.
    let mut traffic = enforcer::demo::traffic();
    traffic.extend((0..70).map(|n| {
        Event::new(
            format!("bot-{n}"),
            "message.sent",
            T0 + 900_000 + n * 5_000,
            Entity::account("bot"),
        )
        .with_target(Entity::account(format!("friend-{}", n % 5)))
        .with("to_contact", Value::Bool(true))
        .with("actor_age_seconds", Value::Int(600))
    }));
    let mut shadow_fired = 0;
    let mut shadow_differs = 0;
    for event in traffic {
        let a = decide(&live_only, &event);
        let b = decide(&with_shadow, &event);
        assert_eq!(a.outcome, b.outcome, "live outcome of {}", event.id);
        assert_eq!(
            a.label_changes, b.label_changes,
            "live labels of {}",
            event.id
        );
        let live_reports = |d: &Decision| -> Vec<(String, Severity, String)> {
            d.rules
                .iter()
                .filter(|r| r.mode == Mode::Enforce)
                .map(|r| (r.rule.to_string(), r.severity, format!("{:?}", r.reasons)))
                .collect()
        };
        assert_eq!(live_reports(&a), live_reports(&b));
        assert!(a.shadow.is_none());
        if let Some(shadow) = &b.shadow {
            let burst = b
                .rules
                .iter()
                .find(|r| &*r.rule == "new-account-burst")
                .expect("the shadow rule ran");
            assert_eq!(burst.mode, Mode::Shadow);
            if burst.fired() {
                shadow_fired += 1;
                assert!(shadow.outcome.score >= b.outcome.score);
                // Its label is listed, never applied.
                assert!(shadow.label_changes.iter().any(|c| matches!(
                    c,
                    LabelChange::Set { label, .. } if label == "new-account-burst"
                )));
            }
            shadow_differs += usize::from(shadow.differs);
        }
    }
    assert!(shadow_fired > 0, "the shadow rule never fired on the demo");
    assert!(shadow_differs > 0, "the shadow decision never differed");
    assert_eq!(
        live_only.live_state().snapshot(),
        with_shadow.live_state().snapshot(),
        "the shadow rule changed live state"
    );
    let spammer = Entity::account("new-7731");
    assert!(
        !with_shadow
            .live_state()
            .has_label(&spammer, "new-account-burst", T0 + 400_000)
    );
    // The shadow rule's own counter was kept, apart.
    assert!(with_shadow.shadow_state().size().series > 0);
    assert_eq!(live_only.shadow_state().size().series, 0);
}

fn forward(id: &str, chats: i64, at_ms: i64) -> Event {
    Event::new(id, "message.forwarded", at_ms, Entity::account("fwd"))
        .with("chat_count", Value::Int(chats))
}

#[test]
fn a_repeated_event_id_is_decided_once_and_counted_once() {
    let runtime = Runtime::new().unwrap();
    let pipeline = pipeline(example_rules(&runtime), EXAMPLE_POLICY);
    let first = pipeline.evaluate(forward("f-1", 100, T0)).unwrap();
    assert!(!first.duplicate);
    // Same id, even with different content: the first decision comes back.
    let again = pipeline.evaluate(forward("f-1", 2, T0 + 10)).unwrap();
    assert!(again.duplicate);
    assert!(Arc::ptr_eq(&first.decision, &again.decision));
    // The hourly sum counted 100 once: 100 + 2 = 102, not 202.
    let next = decide(&pipeline, &forward("f-2", 2, T0 + 20));
    let report = &next.rules[0];
    assert!(
        report.reasons[0]
            .explanation
            .contains("102 forwards in the last hour"),
        "{:?}",
        report.reasons
    );
}

#[test]
fn concurrent_copies_of_an_event_are_evaluated_once() {
    let runtime = Runtime::new().unwrap();
    let pipeline = Arc::new(pipeline(example_rules(&runtime), EXAMPLE_POLICY));
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let pipeline = pipeline.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                pipeline.evaluate(forward("same", 99, T0)).unwrap()
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|r| !r.duplicate).count(), 1);
    for result in &results {
        assert!(Arc::ptr_eq(&result.decision, &results[0].decision));
    }
    let next = decide(&pipeline, &forward("next", 1, T0 + 1));
    assert!(
        next.rules[0].reasons[0]
            .explanation
            .contains("100 forwards in the last hour"),
        "{:?}",
        next.rules[0].reasons
    );
}

#[test]
fn invalid_events_name_the_field_and_change_nothing() {
    let runtime = Runtime::new().unwrap();
    let pipeline = pipeline(example_rules(&runtime), EXAMPLE_POLICY);
    let cases = [
        (forward("", 1, T0), "id"),
        (
            Event::new("e", "bad kind", T0, Entity::account("a")),
            "kind",
        ),
        (
            Event::new("e", "message.sent", T0, Entity::account("")),
            "actor.id",
        ),
        (
            forward("e", 1, T0).with("chat_count", Value::Int(2)),
            "attributes[\"chat_count\"]",
        ),
    ];
    for (event, field) in cases {
        let EvaluateError::Invalid(error) = pipeline.evaluate(event).unwrap_err() else {
            panic!("expected an invalid event");
        };
        assert_eq!(error.field, field, "{error}");
    }
    assert_eq!(pipeline.live_state().size().entities, 0);
    assert_eq!(pipeline.remembered_events(), 0);
}

#[test]
fn failing_closed_sends_to_review_and_failing_open_does_not() {
    let runtime = Runtime::new().unwrap();
    let rules = || -> Vec<Arc<dyn Rule>> {
        vec![Arc::new(runtime.load(&plugin("hostile-panics")).unwrap())]
    };
    let sent = Event::new("s-1", "message.sent", T0, Entity::account("a"));

    let open = pipeline(rules(), "version = \"open\"\n");
    let decision = decide(&open, &sent);
    assert_eq!(decision.outcome.severity, Severity::Allow);
    let error = decision.rules[0].error.as_ref().unwrap();
    assert_eq!(error.kind(), "panic");
    assert!(!decision.rules[0].failed_closed);

    let closed = pipeline(
        rules(),
        "version = \"closed\"\n[rules.hostile-panics]\nfailure = \"closed\"\n",
    );
    let decision = decide(&closed, &sent);
    assert_eq!(decision.outcome.severity, Severity::Review);
    assert!(decision.rules[0].failed_closed);
    assert!(decision.outcome.actions.is_empty());
}

#[test]
fn disabled_rules_do_not_run_and_misnamed_rules_are_refused() {
    let runtime = Runtime::new().unwrap();
    let policy = format!("{EXAMPLE_POLICY}\n[rules.mass-forwarding]\nmode = \"disabled\"\n");
    let pipeline = pipeline(example_rules(&runtime), &policy);
    let decision = decide(&pipeline, &forward("f", 500, T0));
    assert!(decision.rules.is_empty());
    assert_eq!(decision.outcome.severity, Severity::Allow);

    let typo = Policy::parse("version = \"1\"\n\n[rules.mass-forwardng]\nweight = 2.0\n").unwrap();
    let error = Pipeline::new(example_rules(&runtime), typo, PipelineOptions::default())
        .err()
        .unwrap();
    assert!(matches!(error, PipelineError::Policy(_)));
    assert!(
        error
            .to_string()
            .starts_with("policy line 3: names rule `mass-forwardng`, which is not loaded"),
        "{error}"
    );
}

#[test]
fn the_example_policy_parses_and_covers_loaded_rules() {
    let policy = Policy::parse(EXAMPLE_POLICY).unwrap();
    let runtime = Runtime::new().unwrap();
    let rules = example_rules(&runtime);
    policy.check_rules(rules.iter().map(|r| r.name())).unwrap();
    assert!(policy.for_rule("known-hash-match").veto);
}

#[test]
fn state_stays_bounded_over_a_long_run() {
    let runtime = Runtime::new().unwrap();
    let options = PipelineOptions {
        sweep_every_events: Some(500),
        idempotency_retention_ms: 3_600_000,
        ..demo_options()
    };
    let pipeline = Pipeline::new(
        example_rules(&runtime),
        Policy::parse(EXAMPLE_POLICY).unwrap(),
        options,
    )
    .unwrap();
    // Three days of one message a minute from a rotating cast of 50
    // accounts to 50 others: every counter window is far shorter.
    let mut peak = 0;
    for minute in 0..(3 * 24 * 60) {
        let n = minute % 50;
        let event = Event::new(
            format!("m-{minute}"),
            "message.sent",
            T0 + minute * 60_000,
            Entity::account(format!("a-{n}")),
        )
        .with_target(Entity::account(format!("b-{}", (n * 7) % 50)))
        .with("to_contact", Value::Bool(false))
        .with("actor_age_seconds", Value::Int(90 * 86_400));
        pipeline.evaluate(event).unwrap();
        peak = peak.max(pipeline.remembered_events());
    }
    pipeline.sweep();
    let size = pipeline.live_state().size();
    // An hour of counters for at most 50 senders (plus lateness), an hour
    // of ids.
    assert!(size.entities <= 50, "{size:?}");
    assert!(size.entries <= 50 * 2 + 70, "{size:?}");
    assert!(peak <= 60 + 500 + 5, "ids remembered peaked at {peak}");
}

/// A counter the policy declares is kept by the engine and readable by
/// every rule by name, within the policy's window, without the rule
/// declaring it.
#[test]
fn rules_read_counters_the_policy_declares() {
    let runtime = Runtime::new().unwrap();
    let rules = || -> Vec<Arc<dyn Rule>> {
        vec![Arc::new(
            runtime.load(&plugin("hostile-bad-host-calls")).unwrap(),
        )]
    };
    let policy = |window: u32| {
        format!(
            "version = \"p\"\n\n[counters.never-declared]\nevent_kinds = [\"message.sent\"]\n\
             aggregation = \"count\"\nwindow_seconds = {window}\n"
        )
    };
    let read = |n: i64| {
        Event::new(
            format!("r-{n}"),
            "message.sent",
            T0 + n * 1_000,
            Entity::account("a"),
        )
        .with("mode", Value::Text("undeclared-counter".into()))
    };

    let long = pipeline(rules(), &policy(7_200));
    let mut last = None;
    for n in 0..3 {
        last = Some(decide(&long, &read(n)));
    }
    let report = &last.unwrap().rules[0];
    assert!(report.error.is_none(), "{:?}", report.error);
    assert_eq!(report.reasons[0].explanation, "3");

    // The rule reads it over an hour; the policy keeps only a minute.
    let short = pipeline(rules(), &policy(60));
    let report = &decide(&short, &read(0)).rules[0];
    let error = report.error.as_ref().expect("a read past the window fails");
    assert_eq!(error.kind(), "host_call");
    assert!(error.to_string().contains("longer than the 60s"), "{error}");
}

/// Counting is commutative: the same events evaluated from four threads at
/// once leave exactly the counters a single thread leaves.
#[test]
fn concurrent_evaluation_counts_exactly() {
    use enforcer_examples::simulator::{SimConfig, Simulator};
    let traffic = Simulator::new(SimConfig {
        accounts: 800,
        groups: 40,
        duration_seconds: 20 * 60,
        ..SimConfig::default()
    })
    .unwrap()
    .run();
    let events: Vec<Event> = traffic.events.iter().map(|e| e.event.clone()).collect();
    let runtime = Runtime::new().unwrap();

    let sequential = pipeline(example_rules(&runtime), EXAMPLE_POLICY);
    for event in &events {
        sequential.evaluate(event.clone()).unwrap();
    }
    let concurrent = Arc::new(pipeline(example_rules(&runtime), EXAMPLE_POLICY));
    std::thread::scope(|scope| {
        for part in events.chunks(events.len().div_ceil(4)) {
            let concurrent = concurrent.clone();
            scope.spawn(move || {
                for event in part {
                    concurrent.evaluate(event.clone()).unwrap();
                }
            });
        }
    });
    let counters = |p: &Pipeline| {
        p.live_state()
            .snapshot()
            .into_iter()
            .map(|(entity, snapshot)| (entity, snapshot.counters))
            .collect::<Vec<_>>()
    };
    let expected = counters(&sequential);
    assert!(
        expected.len() > 100,
        "too little traffic: {}",
        expected.len()
    );
    assert_eq!(counters(&concurrent), expected);
    assert_eq!(concurrent.remembered_events(), events.len());
}

/// State is kept by event time, so an event dated far ahead would age all
/// of it out: it is refused, naming the field, and changes nothing.
#[test]
fn events_dated_ahead_of_the_clock_are_refused() {
    let runtime = Runtime::new().unwrap();
    let pipeline = pipeline(example_rules(&runtime), EXAMPLE_POLICY);
    decide(&pipeline, &forward("f-0", 1, T0));
    let before = pipeline.live_state().snapshot();
    for at in [i64::MAX, T0 + 10 * 365 * 86_400_000] {
        let EvaluateError::Invalid(error) =
            pipeline.evaluate(forward("future", 1, at)).unwrap_err()
        else {
            panic!("expected an invalid event");
        };
        assert_eq!(error.field, "occurred_at");
        assert!(
            error.message.contains("ahead of the engine's clock"),
            "{error}"
        );
    }
    let EvaluateError::Invalid(error) = pipeline.evaluate(forward("past", 1, -5)).unwrap_err()
    else {
        panic!("expected an invalid event");
    };
    assert_eq!(error.field, "occurred_at");
    pipeline.sweep();
    assert_eq!(pipeline.live_state().snapshot(), before);
    assert_eq!(pipeline.remembered_events(), 1);
}
