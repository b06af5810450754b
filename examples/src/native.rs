//! The example rules compiled natively and run through the engine's own
//! pipeline: the baseline the sandbox is measured against. A native rule
//! reads the same engine state through the same [`StateView`] and returns
//! the same verdict as its wasm build; only the sandbox is missing. Never
//! use this for untrusted rules: nothing bounds what native code does.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Instant;

use enforcer::banks::MatchEvidence;
use enforcer::event::{Entity, EntityKind, Event, Value};
use enforcer::manifest::{Aggregation, CounterFilter, CounterKey, CounterSpec, Guard, Manifest};
use enforcer::rule::Rule;
use enforcer::state::StateView;
use enforcer::verdict::{
    Action, Effect, Reason, RecommendedAction, RuleError, RuleOutcome, Severity, Subject, Verdict,
};
use enforcer_sdk as sdk;
use enforcer_sdk::native::{NativeEvent, NativeState};

/// An SDK rule type run natively as an engine [`Rule`].
pub struct NativeRule<R> {
    manifest: Manifest,
    name: Arc<str>,
    version: Arc<str>,
    sha256: Arc<str>,
    rule: PhantomData<fn() -> R>,
}

impl<R: sdk::Rule> NativeRule<R> {
    /// The rule, with its manifest read once.
    pub fn new() -> Self {
        let manifest = manifest_from_sdk(R::manifest());
        NativeRule {
            name: Arc::from(manifest.name.as_str()),
            version: Arc::from(manifest.version.as_str()),
            // Not a build hash: native code is identified by name only.
            sha256: Arc::from(format!("native:{}", manifest.name)),
            manifest,
            rule: PhantomData,
        }
    }
}

impl<R: sdk::Rule> Default for NativeRule<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: sdk::Rule + 'static> Rule for NativeRule<R> {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn sha256(&self) -> &str {
        &self.sha256
    }

    fn evaluate(&self, event: &Arc<Event>, state: &Arc<dyn StateView>) -> RuleOutcome {
        let started = Instant::now();
        let adapter = StateAdapter {
            event,
            state: &**state,
            evidence: RefCell::new(Vec::new()),
        };
        let verdict = sdk::native::evaluate::<R>(&EventAdapter(event), &adapter);
        RuleOutcome {
            rule: self.name.clone(),
            version: self.version.clone(),
            sha256: self.sha256.clone(),
            result: verdict_from_sdk(verdict),
            fuel_used: 0,
            elapsed: started.elapsed(),
            evidence: adapter.evidence.into_inner(),
        }
    }
}

/// The example rules, natively, in the order the engine embeds their wasm.
pub fn example_rules() -> Vec<Arc<dyn Rule>> {
    let mut rules: Vec<Arc<dyn Rule>> = vec![
        Arc::new(NativeRule::<fake_profile::FakeProfile>::new()),
        Arc::new(NativeRule::<harmful_text::HarmfulText>::new()),
        Arc::new(NativeRule::<invite_link_abuse::InviteLinkAbuse>::new()),
        Arc::new(NativeRule::<known_hash_match::KnownHashMatch>::new()),
        Arc::new(NativeRule::<mass_forwarding::MassForwarding>::new()),
        Arc::new(NativeRule::<new_account_burst::NewAccountBurst>::new()),
        Arc::new(NativeRule::<report_velocity::ReportVelocity>::new()),
        Arc::new(NativeRule::<stranger_spray::StrangerSpray>::new()),
    ];
    rules.sort_by(|a, b| a.name().cmp(b.name()));
    rules
}

struct EventAdapter<'a>(&'a Event);

impl NativeEvent for EventAdapter<'_> {
    fn id(&self) -> String {
        self.0.id.clone()
    }

    fn kind(&self) -> &str {
        &self.0.kind
    }

    fn occurred_at_ms(&self) -> i64 {
        self.0.occurred_at_ms
    }

    fn actor(&self) -> sdk::Entity {
        entity_to_sdk(&self.0.actor)
    }

    fn target(&self) -> Option<sdk::Entity> {
        self.0.target.as_ref().map(entity_to_sdk)
    }

    fn attribute(&self, name: &str) -> Option<sdk::Value> {
        self.0.attribute(name).map(value_to_sdk)
    }

    fn attribute_names(&self) -> Vec<String> {
        self.0.attributes.iter().map(|(n, _)| n.clone()).collect()
    }

    fn int(&self, name: &str) -> Option<i64> {
        match self.0.attribute(name)? {
            Value::Int(v) => Some(*v),
            _ => None,
        }
    }

    fn float(&self, name: &str) -> Option<f64> {
        match self.0.attribute(name)? {
            Value::Float(v) => Some(*v),
            _ => None,
        }
    }

    fn bool(&self, name: &str) -> Option<bool> {
        match self.0.attribute(name)? {
            Value::Bool(v) => Some(*v),
            _ => None,
        }
    }

    fn text(&self, name: &str) -> Option<String> {
        match self.0.attribute(name)? {
            Value::Text(v) => Some(v.clone()),
            _ => None,
        }
    }

    fn bytes(&self, name: &str) -> Option<Vec<u8>> {
        match self.0.attribute(name)? {
            Value::Bytes(v) => Some(v.clone()),
            _ => None,
        }
    }
}

struct StateAdapter<'a> {
    event: &'a Event,
    state: &'a dyn StateView,
    /// What the call's hash lookups found, as the wasm host records it.
    evidence: RefCell<Vec<MatchEvidence>>,
}

impl StateAdapter<'_> {
    /// Run `read` on the entity a subject names, or give `absent`.
    fn with_entity<T>(
        &self,
        subject: &sdk::Subject,
        absent: T,
        read: impl FnOnce(&Entity) -> T,
    ) -> T {
        match subject {
            sdk::Subject::Actor => read(&self.event.actor),
            sdk::Subject::Target => self.event.target.as_ref().map_or(absent, read),
            sdk::Subject::Entity(e) => read(&entity_from_sdk(e.clone())),
        }
    }
}

impl NativeState for StateAdapter<'_> {
    fn counter(&self, subject: &sdk::Subject, name: &str, window_seconds: u32) -> u64 {
        let at = self.event.occurred_at_ms;
        self.with_entity(subject, 0, |e| {
            self.state.counter(e, name, window_seconds, at).unwrap_or(0)
        })
    }

    fn labels(&self, subject: &sdk::Subject) -> Vec<String> {
        let at = self.event.occurred_at_ms;
        self.with_entity(subject, Vec::new(), |e| {
            self.state.labels(e, at).unwrap_or_default()
        })
    }

    fn has_label(&self, subject: &sdk::Subject, label: &str) -> bool {
        let at = self.event.occurred_at_ms;
        self.with_entity(subject, false, |e| {
            self.state.has_label(e, label, at).unwrap_or(false)
        })
    }

    fn match_hash(&self, bank: &str, hash: &[u8], max_distance: u32) -> Vec<sdk::HashMatch> {
        let Ok(hash) = <[u8; 32]>::try_from(hash) else {
            return Vec::new();
        };
        let Ok(lookup) = self.state.match_hash(bank, &hash, max_distance) else {
            return Vec::new();
        };
        let given = lookup
            .effective()
            .iter()
            .map(|m| sdk::HashMatch {
                bank: m.bank.clone(),
                entry_id: m.entry_id.clone(),
                distance: m.distance,
            })
            .collect();
        if !lookup.matches.is_empty() {
            self.evidence.borrow_mut().push(MatchEvidence {
                bank: bank.to_string(),
                query_hash: hash,
                max_distance,
                matches: lookup.matches,
                suppressed_by: lookup.suppressed_by,
            });
        }
        given
    }
}

fn entity_to_sdk(entity: &Entity) -> sdk::Entity {
    match entity.kind {
        EntityKind::Account => sdk::Entity::account(entity.id.as_str()),
        EntityKind::Group => sdk::Entity::group(entity.id.as_str()),
    }
}

fn entity_from_sdk(entity: sdk::Entity) -> Entity {
    match entity.kind {
        sdk::EntityKind::Account => Entity::account(entity.id),
        sdk::EntityKind::Group => Entity::group(entity.id),
    }
}

fn value_to_sdk(value: &Value) -> sdk::Value {
    match value.clone() {
        Value::Int(v) => sdk::Value::Int(v),
        Value::Float(v) => sdk::Value::Float(v),
        Value::Bool(v) => sdk::Value::Bool(v),
        Value::Text(v) => sdk::Value::Text(v),
        Value::Bytes(v) => sdk::Value::Bytes(v),
        Value::IntList(v) => sdk::Value::IntList(v),
        Value::FloatList(v) => sdk::Value::FloatList(v),
        Value::BoolList(v) => sdk::Value::BoolList(v),
        Value::TextList(v) => sdk::Value::TextList(v),
        Value::BytesList(v) => sdk::Value::BytesList(v),
    }
}

fn subject_from_sdk(subject: sdk::Subject) -> Subject {
    match subject {
        sdk::Subject::Actor => Subject::Actor,
        sdk::Subject::Target => Subject::Target,
        sdk::Subject::Entity(e) => Subject::Entity(entity_from_sdk(e)),
    }
}

fn verdict_from_sdk(verdict: sdk::Verdict) -> Result<Verdict, RuleError> {
    if !(0.0..=1.0).contains(&verdict.score) {
        return Err(RuleError::BadOutput {
            message: format!("score {} is outside [0, 1]", verdict.score),
        });
    }
    Ok(Verdict {
        score: verdict.score,
        severity: match verdict.severity {
            sdk::Severity::Allow => Severity::Allow,
            sdk::Severity::Review => Severity::Review,
            sdk::Severity::Limit => Severity::Limit,
            sdk::Severity::Block => Severity::Block,
        },
        actions: verdict
            .actions
            .into_iter()
            .map(|a| RecommendedAction {
                action: match a.action {
                    sdk::Action::BlockAccount => Action::BlockAccount,
                    sdk::Action::BanGroup => Action::BanGroup,
                    sdk::Action::LimitForwarding => Action::LimitForwarding,
                    sdk::Action::RemoveMedia => Action::RemoveMedia,
                    sdk::Action::ReportToClearinghouse => Action::ReportToClearinghouse,
                },
                subject: subject_from_sdk(a.subject),
            })
            .collect(),
        reasons: verdict
            .reasons
            .into_iter()
            .map(|r| Reason {
                code: r.code,
                explanation: r.explanation,
            })
            .collect(),
        effects: verdict
            .effects
            .into_iter()
            .map(|e| match e {
                sdk::Effect::SetLabel {
                    subject,
                    label,
                    ttl_seconds,
                } => Effect::SetLabel {
                    subject: subject_from_sdk(subject),
                    label,
                    ttl_seconds,
                },
                sdk::Effect::ClearLabel { subject, label } => Effect::ClearLabel {
                    subject: subject_from_sdk(subject),
                    label,
                },
            })
            .collect(),
    })
}

fn manifest_from_sdk(manifest: sdk::Manifest) -> Manifest {
    Manifest {
        name: manifest.name,
        version: manifest.version,
        event_kinds: manifest.event_kinds,
        counters: manifest
            .counters
            .into_iter()
            .map(|c| CounterSpec {
                name: c.name,
                event_kinds: c.event_kinds,
                key: match c.key {
                    sdk::CounterKey::Actor => CounterKey::Actor,
                    sdk::CounterKey::Target => CounterKey::Target,
                },
                aggregation: match c.aggregation {
                    sdk::Aggregation::Count => Aggregation::Count,
                    sdk::Aggregation::Sum(a) => Aggregation::Sum(a),
                    sdk::Aggregation::Distinct(a) => Aggregation::Distinct(a),
                    sdk::Aggregation::DistinctActors => Aggregation::DistinctActors,
                    sdk::Aggregation::DistinctTargets => Aggregation::DistinctTargets,
                },
                filter: match c.filter {
                    sdk::CounterFilter::All => CounterFilter::All,
                    sdk::CounterFilter::IsTrue(a) => CounterFilter::IsTrue(a),
                    sdk::CounterFilter::IsFalse(a) => CounterFilter::IsFalse(a),
                    sdk::CounterFilter::TextEquals(a, v) => CounterFilter::TextEquals(a, v),
                },
                window_seconds: c.window_seconds,
            })
            .collect(),
        guards: manifest
            .guards
            .into_iter()
            .map(|g| match g {
                sdk::Guard::IntAtLeast(a, v) => Guard::IntAtLeast(a, v),
                sdk::Guard::IntBelow(a, v) => Guard::IntBelow(a, v),
                sdk::Guard::FloatAtLeast(a, v) => Guard::FloatAtLeast(a, v),
                sdk::Guard::CounterAtLeast {
                    counter,
                    subject,
                    window_seconds,
                    value,
                } => Guard::CounterAtLeast {
                    counter,
                    subject: match subject {
                        sdk::CounterKey::Actor => CounterKey::Actor,
                        sdk::CounterKey::Target => CounterKey::Target,
                    },
                    window_seconds,
                    value,
                },
            })
            .collect(),
    }
}
