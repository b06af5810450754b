//! Events as the engine receives them: who did what to whom, when, with
//! typed attributes. This is the engine's own type; rules read it through
//! the contract's `event` interface, one attribute at a time.

use serde::{Deserialize, Serialize};

/// What kind of thing an entity is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// A user account.
    Account,
    /// A group chat.
    Group,
}

/// An account or a group.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entity {
    /// Account or group.
    pub kind: EntityKind,
    /// The platform's id for it.
    pub id: String,
}

impl Entity {
    /// An account with this id.
    pub fn account(id: impl Into<String>) -> Self {
        Entity {
            kind: EntityKind::Account,
            id: id.into(),
        }
    }

    /// A group with this id.
    pub fn group(id: impl Into<String>) -> Self {
        Entity {
            kind: EntityKind::Group,
            id: id.into(),
        }
    }
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            EntityKind::Account => "account",
            EntityKind::Group => "group",
        };
        write!(f, "{kind}:{}", self.id)
    }
}

/// A typed attribute value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// A signed integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// UTF-8 text.
    Text(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A list of integers.
    IntList(Vec<i64>),
    /// A list of floats.
    FloatList(Vec<f64>),
    /// A list of booleans.
    BoolList(Vec<bool>),
    /// A list of texts.
    TextList(Vec<String>),
    /// A list of byte strings.
    BytesList(Vec<Vec<u8>>),
}

/// One event: an action an actor took, possibly aimed at a target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique per event, chosen by the client; repeats are the same event.
    pub id: String,
    /// A dotted kind such as `message.forwarded`.
    pub kind: String,
    /// When it happened, in milliseconds since the Unix epoch. Rules see
    /// this as "now"; the engine's wall clock never reaches them.
    pub occurred_at_ms: i64,
    /// Who acted.
    pub actor: Entity,
    /// Whom or what the action was aimed at.
    #[serde(default)]
    pub target: Option<Entity>,
    /// Typed attributes, in the order the client sent them.
    #[serde(default)]
    pub attributes: Vec<(String, Value)>,
}

impl Event {
    /// An event with no target and no attributes.
    pub fn new(
        id: impl Into<String>,
        kind: impl Into<String>,
        occurred_at_ms: i64,
        actor: Entity,
    ) -> Self {
        Event {
            id: id.into(),
            kind: kind.into(),
            occurred_at_ms,
            actor,
            target: None,
            attributes: Vec::new(),
        }
    }

    /// Set the target.
    pub fn with_target(mut self, target: Entity) -> Self {
        self.target = Some(target);
        self
    }

    /// Add an attribute.
    pub fn with(mut self, name: impl Into<String>, value: Value) -> Self {
        self.attributes.push((name.into(), value));
        self
    }

    /// The first attribute with this name.
    pub fn attribute(&self, name: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

/// Why an event cannot be evaluated: the field and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidEvent {
    /// The offending field, such as `actor.id` or
    /// `attributes["chat_count"]`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Longest accepted event id or entity id, in bytes.
pub const MAX_ID_BYTES: usize = 256;

/// Most attributes an event may carry.
pub const MAX_ATTRIBUTES: usize = 256;

impl Event {
    /// Check what the engine relies on: an id, a usable kind, entities with
    /// ids, attribute names that are unique and usable.
    pub fn validate(&self) -> Result<(), InvalidEvent> {
        let invalid = |field: &str, message: String| InvalidEvent {
            field: field.to_string(),
            message,
        };
        check_id(&self.id).map_err(|m| invalid("id", m))?;
        if self.occurred_at_ms < 0 {
            return Err(invalid(
                "occurred_at",
                format!("{} ms is before the Unix epoch", self.occurred_at_ms),
            ));
        }
        check_name("event kind", &self.kind).map_err(|m| invalid("kind", m))?;
        check_id(&self.actor.id).map_err(|m| invalid("actor.id", m))?;
        if let Some(target) = &self.target {
            check_id(&target.id).map_err(|m| invalid("target.id", m))?;
        }
        if self.attributes.len() > MAX_ATTRIBUTES {
            return Err(invalid(
                "attributes",
                format!(
                    "{} attributes, over the limit of {MAX_ATTRIBUTES}",
                    self.attributes.len()
                ),
            ));
        }
        for (index, (name, value)) in self.attributes.iter().enumerate() {
            let field = || attribute_path(name);
            check_name("attribute name", name).map_err(|m| invalid(&field(), m))?;
            if self.attributes[..index].iter().any(|(n, _)| n == name) {
                return Err(invalid(
                    &field(),
                    format!("attribute `{name}` appears twice"),
                ));
            }
            check_finite(value).map_err(|m| invalid(&field(), m))?;
        }
        Ok(())
    }
}

/// The path of attribute `name` in an event, as errors name it:
/// `attributes["chat_count"]`. A name longer than any usable one is quoted
/// by its start, as `check_name` quotes it: the path goes into the error a
/// client gets, which must not carry back a megabyte of hostile name.
pub fn attribute_path(name: &str) -> String {
    if name.len() <= crate::manifest::MAX_NAME_BYTES {
        return format!("attributes[{name:?}]");
    }
    let cut = name.char_indices().nth(32).map_or(name.len(), |(i, _)| i);
    format!("attributes[\"{}…\"]", name[..cut].escape_debug())
}

/// Refuse NaN and infinite floats. No rule can compare them meaningfully,
/// and a decision holds its event: the decision store writes it as JSON,
/// where a non-finite float becomes `null` and the decision could no
/// longer be read back.
fn check_finite(value: &Value) -> Result<(), String> {
    let must = "a float attribute must be finite";
    match value {
        Value::Float(v) if !v.is_finite() => Err(format!("is {v}; {must}")),
        Value::FloatList(values) => match values.iter().position(|v| !v.is_finite()) {
            Some(index) => Err(format!("element {index} is {}; {must}", values[index])),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// A kind or attribute name: an empty one is simply missing.
fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    crate::manifest::check_name(what, name)
}

/// An event or entity id: present, and at most [`MAX_ID_BYTES`] long.
pub(crate) fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("is empty".into());
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!(
            "is {} bytes, over the {MAX_ID_BYTES}-byte limit",
            id.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: Value) -> Event {
        Event::new("e1", "message.sent", 1_000, Entity::account("a")).with("x", value)
    }

    #[test]
    fn non_finite_floats_are_refused_naming_the_attribute() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let error = with(Value::Float(bad)).validate().unwrap_err();
            assert_eq!(error.field, "attributes[\"x\"]");
            assert!(error.message.contains("must be finite"), "{error}");
            let error = with(Value::FloatList(vec![0.5, bad]))
                .validate()
                .unwrap_err();
            assert_eq!(error.field, "attributes[\"x\"]");
            assert!(error.message.starts_with("element 1 is "), "{error}");
        }
        assert!(with(Value::Float(-0.0)).validate().is_ok());
        assert!(
            with(Value::FloatList(vec![f64::MAX, f64::MIN]))
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn a_long_attribute_name_is_quoted_by_its_start() {
        let name = "n".repeat(100_000);
        let error = Event::new("e1", "message.sent", 1_000, Entity::account("a"))
            .with(name.as_str(), Value::Int(1))
            .validate()
            .unwrap_err();
        assert_eq!(error.field, format!("attributes[\"{}…\"]", "n".repeat(32)));
        assert!(error.to_string().len() < 200, "{error}");
        assert_eq!(attribute_path("chat\"id"), "attributes[\"chat\\\"id\"]");
        assert_eq!(
            attribute_path(&"é".repeat(65)),
            format!("attributes[\"{}…\"]", "é".repeat(32))
        );
    }

    #[test]
    fn a_valid_event_survives_the_json_a_decision_is_stored_as() {
        // The last parses an ulp off without exact float parsing.
        let event = with(Value::FloatList(vec![
            0.1,
            f64::MAX,
            1e-300,
            8.325767801271458e299,
        ]));
        event.validate().unwrap();
        let text = serde_json::to_string(&event).unwrap();
        assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), event);
    }
}
