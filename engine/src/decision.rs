//! The decision: what the engine concludes about one event, with the
//! provenance an appeal or an audit needs. Every rule that ran is named with
//! the exact build (sha256) that ran, what it said and what it cost; the
//! shadow decision beside it says what would have happened had the shadow
//! rules enforced.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::banks::MatchEvidence;
use crate::event::{Entity, Event};
use crate::policy::Mode;
use crate::verdict::{Action, Reason, RuleError, Severity, Subject};

/// An enforcement action and the entity it applies to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EnforcementAction {
    /// What to do.
    pub action: Action,
    /// To whom.
    pub entity: Entity,
}

impl EnforcementAction {
    /// The least decision severity that carries out this action. Below it
    /// the action is only a recommendation: a review decision bans no one.
    pub fn min_severity(action: Action) -> Severity {
        match action {
            Action::LimitForwarding | Action::RemoveMedia => Severity::Limit,
            Action::BlockAccount | Action::BanGroup | Action::ReportToClearinghouse => {
                Severity::Block
            }
        }
    }
}

/// A label change on an entity, as applied (live) or as it would have been
/// (shadow).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum LabelChange {
    /// Label set until `expires_at_ms`.
    Set {
        /// On whom.
        entity: Entity,
        /// The label.
        label: String,
        /// When it stops applying (event time).
        expires_at_ms: i64,
        /// The rule that asked.
        rule: Arc<str>,
    },
    /// Label removed.
    Clear {
        /// From whom.
        entity: Entity,
        /// The label.
        label: String,
        /// The rule that asked.
        rule: Arc<str>,
    },
}

/// One rule's part in a decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleReport {
    /// The rule's name.
    pub rule: Arc<str>,
    /// Its own version string.
    pub version: Arc<str>,
    /// The sha256 of the build that ran.
    pub sha256: Arc<str>,
    /// Its mode under the policy: enforce or shadow.
    pub mode: Mode,
    /// Its weight under the policy.
    pub weight: f64,
    /// Whether its block stands on its own.
    pub veto: bool,
    /// Its verdict's severity (allow when it failed).
    pub severity: Severity,
    /// Its verdict's score (0 when it failed).
    pub score: f64,
    /// Why.
    pub reasons: Vec<Reason>,
    /// The actions it recommended, resolved to entities.
    pub actions: Vec<EnforcementAction>,
    /// Fuel its call used.
    pub fuel_used: u64,
    /// Wall-clock time of its call, in microseconds.
    pub elapsed_us: u64,
    /// Why it produced no verdict, if it did not.
    pub error: Option<RuleError>,
    /// Whether its error raised the decision (a fail-closed rule).
    pub failed_closed: bool,
    /// Whether it was not called because none of its guards held: it
    /// allows, by its own declaration, without the cost of a call.
    #[serde(default)]
    pub skipped: bool,
    /// Whether this is a candidate version of the rule: chosen for this
    /// event's actor by a rollout (in the rule's mode), or run beside the
    /// active version in shadow.
    #[serde(default)]
    pub candidate: bool,
    /// The hash-bank matches its call found (and any allow-list that
    /// suppressed them), as the engine recorded them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<MatchEvidence>,
}

impl RuleReport {
    /// Whether the rule said anything other than allow.
    pub fn fired(&self) -> bool {
        self.severity > Severity::Allow
    }
}

/// What a set of verdicts combines to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The combined severity.
    pub severity: Severity,
    /// The combined score, in [0, 1].
    pub score: f64,
    /// The actions to carry out, deduplicated and sorted.
    pub actions: Vec<EnforcementAction>,
}

/// The shadow decision: the live rules and the shadow rules together, as if
/// all enforced. It never changes anything.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShadowDecision {
    /// What would have been decided.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The label changes the shadow rules would have made.
    pub label_changes: Vec<LabelChange>,
    /// Whether severity or actions differ from the live decision.
    pub differs: bool,
}

/// The engine's decision about one event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The decision's id, derived from the event's id: one event, one
    /// decision.
    pub id: String,
    /// The event decided on, whole: the evidence a review or an appeal
    /// reads. Shared with the pipeline, never copied.
    pub event: Arc<Event>,
    /// The live outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Every rule subscribed to the event's kind and not disabled, live and
    /// shadow, in rule-set order; a rule its guards kept from the call is
    /// there too, marked `skipped`.
    pub rules: Vec<RuleReport>,
    /// The label changes the live rules made.
    pub label_changes: Vec<LabelChange>,
    /// What the shadow rules would have changed. Absent when no shadow
    /// rule subscribes to the event's kind.
    pub shadow: Option<ShadowDecision>,
    /// The policy version that decided.
    pub policy_version: Arc<str>,
}

impl Decision {
    /// The decision id for an event id.
    pub fn id_for(event_id: &str) -> String {
        format!("dec-{event_id}")
    }

    /// A decision that allows `event` with no rule involved, for tests of
    /// what stores decisions.
    #[cfg(test)]
    pub(crate) fn allowing(event: Event) -> Arc<Decision> {
        Arc::new(Decision {
            id: Decision::id_for(&event.id),
            event: Arc::new(event),
            outcome: Outcome {
                severity: Severity::Allow,
                score: 0.0,
                actions: Vec::new(),
            },
            rules: Vec::new(),
            label_changes: Vec::new(),
            shadow: None,
            policy_version: Arc::from("test"),
        })
    }

    /// The rules that fired (said more than allow), live or shadow.
    pub fn fired(&self) -> impl Iterator<Item = &RuleReport> {
        self.rules.iter().filter(|r| r.fired())
    }
}

/// The entity a subject names in an event, if there is one.
pub fn resolve_subject(subject: &Subject, event: &Event) -> Option<Entity> {
    match subject {
        Subject::Actor => Some(event.actor.clone()),
        Subject::Target => event.target.clone(),
        Subject::Entity(entity) => Some(entity.clone()),
    }
}
