//! What one rule call costs: the example `mass-forwarding` rule on a
//! realistic event, natively and as wasm, on a warm instance and a fresh
//! one, under each metering mode, and with the isolation reset on and off.
//!
//! Run: `cargo bench -p enforcer --bench rule_call`.
#![allow(missing_docs)] // criterion_group! generates undocumented items.

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use enforcer::event::{Entity, Event, Value};
use enforcer::runtime::{LoadedRule, Metering, Runtime, RuntimeConfig};
use enforcer::state::{FixedState, StateView};
use enforcer_sdk::testing::{EventFixture, StateFixture};

/// A forward of one message to 3 chats, with the attributes a real client
/// would send, of which the rule reads one (and one counter).
fn realistic_event() -> Event {
    Event::new(
        "evt-7f3a9c",
        "message.forwarded",
        1_764_000_000_000,
        Entity::account("acct-193844"),
    )
    .with_target(Entity::group("grp-5521"))
    .with("chat_count", Value::Int(3))
    .with("message_id", Value::Text("msg-0a9f7e2c11".into()))
    .with("forward_depth", Value::Int(2))
    .with("has_media", Value::Bool(true))
    .with("media_pdq", Value::Bytes(vec![0x5a; 32]))
    .with("client", Value::Text("android-2.26.1".into()))
    .with("account_age_days", Value::Int(412))
    .with("text_score", Value::Float(0.07))
}

fn native_fixture() -> (EventFixture, StateFixture) {
    let event = EventFixture::new("message.forwarded")
        .id("evt-7f3a9c")
        .at_ms(1_764_000_000_000)
        .actor(enforcer_sdk::Entity::account("acct-193844"))
        .target(enforcer_sdk::Entity::group("grp-5521"))
        .int("chat_count", 3)
        .text("message_id", "msg-0a9f7e2c11")
        .int("forward_depth", 2)
        .bool("has_media", true)
        .bytes("media_pdq", &[0x5a; 32])
        .text("client", "android-2.26.1")
        .int("account_age_days", 412)
        .float("text_score", 0.07);
    let state = StateFixture::new().counter(enforcer_sdk::Subject::Actor, "forwards", 3600, 12);
    (event, state)
}

fn load(config: RuntimeConfig) -> LoadedRule {
    let runtime = Runtime::with_config(config).unwrap();
    let (_, wasm) = enforcer::examples::EXAMPLE_RULES
        .iter()
        .find(|(name, _)| *name == "mass-forwarding")
        .unwrap();
    runtime.load(wasm).unwrap()
}

fn rule_call(c: &mut Criterion) {
    let event = Arc::new(realistic_event());
    let state: Arc<dyn StateView> =
        Arc::new(FixedState::new().with_counter(Entity::account("acct-193844"), "forwards", 12));
    let (native_event, native_state) = native_fixture();

    let mut group = c.benchmark_group("rule_call");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));

    group.bench_function("native", |b| {
        b.iter(|| {
            enforcer_sdk::testing::evaluate_unchecked::<mass_forwarding::MassForwarding>(
                black_box(&native_event),
                black_box(&native_state),
            )
        })
    });

    let variants = [
        ("wasm_warm", RuntimeConfig::default()),
        (
            "wasm_warm_fast_compile",
            RuntimeConfig {
                fast_compile: true,
                ..RuntimeConfig::default()
            },
        ),
        (
            "wasm_warm_no_reset",
            RuntimeConfig {
                isolate: false,
                ..RuntimeConfig::default()
            },
        ),
        (
            "wasm_warm_unmetered",
            RuntimeConfig {
                metering: Metering::Unmetered,
                ..RuntimeConfig::default()
            },
        ),
        (
            "wasm_warm_fuel_only",
            RuntimeConfig {
                metering: Metering::FuelOnly,
                ..RuntimeConfig::default()
            },
        ),
        (
            "wasm_warm_epoch_only",
            RuntimeConfig {
                metering: Metering::EpochOnly,
                ..RuntimeConfig::default()
            },
        ),
        (
            "wasm_fresh_instance",
            RuntimeConfig {
                reuse_instances: false,
                ..RuntimeConfig::default()
            },
        ),
    ];
    for (name, config) in variants {
        let rule = load(config);
        let check = rule.evaluate(&event, &state);
        assert!(check.result.is_ok(), "{name}: {:?}", check.result);
        group.bench_function(name, |b| {
            b.iter(|| rule.evaluate(black_box(&event), black_box(&state)))
        });
    }
    group.finish();
}

criterion_group!(benches, rule_call);
criterion_main!(benches);
