//! What a backtest reports, as it is written to JSON and drawn in HTML.
//!
//! Everything here is a count or a ratio of counts over the replayed
//! history, in a fixed order (rule order, severity order, class names
//! sorted), so that the same input gives the same report byte for byte.
//! Times the run took are not part of it for the same reason.

use serde::{Deserialize, Serialize};

pub use crate::accuracy::{Confusion, Metrics, ratio};
use crate::verdict::Severity;

/// The version of this report's layout; readers check it.
pub const REPORT_FORMAT: u32 = 1;

/// Score bins of the score distributions: `[0, 0.05)`, `[0.05, 0.1)`, ...,
/// `[0.95, 1.0]`.
pub const SCORE_BINS: usize = 20;

/// A whole backtest: what was replayed, the candidate's results, and the
/// baseline's and the comparison when a baseline was given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BacktestReport {
    /// [`REPORT_FORMAT`].
    pub format: u32,
    /// The history replayed.
    pub input: InputSummary,
    /// The least decision severity counted as acting on an entity (a
    /// positive prediction).
    pub positive: Severity,
    /// The rule set and policy under test.
    pub candidate: RunReport,
    /// The rule set and policy it is compared with.
    pub baseline: Option<RunReport>,
    /// Where the two differ.
    pub comparison: Option<Comparison>,
}

/// The history a backtest replayed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputSummary {
    /// The input files, as given.
    pub sources: Vec<String>,
    /// sha256 of the events as replayed (in replay order), in hex: two
    /// reports with the same digest judged the same history.
    pub sha256: String,
    /// Events replayed.
    pub events: u64,
    /// Events whose id repeated an earlier one (given their first decision).
    pub duplicate_ids: u64,
    /// Events the engine refused as invalid (decided as allow).
    pub refused_events: u64,
    /// Events labelled abusive.
    pub abusive_events: u64,
    /// Entities judged (actors, and every entity the truth names).
    pub entities: u64,
    /// Entities labelled abusive.
    pub abusive_entities: u64,
    /// Event time of the first and the last event, in ms since the epoch.
    pub first_ms: i64,
    /// See `first_ms`.
    pub last_ms: i64,
    /// Events by truth class, sorted by class name.
    pub classes: Vec<ClassCount>,
}

/// How many events carry one truth class.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCount {
    /// The class (`abusive` or `benign` when the input names none).
    pub class: String,
    /// Whether the class is abusive.
    pub abusive: bool,
    /// Events of the class.
    pub events: u64,
}

/// The outcome of replaying the history through one rule set and policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The rule builds, in rule-set order.
    pub rules: Vec<RuleBuild>,
    /// The policy's version.
    pub policy_version: String,
    /// Decisions by severity: allow, review, limit, block.
    pub severities: [u64; 4],
    /// Each event's decision against its label, at the positive severity.
    pub events: Metrics,
    /// Each entity against its label: flagged when a decision at the
    /// positive severity carried an action on it.
    pub entities: Metrics,
    /// Events and entities at each severity that acts or asks for a look:
    /// review, limit, block.
    pub by_severity: Vec<SeverityMetrics>,
    /// Precision and recall of events as the score threshold varies.
    pub pr_curve: Vec<CurvePoint>,
    /// Event scores by truth class: [`SCORE_BINS`] counts each.
    pub score_distributions: Vec<ScoreDistribution>,
    /// Each truth class: how many of its events and entities were acted on.
    pub classes: Vec<ClassOutcome>,
    /// Each rule on its own, in rule-set order.
    pub rule_stats: Vec<RuleStats>,
    /// `overlaps[i][j]`: events on which rules `i` and `j` both fired
    /// (the diagonal is each rule's own fires).
    pub overlaps: Vec<Vec<u64>>,
}

/// One rule build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleBuild {
    /// Its name.
    pub name: String,
    /// Its version string.
    pub version: String,
    /// The sha256 of its wasm.
    pub sha256: String,
}

/// Events and entities judged at one severity.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeverityMetrics {
    /// Decisions at this severity or above count as positive.
    pub severity: Severity,
    /// Events.
    pub events: Metrics,
    /// Entities.
    pub entities: Metrics,
}

/// One point of a precision/recall curve: events whose decision scored at
/// least `threshold` count as positive.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// The score threshold.
    pub threshold: f64,
    /// The counts at it.
    pub confusion: Confusion,
    /// Precision at it.
    pub precision: f64,
    /// Recall at it.
    pub recall: f64,
}

/// How the event scores of one class are distributed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreDistribution {
    /// The truth class.
    pub class: String,
    /// Whether it is abusive.
    pub abusive: bool,
    /// Events per score bin ([`SCORE_BINS`] of them).
    pub bins: Vec<u64>,
}

/// How one truth class was treated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassOutcome {
    /// The class.
    pub class: String,
    /// Whether it is abusive.
    pub abusive: bool,
    /// Its events.
    pub events: u64,
    /// Of those, decided at the positive severity or above.
    pub events_acted: u64,
    /// Its entities.
    pub entities: u64,
    /// Of those, acted on.
    pub entities_acted: u64,
}

/// What one rule did on its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleStats {
    /// The rule.
    pub name: String,
    /// Events routed to it (called, or skipped by its guards).
    pub events: u64,
    /// Events it fired on (said more than allow).
    pub fired: u64,
    /// Fires per event routed to it.
    pub fire_rate: f64,
    /// Of its fires, on events labelled abusive.
    pub fired_on_abusive: u64,
    /// Its fires against the event labels.
    pub events_metrics: Metrics,
    /// Calls that produced no verdict.
    pub errors: u64,
    /// Verdicts by severity: allow, review, limit, block.
    pub verdicts: [u64; 4],
    /// Events on which it was the only rule to fire.
    pub fired_alone: u64,
}

/// Where the candidate and the baseline differ.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Events whose severity or actions differ.
    pub events_differ: u64,
    /// `severity_matrix[c][b]`: events the candidate decided at severity `c`
    /// and the baseline at `b` (allow, review, limit, block).
    pub severity_matrix: [[u64; 4]; 4],
    /// Entities only the candidate acted on.
    pub candidate_only: EntitySplit,
    /// Entities only the baseline acted on.
    pub baseline_only: EntitySplit,
    /// The most telling disagreements: the largest severity gaps first,
    /// then the earliest.
    pub top_disagreements: Vec<Disagreement>,
}

/// Entities by their label.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntitySplit {
    /// Labelled abusive.
    pub abusive: u64,
    /// Labelled benign.
    pub benign: u64,
}

/// One event the candidate and the baseline decided differently.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Disagreement {
    /// The event's id.
    pub event_id: String,
    /// Its kind.
    pub kind: String,
    /// Its actor (`account:<id>` or `group:<id>`).
    pub actor: String,
    /// When it happened, in ms since the epoch.
    pub occurred_at_ms: i64,
    /// Its truth class.
    pub class: String,
    /// Whether it is labelled abusive.
    pub abusive: bool,
    /// The candidate's decision.
    pub candidate: Side,
    /// The baseline's decision.
    pub baseline: Side,
}

/// One side's decision in a disagreement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Side {
    /// The severity.
    pub severity: Severity,
    /// The combined score.
    pub score: f64,
    /// The rules that fired.
    pub fired: Vec<String>,
    /// The actions, as `action entity`.
    pub actions: Vec<String>,
}

/// A severity as reports spell it.
pub fn severity_name(severity: Severity) -> &'static str {
    severity.name()
}
