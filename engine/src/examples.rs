//! The example rules, their fixtures and their policy, built from
//! `plugins/` by the build script and embedded in the engine so that it
//! runs with a real rule set and no configuration.

use std::sync::Arc;

use crate::registry::{Provenance, RuleSource};
use crate::rule::Rule;
use crate::runtime::{LoadError, Runtime};

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

/// The policy for the example rules (`plugins/policy.toml`).
pub const EXAMPLE_POLICY: &str = include_str!("../../plugins/policy.toml");

/// Load every example rule into `runtime`, in name order.
pub fn load_example_rules(runtime: &Runtime) -> Result<Vec<Arc<dyn Rule>>, (String, LoadError)> {
    EXAMPLE_RULES
        .iter()
        .map(|(name, wasm)| {
            runtime
                .load(wasm)
                .map(|rule| Arc::new(rule) as Arc<dyn Rule>)
                .map_err(|e| (name.to_string(), e))
        })
        .collect()
}

/// The fixtures of the example rule `name` (its crate name), as JSON for
/// [`Fixtures::parse`](crate::fixtures::Fixtures::parse).
pub fn example_fixtures(name: &str) -> Option<&'static str> {
    EXAMPLE_FIXTURES
        .iter()
        .find(|(rule, _)| *rule == name)
        .map(|(_, json)| *json)
}

/// The example rules as the registry starts with them: built in (part of
/// the binary, so no signature is asked of them), each with its fixtures.
pub fn example_sources() -> Vec<(RuleSource, Provenance)> {
    EXAMPLE_RULES
        .iter()
        .map(|(name, wasm)| {
            let source = RuleSource {
                wasm: wasm.to_vec(),
                signature: None,
                fixtures: example_fixtures(name).map(|json| json.as_bytes().to_vec()),
                origin: format!("built-in {name}"),
            };
            (source, Provenance::BuiltIn)
        })
        .collect()
}
