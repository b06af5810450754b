//! What rules may read of the engine's state: counters, labels and hash
//! banks, always as of an event's time. The runtime reads through this trait
//! so that the store behind it (in memory, durable, or shared) can change
//! without touching the sandbox.

use std::collections::HashMap;

use crate::event::Entity;

/// A hash-bank entry within the asked distance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashMatch {
    /// The bank.
    pub bank: String,
    /// The entry's id in the bank.
    pub entry_id: String,
    /// Hamming distance in bits.
    pub distance: u32,
}

/// Why a state read failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// No bank of that name.
    #[error("no hash bank named `{0}`")]
    UnknownBank(String),
    /// The store behind the state could not answer.
    #[error("state unavailable: {0}")]
    Unavailable(String),
}

/// Read access to engine-owned state, as of a point in event time.
pub trait StateView: Send + Sync {
    /// The value of counter `name` for `entity` over the `window_seconds`
    /// before `at_ms`, inclusive of events at `at_ms`.
    fn counter(
        &self,
        entity: &Entity,
        name: &str,
        window_seconds: u32,
        at_ms: i64,
    ) -> Result<u64, StateError>;

    /// The labels on `entity` that have not expired at `at_ms`.
    fn labels(&self, entity: &Entity, at_ms: i64) -> Result<Vec<String>, StateError>;

    /// Entries of `bank` within `max_distance` bits of `hash`, nearest first.
    fn match_hash(
        &self,
        bank: &str,
        hash: &[u8; 32],
        max_distance: u32,
    ) -> Result<Vec<HashMatch>, StateError>;
}

/// A state whose every value is set by hand: for tests, examples and
/// trying a rule against a known situation. Counters ignore the window and
/// time (the value given is the value read); labels never expire. Lookups
/// are linear scans: a hand-set state holds a handful of values, and a scan
/// of those is cheaper than hashing an entity.
#[derive(Clone, Debug, Default)]
pub struct FixedState {
    counters: Vec<(Entity, String, u64)>,
    labels: HashMap<Entity, Vec<String>>,
    banks: HashMap<String, Vec<(String, [u8; 32])>>,
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
        self.banks
            .entry(bank.to_string())
            .or_default()
            .push((entry_id.to_string(), hash));
        self
    }

    /// Create an empty bank.
    pub fn with_bank(mut self, bank: &str) -> Self {
        self.banks.entry(bank.to_string()).or_default();
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
    ) -> Result<Vec<HashMatch>, StateError> {
        let entries = self
            .banks
            .get(bank)
            .ok_or_else(|| StateError::UnknownBank(bank.to_string()))?;
        let mut matches: Vec<HashMatch> = entries
            .iter()
            .map(|(id, entry)| HashMatch {
                bank: bank.to_string(),
                entry_id: id.clone(),
                distance: entry
                    .iter()
                    .zip(hash)
                    .map(|(a, b)| (a ^ b).count_ones())
                    .sum(),
            })
            .filter(|m| m.distance <= max_distance)
            .collect();
        matches.sort_by(|a, b| {
            a.distance
                .cmp(&b.distance)
                .then(a.entry_id.cmp(&b.entry_id))
        });
        Ok(matches)
    }
}
