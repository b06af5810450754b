//! Target (a): the wire bytes of an `EvaluateRequest`, decoded with prost,
//! converted by `event_from_proto` and checked by `Event::validate` (and an
//! attached image hashed, as the server does), against an independent
//! account of which field, if any, must be refused and why.

use std::collections::BTreeMap;

use enforcer::api::{event_from_proto, v1};
use enforcer::event::{EntityKind, Event, Value, attribute_path};
use enforcer::media::{ImageLimits, hash_attached_image};
use proptest::prelude::*;
use prost::Message as _;

use crate::budget::fuzz;
use crate::mutate::mutated;

/// 2025-11-24, a plausible event time.
const T0: i64 = 1_764_000_000;

fn value(kind: v1::value::Kind) -> v1::Value {
    v1::Value { kind: Some(kind) }
}

fn entity(kind: v1::EntityType, id: &str) -> Option<v1::Entity> {
    Some(v1::Entity {
        r#type: kind as i32,
        id: id.into(),
    })
}

/// Valid requests touching every part of an event: every value kind, both
/// entity kinds, ids at the limit, an image.
fn seeds() -> Vec<v1::EvaluateRequest> {
    use v1::value::Kind;
    let minimal = v1::Event {
        id: "e1".into(),
        kind: "message.sent".into(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: T0,
            nanos: 0,
        }),
        actor: entity(v1::EntityType::Account, "sender"),
        ..Default::default()
    };
    let mut full = minimal.clone();
    full.id = "x".repeat(256);
    full.kind = "group.member_added:v2".into();
    full.occurred_at = Some(prost_types::Timestamp {
        seconds: T0,
        nanos: 999_999_999,
    });
    full.target = entity(v1::EntityType::Group, &"g".repeat(256));
    full.attributes = BTreeMap::from([
        ("int".into(), value(Kind::Int(-7))),
        ("float".into(), value(Kind::Float(0.25))),
        ("flag".into(), value(Kind::Boolean(true))),
        ("text".into(), value(Kind::Text("héllo".into()))),
        ("raw".into(), value(Kind::Bytes(vec![0, 1, 255]))),
        (
            "ints".into(),
            value(Kind::IntList(v1::IntList {
                values: vec![i64::MIN, 0, i64::MAX],
            })),
        ),
        (
            "floats".into(),
            value(Kind::FloatList(v1::FloatList {
                values: vec![-1.5, 1e300],
            })),
        ),
        (
            "flags".into(),
            value(Kind::BoolList(v1::BoolList {
                values: vec![true, false],
            })),
        ),
        (
            "texts".into(),
            value(Kind::TextList(v1::TextList {
                values: vec!["a".into(), String::new()],
            })),
        ),
        (
            "blobs".into(),
            value(Kind::BytesList(v1::BytesList {
                values: vec![vec![], vec![9; 9]],
            })),
        ),
    ]);
    let mut image = minimal.clone();
    image.kind = "group.icon_changed".into();
    image.target = entity(v1::EntityType::Group, "g1");
    image.attributes = BTreeMap::from([(
        "image".into(),
        value(Kind::Bytes(crate::images::tiny_png())),
    )]);
    [minimal, full, image]
        .into_iter()
        .map(|event| v1::EvaluateRequest {
            event: Some(event),
            view: 0,
        })
        .collect()
}

/// Strings that sit on either side of every check an id, kind or name has.
fn awkward_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z0-9._:-]{1,12}",
        ".{0,12}",
        (250usize..=260).prop_map(|n| "x".repeat(n)),
        (126usize..=130).prop_map(|n| "y".repeat(n)),
        // Two-byte characters across the byte limits.
        (62usize..=66).prop_map(|n| "é".repeat(n)),
        (126usize..=130).prop_map(|n| "é".repeat(n)),
        Just("has space".to_string()),
        Just("nul\0byte".to_string()),
    ]
}

fn timestamp() -> impl Strategy<Value = Option<prost_types::Timestamp>> {
    let seconds = prop_oneof![
        Just(T0),
        Just(0i64),
        Just(-1i64),
        Just(i64::MAX),
        Just(i64::MIN),
        Just(i64::MAX / 1000),
        Just(i64::MAX / 1000 + 1),
        Just(253_402_300_800i64), // year 10000
        any::<i64>(),
    ];
    let nanos = prop_oneof![
        Just(0i32),
        Just(999_999_999),
        Just(1_000_000_000),
        Just(-1),
        any::<i32>(),
    ];
    proptest::option::weighted(
        0.9,
        (seconds, nanos).prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos }),
    )
}

fn wire_entity() -> impl Strategy<Value = Option<v1::Entity>> {
    let kind = prop_oneof![
        Just(1i32),
        Just(2),
        Just(0),
        Just(3),
        Just(-1),
        any::<i32>()
    ];
    proptest::option::weighted(
        0.8,
        (kind, awkward_string()).prop_map(|(r#type, id)| v1::Entity { r#type, id }),
    )
}

fn wire_value() -> impl Strategy<Value = v1::Value> {
    use v1::value::Kind;
    let float = prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        any::<f64>(),
    ];
    let kind = prop_oneof![
        any::<i64>().prop_map(Kind::Int),
        float.clone().prop_map(Kind::Float),
        any::<bool>().prop_map(Kind::Boolean),
        ".{0,8}".prop_map(Kind::Text),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(Kind::Bytes),
        prop::collection::vec(any::<i64>(), 0..4)
            .prop_map(|values| Kind::IntList(v1::IntList { values })),
        prop::collection::vec(float, 0..4)
            .prop_map(|values| Kind::FloatList(v1::FloatList { values })),
        prop::collection::vec(any::<bool>(), 0..4)
            .prop_map(|values| Kind::BoolList(v1::BoolList { values })),
        prop::collection::vec(".{0,4}", 0..4)
            .prop_map(|values| Kind::TextList(v1::TextList { values })),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..4), 0..4)
            .prop_map(|values| Kind::BytesList(v1::BytesList { values })),
    ];
    proptest::option::weighted(0.95, kind).prop_map(|kind| v1::Value { kind })
}

fn attributes() -> impl Strategy<Value = BTreeMap<String, v1::Value>> {
    prop_oneof![
        4 => prop::collection::btree_map(awkward_string(), wire_value(), 0..6),
        // Around the attribute limit, with or without an image.
        1 => (250usize..=260, any::<bool>()).prop_map(|(n, image)| {
            let mut attributes: BTreeMap<String, v1::Value> = (0..n)
                .map(|i| (format!("a{i}"), value(v1::value::Kind::Int(i as i64))))
                .collect();
            if image {
                attributes.insert(
                    "image".into(),
                    value(v1::value::Kind::Bytes(crate::images::tiny_png())),
                );
            }
            attributes
        }),
    ]
}

fn wire_event() -> impl Strategy<Value = v1::Event> {
    (
        awkward_string(),
        awkward_string(),
        timestamp(),
        wire_entity(),
        wire_entity(),
        attributes(),
    )
        .prop_map(
            |(id, kind, occurred_at, actor, target, attributes)| v1::Event {
                id,
                kind,
                occurred_at,
                actor,
                target,
                attributes,
            },
        )
}

/// Request bytes: real requests mutated byte-wise, made-up events encoded,
/// and made-up events encoded and then mutated.
fn request_bytes() -> impl Strategy<Value = Vec<u8>> {
    let seeds: Vec<Vec<u8>> = seeds().iter().map(|r| r.encode_to_vec()).collect();
    let made_up = wire_event().prop_map(|event| {
        v1::EvaluateRequest {
            event: Some(event),
            view: 0,
        }
        .encode_to_vec()
    });
    let made_up_mutated =
        (wire_event(), prop::collection::vec(any::<u8>(), 1..4)).prop_map(|(event, noise)| {
            let mut bytes = v1::EvaluateRequest {
                event: Some(event),
                view: 0,
            }
            .encode_to_vec();
            let at = usize::from(noise[0]) % (bytes.len() + 1);
            bytes.splice(at..at, noise[1..].iter().copied());
            bytes
        });
    prop_oneof![
        2 => mutated(seeds, 6),
        2 => made_up,
        1 => made_up_mutated,
    ]
}

/// Where `event_from_proto` must refuse a wire event, in the order it
/// checks: `(field, a word its message must hold)`.
fn conversion_problem(event: &v1::Event) -> Option<(String, &'static str)> {
    let Some(at) = &event.occurred_at else {
        return Some(("event.occurred_at".into(), "is missing"));
    };
    if !(0..1_000_000_000).contains(&at.nanos) {
        return Some(("event.occurred_at".into(), "nanos"));
    }
    if at
        .seconds
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(i64::from(at.nanos / 1_000_000)))
        .is_none()
    {
        return Some(("event.occurred_at".into(), "out of range"));
    }
    let entity_problem = |entity: &v1::Entity, path: &str| match entity.r#type {
        1 | 2 => None,
        0 => Some((format!("{path}.type"), "is unspecified")),
        _ => Some((format!("{path}.type"), "is not an entity type")),
    };
    match &event.actor {
        None => return Some(("event.actor".into(), "is missing")),
        Some(actor) => {
            if let Some(problem) = entity_problem(actor, "event.actor") {
                return Some(problem);
            }
        }
    }
    if let Some(problem) = event
        .target
        .as_ref()
        .and_then(|t| entity_problem(t, "event.target"))
    {
        return Some(problem);
    }
    event
        .attributes
        .iter()
        .find(|(_, value)| value.kind.is_none())
        .map(|(name, _)| {
            (
                format!("event.{}", attribute_path(name)),
                "has no value set",
            )
        })
}

fn usable_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.len() > 128 {
        Some("over 128 bytes")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    {
        Some("contains")
    } else {
        None
    }
}

fn usable_id(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("is empty")
    } else if id.len() > 256 {
        Some("over the 256-byte limit")
    } else {
        None
    }
}

/// Where `Event::validate` must refuse an event, in the order it checks.
fn validation_problem(event: &Event) -> Option<(String, &'static str)> {
    if let Some(why) = usable_id(&event.id) {
        return Some(("id".into(), why));
    }
    if event.occurred_at_ms < 0 {
        return Some(("occurred_at".into(), "before the Unix epoch"));
    }
    if let Some(why) = usable_name(&event.kind) {
        return Some(("kind".into(), why));
    }
    if let Some(why) = usable_id(&event.actor.id) {
        return Some(("actor.id".into(), why));
    }
    if let Some(why) = event.target.as_ref().and_then(|t| usable_id(&t.id)) {
        return Some(("target.id".into(), why));
    }
    if event.attributes.len() > 256 {
        return Some(("attributes".into(), "over the limit of 256"));
    }
    for (index, (name, value)) in event.attributes.iter().enumerate() {
        let field = attribute_path(name);
        if let Some(why) = usable_name(name) {
            return Some((field, why));
        }
        if event.attributes[..index].iter().any(|(n, _)| n == name) {
            return Some((field, "appears twice"));
        }
        let finite = match value {
            Value::Float(v) => v.is_finite(),
            Value::FloatList(values) => values.iter().all(|v| v.is_finite()),
            _ => true,
        };
        if !finite {
            return Some((field, "must be finite"));
        }
    }
    None
}

/// Whether `value` is exactly what the wire carried (floats bit for bit).
fn same_value(wire: &v1::value::Kind, value: &Value) -> bool {
    use v1::value::Kind;
    let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    match (wire, value) {
        (Kind::Int(a), Value::Int(b)) => a == b,
        (Kind::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
        (Kind::Boolean(a), Value::Bool(b)) => a == b,
        (Kind::Text(a), Value::Text(b)) => a == b,
        (Kind::Bytes(a), Value::Bytes(b)) => a == b,
        (Kind::IntList(a), Value::IntList(b)) => &a.values == b,
        (Kind::FloatList(a), Value::FloatList(b)) => bits(&a.values) == bits(b),
        (Kind::BoolList(a), Value::BoolList(b)) => &a.values == b,
        (Kind::TextList(a), Value::TextList(b)) => &a.values == b,
        (Kind::BytesList(a), Value::BytesList(b)) => &a.values == b,
        _ => false,
    }
}

fn same_entity(wire: &v1::Entity, kind: EntityKind, id: &str) -> bool {
    let wire_kind = if wire.r#type == 1 {
        EntityKind::Account
    } else {
        EntityKind::Group
    };
    wire_kind == kind && wire.id == id
}

fn check_request(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    // Bytes prost refuses are refused before the engine sees them (the
    // gRPC test checks what the client is told).
    let Ok(request) = v1::EvaluateRequest::decode(bytes.as_slice()) else {
        return Ok(());
    };
    let Some(wire) = request.event else {
        return Ok(());
    };
    let expected = conversion_problem(&wire);
    let event = match event_from_proto(wire.clone(), "event") {
        Err(error) => {
            let (field, word) = expected
                .ok_or_else(|| TestCaseError::fail(format!("refused a usable event: {error}")))?;
            prop_assert_eq!(&error.field, &field, "{}", error);
            prop_assert!(error.message.contains(word), "{error} lacks {word:?}");
            return Ok(());
        }
        Ok(event) => event,
    };
    prop_assert_eq!(expected, None);
    // What was accepted is what was sent.
    let at = wire.occurred_at.as_ref().expect("checked");
    prop_assert_eq!(
        event.occurred_at_ms,
        at.seconds * 1000 + i64::from(at.nanos / 1_000_000)
    );
    prop_assert_eq!(&event.id, &wire.id);
    prop_assert_eq!(&event.kind, &wire.kind);
    prop_assert!(same_entity(
        wire.actor.as_ref().expect("checked"),
        event.actor.kind,
        &event.actor.id
    ));
    prop_assert_eq!(event.target.is_some(), wire.target.is_some());
    if let (Some(wire_target), Some(target)) = (&wire.target, &event.target) {
        prop_assert!(same_entity(wire_target, target.kind, &target.id));
    }
    prop_assert_eq!(event.attributes.len(), wire.attributes.len());
    for ((wire_name, wire_value), (name, value)) in wire.attributes.iter().zip(&event.attributes) {
        prop_assert_eq!(wire_name, name);
        prop_assert!(
            same_value(wire_value.kind.as_ref().expect("checked"), value),
            "{name}"
        );
    }

    let expected = validation_problem(&event);
    match event.validate() {
        Err(error) => {
            let (field, word) = expected
                .ok_or_else(|| TestCaseError::fail(format!("refused a valid event: {error}")))?;
            prop_assert_eq!(&error.field, &field, "{}", error);
            prop_assert!(error.message.contains(word), "{error} lacks {word:?}");
            return Ok(());
        }
        Ok(()) => prop_assert_eq!(expected, None),
    }
    // A decision holds its event, and the decision store keeps it as JSON:
    // an accepted event must come back from it unchanged.
    let json = serde_json::to_string(&event).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: Event = serde_json::from_str(&json)
        .map_err(|e| TestCaseError::fail(format!("stored event does not read back: {e}")))?;
    prop_assert_eq!(&back, &event);

    check_attached_image(event)
}

/// The server hashes an attached image before evaluating: a refusal names
/// an attribute the event has; success swaps the bytes for their hashes.
fn check_attached_image(event: Event) -> Result<(), TestCaseError> {
    let mut hashed = event.clone();
    match hash_attached_image(&mut hashed, &ImageLimits::default()) {
        Err(error) => {
            prop_assert!(event.attribute(error.attribute).is_some(), "{error}");
            prop_assert!(!error.message.is_empty());
            prop_assert_eq!(&hashed, &event, "a refusal changed the event");
        }
        Ok(()) if event.attribute("image").is_none() => prop_assert_eq!(&hashed, &event),
        Ok(()) => {
            // What the pipeline then checks must hold: the hashes replace
            // the image without breaking a limit the client kept.
            prop_assert_eq!(hashed.validate(), Ok(()));
            prop_assert!(hashed.attribute("image").is_none());
            for derived in [
                "pdq_hash",
                "pdq_quality",
                "image_sha256",
                "image_md5",
                "image_width",
                "image_height",
            ] {
                prop_assert!(hashed.attribute(derived).is_some(), "{derived} missing");
            }
        }
    }
    Ok(())
}

#[test]
fn evaluate_requests_decode_convert_and_validate_precisely() {
    // The seeds themselves must pass whole, or the mutations start from
    // nothing.
    for seed in seeds() {
        let event = event_from_proto(seed.event.expect("seeded"), "event").unwrap();
        event.validate().unwrap();
    }
    let cases = fuzz("events", request_bytes(), check_request);
    assert!(cases >= 64);
}
