//! Fuzz targets for everything the engine reads from outside: events on the
//! wire, the policy and the serve configuration, what a rule returns across
//! the sandbox boundary, and images sent inside events.
//!
//! Each target is a proptest harness seeded with real, valid inputs that it
//! mutates, so that cases get past the first parse error to the checks
//! behind it. Each runs for `ENFORCER_FUZZ_SECONDS` (15 by default) and
//! reports how many cases it ran; `ENFORCER_FUZZ_SEED` replays a run. The
//! property every target checks is the same: no panic, and every refusal
//! is a precise error (the field, the line, the limit), and what is
//! accepted is what was sent.

mod budget;
mod events;
mod images;
mod mutate;
mod plugin_boundary;
mod policy;
mod serve_config;
