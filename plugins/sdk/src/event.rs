//! The event a rule is judging, and the engine state it may read.
//!
//! Inside the engine both are thin handles over host calls: an attribute is
//! fetched only when the rule asks for it. In a native unit test they read
//! from whatever native embedding serves them ([`crate::native`]), such as the
//! fixtures in [`crate::testing`]. A rule sees the same API either way.

use crate::native::{NativeEvent, NativeState};
use crate::types::{Entity, HashMatch, LogLevel, Subject, Value};

/// The event being evaluated.
pub struct Event<'a>(pub(crate) EventSource<'a>);

pub(crate) enum EventSource<'a> {
    Native(&'a dyn NativeEvent),
    #[cfg(target_arch = "wasm32")]
    Host,
}

/// Reads of engine-owned state: counters, labels and hash banks, as of the
/// time of the event being evaluated.
pub struct State<'a>(pub(crate) StateSource<'a>);

pub(crate) enum StateSource<'a> {
    Native(&'a dyn NativeState),
    #[cfg(target_arch = "wasm32")]
    Host,
}

/// Dispatches one accessor to the fixture or to the host.
macro_rules! from_source {
    ($self:ident, $fixture:ident => $native:expr, $wasm:expr) => {
        match &$self.0 {
            EventSource::Native($fixture) => $native,
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
        from_source!(self, n => n.id(), h::id())
    }

    /// The dotted kind, such as `message.forwarded`.
    pub fn kind(&self) -> String {
        from_source!(self, n => n.kind().to_string(), h::kind())
    }

    /// Whether the event is of this kind (cheaper than comparing [`Event::kind`]).
    pub fn is(&self, kind: &str) -> bool {
        from_source!(self, n => n.kind() == kind, h::is_kind(kind))
    }

    /// When the event happened, in milliseconds since the Unix epoch.
    pub fn occurred_at_ms(&self) -> i64 {
        from_source!(self, n => n.occurred_at_ms(), h::occurred_at())
    }

    /// Who acted.
    pub fn actor(&self) -> Entity {
        from_source!(self, n => n.actor(), crate::glue::entity_from_host(h::actor()))
    }

    /// Whom or what the action was aimed at, if anyone.
    pub fn target(&self) -> Option<Entity> {
        from_source!(self, n => n.target(), h::target().map(crate::glue::entity_from_host))
    }

    /// Any attribute, whatever its type.
    pub fn attribute(&self, name: &str) -> Option<Value> {
        from_source!(self, n => n.attribute(name), h::attribute(name).map(crate::glue::value_from_host))
    }

    /// An integer attribute; `None` if absent or of another type.
    pub fn int(&self, name: &str) -> Option<i64> {
        from_source!(self, n => n.int(name), h::int(name))
    }

    /// A float attribute; `None` if absent or of another type.
    pub fn float(&self, name: &str) -> Option<f64> {
        from_source!(self, n => n.float(name), h::float(name))
    }

    /// A boolean attribute; `None` if absent or of another type.
    pub fn bool(&self, name: &str) -> Option<bool> {
        from_source!(self, n => n.bool(name), h::boolean(name))
    }

    /// A text attribute; `None` if absent or of another type.
    pub fn text(&self, name: &str) -> Option<String> {
        from_source!(self, n => n.text(name), h::text(name))
    }

    /// A bytes attribute; `None` if absent or of another type.
    pub fn bytes(&self, name: &str) -> Option<Vec<u8>> {
        from_source!(self, n => n.bytes(name), h::bytes(name))
    }

    /// The names of all attributes, in the order the client sent them.
    pub fn attribute_names(&self) -> Vec<String> {
        from_source!(self, n => n.attribute_names(), h::attribute_names())
    }
}

impl State<'_> {
    /// A counter the rule declared in its manifest, for a subject, over the
    /// last `window_seconds` up to and including the event.
    pub fn counter(&self, subject: &Subject, name: &str, window_seconds: u32) -> u64 {
        match &self.0 {
            StateSource::Native(n) => n.counter(subject, name, window_seconds),
            #[cfg(target_arch = "wasm32")]
            StateSource::Host => crate::glue::counter(subject, name, window_seconds),
        }
    }

    /// The labels a subject carries as of the event's time.
    pub fn labels(&self, subject: &Subject) -> Vec<String> {
        match &self.0 {
            StateSource::Native(n) => n.labels(subject),
            #[cfg(target_arch = "wasm32")]
            StateSource::Host => crate::glue::labels(subject),
        }
    }

    /// Whether a subject carries a label as of the event's time.
    pub fn has_label(&self, subject: &Subject, label: &str) -> bool {
        match &self.0 {
            StateSource::Native(n) => n.has_label(subject, label),
            #[cfg(target_arch = "wasm32")]
            StateSource::Host => crate::glue::has_label(subject, label),
        }
    }

    /// Entries of a named PDQ hash bank within `max_distance` bits of a
    /// 32-byte hash, nearest first.
    pub fn match_hash(&self, bank: &str, hash: &[u8], max_distance: u32) -> Vec<HashMatch> {
        match &self.0 {
            StateSource::Native(n) => n.match_hash(bank, hash, max_distance),
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
