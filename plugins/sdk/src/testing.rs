//! Fixtures for testing a rule natively with `cargo test`: build an event and
//! the state around it, then call [`evaluate`].
//!
//! ```
//! use enforcer_sdk::*;
//! use enforcer_sdk::testing::{EventFixture, StateFixture};
//!
//! struct Quiet;
//! impl Rule for Quiet {
//!     fn manifest() -> Manifest { Manifest::new("quiet", "1.0.0").on("message.sent") }
//!     fn evaluate(_: &Event, _: &State) -> Verdict { Verdict::allow() }
//! }
//!
//! let event = EventFixture::new("message.sent").actor(Entity::account("a1"));
//! let verdict = testing::evaluate::<Quiet>(&event, &StateFixture::new());
//! assert!(verdict.is_allow());
//! ```

use crate::Rule;
use crate::native::{NativeEvent, NativeState};
use crate::types::{Entity, HashMatch, Subject, Value, Verdict};

/// An event for a test. Defaults: id `event-1`, time 0, actor `account:a`.
#[derive(Clone, Debug, PartialEq)]
pub struct EventFixture {
    /// The event id.
    pub id: String,
    /// The dotted kind.
    pub kind: String,
    /// Event time, in milliseconds since the Unix epoch.
    pub occurred_at_ms: i64,
    /// Who acted.
    pub actor: Entity,
    /// Whom the action was aimed at.
    pub target: Option<Entity>,
    /// Attributes in the order they were added.
    pub attributes: Vec<(String, Value)>,
}

impl EventFixture {
    /// An event of this kind with default id, time and actor.
    pub fn new(kind: &str) -> Self {
        EventFixture {
            id: "event-1".to_string(),
            kind: kind.to_string(),
            occurred_at_ms: 0,
            actor: Entity::account("a"),
            target: None,
            attributes: Vec::new(),
        }
    }

    /// Set the id.
    pub fn id(mut self, id: &str) -> Self {
        self.id = id.to_string();
        self
    }

    /// Set the event time, in milliseconds since the Unix epoch.
    pub fn at_ms(mut self, occurred_at_ms: i64) -> Self {
        self.occurred_at_ms = occurred_at_ms;
        self
    }

    /// Set the actor.
    pub fn actor(mut self, actor: Entity) -> Self {
        self.actor = actor;
        self
    }

    /// Set the target.
    pub fn target(mut self, target: Entity) -> Self {
        self.target = Some(target);
        self
    }

    /// Add an attribute of any type.
    pub fn attr(mut self, name: &str, value: Value) -> Self {
        self.attributes.push((name.to_string(), value));
        self
    }

    /// Add an integer attribute.
    pub fn int(self, name: &str, value: i64) -> Self {
        self.attr(name, Value::Int(value))
    }

    /// Add a float attribute.
    pub fn float(self, name: &str, value: f64) -> Self {
        self.attr(name, Value::Float(value))
    }

    /// Add a boolean attribute.
    pub fn bool(self, name: &str, value: bool) -> Self {
        self.attr(name, Value::Bool(value))
    }

    /// Add a text attribute.
    pub fn text(self, name: &str, value: &str) -> Self {
        self.attr(name, Value::Text(value.to_string()))
    }

    /// Add a bytes attribute.
    pub fn bytes(self, name: &str, value: &[u8]) -> Self {
        self.attr(name, Value::Bytes(value.to_vec()))
    }

    /// The first attribute with this name.
    pub fn attribute(&self, name: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

/// The engine state around a test event: counter values, labels and hash
/// bank entries. Counters are given as already-computed values per window,
/// because the windowing itself is the engine's job, tested there.
#[derive(Clone, Debug, Default)]
pub struct StateFixture {
    counters: Vec<(Subject, String, u32, u64)>,
    labels: Vec<(Subject, String)>,
    banks: Vec<(String, String, Vec<u8>)>,
}

impl StateFixture {
    /// Empty state: every counter 0, no labels, empty banks.
    pub fn new() -> Self {
        Self::default()
    }

    /// A counter reads `value` for `subject` over any window of at least
    /// `window_seconds` (the largest window at or below the asked one wins).
    pub fn counter(
        mut self,
        subject: Subject,
        name: &str,
        window_seconds: u32,
        value: u64,
    ) -> Self {
        self.counters
            .push((subject, name.to_string(), window_seconds, value));
        self
    }

    /// Put a label on a subject.
    pub fn label(mut self, subject: Subject, label: &str) -> Self {
        self.labels.push((subject, label.to_string()));
        self
    }

    /// Add an entry to a hash bank.
    pub fn bank_entry(mut self, bank: &str, entry_id: &str, hash: &[u8]) -> Self {
        self.banks
            .push((bank.to_string(), entry_id.to_string(), hash.to_vec()));
        self
    }
}

impl NativeEvent for EventFixture {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn kind(&self) -> &str {
        &self.kind
    }

    fn occurred_at_ms(&self) -> i64 {
        self.occurred_at_ms
    }

    fn actor(&self) -> Entity {
        self.actor.clone()
    }

    fn target(&self) -> Option<Entity> {
        self.target.clone()
    }

    fn attribute(&self, name: &str) -> Option<Value> {
        EventFixture::attribute(self, name).cloned()
    }

    fn attribute_names(&self) -> Vec<String> {
        self.attributes.iter().map(|(n, _)| n.clone()).collect()
    }
}

impl NativeState for StateFixture {
    fn counter(&self, subject: &Subject, name: &str, window_seconds: u32) -> u64 {
        self.counters
            .iter()
            .filter(|(s, n, w, _)| s == subject && n == name && *w <= window_seconds)
            .max_by_key(|(_, _, w, _)| *w)
            .map_or(0, |(_, _, _, v)| *v)
    }

    fn labels(&self, subject: &Subject) -> Vec<String> {
        self.labels
            .iter()
            .filter(|(s, _)| s == subject)
            .map(|(_, l)| l.clone())
            .collect()
    }

    fn match_hash(&self, bank: &str, hash: &[u8], max_distance: u32) -> Vec<HashMatch> {
        let mut matches: Vec<HashMatch> = self
            .banks
            .iter()
            .filter(|(b, _, h)| b == bank && h.len() == hash.len())
            .map(|(b, id, h)| HashMatch {
                bank: b.clone(),
                entry_id: id.clone(),
                distance: h.iter().zip(hash).map(|(x, y)| (x ^ y).count_ones()).sum(),
            })
            .filter(|m| m.distance <= max_distance)
            .collect();
        matches.sort_by_key(|m| m.distance);
        matches
    }
}

/// Run a rule natively on a fixture, as the engine would run it on the event.
///
/// # Panics
///
/// If the rule's manifest does not subscribe to the event's kind (the
/// engine would never give it that event, so a test that does is wrong), or
/// if the rule acts on an event that none of its guards admit (the engine
/// would never call it on that event, so its guards are wrong).
pub fn evaluate<R: Rule>(event: &EventFixture, state: &StateFixture) -> Verdict {
    let manifest = R::manifest();
    assert!(
        manifest.event_kinds.contains(&event.kind),
        "rule `{}` does not subscribe to `{}`; it subscribes to {:?}",
        manifest.name,
        event.kind,
        manifest.event_kinds
    );
    let verdict = evaluate_unchecked::<R>(event, state);
    let quiet = verdict.is_allow() && verdict.effects.is_empty();
    assert!(
        quiet || crate::native::guards_admit(&manifest.guards, event, state),
        "rule `{}` returned {:?} on an event none of its guards {:?} admit: the engine \
         would not have called it",
        manifest.name,
        verdict.severity,
        manifest.guards
    );
    verdict
}

/// [`evaluate`] without the subscription and guard checks: the rule's logic
/// alone, as a native baseline for benchmarks.
pub fn evaluate_unchecked<R: Rule>(event: &EventFixture, state: &StateFixture) -> Verdict {
    crate::native::evaluate::<R>(event, state)
}
