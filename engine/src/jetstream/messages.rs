//! What a decision is published as: one message per action it carries
//! out (or one for its severity), each with its subject, message id,
//! headers and payload.

use std::fmt::Write as _;

use async_nats::HeaderMap;
use prost::Message as _;

use crate::api::{self, v1};
use crate::decision::{Decision, EnforcementAction};
use crate::decision_log::Logged;
use crate::event::{Entity, EntityKind};
use crate::verdict::Severity;
/// The header naming the decision's sequence in the decision log.
pub const HEADER_SEQUENCE: &str = "Enforcer-Sequence";
/// The header naming the decision id (escaped, see [`escape`]).
pub const HEADER_DECISION_ID: &str = "Enforcer-Decision-Id";
/// The header naming what the message asks for: the subject's last token,
/// an action (`block_account`) or a severity (`review`).
pub const HEADER_ACTION: &str = "Enforcer-Action";
/// The header naming the entity an action applies to, `account:<id>` or
/// `group:<id>` (the id escaped); absent on a message for a severity.
pub const HEADER_ENTITY: &str = "Enforcer-Entity";
/// The header naming the decision's severity.
pub const HEADER_SEVERITY: &str = "Enforcer-Severity";
/// The content type of every message's payload.
pub const CONTENT_TYPE: &str = "application/x-protobuf; messageType=enforcement.v1.Decision";

/// A string made safe for a header value and for joining with `/`: `%`,
/// `/`, white space and control characters are percent-encoded (UTF-8
/// bytes), so two different strings never escape to the same text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '%' || c == '/' || c.is_whitespace() || c.is_control() {
            let mut bytes = [0; 4];
            for byte in c.encode_utf8(&mut bytes).bytes() {
                let _ = write!(out, "%{byte:02X}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// An entity as headers and message ids name it: `account:<id>`.
pub fn entity_name(entity: &Entity) -> String {
    let kind = match entity.kind {
        EntityKind::Account => "account",
        EntityKind::Group => "group",
    };
    format!("{kind}:{}", escape(&entity.id))
}

/// One message a decision gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    /// The subject's last token: an action, or a severity when the decision
    /// carries out no action.
    pub topic: &'static str,
    /// The entity the action applies to (none for a severity).
    pub entity: Option<Entity>,
    /// The `Nats-Msg-Id`: decision id, topic and entity.
    pub message_id: String,
}

/// The messages a decision gives, in the order of its actions: one per
/// action it carries out (at or above the action's least severity); one for
/// its severity when it is above allow and carries out none; none for an
/// allow decision.
pub fn planned_messages(decision: &Decision) -> Vec<Planned> {
    let severity = decision.outcome.severity;
    if severity == Severity::Allow {
        return Vec::new();
    }
    let decision_id = escape(&decision.id);
    let mut planned: Vec<Planned> = decision
        .outcome
        .actions
        .iter()
        .filter(|a| severity >= EnforcementAction::min_severity(a.action))
        .map(|a| {
            let topic = a.action.name();
            Planned {
                topic,
                message_id: format!("{decision_id}/{topic}/{}", entity_name(&a.entity)),
                entity: Some(a.entity.clone()),
            }
        })
        .collect();
    planned.dedup();
    if planned.is_empty() {
        let topic = severity.name();
        planned.push(Planned {
            topic,
            entity: None,
            message_id: format!("{decision_id}/{topic}"),
        });
    }
    planned
}

/// The headers of one message.
pub(super) fn headers(logged: &Logged, planned: &Planned) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", planned.message_id.as_str());
    headers.insert(HEADER_SEQUENCE, logged.sequence.to_string().as_str());
    headers.insert(HEADER_DECISION_ID, escape(&logged.decision.id).as_str());
    headers.insert(HEADER_ACTION, planned.topic);
    if let Some(entity) = &planned.entity {
        headers.insert(HEADER_ENTITY, entity_name(entity).as_str());
    }
    headers.insert(HEADER_SEVERITY, logged.decision.outcome.severity.name());
    headers.insert("Content-Type", CONTENT_TYPE);
    headers
}

/// The payload of a decision's messages: the whole decision, or, when that
/// is larger than the server takes, the compact view (without the event
/// and the rules that said nothing); `None`, with an error logged, when
/// even that is too large.
pub(super) fn payload(logged: &Logged, max_payload: usize) -> Option<bytes::Bytes> {
    // Headers take a few hundred bytes; ids are client-chosen, so leave room.
    let room = max_payload.saturating_sub(4096);
    let full = api::decision_to_proto(&logged.decision, logged.sequence).encode_to_vec();
    if max_payload == 0 || full.len() <= room {
        return Some(full.into());
    }
    let compact =
        api::decision_view_to_proto(&logged.decision, logged.sequence, v1::DecisionView::Compact)
            .encode_to_vec();
    if compact.len() <= room {
        tracing::warn!(
            sequence = logged.sequence,
            decision = logged.decision.id,
            bytes = full.len(),
            max_payload,
            "decision larger than the NATS server takes: published in its compact view"
        );
        return Some(compact.into());
    }
    tracing::error!(
        sequence = logged.sequence,
        decision = logged.decision.id,
        bytes = compact.len(),
        max_payload,
        "decision larger than the NATS server takes even in its compact view: not published"
    );
    None
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::decision::Outcome;
    use crate::event::Event;
    use crate::jetstream::NatsConfig;
    use crate::verdict::Action;

    fn decision(id: &str, severity: Severity, actions: &[(Action, Entity)]) -> Decision {
        let mut event = Event::new(id, "message.sent", 0, Entity::account("actor"));
        event.target = Some(Entity::group("g"));
        Decision {
            id: Decision::id_for(id),
            event: Arc::new(event),
            outcome: Outcome {
                severity,
                score: 1.0,
                actions: actions
                    .iter()
                    .map(|(action, entity)| EnforcementAction {
                        action: *action,
                        entity: entity.clone(),
                    })
                    .collect(),
            },
            rules: Vec::new(),
            label_changes: Vec::new(),
            shadow: None,
            policy_version: Arc::from("test"),
        }
    }

    fn topics(decision: &Decision) -> Vec<&'static str> {
        planned_messages(decision).iter().map(|p| p.topic).collect()
    }

    #[test]
    fn one_subject_per_action_carried_out() {
        let settings = NatsConfig::default();
        let actor = Entity::account("a1");
        let group = Entity::group("g1");
        let block = decision(
            "e1",
            Severity::Block,
            &[
                (Action::BlockAccount, actor.clone()),
                (Action::ReportToClearinghouse, actor.clone()),
                (Action::BanGroup, group.clone()),
                (Action::RemoveMedia, group.clone()),
            ],
        );
        let planned = planned_messages(&block);
        let subjects: Vec<String> = planned.iter().map(|p| settings.subject(p.topic)).collect();
        assert_eq!(
            subjects,
            [
                "enforcer.decisions.block_account",
                "enforcer.decisions.report_to_clearinghouse",
                "enforcer.decisions.ban_group",
                "enforcer.decisions.remove_media",
            ]
        );
        assert_eq!(
            planned[0].message_id, "dec-e1/block_account/account:a1",
            "decision id, action and entity"
        );
        assert_eq!(planned[2].entity.as_ref(), Some(&group));
        assert_eq!(settings.stream_subjects(), "enforcer.decisions.>");

        // The same action on two entities is two messages with two ids.
        let two = decision(
            "e2",
            Severity::Block,
            &[
                (Action::BlockAccount, Entity::account("x")),
                (Action::BlockAccount, Entity::account("y")),
            ],
        );
        let ids: Vec<String> = planned_messages(&two)
            .into_iter()
            .map(|p| p.message_id)
            .collect();
        assert_eq!(
            ids,
            [
                "dec-e2/block_account/account:x",
                "dec-e2/block_account/account:y"
            ]
        );
    }

    #[test]
    fn actions_below_their_severity_are_not_published() {
        // A limit decision carries out limits, never a block it lists.
        let limit = decision(
            "e3",
            Severity::Limit,
            &[
                (Action::LimitForwarding, Entity::account("a")),
                (Action::BlockAccount, Entity::account("a")),
            ],
        );
        assert_eq!(topics(&limit), ["limit_forwarding"]);
        // A review decision carries out nothing: one message for review.
        let review = decision(
            "e4",
            Severity::Review,
            &[(Action::BlockAccount, Entity::account("a"))],
        );
        let planned = planned_messages(&review);
        assert_eq!(topics(&review), ["review"]);
        assert_eq!(planned[0].message_id, "dec-e4/review");
        assert_eq!(planned[0].entity, None);
        // A block with no action of its own: one message for its severity.
        assert_eq!(topics(&decision("e5", Severity::Block, &[])), ["block"]);
        // Allow: nothing at all.
        assert!(topics(&decision("e6", Severity::Allow, &[])).is_empty());
        assert!(
            topics(&decision(
                "e7",
                Severity::Allow,
                &[(Action::BlockAccount, Entity::account("a"))]
            ))
            .is_empty()
        );
    }

    #[test]
    fn ids_are_escaped_so_they_never_collide_or_break_a_header() {
        assert_eq!(escape("plain-id_1.2:3"), "plain-id_1.2:3");
        assert_eq!(escape("a/b"), "a%2Fb");
        assert_eq!(escape("a%2Fb"), "a%252Fb");
        assert_eq!(escape("line\r\nbreak"), "line%0D%0Abreak");
        assert_eq!(escape("sp ace\u{85}"), "sp%20ace%C2%85");
        assert_eq!(escape("é"), "é");
        // An entity id with a '/' cannot pose as another action.
        let tricky = decision(
            "e8",
            Severity::Block,
            &[(Action::BlockAccount, Entity::account("x/ban_group/group:y"))],
        );
        let id = &planned_messages(&tricky)[0].message_id;
        assert_eq!(id, "dec-e8/block_account/account:x%2Fban_group%2Fgroup:y");
        assert_eq!(id.matches('/').count(), 2);
        // Every header of such a decision is accepted.
        let logged = Logged {
            sequence: 7,
            decision: Arc::new(decision(
                "evil\r\nNats-Msg-Id: x",
                Severity::Block,
                &[(Action::BlockAccount, Entity::account("a\nb"))],
            )),
        };
        let planned = planned_messages(&logged.decision);
        let headers = headers(&logged, &planned[0]);
        assert_eq!(headers.get(HEADER_SEQUENCE).unwrap().as_str(), "7");
        assert_eq!(
            headers.get(HEADER_ENTITY).unwrap().as_str(),
            "account:a%0Ab"
        );
        assert_eq!(
            headers.get(HEADER_ACTION).unwrap().as_str(),
            "block_account"
        );
        assert!(
            !headers
                .get("Nats-Msg-Id")
                .unwrap()
                .as_str()
                .contains(['\r', '\n'])
        );
    }
}
