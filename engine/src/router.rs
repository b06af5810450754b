//! The rule set and its router: an event reaches only the rules that
//! subscribe to its kind, found with one hash lookup. A rule deployed with
//! two versions is reached when either version subscribes; the pipeline
//! then asks each version whether it wants the kind.

use std::collections::HashMap;
use std::sync::Arc;

use crate::deployment::RuleDeployment;
use crate::event::Event;
use crate::rule::Rule;
use crate::state::StateView;
use crate::verdict::RuleOutcome;

/// An immutable set of deployed rules, indexed by the event kinds they want.
pub struct RuleSet {
    rules: Vec<RuleDeployment>,
    by_kind: HashMap<String, Vec<usize>, foldhash::fast::RandomState>,
}

/// Two rules in one set share a name, so decisions could not tell them apart.
#[derive(Debug, thiserror::Error)]
#[error("two rules are named `{0}` (sha256 {1} and {2})")]
pub struct DuplicateRule(pub String, pub String, pub String);

/// A rule deployed with a version of another name.
#[derive(Debug, thiserror::Error)]
#[error("a rule's versions must all have its name: {0}")]
pub struct MismatchedVersions(pub String);

/// Why a set of rules cannot be indexed.
#[derive(Debug, thiserror::Error)]
pub enum RuleSetError {
    /// Two rules share a name.
    #[error(transparent)]
    Duplicate(#[from] DuplicateRule),
    /// A rule's versions disagree on its name.
    #[error(transparent)]
    Mismatched(#[from] MismatchedVersions),
}

impl RuleSet {
    /// Index these rules, each active on its own. Names must be unique.
    pub fn new(rules: Vec<Arc<dyn Rule>>) -> Result<Self, RuleSetError> {
        Self::deployed(rules.into_iter().map(RuleDeployment::active).collect())
    }

    /// Index these deployments. Names must be unique, and a rule's two
    /// versions must share its name.
    pub fn deployed(rules: Vec<RuleDeployment>) -> Result<Self, RuleSetError> {
        let mut names: HashMap<&str, Option<&str>> = HashMap::new();
        for deployment in &rules {
            let name = deployment.name.as_str();
            if let Some(other) = deployment.versions().find(|v| v.name() != name) {
                return Err(MismatchedVersions(format!("`{name}` and `{}`", other.name())).into());
            }
            let sha256 = deployment.versions().next().map(|v| v.sha256());
            if let Some(other) = names.insert(name, sha256) {
                return Err(DuplicateRule(
                    name.to_string(),
                    other.unwrap_or("none").to_string(),
                    sha256.unwrap_or("none").to_string(),
                )
                .into());
            }
        }
        let mut by_kind: HashMap<String, Vec<usize>, foldhash::fast::RandomState> =
            HashMap::default();
        for (index, deployment) in rules.iter().enumerate() {
            for rule in deployment.versions() {
                for kind in &rule.manifest().event_kinds {
                    let subscribers = by_kind.entry(kind.clone()).or_default();
                    if !subscribers.contains(&index) {
                        subscribers.push(index);
                    }
                }
            }
        }
        Ok(RuleSet { rules, by_kind })
    }

    /// Every deployed rule, in load order.
    pub fn deployments(&self) -> &[RuleDeployment] {
        &self.rules
    }

    /// The active version of every rule that has one, in load order.
    pub fn active_rules(&self) -> impl Iterator<Item = &Arc<dyn Rule>> + '_ {
        self.rules.iter().filter_map(|d| d.active.as_ref())
    }

    /// The positions in [`RuleSet::deployments`] of the rules with a
    /// version subscribed to `kind`, in load order.
    pub fn subscriber_indices<'a>(&'a self, kind: &str) -> impl Iterator<Item = usize> + 'a {
        self.by_kind.get(kind).into_iter().flatten().copied()
    }

    /// Run the active version of every rule subscribed to the event's
    /// kind, in load order.
    pub fn evaluate(&self, event: &Arc<Event>, state: &Arc<dyn StateView>) -> Vec<RuleOutcome> {
        self.subscriber_indices(&event.kind)
            .filter_map(|index| self.rules[index].active.as_ref())
            .filter(|rule| wants(rule.as_ref(), &event.kind))
            .map(|rule| rule.evaluate(event, state))
            .collect()
    }
}

/// Whether `rule` subscribes to `kind`.
pub fn wants(rule: &dyn Rule, kind: &str) -> bool {
    rule.manifest().event_kinds.iter().any(|k| k == kind)
}
