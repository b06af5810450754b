//! Clearing-house report records: what a report of child-exploitation
//! imagery (to NCMEC's CyberTipline, say) needs, taken from one decision
//! whose live outcome reports: the accounts and group involved, the media's
//! hashes, when, the live rules that fired with their reasons, and the
//! bank matches the engine recorded as they happened.
//!
//! The engine does not file reports itself: a reporting service reads these
//! records (`ExportReports`), adds what only the platform holds (the image
//! itself, subscriber details) and files them.

use serde::{Deserialize, Serialize};

use crate::banks::MatchEvidence;
use crate::decision::{Decision, EnforcementAction};
use crate::event::{Entity, EntityKind, Value};
use crate::policy::Mode;
use crate::verdict::{Action, Reason, Severity};

/// The attributes a media event carries its identity and hashes in (see
/// `plugins/EVENTS.md`).
pub mod media_attributes {
    /// The platform's id for the media.
    pub const MEDIA_ID: &str = "media_id";
    /// The 32-byte PDQ hash.
    pub const PDQ_HASH: &str = "pdq_hash";
    /// Its quality, 0 to 100.
    pub const PDQ_QUALITY: &str = "pdq_quality";
    /// SHA-256 of the image bytes the engine hashed, hex.
    pub const IMAGE_SHA256: &str = "image_sha256";
    /// MD5 of them, hex.
    pub const IMAGE_MD5: &str = "image_md5";
}

/// One report record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClearinghouseReport {
    /// The decision's id.
    pub decision_id: String,
    /// Its place in the decision log.
    pub sequence: u64,
    /// The event's id.
    pub event_id: String,
    /// The event's kind (`media.profile_photo`, `media.group_icon`, ...).
    pub event_kind: String,
    /// When it happened (event time, Unix milliseconds).
    pub occurred_at_ms: i64,
    /// The accounts the decision blocks or reports, the actor first.
    pub accounts: Vec<Entity>,
    /// The groups it bans, or the group whose icon the media is.
    pub groups: Vec<Entity>,
    /// The media and its hashes.
    pub media: ReportedMedia,
    /// The live rules that fired, with their evidence.
    pub rules: Vec<ReportingRule>,
    /// Everything the decision does.
    pub actions: Vec<EnforcementAction>,
    /// The policy version that decided.
    pub policy_version: String,
}

/// The media a report is about. Never the image: only its hashes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedMedia {
    /// The platform's id for it.
    pub media_id: Option<String>,
    /// The PDQ hash, hex.
    pub pdq_hash: Option<String>,
    /// Its quality.
    pub pdq_quality: Option<i64>,
    /// SHA-256 of the image bytes, hex, when the engine hashed them.
    pub image_sha256: Option<String>,
    /// MD5 of them, hex.
    pub image_md5: Option<String>,
}

/// A live rule that fired on a reported decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportingRule {
    /// Its name.
    pub rule: String,
    /// Its version string.
    pub version: String,
    /// The build that ran.
    pub sha256: String,
    /// What it said.
    pub severity: Severity,
    /// Why.
    pub reasons: Vec<Reason>,
    /// The bank matches its lookups found.
    pub evidence: Vec<MatchEvidence>,
}

impl ClearinghouseReport {
    /// The record for `decision`, logged as `sequence`, if its live outcome
    /// reports to the clearing house.
    pub fn of(decision: &Decision, sequence: u64) -> Option<Self> {
        let actions = &decision.outcome.actions;
        if !actions
            .iter()
            .any(|a| a.action == Action::ReportToClearinghouse)
        {
            return None;
        }
        let event = &decision.event;
        let mut accounts = vec![event.actor.clone()];
        let mut groups = Vec::new();
        if let Some(target) = &event.target
            && target.kind == EntityKind::Group
            && event.kind == "media.group_icon"
        {
            groups.push(target.clone());
        }
        for action in actions {
            let list = match action.entity.kind {
                EntityKind::Account => &mut accounts,
                EntityKind::Group => &mut groups,
            };
            let acted_on = matches!(
                action.action,
                Action::BlockAccount | Action::BanGroup | Action::ReportToClearinghouse
            );
            if acted_on && !list.contains(&action.entity) {
                list.push(action.entity.clone());
            }
        }
        let rules = decision
            .rules
            .iter()
            .filter(|r| r.fired() && r.mode == Mode::Enforce)
            .map(|r| ReportingRule {
                rule: r.rule.to_string(),
                version: r.version.to_string(),
                sha256: r.sha256.to_string(),
                severity: r.severity,
                reasons: r.reasons.clone(),
                evidence: r.evidence.clone(),
            })
            .collect();
        Some(ClearinghouseReport {
            decision_id: decision.id.clone(),
            sequence,
            event_id: event.id.clone(),
            event_kind: event.kind.clone(),
            occurred_at_ms: event.occurred_at_ms,
            accounts,
            groups,
            media: reported_media(decision),
            rules,
            actions: actions.clone(),
            policy_version: decision.policy_version.to_string(),
        })
    }
}

fn reported_media(decision: &Decision) -> ReportedMedia {
    use media_attributes::*;
    let event = &decision.event;
    let text = |name: &str| match event.attribute(name) {
        Some(Value::Text(text)) => Some(text.clone()),
        _ => None,
    };
    ReportedMedia {
        media_id: text(MEDIA_ID),
        pdq_hash: match event.attribute(PDQ_HASH) {
            Some(Value::Bytes(bytes)) => Some(hex::encode(bytes)),
            _ => None,
        },
        pdq_quality: match event.attribute(PDQ_QUALITY) {
            Some(Value::Int(quality)) => Some(*quality),
            _ => None,
        },
        image_sha256: text(IMAGE_SHA256),
        image_md5: text(IMAGE_MD5),
    }
}
