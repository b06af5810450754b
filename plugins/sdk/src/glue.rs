//! The private glue between the SDK's Rust types and the WIT contract, built
//! only for wasm. Rule authors never touch it: the [`rule!`](crate::rule)
//! macro calls [`manifest`] and [`evaluate`].

use crate::Rule;
use crate::event::{Event, EventSource, State, StateSource};
use crate::types::{
    Action, Aggregation, CounterFilter, CounterKey, Effect, Entity, EntityKind, Guard, HashMatch,
    LogLevel, Manifest, Severity, Subject, Value, Verdict,
};

#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "rule",
        path: "../wit",
        pub_export_macro: true,
        default_bindings_module: "enforcer_sdk::__private::bindings",
    });
}

pub(crate) use bindings::enforcer::rule::event as wit_event;
use bindings::enforcer::rule::host as wit_host;
use bindings::enforcer::rule::types as wit;

pub use wit::{Manifest as WitManifest, Verdict as WitVerdict};

/// How much heap the SDK reserves while the manifest is built. The engine
/// snapshots an instance's memory right after `manifest`, so a reserve made
/// here is in every evaluation's starting state and a normal evaluation
/// never has to grow memory (which would cost the instance).
const HEAP_RESERVE_BYTES: usize = 256 * 1024;

/// The `manifest` export: the rule's manifest in contract types.
pub fn manifest<R: Rule>() -> WitManifest {
    install_panic_hook();
    drop(Vec::<u8>::with_capacity(HEAP_RESERVE_BYTES));
    manifest_to_wit(R::manifest())
}

/// The `evaluate` export: run the rule on the host's event.
pub fn evaluate<R: Rule>() -> WitVerdict {
    let verdict = R::evaluate(&Event(EventSource::Host), &State(StateSource::Host));
    verdict_to_wit(verdict)
}

/// Send a panic's message to the engine's log before the panic aborts, so
/// the engine can classify the trap as a panic and say what it was.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = match info.payload().downcast_ref::<&str>() {
            Some(s) => (*s).to_string(),
            None => info
                .payload()
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default(),
        };
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        wit_host::log(
            wit::LogLevel::Error,
            &format!("panicked at {location}: {message}"),
        );
    }));
}

pub(crate) fn counter(subject: &Subject, name: &str, window_seconds: u32) -> u64 {
    wit_host::counter(&subject_to_wit(subject), name, window_seconds)
}

pub(crate) fn labels(subject: &Subject) -> Vec<String> {
    wit_host::labels(&subject_to_wit(subject))
}

pub(crate) fn has_label(subject: &Subject, label: &str) -> bool {
    wit_host::has_label(&subject_to_wit(subject), label)
}

pub(crate) fn match_hash(bank: &str, hash: &[u8], max_distance: u32) -> Vec<HashMatch> {
    wit_host::match_hash(bank, hash, max_distance)
        .into_iter()
        .map(|m| HashMatch {
            bank: m.bank,
            entry_id: m.entry_id,
            distance: m.distance,
        })
        .collect()
}

pub(crate) fn log(level: LogLevel, message: &str) {
    let level = match level {
        LogLevel::Debug => wit::LogLevel::Debug,
        LogLevel::Info => wit::LogLevel::Info,
        LogLevel::Warn => wit::LogLevel::Warn,
        LogLevel::Error => wit::LogLevel::Error,
    };
    wit_host::log(level, message);
}

pub(crate) fn entity_from_host(entity: wit::Entity) -> Entity {
    Entity {
        kind: match entity.kind {
            wit::EntityKind::Account => EntityKind::Account,
            wit::EntityKind::Group => EntityKind::Group,
        },
        id: entity.id,
    }
}

pub(crate) fn value_from_host(value: wit::Value) -> Value {
    match value {
        wit::Value::Int(v) => Value::Int(v),
        wit::Value::Float(v) => Value::Float(v),
        wit::Value::Boolean(v) => Value::Bool(v),
        wit::Value::Text(v) => Value::Text(v),
        wit::Value::Bytes(v) => Value::Bytes(v),
        wit::Value::IntList(v) => Value::IntList(v),
        wit::Value::FloatList(v) => Value::FloatList(v),
        wit::Value::BoolList(v) => Value::BoolList(v),
        wit::Value::TextList(v) => Value::TextList(v),
        wit::Value::BytesList(v) => Value::BytesList(v),
    }
}

fn entity_to_wit(entity: &Entity) -> wit::Entity {
    wit::Entity {
        kind: match entity.kind {
            EntityKind::Account => wit::EntityKind::Account,
            EntityKind::Group => wit::EntityKind::Group,
        },
        id: entity.id.clone(),
    }
}

fn subject_to_wit(subject: &Subject) -> wit::Subject {
    match subject {
        Subject::Actor => wit::Subject::Actor,
        Subject::Target => wit::Subject::Target,
        Subject::Entity(e) => wit::Subject::Entity(entity_to_wit(e)),
    }
}

fn verdict_to_wit(verdict: Verdict) -> WitVerdict {
    WitVerdict {
        score: verdict.score,
        severity: match verdict.severity {
            Severity::Allow => wit::Severity::Allow,
            Severity::Review => wit::Severity::Review,
            Severity::Limit => wit::Severity::Limit,
            Severity::Block => wit::Severity::Block,
        },
        actions: verdict
            .actions
            .iter()
            .map(|a| wit::RecommendedAction {
                action: match a.action {
                    Action::BlockAccount => wit::Action::BlockAccount,
                    Action::BanGroup => wit::Action::BanGroup,
                    Action::LimitForwarding => wit::Action::LimitForwarding,
                    Action::RemoveMedia => wit::Action::RemoveMedia,
                    Action::ReportToClearinghouse => wit::Action::ReportToClearinghouse,
                },
                subject: subject_to_wit(&a.subject),
            })
            .collect(),
        reasons: verdict
            .reasons
            .into_iter()
            .map(|r| wit::Reason {
                code: r.code,
                explanation: r.explanation,
            })
            .collect(),
        effects: verdict
            .effects
            .into_iter()
            .map(|e| match e {
                Effect::SetLabel {
                    subject,
                    label,
                    ttl_seconds,
                } => wit::Effect::SetLabel(wit::SetLabel {
                    subject: subject_to_wit(&subject),
                    label,
                    ttl_seconds,
                }),
                Effect::ClearLabel { subject, label } => wit::Effect::ClearLabel(wit::ClearLabel {
                    subject: subject_to_wit(&subject),
                    label,
                }),
            })
            .collect(),
    }
}

fn manifest_to_wit(manifest: Manifest) -> WitManifest {
    WitManifest {
        name: manifest.name,
        version: manifest.version,
        event_kinds: manifest.event_kinds,
        counters: manifest
            .counters
            .into_iter()
            .map(|c| wit::CounterSpec {
                name: c.name,
                event_kinds: c.event_kinds,
                key: match c.key {
                    CounterKey::Actor => wit::CounterKey::Actor,
                    CounterKey::Target => wit::CounterKey::Target,
                },
                aggregation: match c.aggregation {
                    Aggregation::Count => wit::Aggregation::Count,
                    Aggregation::Sum(a) => wit::Aggregation::Sum(a),
                    Aggregation::Distinct(a) => wit::Aggregation::Distinct(a),
                    Aggregation::DistinctActors => wit::Aggregation::DistinctActors,
                    Aggregation::DistinctTargets => wit::Aggregation::DistinctTargets,
                },
                filter: match c.filter {
                    CounterFilter::All => wit::CounterFilter::All,
                    CounterFilter::IsTrue(a) => wit::CounterFilter::IsTrue(a),
                    CounterFilter::IsFalse(a) => wit::CounterFilter::IsFalse(a),
                    CounterFilter::TextEquals(a, v) => wit::CounterFilter::TextEquals((a, v)),
                },
                window_seconds: c.window_seconds,
            })
            .collect(),
        guards: manifest
            .guards
            .into_iter()
            .map(|g| match g {
                Guard::IntAtLeast(a, v) => wit::Guard::IntAtLeast((a, v)),
                Guard::IntBelow(a, v) => wit::Guard::IntBelow((a, v)),
                Guard::FloatAtLeast(a, v) => wit::Guard::FloatAtLeast((a, v)),
                Guard::CounterAtLeast {
                    counter,
                    subject,
                    window_seconds,
                    value,
                } => wit::Guard::CounterAtLeast(wit::CounterAtLeast {
                    counter,
                    subject: match subject {
                        CounterKey::Actor => wit::CounterKey::Actor,
                        CounterKey::Target => wit::CounterKey::Target,
                    },
                    window_seconds,
                    value,
                }),
            })
            .collect(),
    }
}
