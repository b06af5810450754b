//! Engine types onto the wire: decisions, with everything that made them,
//! as clients read them; overturns; shadow reports with their accuracy.

use super::v1;
use crate::accuracy::{Accuracy, Confusion};
use crate::banks::MatchEvidence;
use crate::clearinghouse::ClearinghouseReport;
use crate::decision::{Decision, EnforcementAction, LabelChange, Outcome, RuleReport};
use crate::event::{Entity, EntityKind, Event, Value};
use crate::ground_truth::LabelSource;
use crate::overturn::Overturn;
use crate::policy::Mode;
use crate::shadow_report::ShadowReport;
use crate::verdict::{Action, Reason, Severity};

/// A decision as the API returns it, with its place in the decision log
/// (0 when it is not logged).
pub fn decision_to_proto(decision: &Decision, sequence: u64) -> v1::Decision {
    decision_view_to_proto(decision, sequence, v1::DecisionView::Full)
}

/// A decision in the view a client asked for (see `DecisionView`).
pub fn decision_view_to_proto(
    decision: &Decision,
    sequence: u64,
    view: v1::DecisionView,
) -> v1::Decision {
    let compact = view == v1::DecisionView::Compact;
    v1::Decision {
        id: decision.id.clone(),
        event: (!compact).then(|| event_to_proto(&decision.event)),
        outcome: Some(outcome_to_proto(&decision.outcome)),
        rules: decision
            .rules
            .iter()
            .filter(|r| !compact || r.fired() || r.error.is_some())
            .map(report_to_proto)
            .collect(),
        label_changes: decision.label_changes.iter().map(label_to_proto).collect(),
        shadow: decision.shadow.as_ref().map(|shadow| v1::ShadowDecision {
            outcome: Some(outcome_to_proto(&shadow.outcome)),
            label_changes: shadow.label_changes.iter().map(label_to_proto).collect(),
            differs: shadow.differs,
        }),
        policy_version: decision.policy_version.to_string(),
        sequence,
        // Overturns are kept beside the decision log, not in decisions:
        // the server adds them (`overturn_to_proto`).
        overturns: Vec::new(),
    }
}

/// An overturn as `WatchOverturns`, `SubmitLabels` and `GetDecision` send it.
pub fn overturn_to_proto(overturn: &Overturn) -> v1::Overturn {
    v1::Overturn {
        sequence: overturn.sequence,
        decision_id: overturn.decision_id.clone(),
        entity: Some(entity_to_proto(&overturn.entity)),
        lifted: overturn.lifted.iter().map(enforcement_to_proto).collect(),
        labels_cleared: overturn.labels_cleared.iter().map(label_to_proto).collect(),
        source: label_source_to_proto(overturn.source).into(),
        reference: overturn.reference.clone(),
        labelled_at: Some(timestamp_to_proto(overturn.labelled_at_ms)),
        overturned_at: Some(timestamp_to_proto(overturn.overturned_at_ms)),
        event_id: overturn.event_id.clone(),
    }
}

/// The wire source of a label.
pub fn label_source_to_proto(source: LabelSource) -> v1::LabelSource {
    match source {
        LabelSource::Review => v1::LabelSource::Review,
        LabelSource::Appeal => v1::LabelSource::Appeal,
        LabelSource::Other => v1::LabelSource::Other,
    }
}

/// An event as the client sent it.
pub fn event_to_proto(event: &Event) -> v1::Event {
    v1::Event {
        id: event.id.clone(),
        kind: event.kind.clone(),
        occurred_at: Some(timestamp_to_proto(event.occurred_at_ms)),
        actor: Some(entity_to_proto(&event.actor)),
        target: event.target.as_ref().map(entity_to_proto),
        attributes: event
            .attributes
            .iter()
            .map(|(name, value)| (name.clone(), value_to_proto(value)))
            .collect(),
    }
}

/// An entity on the wire.
pub fn entity_to_proto(entity: &Entity) -> v1::Entity {
    let kind = match entity.kind {
        EntityKind::Account => v1::EntityType::Account,
        EntityKind::Group => v1::EntityType::Group,
    };
    v1::Entity {
        r#type: kind.into(),
        id: entity.id.clone(),
    }
}

/// The wire severity of an engine severity.
pub fn severity_to_proto(severity: Severity) -> v1::Severity {
    match severity {
        Severity::Allow => v1::Severity::Allow,
        Severity::Review => v1::Severity::Review,
        Severity::Limit => v1::Severity::Limit,
        Severity::Block => v1::Severity::Block,
    }
}

/// The wire action type of an engine action.
pub fn action_to_proto(action: Action) -> v1::ActionType {
    match action {
        Action::BlockAccount => v1::ActionType::BlockAccount,
        Action::BanGroup => v1::ActionType::BanGroup,
        Action::LimitForwarding => v1::ActionType::LimitForwarding,
        Action::RemoveMedia => v1::ActionType::RemoveMedia,
        Action::ReportToClearinghouse => v1::ActionType::ReportToClearinghouse,
    }
}

/// A time in Unix milliseconds as a protobuf timestamp.
pub fn timestamp_to_proto(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        // In 0..1000 by `rem_euclid`, so the cast cannot truncate.
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// A rule's mode; disabled (not running) has no wire value of its own:
/// rules that do not run are never reported, and the control plane marks
/// them with a flag of their own.
pub fn mode_to_proto(mode: Mode) -> v1::Mode {
    match mode {
        Mode::Enforce => v1::Mode::Enforce,
        Mode::Shadow => v1::Mode::Shadow,
        Mode::Disabled => v1::Mode::Unspecified,
    }
}

fn outcome_to_proto(outcome: &Outcome) -> v1::Outcome {
    v1::Outcome {
        severity: severity_to_proto(outcome.severity).into(),
        score: outcome.score,
        actions: outcome.actions.iter().map(enforcement_to_proto).collect(),
    }
}

fn enforcement_to_proto(action: &EnforcementAction) -> v1::EnforcementAction {
    v1::EnforcementAction {
        action: action_to_proto(action.action).into(),
        entity: Some(entity_to_proto(&action.entity)),
    }
}

fn report_to_proto(report: &RuleReport) -> v1::RuleReport {
    let mode = mode_to_proto(report.mode);
    v1::RuleReport {
        rule: report.rule.to_string(),
        version: report.version.to_string(),
        sha256: report.sha256.to_string(),
        mode: mode.into(),
        weight: report.weight,
        veto: report.veto,
        severity: severity_to_proto(report.severity).into(),
        score: report.score,
        reasons: report.reasons.iter().map(reason_to_proto).collect(),
        actions: report.actions.iter().map(enforcement_to_proto).collect(),
        fuel_used: report.fuel_used,
        elapsed_us: report.elapsed_us,
        error: report.error.as_ref().map(|e| v1::RuleError {
            kind: e.kind().to_string(),
            message: e.to_string(),
        }),
        failed_closed: report.failed_closed,
        skipped: report.skipped,
        candidate: report.candidate,
        evidence: report.evidence.iter().map(evidence_to_proto).collect(),
    }
}

fn reason_to_proto(reason: &Reason) -> v1::Reason {
    v1::Reason {
        code: reason.code.clone(),
        explanation: reason.explanation.clone(),
    }
}

/// One hash-bank lookup's evidence.
pub fn evidence_to_proto(evidence: &MatchEvidence) -> v1::MatchEvidence {
    v1::MatchEvidence {
        bank: evidence.bank.clone(),
        query_hash: hex::encode(evidence.query_hash),
        max_distance: evidence.max_distance,
        matches: evidence
            .matches
            .iter()
            .map(|m| v1::HashMatch {
                bank: m.bank.clone(),
                entry_id: m.entry_id.clone(),
                entry_hash: hex::encode(m.entry_hash),
                distance: m.distance,
                source: m.source.clone(),
                added_at: Some(timestamp_to_proto(m.added_at_ms)),
            })
            .collect(),
        suppressed_by: evidence.suppressed_by.as_ref().map(|hit| v1::AllowHit {
            allow_list: hit.allow_list.clone(),
            entry_id: hit.entry_id.clone(),
            distance: hit.distance,
        }),
    }
}

/// A clearing-house report record.
pub fn clearinghouse_report_to_proto(report: &ClearinghouseReport) -> v1::ClearinghouseReport {
    let media = &report.media;
    v1::ClearinghouseReport {
        decision_id: report.decision_id.clone(),
        sequence: report.sequence,
        event_id: report.event_id.clone(),
        event_kind: report.event_kind.clone(),
        occurred_at: Some(timestamp_to_proto(report.occurred_at_ms)),
        accounts: report.accounts.iter().map(entity_to_proto).collect(),
        groups: report.groups.iter().map(entity_to_proto).collect(),
        media: Some(v1::ReportedMedia {
            media_id: media.media_id.clone().unwrap_or_default(),
            pdq_hash: media.pdq_hash.clone().unwrap_or_default(),
            pdq_quality: media.pdq_quality.unwrap_or(-1),
            image_sha256: media.image_sha256.clone().unwrap_or_default(),
            image_md5: media.image_md5.clone().unwrap_or_default(),
        }),
        rules: report
            .rules
            .iter()
            .map(|rule| v1::ReportingRule {
                rule: rule.rule.clone(),
                version: rule.version.clone(),
                sha256: rule.sha256.clone(),
                severity: severity_to_proto(rule.severity).into(),
                reasons: rule.reasons.iter().map(reason_to_proto).collect(),
                evidence: rule.evidence.iter().map(evidence_to_proto).collect(),
            })
            .collect(),
        actions: report.actions.iter().map(enforcement_to_proto).collect(),
        policy_version: report.policy_version.clone(),
    }
}

fn label_to_proto(change: &LabelChange) -> v1::LabelChange {
    match change {
        LabelChange::Set {
            entity,
            label,
            expires_at_ms,
            rule,
        } => v1::LabelChange {
            entity: Some(entity_to_proto(entity)),
            label: label.clone(),
            cleared: false,
            expires_at: Some(timestamp_to_proto(*expires_at_ms)),
            rule: rule.to_string(),
        },
        LabelChange::Clear {
            entity,
            label,
            rule,
        } => v1::LabelChange {
            entity: Some(entity_to_proto(entity)),
            label: label.clone(),
            cleared: true,
            expires_at: None,
            rule: rule.to_string(),
        },
    }
}

fn value_to_proto(value: &Value) -> v1::Value {
    use v1::value::Kind;
    let kind = match value {
        Value::Int(v) => Kind::Int(*v),
        Value::Float(v) => Kind::Float(*v),
        Value::Bool(v) => Kind::Boolean(*v),
        Value::Text(v) => Kind::Text(v.clone()),
        Value::Bytes(v) => Kind::Bytes(v.clone()),
        Value::IntList(v) => Kind::IntList(v1::IntList { values: v.clone() }),
        Value::FloatList(v) => Kind::FloatList(v1::FloatList { values: v.clone() }),
        Value::BoolList(v) => Kind::BoolList(v1::BoolList { values: v.clone() }),
        Value::TextList(v) => Kind::TextList(v1::TextList { values: v.clone() }),
        Value::BytesList(v) => Kind::BytesList(v1::BytesList { values: v.clone() }),
    };
    v1::Value { kind: Some(kind) }
}

/// A shadow report; each sample carries its place in the decision log as
/// `sequence_of` gives it (0 if the log no longer holds it).
pub fn shadow_report_to_proto(
    report: &ShadowReport,
    sequence_of: impl Fn(&str) -> u64,
) -> v1::ShadowReport {
    let counts = |counts: &[u64; 4]| v1::SeverityCounts {
        counts: counts.to_vec(),
    };
    v1::ShadowReport {
        from: Some(timestamp_to_proto(report.from_ms)),
        to: Some(timestamp_to_proto(report.to_ms)),
        decisions: report.decisions,
        with_shadow: report.with_shadow,
        disagreements: report.disagreements,
        matrix: report.matrix.iter().map(counts).collect(),
        would_block: report.would_block,
        would_unblock: report.would_unblock,
        actions: report
            .actions
            .iter()
            .map(|a| v1::ActionAgreement {
                action: action_to_proto(a.action).into(),
                both: a.both,
                live_only: a.live_only,
                shadow_only: a.shadow_only,
            })
            .collect(),
        builds: report
            .builds
            .iter()
            .map(|build| v1::BuildTally {
                rule: build.rule.to_string(),
                sha256: build.sha256.to_string(),
                mode: mode_to_proto(build.mode).into(),
                candidate: build.candidate,
                events: build.events,
                skipped: build.skipped,
                errors: build.errors,
                verdicts: Some(counts(&build.verdicts)),
                fuel: build.fuel,
                elapsed_us: build.elapsed_us,
            })
            .collect(),
        samples: report
            .samples
            .iter()
            .map(|decision| decision_to_proto(decision, sequence_of(&decision.id)))
            .collect(),
        accuracy: Some(accuracy_to_proto(&report.accuracy)),
    }
}

fn accuracy_to_proto(accuracy: &Accuracy) -> v1::Accuracy {
    v1::Accuracy {
        positive_severity: severity_to_proto(accuracy.positive_severity).into(),
        labelled_entities: accuracy.labelled_entities,
        joined: accuracy.joined,
        without_decisions: accuracy.without_decisions,
        abusive: accuracy.abusive,
        benign: accuracy.benign,
        live: Some(confusion_to_proto(&accuracy.live)),
        shadow: Some(confusion_to_proto(&accuracy.shadow)),
        rules: accuracy
            .rules
            .iter()
            .map(|rule| v1::RuleAccuracy {
                rule: rule.rule.to_string(),
                mode: mode_to_proto(rule.mode).into(),
                candidate: rule.candidate,
                matrix: Some(confusion_to_proto(&rule.matrix)),
            })
            .collect(),
        event_labels: accuracy.event_labels,
    }
}

fn confusion_to_proto(matrix: &Confusion) -> v1::ConfusionMatrix {
    v1::ConfusionMatrix {
        true_positives: matrix.tp,
        false_positives: matrix.fp,
        false_negatives: matrix.fn_,
        true_negatives: matrix.tn,
        precision: matrix.precision(),
        recall: matrix.recall(),
        f1: matrix.f1(),
    }
}
