//! Wire messages into engine types, refusing what the engine cannot use
//! with the path of the offending field (`event.actor.id: is empty`).

use super::v1;
use crate::event::{Entity, EntityKind, Event, InvalidEvent, Value, attribute_path, check_id};
use crate::ground_truth::{GroundTruth, LabelSource, LabelSubject, Truth};
use crate::verdict::{Action, Severity};

/// Most labels one `SubmitLabels` request may carry.
pub const MAX_LABELS_PER_REQUEST: usize = 1000;

/// Longest accepted label reference, in bytes.
pub const MAX_REFERENCE_BYTES: usize = 256;

/// How far ahead of the engine's clock a label may be dated: a label dated
/// far ahead would outrank every truth learned until then.
const MAX_LABEL_SKEW_MS: i64 = 5 * 60 * 1000;

/// A request field the engine cannot use, and why.
pub type FieldError = InvalidEvent;

fn field_error(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    InvalidEvent {
        field: field.into(),
        message: message.into(),
    }
}

/// The engine's event for a wire event found at `field` (`event` in a
/// request). Checks what the wire format leaves open; the pipeline's own
/// validation (ids, names, counts, clock skew) runs after, and its errors
/// are prefixed with `field` by [`prefix_field`].
pub fn event_from_proto(event: v1::Event, field: &str) -> Result<Event, FieldError> {
    let occurred_at = event
        .occurred_at
        .ok_or_else(|| field_error(format!("{field}.occurred_at"), "is missing"))?;
    let occurred_at_ms =
        timestamp_ms(&occurred_at).map_err(|m| field_error(format!("{field}.occurred_at"), m))?;
    let actor = event
        .actor
        .ok_or_else(|| field_error(format!("{field}.actor"), "is missing"))
        .and_then(|actor| entity_from_proto(actor, &format!("{field}.actor")))?;
    let target = event
        .target
        .map(|target| entity_from_proto(target, &format!("{field}.target")))
        .transpose()?;
    let attributes = event
        .attributes
        .into_iter()
        .map(|(name, value)| {
            let value = value_from_proto(value)
                .map_err(|m| field_error(format!("{field}.{}", attribute_path(&name)), m))?;
            Ok((name, value))
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    Ok(Event {
        id: event.id,
        kind: event.kind,
        occurred_at_ms,
        actor,
        target,
        attributes,
    })
}

/// Put `field` (the event's path in the request) in front of a pipeline
/// validation error.
pub fn prefix_field(error: InvalidEvent, field: &str) -> FieldError {
    field_error(format!("{field}.{}", error.field), error.message)
}

/// The engine's entity for a wire entity found at `field`.
pub fn entity_from_proto(entity: v1::Entity, field: &str) -> Result<Entity, FieldError> {
    let kind = match v1::EntityType::try_from(entity.r#type) {
        Ok(v1::EntityType::Account) => EntityKind::Account,
        Ok(v1::EntityType::Group) => EntityKind::Group,
        Ok(v1::EntityType::Unspecified) => {
            return Err(field_error(
                format!("{field}.type"),
                "is unspecified: use ENTITY_TYPE_ACCOUNT or ENTITY_TYPE_GROUP",
            ));
        }
        Err(_) => {
            return Err(field_error(
                format!("{field}.type"),
                format!("{} is not an entity type", entity.r#type),
            ));
        }
    };
    Ok(Entity {
        kind,
        id: entity.id,
    })
}

/// Milliseconds since the epoch, refusing what a protobuf `Timestamp` does
/// not allow. Precision below a millisecond is dropped: rules see
/// milliseconds.
pub fn timestamp_ms(timestamp: &prost_types::Timestamp) -> Result<i64, String> {
    if !(0..1_000_000_000).contains(&timestamp.nanos) {
        return Err(format!(
            "nanos {} is outside 0..=999999999",
            timestamp.nanos
        ));
    }
    timestamp
        .seconds
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(i64::from(timestamp.nanos / 1_000_000)))
        .ok_or_else(|| format!("seconds {} is out of range", timestamp.seconds))
}

fn value_from_proto(value: v1::Value) -> Result<Value, String> {
    use v1::value::Kind;
    Ok(match value.kind.ok_or("has no value set")? {
        Kind::Int(v) => Value::Int(v),
        Kind::Float(v) => Value::Float(v),
        Kind::Boolean(v) => Value::Bool(v),
        Kind::Text(v) => Value::Text(v),
        Kind::Bytes(v) => Value::Bytes(v),
        Kind::IntList(v) => Value::IntList(v.values),
        Kind::FloatList(v) => Value::FloatList(v.values),
        Kind::BoolList(v) => Value::BoolList(v.values),
        Kind::TextList(v) => Value::TextList(v.values),
        Kind::BytesList(v) => Value::BytesList(v.values),
    })
}

/// The engine's action for a wire action type; `None` for unspecified or
/// unknown values.
pub fn action_from_proto(value: i32) -> Option<Action> {
    Some(match v1::ActionType::try_from(value).ok()? {
        v1::ActionType::Unspecified => return None,
        v1::ActionType::BlockAccount => Action::BlockAccount,
        v1::ActionType::BanGroup => Action::BanGroup,
        v1::ActionType::LimitForwarding => Action::LimitForwarding,
        v1::ActionType::RemoveMedia => Action::RemoveMedia,
        v1::ActionType::ReportToClearinghouse => Action::ReportToClearinghouse,
    })
}

/// The engine's severity for a wire severity, unspecified meaning allow
/// (no minimum); `None` for unknown values.
pub fn severity_from_proto(value: i32) -> Option<Severity> {
    Some(match v1::Severity::try_from(value).ok()? {
        v1::Severity::Unspecified | v1::Severity::Allow => Severity::Allow,
        v1::Severity::Review => Severity::Review,
        v1::Severity::Limit => Severity::Limit,
        v1::Severity::Block => Severity::Block,
    })
}

/// The engine's ground truth for the labels of a `SubmitLabels` request,
/// each checked whole (subject, truth, source, time, reference), the first
/// mistake named by its path (`labels[2].truth`). `now_ms` is the engine's
/// clock: the time of a label sent without one.
pub fn labels_from_proto(
    labels: Vec<v1::GroundTruthLabel>,
    now_ms: i64,
) -> Result<Vec<GroundTruth>, FieldError> {
    if labels.is_empty() {
        return Err(field_error("labels", "is empty: send at least one label"));
    }
    if labels.len() > MAX_LABELS_PER_REQUEST {
        return Err(field_error(
            "labels",
            format!(
                "{} labels, over the limit of {MAX_LABELS_PER_REQUEST} per request: send them \
                 in several requests",
                labels.len()
            ),
        ));
    }
    labels
        .into_iter()
        .enumerate()
        .map(|(index, label)| label_from_proto(label, &format!("labels[{index}]"), now_ms))
        .collect()
}

fn label_from_proto(
    label: v1::GroundTruthLabel,
    field: &str,
    now_ms: i64,
) -> Result<GroundTruth, FieldError> {
    use v1::ground_truth_label::Subject;
    let subject = match label.subject {
        None => {
            return Err(field_error(
                format!("{field}.subject"),
                "is missing: set entity or event_id",
            ));
        }
        Some(Subject::Entity(entity)) => {
            let path = format!("{field}.entity");
            let entity = entity_from_proto(entity, &path)?;
            check_id(&entity.id).map_err(|m| field_error(format!("{path}.id"), m))?;
            LabelSubject::Entity(entity)
        }
        Some(Subject::EventId(id)) => {
            check_id(&id).map_err(|m| field_error(format!("{field}.event_id"), m))?;
            LabelSubject::Event(id)
        }
    };
    let truth = match v1::Truth::try_from(label.truth) {
        Ok(v1::Truth::Abusive) => Truth::Abusive,
        Ok(v1::Truth::Benign) => Truth::Benign,
        Ok(v1::Truth::Unspecified) => {
            return Err(field_error(
                format!("{field}.truth"),
                "is unspecified: use TRUTH_ABUSIVE or TRUTH_BENIGN",
            ));
        }
        Err(_) => {
            return Err(field_error(
                format!("{field}.truth"),
                format!("{} is not a truth", label.truth),
            ));
        }
    };
    let source = match v1::LabelSource::try_from(label.source) {
        Ok(v1::LabelSource::Review) => LabelSource::Review,
        Ok(v1::LabelSource::Appeal) => LabelSource::Appeal,
        Ok(v1::LabelSource::Other) => LabelSource::Other,
        Ok(v1::LabelSource::Unspecified) => {
            return Err(field_error(
                format!("{field}.source"),
                "is unspecified: use LABEL_SOURCE_REVIEW, LABEL_SOURCE_APPEAL or \
                 LABEL_SOURCE_OTHER",
            ));
        }
        Err(_) => {
            return Err(field_error(
                format!("{field}.source"),
                format!("{} is not a label source", label.source),
            ));
        }
    };
    let labelled_at_ms = match &label.labelled_at {
        None => now_ms,
        Some(at) => {
            let path = || format!("{field}.labelled_at");
            let ms = timestamp_ms(at).map_err(|m| field_error(path(), m))?;
            if ms > now_ms.saturating_add(MAX_LABEL_SKEW_MS) {
                return Err(field_error(
                    path(),
                    format!(
                        "is {} s ahead of the engine's clock; at most {} s is accepted",
                        (ms - now_ms) / 1000,
                        MAX_LABEL_SKEW_MS / 1000
                    ),
                ));
            }
            ms
        }
    };
    if label.reference.len() > MAX_REFERENCE_BYTES {
        return Err(field_error(
            format!("{field}.reference"),
            format!(
                "is {} bytes, over the {MAX_REFERENCE_BYTES}-byte limit",
                label.reference.len()
            ),
        ));
    }
    Ok(GroundTruth {
        subject,
        truth,
        source,
        labelled_at_ms,
        reference: label.reference,
    })
}
