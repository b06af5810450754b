//! An event reaches only the rules subscribed to its kind.

use std::sync::Arc;

use enforcer::router::RuleSet;
use enforcer::rule::Rule;
use enforcer::runtime::Runtime;
use enforcer::state::FixedState;

use crate::common::{forward, plugin, sent, shared};

#[test]
fn events_reach_only_subscribed_rules() {
    let runtime = Runtime::new().unwrap();
    let load = |name: &str| Arc::new(runtime.load(&plugin(name)).unwrap()) as Arc<dyn Rule>;
    let rules = RuleSet::new(vec![
        load("mass-forwarding"),
        load("hostile-global-leak"),
        load("hostile-bad-host-calls"),
    ])
    .unwrap();
    let state = shared(FixedState::new());

    let on_forward = rules.evaluate(&forward("f", "a", 1, 1), &state);
    let names: Vec<&str> = on_forward.iter().map(|o| &*o.rule).collect();
    assert_eq!(names, ["mass-forwarding"]);

    let on_sent = rules.evaluate(&sent("s", "a", 2), &state);
    let names: Vec<&str> = on_sent.iter().map(|o| &*o.rule).collect();
    assert_eq!(names, ["hostile-global-leak", "hostile-bad-host-calls"]);

    let other = Arc::new(enforcer::event::Event::new(
        "o",
        "profile.updated",
        3,
        enforcer::event::Entity::account("a"),
    ));
    assert!(rules.evaluate(&other, &state).is_empty());
}

#[test]
fn two_rules_with_one_name_are_refused() {
    let runtime = Runtime::new().unwrap();
    let a: Arc<dyn Rule> = Arc::new(runtime.load(&plugin("mass-forwarding")).unwrap());
    let b: Arc<dyn Rule> = Arc::new(runtime.load(&plugin("mass-forwarding")).unwrap());
    let error = RuleSet::new(vec![a, b]).err().unwrap();
    assert!(
        error
            .to_string()
            .contains("two rules are named `mass-forwarding`"),
        "{error}"
    );
}
