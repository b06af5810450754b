//! A rule written with the SDK builds to wasm, loads, gets events of its
//! kinds only, reads a counter through the host and returns a verdict.

use enforcer::event::Entity;
use enforcer::runtime::Runtime;
use enforcer::state::FixedState;
use enforcer::verdict::{Action, Severity};

use crate::common::{forward, plugin, shared};

#[test]
fn sdk_rule_loads_reads_a_counter_and_returns_a_verdict() {
    let runtime = Runtime::new().unwrap();
    let rule = runtime.load(&plugin("mass-forwarding")).unwrap();
    assert_eq!(rule.name(), "mass-forwarding");
    assert_eq!(rule.manifest().event_kinds, ["message.forwarded"]);

    let quiet = shared(FixedState::new().with_counter(Entity::account("a"), "forwards", 10));
    let outcome = rule.evaluate(&forward("e1", "a", 2, 1_000), &quiet);
    let verdict = outcome.result.unwrap();
    assert_eq!(verdict.severity, Severity::Allow);

    // The counter alone (read through the host) takes it to limit.
    let busy = shared(FixedState::new().with_counter(Entity::account("a"), "forwards", 500));
    let outcome = rule.evaluate(&forward("e2", "a", 2, 2_000), &busy);
    let verdict = outcome.result.unwrap();
    assert_eq!(verdict.severity, Severity::Limit);
    assert_eq!(verdict.actions[0].action, Action::LimitForwarding);
    assert!(
        verdict.reasons[0]
            .explanation
            .contains("500 in the last hour"),
        "{verdict:?}"
    );
    assert!(outcome.fuel_used > 0);
    assert_eq!(outcome.sha256.len(), 64);
}
