//! The live set of banks. A change builds a new set beside the one in use
//! and swaps it in atomically: a lookup already running finishes on the set
//! it started with, and evaluation never waits for a change. Changes are
//! serialised, so each builds on the one before.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::HashBanks;
use super::bank::{Bank, BankError, BankKind};
use super::entry::{BankEntry, HashLookup, Pdq};
use crate::state::StateError;

/// What the control plane shows of a bank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankSummary {
    /// Its name.
    pub name: String,
    /// What it is for.
    pub kind: BankKind,
    /// How many entries it holds.
    pub entries: usize,
    /// Bytes its index and entries hold.
    pub memory_bytes: usize,
}

impl BankSummary {
    fn of(bank: &Bank) -> Self {
        BankSummary {
            name: bank.name().to_string(),
            kind: bank.kind().clone(),
            entries: bank.len(),
            memory_bytes: bank.memory_bytes(),
        }
    }
}

/// The banks in use, changed live.
pub struct BankStore {
    current: ArcSwap<HashBanks>,
    changing: Mutex<()>,
}

impl std::fmt::Debug for BankStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BankStore")
            .field("banks", &self.current.load().names().collect::<Vec<_>>())
            .finish()
    }
}

impl BankStore {
    /// A store holding `banks`.
    pub fn new(banks: HashBanks) -> Self {
        BankStore {
            current: ArcSwap::from_pointee(banks),
            changing: Mutex::new(()),
        }
    }

    /// The set in use now.
    pub fn snapshot(&self) -> Arc<HashBanks> {
        self.current.load_full()
    }

    /// A lookup in the set in use now.
    pub fn lookup(
        &self,
        bank: &str,
        hash: &Pdq,
        max_distance: u32,
    ) -> Result<HashLookup, StateError> {
        self.current.load().lookup(bank, hash, max_distance)
    }

    /// Every bank, by name.
    pub fn list(&self) -> Vec<BankSummary> {
        self.current
            .load()
            .banks()
            .map(|b| BankSummary::of(b))
            .collect()
    }

    /// Add entries to an existing bank.
    pub fn add(&self, bank: &str, entries: Vec<BankEntry>) -> Result<BankSummary, BankError> {
        self.change_bank(bank, |b| b.with_added(entries))
    }

    /// Remove entries, by id, from an existing bank.
    pub fn remove(&self, bank: &str, ids: &[String]) -> Result<BankSummary, BankError> {
        self.change_bank(bank, |b| b.without(ids))
    }

    /// Create a bank, or replace the one of its name with these entries.
    pub fn put(
        &self,
        name: &str,
        kind: BankKind,
        entries: Vec<BankEntry>,
    ) -> Result<BankSummary, BankError> {
        // Indexing a large bank takes a while: do it before taking the lock,
        // so other changes are held up only by the swap.
        let bank = Bank::build(name, kind, entries)?;
        let summary = BankSummary::of(&bank);
        self.change(|banks| banks.with_bank(bank))?;
        Ok(summary)
    }

    /// Delete a bank.
    pub fn delete(&self, name: &str) -> Result<(), BankError> {
        self.change(|banks| banks.without_bank(name))
    }

    fn change_bank(
        &self,
        name: &str,
        change: impl FnOnce(&Bank) -> Result<Bank, BankError>,
    ) -> Result<BankSummary, BankError> {
        let mut summary = None;
        self.change(|banks| {
            let bank = banks
                .get(name)
                .ok_or_else(|| BankError::UnknownBank(name.to_string()))?;
            let changed = change(bank)?;
            summary = Some(BankSummary::of(&changed));
            banks.with_bank(changed)
        })?;
        summary.ok_or_else(|| BankError::UnknownBank(name.to_string()))
    }

    fn change(
        &self,
        change: impl FnOnce(&HashBanks) -> Result<HashBanks, BankError>,
    ) -> Result<(), BankError> {
        // A poisoned lock only means an earlier change panicked before its
        // swap; the set in use is whole either way.
        let _serialised = self.changing.lock().unwrap_or_else(|p| p.into_inner());
        let next = change(&self.current.load())?;
        self.current.store(Arc::new(next));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply_to_lookups_at_once_and_refusals_change_nothing() {
        let store = BankStore::new(HashBanks::new());
        store
            .put(
                "known",
                BankKind::matching(),
                vec![BankEntry::new("a", [0; 32])],
            )
            .unwrap();
        let before = store.snapshot();
        let summary = store
            .add("known", vec![BankEntry::new("b", [1; 32])])
            .unwrap();
        assert_eq!(summary.entries, 2);
        assert_eq!(store.lookup("known", &[1; 32], 0).unwrap().matches.len(), 1);
        // A snapshot taken before the change still sees the bank as it was.
        assert!(
            before
                .lookup("known", &[1; 32], 0)
                .unwrap()
                .matches
                .is_empty()
        );

        let refused = store.add("known", vec![BankEntry::new("a", [2; 32])]);
        assert!(matches!(refused, Err(BankError::DuplicateId { .. })));
        assert!(
            store
                .lookup("known", &[2; 32], 0)
                .unwrap()
                .matches
                .is_empty()
        );
        assert_eq!(
            store.remove("other", &["a".into()]),
            Err(BankError::UnknownBank("other".into()))
        );

        store.remove("known", &["a".into()]).unwrap();
        assert!(
            store
                .lookup("known", &[0; 32], 0)
                .unwrap()
                .matches
                .is_empty()
        );
        assert_eq!(store.list()[0].entries, 1);
        store.delete("known").unwrap();
        assert!(store.list().is_empty());
    }
}
