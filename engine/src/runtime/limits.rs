//! The per-rule budgets that keep a plugin from hurting the engine.

use std::time::Duration;

/// What one rule call may consume. Defaults are generous for real rules
/// (which use a few thousand fuel units and a few kilobytes) and tight for
/// runaway ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Fuel per call: roughly one unit per wasm instruction, including the
    /// instance reset after the call. 10 million is about 5 to 20 ms of
    /// straight-line code, far beyond any sane rule.
    pub fuel: u64,
    /// Wall-clock backstop per call, for time fuel does not see (host calls).
    pub deadline: Duration,
    /// Cap on the rule's linear memory. Also sizes the reset bookkeeping.
    pub max_memory_bytes: u64,
    /// Cap on the native stack wasm code may use.
    pub max_stack_bytes: usize,
    /// Cap on the size of a verdict: the bytes of all its strings plus 16
    /// per list item. A verdict is a judgement with reasons, not a data dump.
    pub max_output_bytes: usize,
    /// Cap on log lines a rule may write per call; more are dropped.
    pub max_log_lines: u32,
    /// Cap on the length of one log line; longer lines are cut.
    pub max_log_line_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 10_000_000,
            deadline: Duration::from_millis(100),
            max_memory_bytes: 16 << 20,
            max_stack_bytes: 512 << 10,
            max_output_bytes: 64 << 10,
            max_log_lines: 16,
            max_log_line_bytes: 1024,
        }
    }
}
