//! One named bank: an indexed base of entries plus the changes made since
//! it was indexed.
//!
//! A bank is immutable; a change makes a new bank that shares the indexed
//! base. Entries added since the base was built are scanned (there are at
//! most [`REINDEX_ADDED`] of them) and removed ones are hidden by id, so a
//! live change costs time in proportion to the change, not to a bank of
//! millions. Past those bounds the bank is indexed again, on the thread
//! making the change, never on one evaluating events.

use std::collections::HashSet;
use std::sync::Arc;

use super::entry::{BankEntry, HashMatch, Pdq, hamming};
use super::index::HashIndex;

/// Entries added since indexing beyond which the bank is indexed again.
pub const REINDEX_ADDED: usize = 4096;

/// The largest distance an allow-list may suppress at: the distance that
/// makes a match. A known false positive is meant to suppress copies of
/// itself; a wider radius would suppress different images.
pub const MAX_ALLOW_DISTANCE: u32 = 31;

/// What a bank is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BankKind {
    /// Hashes of known material that rules match against, with the
    /// allow-lists that can suppress a match.
    Match {
        /// Names of allow-lists consulted when a lookup matches.
        allow_lists: Vec<String>,
    },
    /// Known false positives: a hash within `max_distance` of one of them
    /// matches nothing in the banks that name this list.
    Allow {
        /// How near a hash must be to an entry to be allowed.
        max_distance: u32,
    },
}

impl BankKind {
    /// A bank of known material with no allow-list.
    pub fn matching() -> Self {
        BankKind::Match {
            allow_lists: Vec::new(),
        }
    }

    /// "match" or "allow".
    pub fn name(&self) -> &'static str {
        match self {
            BankKind::Match { .. } => "match",
            BankKind::Allow { .. } => "allow",
        }
    }
}

/// Why a bank change was refused. Nothing changes when one is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BankError {
    /// No bank of that name.
    #[error("no hash bank named `{0}`")]
    UnknownBank(String),
    /// An entry id is given twice, or is already in the bank.
    #[error("bank `{bank}`: entry id `{id}` {why}")]
    DuplicateId {
        /// The bank.
        bank: String,
        /// The id.
        id: String,
        /// "is given twice" or "is already in the bank".
        why: &'static str,
    },
    /// An id to remove is not in the bank.
    #[error("bank `{bank}` has no entry `{id}`")]
    UnknownEntry {
        /// The bank.
        bank: String,
        /// The id.
        id: String,
    },
    /// Another bank uses this one as an allow-list, so it must stay one.
    #[error("bank `{bank}` is an allow-list of bank `{by}`; change that bank first")]
    InUse {
        /// The allow-list.
        bank: String,
        /// The bank that names it.
        by: String,
    },
    /// Something about the bank itself is wrong.
    #[error("bank `{bank}`: {message}")]
    Invalid {
        /// The bank.
        bank: String,
        /// What is wrong.
        message: String,
    },
}

/// Entries' ids, sources and times, in index order, kept as columns: a bank
/// of a million entries holds a million of each, and one `String` per id
/// would cost more than the index.
#[derive(Default)]
struct EntryTable {
    /// Every id, one after another.
    id_text: String,
    /// Where each id ends in `id_text`.
    id_ends: Vec<u32>,
    /// Distinct sources; entries point into it.
    sources: Vec<Arc<str>>,
    source_of: Vec<u32>,
    added_at_ms: Vec<i64>,
}

impl EntryTable {
    fn push(&mut self, entry: &BankEntry) {
        self.id_text.push_str(&entry.id);
        self.id_ends.push(self.id_text.len() as u32);
        // Sources are few (one per list loaded), so the last one almost
        // always matches and a scan of the rest is short.
        let source = match self.sources.iter().rposition(|s| *s == entry.source) {
            Some(index) => index,
            None => {
                self.sources.push(entry.source.clone());
                self.sources.len() - 1
            }
        };
        self.source_of.push(source as u32);
        self.added_at_ms.push(entry.added_at_ms);
    }

    fn id(&self, position: usize) -> &str {
        let start = match position {
            0 => 0,
            p => self.id_ends[p - 1] as usize,
        };
        &self.id_text[start..self.id_ends[position] as usize]
    }

    fn entry(&self, position: usize, hash: Pdq) -> BankEntry {
        BankEntry {
            id: Arc::from(self.id(position)),
            hash,
            source: self.sources[self.source_of[position] as usize].clone(),
            added_at_ms: self.added_at_ms[position],
        }
    }

    fn len(&self) -> usize {
        self.id_ends.len()
    }

    fn memory_bytes(&self) -> usize {
        self.id_text.capacity()
            + self.id_ends.capacity() * 4
            + self.source_of.capacity() * 4
            + self.added_at_ms.capacity() * 8
            + self.sources.iter().map(|s| s.len() + 32).sum::<usize>()
    }
}

/// The indexed part of a bank.
struct Indexed {
    index: HashIndex,
    table: EntryTable,
}

impl Indexed {
    fn build(entries: &[BankEntry]) -> Indexed {
        let (index, order) = HashIndex::build(entries.iter().map(|e| e.hash).collect());
        let mut table = EntryTable::default();
        for &input in &order {
            table.push(&entries[input as usize]);
        }
        Indexed { index, table }
    }
}

/// A named bank of PDQ hashes. Immutable: changes make a new bank.
#[derive(Clone)]
pub struct Bank {
    name: Arc<str>,
    kind: BankKind,
    base: Arc<Indexed>,
    /// Entries added since `base` was built.
    added: Vec<BankEntry>,
    /// Ids of `base` entries removed since it was built.
    removed: HashSet<Arc<str>>,
}

impl std::fmt::Debug for Bank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bank")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("entries", &self.len())
            .finish()
    }
}

impl Bank {
    /// A bank of `entries`. Ids must be unique.
    pub fn build(name: &str, kind: BankKind, entries: Vec<BankEntry>) -> Result<Bank, BankError> {
        check_kind(name, &kind)?;
        let mut seen = HashSet::with_capacity(entries.len());
        for entry in &entries {
            if !seen.insert(&*entry.id) {
                return Err(BankError::DuplicateId {
                    bank: name.to_string(),
                    id: entry.id.to_string(),
                    why: "is given twice",
                });
            }
        }
        Ok(Bank {
            name: Arc::from(name),
            kind,
            base: Arc::new(Indexed::build(&entries)),
            added: Vec::new(),
            removed: HashSet::new(),
        })
    }

    /// The bank's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it is for.
    pub fn kind(&self) -> &BankKind {
        &self.kind
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.base.table.len() - self.removed.len() + self.added.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes its index and entries hold (an estimate for the tables).
    pub fn memory_bytes(&self) -> usize {
        self.base.index.memory_bytes()
            + self.base.table.memory_bytes()
            + self.added.len() * (std::mem::size_of::<BankEntry>() + 16)
            + self.removed.len() * 32
    }

    /// The same bank, for a different purpose.
    pub fn with_kind(&self, kind: BankKind) -> Result<Bank, BankError> {
        check_kind(&self.name, &kind)?;
        let mut bank = self.clone();
        bank.kind = kind;
        Ok(bank)
    }

    /// Every entry, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = BankEntry> + '_ {
        let base = &self.base;
        (0..base.table.len())
            .filter(|&p| self.removed.is_empty() || !self.removed.contains(base.table.id(p)))
            .map(|p| base.table.entry(p, base.index.hash(p as u32)))
            .chain(self.added.iter().cloned())
    }

    /// The bank with `entries` added. Refused if an id is already in the
    /// bank or given twice.
    pub fn with_added(&self, entries: Vec<BankEntry>) -> Result<Bank, BankError> {
        let mut fresh: HashSet<&str> = HashSet::with_capacity(entries.len());
        for entry in &entries {
            if !fresh.insert(&entry.id) {
                return Err(self.duplicate(&entry.id, "is given twice"));
            }
        }
        if let Some(id) = self.live_ids_among(&fresh).into_iter().next() {
            return Err(self.duplicate(&id, "is already in the bank"));
        }
        let mut bank = self.clone();
        bank.added.extend(entries);
        Ok(bank.reindexed_if_due())
    }

    /// The bank without the entries of these ids. Refused, naming it, if
    /// one is not in the bank.
    pub fn without(&self, ids: &[String]) -> Result<Bank, BankError> {
        let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let found = self.live_ids_among(&wanted);
        if let Some(missing) = ids.iter().find(|id| !found.contains(id.as_str())) {
            return Err(BankError::UnknownEntry {
                bank: self.name.to_string(),
                id: missing.clone(),
            });
        }
        let mut bank = self.clone();
        bank.added.retain(|e| !wanted.contains(&*e.id));
        // What was found and not among the added entries is in the base
        // (an id in both was already hidden there when it was re-added).
        for id in found {
            if !self.added.iter().any(|e| *e.id == *id) {
                bank.removed.insert(Arc::from(id));
            }
        }
        Ok(bank.reindexed_if_due())
    }

    /// The `limit` entries nearest `query` within `max_distance` bits,
    /// nearest first, ties by entry id.
    pub fn lookup(&self, query: &Pdq, max_distance: u32, limit: usize) -> Vec<HashMatch> {
        if limit == 0 {
            return Vec::new();
        }
        let mut found = Vec::new();
        self.base.index.search(query, max_distance, &mut found);
        if !self.removed.is_empty() {
            found.retain(|&(p, _)| !self.removed.contains(self.base.table.id(p as usize)));
        }
        if found.len() > limit {
            // Only the nearest are made into matches: a lookup far wider
            // than a match must not copy out a whole bank.
            found.sort_unstable_by_key(|&(_, distance)| distance);
            let cutoff = found[limit - 1].1;
            found.retain(|&(_, distance)| distance <= cutoff);
        }
        let mut matches: Vec<HashMatch> = found
            .into_iter()
            .map(|(position, distance)| {
                let entry = self
                    .base
                    .table
                    .entry(position as usize, self.base.index.hash(position));
                self.matched(&entry, distance)
            })
            .collect();
        for entry in &self.added {
            let distance = hamming(&entry.hash, query);
            if distance <= max_distance {
                matches.push(self.matched(entry, distance));
            }
        }
        matches.sort_by(|a, b| {
            a.distance
                .cmp(&b.distance)
                .then_with(|| a.entry_id.cmp(&b.entry_id))
        });
        matches.truncate(limit);
        matches
    }

    /// The nearest entry within `max_distance`, if any.
    pub fn nearest(&self, query: &Pdq, max_distance: u32) -> Option<HashMatch> {
        self.lookup(query, max_distance, 1).into_iter().next()
    }

    fn matched(&self, entry: &BankEntry, distance: u32) -> HashMatch {
        HashMatch {
            bank: self.name.to_string(),
            entry_id: entry.id.to_string(),
            entry_hash: entry.hash,
            distance,
            source: entry.source.to_string(),
            added_at_ms: entry.added_at_ms,
        }
    }

    /// Which of `ids` the bank holds now: one pass over the base, however
    /// many ids are asked about.
    fn live_ids_among(&self, ids: &HashSet<&str>) -> HashSet<String> {
        let mut found: HashSet<String> = self
            .added
            .iter()
            .filter(|e| ids.contains(&*e.id))
            .map(|e| e.id.to_string())
            .collect();
        for position in 0..self.base.table.len() {
            let id = self.base.table.id(position);
            if ids.contains(id) && !self.removed.contains(id) {
                found.insert(id.to_string());
            }
        }
        found
    }

    fn duplicate(&self, id: &str, why: &'static str) -> BankError {
        BankError::DuplicateId {
            bank: self.name.to_string(),
            id: id.to_string(),
            why,
        }
    }

    /// Index again once the changes since the last indexing would make
    /// lookups scan too much or hide too many entries.
    fn reindexed_if_due(self) -> Bank {
        let hidden_too_many = self.removed.len() > 1024 + self.base.table.len() / 8;
        if self.added.len() <= REINDEX_ADDED && !hidden_too_many {
            return self;
        }
        let entries: Vec<BankEntry> = self.entries().collect();
        Bank {
            base: Arc::new(Indexed::build(&entries)),
            added: Vec::new(),
            removed: HashSet::new(),
            ..self
        }
    }
}

fn check_kind(name: &str, kind: &BankKind) -> Result<(), BankError> {
    let invalid = |message: String| BankError::Invalid {
        bank: name.to_string(),
        message,
    };
    if name.is_empty() || name.len() > 128 || name.chars().any(|c| c.is_control()) {
        return Err(invalid(
            "a bank name is 1 to 128 characters with no control characters".into(),
        ));
    }
    match kind {
        BankKind::Allow { max_distance } if *max_distance > MAX_ALLOW_DISTANCE => {
            Err(invalid(format!(
                "an allow-list suppresses at {MAX_ALLOW_DISTANCE} bits or less, not {max_distance}"
            )))
        }
        BankKind::Match { allow_lists } if allow_lists.iter().any(|l| l == name) => {
            Err(invalid("a bank cannot be its own allow-list".into()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, hash: Pdq) -> BankEntry {
        BankEntry::new(id, hash).from_source("list-a", 1_700_000_000_000)
    }

    /// `base` with its first `bits` bits flipped.
    fn flipped(base: Pdq, bits: u32) -> Pdq {
        let mut hash = base;
        for bit in 0..bits as usize {
            hash[bit / 8] ^= 0x80 >> (bit % 8);
        }
        hash
    }

    fn ids(matches: &[HashMatch]) -> Vec<(&str, u32)> {
        matches
            .iter()
            .map(|m| (m.entry_id.as_str(), m.distance))
            .collect()
    }

    fn bank() -> Bank {
        Bank::build(
            "known",
            BankKind::matching(),
            vec![
                entry("edge", flipped([0; 32], 31)),
                entry("near", flipped([0; 32], 3)),
                entry("same", [0; 32]),
                entry("far", flipped([0; 32], 32)),
            ],
        )
        .unwrap()
    }

    #[test]
    fn lookup_is_nearest_first_and_carries_the_evidence() {
        let found = bank().lookup(&[0; 32], 31, usize::MAX);
        assert_eq!(ids(&found), [("same", 0), ("near", 3), ("edge", 31)]);
        assert_eq!(found[1].entry_hash, flipped([0; 32], 3));
        assert_eq!(found[1].source, "list-a");
        assert_eq!(found[1].added_at_ms, 1_700_000_000_000);
        assert_eq!(found[1].bank, "known");
        assert_eq!(bank().lookup(&[0; 32], 32, usize::MAX).len(), 4);
    }

    #[test]
    fn a_limited_lookup_keeps_the_nearest() {
        let bank = bank().without(&["same".into()]).unwrap();
        assert_eq!(
            ids(&bank.lookup(&[0; 32], 256, 2)),
            [("near", 3), ("edge", 31)]
        );
        assert_eq!(ids(&bank.lookup(&[0; 32], 256, 1)), [("near", 3)]);
        assert!(bank.lookup(&[0; 32], 256, 0).is_empty());
    }

    #[test]
    fn added_and_removed_entries_count_at_once() {
        let bank = bank()
            .with_added(vec![entry("new", flipped([0; 32], 1))])
            .unwrap()
            .without(&["same".into(), "edge".into()])
            .unwrap();
        assert_eq!(
            ids(&bank.lookup(&[0; 32], 31, usize::MAX)),
            [("new", 1), ("near", 3)]
        );
        assert_eq!(bank.len(), 3);
        let mut listed: Vec<String> = bank.entries().map(|e| e.id.to_string()).collect();
        listed.sort();
        assert_eq!(listed, ["far", "near", "new"]);

        // A removed id may come back, with a new hash.
        let back = bank
            .with_added(vec![entry("same", flipped([0; 32], 2))])
            .unwrap();
        assert_eq!(
            ids(&back.lookup(&[0; 32], 2, usize::MAX)),
            [("new", 1), ("same", 2)]
        );
        let gone = back.without(&["new".into()]).unwrap();
        assert_eq!(ids(&gone.lookup(&[0; 32], 2, usize::MAX)), [("same", 2)]);
    }

    #[test]
    fn refused_changes_name_the_id() {
        let bank = bank();
        assert_eq!(
            bank.with_added(vec![entry("near", [1; 32])]).unwrap_err(),
            BankError::DuplicateId {
                bank: "known".into(),
                id: "near".into(),
                why: "is already in the bank"
            }
        );
        let twice = bank
            .with_added(vec![entry("x", [1; 32]), entry("x", [2; 32])])
            .unwrap_err();
        assert!(twice.to_string().contains("`x` is given twice"), "{twice}");
        let missing = bank.without(&["near".into(), "nope".into()]).unwrap_err();
        assert_eq!(missing.to_string(), "bank `known` has no entry `nope`");
        // The refused removal changed nothing.
        assert_eq!(bank.len(), 4);
        let built = Bank::build(
            "b",
            BankKind::matching(),
            vec![entry("a", [0; 32]), entry("a", [1; 32])],
        );
        assert!(matches!(built, Err(BankError::DuplicateId { .. })));
    }

    #[test]
    fn many_additions_reindex_and_keep_every_entry() {
        let mut bank = bank();
        let added: Vec<BankEntry> = (0..REINDEX_ADDED + 5)
            .map(|n| {
                let mut hash = [0xaa; 32];
                hash[..8].copy_from_slice(&(n as u64).to_le_bytes());
                entry(&format!("n{n}"), hash)
            })
            .collect();
        bank = bank.with_added(added).unwrap();
        assert!(bank.added.is_empty(), "indexed again");
        assert_eq!(bank.len(), 4 + REINDEX_ADDED + 5);
        let mut probe = [0xaa; 32];
        probe[..8].copy_from_slice(&77u64.to_le_bytes());
        assert_eq!(ids(&bank.lookup(&probe, 0, usize::MAX)), [("n77", 0)]);
        assert_eq!(bank.lookup(&[0; 32], 3, usize::MAX).len(), 2);
    }

    #[test]
    fn kinds_are_checked() {
        let wide = Bank::build("fp", BankKind::Allow { max_distance: 40 }, Vec::new());
        assert!(wide.unwrap_err().to_string().contains("31 bits or less"));
        let own = Bank::build(
            "b",
            BankKind::Match {
                allow_lists: vec!["b".into()],
            },
            Vec::new(),
        );
        assert!(own.unwrap_err().to_string().contains("its own allow-list"));
        assert!(Bank::build("", BankKind::matching(), Vec::new()).is_err());
    }
}
