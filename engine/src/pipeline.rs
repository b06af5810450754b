//! The pipeline: one event in, one decision out.
//!
//! For each event: check it, claim its id (a repeat gets its first
//! decision), count it into the behaviour state, and for every rule
//! subscribed to its kind that the policy does not disable, check the rule's
//! guards and call it if one holds. Then combine the live rules' verdicts
//! into the decision and all of them into the shadow decision, apply the
//! live rules' label effects, and remember the decision.
//!
//! Shadow rules change nothing live: their verdicts reach only the shadow
//! decision, their effects are only listed, and the counters only they
//! declare are kept in a store of their own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::combine::combine;
use crate::decision::{
    Decision, EnforcementAction, LabelChange, RuleReport, ShadowDecision, resolve_subject,
};
use crate::event::{Event, InvalidEvent, Value};
use crate::idempotency::{Claim, DEFAULT_MAX_REMEMBERED, DEFAULT_RETENTION_MS, SeenEvents};
use crate::manifest::{CounterKey, Guard};
use crate::policy::{FailureMode, Mode, Policy, PolicyError, RulePolicy};
use crate::router::{DuplicateRule, RuleSet};
use crate::rule::Rule;
use crate::state::memory::{DEFAULT_LATENESS_SECONDS, label_expiry_ms};
use crate::state::{
    CounterCatalog, CounterId, CounterStores, HashBanks, MemoryState, RuleStateView, SharedCounter,
    StateView,
};
use crate::verdict::{Effect, RuleOutcome, Severity};

/// How far ahead of the engine's clock an event may be dated by default:
/// clients' clocks drift, but not by this much.
pub const DEFAULT_MAX_FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;

/// Settings of a pipeline beyond its rules and policy.
#[derive(Clone, Debug)]
pub struct PipelineOptions {
    /// The hash banks rules match against.
    pub banks: HashBanks,
    /// How long (in event time) a repeated event id gets its first decision.
    pub idempotency_retention_ms: i64,
    /// At most this many event ids are remembered (the oldest go first).
    pub idempotency_max_remembered: usize,
    /// How late an event may be and still be counted exactly.
    pub lateness_seconds: u32,
    /// Reclaim aged-out state every this many events, inline on the
    /// evaluation that reaches the count. `None`: the embedder calls
    /// [`Pipeline::sweep`] itself (the server does, on a background task,
    /// so that no request waits for a sweep).
    pub sweep_every_events: Option<u64>,
    /// Refuse events dated more than this far ahead of the engine's clock
    /// (`None`: no limit, for replaying synthetic traffic). State is kept by
    /// event time, so one event dated years ahead would otherwise age every
    /// counter and label out at the next sweep.
    pub max_future_skew_ms: Option<i64>,
    /// Skip a rule when none of its guards holds (the default). Off, every
    /// subscribed rule is called: to measure what the sandbox costs, or to
    /// check on real traffic that a rule's guards match its logic.
    pub honour_guards: bool,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            banks: HashBanks::new(),
            idempotency_retention_ms: DEFAULT_RETENTION_MS,
            idempotency_max_remembered: DEFAULT_MAX_REMEMBERED,
            lateness_seconds: DEFAULT_LATENESS_SECONDS,
            sweep_every_events: Some(100_000),
            honour_guards: true,
            max_future_skew_ms: Some(DEFAULT_MAX_FUTURE_SKEW_MS),
        }
    }
}

/// Why a pipeline cannot be built from these rules and this policy.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Two rules share a name.
    #[error(transparent)]
    DuplicateRule(#[from] DuplicateRule),
    /// The policy does not fit the rules.
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// A decision, and whether it was made earlier for the same event id.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// The decision.
    pub decision: Arc<Decision>,
    /// True when the event id was seen before: nothing was evaluated or
    /// counted again, and this is the first decision.
    pub duplicate: bool,
}

/// A rule with its part under the policy, its view of the state, and its
/// identity as reports name it (shared, so a report copies no strings).
struct Participant {
    policy: RulePolicy,
    view: Arc<dyn StateView>,
    name: Arc<str>,
    version: Arc<str>,
    sha256: Arc<str>,
}

/// Rules, policy and state, ready to decide events. Shared across threads.
pub struct Pipeline {
    rules: RuleSet,
    participants: Vec<Participant>,
    policy: Arc<Policy>,
    policy_version: Arc<str>,
    catalog: CounterCatalog,
    stores: CounterStores,
    seen: SeenEvents,
    sweep_every_events: Option<u64>,
    honour_guards: bool,
    max_future_skew_ms: Option<i64>,
    events: AtomicU64,
    /// Held while a sweep runs, so that sweeps never overlap.
    sweeping: Mutex<()>,
}

impl Pipeline {
    /// Build a pipeline: declare every counter the policy and the enabled
    /// rules need, and give each rule its view of the state.
    pub fn new(
        rules: Vec<Arc<dyn Rule>>,
        policy: Policy,
        options: PipelineOptions,
    ) -> Result<Self, PipelineError> {
        let rules = RuleSet::new(rules)?;
        policy.check_rules(rules.rules().iter().map(|r| r.name()))?;

        // Live counters first, so that the shadow-only ones get the ids
        // above them and a store of their own.
        let mut catalog = CounterCatalog::new();
        for (spec, _) in &policy.counters {
            catalog.declare(spec);
        }
        let modes: Vec<Mode> = rules
            .rules()
            .iter()
            .map(|rule| policy.for_rule(rule.name()).mode)
            .collect();
        let mut counter_ids: Vec<Vec<(String, CounterId)>> = vec![Vec::new(); modes.len()];
        for (index, rule) in rules.rules().iter().enumerate() {
            if modes[index] == Mode::Enforce {
                for spec in &rule.manifest().counters {
                    let id = catalog.declare(spec);
                    counter_ids[index].push((spec.name.clone(), id));
                }
            }
        }
        let shadow_from = CounterId(catalog.len() as u32);
        for (index, rule) in rules.rules().iter().enumerate() {
            if modes[index] == Mode::Shadow {
                for spec in &rule.manifest().counters {
                    let id = catalog.declare_shadow(spec);
                    counter_ids[index].push((spec.name.clone(), id));
                }
            }
        }
        let stores = CounterStores {
            live: Arc::new(MemoryState::with_lateness(options.lateness_seconds)),
            shadow: Arc::new(MemoryState::with_lateness(options.lateness_seconds)),
            shadow_from,
        };

        let shared: Arc<[SharedCounter]> = policy
            .counters
            .iter()
            .map(|(spec, _)| SharedCounter {
                name: spec.name.clone(),
                id: catalog.resolve(spec).expect("declared above"),
                window_seconds: spec.window_seconds,
            })
            .collect();
        let banks = Arc::new(options.banks);
        let participants = rules
            .rules()
            .iter()
            .zip(counter_ids)
            .map(|(rule, counters)| {
                let view =
                    RuleStateView::new(stores.clone(), banks.clone(), counters, shared.clone());
                Participant {
                    policy: policy.for_rule(rule.name()),
                    view: Arc::new(view),
                    name: Arc::from(rule.name()),
                    version: Arc::from(rule.manifest().version.as_str()),
                    sha256: Arc::from(rule.sha256()),
                }
            })
            .collect();

        Ok(Pipeline {
            rules,
            participants,
            policy_version: Arc::from(policy.version.as_str()),
            policy: Arc::new(policy),
            catalog,
            stores,
            seen: SeenEvents::new(
                options.idempotency_retention_ms,
                options.idempotency_max_remembered,
            ),
            sweep_every_events: options.sweep_every_events.map(|n| n.max(1)),
            honour_guards: options.honour_guards,
            max_future_skew_ms: options.max_future_skew_ms,
            sweeping: Mutex::new(()),
            events: AtomicU64::new(0),
        })
    }

    /// Decide one event.
    pub fn evaluate(&self, event: Event) -> Result<Evaluation, InvalidEvent> {
        event.validate()?;
        if let Some(skew) = self.max_future_skew_ms {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            if event.occurred_at_ms > now.saturating_add(skew) {
                return Err(InvalidEvent {
                    field: "occurred_at".into(),
                    message: format!(
                        "is {} s ahead of the engine's clock; at most {} s is accepted",
                        (event.occurred_at_ms - now) / 1000,
                        skew / 1000
                    ),
                });
            }
        }
        let event = Arc::new(event);
        let guard = match self.seen.claim(&event.id, event.occurred_at_ms) {
            Claim::Seen(decision) => {
                return Ok(Evaluation {
                    decision,
                    duplicate: true,
                });
            }
            Claim::New(guard) => guard,
        };
        let decision = Arc::new(self.decide(&event));
        guard.complete(decision.clone());
        self.maybe_sweep();
        Ok(Evaluation {
            decision,
            duplicate: false,
        })
    }

    fn decide(&self, event: &Arc<Event>) -> Decision {
        let stores = &self.stores;
        stores
            .live
            .record_counters(event, &self.catalog, CounterId(0)..stores.shadow_from);
        if stores.shadow_from.0 < self.catalog.len() as u32 {
            stores.shadow.record_counters(
                event,
                &self.catalog,
                stores.shadow_from..CounterId(u32::MAX),
            );
        }

        let mut reports = Vec::new();
        // Most verdicts ask for no effects: collect only those that do.
        let mut live_effects = Vec::new();
        let mut shadow_effects = Vec::new();
        let mut shadow_ran = false;
        for index in self.rules.subscriber_indices(&event.kind) {
            let participant = &self.participants[index];
            if participant.policy.mode == Mode::Disabled {
                continue;
            }
            let rule = &self.rules.rules()[index];
            let guards = &rule.manifest().guards;
            shadow_ran |= participant.policy.mode == Mode::Shadow;
            if self.honour_guards && !guards_admit(guards, event, &*participant.view) {
                reports.push(skipped(participant));
                continue;
            }
            let outcome = rule.evaluate(event, &participant.view);
            let (report, effects) = report(outcome, participant.policy, event);
            let live = report.mode == Mode::Enforce;
            if !effects.is_empty() {
                let list = if live {
                    &mut live_effects
                } else {
                    &mut shadow_effects
                };
                list.push((report.rule.clone(), effects));
            }
            reports.push(report);
        }

        let live = combine(
            &self.policy,
            reports.iter().filter(|r| r.mode == Mode::Enforce),
        );
        let label_changes = self.apply(live_effects, event, true);
        let shadow = shadow_ran.then(|| {
            let outcome = combine(&self.policy, &reports);
            ShadowDecision {
                differs: outcome.severity != live.severity || outcome.actions != live.actions,
                outcome,
                label_changes: self.apply(shadow_effects, event, false),
            }
        });

        Decision {
            id: Decision::id_for(&event.id),
            event: event.clone(),
            outcome: live,
            rules: reports,
            label_changes,
            shadow,
            policy_version: self.policy_version.clone(),
        }
    }

    /// Resolve the effects rules asked for into label changes, and make
    /// them in the live store when `commit` (live rules only).
    fn apply(
        &self,
        effects: Vec<(Arc<str>, Vec<Effect>)>,
        event: &Event,
        commit: bool,
    ) -> Vec<LabelChange> {
        let live = &self.stores.live;
        let at = event.occurred_at_ms;
        let mut changes = Vec::new();
        for (rule, effects) in effects {
            for effect in effects {
                let change = match effect {
                    Effect::SetLabel {
                        subject,
                        label,
                        ttl_seconds,
                    } => {
                        let Some(entity) = resolve_subject(&subject, event) else {
                            continue;
                        };
                        let expires_at_ms = label_expiry_ms(at, ttl_seconds);
                        if commit {
                            live.set_label(&entity, &label, at, ttl_seconds);
                        }
                        LabelChange::Set {
                            entity,
                            label,
                            expires_at_ms,
                            rule: rule.clone(),
                        }
                    }
                    Effect::ClearLabel { subject, label } => {
                        let Some(entity) = resolve_subject(&subject, event) else {
                            continue;
                        };
                        if commit {
                            live.clear_label(&entity, &label, at);
                        }
                        LabelChange::Clear {
                            entity,
                            label,
                            rule: rule.clone(),
                        }
                    }
                };
                changes.push(change);
            }
        }
        changes
    }

    fn maybe_sweep(&self) {
        // With no inline sweeps (the server sweeps in the background), the
        // shared event count is not touched at all.
        let Some(every) = self.sweep_every_events else {
            return;
        };
        let n = self.events.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(every) {
            self.sweep();
        }
    }

    /// Reclaim aged-out counters, expired labels and old event ids now. If a
    /// sweep is already running, this one is skipped.
    pub fn sweep(&self) {
        let Ok(_sweeping) = self.sweeping.try_lock() else {
            return;
        };
        self.stores.live.sweep(&self.catalog);
        self.stores.shadow.sweep(&self.catalog);
        if let Some(watermark) = self.stores.live.watermark_ms() {
            self.seen.sweep(watermark);
        }
    }

    /// The live state: counters of live rules and the policy, and labels.
    pub fn live_state(&self) -> &MemoryState {
        &self.stores.live
    }

    /// The counters only shadow rules read.
    pub fn shadow_state(&self) -> &MemoryState {
        &self.stores.shadow
    }

    /// The counters kept.
    pub fn catalog(&self) -> &CounterCatalog {
        &self.catalog
    }

    /// The rule set.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// How many event ids are remembered for idempotency.
    pub fn remembered_events(&self) -> usize {
        self.seen.len()
    }
}

/// Whether at least one of a rule's guards holds (true when it has none):
/// whether the rule is worth calling on this event.
fn guards_admit(guards: &[Guard], event: &Event, state: &dyn StateView) -> bool {
    let int = |name: &str| match event.attribute(name) {
        Some(Value::Int(v)) => Some(*v),
        _ => None,
    };
    guards.is_empty()
        || guards.iter().any(|guard| match guard {
            Guard::IntAtLeast(name, value) => int(name).is_some_and(|v| v >= *value),
            Guard::IntBelow(name, value) => int(name).is_some_and(|v| v < *value),
            Guard::FloatAtLeast(name, value) => {
                matches!(event.attribute(name), Some(Value::Float(v)) if *v >= *value)
            }
            Guard::CounterAtLeast {
                counter,
                subject,
                window_seconds,
                value,
            } => {
                let entity = match subject {
                    CounterKey::Actor => Some(&event.actor),
                    CounterKey::Target => event.target.as_ref(),
                };
                // A counter the state cannot read admits the call, so the
                // rule meets the failure itself and it is reported.
                entity.is_none_or(|entity| {
                    state
                        .counter(entity, counter, *window_seconds, event.occurred_at_ms)
                        .map_or(true, |v| v >= *value)
                })
            }
        })
}

/// A report of an allow at no cost, under the rule's part in the policy:
/// what a skipped rule reports, and what a called rule's report starts as.
fn quiet_report(
    (rule, version, sha256): (Arc<str>, Arc<str>, Arc<str>),
    policy: RulePolicy,
) -> RuleReport {
    RuleReport {
        rule,
        version,
        sha256,
        mode: policy.mode,
        weight: policy.weight,
        veto: policy.veto,
        severity: Severity::Allow,
        score: 0.0,
        reasons: Vec::new(),
        actions: Vec::new(),
        fuel_used: 0,
        elapsed_us: 0,
        error: None,
        failed_closed: false,
        skipped: false,
    }
}

/// The report of a rule skipped because none of its guards held.
fn skipped(participant: &Participant) -> RuleReport {
    let identity = (
        participant.name.clone(),
        participant.version.clone(),
        participant.sha256.clone(),
    );
    RuleReport {
        skipped: true,
        ..quiet_report(identity, participant.policy)
    }
}

/// A rule's outcome as the decision reports it, and the effects it asked for.
fn report(outcome: RuleOutcome, policy: RulePolicy, event: &Event) -> (RuleReport, Vec<Effect>) {
    let RuleOutcome {
        rule,
        version,
        sha256,
        result,
        fuel_used,
        elapsed,
    } = outcome;
    let mut report = RuleReport {
        fuel_used,
        elapsed_us: elapsed.as_micros() as u64,
        ..quiet_report((rule, version, sha256), policy)
    };
    let effects = match result {
        Ok(verdict) => {
            report.severity = verdict.severity;
            report.score = verdict.score;
            report.reasons = verdict.reasons;
            // A verdict recommends a handful of actions: a scan dedups them.
            for recommended in &verdict.actions {
                let Some(entity) = resolve_subject(&recommended.subject, event) else {
                    continue;
                };
                let action = EnforcementAction {
                    action: recommended.action,
                    entity,
                };
                if !report.actions.contains(&action) {
                    report.actions.push(action);
                }
            }
            verdict.effects
        }
        Err(error) => {
            report.failed_closed = policy.failure == FailureMode::Closed;
            report.error = Some(error);
            Vec::new()
        }
    };
    (report, effects)
}
