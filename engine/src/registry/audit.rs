//! The audit trail of the control plane: every change asked for, who asked,
//! what it touched (the rule and the builds by sha256), when, and whether
//! it was made or refused and why. Kept in memory up to a capacity, oldest
//! dropped first, and listed newest first.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Entries kept unless configured otherwise.
pub const DEFAULT_AUDIT_CAPACITY: usize = 100_000;

/// Who asked for a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The identity the credentials map to (a token's name), or the
    /// engine's own component (`plugin-dir`, `startup`).
    pub identity: String,
    /// Where the request came from, when it came over the network.
    pub peer: Option<String>,
}

impl Caller {
    /// A part of the engine acting on its own (the plugin-directory
    /// watcher, startup).
    pub fn internal(identity: &str) -> Self {
        Caller {
            identity: identity.into(),
            peer: None,
        }
    }
}

/// One control-plane change, made or refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Its place in the trail: one more than the entry before it.
    pub sequence: u64,
    /// When (Unix milliseconds).
    pub at_ms: i64,
    /// Who asked.
    pub caller: Caller,
    /// What was asked: `upload`, `set_mode`, `promote`, `rollback`,
    /// `retire`, `replace_policy`; for hash banks `replace_bank`,
    /// `add_bank_entries`, `remove_bank_entries`, `delete_bank`.
    pub action: String,
    /// The rule it touched, if one.
    pub rule: Option<String>,
    /// The build it concerned (the one uploaded, set, promoted, or made
    /// active by a rollback).
    pub sha256: Option<String>,
    /// The build that was active before, for changes that replace one.
    pub previous_sha256: Option<String>,
    /// What was asked in words (a mode, a percentage, a policy version).
    pub detail: String,
    /// `None` when made; the reason when refused.
    pub refused: Option<String>,
}

/// The trail.
pub struct AuditLog {
    entries: Mutex<VecDeque<AuditEntry>>,
    capacity: usize,
}

impl AuditLog {
    /// A trail keeping at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        AuditLog {
            entries: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
        }
    }

    /// A trail that continues `earlier` (oldest first), as read back from
    /// a state directory: new entries are numbered after them.
    pub fn continuing(capacity: usize, earlier: Vec<AuditEntry>) -> Self {
        let log = AuditLog::new(capacity);
        {
            let mut entries = log.entries.lock().unwrap_or_else(|e| e.into_inner());
            let skip = earlier.len().saturating_sub(log.capacity);
            entries.extend(earlier.into_iter().skip(skip));
        }
        log
    }

    /// Add an entry; its sequence is given here.
    pub fn record(&self, mut entry: AuditEntry) -> u64 {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entry.sequence = entries.back().map_or(1, |last| last.sequence + 1);
        let sequence = entry.sequence;
        if entries.len() == self.capacity {
            entries.pop_front();
        }
        entries.push_back(entry);
        sequence
    }

    /// Up to `limit` entries, newest first, about `rule` if given.
    pub fn list(&self, rule: Option<&str>, limit: usize) -> Vec<AuditEntry> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .rev()
            .filter(|e| rule.is_none_or(|rule| e.rule.as_deref() == Some(rule)))
            .take(limit)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(rule: &str) -> AuditEntry {
        AuditEntry {
            sequence: 0,
            at_ms: 1,
            caller: Caller::internal("test"),
            action: "promote".into(),
            rule: Some(rule.into()),
            sha256: None,
            previous_sha256: None,
            detail: String::new(),
            refused: None,
        }
    }

    #[test]
    fn entries_are_numbered_listed_newest_first_and_bounded() {
        let log = AuditLog::new(3);
        for rule in ["a", "b", "a", "c"] {
            log.record(entry(rule));
        }
        let all: Vec<u64> = log.list(None, 10).iter().map(|e| e.sequence).collect();
        assert_eq!(all, [4, 3, 2], "the oldest dropped at capacity");
        let about_a: Vec<u64> = log.list(Some("a"), 10).iter().map(|e| e.sequence).collect();
        assert_eq!(about_a, [3]);
        assert_eq!(log.list(None, 1).len(), 1);
    }
}
