//! Rule fixtures: events with the verdicts a rule must give them, run before the rule is activated.
//!
//! A rule build may ship fixtures: a JSON file named `<rule file
//! stem>.fixtures.json` beside `<rule>.wasm` (see [`fixtures_path`]), or
//! the same bytes in an upload. Each case is one event, the state the rule
//! should see while judging it, and what the rule must answer. A build
//! that fails any case is refused, and the error names the case and says
//! what was expected and what the rule gave instead.
//!
//! # Example
//!
//! These are two cases for the `mass-forwarding` example rule:
//!
//! ```json
//! {
//!   "cases": [
//!     {
//!       "name": "an ordinary forward to three chats is allowed",
//!       "event": {
//!         "kind": "message.forwarded",
//!         "actor": "account:a1",
//!         "target": {"type": "group", "id": "g1"},
//!         "attributes": {"chat_count": 3, "message_id": "m1", "forward_depth": 0}
//!       },
//!       "state": {
//!         "counters": [{"entity": "actor", "name": "forwards", "value": 12}]
//!       },
//!       "expect": {"severity": "allow", "max_score": 0.0}
//!     },
//!     {
//!       "name": "one message forwarded to 40 chats at once is limited",
//!       "event": {
//!         "id": "forward-40",
//!         "kind": "message.forwarded",
//!         "occurred_at_ms": 1700000000000,
//!         "actor": {"type": "account", "id": "a1"},
//!         "target": "group:g1",
//!         "attributes": {"chat_count": 40, "message_id": "m2", "forward_depth": 1}
//!       },
//!       "state": {
//!         "counters": [{"entity": "account:a1", "name": "forwards", "value": 52}],
//!         "labels": [{"entity": "actor", "label": "stranger-sprayer"}]
//!       },
//!       "expect": {
//!         "severity": "limit",
//!         "min_score": 0.9,
//!         "max_score": 1.0,
//!         "reasons_include": ["40 chats at once"],
//!         "actions_include": ["limit_forwarding"],
//!         "labels_set": ["mass-forwarder"]
//!       }
//!     }
//!   ]
//! }
//! ```
//!
//! # Format
//!
//! The file is one object with `cases`, a non-empty list. Every object in
//! it refuses fields it does not know, so a misspelt field is an error
//! rather than a silently ignored expectation. A case has:
//!
//! * `name`: what the case shows, quoted in every failure.
//! * `event`:
//!   * `kind`: the event kind; it must be one the rule subscribes to.
//!   * `actor` and (optionally) `target`: an entity, written
//!     `"account:<id>"` or `"group:<id>"`, or as an object
//!     `{"type": "account", "id": "<id>"}`.
//!   * `id` (optional): defaults to `fixture-<n>`, `n` the case's number.
//!   * `occurred_at_ms` (optional): defaults to
//!     [`DEFAULT_OCCURRED_AT_MS`]. Hand-set state ignores time, so this
//!     matters only to rules that read the time themselves.
//!   * `attributes` (optional): an object of name to value. An integer is an
//!     `int`, a number with a fraction or exponent a `float`, `true` and
//!     `false` a `bool`, a string a `text`. Bytes are written
//!     `{"bytes_hex": "00ff"}`. A whole-number float can be written
//!     `{"float": 1}`, and lists with their type: `{"int_list": [1, 2]}`,
//!     `{"float_list": [...]}`, `{"bool_list": [...]}`,
//!     `{"text_list": [...]}`, `{"bytes_hex_list": ["00ff", ...]}`.
//! * `state` (optional; empty if absent). Every entity here may also be
//!   `"actor"` or `"target"`, meaning the event's own.
//!   * `counters`: `{"entity", "name", "value"}`. The value is what the
//!     rule reads for that counter over any window. The name must be a
//!     counter the rule declares.
//!   * `labels`: `{"entity", "label"}`, labels the entity carries.
//!   * `bank_entries`: `{"bank", "entry_id", "hash"}`, the hash as 64 hex
//!     digits (a 256-bit PDQ hash). A bank exists only if it has an entry.
//! * `expect`: either `{"error": true}`, meaning the rule must fail, or:
//!   * `severity` (required): `allow`, `review`, `limit` or `block`.
//!   * `min_score`, `max_score` (optional): inclusive bounds on the score.
//!   * `reasons_include` (optional): texts that must each appear in some
//!     reason, in its code or its explanation.
//!   * `actions_include` (optional): actions the verdict must recommend, by
//!     name: `block_account`, `ban_group`, `limit_forwarding`,
//!     `remove_media`, `report_to_clearinghouse`.
//!   * `labels_set` (optional): labels the verdict must ask to set.
//!
//! Expectations are lower bounds on what the verdict says, apart from the
//! severity and the score bounds: a verdict may give more reasons, actions
//! or labels than a case lists.
//!
//! # Limits of hand-set state
//!
//! Cases run against a [`FixedState`]: a counter has one value whatever the
//! window it is read over, labels never expire, and no counter is shared by
//! the policy. Guards are not consulted; the rule is always called, so a
//! case shows what the rule itself answers.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::event::{Entity, EntityKind, Event, Value};
use crate::rule::Rule;
use crate::state::{FixedState, StateView};
use crate::verdict::{Action, Effect, RuleError, Severity, Verdict};

/// The event time of a case that gives none: 2023-11-14T22:13:20Z, a fixed
/// instant so that every run of a case sees the same "now".
pub const DEFAULT_OCCURRED_AT_MS: i64 = 1_700_000_000_000;

/// Where the fixtures of the rule build at `wasm` are kept: beside it, as
/// `<file stem>.fixtures.json`.
pub fn fixtures_path(wasm: &Path) -> PathBuf {
    let stem = wasm.file_stem().unwrap_or_default().to_string_lossy();
    wasm.with_file_name(format!("{stem}.fixtures.json"))
}

/// A rule's fixtures, parsed and checked as far as they can be without the
/// rule.
#[derive(Clone, Debug)]
pub struct Fixtures {
    cases: Vec<Case>,
}

/// One case, ready to run.
#[derive(Clone, Debug)]
struct Case {
    name: String,
    event: Arc<Event>,
    state: FixedState,
    /// The counter names the state sets, to check against the manifest.
    counters: Vec<String>,
    expect: Expect,
}

/// Which case of how many, and its name: how every failure starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseId {
    /// Its position, from 1.
    pub number: usize,
    /// How many cases there are.
    pub of: usize,
    /// Its name.
    pub name: String,
}

impl fmt::Display for CaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fixture {} of {} ({:?})",
            self.number, self.of, self.name
        )
    }
}

/// Every case passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixtureReport {
    /// The rule's name.
    pub rule: String,
    /// How many cases passed: all of them.
    pub passed: usize,
}

impl fmt::Display for FixtureReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: all {} fixtures passed", self.rule, self.passed)
    }
}

/// Why fixtures could not be read, or why a rule failed them.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FixtureError {
    /// Not valid JSON, or not the fixture format.
    #[error("fixtures, line {line} column {column}: {message}")]
    Parse {
        /// The line, from 1.
        line: usize,
        /// The column, from 1.
        column: usize,
        /// What is wrong there.
        message: String,
    },
    /// A file with nothing to check would pass every rule.
    #[error("the fixtures declare no cases; a fixture file needs at least one")]
    NoCases,
    /// A case that is well-formed JSON but cannot be run as written.
    #[error("{case}: {problem}")]
    Invalid {
        /// The case.
        case: CaseId,
        /// What is wrong with it.
        problem: String,
    },
    /// The case's event is of a kind the rule is never sent.
    #[error(
        "{case}: the event kind `{kind}` is not one the rule subscribes to ({subscribed}), \
         so the pipeline would never send it"
    )]
    Unsubscribed {
        /// The case.
        case: CaseId,
        /// The event's kind.
        kind: String,
        /// The kinds the rule subscribes to, listed.
        subscribed: String,
    },
    /// The case sets a counter the rule does not declare.
    #[error(
        "{case}: the state sets counter `{counter}`, which the rule does not declare \
         (it declares {declared}); the rule cannot read it, so the value would change nothing"
    )]
    UndeclaredCounter {
        /// The case.
        case: CaseId,
        /// The counter's name.
        counter: String,
        /// The counters the rule declares, listed.
        declared: String,
    },
    /// The rule failed where the case expected a verdict.
    #[error("{case}: the rule failed: {error}")]
    RuleFailed {
        /// The case.
        case: CaseId,
        /// How it failed.
        error: RuleError,
    },
    /// The rule answered, but not as the case expects.
    #[error("{case}: expected {expected}, got {got}")]
    Mismatch {
        /// The case.
        case: CaseId,
        /// The expectation that failed.
        expected: String,
        /// The verdict, summarised.
        got: String,
    },
}

impl Fixtures {
    /// Parse fixtures from JSON (the format is in the module's
    /// documentation), and check what can be checked without the rule:
    /// each event is valid, and `"target"` is used only where the event has
    /// one.
    pub fn parse(json: &[u8]) -> Result<Self, FixtureError> {
        let file: FixtureFile = serde_json::from_slice(json).map_err(|e| {
            let (line, column) = (e.line(), e.column());
            let message = e.to_string();
            // serde_json ends its message with the position, which the
            // error carries in its own fields.
            let message = message
                .strip_suffix(&format!(" at line {line} column {column}"))
                .map_or(message.clone(), str::to_string);
            FixtureError::Parse {
                line,
                column,
                message,
            }
        })?;
        if file.cases.is_empty() {
            return Err(FixtureError::NoCases);
        }
        let of = file.cases.len();
        let cases = file
            .cases
            .into_iter()
            .enumerate()
            .map(|(index, raw)| {
                let id = CaseId {
                    number: index + 1,
                    of,
                    name: raw.name.clone(),
                };
                raw.into_case(index + 1)
                    .map_err(|problem| FixtureError::Invalid { case: id, problem })
            })
            .collect::<Result<_, _>>()?;
        Ok(Fixtures { cases })
    }

    /// How many cases there are.
    pub fn len(&self) -> usize {
        self.cases.len()
    }

    /// Whether there are none (never, for parsed fixtures).
    pub fn is_empty(&self) -> bool {
        self.cases.is_empty()
    }

    /// Run every case against `rule`, in order, and stop at the first that
    /// fails: one failure is enough to refuse the build.
    pub fn run(&self, rule: &dyn Rule) -> Result<FixtureReport, FixtureError> {
        let manifest = rule.manifest();
        for (index, case) in self.cases.iter().enumerate() {
            let id = || CaseId {
                number: index + 1,
                of: self.cases.len(),
                name: case.name.clone(),
            };
            if !manifest.event_kinds.contains(&case.event.kind) {
                return Err(FixtureError::Unsubscribed {
                    case: id(),
                    kind: case.event.kind.clone(),
                    subscribed: listed(manifest.event_kinds.iter()),
                });
            }
            // A counter the rule does not declare is an error, not a
            // warning: the host refuses a rule's read of a counter its
            // manifest does not declare, and hand-set state shares none
            // from a policy, so the value can never reach the rule. A case
            // setting one almost always misspells a counter the rule does
            // read, and then tests the rule with that counter at 0.
            if let Some(counter) = case
                .counters
                .iter()
                .find(|name| !manifest.counters.iter().any(|c| c.name == **name))
            {
                return Err(FixtureError::UndeclaredCounter {
                    case: id(),
                    counter: counter.clone(),
                    declared: listed(manifest.counters.iter().map(|c| &c.name)),
                });
            }
            let state: Arc<dyn StateView> = Arc::new(case.state.clone());
            let outcome = rule.evaluate(&case.event, &state);
            case.expect
                .check(outcome.result)
                .map_err(|failure| match failure {
                    Failure::RuleFailed(error) => FixtureError::RuleFailed { case: id(), error },
                    Failure::Mismatch { expected, got } => FixtureError::Mismatch {
                        case: id(),
                        expected,
                        got,
                    },
                })?;
        }
        Ok(FixtureReport {
            rule: manifest.name.clone(),
            passed: self.cases.len(),
        })
    }
}

/// Names in backticks, separated by commas, or `none`.
fn listed<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<String> = names.map(|n| format!("`{n}`")).collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// A severity or action by the name the engine serialises it under, so
/// that messages use the same words a fixture does.
fn serial_name<T: Serialize + fmt::Debug>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{value:?}"),
    }
}

// ---------------------------------------------------------------------------
// The file as written. These types exist only to be deserialised; `parse`
// turns them into cases.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FixtureFile {
    cases: Vec<RawCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    event: RawEvent,
    #[serde(default)]
    state: RawState,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    id: Option<String>,
    kind: String,
    occurred_at_ms: Option<i64>,
    actor: ConcreteEntity,
    target: Option<ConcreteEntity>,
    #[serde(default)]
    attributes: Attributes,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    #[serde(default)]
    counters: Vec<RawCounter>,
    #[serde(default)]
    labels: Vec<RawLabel>,
    #[serde(default)]
    bank_entries: Vec<RawBankEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCounter {
    entity: EntityRef,
    name: String,
    value: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLabel {
    entity: EntityRef,
    label: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBankEntry {
    bank: String,
    entry_id: String,
    hash: Hash256,
}

impl RawCase {
    /// The case as it runs: the event completed with its defaults and
    /// checked, the state built with `"actor"` and `"target"` resolved.
    fn into_case(self, number: usize) -> Result<Case, String> {
        let RawEvent {
            id,
            kind,
            occurred_at_ms,
            actor,
            target,
            attributes,
        } = self.event;
        let event = Event {
            id: id.unwrap_or_else(|| format!("fixture-{number}")),
            kind,
            occurred_at_ms: occurred_at_ms.unwrap_or(DEFAULT_OCCURRED_AT_MS),
            actor: actor.0,
            target: target.map(|t| t.0),
            attributes: attributes.0,
        };
        event
            .validate()
            .map_err(|e| format!("the event is invalid: {e}"))?;

        let resolve = |entity: EntityRef, what: &str| match entity {
            EntityRef::Actor => Ok(event.actor.clone()),
            EntityRef::Target => event.target.clone().ok_or_else(|| {
                format!("the state puts {what} on the event's target, but the event has none")
            }),
            EntityRef::Entity(entity) => Ok(entity),
        };
        let mut state = FixedState::new();
        let mut counters = Vec::new();
        for counter in self.state.counters {
            let entity = resolve(counter.entity, &format!("counter `{}`", counter.name))?;
            state = state.with_counter(entity, &counter.name, counter.value);
            counters.push(counter.name);
        }
        for label in self.state.labels {
            let entity = resolve(label.entity, &format!("label `{}`", label.label))?;
            state = state.with_label(entity, &label.label);
        }
        for entry in self.state.bank_entries {
            state = state.with_bank_entry(&entry.bank, &entry.entry_id, entry.hash.0);
        }
        Ok(Case {
            name: self.name,
            event: Arc::new(event),
            state,
            counters,
            expect: self.expect,
        })
    }
}

// ---------------------------------------------------------------------------
// Entities: `"account:a1"`, `{"type": "account", "id": "a1"}`, and in state
// also `"actor"` and `"target"`.

/// An entity as the state names it: a concrete one, or the event's own.
enum EntityRef {
    Actor,
    Target,
    Entity(Entity),
}

/// An entity that must be concrete: the event's actor and target.
struct ConcreteEntity(Entity);

/// The object form of an entity.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntityObject {
    #[serde(rename = "type")]
    kind: EntityKind,
    id: String,
}

struct EntityVisitor {
    /// Whether `"actor"` and `"target"` are allowed.
    roles: bool,
}

impl<'de> Visitor<'de> for EntityVisitor {
    type Value = EntityRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "an entity: \"account:<id>\", \"group:<id>\" or {\"type\": \"account\", \"id\": \"<id>\"}",
        )?;
        if self.roles {
            f.write_str(", or \"actor\" or \"target\" for the event's own")?;
        }
        Ok(())
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<EntityRef, E> {
        match text {
            "actor" if self.roles => return Ok(EntityRef::Actor),
            "target" if self.roles => return Ok(EntityRef::Target),
            _ => {}
        }
        let entity = match text.split_once(':') {
            Some(("account", id)) => Entity::account(id),
            Some(("group", id)) => Entity::group(id),
            _ => {
                return Err(E::invalid_value(de::Unexpected::Str(text), &self));
            }
        };
        if entity.id.is_empty() {
            return Err(E::custom(format!("entity `{text}` has an empty id")));
        }
        Ok(EntityRef::Entity(entity))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<EntityRef, A::Error> {
        let object = EntityObject::deserialize(MapAccessDeserializer::new(map))?;
        Ok(EntityRef::Entity(Entity {
            kind: object.kind,
            id: object.id,
        }))
    }
}

impl<'de> Deserialize<'de> for EntityRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EntityVisitor { roles: true })
    }
}

impl<'de> Deserialize<'de> for ConcreteEntity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match deserializer.deserialize_any(EntityVisitor { roles: false })? {
            EntityRef::Entity(entity) => Ok(ConcreteEntity(entity)),
            // Without roles the visitor makes only concrete entities; this
            // arm keeps the match total without a panic.
            EntityRef::Actor | EntityRef::Target => Err(de::Error::custom(
                "the event's actor and target must be accounts or groups",
            )),
        }
    }
}

// ---------------------------------------------------------------------------
// Attributes: plain JSON values, and typed objects for what JSON cannot say.

/// Attributes in the order written.
#[derive(Default)]
struct Attributes(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(AttributesVisitor)
    }
}

struct AttributesVisitor;

impl<'de> Visitor<'de> for AttributesVisitor {
    type Value = Attributes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of attribute names to values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attributes, A::Error> {
        let mut attributes: Vec<(String, Value)> = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            // JSON allows a repeated key; an event does not.
            if attributes.iter().any(|(n, _)| *n == name) {
                return Err(de::Error::custom(format!(
                    "attribute `{name}` appears twice"
                )));
            }
            let AttributeValue(value) = map.next_value()?;
            attributes.push((name, value));
        }
        Ok(Attributes(attributes))
    }
}

struct AttributeValue(Value);

impl<'de> Deserialize<'de> for AttributeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(AttributeVisitor)
            .map(AttributeValue)
    }
}

/// A value whose type JSON cannot show: bytes, a whole-number float, lists.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum TypedValue {
    BytesHex(HexBytes),
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
    IntList(Vec<i64>),
    FloatList(Vec<f64>),
    BoolList(Vec<bool>),
    TextList(Vec<String>),
    BytesHexList(Vec<HexBytes>),
}

impl From<TypedValue> for Value {
    fn from(typed: TypedValue) -> Value {
        match typed {
            TypedValue::BytesHex(b) => Value::Bytes(b.0),
            TypedValue::Int(v) => Value::Int(v),
            TypedValue::Float(v) => Value::Float(v),
            TypedValue::Bool(v) => Value::Bool(v),
            TypedValue::Text(v) => Value::Text(v),
            TypedValue::IntList(v) => Value::IntList(v),
            TypedValue::FloatList(v) => Value::FloatList(v),
            TypedValue::BoolList(v) => Value::BoolList(v),
            TypedValue::TextList(v) => Value::TextList(v),
            TypedValue::BytesHexList(v) => Value::BytesList(v.into_iter().map(|b| b.0).collect()),
        }
    }
}

struct AttributeVisitor;

impl<'de> Visitor<'de> for AttributeVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "an attribute value: an integer, a float, a boolean, a string, \
             {\"bytes_hex\": \"<hex>\"} or a typed list such as {\"text_list\": [...]}",
        )
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v).map(Value::Int).map_err(|_| {
            E::custom(format!(
                "{v} is over {}, the largest integer attribute",
                i64::MAX
            ))
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Text(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Text(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Err(E::custom(
            "null is not an attribute value; leave the attribute out instead",
        ))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _seq: A) -> Result<Value, A::Error> {
        // An untyped list could not say what an empty one holds, nor tell
        // a list of floats from one of integers that happen to be whole.
        Err(de::Error::custom(
            "a list attribute is written with its type, such as {\"text_list\": [\"a\", \"b\"]} \
             or {\"int_list\": [1, 2]}",
        ))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let typed = TypedValue::deserialize(MapAccessDeserializer::new(&mut map))?;
        if map.next_key::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(
                "a typed attribute value has exactly one key, such as {\"bytes_hex\": \"00ff\"}",
            ));
        }
        Ok(typed.into())
    }
}

/// Bytes written as hex digits.
struct HexBytes(Vec<u8>);

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        hex::decode(&text)
            .map(HexBytes)
            .map_err(|e| de::Error::custom(format!("`{text}` is not hex bytes: {e}")))
    }
}

/// A 256-bit hash written as 64 hex digits.
struct Hash256([u8; 32]);

impl<'de> Deserialize<'de> for Hash256 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let HexBytes(bytes) = HexBytes::deserialize(deserializer)?;
        let length = bytes.len();
        bytes.try_into().map(Hash256).map_err(|_| {
            de::Error::custom(format!(
                "a hash is 32 bytes (64 hex digits), not {length} bytes"
            ))
        })
    }
}

// ---------------------------------------------------------------------------
// Expectations.

/// What a case expects of the rule.
#[derive(Clone, Debug)]
enum Expect {
    /// A verdict with these properties.
    Verdict(VerdictExpect),
    /// An error of any kind.
    Error,
}

#[derive(Clone, Debug)]
struct VerdictExpect {
    severity: Severity,
    min_score: Option<f64>,
    max_score: Option<f64>,
    reasons_include: Vec<String>,
    actions_include: Vec<Action>,
    labels_set: Vec<String>,
}

/// `expect` as written: every field optional, so that `{"error": true}`
/// and a verdict expectation share one object.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    severity: Option<Severity>,
    min_score: Option<f64>,
    max_score: Option<f64>,
    reasons_include: Option<Vec<String>>,
    actions_include: Option<Vec<Action>>,
    labels_set: Option<Vec<String>>,
    #[serde(default)]
    error: bool,
}

impl<'de> Deserialize<'de> for Expect {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ExpectVisitor)
    }
}

/// Checks `expect` while its object is being read, so that an error is
/// placed at it rather than at the end of the case around it.
struct ExpectVisitor;

impl<'de> Visitor<'de> for ExpectVisitor {
    type Value = Expect;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an expectation such as {\"severity\": \"allow\"}, or {\"error\": true}")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Expect, A::Error> {
        let raw = RawExpect::deserialize(MapAccessDeserializer::new(map))?;
        Expect::try_from(raw).map_err(de::Error::custom)
    }
}

impl TryFrom<RawExpect> for Expect {
    type Error = String;

    fn try_from(raw: RawExpect) -> Result<Expect, String> {
        if raw.error {
            let others = [
                ("severity", raw.severity.is_some()),
                ("min_score", raw.min_score.is_some()),
                ("max_score", raw.max_score.is_some()),
                ("reasons_include", raw.reasons_include.is_some()),
                ("actions_include", raw.actions_include.is_some()),
                ("labels_set", raw.labels_set.is_some()),
            ];
            if let Some((field, _)) = others.iter().find(|(_, present)| *present) {
                return Err(format!(
                    "`expect` has both `error: true` and `{field}`; a rule that fails gives \
                     no verdict to check"
                ));
            }
            return Ok(Expect::Error);
        }
        let severity = raw.severity.ok_or(
            "missing field `severity` in `expect` (or `\"error\": true` for a rule that must fail)",
        )?;
        for (field, bound) in [("min_score", raw.min_score), ("max_score", raw.max_score)] {
            if let Some(bound) = bound.filter(|b| !(0.0..=1.0).contains(b)) {
                return Err(format!("`{field}` is {bound}; scores are between 0 and 1"));
            }
        }
        if let (Some(min), Some(max)) = (raw.min_score, raw.max_score)
            && min > max
        {
            return Err(format!(
                "`min_score` {min} is above `max_score` {max}; no score is both"
            ));
        }
        Ok(Expect::Verdict(VerdictExpect {
            severity,
            min_score: raw.min_score,
            max_score: raw.max_score,
            reasons_include: raw.reasons_include.unwrap_or_default(),
            actions_include: raw.actions_include.unwrap_or_default(),
            labels_set: raw.labels_set.unwrap_or_default(),
        }))
    }
}

/// How a case failed, before it is given its case.
enum Failure {
    RuleFailed(RuleError),
    Mismatch { expected: String, got: String },
}

impl Expect {
    /// Whether the rule's result meets the expectation.
    fn check(&self, result: Result<Verdict, RuleError>) -> Result<(), Failure> {
        let (expect, verdict) = match (self, result) {
            (Expect::Error, Err(_)) => return Ok(()),
            (Expect::Error, Ok(verdict)) => {
                return Err(Failure::Mismatch {
                    expected: "the rule to fail".to_string(),
                    got: summary(&verdict),
                });
            }
            (Expect::Verdict(_), Err(error)) => return Err(Failure::RuleFailed(error)),
            (Expect::Verdict(expect), Ok(verdict)) => (expect, verdict),
        };
        let mismatch = |expected: String| Failure::Mismatch {
            expected,
            got: summary(&verdict),
        };
        if verdict.severity != expect.severity {
            return Err(mismatch(format!(
                "severity {}",
                serial_name(&expect.severity)
            )));
        }
        if let Some(min) = expect.min_score.filter(|min| verdict.score < *min) {
            return Err(mismatch(format!("a score of at least {min:?}")));
        }
        if let Some(max) = expect.max_score.filter(|max| verdict.score > *max) {
            return Err(mismatch(format!("a score of at most {max:?}")));
        }
        for text in &expect.reasons_include {
            let found = verdict
                .reasons
                .iter()
                .any(|r| r.code.contains(text.as_str()) || r.explanation.contains(text.as_str()));
            if !found {
                return Err(mismatch(format!("a reason containing {text:?}")));
            }
        }
        for action in &expect.actions_include {
            if !verdict.actions.iter().any(|a| a.action == *action) {
                return Err(mismatch(format!("action {}", serial_name(action))));
            }
        }
        for label in &expect.labels_set {
            if !labels_set(&verdict).any(|l| l == label) {
                return Err(mismatch(format!("label {label:?} set")));
            }
        }
        Ok(())
    }
}

/// The labels a verdict asks to set.
fn labels_set(verdict: &Verdict) -> impl Iterator<Item = &str> {
    verdict.effects.iter().filter_map(|effect| match effect {
        Effect::SetLabel { label, .. } => Some(label.as_str()),
        Effect::ClearLabel { .. } => None,
    })
}

/// A verdict in one line: severity, score, reasons (each explanation
/// quoted, since explanations hold commas), actions and labels.
fn summary(verdict: &Verdict) -> String {
    let or_none = |items: Vec<String>, separator: &str| {
        if items.is_empty() {
            "none".to_string()
        } else {
            items.join(separator)
        }
    };
    let reasons = or_none(
        verdict
            .reasons
            .iter()
            .map(|r| format!("{}: {:?}", r.code, r.explanation))
            .collect(),
        ", ",
    );
    let actions = or_none(
        verdict
            .actions
            .iter()
            .map(|a| serial_name(&a.action))
            .collect(),
        ", ",
    );
    let labels = or_none(labels_set(verdict).map(str::to_string).collect(), ", ");
    format!(
        "{} (score {:?}; reasons: {reasons}; actions: {actions}; labels set: {labels})",
        serial_name(&verdict.severity),
        verdict.score
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::examples::{EXAMPLE_RULES, PLUGIN_DIR, example_fixtures};
    use crate::runtime::{LoadedRule, Runtime};

    /// One runtime for the module's tests: loading compiles, and a runtime
    /// per test would compile the same rules again.
    fn runtime() -> &'static Runtime {
        static RUNTIME: std::sync::OnceLock<Runtime> = std::sync::OnceLock::new();
        RUNTIME.get_or_init(|| Runtime::new().expect("runtime"))
    }

    fn example(name: &str) -> LoadedRule {
        let (_, wasm) = EXAMPLE_RULES
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no example rule {name}"));
        runtime()
            .load(wasm)
            .unwrap_or_else(|e| panic!("load {name}: {e}"))
    }

    /// One case for `mass-forwarding`, with `expect` and extra event
    /// fields spliced in.
    fn forwarding_case(event_extra: &str, state: &str, expect: &str) -> String {
        format!(
            r#"{{"cases": [
                {{"name": "a quiet forward", "event": {{"kind": "message.forwarded",
                  "actor": "account:a1", "attributes": {{"chat_count": 2}}{event_extra}}},
                  "state": {state},
                  "expect": {expect}}}
            ]}}"#
        )
    }

    fn parse_error(json: &str) -> (usize, usize, String) {
        match Fixtures::parse(json.as_bytes()) {
            Err(FixtureError::Parse {
                line,
                column,
                message,
            }) => (line, column, message),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn every_example_rule_passes_its_own_fixtures() {
        assert_eq!(EXAMPLE_RULES.len(), 8);
        for (name, _) in EXAMPLE_RULES {
            let json = example_fixtures(name).unwrap_or_else(|| panic!("{name} has no fixtures"));
            let fixtures = Fixtures::parse(json.as_bytes())
                .unwrap_or_else(|e| panic!("{name}'s fixtures do not parse: {e}"));
            assert!(
                (3..=6).contains(&fixtures.len()),
                "{name} has {} cases",
                fixtures.len()
            );
            let report = fixtures
                .run(&example(name))
                .unwrap_or_else(|e| panic!("{name} fails its fixtures: {e}"));
            assert_eq!(report.passed, fixtures.len());
            assert_eq!(report.rule, *name);
        }
    }

    /// Each example's fixtures show the rule both letting an event through
    /// and acting on one, so they test a threshold, not a constant.
    #[test]
    fn every_example_rules_fixtures_allow_one_event_and_act_on_another() {
        for (name, _) in EXAMPLE_RULES {
            let fixtures = Fixtures::parse(example_fixtures(name).unwrap().as_bytes()).unwrap();
            let severities: Vec<Severity> = fixtures
                .cases
                .iter()
                .filter_map(|c| match &c.expect {
                    Expect::Verdict(v) => Some(v.severity),
                    Expect::Error => None,
                })
                .collect();
            assert!(severities.contains(&Severity::Allow), "{name}");
            assert!(
                severities.iter().any(|s| *s > Severity::Allow),
                "{name}: {severities:?}"
            );
        }
    }

    /// The module documentation's example parses and passes, so it cannot
    /// drift from the format.
    #[test]
    fn the_documented_example_passes() {
        let source = include_str!("fixtures.rs");
        let start = source.find("//! ```json\n").unwrap() + "//! ```json\n".len();
        let end = start + source[start..].find("//! ```\n").unwrap();
        let json: String = source[start..end]
            .lines()
            .map(|line| line.trim_start_matches("//!"))
            .collect::<Vec<_>>()
            .join("\n");
        let fixtures = Fixtures::parse(json.as_bytes()).unwrap();
        assert_eq!(fixtures.len(), 2);
        let report = fixtures.run(&example("mass-forwarding")).unwrap();
        assert_eq!(report.to_string(), "mass-forwarding: all 2 fixtures passed");
    }

    #[test]
    fn the_event_is_built_as_written_with_defaults() {
        let json = r#"{"cases": [{"name": "n", "event": {"kind": "media.group_icon",
            "actor": {"type": "account", "id": "a1"}, "target": "group:g1",
            "attributes": {"n": 3, "big": -9007199254740993, "f": 0.5, "whole": {"float": 2},
              "b": true, "t": "hi", "h": {"bytes_hex": "00ff"},
              "l": {"text_list": ["x", "y"]}, "hl": {"bytes_hex_list": ["01"]}}},
            "state": {"counters": [{"entity": "target", "name": "c", "value": 4}],
              "labels": [{"entity": "actor", "label": "x"}],
              "bank_entries": [{"bank": "b", "entry_id": "e",
                "hash": "0000000000000000000000000000000000000000000000000000000000000000"}]},
            "expect": {"severity": "allow"}}]}"#;
        let fixtures = Fixtures::parse(json.as_bytes()).unwrap();
        let case = &fixtures.cases[0];
        let expected = Event::new(
            "fixture-1",
            "media.group_icon",
            DEFAULT_OCCURRED_AT_MS,
            Entity::account("a1"),
        )
        .with_target(Entity::group("g1"))
        .with("n", Value::Int(3))
        .with("big", Value::Int(-9_007_199_254_740_993))
        .with("f", Value::Float(0.5))
        .with("whole", Value::Float(2.0))
        .with("b", Value::Bool(true))
        .with("t", Value::Text("hi".into()))
        .with("h", Value::Bytes(vec![0, 255]))
        .with("l", Value::TextList(vec!["x".into(), "y".into()]))
        .with("hl", Value::BytesList(vec![vec![1]]));
        assert_eq!(*case.event, expected);
        assert_eq!(case.counters, ["c"]);
        let at = DEFAULT_OCCURRED_AT_MS;
        assert_eq!(case.state.counter(&Entity::group("g1"), "c", 60, at), Ok(4));
        assert_eq!(
            case.state.counter(&Entity::account("a1"), "c", 60, at),
            Ok(0)
        );
        assert_eq!(
            case.state.labels(&Entity::account("a1"), at).unwrap(),
            ["x"]
        );
        assert_eq!(
            case.state
                .match_hash("b", &[0; 32], 0)
                .unwrap()
                .matches
                .len(),
            1
        );
    }

    #[test]
    fn a_wrong_severity_names_the_case_and_both_severities() {
        let json = example_fixtures("mass-forwarding")
            .unwrap()
            // The first case the rule limits is now expected to block.
            .replacen(r#""severity": "limit""#, r#""severity": "block""#, 1);
        let fixtures = Fixtures::parse(json.as_bytes()).unwrap();
        let error = fixtures.run(&example("mass-forwarding")).unwrap_err();
        let FixtureError::Mismatch {
            case,
            expected,
            got,
        } = &error
        else {
            panic!("expected a mismatch, got {error:?}");
        };
        assert_eq!(case.of, fixtures.len());
        assert_eq!(expected, "severity block");
        assert!(got.starts_with("limit (score "), "{got}");
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("fixture {} of {} (\"", case.number, case.of)),
            "{message}"
        );
        assert!(message.contains(&case.name), "{message}");
        assert!(
            message.contains("expected severity block, got limit"),
            "{message}"
        );
        assert!(message.contains("mass-forward"), "{message}");
        assert!(message.contains("limit_forwarding"), "{message}");
    }

    #[test]
    fn each_expectation_is_checked() {
        let rule = example("mass-forwarding");
        let state = r#"{"counters": [{"entity": "actor", "name": "forwards", "value": 150}]}"#;
        // 150 forwards in the hour: review, score 0.5, a velocity reason,
        // no action and no label.
        let passes = r#"{"severity": "review", "min_score": 0.5, "max_score": 0.5,
                         "reasons_include": ["forward-velocity", "150 forwards"]}"#;
        let run = |expect: &str| {
            Fixtures::parse(forwarding_case("", state, expect).as_bytes())
                .unwrap()
                .run(&rule)
        };
        assert_eq!(run(passes).unwrap().passed, 1);
        for (expect, wanted) in [
            (
                r#"{"severity": "review", "min_score": 0.6}"#,
                "a score of at least 0.6",
            ),
            (
                r#"{"severity": "review", "max_score": 0.4}"#,
                "a score of at most 0.4",
            ),
            (
                r#"{"severity": "review", "reasons_include": ["mass-forward"]}"#,
                "a reason containing \"mass-forward\"",
            ),
            (
                r#"{"severity": "review", "actions_include": ["limit_forwarding"]}"#,
                "action limit_forwarding",
            ),
            (
                r#"{"severity": "review", "labels_set": ["mass-forwarder"]}"#,
                "label \"mass-forwarder\" set",
            ),
            (r#"{"error": true}"#, "the rule to fail"),
        ] {
            match run(expect) {
                Err(FixtureError::Mismatch { expected, got, .. }) => {
                    assert_eq!(expected, wanted);
                    assert!(
                        got.starts_with("review (score 0.5; reasons: forward-velocity: \"150"),
                        "{got}"
                    );
                }
                other => panic!("{expect}: expected a mismatch, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_rule_that_fails_is_reported_with_its_error_unless_expected() {
        let wasm = std::fs::read(Path::new(PLUGIN_DIR).join("hostile_panics.wasm")).unwrap();
        let rule = runtime().load(&wasm).unwrap();
        let case = |expect: &str| {
            format!(
                r#"{{"cases": [{{"name": "any message", "event": {{"kind": "message.sent",
                    "actor": "account:a1"}}, "expect": {expect}}}]}}"#
            )
        };
        let expected_failure = Fixtures::parse(case(r#"{"error": true}"#).as_bytes()).unwrap();
        assert_eq!(expected_failure.run(&rule).unwrap().passed, 1);

        let error = Fixtures::parse(case(r#"{"severity": "allow"}"#).as_bytes())
            .unwrap()
            .run(&rule)
            .unwrap_err();
        assert!(
            matches!(
                &error,
                FixtureError::RuleFailed {
                    error: RuleError::Panic { .. },
                    ..
                }
            ),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.starts_with("fixture 1 of 1 (\"any message\"): the rule failed: panicked"),
            "{message}"
        );
    }

    #[test]
    fn bad_json_is_refused_naming_where() {
        // A wrong type: the count is a string of digits.
        let json = "{\"cases\": [{\"name\": \"n\",\n \"event\": {\"kind\": \"message.forwarded\", \"actor\": \"account:a1\"},\n \"state\": {\"counters\": [{\"entity\": \"actor\", \"name\": \"forwards\", \"value\": \"12\"}]},\n \"expect\": {\"severity\": \"allow\"}}]}";
        let (line, _, message) = parse_error(json);
        assert_eq!(line, 3);
        assert!(message.contains("invalid type: string \"12\""), "{message}");

        // An unknown field, with the fields that are known.
        let json = "{\"cases\": [{\"name\": \"n\",\n \"event\": {\"kind\": \"message.forwarded\", \"actor\": \"account:a1\"},\n \"expect\": {\"severity\": \"allow\",\n \"reason_include\": [\"x\"]}}]}";
        let (line, _, message) = parse_error(json);
        assert_eq!(line, 4);
        assert!(
            message.contains("unknown field `reason_include`"),
            "{message}"
        );
        assert!(message.contains("reasons_include"), "{message}");

        // A missing severity.
        let json = "{\"cases\": [{\"name\": \"n\",\n \"event\": {\"kind\": \"message.forwarded\", \"actor\": \"account:a1\"},\n \"expect\": {\"min_score\": 0.5}\n}]}";
        let (line, _, message) = parse_error(json);
        assert_eq!(line, 3);
        assert!(message.contains("missing field `severity`"), "{message}");

        // The message carries no second copy of the position.
        let error = Fixtures::parse(json.as_bytes()).unwrap_err().to_string();
        assert!(error.starts_with("fixtures, line 3 column "), "{error}");
        assert_eq!(error.matches("line").count(), 1, "{error}");
    }

    #[test]
    fn values_the_format_cannot_take_are_refused() {
        for (attribute, wanted) in [
            ("null", "leave the attribute out"),
            ("[1, 2]", "{\"int_list\": [1, 2]}"),
            ("{\"bytes_hex\": \"0g\"}", "not hex bytes"),
            ("{\"byte_hex\": \"00\"}", "unknown variant `byte_hex`"),
            ("{\"int\": 1, \"float\": 2}", "exactly one key"),
            ("18446744073709551615", "the largest integer attribute"),
        ] {
            let json = forwarding_case(
                &format!(", \"attributes\": {{\"x\": {attribute}}}"),
                "{}",
                r#"{"severity": "allow"}"#,
            )
            // The helper already wrote attributes; this case replaces them.
            .replacen(", \"attributes\": {\"chat_count\": 2}", "", 1);
            let (_, _, message) = parse_error(&json);
            assert!(message.contains(wanted), "{attribute}: {message}");
        }

        let twice = forwarding_case("", "{}", r#"{"severity": "allow"}"#).replacen(
            "{\"chat_count\": 2}",
            "{\"chat_count\": 2, \"chat_count\": 3}",
            1,
        );
        assert!(
            parse_error(&twice)
                .2
                .contains("attribute `chat_count` appears twice")
        );

        for (entity, wanted) in [
            ("\"actor\"", "an entity"),
            ("\"user:a1\"", "an entity"),
            ("\"account:\"", "empty id"),
            (
                "{\"kind\": \"account\", \"id\": \"a1\"}",
                "unknown field `kind`",
            ),
        ] {
            let json = forwarding_case("", "{}", r#"{"severity": "allow"}"#).replacen(
                "\"account:a1\"",
                entity,
                1,
            );
            let (_, _, message) = parse_error(&json);
            assert!(message.contains(wanted), "{entity}: {message}");
        }

        let hash = r#"{"bank_entries": [{"bank": "b", "entry_id": "e", "hash": "00ff"}]}"#;
        let json = forwarding_case("", hash, r#"{"severity": "allow"}"#);
        assert!(parse_error(&json).2.contains("not 2 bytes"));

        for (expect, wanted) in [
            (
                r#"{"error": true, "severity": "allow"}"#,
                "both `error: true` and `severity`",
            ),
            (
                r#"{"severity": "allow", "min_score": 1.5}"#,
                "between 0 and 1",
            ),
            (
                r#"{"severity": "allow", "min_score": 0.6, "max_score": 0.4}"#,
                "no score is both",
            ),
            (r#"{"severity": "ban"}"#, "unknown variant `ban`"),
            (
                r#"{"severity": "block", "actions_include": ["ban_account"]}"#,
                "unknown variant `ban_account`",
            ),
        ] {
            let json = forwarding_case("", "{}", expect);
            let (_, _, message) = parse_error(&json);
            assert!(message.contains(wanted), "{expect}: {message}");
        }
    }

    #[test]
    fn an_empty_case_list_is_refused() {
        let error = Fixtures::parse(br#"{"cases": []}"#).unwrap_err();
        assert_eq!(error, FixtureError::NoCases);
        assert!(error.to_string().contains("declare no cases"));
        assert!(matches!(
            Fixtures::parse(b"{}").unwrap_err(),
            FixtureError::Parse { message, .. } if message.contains("missing field `cases`")
        ));
    }

    #[test]
    fn an_event_the_rule_is_never_sent_is_refused() {
        let json = forwarding_case("", "{}", r#"{"severity": "allow"}"#).replacen(
            "message.forwarded",
            "message.sent",
            1,
        );
        let error = Fixtures::parse(json.as_bytes())
            .unwrap()
            .run(&example("mass-forwarding"))
            .unwrap_err();
        assert!(
            matches!(&error, FixtureError::Unsubscribed { kind, .. } if kind == "message.sent"),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.starts_with("fixture 1 of 1 (\"a quiet forward\")"),
            "{message}"
        );
        assert!(message.contains("`message.forwarded`"), "{message}");
    }

    #[test]
    fn a_counter_the_rule_does_not_declare_is_refused() {
        let state = r#"{"counters": [{"entity": "actor", "name": "forward", "value": 500}]}"#;
        let json = forwarding_case("", state, r#"{"severity": "limit"}"#);
        let error = Fixtures::parse(json.as_bytes())
            .unwrap()
            .run(&example("mass-forwarding"))
            .unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(&error, FixtureError::UndeclaredCounter { counter, .. } if counter == "forward"),
            "{message}"
        );
        assert!(message.contains("it declares `forwards`"), "{message}");
    }

    #[test]
    fn a_case_that_cannot_run_as_written_is_refused_at_parse() {
        let state = r#"{"labels": [{"entity": "target", "label": "x"}]}"#;
        let json = forwarding_case("", state, r#"{"severity": "allow"}"#);
        let error = Fixtures::parse(json.as_bytes()).unwrap_err();
        assert!(matches!(error, FixtureError::Invalid { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .contains("label `x` on the event's target, but the event has none"),
            "{error}"
        );

        let json = forwarding_case(", \"occurred_at_ms\": -1", "{}", r#"{"severity": "allow"}"#);
        let error = Fixtures::parse(json.as_bytes()).unwrap_err().to_string();
        assert!(
            error.starts_with(
                "fixture 1 of 1 (\"a quiet forward\"): the event is invalid: occurred_at"
            ),
            "{error}"
        );
    }

    #[test]
    fn fixtures_sit_beside_the_build() {
        assert_eq!(
            fixtures_path(Path::new("/rules/mass_forwarding.wasm")),
            Path::new("/rules/mass_forwarding.fixtures.json")
        );
    }
}
