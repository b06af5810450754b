//! A hand-set state for tests, examples and trying a rule against a known
//! situation.

use std::collections::HashMap;

use super::{StateError, StateView};
use crate::banks::{BankEntry, HashBanks, HashLookup};
use crate::event::Entity;

/// A state whose every value is set by hand: for tests, examples and
/// trying a rule against a known situation. Counters ignore the window and
/// time (the value given is the value read); labels never expire. Lookups
/// are linear scans: a hand-set state holds a handful of values, and a scan
/// of those is cheaper than hashing an entity.
#[derive(Clone, Debug, Default)]
pub struct FixedState {
    counters: Vec<(Entity, String, u64)>,
    labels: HashMap<Entity, Vec<String>>,
    banks: HashBanks,
}

impl FixedState {
    /// Every counter 0, no labels, no banks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set a counter's value for an entity.
    pub fn with_counter(mut self, entity: Entity, name: &str, value: u64) -> Self {
        self.counters
            .retain(|(e, n, _)| !(*e == entity && n == name));
        self.counters.push((entity, name.to_string(), value));
        self
    }

    /// Put a label on an entity.
    pub fn with_label(mut self, entity: Entity, label: &str) -> Self {
        self.labels
            .entry(entity)
            .or_default()
            .push(label.to_string());
        self
    }

    /// Add an entry to a bank, creating the bank.
    pub fn with_bank_entry(mut self, bank: &str, entry_id: &str, hash: [u8; 32]) -> Self {
        self.banks = self
            .banks
            .with_entries(bank, [BankEntry::new(entry_id, hash)]);
        self
    }

    /// Create an empty bank.
    pub fn with_bank(mut self, bank: &str) -> Self {
        self.banks = self.banks.with_entries(bank, []);
        self
    }
}

impl StateView for FixedState {
    fn counter(
        &self,
        entity: &Entity,
        name: &str,
        _window_seconds: u32,
        _at_ms: i64,
    ) -> Result<u64, StateError> {
        Ok(self
            .counters
            .iter()
            .find(|(e, n, _)| e == entity && n == name)
            .map_or(0, |(_, _, value)| *value))
    }

    fn labels(&self, entity: &Entity, _at_ms: i64) -> Result<Vec<String>, StateError> {
        Ok(self.labels.get(entity).cloned().unwrap_or_default())
    }

    fn match_hash(
        &self,
        bank: &str,
        hash: &[u8; 32],
        max_distance: u32,
    ) -> Result<HashLookup, StateError> {
        self.banks.lookup(bank, hash, max_distance)
    }
}
