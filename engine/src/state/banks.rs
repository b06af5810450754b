//! Named banks of 256-bit PDQ hashes that rules match media against.
//!
//! Matching is an exact linear scan: correct at any size and fast enough
//! for the thousands of entries tests and demos use. An index for millions
//! of entries replaces the scan behind the same interface.

use std::collections::BTreeMap;

use super::{HashMatch, StateError};

/// One entry of a bank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankEntry {
    /// The entry's id in its bank, as evidence names it.
    pub id: String,
    /// The PDQ hash.
    pub hash: [u8; 32],
}

/// Every bank, by name. Immutable once built.
#[derive(Clone, Debug, Default)]
pub struct HashBanks {
    banks: BTreeMap<String, Vec<BankEntry>>,
}

impl HashBanks {
    /// No banks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add entries to a bank, creating it if needed.
    pub fn with_entries(
        mut self,
        bank: &str,
        entries: impl IntoIterator<Item = BankEntry>,
    ) -> Self {
        self.banks
            .entry(bank.to_string())
            .or_default()
            .extend(entries);
        self
    }

    /// The bank names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.banks.keys().map(String::as_str)
    }

    /// Entries of `bank` within `max_distance` bits of `hash`, nearest first
    /// (ties by entry id, so the order is stable).
    pub fn matches(
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
            .filter_map(|entry| {
                let distance = hamming(&entry.hash, hash);
                (distance <= max_distance).then(|| HashMatch {
                    bank: bank.to_string(),
                    entry_id: entry.id.clone(),
                    distance,
                })
            })
            .collect();
        matches.sort_by(|a, b| {
            a.distance
                .cmp(&b.distance)
                .then_with(|| a.entry_id.cmp(&b.entry_id))
        });
        Ok(matches)
    }
}

/// Bits that differ between two hashes.
pub fn hamming(a: &[u8; 32], b: &[u8; 32]) -> u32 {
    a.chunks_exact(8)
        .zip(b.chunks_exact(8))
        .map(|(x, y)| {
            let x = u64::from_le_bytes(x.try_into().expect("8-byte chunk"));
            let y = u64::from_le_bytes(y.try_into().expect("8-byte chunk"));
            (x ^ y).count_ones()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, hash: [u8; 32]) -> BankEntry {
        BankEntry {
            id: id.into(),
            hash,
        }
    }

    #[test]
    fn matches_within_distance_nearest_first() {
        let mut near = [0u8; 32];
        near[0] = 0b111; // 3 bits away
        let mut edge = [0u8; 32];
        edge[1..5].fill(0xff); // 32 bits away
        let banks = HashBanks::new().with_entries(
            "bank",
            [
                entry("edge", edge),
                entry("near", near),
                entry("same", [0; 32]),
            ],
        );
        let found = banks.matches("bank", &[0; 32], 31).unwrap();
        let ids: Vec<(&str, u32)> = found
            .iter()
            .map(|m| (m.entry_id.as_str(), m.distance))
            .collect();
        assert_eq!(ids, [("same", 0), ("near", 3)]);
        assert_eq!(banks.matches("bank", &[0; 32], 32).unwrap().len(), 3);
    }

    #[test]
    fn unknown_bank_is_an_error() {
        assert_eq!(
            HashBanks::new().matches("nope", &[0; 32], 31),
            Err(StateError::UnknownBank("nope".into()))
        );
    }
}
