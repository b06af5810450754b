//! What the engine concluded: fresh decisions by severity, the actions they
//! carry out, shadow decisions and disagreements, and the events answered
//! without a new decision (duplicates, refusals).
//!
//! Every label set is fixed and small, so each is an array of atomics
//! indexed by the enum: an observation is a handful of relaxed adds.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

use super::names::{ACTIONS, SEVERITIES, action_index, severity_index};
use crate::decision::Decision;

/// Why an event got no decision of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The event was malformed (`INVALID_ARGUMENT`, or an error result in
    /// a stream).
    Invalid,
    /// State (Redis) could not be reached and the state refuses events
    /// without it: the event's whole batch was answered `UNAVAILABLE`.
    StateUnavailable,
    /// The decision log could not keep the batch's decisions: the batch
    /// was answered `UNAVAILABLE`.
    LogUnavailable,
    /// A copy of an event whose first copy's decision never reached the
    /// log: the copy's batch was answered `UNAVAILABLE`.
    FirstCopyUnlogged,
    /// Its client was over its rate limit (`RESOURCE_EXHAUSTED`).
    RateLimited,
    /// Too many batches were waiting for a worker: the `Evaluate` call was
    /// shed (`RESOURCE_EXHAUSTED`).
    Shed,
}

impl Refusal {
    /// Every reason, in index order.
    pub const ALL: [Refusal; 6] = [
        Refusal::Invalid,
        Refusal::StateUnavailable,
        Refusal::LogUnavailable,
        Refusal::FirstCopyUnlogged,
        Refusal::RateLimited,
        Refusal::Shed,
    ];

    /// Its label value.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::Invalid => "invalid",
            Refusal::StateUnavailable => "state_unavailable",
            Refusal::LogUnavailable => "log_unavailable",
            Refusal::FirstCopyUnlogged => "first_copy_unlogged",
            Refusal::RateLimited => "rate_limited",
            Refusal::Shed => "shed",
        }
    }

    fn index(self) -> usize {
        match self {
            Refusal::Invalid => 0,
            Refusal::StateUnavailable => 1,
            Refusal::LogUnavailable => 2,
            Refusal::FirstCopyUnlogged => 3,
            Refusal::RateLimited => 4,
            Refusal::Shed => 5,
        }
    }
}

/// Decision counters.
#[derive(Debug, Default)]
pub(super) struct DecisionMetrics {
    decisions: [AtomicU64; SEVERITIES.len()],
    actions: [AtomicU64; ACTIONS.len()],
    shadow: [AtomicU64; SEVERITIES.len()],
    disagreements: AtomicU64,
    duplicates: AtomicU64,
    refused: [AtomicU64; Refusal::ALL.len()],
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl DecisionMetrics {
    /// Count one fresh decision.
    pub(super) fn observe(&self, decision: &Decision) {
        add(
            &self.decisions[severity_index(decision.outcome.severity)],
            1,
        );
        for action in &decision.outcome.actions {
            add(&self.actions[action_index(action.action)], 1);
        }
        if let Some(shadow) = &decision.shadow {
            add(&self.shadow[severity_index(shadow.outcome.severity)], 1);
            if shadow.differs {
                add(&self.disagreements, 1);
            }
        }
    }

    pub(super) fn duplicates(&self, n: u64) {
        add(&self.duplicates, n);
    }

    pub(super) fn refused(&self, reason: Refusal, n: u64) {
        add(&self.refused[reason.index()], n);
    }

    pub(super) fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let load = |counter: &AtomicU64| ConstCounter::new(counter.load(Ordering::Relaxed));
        let mut family = encoder.encode_descriptor(
            "decisions",
            "Decisions made and logged (each event once; duplicates and refusals not included), by live severity.",
            None,
            MetricType::Counter,
        )?;
        for (severity, count) in SEVERITIES.iter().zip(&self.decisions) {
            load(count).encode(family.encode_family(&[("severity", severity.name())])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "decision_actions",
            "Actions the decisions carry out, by action (one per action and entity).",
            None,
            MetricType::Counter,
        )?;
        for (action, count) in ACTIONS.iter().zip(&self.actions) {
            load(count).encode(family.encode_family(&[("action", action.name())])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "shadow_decisions",
            "Decisions with a shadow decision (a shadow rule subscribed), by shadow severity.",
            None,
            MetricType::Counter,
        )?;
        for (severity, count) in SEVERITIES.iter().zip(&self.shadow) {
            load(count).encode(family.encode_family(&[("severity", severity.name())])?)?;
        }
        let family = encoder.encode_descriptor(
            "shadow_disagreements",
            "Decisions whose shadow decision differs from the live one in severity or actions.",
            None,
            MetricType::Counter,
        )?;
        load(&self.disagreements).encode(family)?;
        let family = encoder.encode_descriptor(
            "duplicate_events",
            "Events whose id was seen before, answered with the first decision from memory.",
            None,
            MetricType::Counter,
        )?;
        load(&self.duplicates).encode(family)?;
        let mut family = encoder.encode_descriptor(
            "events_refused",
            "Events answered without a decision, by reason.",
            None,
            MetricType::Counter,
        )?;
        for (reason, count) in Refusal::ALL.iter().zip(&self.refused) {
            load(count).encode(family.encode_family(&[("reason", reason.name())])?)?;
        }
        Ok(())
    }
}
