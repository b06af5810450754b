//! Replaying a history through one rule set and policy: a fresh pipeline
//! (empty state, no idempotency memory carried in), the events one by one
//! in event-time order on one thread, and for each event only what scoring
//! needs, kept compact so that millions of events fit.

use std::sync::Arc;

use crate::banks::HashBanks;
use crate::decision::{Decision, EnforcementAction};
use crate::pipeline::{Pipeline, PipelineError, PipelineOptions};
use crate::policy::Policy;
use crate::rule::Rule;
use crate::verdict::Severity;

use super::chunks::Chunks;
use super::report::RuleBuild;

/// A rule set and the policy it runs under.
#[derive(Clone)]
pub struct RuleSetUnderTest {
    /// The rules.
    pub rules: Vec<Arc<dyn Rule>>,
    /// The policy.
    pub policy: Policy,
}

/// What one rule said about one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fired {
    /// The rule's index in [`Replay::rules`].
    pub rule: u16,
    /// The severity it said.
    pub severity: Severity,
}

/// The part of one decision that scoring reads.
#[derive(Clone, Debug, PartialEq)]
pub struct Decided {
    /// The live severity.
    pub severity: Severity,
    /// The combined score.
    pub score: f64,
    /// The actions carried out.
    pub actions: Vec<EnforcementAction>,
    /// The rules that fired, in rule order.
    pub fired: Vec<Fired>,
    /// Whether the event's id repeated an earlier event's.
    pub duplicate: bool,
}

/// What each rule did over the whole replay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleCounts {
    /// Events routed to it.
    pub events: u64,
    /// Calls without a verdict.
    pub errors: u64,
    /// Verdicts by severity.
    pub verdicts: [u64; 4],
}

/// A whole replay.
pub struct Replay {
    /// The rule builds, in rule-set order.
    pub rules: Vec<RuleBuild>,
    /// The policy's version.
    pub policy_version: String,
    /// One entry per event, in replay order.
    pub decided: Vec<Decided>,
    /// Per rule, in rule order.
    pub counts: Vec<RuleCounts>,
    /// Events the pipeline refused as invalid.
    pub refused: u64,
    /// The first refusal, for the operator: the event id and why.
    pub first_refusal: Option<String>,
}

/// Replay the events of `chunks` through `set`, telling `progress` of the
/// events done every so often.
///
/// The events come from `chunks`, in order, as they are parsed. A chunk
/// that failed to parse ends the replay early; the caller reports the
/// failure and drops the replay.
pub fn replay(
    set: &RuleSetUnderTest,
    banks: &HashBanks,
    chunks: &Chunks,
    progress: &super::Progress<'_>,
) -> Result<Replay, PipelineError> {
    let options = PipelineOptions {
        banks: banks.clone(),
        // History is replayed at its own times, however far from now.
        max_future_skew_ms: None,
        // A history may repeat ids on purpose; remember them all.
        idempotency_max_remembered: chunks.events().max(1),
        idempotency_retention_ms: i64::MAX / 4,
        // The backtest scores decisions itself.
        keep_reports: false,
        ..PipelineOptions::default()
    };
    let pipeline = Pipeline::new(set.rules.clone(), set.policy.clone(), options)?;
    let snapshot = pipeline.snapshot();
    let rules: Vec<RuleBuild> = snapshot
        .rules()
        .active_rules()
        .map(|rule| RuleBuild {
            name: rule.name().to_owned(),
            version: rule.manifest().version.clone(),
            sha256: rule.sha256().to_owned(),
        })
        .collect();
    let index_of = |name: &str| rules.iter().position(|r| r.name == name);
    let mut counts = vec![RuleCounts::default(); rules.len()];
    let mut decided = Vec::with_capacity(chunks.events());
    let (mut refused, mut first_refusal) = (0, None);
    let events = (0..chunks.len())
        .map_while(|at| chunks.get(at))
        .flat_map(|chunk| (0..chunk.len()).map(move |n| chunk[n].clone()));
    for (n, event) in events.enumerate() {
        let evaluation = match pipeline.evaluate_shared(event.clone()) {
            Ok(evaluation) => evaluation,
            // Refused events are decided as nothing: the report counts
            // them among the allowed, as the live engine would have
            // refused and so not acted on them.
            Err(invalid) => {
                refused += 1;
                first_refusal.get_or_insert_with(|| format!("event {}: {invalid}", event.id));
                decided.push(Decided {
                    severity: Severity::Allow,
                    score: 0.0,
                    actions: Vec::new(),
                    fired: Vec::new(),
                    duplicate: false,
                });
                continue;
            }
        };
        let decision: &Decision = &evaluation.decision;
        let mut fired = Vec::new();
        if !evaluation.duplicate {
            for report in &decision.rules {
                let Some(index) = index_of(&report.rule) else {
                    continue;
                };
                let count = &mut counts[index];
                count.events += 1;
                count.errors += u64::from(report.error.is_some());
                count.verdicts[report.severity as usize] += 1;
                if report.fired() {
                    fired.push(Fired {
                        rule: index as u16,
                        severity: report.severity,
                    });
                }
            }
        }
        decided.push(Decided {
            severity: decision.outcome.severity,
            score: decision.outcome.score,
            actions: decision.outcome.actions.clone(),
            fired,
            duplicate: evaluation.duplicate,
        });
        if n % 8192 == 8191 {
            progress(8192, chunks.events() as u64);
        }
    }
    progress(decided.len() as u64 % 8192, chunks.events() as u64);
    Ok(Replay {
        rules,
        policy_version: snapshot.policy().version.clone(),
        decided,
        counts,
        refused,
        first_refusal,
    })
}
