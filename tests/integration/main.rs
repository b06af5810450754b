//! Integration tests: one binary, one module per area of the engine.

mod backtest;
mod banks;
mod common;
mod crash;
mod durable;
mod example_rules;
mod ground_truth;
mod grpc;
mod grpc_errors;
mod grpc_hostile;
mod grpc_server;
mod hostile;
mod interop;
mod isolation;
mod isolation_props;
mod jetstream;
mod lifecycle;
mod metrics;
mod pipeline;
mod plugin_tests;
mod proto;
mod redis;
mod router;
mod runtime;
mod shadow;
mod simulated_traffic;
