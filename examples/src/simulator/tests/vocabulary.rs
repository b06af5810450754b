//! Every event follows `plugins/EVENTS.md`: a known kind, the right actor
//! and target, exactly the listed attributes, in order, of the right types
//! and within their ranges. The table below is transcribed from that file
//! independently of the constructors in `vocab.rs`.

use enforcer::event::{EntityKind, Event, Value};

use super::super::KINDS;
use super::{default_traffic, long_traffic};
use crate::simulator::Traffic;

#[derive(Clone, Copy, Debug)]
enum Type {
    Int,
    Float,
    Bool,
    Text,
    Bytes,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    None,
    Account,
    Group,
    AccountOrGroup,
    /// `message.forwarded`: the first chat, if known.
    Optional,
}

/// The kind's target and attributes, per EVENTS.md.
fn schema(kind: &str) -> Option<(Target, &'static [(&'static str, Type)])> {
    use Type::*;
    const PHOTO: &[(&str, Type)] = &[
        ("pdq_hash", Bytes),
        ("pdq_quality", Int),
        ("media_id", Text),
    ];
    const TEXT: &[(&str, Type)] = &[
        ("field", Text),
        ("classifier_score", Float),
        ("classifier_label", Text),
    ];
    Some(match kind {
        "account.created" => (Target::None, &[]),
        "message.sent" => (
            Target::AccountOrGroup,
            &[
                ("actor_age_seconds", Int),
                ("to_contact", Bool),
                ("has_media", Bool),
                ("message_id", Text),
            ],
        ),
        "message.forwarded" => (
            Target::Optional,
            &[
                ("chat_count", Int),
                ("message_id", Text),
                ("forward_depth", Int),
            ],
        ),
        "account.blocked" => (Target::Account, &[]),
        "report.filed" => (Target::AccountOrGroup, &[("reason", Text)]),
        "media.profile_photo" => (Target::None, PHOTO),
        "media.group_icon" => (Target::Group, PHOTO),
        "profile.updated" => (Target::None, TEXT),
        "group.updated" => (Target::Group, TEXT),
        "group.invite_link_shared" => (Target::Group, &[("public", Bool), ("link_id", Text)]),
        "group.joined" => (Target::Group, &[("via_invite_link", Bool)]),
        _ => return None,
    })
}

fn type_matches(value: &Value, expected: Type) -> bool {
    matches!(
        (value, expected),
        (Value::Int(_), Type::Int)
            | (Value::Float(_), Type::Float)
            | (Value::Bool(_), Type::Bool)
            | (Value::Text(_), Type::Text)
            | (Value::Bytes(_), Type::Bytes)
    )
}

fn target_matches(event: &Event, expected: Target) -> bool {
    let kind = event.target.as_ref().map(|t| t.kind);
    match expected {
        Target::None => kind.is_none(),
        Target::Account => kind == Some(EntityKind::Account),
        Target::Group => kind == Some(EntityKind::Group),
        Target::AccountOrGroup => kind.is_some(),
        Target::Optional => true,
    }
}

/// Ranges and enumerations the vocabulary states in words.
fn check_values(event: &Event) {
    use super::{bytes, float, int, text};
    let id = &event.id;
    match event.kind.as_str() {
        "message.sent" => assert!(int(event, "actor_age_seconds") >= 0, "{id}"),
        "message.forwarded" => {
            assert!(int(event, "chat_count") >= 1, "{id}");
            assert!(int(event, "forward_depth") >= 0, "{id}");
        }
        "report.filed" => assert!(
            ["spam", "scam", "harassment", "child_safety", "other"]
                .contains(&text(event, "reason")),
            "{id}"
        ),
        "media.profile_photo" | "media.group_icon" => {
            assert_eq!(bytes(event, "pdq_hash").len(), 32, "{id}");
            assert!((0..=100).contains(&int(event, "pdq_quality")), "{id}");
        }
        "profile.updated" | "group.updated" => {
            assert!(
                ["name", "description"].contains(&text(event, "field")),
                "{id}"
            );
            assert!(
                (0.0..=1.0).contains(&float(event, "classifier_score")),
                "{id}"
            );
            let labels = ["child_sexualization", "spam", "scam", "hate", "none"];
            assert!(labels.contains(&text(event, "classifier_label")), "{id}");
        }
        _ => {}
    }
}

fn check_vocabulary(traffic: &Traffic) {
    for labelled in &traffic.events {
        let event = &labelled.event;
        let (target, attributes) = schema(&event.kind)
            .unwrap_or_else(|| panic!("{}: unknown kind {}", event.id, event.kind));
        assert_eq!(
            event.actor.kind,
            EntityKind::Account,
            "{}: actors are accounts",
            event.id
        );
        assert!(
            target_matches(event, target),
            "{}: target {:?}",
            event.id,
            event.target
        );
        let names: Vec<&str> = event.attributes.iter().map(|(n, _)| n.as_str()).collect();
        let expected: Vec<&str> = attributes.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names, expected,
            "{}: attributes of {}",
            event.id, event.kind
        );
        for ((name, value), (_, ty)) in event.attributes.iter().zip(attributes) {
            assert!(
                type_matches(value, *ty),
                "{}: {name} is {value:?}",
                event.id
            );
        }
        check_values(event);
        assert!(
            event.target.as_ref() != Some(&event.actor),
            "{}: aimed at itself",
            event.id
        );
    }
}

#[test]
fn default_run_follows_the_vocabulary() {
    check_vocabulary(default_traffic());
}

#[test]
fn long_run_follows_the_vocabulary() {
    check_vocabulary(long_traffic());
}

#[test]
fn every_kind_is_emitted_and_listed() {
    for kind in KINDS {
        assert!(schema(kind).is_some(), "{kind} is not in EVENTS.md");
        assert!(
            default_traffic()
                .events
                .iter()
                .any(|l| l.event.kind == kind),
            "no {kind} events"
        );
    }
}
