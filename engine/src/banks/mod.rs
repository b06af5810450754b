//! Hash banks: named sets of 256-bit PDQ hashes of known material that
//! rules match profile photos and group icons against, and allow-lists of
//! known false positives that suppress a match.
//!
//! * [`entry`]: an entry, a match, an allow-list hit; Hamming distance.
//! * [`index`]: the exact Hamming-distance index a bank searches.
//! * [`bank`]: one bank, indexed, changed without re-indexing every time.
//! * [`file`]: bank files (hex lines or JSON lines) and their errors.
//! * [`store`]: the live set of banks, replaced atomically on a change, so
//!   evaluation never pauses for one.
//!
//! [`HashBanks`] is one immutable set of banks: what a lookup sees.

pub mod bank;
pub mod entry;
pub mod file;
pub mod index;
pub mod store;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use bank::{Bank, BankError, BankKind};
pub use entry::{
    AllowHit, BankEntry, HashLookup, HashMatch, MatchEvidence, Pdq, hamming, parse_hex,
};
pub use store::{BankStore, BankSummary};

use crate::state::StateError;

/// The most matches one lookup returns, nearest first. A match is within
/// 31 bits; a lookup wide enough to match more than this is asking for
/// unrelated images, and must not copy out a bank.
pub const MAX_MATCHES: usize = 64;

/// Every bank, by name. Immutable: a change makes a new set.
#[derive(Clone, Debug, Default)]
pub struct HashBanks {
    banks: BTreeMap<String, Arc<Bank>>,
}

impl HashBanks {
    /// No banks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add entries to a bank of known material, creating it if needed; an
    /// entry whose id is already there replaces it. For building banks in
    /// code (tests, demos); the control plane goes through [`BankStore`].
    pub fn with_entries(
        mut self,
        bank: &str,
        entries: impl IntoIterator<Item = BankEntry>,
    ) -> Self {
        let mut all: BTreeMap<Arc<str>, BankEntry> = self
            .banks
            .get(bank)
            .map(|b| b.entries().map(|e| (e.id.clone(), e)).collect())
            .unwrap_or_default();
        all.extend(entries.into_iter().map(|e| (e.id.clone(), e)));
        let kind = self
            .banks
            .get(bank)
            .map_or_else(BankKind::matching, |b| b.kind().clone());
        match Bank::build(bank, kind, all.into_values().collect()) {
            Ok(built) => {
                self.banks.insert(bank.to_string(), Arc::new(built));
            }
            // Ids are unique by construction; only an unusable name fails,
            // and a builder for code has no caller to tell.
            Err(error) => tracing::error!(%error, "bank not built"),
        }
        self
    }

    /// The set with `bank` in it, replacing any bank of its name. Refused
    /// if its allow-lists are not allow-lists here, or if it stops being an
    /// allow-list that another bank names.
    pub fn with_bank(&self, bank: Bank) -> Result<HashBanks, BankError> {
        let invalid = |message: String| BankError::Invalid {
            bank: bank.name().to_string(),
            message,
        };
        if let BankKind::Match { allow_lists } = bank.kind() {
            for list in allow_lists {
                match self.banks.get(list).map(|b| b.kind()) {
                    Some(BankKind::Allow { .. }) => {}
                    Some(BankKind::Match { .. }) => {
                        return Err(invalid(format!(
                            "`{list}` is a bank of known material, not an allow-list"
                        )));
                    }
                    None => return Err(invalid(format!("there is no allow-list `{list}`"))),
                }
            }
            if let Some(user) = self.named_as_allow_list_by(bank.name()) {
                return Err(BankError::InUse {
                    bank: bank.name().to_string(),
                    by: user.to_string(),
                });
            }
        }
        let mut next = self.clone();
        next.banks.insert(bank.name().to_string(), Arc::new(bank));
        Ok(next)
    }

    /// The set without the bank `name`. Refused if another bank names it as
    /// an allow-list.
    pub fn without_bank(&self, name: &str) -> Result<HashBanks, BankError> {
        if !self.banks.contains_key(name) {
            return Err(BankError::UnknownBank(name.to_string()));
        }
        if let Some(user) = self.named_as_allow_list_by(name) {
            return Err(BankError::InUse {
                bank: name.to_string(),
                by: user.to_string(),
            });
        }
        let mut next = self.clone();
        next.banks.remove(name);
        Ok(next)
    }

    /// The bank `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Bank>> {
        self.banks.get(name)
    }

    /// The bank names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.banks.keys().map(String::as_str)
    }

    /// Every bank, by name.
    pub fn banks(&self) -> impl Iterator<Item = &Arc<Bank>> {
        self.banks.values()
    }

    /// Entries of `bank` within `max_distance` bits of `hash`, nearest
    /// first (at most [`MAX_MATCHES`]), and the allow-list entry that suppresses them if there is
    /// one. Allow-lists are consulted only when something matched.
    pub fn lookup(
        &self,
        bank: &str,
        hash: &Pdq,
        max_distance: u32,
    ) -> Result<HashLookup, StateError> {
        let found = self
            .banks
            .get(bank)
            .ok_or_else(|| StateError::UnknownBank(bank.to_string()))?;
        let matches = found.lookup(hash, max_distance, MAX_MATCHES);
        let suppressed_by = match found.kind() {
            BankKind::Match { allow_lists } if !matches.is_empty() => allow_lists
                .iter()
                .find_map(|list| self.allowed_by(list, hash)),
            _ => None,
        };
        Ok(HashLookup {
            matches,
            suppressed_by,
        })
    }

    /// The entries a rule is given for a lookup: none when an allow-list
    /// suppressed them.
    pub fn matches(
        &self,
        bank: &str,
        hash: &Pdq,
        max_distance: u32,
    ) -> Result<Vec<HashMatch>, StateError> {
        let lookup = self.lookup(bank, hash, max_distance)?;
        Ok(lookup.effective().to_vec())
    }

    fn allowed_by(&self, list: &str, hash: &Pdq) -> Option<AllowHit> {
        let bank = self.banks.get(list)?;
        let BankKind::Allow { max_distance } = bank.kind() else {
            return None;
        };
        bank.nearest(hash, *max_distance).map(|m| AllowHit {
            allow_list: list.to_string(),
            entry_id: m.entry_id,
            distance: m.distance,
        })
    }

    fn named_as_allow_list_by(&self, name: &str) -> Option<&str> {
        self.banks.values().find_map(|b| match b.kind() {
            BankKind::Match { allow_lists } if allow_lists.iter().any(|l| l == name) => {
                Some(b.name())
            }
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, hash: Pdq) -> BankEntry {
        BankEntry::new(id, hash)
    }

    fn with_allow_list() -> HashBanks {
        let allow = Bank::build(
            "known-fp",
            BankKind::Allow { max_distance: 8 },
            vec![entry("meme-1", [0x0f; 32])],
        )
        .unwrap();
        let known = Bank::build(
            "known",
            BankKind::Match {
                allow_lists: vec!["known-fp".into()],
            },
            vec![entry("k1", [0x0f; 32]), entry("k2", [0xf0; 32])],
        )
        .unwrap();
        HashBanks::new()
            .with_bank(allow)
            .unwrap()
            .with_bank(known)
            .unwrap()
    }

    #[test]
    fn an_allow_list_suppresses_matches_near_a_known_false_positive() {
        let banks = with_allow_list();
        let mut near_fp = [0x0f; 32];
        near_fp[0] = 0x0c; // 2 bits from the false positive
        let lookup = banks.lookup("known", &near_fp, 31).unwrap();
        assert_eq!(lookup.matches.len(), 1, "the match is kept as evidence");
        let hit = lookup.suppressed_by.clone().expect("suppressed");
        assert_eq!(
            (hit.allow_list.as_str(), hit.entry_id.as_str(), hit.distance),
            ("known-fp", "meme-1", 2)
        );
        assert!(lookup.effective().is_empty());
        assert!(banks.matches("known", &near_fp, 31).unwrap().is_empty());

        // Another banked image is not near the false positive: it matches.
        let lookup = banks.lookup("known", &[0xf0; 32], 31).unwrap();
        assert_eq!(lookup.suppressed_by, None);
        assert_eq!(lookup.effective()[0].entry_id, "k2");
    }

    #[test]
    fn allow_list_links_are_checked() {
        let banks = with_allow_list();
        let dangling = Bank::build(
            "x",
            BankKind::Match {
                allow_lists: vec!["missing".into()],
            },
            Vec::new(),
        )
        .unwrap();
        assert!(
            banks
                .with_bank(dangling)
                .unwrap_err()
                .to_string()
                .contains("there is no allow-list `missing`")
        );
        let wrong = Bank::build(
            "y",
            BankKind::Match {
                allow_lists: vec!["known".into()],
            },
            Vec::new(),
        )
        .unwrap();
        assert!(
            banks
                .with_bank(wrong)
                .unwrap_err()
                .to_string()
                .contains("not an allow-list")
        );
        assert!(banks.without_bank("known-fp").is_err());
        let turned = Bank::build("known-fp", BankKind::matching(), Vec::new()).unwrap();
        assert!(banks.with_bank(turned).is_err());
        let banks = banks.without_bank("known").unwrap();
        assert!(banks.without_bank("known-fp").is_ok());
        assert_eq!(
            banks.lookup("known", &[0; 32], 31),
            Err(StateError::UnknownBank("known".into()))
        );
    }

    #[test]
    fn builder_adds_and_replaces_by_id() {
        let banks = HashBanks::new()
            .with_entries("b", [entry("a", [0; 32]), entry("b", [1; 32])])
            .with_entries("b", [entry("a", [2; 32])]);
        let bank = banks.get("b").unwrap();
        assert_eq!(bank.len(), 2);
        assert_eq!(banks.matches("b", &[2; 32], 0).unwrap()[0].entry_id, "a");
        assert!(banks.matches("b", &[0; 32], 0).unwrap().is_empty());
    }
}
