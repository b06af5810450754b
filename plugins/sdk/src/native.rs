//! Running a rule natively: the event and state a rule reads, served by the
//! embedding through two traits instead of by the engine's host calls.
//!
//! The [`testing`](crate::testing) fixtures are one embedding. Another is a
//! native build of a rule run inside the engine's pipeline, the baseline
//! that benchmarks measure the sandbox against. Rules never see these
//! traits: they read [`Event`](crate::Event) and [`State`](crate::State)
//! either way.

use crate::Rule;
use crate::event::{Event, EventSource, State, StateSource};
use crate::types::{CounterKey, Entity, Guard, HashMatch, Subject, Value, Verdict};

/// The event being evaluated, as a native embedding serves it. The typed
/// getters have defaults over [`NativeEvent::attribute`]; an embedding
/// overrides them to avoid cloning values.
pub trait NativeEvent {
    /// The event's unique id.
    fn id(&self) -> String;
    /// The dotted kind.
    fn kind(&self) -> &str;
    /// Event time in milliseconds since the Unix epoch.
    fn occurred_at_ms(&self) -> i64;
    /// Who acted.
    fn actor(&self) -> Entity;
    /// Whom the action was aimed at.
    fn target(&self) -> Option<Entity>;
    /// Any attribute.
    fn attribute(&self, name: &str) -> Option<Value>;
    /// Every attribute name, in order.
    fn attribute_names(&self) -> Vec<String>;

    /// An integer attribute.
    fn int(&self, name: &str) -> Option<i64> {
        match self.attribute(name)? {
            Value::Int(v) => Some(v),
            _ => None,
        }
    }
    /// A float attribute.
    fn float(&self, name: &str) -> Option<f64> {
        match self.attribute(name)? {
            Value::Float(v) => Some(v),
            _ => None,
        }
    }
    /// A boolean attribute.
    fn bool(&self, name: &str) -> Option<bool> {
        match self.attribute(name)? {
            Value::Bool(v) => Some(v),
            _ => None,
        }
    }
    /// A text attribute.
    fn text(&self, name: &str) -> Option<String> {
        match self.attribute(name)? {
            Value::Text(v) => Some(v),
            _ => None,
        }
    }
    /// A bytes attribute.
    fn bytes(&self, name: &str) -> Option<Vec<u8>> {
        match self.attribute(name)? {
            Value::Bytes(v) => Some(v),
            _ => None,
        }
    }
}

/// The engine state a rule reads, as a native embedding serves it.
pub trait NativeState {
    /// A counter for a subject over the last `window_seconds`.
    fn counter(&self, subject: &Subject, name: &str, window_seconds: u32) -> u64;
    /// The labels on a subject.
    fn labels(&self, subject: &Subject) -> Vec<String>;
    /// Whether a subject carries a label.
    fn has_label(&self, subject: &Subject, label: &str) -> bool {
        self.labels(subject).iter().any(|l| l == label)
    }
    /// Entries of a bank within `max_distance` bits of `hash`, nearest first.
    fn match_hash(&self, bank: &str, hash: &[u8], max_distance: u32) -> Vec<HashMatch>;
}

/// Run rule `R` natively on an event and state served by the embedding.
pub fn evaluate<R: Rule>(event: &dyn NativeEvent, state: &dyn NativeState) -> Verdict {
    R::evaluate(
        &Event(EventSource::Native(event)),
        &State(StateSource::Native(state)),
    )
}

/// Whether at least one of `guards` holds for this event and state (true
/// when there are none): whether the engine would call the rule.
pub fn guards_admit(guards: &[Guard], event: &dyn NativeEvent, state: &dyn NativeState) -> bool {
    guards.is_empty()
        || guards.iter().any(|guard| match guard {
            Guard::IntAtLeast(name, value) => event.int(name).is_some_and(|v| v >= *value),
            Guard::IntBelow(name, value) => event.int(name).is_some_and(|v| v < *value),
            Guard::FloatAtLeast(name, value) => event.float(name).is_some_and(|v| v >= *value),
            Guard::CounterAtLeast {
                counter,
                subject,
                window_seconds,
                value,
            } => {
                let subject = match subject {
                    CounterKey::Actor => Subject::Actor,
                    CounterKey::Target => Subject::Target,
                };
                state.counter(&subject, counter, *window_seconds) >= *value
            }
        })
}
