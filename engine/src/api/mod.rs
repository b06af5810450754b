//! The gRPC API, `enforcement.v1`, generated from `proto/` at build time,
//! and the conversions between its messages and the engine's own types.
//!
//! The engine's types stay the engine's: the pipeline never sees a protobuf
//! message. Conversion into the engine validates what the wire format cannot
//! (required fields, enum values, timestamps) and names the offending field
//! in every error, so a client can fix its request from the message alone.

mod from_proto;
mod to_proto;

pub use from_proto::{
    FieldError, MAX_LABELS_PER_REQUEST, MAX_REFERENCE_BYTES, action_from_proto, entity_from_proto,
    event_from_proto, labels_from_proto, prefix_field, severity_from_proto, timestamp_ms,
};
pub use to_proto::{
    action_to_proto, clearinghouse_report_to_proto, decision_to_proto, decision_view_to_proto,
    entity_to_proto, event_to_proto, evidence_to_proto, label_source_to_proto, mode_to_proto,
    overturn_to_proto, severity_to_proto, shadow_report_to_proto, timestamp_to_proto,
};

/// The generated messages, server and client of `enforcement.v1`.
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    tonic::include_proto!("enforcement.v1");
}

/// The encoded file descriptor set of the API (with its imports), which
/// server reflection serves so that tools can call the engine without the
/// `.proto` files.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/enforcement_descriptor.bin"));

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::event::{Entity, EntityKind, Event, Value};

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::Int),
            any::<f64>()
                .prop_filter("NaN is not equal to itself", |f| !f.is_nan())
                .prop_map(Value::Float),
            any::<bool>().prop_map(Value::Bool),
            ".{0,20}".prop_map(Value::Text),
            prop::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
            prop::collection::vec(any::<i64>(), 0..5).prop_map(Value::IntList),
            prop::collection::vec(any::<bool>(), 0..5).prop_map(Value::BoolList),
            prop::collection::vec(".{0,8}", 0..5).prop_map(Value::TextList),
            prop::collection::vec(prop::collection::vec(any::<u8>(), 0..8), 0..4)
                .prop_map(Value::BytesList),
        ]
    }

    fn entity() -> impl Strategy<Value = Entity> {
        (any::<bool>(), "[a-z0-9-]{1,12}").prop_map(|(group, id)| Entity {
            kind: if group {
                EntityKind::Group
            } else {
                EntityKind::Account
            },
            id,
        })
    }

    fn event() -> impl Strategy<Value = Event> {
        (
            "[a-z0-9-]{1,16}",
            "[a-z]{1,8}\\.[a-z_]{1,8}",
            0..4_000_000_000_000i64,
            entity(),
            prop::option::of(entity()),
            prop::collection::btree_map("[a-z_]{1,10}", value(), 0..8),
        )
            .prop_map(|(id, kind, at, actor, target, attributes)| Event {
                id,
                kind,
                occurred_at_ms: at,
                actor,
                target,
                // The wire carries attributes as a map: in name order.
                attributes: attributes.into_iter().collect(),
            })
    }

    proptest! {
        /// An event survives the wire unchanged, to the millisecond.
        #[test]
        fn events_round_trip_through_the_wire(event in event()) {
            let back = event_from_proto(event_to_proto(&event), "event").unwrap();
            prop_assert_eq!(back, event);
        }
    }

    #[test]
    fn actions_and_severities_round_trip_and_unknown_values_are_refused() {
        use crate::verdict::{Action, Severity};
        for action in [
            Action::BlockAccount,
            Action::BanGroup,
            Action::LimitForwarding,
            Action::RemoveMedia,
            Action::ReportToClearinghouse,
        ] {
            assert_eq!(
                action_from_proto(action_to_proto(action) as i32),
                Some(action)
            );
        }
        for severity in [
            Severity::Allow,
            Severity::Review,
            Severity::Limit,
            Severity::Block,
        ] {
            assert_eq!(
                severity_from_proto(severity_to_proto(severity) as i32),
                Some(severity)
            );
        }
        assert_eq!(action_from_proto(0), None);
        assert_eq!(action_from_proto(99), None);
        assert_eq!(severity_from_proto(0), Some(Severity::Allow));
        assert_eq!(severity_from_proto(99), None);
    }
}
