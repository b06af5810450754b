//! The event a rule is judging, and the engine state it may read.
//!
//! Inside the engine both are thin handles over host calls: an attribute is
//! fetched only when the rule asks for it. In a native unit test they read
//! from the fixtures in [`crate::testing`]. A rule sees the same API either way.

use crate::testing::{EventFixture, StateFixture};
use crate::types::{Entity, HashMatch, LogLevel, Subject, Value};

/// The event being evaluated.
pub struct Event<'a>(pub(crate) EventSource<'a>);

pub(crate) enum EventSource<'a> {
    Fixture(&'a EventFixture),
    #[cfg(target_arch = "wasm32")]
    Host,
}

/// Reads of engine-owned state: counters, labels and hash banks, as of the
/// time of the event being evaluated.
pub struct State<'a>(pub(crate) StateSource<'a>);

pub(crate) enum StateSource<'a> {
    Fixture(&'a StateFixture),
    #[cfg(target_arch = "wasm32")]
    Host,
}

/// Dispatches one accessor to the fixture or to the host.
macro_rules! from_source {
    ($self:ident, $fixture:ident => $native:expr, $wasm:expr) => {
        match &$self.0 {
            EventSource::Fixture($fixture) => $native,
            #[cfg(target_arch = "wasm32")]
            EventSource::Host => {
                use crate::glue::wit_event as h;
                $wasm
            }
        }
    };
}

impl Event<'_> {
    /// The event's unique id.
    pub fn id(&self) -> String {
        from_source!(self, f => f.id.clone(), h::id())
    }

    /// The dotted kind, such as `message.forwarded`.
    pub fn kind(&self) -> String {
        from_source!(self, f => f.kind.clone(), h::kind())
    }

    /// Whether the event is of this kind (cheaper than comparing [`Event::kind`]).
    pub fn is(&self, kind: &str) -> bool {
        from_source!(self, f => f.kind == kind, h::is_kind(kind))
    }

    /// When the event happened, in milliseconds since the Unix epoch.
    pub fn occurred_at_ms(&self) -> i64 {
        from_source!(self, f => f.occurred_at_ms, h::occurred_at())
    }

    /// Who acted.
    pub fn actor(&self) -> Entity {
        from_source!(self, f => f.actor.clone(), crate::glue::entity_from_host(h::actor()))
    }

    /// Whom or what the action was aimed at, if anyone.
    pub fn target(&self) -> Option<Entity> {
        from_source!(self, f => f.target.clone(), h::target().map(crate::glue::entity_from_host))
    }

    /// Any attribute, whatever its type.
    pub fn attribute(&self, name: &str) -> Option<Value> {
        from_source!(self, f => f.attribute(name).cloned(), h::attribute(name).map(crate::glue::value_from_host))
    }

    /// An integer attribute; `None` if absent or of another type.
    pub fn int(&self, name: &str) -> Option<i64> {
        from_source!(self, f => match f.attribute(name) { Some(Value::Int(v)) => Some(*v), _ => None }, h::int(name))
    }

    /// A float attribute; `None` if absent or of another type.
    pub fn float(&self, name: &str) -> Option<f64> {
        from_source!(self, f => match f.attribute(name) { Some(Value::Float(v)) => Some(*v), _ => None }, h::float(name))
    }

    /// A boolean attribute; `None` if absent or of another type.
    pub fn bool(&self, name: &str) -> Option<bool> {
        from_source!(self, f => match f.attribute(name) { Some(Value::Bool(v)) => Some(*v), _ => None }, h::boolean(name))
    }

    /// A text attribute; `None` if absent or of another type.
    pub fn text(&self, name: &str) -> Option<String> {
        from_source!(self, f => match f.attribute(name) { Some(Value::Text(v)) => Some(v.clone()), _ => None }, h::text(name))
    }

    /// A bytes attribute; `None` if absent or of another type.
    pub fn bytes(&self, name: &str) -> Option<Vec<u8>> {
        from_source!(self, f => match f.attribute(name) { Some(Value::Bytes(v)) => Some(v.clone()), _ => None }, h::bytes(name))
    }

    /// The names of all attributes, in the order the client sent them.
    pub fn attribute_names(&self) -> Vec<String> {
        from_source!(self, f => f.attributes.iter().map(|(n, _)| n.clone()).collect(), h::attribute_names())
    }
}

impl State<'_> {
    /// A counter the rule declared in its manifest, for a subject, over the
    /// last `window_seconds` up to and including the event.
    pub fn counter(&self, subject: &Subject, name: &str, window_seconds: u32) -> u64 {
        match &self.0 {
            StateSource::Fixture(f) => f.read_counter(subject, name, window_seconds),
            #[cfg(target_arch = "wasm32")]
            StateSource::Host => crate::glue::counter(subject, name, window_seconds),
        }
    }

    /// The labels a subject carries as of the event's time.
    pub fn labels(&self, subject: &Subject) -> Vec<String> {
        match &self.0 {
            StateSource::Fixture(f) => f.read_labels(subject),
            #[cfg(target_arch = "wasm32")]
            StateSource::Host => crate::glue::labels(subject),
        }
    }

    /// Whether a subject carries a label as of the event's time.
    pub fn has_label(&self, subject: &Subject, label: &str) -> bool {
        match &self.0 {
            StateSource::Fixture(f) => f.read_labels(subject).iter().any(|l| l == label),
            #[cfg(target_arch = "wasm32")]
            StateSource::Host => crate::glue::has_label(subject, label),
        }
    }

    /// Entries of a named PDQ hash bank within `max_distance` bits of a
    /// 32-byte hash, nearest first.
    pub fn match_hash(&self, bank: &str, hash: &[u8], max_distance: u32) -> Vec<HashMatch> {
        match &self.0 {
            StateSource::Fixture(f) => f.read_matches(bank, hash, max_distance),
            #[cfg(target_arch = "wasm32")]
            StateSource::Host => crate::glue::match_hash(bank, hash, max_distance),
        }
    }
}

/// Write a line to the engine's log, tagged with the rule and the event.
/// In a native test it goes to standard error.
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::glue::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}
