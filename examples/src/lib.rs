//! Runnable walkthroughs of the Enforcer engine live in `examples/examples/`;
//! this library holds what they share:
//!
//! * [`simulator`]: a seeded traffic simulator producing realistic, labelled
//!   events (`cargo run -p enforcer-examples --example simulate`).
//! * [`native`]: the example rules compiled natively and run through the
//!   engine's pipeline, the baseline benchmarks measure wasm against.

pub mod native;
pub mod simulator;
