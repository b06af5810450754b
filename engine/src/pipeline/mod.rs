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
//!
//! The rules and policy form an immutable [`Snapshot`], replaced atomically
//! by [`Pipeline::deploy`]: each evaluation holds the snapshot it started
//! with, so a swap never fails, drops or doubles one, and each decision
//! names exactly one build of each rule that ran. A rule may run two
//! versions: its active one and a candidate, either beside it in shadow or
//! in its place for a stable slice of actors (a rollout). The state, the
//! event ids seen and each version's running costs outlive snapshots.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use dashmap::DashMap;

use crate::banks::{BankStore, HashBanks};
use crate::combine::combine;
use crate::decision::{
    Decision, EnforcementAction, LabelChange, RuleReport, ShadowDecision, resolve_subject,
};
use crate::deployment::{
    Deployment, RuleDeployment, Stage, VersionCounts, VersionStats, in_rollout,
};
use crate::event::{Event, InvalidEvent, Value};
use crate::ground_truth::{BookLimits, GroundTruthBook};
use crate::idempotency::{Claim, DEFAULT_MAX_REMEMBERED, DEFAULT_RETENTION_MS, SeenEvents};
use crate::manifest::{CounterKey, Guard};
use crate::policy::{FailureMode, Mode, Policy, PolicyError, RulePolicy};
use crate::router::{RuleSet, RuleSetError, wants};
use crate::rule::Rule;
use crate::shadow_report::{ShadowLedger, ShadowReport};
use crate::state::catalog::SHADOW_COUNTER_BASE;
use crate::state::memory::{DEFAULT_LATENESS_SECONDS, label_expiry_ms};
use crate::state::{
    CounterCatalog, CounterId, CounterStores, MemoryState, RedisState, RuleStateView,
    SharedCounter, StateBackend, StateError, StateView,
};
use crate::verdict::{Effect, RuleError, RuleOutcome, Severity};

mod recovery;

pub use crate::state::CountStamps;
pub use recovery::{RestoredStamps, StateImages};

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
    /// Minutes of event time the shadow report's tallies are kept, and
    /// the ground-truth book's marks of what decisions concluded.
    pub shadow_report_minutes: i64,
    /// Entities the ground-truth book keeps conclusions about (the one
    /// whose last decision is oldest is dropped first).
    pub ground_truth_entities: usize,
    /// Ground-truth labels kept about entities, and as many about event
    /// ids (the oldest written is dropped first).
    pub ground_truth_labels: usize,
    /// Skip a rule when none of its guards holds (the default). Off, every
    /// subscribed rule is called: to measure what the sandbox costs, or to
    /// check on real traffic that a rule's guards match its logic.
    pub honour_guards: bool,
    /// Tally every decision for the shadow report and the ground-truth
    /// book (the default). A backtest, which scores its decisions itself,
    /// turns this off and saves the cost.
    pub keep_reports: bool,
    /// Keep counters and labels in this Redis, shared with every engine
    /// node that uses it, instead of in memory.
    pub redis: Option<Arc<RedisState>>,
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
            keep_reports: true,
            max_future_skew_ms: Some(DEFAULT_MAX_FUTURE_SKEW_MS),
            shadow_report_minutes: crate::shadow_report::DEFAULT_RETENTION_MINUTES,
            ground_truth_entities: crate::ground_truth::DEFAULT_MAX_ENTITIES,
            ground_truth_labels: crate::ground_truth::DEFAULT_MAX_TRUTHS,
            redis: None,
        }
    }
}

/// Why a pipeline cannot be built from these rules and this policy.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Two rules share a name, or a rule's versions disagree on it.
    #[error(transparent)]
    RuleSet(#[from] RuleSetError),
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
    /// The stamps counting the event took (none for a duplicate): what a
    /// durable log keeps beside the decision so that a recovery counts it
    /// exactly once (see [`crate::state::image`]).
    pub stamps: CountStamps,
}

/// Why an event was not decided.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EvaluateError {
    /// The event is malformed: the field and what is wrong with it.
    #[error(transparent)]
    Invalid(#[from] InvalidEvent),
    /// The state could not be read or updated, and the state's settings
    /// say to decide nothing without it. The event's id is forgotten, so a
    /// retry is decided afresh (counting is idempotent by event id: it
    /// counts once).
    #[error("{0}; the event was not decided, retry it")]
    StateUnavailable(String),
}

/// One version of a rule with its part under the policy, its view of the
/// state, its identity as reports name it (shared, so a report copies no
/// strings) and its running costs.
struct Participant {
    rule: Arc<dyn Rule>,
    policy: RulePolicy,
    view: Arc<dyn StateView>,
    name: Arc<str>,
    version: Arc<str>,
    sha256: Arc<str>,
    stats: Arc<VersionStats>,
    /// A candidate version, as reports mark it.
    candidate: bool,
}

/// The participants of one deployed rule.
struct Slot {
    active: Option<Participant>,
    candidate: Option<(Participant, Stage)>,
}

/// What one published rule set decides with: immutable, and held by each
/// evaluation from its start to its end, so that a swap never changes the
/// rules halfway through an event.
pub struct Snapshot {
    rules: RuleSet,
    slots: Vec<Slot>,
    policy: Arc<Policy>,
    policy_version: Arc<str>,
    catalog: Arc<CounterCatalog>,
}

impl Snapshot {
    /// The deployed rules.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The counters kept.
    pub fn catalog(&self) -> &CounterCatalog {
        &self.catalog
    }
}

/// What outlives every snapshot: the behaviour state, the event ids seen,
/// the hash banks and each version's running costs.
struct Shared {
    state: StateBackend,
    banks: Arc<BankStore>,
    seen: SeenEvents,
    stats: DashMap<Arc<str>, Arc<VersionStats>, foldhash::fast::RandomState>,
    /// Every decision tallied for shadow reports.
    ledger: ShadowLedger,
    /// Ground truth, and what every decision concluded about whom.
    book: GroundTruthBook,
    sweep_every_events: Option<u64>,
    honour_guards: bool,
    keep_reports: bool,
    max_future_skew_ms: Option<i64>,
    events: AtomicU64,
    /// Held while a sweep runs, so that sweeps never overlap.
    sweeping: Mutex<()>,
}

/// Rules, policy and state, ready to decide events. Shared across threads.
/// The rules and policy are a [`Snapshot`] replaced atomically by
/// [`Pipeline::deploy`]; the state carries over.
pub struct Pipeline {
    snapshot: ArcSwap<Snapshot>,
    shared: Shared,
    /// Serialises deployments, so that each builds on the one before.
    deploying: Mutex<()>,
}

impl Pipeline {
    /// Build a pipeline with these rules, each active, under `policy`.
    pub fn new(
        rules: Vec<Arc<dyn Rule>>,
        policy: Policy,
        options: PipelineOptions,
    ) -> Result<Self, PipelineError> {
        let deployment = Deployment {
            rules: rules.into_iter().map(RuleDeployment::active).collect(),
            policy,
        };
        Self::with_deployment(deployment, options)
    }

    /// Build a pipeline that runs `deployment`.
    pub fn with_deployment(
        deployment: Deployment,
        options: PipelineOptions,
    ) -> Result<Self, PipelineError> {
        let shared = Shared {
            state: match options.redis {
                Some(redis) => StateBackend::Redis(redis),
                None => StateBackend::Memory(CounterStores {
                    live: Arc::new(MemoryState::with_lateness(options.lateness_seconds)),
                    shadow: Arc::new(MemoryState::with_lateness(options.lateness_seconds)),
                    shadow_from: SHADOW_COUNTER_BASE,
                }),
            },
            banks: Arc::new(BankStore::new(options.banks)),
            seen: SeenEvents::new(
                options.idempotency_retention_ms,
                options.idempotency_max_remembered,
            ),
            stats: DashMap::default(),
            ledger: ShadowLedger::new(options.shadow_report_minutes),
            book: GroundTruthBook::new(BookLimits {
                retention_minutes: options.shadow_report_minutes,
                max_entities: options.ground_truth_entities,
                max_truths: options.ground_truth_labels,
            }),
            sweep_every_events: options.sweep_every_events.map(|n| n.max(1)),
            honour_guards: options.honour_guards,
            keep_reports: options.keep_reports,
            max_future_skew_ms: options.max_future_skew_ms,
            events: AtomicU64::new(0),
            sweeping: Mutex::new(()),
        };
        let snapshot = shared.build(deployment, &CounterCatalog::new())?;
        Ok(Pipeline {
            snapshot: ArcSwap::from_pointee(snapshot),
            shared,
            deploying: Mutex::new(()),
        })
    }

    /// Replace the rules and policy with `deployment`, atomically: an
    /// evaluation already under way finishes with the snapshot it started
    /// with, and every later one sees the new one. Counters a new version
    /// declares in the same shape as before keep their history. On error
    /// nothing changes.
    pub fn deploy(&self, deployment: Deployment) -> Result<(), PipelineError> {
        let _one_at_a_time = self.deploying.lock().unwrap_or_else(|e| e.into_inner());
        let previous = self.snapshot.load_full();
        let next = Arc::new(self.shared.build(deployment, &previous.catalog)?);
        self.snapshot.store(next.clone());
        // A counter only shadow rules kept, now kept live (its rule was
        // promoted): its history moves over, so the promoted rule does not
        // start blind. From the swap on, events count into the live id
        // only, so merging what the shadow id holds counts every event
        // once (bar one still being evaluated under the old snapshot
        // exactly as the history is copied).
        self.shared
            .state
            .promote_counters(&previous.catalog, &next.catalog);
        Ok(())
    }

    /// The hash banks rules match against, changed live through them.
    pub fn banks(&self) -> &Arc<BankStore> {
        &self.shared.banks
    }

    /// The snapshot evaluations start with now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// What the version built as `sha256` has cost so far, if it ever ran.
    pub fn version_counts(&self, sha256: &str) -> Option<VersionCounts> {
        self.shared.stats.get(sha256).map(|stats| stats.read())
    }

    /// Decide one event.
    pub fn evaluate(&self, event: Event) -> Result<Evaluation, EvaluateError> {
        self.evaluate_shared(Arc::new(event))
    }

    /// Decide one event that others hold too (a replay hands the same
    /// events to several pipelines without copying them).
    pub fn evaluate_shared(&self, event: Arc<Event>) -> Result<Evaluation, EvaluateError> {
        event.validate()?;
        if let Some(skew) = self.shared.max_future_skew_ms {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            if event.occurred_at_ms > now.saturating_add(skew) {
                return Err(EvaluateError::Invalid(InvalidEvent {
                    field: "occurred_at".into(),
                    message: format!(
                        "is {} s ahead of the engine's clock; at most {} s is accepted",
                        (event.occurred_at_ms - now) / 1000,
                        skew / 1000
                    ),
                }));
            }
        }
        let guard = match self.shared.seen.claim(&event.id, event.occurred_at_ms) {
            Claim::Seen(decision) => {
                return Ok(Evaluation {
                    decision,
                    duplicate: true,
                    stamps: CountStamps::default(),
                });
            }
            Claim::New(guard) => guard,
        };
        let snapshot = self.snapshot.load();
        // On a refusal the claim is dropped unfinished: the id is free for
        // the retry.
        let (decision, stamps) = self
            .decide(&snapshot, &event)
            .map_err(|e| EvaluateError::StateUnavailable(e.to_string()))?;
        let decision = Arc::new(decision);
        guard.complete(decision.clone());
        if self.shared.keep_reports {
            self.shared.ledger.record(&decision);
            self.shared.book.observe(&decision);
        }
        self.maybe_sweep();
        Ok(Evaluation {
            decision,
            duplicate: false,
            stamps,
        })
    }

    /// Decide `event`. Fails only when the state could not be reached and
    /// its settings say to decide nothing without it; otherwise a state
    /// failure is reported by the rules that met it.
    fn decide(
        &self,
        snapshot: &Snapshot,
        event: &Arc<Event>,
    ) -> Result<(Decision, CountStamps), StateError> {
        let state = &self.shared.state;
        let strict = state.refuses_when_unavailable();
        let stamps = match state.count(event, &snapshot.catalog) {
            Ok(stamps) => stamps,
            Err(error) if strict => return Err(error),
            Err(_) => CountStamps::default(),
        };

        let mut reports = Vec::new();
        // Which reports the shadow decision leaves out: those of active
        // versions whose shadow candidate stands in for them there.
        let mut replaced_in_shadow: Vec<usize> = Vec::new();
        // Most verdicts ask for no effects: collect only those that do.
        let mut live_effects = Vec::new();
        let mut shadow_effects = Vec::new();
        for index in snapshot.rules.subscriber_indices(&event.kind) {
            let slot = &snapshot.slots[index];
            let (decider, shadow_candidate) = match &slot.candidate {
                Some((candidate, Stage::Rollout { percent }))
                    if in_rollout(&candidate.name, &event.actor, *percent) =>
                {
                    (Some(candidate), None)
                }
                Some((candidate, Stage::Shadow)) => (slot.active.as_ref(), Some(candidate)),
                _ => (slot.active.as_ref(), None),
            };
            // The router found this rule by the union of its builds' kinds:
            // with one build, that build subscribes; with two, ask each.
            let single = slot.candidate.is_none();
            let runs = |p: &&Participant| {
                p.policy.mode != Mode::Disabled && (single || wants(p.rule.as_ref(), &event.kind))
            };
            let shadow_candidate = shadow_candidate.filter(runs);
            if let Some(active) = decider.filter(runs) {
                if shadow_candidate.is_some() {
                    replaced_in_shadow.push(reports.len());
                }
                reports.push(self.run(active, event, &mut live_effects, &mut shadow_effects));
            }
            if let Some(candidate) = shadow_candidate {
                reports.push(self.run(candidate, event, &mut live_effects, &mut shadow_effects));
            }
        }

        let live = combine(
            &snapshot.policy,
            reports.iter().filter(|r| r.mode == Mode::Enforce),
        );
        if strict
            && let Some(error) = reports.iter().find_map(|r| match &r.error {
                Some(RuleError::State { message }) => Some(message),
                _ => None,
            })
        {
            return Err(StateError::Unavailable(error.clone()));
        }
        let label_changes = Self::label_changes(live_effects, event);
        self.commit_labels(&label_changes, event.occurred_at_ms, strict)?;
        let shadow_ran = reports.iter().any(|r| r.mode == Mode::Shadow);
        let shadow = shadow_ran.then(|| {
            let outcome = combine(
                &snapshot.policy,
                reports
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !replaced_in_shadow.contains(i))
                    .map(|(_, report)| report),
            );
            ShadowDecision {
                differs: outcome.severity != live.severity || outcome.actions != live.actions,
                outcome,
                label_changes: Self::label_changes(shadow_effects, event),
            }
        });

        let decision = Decision {
            id: Decision::id_for(&event.id),
            event: event.clone(),
            outcome: live,
            rules: reports,
            label_changes,
            shadow,
            policy_version: snapshot.policy_version.clone(),
        };
        Ok((decision, stamps))
    }

    /// Call one version of a rule (unless its guards rule the call out),
    /// count the call against it, and file the effects it asks for.
    fn run(
        &self,
        participant: &Participant,
        event: &Arc<Event>,
        live_effects: &mut Vec<(Arc<str>, Vec<Effect>)>,
        shadow_effects: &mut Vec<(Arc<str>, Vec<Effect>)>,
    ) -> RuleReport {
        let guards = &participant.rule.manifest().guards;
        if self.shared.honour_guards && !guards_admit(guards, event, &*participant.view) {
            return skipped(participant);
        }
        let outcome = participant.rule.evaluate(event, &participant.view);
        let (mut report, effects) = report(outcome, participant.policy, event);
        report.candidate = participant.candidate;
        participant
            .stats
            .record(report.fuel_used, report.error.is_some(), report.fired());
        if !effects.is_empty() {
            let list = if report.mode == Mode::Enforce {
                live_effects
            } else {
                shadow_effects
            };
            list.push((report.rule.clone(), effects));
        }
        report
    }

    /// Resolve the effects rules asked for into label changes.
    fn label_changes(effects: Vec<(Arc<str>, Vec<Effect>)>, event: &Event) -> Vec<LabelChange> {
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
                        LabelChange::Set {
                            entity,
                            label,
                            expires_at_ms: label_expiry_ms(at, ttl_seconds),
                            rule: rule.clone(),
                        }
                    }
                    Effect::ClearLabel { subject, label } => {
                        let Some(entity) = resolve_subject(&subject, event) else {
                            continue;
                        };
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

    /// Make the live rules' label changes in the state. When a write fails,
    /// `strict` stops at the failure (the event will not be decided);
    /// otherwise the rest are still made.
    fn commit_labels(
        &self,
        changes: &[LabelChange],
        at: i64,
        strict: bool,
    ) -> Result<(), StateError> {
        for change in changes {
            let written = match change {
                LabelChange::Set {
                    entity,
                    label,
                    expires_at_ms,
                    ..
                } => self
                    .shared
                    .state
                    .set_label(entity, label, at, *expires_at_ms),
                LabelChange::Clear { entity, label, .. } => {
                    self.shared.state.clear_label(entity, label, at)
                }
            };
            match written {
                Err(error) if strict => return Err(error),
                Err(error) => tracing::warn!(%error, "a label change was not made"),
                Ok(()) => {}
            }
        }
        Ok(())
    }

    fn maybe_sweep(&self) {
        // With no inline sweeps (the server sweeps in the background), the
        // shared event count is not touched at all.
        let Some(every) = self.shared.sweep_every_events else {
            return;
        };
        let n = self.shared.events.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(every) {
            self.sweep();
        }
    }

    /// Reclaim aged-out counters, expired labels and old event ids now. If a
    /// sweep is already running, this one is skipped.
    pub fn sweep(&self) {
        let shared = &self.shared;
        let Ok(_sweeping) = shared.sweeping.try_lock() else {
            return;
        };
        let snapshot = self.snapshot.load();
        shared.state.sweep(&snapshot.catalog);
        if let Some(watermark) = shared.state.watermark_ms() {
            shared.seen.sweep(watermark);
            shared.ledger.sweep(watermark);
            shared.book.sweep(watermark);
        }
    }

    /// Where the state is kept.
    pub fn state(&self) -> &StateBackend {
        &self.shared.state
    }

    /// The live state in memory: counters of live rules and the policy,
    /// and labels.
    ///
    /// # Panics
    /// If the state is kept in Redis.
    pub fn live_state(&self) -> &MemoryState {
        &self.memory_stores().live
    }

    /// The counters only shadow rules read, in memory.
    ///
    /// # Panics
    /// If the state is kept in Redis.
    pub fn shadow_state(&self) -> &MemoryState {
        &self.memory_stores().shadow
    }

    fn memory_stores(&self) -> &CounterStores {
        self.shared
            .state
            .memory()
            .expect("the state is kept in memory, not in Redis")
    }

    /// What the shadow rules and candidates would have changed over event
    /// times in `[from_ms, to_ms)` (see [`ShadowLedger::report`]), and how
    /// the live and shadow decisions compare with the ground truth over
    /// the same minutes, an entity counting as acted on at `positive` or
    /// above (see [`GroundTruthBook::accuracy`]).
    pub fn shadow_report(
        &self,
        from_ms: i64,
        to_ms: i64,
        rule: Option<&str>,
        max_samples: usize,
        positive: Severity,
    ) -> ShadowReport {
        let mut report = self.shared.ledger.report(from_ms, to_ms, rule, max_samples);
        // The ledger narrowed the range to the minutes it holds; the book
        // holds the same minutes. With nothing held, the requested range.
        let (from, to) = if report.decisions > 0 {
            (report.from_ms, report.to_ms)
        } else {
            (from_ms, to_ms)
        };
        report.accuracy = self.shared.book.accuracy(from, to, positive, rule);
        report
    }

    /// Ground truth, and what every decision concluded about whom.
    pub fn ground_truth(&self) -> &GroundTruthBook {
        &self.shared.book
    }

    /// How many event ids are remembered for idempotency.
    pub fn remembered_events(&self) -> usize {
        self.shared.seen.len()
    }
}

impl Shared {
    /// Turn a deployment into a snapshot over this state: declare every
    /// counter the policy and the running versions need (ids carried over
    /// from `previous`), and give each version its view of the state.
    fn build(
        &self,
        deployment: Deployment,
        previous: &CounterCatalog,
    ) -> Result<Snapshot, PipelineError> {
        let Deployment { rules, policy } = deployment;
        let rules = RuleSet::deployed(rules)?;
        policy.check_rules(rules.deployments().iter().map(|d| d.name.as_str()))?;

        // Each running version with the mode it runs in, and its place:
        // the slot of its rule, as the active version or the candidate.
        struct Plan<'a> {
            rule: &'a Arc<dyn Rule>,
            policy: RulePolicy,
            slot: usize,
            candidate: Option<Stage>,
        }
        let mut plans: Vec<Plan> = Vec::new();
        for (slot, deployment) in rules.deployments().iter().enumerate() {
            let part = policy.for_rule(&deployment.name);
            if let Some(rule) = &deployment.active {
                plans.push(Plan {
                    rule,
                    policy: part,
                    slot,
                    candidate: None,
                });
            }
            if let Some(candidate) = &deployment.candidate {
                let mode = match (candidate.stage, part.mode) {
                    (_, Mode::Disabled) => Mode::Disabled,
                    (Stage::Shadow, _) => Mode::Shadow,
                    (Stage::Rollout { .. }, mode) => mode,
                };
                plans.push(Plan {
                    rule: &candidate.rule,
                    policy: RulePolicy { mode, ..part },
                    slot,
                    candidate: Some(candidate.stage),
                });
            }
        }

        // Live counters first, then the ones only shadow versions need.
        let mut catalog = previous.successor();
        for (spec, _) in &policy.counters {
            catalog.declare(spec);
        }
        let mut counter_ids: Vec<Vec<(String, CounterId)>> = vec![Vec::new(); plans.len()];
        for mode in [Mode::Enforce, Mode::Shadow] {
            for (plan, ids) in plans.iter().zip(&mut counter_ids) {
                if plan.policy.mode != mode {
                    continue;
                }
                for spec in &plan.rule.manifest().counters {
                    let id = if mode == Mode::Enforce {
                        catalog.declare(spec)
                    } else {
                        catalog.declare_shadow(spec)
                    };
                    ids.push((spec.name.clone(), id));
                }
            }
        }

        let shared: Arc<[SharedCounter]> = policy
            .counters
            .iter()
            .map(|(spec, _)| SharedCounter {
                name: spec.name.clone(),
                id: catalog.resolve(spec).expect("declared above"),
                window_seconds: spec.window_seconds,
            })
            .collect();
        let catalog = Arc::new(catalog);
        let mut slots: Vec<Slot> = rules
            .deployments()
            .iter()
            .map(|_| Slot {
                active: None,
                candidate: None,
            })
            .collect();
        for (plan, counters) in plans.iter().zip(counter_ids) {
            let view = RuleStateView::new(
                self.state.clone(),
                catalog.clone(),
                self.banks.clone(),
                counters,
                shared.clone(),
            );
            let sha256: Arc<str> = Arc::from(plan.rule.sha256());
            let stats = self
                .stats
                .entry(sha256.clone())
                .or_default()
                .value()
                .clone();
            let participant = Participant {
                rule: plan.rule.clone(),
                policy: plan.policy,
                view: Arc::new(view),
                name: Arc::from(plan.rule.name()),
                version: Arc::from(plan.rule.manifest().version.as_str()),
                sha256,
                stats,
                candidate: plan.candidate.is_some(),
            };
            let slot = &mut slots[plan.slot];
            match plan.candidate {
                None => slot.active = Some(participant),
                Some(stage) => slot.candidate = Some((participant, stage)),
            }
        }

        Ok(Snapshot {
            rules,
            slots,
            policy_version: Arc::from(policy.version.as_str()),
            policy: Arc::new(policy),
            catalog,
        })
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
        candidate: false,
        evidence: Vec::new(),
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
        candidate: participant.candidate,
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
        evidence,
    } = outcome;
    let mut report = RuleReport {
        fuel_used,
        elapsed_us: elapsed.as_micros() as u64,
        evidence,
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
