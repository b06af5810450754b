//! What a rule returns, as the engine keeps it: a validated verdict, or a
//! classified error, with the cost of getting it.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::banks::MatchEvidence;
use crate::event::Entity;

/// How strongly a rule wants the engine to act, from least to most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Nothing wrong.
    Allow,
    /// A human should look.
    Review,
    /// Restrict the entity.
    Limit,
    /// Stop the entity.
    Block,
}

/// An enforcement action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Block the account.
    BlockAccount,
    /// Ban the group.
    BanGroup,
    /// Cap how widely the account can forward.
    LimitForwarding,
    /// Remove the offending media.
    RemoveMedia,
    /// Report to the child-safety clearing house.
    ReportToClearinghouse,
}

impl Severity {
    /// Its name, as the JSON forms, reports and message subjects spell it.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Allow => "allow",
            Severity::Review => "review",
            Severity::Limit => "limit",
            Severity::Block => "block",
        }
    }
}

impl Action {
    /// Its name, as the JSON forms, the rules' contract and message
    /// subjects spell it.
    pub fn name(self) -> &'static str {
        match self {
            Action::BlockAccount => "block_account",
            Action::BanGroup => "ban_group",
            Action::LimitForwarding => "limit_forwarding",
            Action::RemoveMedia => "remove_media",
            Action::ReportToClearinghouse => "report_to_clearinghouse",
        }
    }
}

/// Which entity an action or effect is about, as the rule named it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// The event's actor.
    Actor,
    /// The event's target.
    Target,
    /// Another entity.
    Entity(Entity),
}

/// An action and the entity it applies to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecommendedAction {
    /// What to do.
    pub action: Action,
    /// To whom.
    pub subject: Subject,
}

/// Why a rule decided what it did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// Stable machine-readable code.
    pub code: String,
    /// Short explanation for a human.
    pub explanation: String,
}

/// The longest a rule may label an entity for: a little over a year, the
/// longest any example rule asks (known abuse imagery) with room to spare.
/// Labels are state the engine keeps; none may be kept forever.
pub const MAX_LABEL_TTL_SECONDS: u64 = 400 * 24 * 3600;

/// A state change a rule asks for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Label a subject until `ttl_seconds` after the event.
    SetLabel {
        /// Who.
        subject: Subject,
        /// The label.
        label: String,
        /// How long, from the event's time.
        ttl_seconds: u64,
    },
    /// Remove a label.
    ClearLabel {
        /// Who.
        subject: Subject,
        /// The label.
        label: String,
    },
}

/// A rule's validated conclusion about one event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Confidence of abuse, in [0, 1].
    pub score: f64,
    /// How strongly to act.
    pub severity: Severity,
    /// Recommended actions.
    pub actions: Vec<RecommendedAction>,
    /// Why.
    pub reasons: Vec<Reason>,
    /// Requested state changes.
    pub effects: Vec<Effect>,
}

/// Why a rule produced no verdict. Every way a plugin can fail lands in
/// exactly one of these; none of them reaches the engine as a crash.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum RuleError {
    /// Ran through its fuel budget (instructions).
    #[error("ran out of fuel (budget {budget} units)")]
    OutOfFuel {
        /// The budget it had.
        budget: u64,
    },
    /// Hit the wall-clock deadline (for time spent in host calls, or a
    /// budget set above what the deadline allows).
    #[error("exceeded the {limit_ms} ms deadline")]
    Deadline {
        /// The deadline.
        limit_ms: u64,
    },
    /// Tried to grow its memory past the cap.
    #[error("ran out of memory (cap {limit_bytes} bytes)")]
    OutOfMemory {
        /// The cap.
        limit_bytes: u64,
    },
    /// Recursed past the wasm stack cap.
    #[error("overflowed its stack")]
    StackOverflow,
    /// Panicked, with the message it logged.
    #[error("panicked: {message}")]
    Panic {
        /// The panic message and location.
        message: String,
    },
    /// Any other trap (out-of-bounds access, division by zero, ...).
    #[error("trapped: {message}")]
    Trap {
        /// What the trap was.
        message: String,
    },
    /// Misused a host function (read an undeclared counter, an unknown bank, ...).
    #[error("bad host call: {message}")]
    HostCall {
        /// What was wrong.
        message: String,
    },
    /// Returned something the contract does not allow (score out of range,
    /// output over the size cap, malformed data).
    #[error("bad output: {message}")]
    BadOutput {
        /// What was wrong.
        message: String,
    },
    /// No instance could be made to run it.
    #[error("unavailable: {message}")]
    Unavailable {
        /// Why.
        message: String,
    },
    /// The state it read (counters, labels) could not be reached.
    #[error("state unavailable: {message}")]
    State {
        /// Why.
        message: String,
    },
}

impl RuleError {
    /// A short stable name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            RuleError::OutOfFuel { .. } => "out_of_fuel",
            RuleError::Deadline { .. } => "deadline",
            RuleError::OutOfMemory { .. } => "out_of_memory",
            RuleError::StackOverflow => "stack_overflow",
            RuleError::Panic { .. } => "panic",
            RuleError::Trap { .. } => "trap",
            RuleError::HostCall { .. } => "host_call",
            RuleError::BadOutput { .. } => "bad_output",
            RuleError::Unavailable { .. } => "unavailable",
            RuleError::State { .. } => "state",
        }
    }
}

/// One rule's run on one event: the verdict or error, and what it cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleOutcome {
    /// The rule's name. Shared with the loaded rule: an outcome is made per
    /// rule per event, so it must not copy strings.
    pub rule: Arc<str>,
    /// The rule's own version string.
    pub version: Arc<str>,
    /// The sha256 of the wasm it was loaded from, in hex.
    pub sha256: Arc<str>,
    /// The verdict, or why there is none.
    pub result: Result<Verdict, RuleError>,
    /// Fuel consumed, including the instance reset after the call.
    pub fuel_used: u64,
    /// Wall-clock time of the call.
    #[serde(with = "duration_micros")]
    pub elapsed: Duration,
    /// What each hash-bank lookup of the call found, recorded by the
    /// engine rather than told by the rule: the evidence of a match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<MatchEvidence>,
}

mod duration_micros {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_micros() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_micros(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_contract_s_names() {
        for action in [
            Action::BlockAccount,
            Action::BanGroup,
            Action::LimitForwarding,
            Action::RemoveMedia,
            Action::ReportToClearinghouse,
        ] {
            assert_eq!(
                serde_json::to_value(action).unwrap(),
                action.name(),
                "{action:?}"
            );
        }
        for severity in [
            Severity::Allow,
            Severity::Review,
            Severity::Limit,
            Severity::Block,
        ] {
            assert_eq!(serde_json::to_value(severity).unwrap(), severity.name());
        }
    }
}
