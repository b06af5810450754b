//! The example rules on the simulator's labelled traffic, as wasm through
//! the whole pipeline: every abusive class is caught by the rule aimed at
//! it, and ordinary accounts and groups are never acted against.

use std::collections::{BTreeMap, HashMap};

use enforcer::event::Entity;
use enforcer::examples::{EXAMPLE_POLICY, load_example_rules};
use enforcer::pipeline::{Pipeline, PipelineOptions};
use enforcer::policy::Policy;
use enforcer::runtime::Runtime;
use enforcer_examples::simulator::{Class, SimConfig, Simulator, Traffic};

fn traffic(seed: u64) -> Traffic {
    let config = SimConfig {
        seed,
        accounts: 2_500,
        groups: 125,
        duration_seconds: 45 * 60,
        ..SimConfig::default()
    };
    Simulator::new(config).expect("valid config").run()
}

fn pipeline(traffic: &Traffic) -> Pipeline {
    pipeline_with_guards(traffic, true)
}

/// The example rules and policy over `traffic`'s bank; `honour_guards`
/// off calls every subscribed rule.
fn pipeline_with_guards(traffic: &Traffic, honour_guards: bool) -> Pipeline {
    let runtime = Runtime::new().unwrap();
    let rules = load_example_rules(&runtime).unwrap_or_else(|(n, e)| panic!("{n}: {e}"));
    let options = PipelineOptions {
        banks: traffic.hash_banks(),
        honour_guards,
        ..PipelineOptions::default()
    };
    Pipeline::new(rules, Policy::parse(EXAMPLE_POLICY).unwrap(), options).unwrap()
}

#[test]
fn abuse_is_caught_and_ordinary_traffic_is_left_alone() {
    let traffic = traffic(11);
    let classes: HashMap<&Entity, Class> =
        traffic.truth.iter().map(|t| (&t.entity, t.class)).collect();
    let pipeline = pipeline(&traffic);

    // Per rule, the classes of the entities it recommended acting against
    // or fired on; per class, the rules that fired on its entities.
    let mut acted_on_ordinary = Vec::new();
    let mut caught_by: BTreeMap<&str, BTreeMap<String, usize>> = BTreeMap::new();
    for labelled in &traffic.events {
        let decision = pipeline.evaluate(labelled.event.clone()).unwrap().decision;
        for action in &decision.outcome.actions {
            let class = classes.get(&action.entity).copied();
            if class.is_none_or(|c| !c.is_abusive()) {
                acted_on_ordinary.push(format!(
                    "{:?} on {} ({class:?}) for {}",
                    action.action, action.entity, decision.event.id
                ));
            }
        }
        for report in decision.fired() {
            // A rule may act on the event's target rather than its actor
            // (a group whose link an ordinary account shared), so what
            // counts against an entity is the actions naming it, above.
            *caught_by
                .entry(labelled.truth.class.as_str())
                .or_default()
                .entry(report.rule.to_string())
                .or_default() += 1;
        }
    }
    assert!(
        acted_on_ordinary.is_empty(),
        "{} actions against ordinary entities, first: {:#?}",
        acted_on_ordinary.len(),
        &acted_on_ordinary[..acted_on_ordinary.len().min(5)]
    );

    // Each abusive class is caught by the rule aimed at it.
    let expected = [
        ("spammer", "stranger-spray"),
        ("mass_forwarder", "mass-forwarding"),
        ("csam_ring_member", "known-hash-match"),
        ("new_account_bot", "new-account-burst"),
    ];
    for (class, rule) in expected {
        let fired = caught_by.get(class).and_then(|rules| rules.get(rule));
        assert!(
            fired.is_some_and(|n| *n > 0),
            "{rule} never fired on a {class}; fired: {caught_by:#?}"
        );
    }
    // CSAM groups are labelled: their icons match.
    let end = traffic
        .events
        .iter()
        .map(|e| e.event.occurred_at_ms)
        .max()
        .unwrap();
    let banned_groups = traffic
        .truth
        .iter()
        .filter(|t| t.class == Class::CsamGroup)
        .filter(|t| {
            pipeline
                .live_state()
                .has_label(&t.entity, "known-csam-media", end)
        })
        .count();
    assert!(banned_groups > 0, "no CSAM group was labelled");
    // Every abusive actor with enough activity ends up labelled by some rule.
    let labelled_abusers = traffic
        .truth
        .iter()
        .filter(|t| t.abusive && t.class != Class::CsamGroup)
        .filter(|t| {
            let labels = pipeline.live_state().label_records(&t.entity);
            !labels.is_empty()
        })
        .count();
    let abusers = traffic
        .truth
        .iter()
        .filter(|t| t.abusive && t.class != Class::CsamGroup)
        .count();
    assert!(
        labelled_abusers * 10 >= abusers * 8,
        "only {labelled_abusers} of {abusers} abusive accounts were labelled"
    );
}

/// Guards only keep the sandbox out of events a rule would allow: with
/// guards honoured and with every rule called, every decision is the same,
/// and most calls are saved.
#[test]
fn guards_skip_calls_without_changing_a_decision() {
    let traffic = traffic(5);
    let guarded = pipeline(&traffic);
    let unguarded = pipeline_with_guards(&traffic, false);
    let (mut skipped, mut called) = (0, 0);
    for labelled in &traffic.events {
        let a = guarded.evaluate(labelled.event.clone()).unwrap().decision;
        let b = unguarded.evaluate(labelled.event.clone()).unwrap().decision;
        assert_eq!(a.outcome, b.outcome, "{}", labelled.event.id);
        assert_eq!(a.label_changes, b.label_changes, "{}", labelled.event.id);
        for (x, y) in a.rules.iter().zip(&b.rules) {
            assert_eq!(x.rule, y.rule);
            assert!(!y.skipped);
            if x.skipped {
                skipped += 1;
                assert!(
                    !y.fired(),
                    "{} fired on {} past its guards",
                    y.rule,
                    labelled.event.id
                );
                assert!(x.reasons.is_empty() && x.fuel_used == 0);
            } else {
                called += 1;
                assert_eq!((x.severity, &x.actions), (y.severity, &y.actions));
            }
        }
    }
    assert!(
        skipped > 5 * called,
        "guards saved {skipped} calls of {}",
        skipped + called
    );
    assert_eq!(
        guarded.live_state().snapshot(),
        unguarded.live_state().snapshot()
    );
}
