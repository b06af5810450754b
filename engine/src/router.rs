//! The rule set and its router: an event reaches only the rules that
//! subscribe to its kind, found with one hash lookup.

use std::collections::HashMap;
use std::sync::Arc;

use crate::event::Event;
use crate::rule::Rule;
use crate::state::StateView;
use crate::verdict::RuleOutcome;

/// An immutable set of loaded rules, indexed by the event kinds they want.
pub struct RuleSet {
    rules: Vec<Arc<dyn Rule>>,
    by_kind: HashMap<String, Vec<usize>, foldhash::fast::RandomState>,
}

/// Two rules in one set share a name, so decisions could not tell them apart.
#[derive(Debug, thiserror::Error)]
#[error("two rules are named `{0}` (sha256 {1} and {2})")]
pub struct DuplicateRule(pub String, pub String, pub String);

impl RuleSet {
    /// Index these rules by kind. Names must be unique.
    pub fn new(rules: Vec<Arc<dyn Rule>>) -> Result<Self, DuplicateRule> {
        let mut names: HashMap<&str, &str> = HashMap::new();
        for rule in &rules {
            if let Some(other) = names.insert(rule.name(), rule.sha256()) {
                return Err(DuplicateRule(
                    rule.name().to_string(),
                    other.to_string(),
                    rule.sha256().to_string(),
                ));
            }
        }
        let mut by_kind: HashMap<String, Vec<usize>, foldhash::fast::RandomState> =
            HashMap::default();
        for (index, rule) in rules.iter().enumerate() {
            for kind in &rule.manifest().event_kinds {
                let subscribers = by_kind.entry(kind.clone()).or_default();
                if !subscribers.contains(&index) {
                    subscribers.push(index);
                }
            }
        }
        Ok(RuleSet { rules, by_kind })
    }

    /// All rules, in load order.
    pub fn rules(&self) -> &[Arc<dyn Rule>] {
        &self.rules
    }

    /// The rules subscribed to `kind`, in load order.
    pub fn subscribers<'a>(&'a self, kind: &str) -> impl Iterator<Item = &'a Arc<dyn Rule>> + 'a {
        self.subscriber_indices(kind)
            .map(|index| &self.rules[index])
    }

    /// The positions in [`RuleSet::rules`] of the rules subscribed to
    /// `kind`, in load order.
    pub fn subscriber_indices<'a>(&'a self, kind: &str) -> impl Iterator<Item = usize> + 'a {
        self.by_kind.get(kind).into_iter().flatten().copied()
    }

    /// Run every subscribed rule on the event, in load order.
    pub fn evaluate(&self, event: &Arc<Event>, state: &Arc<dyn StateView>) -> Vec<RuleOutcome> {
        self.subscribers(&event.kind)
            .map(|rule| rule.evaluate(event, state))
            .collect()
    }
}
