//! Warm instances are reused, yet nothing leaks from one evaluation into the
//! next: every call sees the instance exactly as a fresh one would.

use std::sync::Arc;

use enforcer::runtime::{Runtime, RuntimeConfig};
use enforcer::state::FixedState;
use enforcer::verdict::{RuleOutcome, Verdict};

use crate::common::{plugin, sent, shared, wat_rule};

fn verdicts(outcomes: &[RuleOutcome]) -> Vec<Verdict> {
    outcomes.iter().map(|o| o.result.clone().unwrap()).collect()
}

fn fresh_runtime() -> Runtime {
    Runtime::with_config(RuntimeConfig {
        reuse_instances: false,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

#[test]
fn statics_heap_and_stack_do_not_leak_between_calls() {
    let warm = Runtime::new()
        .unwrap()
        .load(&plugin("hostile-global-leak"))
        .unwrap();
    let fresh = fresh_runtime()
        .load(&plugin("hostile-global-leak"))
        .unwrap();
    let state = shared(FixedState::new());
    let events: Vec<_> = (0..40)
        .map(|i| sent(&format!("leak-{i}"), "a", i))
        .collect();

    let on_warm: Vec<_> = events.iter().map(|e| warm.evaluate(e, &state)).collect();
    let on_fresh: Vec<_> = events.iter().map(|e| fresh.evaluate(e, &state)).collect();
    let on_warm = verdicts(&on_warm);
    assert_eq!(on_warm, verdicts(&on_fresh));

    let first = &on_warm[0].reasons[0].explanation;
    assert!(first.starts_with("calls=1 previous=None stack="), "{first}");
    for verdict in &on_warm {
        assert_eq!(&verdict.reasons[0].explanation, first);
    }
}

/// Load a rule on a warm runtime and check that `calls` calls in a row all
/// score `expected`, as a fresh instance would.
fn assert_every_call_scores(wasm: &[u8], calls: i64, expected: f64, leak: &str) {
    let rule = Runtime::new().unwrap().load(wasm).unwrap();
    let state = shared(FixedState::new());
    for i in 0..calls {
        let event = sent(&format!("call-{i}"), "a", i);
        let verdict = rule.evaluate(&event, &state).result.unwrap();
        assert_eq!(verdict.score, expected, "call {i} {leak}");
    }
}

#[test]
fn wasm_globals_are_restored() {
    let bytes = wat_rule(
        "wat-global",
        "(global $calls (mut i32) (i32.const 0))",
        "global.get $calls i32.const 1 i32.add global.set $calls
         global.get $calls f64.convert_i32_u f64.const 100 f64.div",
    );
    assert_every_call_scores(&bytes, 10, 0.01, "saw an earlier call's global");
}

#[test]
fn a_call_that_grows_memory_retires_its_instance() {
    // Each call grows memory by a page and scores the size it sees. A
    // fresh instance starts at one page, so every call must score 0.02.
    let bytes = wat_rule(
        "wat-grow",
        "",
        "i32.const 1 memory.grow drop
         memory.size f64.convert_i32_u f64.const 100 f64.div",
    );
    assert_every_call_scores(&bytes, 6, 0.02, "saw memory grown by an earlier call");
}

#[test]
fn same_events_give_same_verdicts_across_runs_and_threads() {
    let state = shared(FixedState::new().with_counter(
        enforcer::event::Entity::account("a3"),
        "forwards",
        150,
    ));
    let events: Arc<Vec<_>> = Arc::new(
        (0..400)
            .map(|i| crate::common::forward(&format!("f{i}"), &format!("a{}", i % 7), i % 45, i))
            .collect(),
    );
    let run = |runtime: &Runtime| -> Vec<Vec<Verdict>> {
        let rule = Arc::new(runtime.load(&plugin("mass-forwarding")).unwrap());
        let leak = Arc::new(runtime.load(&plugin("hostile-global-leak")).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (rule, leak, events, state) =
                    (rule.clone(), leak.clone(), events.clone(), state.clone());
                std::thread::spawn(move || {
                    events
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| i % 4 == t)
                        .map(|(i, e)| {
                            let leak_event = sent(&e.id, "a", i as i64);
                            let mut v = vec![rule.evaluate(e, &state).result.unwrap()];
                            v.push(leak.evaluate(&leak_event, &state).result.unwrap());
                            (i, v)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<_> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, v)| v).collect()
    };
    let first = run(&Runtime::new().unwrap());
    let second = run(&Runtime::new().unwrap());
    assert_eq!(first, second);
    // And the verdicts are the ones a single fresh instance gives.
    let fresh = fresh_runtime();
    let rule = fresh.load(&plugin("mass-forwarding")).unwrap();
    for (event, verdicts) in events.iter().zip(&first).step_by(37) {
        assert_eq!(rule.evaluate(event, &state).result.unwrap(), verdicts[0]);
    }
    assert!(
        first
            .iter()
            .any(|v| v[0].severity != enforcer::verdict::Severity::Allow)
    );
}
