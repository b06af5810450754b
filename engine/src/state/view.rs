//! One rule's view of the store: its own counter names resolved to the
//! shared counters, plus the counters the policy declares for every rule.

use std::sync::Arc;

use super::backend::StateBackend;
use super::catalog::{CounterCatalog, CounterId};
use super::memory::MemoryState;
use super::{StateError, StateView};
use crate::banks::{BankStore, HashLookup};
use crate::event::Entity;

/// A counter the policy declares, readable by every rule by its name.
#[derive(Clone, Debug)]
pub struct SharedCounter {
    /// The name rules read it by.
    pub name: String,
    /// The counter kept for it.
    pub id: CounterId,
    /// The longest window it may be read over.
    pub window_seconds: u32,
}

/// Where counters live: the live store, and a store of its own for the
/// counters that only shadow rules declare (ids from `shadow_from` on), so
/// that shadow rules never change live state.
#[derive(Clone, Debug)]
pub struct CounterStores {
    /// Counters live rules or the policy declare, and every label.
    pub live: Arc<MemoryState>,
    /// Counters only shadow rules declare.
    pub shadow: Arc<MemoryState>,
    /// The first id kept in `shadow`.
    pub shadow_from: CounterId,
}

impl CounterStores {
    /// One live store and no shadow-only counters.
    pub fn live_only(live: Arc<MemoryState>) -> Self {
        CounterStores {
            live,
            shadow: Arc::new(MemoryState::new()),
            shadow_from: CounterId(u32::MAX),
        }
    }

    /// The store that keeps counter `id`.
    pub fn for_counter(&self, id: CounterId) -> &MemoryState {
        if id < self.shadow_from {
            &self.live
        } else {
            &self.shadow
        }
    }
}

/// The store as one rule sees it.
pub struct RuleStateView {
    state: StateBackend,
    /// The counters the rule's snapshot keeps (what a shared store names
    /// them by).
    catalog: Arc<CounterCatalog>,
    banks: Arc<BankStore>,
    /// The rule's own counter names. A rule declares a handful, so a scan
    /// beats hashing the name.
    own: Vec<(String, CounterId)>,
    shared: Arc<[SharedCounter]>,
}

impl RuleStateView {
    /// The view for a rule whose counter names resolve to `counters`.
    pub fn new(
        state: StateBackend,
        catalog: Arc<CounterCatalog>,
        banks: Arc<BankStore>,
        counters: Vec<(String, CounterId)>,
        shared: Arc<[SharedCounter]>,
    ) -> Self {
        RuleStateView {
            state,
            catalog,
            banks,
            own: counters,
            shared,
        }
    }

    fn id_of(&self, name: &str) -> Option<CounterId> {
        self.own
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
            .or_else(|| self.shared.iter().find(|c| c.name == name).map(|c| c.id))
    }
}

impl StateView for RuleStateView {
    fn counter(
        &self,
        entity: &Entity,
        name: &str,
        window_seconds: u32,
        at_ms: i64,
    ) -> Result<u64, StateError> {
        let id = self
            .id_of(name)
            .ok_or_else(|| StateError::UnknownCounter(name.to_string()))?;
        self.state
            .counter(&self.catalog, entity, id, window_seconds, at_ms)
    }

    fn labels(&self, entity: &Entity, at_ms: i64) -> Result<Vec<String>, StateError> {
        self.state.labels(entity, at_ms)
    }

    fn has_label(&self, entity: &Entity, label: &str, at_ms: i64) -> Result<bool, StateError> {
        self.state.has_label(entity, label, at_ms)
    }

    fn shared_counter_window(&self, name: &str) -> Option<u32> {
        self.shared
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.window_seconds)
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
