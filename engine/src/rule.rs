//! What the engine needs of a rule, whatever runs it: a manifest, an
//! identity, and a judgement of one event. Sandboxed wasm rules
//! ([`LoadedRule`](crate::runtime::LoadedRule)) are the only kind the
//! engine loads; the trait also lets benchmarks run a native build of the
//! same rules through the same pipeline, as a baseline.

use std::sync::Arc;

use crate::event::Event;
use crate::manifest::Manifest;
use crate::runtime::LoadedRule;
use crate::state::StateView;
use crate::verdict::RuleOutcome;

/// A rule the pipeline can run.
pub trait Rule: Send + Sync {
    /// What it is and what it needs.
    fn manifest(&self) -> &Manifest;

    /// The sha256 of the code it runs, in hex: what identifies a build.
    fn sha256(&self) -> &str;

    /// Judge one event of a kind its manifest subscribes to. Never fails:
    /// an error is part of the outcome.
    fn evaluate(&self, event: &Arc<Event>, state: &Arc<dyn StateView>) -> RuleOutcome;

    /// Let go of resources kept only to make calls fast (warm instances),
    /// because this build no longer runs. Calls still work afterwards.
    fn release_idle(&self) {}

    /// Its name, unique in a rule set.
    fn name(&self) -> &str {
        &self.manifest().name
    }
}

impl Rule for LoadedRule {
    fn manifest(&self) -> &Manifest {
        LoadedRule::manifest(self)
    }

    fn sha256(&self) -> &str {
        LoadedRule::sha256(self)
    }

    fn evaluate(&self, event: &Arc<Event>, state: &Arc<dyn StateView>) -> RuleOutcome {
        LoadedRule::evaluate(self, event, state)
    }

    fn release_idle(&self) {
        LoadedRule::release_idle(self)
    }
}
