//! The host side of the contract: what a rule's imports do. Each instance's
//! store holds a [`HostState`]; during a call it also holds the event and the
//! state view the call reads. Every import is a read: nothing a rule calls
//! changes engine state.

use std::borrow::Cow;
use std::sync::Arc;

use super::contract::bindings::enforcer::isolation::reset;
use super::contract::bindings::enforcer::rule::{event as wit_event, host, types as wit};
use super::limits::Limits;
use crate::banks::MatchEvidence;
use crate::event::{Entity, EntityKind, Event, Value};
use crate::state::StateView;

/// A rule misused a host function. Returned from the import as a trap, so
/// the evaluation fails with this message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct HostCallError(pub String);

/// The state a host call read could not be reached: not the rule's fault,
/// and reported as such.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct StateUnavailable(pub String);

/// A state read's failure, as the call that met it fails.
fn state_failed(error: crate::state::StateError) -> wasmtime::Error {
    match error {
        crate::state::StateError::Unavailable(message) => {
            wasmtime::Error::new(StateUnavailable(message))
        }
        other => fail(other.to_string()),
    }
}

/// The instance's memory grew in an earlier call: retire it and rerun the
/// call on a fresh instance.
#[derive(Debug, thiserror::Error)]
#[error("instance retired after its memory grew")]
pub(crate) struct InstanceRetired;

/// What a rule declared that the host checks its reads against.
#[derive(Debug, Default)]
pub(crate) struct Declarations {
    /// Counter name and the longest window the rule may read it over. A
    /// rule declares a handful, so a scan beats hashing the name.
    pub counters: Vec<(String, u32)>,
}

/// Lookups recorded as evidence per call: a rule looks up a media hash or
/// two, and one that loops over lookups must not grow a decision without
/// bound.
const MAX_EVIDENCE_LOOKUPS: usize = 8;

/// The event and state one call reads.
pub(crate) struct CallContext {
    pub event: Arc<Event>,
    pub state: Arc<dyn StateView>,
}

/// Per-instance data in the wasmtime store.
pub(crate) struct HostState {
    /// Rule name, for logs.
    pub rule_name: Arc<str>,
    pub declarations: Arc<Declarations>,
    pub limiter: MemoryLimiter,
    pub limits: Limits,
    /// Set for the duration of `evaluate`.
    pub call: Option<CallContext>,
    /// The last message the SDK's panic hook logged, for classifying traps.
    pub panic_message: Option<String>,
    /// Lines logged in the current call.
    pub log_lines: u32,
    /// What the current call's hash-bank lookups found.
    pub evidence: Vec<MatchEvidence>,
}

impl HostState {
    pub fn new(
        rule_name: Arc<str>,
        declarations: Arc<Declarations>,
        limits: &Limits,
        hard_cap: u64,
    ) -> Self {
        HostState {
            rule_name,
            declarations,
            limiter: MemoryLimiter {
                hard_cap: hard_cap as usize,
                denied: false,
            },
            limits: limits.clone(),
            call: None,
            panic_message: None,
            log_lines: 0,
            evidence: Vec::new(),
        }
    }

    /// Prepare for a call on this event.
    pub fn begin(&mut self, event: Arc<Event>, state: Arc<dyn StateView>) {
        self.call = Some(CallContext { event, state });
        self.panic_message = None;
        self.log_lines = 0;
        self.evidence.clear();
        self.limiter.denied = false;
    }

    /// Drop the call's references.
    pub fn end(&mut self) {
        self.call = None;
    }

    fn call(&self, function: &str) -> wasmtime::Result<&CallContext> {
        self.call.as_ref().ok_or_else(|| {
            fail(format!(
                "`{function}` may only be called while evaluating an event"
            ))
        })
    }

    fn event(&self, function: &str) -> wasmtime::Result<&Event> {
        Ok(&self.call(function)?.event)
    }

    /// The call, and the entity a subject names in it if there is one,
    /// borrowed from the event where it can be.
    fn resolve(
        &self,
        subject: wit::Subject,
        function: &str,
    ) -> wasmtime::Result<(&CallContext, Option<Cow<'_, Entity>>)> {
        let call = self.call(function)?;
        let entity = match subject {
            wit::Subject::Actor => Some(Cow::Borrowed(&call.event.actor)),
            wit::Subject::Target => call.event.target.as_ref().map(Cow::Borrowed),
            wit::Subject::Entity(e) => Some(Cow::Owned(entity_from_wit(e))),
        };
        Ok((call, entity))
    }
}

fn fail(message: String) -> wasmtime::Error {
    wasmtime::Error::new(HostCallError(message))
}

/// Caps a rule's memory and records when it asked for more than allowed,
/// so that the trap that follows can be classified as out of memory.
pub(crate) struct MemoryLimiter {
    /// No memory of the instance may exceed this (the rule's cap plus the
    /// isolation bookkeeping for the shadow memory).
    hard_cap: usize,
    /// A growth was refused during the current call.
    pub denied: bool,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let cap = maximum.map_or(self.hard_cap, |m| m.min(self.hard_cap));
        if desired > cap {
            self.denied = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(maximum.is_none_or(|m| desired <= m))
    }
}

pub(crate) fn entity_from_wit(entity: wit::Entity) -> Entity {
    Entity {
        kind: match entity.kind {
            wit::EntityKind::Account => EntityKind::Account,
            wit::EntityKind::Group => EntityKind::Group,
        },
        id: entity.id,
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

fn value_to_wit(value: &Value) -> wit::Value {
    match value {
        Value::Int(v) => wit::Value::Int(*v),
        Value::Float(v) => wit::Value::Float(*v),
        Value::Bool(v) => wit::Value::Boolean(*v),
        Value::Text(v) => wit::Value::Text(v.clone()),
        Value::Bytes(v) => wit::Value::Bytes(v.clone()),
        Value::IntList(v) => wit::Value::IntList(v.clone()),
        Value::FloatList(v) => wit::Value::FloatList(v.clone()),
        Value::BoolList(v) => wit::Value::BoolList(v.clone()),
        Value::TextList(v) => wit::Value::TextList(v.clone()),
        Value::BytesList(v) => wit::Value::BytesList(v.clone()),
    }
}

impl wit::Host for HostState {}

impl reset::Host for HostState {
    fn memory_grew(&mut self) -> wasmtime::Result<()> {
        Err(wasmtime::Error::new(InstanceRetired))
    }
}

impl wit_event::Host for HostState {
    fn id(&mut self) -> wasmtime::Result<String> {
        Ok(self.event("event.id")?.id.clone())
    }

    fn kind(&mut self) -> wasmtime::Result<String> {
        Ok(self.event("event.kind")?.kind.clone())
    }

    fn is_kind(&mut self, kind: String) -> wasmtime::Result<bool> {
        Ok(self.event("event.is-kind")?.kind == kind)
    }

    fn occurred_at(&mut self) -> wasmtime::Result<i64> {
        Ok(self.event("event.occurred-at")?.occurred_at_ms)
    }

    fn actor(&mut self) -> wasmtime::Result<wit::Entity> {
        Ok(entity_to_wit(&self.event("event.actor")?.actor))
    }

    fn target(&mut self) -> wasmtime::Result<Option<wit::Entity>> {
        Ok(self
            .event("event.target")?
            .target
            .as_ref()
            .map(entity_to_wit))
    }

    fn attribute(&mut self, name: String) -> wasmtime::Result<Option<wit::Value>> {
        Ok(self
            .event("event.attribute")?
            .attribute(&name)
            .map(value_to_wit))
    }

    fn int(&mut self, name: String) -> wasmtime::Result<Option<i64>> {
        Ok(match self.event("event.int")?.attribute(&name) {
            Some(Value::Int(v)) => Some(*v),
            _ => None,
        })
    }

    fn float(&mut self, name: String) -> wasmtime::Result<Option<f64>> {
        Ok(match self.event("event.float")?.attribute(&name) {
            Some(Value::Float(v)) => Some(*v),
            _ => None,
        })
    }

    fn boolean(&mut self, name: String) -> wasmtime::Result<Option<bool>> {
        Ok(match self.event("event.boolean")?.attribute(&name) {
            Some(Value::Bool(v)) => Some(*v),
            _ => None,
        })
    }

    fn text(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        Ok(match self.event("event.text")?.attribute(&name) {
            Some(Value::Text(v)) => Some(v.clone()),
            _ => None,
        })
    }

    fn bytes(&mut self, name: String) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(match self.event("event.bytes")?.attribute(&name) {
            Some(Value::Bytes(v)) => Some(v.clone()),
            _ => None,
        })
    }

    fn attribute_names(&mut self) -> wasmtime::Result<Vec<String>> {
        Ok(self
            .event("event.attribute-names")?
            .attributes
            .iter()
            .map(|(n, _)| n.clone())
            .collect())
    }
}

impl host::Host for HostState {
    fn counter(
        &mut self,
        subject: wit::Subject,
        name: String,
        window_seconds: u32,
    ) -> wasmtime::Result<u64> {
        let declared = self
            .declarations
            .counters
            .iter()
            .find(|(declared, _)| *declared == name)
            .map(|(_, window)| *window)
            .or_else(|| {
                let call = self.call.as_ref()?;
                call.state.shared_counter_window(&name)
            });
        let Some(declared) = declared else {
            return Err(fail(format!(
                "read counter `{name}`, which the rule's manifest does not declare"
            )));
        };
        if window_seconds > declared {
            return Err(fail(format!(
                "read counter `{name}` over {window_seconds}s, longer than the {declared}s its manifest declares"
            )));
        }
        let (call, Some(entity)) = self.resolve(subject, "counter")? else {
            return Ok(0);
        };
        call.state
            .counter(&entity, &name, window_seconds, call.event.occurred_at_ms)
            .map_err(state_failed)
    }

    fn labels(&mut self, subject: wit::Subject) -> wasmtime::Result<Vec<String>> {
        let (call, Some(entity)) = self.resolve(subject, "labels")? else {
            return Ok(Vec::new());
        };
        call.state
            .labels(&entity, call.event.occurred_at_ms)
            .map_err(state_failed)
    }

    fn has_label(&mut self, subject: wit::Subject, label: String) -> wasmtime::Result<bool> {
        let (call, Some(entity)) = self.resolve(subject, "has-label")? else {
            return Ok(false);
        };
        call.state
            .has_label(&entity, &label, call.event.occurred_at_ms)
            .map_err(state_failed)
    }

    fn match_hash(
        &mut self,
        bank: String,
        hash: Vec<u8>,
        max_distance: u32,
    ) -> wasmtime::Result<Vec<wit::HashMatch>> {
        let hash: [u8; 32] = hash.as_slice().try_into().map_err(|_| {
            fail(format!(
                "match-hash takes a 32-byte PDQ hash, got {} bytes",
                hash.len()
            ))
        })?;
        if max_distance > 256 {
            return Err(fail(format!(
                "match-hash distance {max_distance} is over 256, the hash length in bits"
            )));
        }
        let call = self.call("match-hash")?;
        let lookup = call
            .state
            .match_hash(&bank, &hash, max_distance)
            .map_err(|e| fail(e.to_string()))?;
        let given = lookup
            .effective()
            .iter()
            .map(|m| wit::HashMatch {
                bank: m.bank.clone(),
                entry_id: m.entry_id.clone(),
                distance: m.distance,
            })
            .collect();
        if !lookup.matches.is_empty() && self.evidence.len() < MAX_EVIDENCE_LOOKUPS {
            self.evidence.push(MatchEvidence {
                bank,
                query_hash: hash,
                max_distance,
                matches: lookup.matches,
                suppressed_by: lookup.suppressed_by,
            });
        }
        Ok(given)
    }

    fn log(&mut self, level: wit::LogLevel, mut message: String) -> wasmtime::Result<()> {
        if matches!(level, wit::LogLevel::Error) && message.starts_with("panicked at ") {
            self.panic_message = Some(message.trim_start_matches("panicked at ").to_string());
        }
        self.log_lines += 1;
        if self.log_lines > self.limits.max_log_lines {
            return Ok(());
        }
        if message.len() > self.limits.max_log_line_bytes {
            let mut cut = self.limits.max_log_line_bytes;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let rule = &*self.rule_name;
        let event = self.call.as_ref().map_or("", |c| c.event.id.as_str());
        match level {
            wit::LogLevel::Debug => tracing::debug!(rule, event, "{message}"),
            wit::LogLevel::Info => tracing::info!(rule, event, "{message}"),
            wit::LogLevel::Warn => tracing::warn!(rule, event, "{message}"),
            wit::LogLevel::Error => tracing::error!(rule, event, "{message}"),
        }
        Ok(())
    }
}
