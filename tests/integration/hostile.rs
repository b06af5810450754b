//! The hostile-plugin corpus: each plugin fails in its own way, the engine
//! names the failure precisely, and a good rule loaded beside it keeps
//! returning correct verdicts in the same test.

use std::time::Duration;

use enforcer::event::Entity;
use enforcer::runtime::{Limits, LoadedRule, Runtime};
use enforcer::state::FixedState;
use enforcer::verdict::{RuleError, Severity};

use crate::common::{forward, plugin, sent, shared};

/// A runtime with a good rule loaded, to check after each hostile call.
struct Bench {
    runtime: Runtime,
    good: LoadedRule,
}

impl Bench {
    fn new() -> Self {
        let runtime = Runtime::new().unwrap();
        let good = runtime.load(&plugin("mass-forwarding")).unwrap();
        Bench { runtime, good }
    }

    /// The good rule still judges a quiet and a busy forward correctly.
    fn assert_good_rule_still_works(&self) {
        let state = shared(FixedState::new().with_counter(Entity::account("g"), "forwards", 400));
        let busy = self.good.evaluate(&forward("good-1", "g", 1, 5), &state);
        assert_eq!(busy.result.unwrap().severity, Severity::Limit);
        let quiet = self.good.evaluate(&forward("good-2", "q", 1, 6), &state);
        assert_eq!(quiet.result.unwrap().severity, Severity::Allow);
    }

    /// Load a hostile plugin, run it twice (the second call gets a fresh
    /// instance, the first having been retired), and return its error.
    fn run_hostile(&self, crate_name: &str, limits: Option<Limits>) -> RuleError {
        let bytes = plugin(crate_name);
        let rule = match limits {
            Some(limits) => self.runtime.load_with_limits(&bytes, limits),
            None => self.runtime.load(&bytes),
        }
        .unwrap_or_else(|e| panic!("{crate_name} should load: {e}"));
        let state = shared(FixedState::new());
        let first = rule
            .evaluate(&sent("h-1", "x", 1), &state)
            .result
            .unwrap_err();
        self.assert_good_rule_still_works();
        let second = rule
            .evaluate(&sent("h-2", "x", 2), &state)
            .result
            .unwrap_err();
        assert_eq!(first.kind(), second.kind(), "{first} then {second}");
        self.assert_good_rule_still_works();
        first
    }
}

#[test]
fn infinite_loop_runs_out_of_fuel() {
    let bench = Bench::new();
    let error = bench.run_hostile("hostile-infinite-loop", None);
    assert_eq!(
        error,
        RuleError::OutOfFuel {
            budget: Limits::default().fuel
        }
    );
}

#[test]
fn infinite_loop_with_unlimited_fuel_hits_the_deadline() {
    let bench = Bench::new();
    let limits = Limits {
        fuel: u64::MAX / 2,
        deadline: Duration::from_millis(20),
        ..Limits::default()
    };
    let started = std::time::Instant::now();
    let error = bench.run_hostile("hostile-infinite-loop", Some(limits));
    assert_eq!(error, RuleError::Deadline { limit_ms: 20 });
    // Two calls at a 20 ms deadline: well under a second even on a busy machine.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn memory_bomb_runs_out_of_memory() {
    let bench = Bench::new();
    let error = bench.run_hostile("hostile-memory-bomb", None);
    assert_eq!(
        error,
        RuleError::OutOfMemory {
            limit_bytes: Limits::default().max_memory_bytes
        }
    );
}

#[test]
fn deep_recursion_overflows_the_stack() {
    let bench = Bench::new();
    assert_eq!(
        bench.run_hostile("hostile-deep-recursion", None),
        RuleError::StackOverflow
    );
}

#[test]
fn huge_verdict_is_bad_output() {
    let bench = Bench::new();
    let error = bench.run_hostile("hostile-huge-verdict", None);
    let RuleError::BadOutput { message } = &error else {
        panic!("expected bad output, got {error}");
    };
    assert!(
        message.contains("1024 reasons") && message.contains("65536-byte cap"),
        "{message}"
    );
}

#[test]
fn panic_is_reported_with_its_message() {
    let bench = Bench::new();
    let error = bench.run_hostile("hostile-panics", None);
    let RuleError::Panic { message } = &error else {
        panic!("expected a panic, got {error}");
    };
    assert!(message.contains("refusing to judge event h-1"), "{message}");
    assert!(message.contains("lib.rs"), "location missing: {message}");
}

#[test]
fn score_out_of_range_is_bad_output() {
    let bench = Bench::new();
    let error = bench.run_hostile("hostile-bad-score", None);
    assert_eq!(
        error,
        RuleError::BadOutput {
            message: "score 7 is outside [0, 1]".into()
        }
    );
}

fn load_error(bytes: &[u8]) -> String {
    let runtime = Runtime::new().unwrap();
    match runtime.load(bytes) {
        Ok(rule) => panic!("{} should have been refused", rule.name()),
        Err(error) => error.to_string(),
    }
}

#[test]
fn forbidden_import_is_refused_naming_the_import() {
    let message = load_error(&plugin("hostile-forbidden-import"));
    assert!(
        message.contains("`wasi_snapshot_preview1::fd_write`"),
        "{message}"
    );
    assert!(message.contains("`enforcer:rule/host@0.2.0`"), "{message}");
}

#[test]
fn forbidden_imports_of_every_kind_are_refused() {
    for (import, named) in [
        (
            r#"(import "wasi:filesystem/types@0.2.0" "open" (func))"#,
            "wasi:filesystem/types@0.2.0::open",
        ),
        (r#"(import "env" "now" (func (result i64)))"#, "env::now"),
        (
            r#"(import "enforcer:isolation/reset@0.1.0" "memory-grew" (func))"#,
            "enforcer:isolation/reset@0.1.0::memory-grew",
        ),
    ] {
        let bytes =
            wat::parse_str(format!("(module {import} (memory (export \"memory\") 1))")).unwrap();
        let message = load_error(&bytes);
        assert!(
            message.contains(&format!("`{named}`")),
            "{import}: {message}"
        );
    }
    // A memory, even from an allowed module, is not a function import.
    for (import, named) in [
        (
            r#"(import "enforcer:rule/host@0.2.0" "mem" (memory 1))"#,
            "enforcer:rule/host@0.2.0::mem",
        ),
        (
            r#"(import "enforcer:rule/host@0.2.0" "g" (global i32)) (memory 1)"#,
            "enforcer:rule/host@0.2.0::g",
        ),
    ] {
        let bytes = wat::parse_str(format!("(module {import})")).unwrap();
        let message = load_error(&bytes);
        assert!(
            message.contains(&format!("`{named}`")),
            "{import}: {message}"
        );
    }
}

#[test]
fn missing_export_is_refused_naming_the_export() {
    let bytes = wat::parse_str(
        r#"(module (memory (export "memory") 1)
             (func (export "manifest") (result i32) i32.const 0)
             (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 0))"#,
    )
    .unwrap();
    let message = load_error(&bytes);
    assert!(message.contains("does not export `evaluate`"), "{message}");
}

#[test]
fn garbage_bytes_are_refused() {
    let message = load_error(b"this is not wasm at all");
    assert!(message.contains("not a WebAssembly module"), "{message}");
    assert!(message.contains("74 68 69 73"), "{message}");

    let mut truncated = plugin("mass-forwarding");
    truncated.truncate(truncated.len() / 2);
    let message = load_error(&truncated);
    assert!(
        message.contains("not a valid WebAssembly module"),
        "{message}"
    );
}

#[test]
fn state_the_reset_cannot_cover_is_refused() {
    let table_growth = wat::parse_str(
        r#"(module (memory (export "memory") 1) (table 1 funcref)
             (func (export "manifest") (result i32) ref.null func i32.const 1 table.grow drop i32.const 0)
             (func (export "evaluate") (result i32) i32.const 0)
             (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 0))"#,
    )
    .unwrap();
    assert!(load_error(&table_growth).contains("mutates a table"));

    let two_memories = wat::parse_str(r#"(module (memory (export "memory") 1) (memory 1))"#);
    // Multi-memory is refused by validation before anything else.
    assert!(load_error(&two_memories.unwrap()).contains("not a valid WebAssembly module"));
}

#[test]
fn a_component_is_refused_with_a_hint() {
    let component = wat::parse_str("(component)").unwrap();
    let message = load_error(&component);
    assert!(message.contains("wasm32-unknown-unknown"), "{message}");
}

#[test]
fn a_bad_manifest_is_refused() {
    let bytes = crate::common::wat_rule("bad name!", "", "f64.const 0");
    let message = load_error(&bytes);
    assert!(
        message.contains("manifest rejected") && message.contains("' '"),
        "{message}"
    );
}

#[test]
fn misused_host_functions_fail_the_call_with_a_precise_message() {
    let bench = Bench::new();
    let rule = bench
        .runtime
        .load(&plugin("hostile-bad-host-calls"))
        .unwrap();
    let state = shared(
        FixedState::new()
            .with_counter(Entity::account("x"), "sent", 3)
            .with_bank("known"),
    );
    let call = |mode: &str| {
        let event = enforcer::event::Event::new("m", "message.sent", 1, Entity::account("x"))
            .with("mode", enforcer::event::Value::Text(mode.into()));
        rule.evaluate(&std::sync::Arc::new(event), &state).result
    };
    for (mode, expected) in [
        (
            "undeclared-counter",
            "read counter `never-declared`, which the rule's manifest does not declare",
        ),
        (
            "long-window",
            "read counter `sent` over 86400s, longer than the 3600s its manifest declares",
        ),
        ("unknown-bank", "no hash bank named `no-such-bank`"),
        (
            "short-hash",
            "match-hash takes a 32-byte PDQ hash, got 8 bytes",
        ),
    ] {
        assert_eq!(
            call(mode),
            Err(RuleError::HostCall {
                message: expected.into()
            }),
            "mode {mode}"
        );
        bench.assert_good_rule_still_works();
    }
    // Used properly, the same rule reads its counter.
    assert_eq!(call("fine").unwrap().reasons[0].explanation, "3");
}
