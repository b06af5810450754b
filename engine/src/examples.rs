//! The example rules, built from `plugins/rules/` by the build script and
//! embedded in the engine so that it runs with a real rule set and no
//! configuration.

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
