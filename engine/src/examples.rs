//! The example rules and their policy, built from `plugins/` by the build
//! script and embedded in the engine so that it runs with a real rule set
//! and no configuration.

use std::sync::Arc;

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
