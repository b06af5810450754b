//! Runnable walkthroughs of the Enforcer engine live in `examples/examples/`;
//! this library holds what they share:
//!
//! * [`simulator`]: a seeded traffic simulator producing realistic, labelled
//!   events (`cargo run -p enforcer-examples --example simulate`).
//! * [`native`]: the example rules compiled natively and run through the
//!   engine's pipeline, the baseline benchmarks measure wasm against.
//! * [`hostile`]: hostile events and the statuses they must get, for the
//!   hostile-request tests and soak runs.
//! * [`builds`]: other builds of the same rule (same code, another
//!   sha256), for exercising the rule lifecycle.

pub mod builds;
pub mod hostile;
pub mod native;
pub mod simulator;
