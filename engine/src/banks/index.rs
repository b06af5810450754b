//! Placeholder exact index: a linear scan behind the index's interface.

use super::entry::{Pdq, hamming};

/// An exact index over 256-bit hashes.
pub struct HashIndex {
    hashes: Vec<Pdq>,
}

impl HashIndex {
    /// Build over `hashes`; position p holds `hashes[order[p]]`.
    pub fn build(hashes: Vec<Pdq>) -> (HashIndex, Vec<u32>) {
        let order = (0..hashes.len() as u32).collect();
        (HashIndex { hashes }, order)
    }

    /// How many hashes.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The hash at `position`.
    pub fn hash(&self, position: u32) -> &Pdq {
        &self.hashes[position as usize]
    }

    /// Every position within `max_distance` of `query`, with its distance.
    pub fn search(&self, query: &Pdq, max_distance: u32, out: &mut Vec<(u32, u32)>) {
        for (position, hash) in self.hashes.iter().enumerate() {
            let distance = hamming(hash, query);
            if distance <= max_distance {
                out.push((position as u32, distance));
            }
        }
    }

    /// Bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.hashes.len() * 32
    }
}
