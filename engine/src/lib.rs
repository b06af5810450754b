//! Enforcer: a gRPC engine that runs sandboxed WebAssembly rules over account
//! and group behaviour on a messaging platform, combines their verdicts under
//! a policy and issues enforcement decisions.
//!
//! This crate is the engine. The pieces so far:
//!
//! * [`runtime`]: the wasm sandbox that loads rules and runs them under fuel,
//!   deadline, memory and stack budgets, reusing warm instances that are
//!   reset after every call.
//! * [`router`]: the rule set, which sends each event only to the rules that
//!   subscribe to its kind.
//! * [`event`], [`verdict`], [`manifest`]: the engine's own types for what
//!   goes into and comes out of a rule.
//! * [`media`]: PDQ hashes of untrusted image bytes (profile photos, group
//!   icons), decoded within limits, for matching against hash banks.
//! * [`state`]: behaviour state (counters, labels) by event time.
//! * [`banks`]: hash banks of known material and allow-lists, with an exact
//!   Hamming-distance index, changed live.
//! * [`policy`], [`combine`], [`decision`], [`pipeline`]: from verdicts to
//!   one explained decision per event, with idempotency and shadow rules.
//! * [`decision_log`]: decisions numbered and kept for lookups and watchers.
//! * [`shadow_report`], [`ground_truth`], [`accuracy`], [`overturn`]: shadow
//!   against live, ground truth joined to decisions, precision and recall,
//!   and won appeals lifting what decisions did.
//! * [`jetstream`]: decisions published to NATS JetStream, one subject per
//!   action, for the services that carry them out.
//! * [`clearinghouse`]: report records for decisions that report to the
//!   child-safety clearing house, with the media's hashes and bank matches.
//! * [`access`]: who may call what (tokens, mTLS certificates, roles) and
//!   TLS on the listeners.
//! * [`api`], [`server`], [`config`]: the gRPC data plane and `enforcer
//!   serve`'s configuration.
//! * [`telemetry`]: logs as text or JSON, each evaluation in a span naming
//!   its decision.
//! * [`metrics`]: what each rule costs and does, the decisions, the server's
//!   calls, queues and state, for Prometheus.
//! * [`examples`]: the example rules, built into the engine.

pub mod access;
pub mod accuracy;
pub mod api;
pub mod backtest;
pub mod banks;
pub mod clearinghouse;
pub mod combine;
pub mod config;
pub mod decision;
pub mod decision_log;
pub mod demo;
pub mod deployment;
pub mod durable;
pub mod event;
pub mod examples;
pub mod fixtures;
pub mod ground_truth;
pub mod idempotency;
pub mod jetstream;
pub mod manifest;
pub mod media;
pub mod metrics;
pub mod overturn;
pub mod pipeline;
pub mod policy;
pub mod registry;
pub mod router;
pub mod rule;
pub mod runtime;
pub mod server;
pub mod shadow_report;
pub mod signing;
pub mod state;
pub mod telemetry;
pub mod verdict;
