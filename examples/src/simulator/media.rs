//! Simulated PDQ hashes: random ones for ordinary photos, which land about
//! 128 bits from anything, and near-duplicates of bank entries for the
//! ring's media, the way re-encoding or cropping a known image moves its hash
//! a few bits.

use rand::Rng;
use rand::seq::index;

use super::sample::{SimRng, random_id};
use super::truth::BankEntry;

/// The largest Hamming distance at which `known-hash-match` matches.
pub const MATCH_DISTANCE: u32 = 31;

/// The lowest PDQ quality `known-hash-match` trusts.
pub const MIN_MATCH_QUALITY: i64 = 50;

/// The most bits a near-duplicate differs from its bank entry: clearly
/// inside [`MATCH_DISTANCE`].
const MAX_NEAR_DUPLICATE_BITS: usize = 25;

/// An uploaded image as the hashing service describes it.
pub(crate) struct Photo {
    pub hash: [u8; 32],
    pub quality: i64,
    pub media_id: String,
}

/// The number of bits in which two hashes differ.
pub fn hamming_distance(a: &[u8], b: &[u8]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// The nearest bank entry to `hash` and its distance, if the bank has any.
pub fn nearest_bank_entry<'a>(bank: &'a [BankEntry], hash: &[u8]) -> Option<(&'a BankEntry, u32)> {
    bank.iter()
        .map(|entry| (entry, hamming_distance(&entry.hash, hash)))
        .min_by_key(|&(_, distance)| distance)
}

/// A uniformly random 256-bit hash.
pub(crate) fn random_hash(rng: &mut SimRng) -> [u8; 32] {
    let mut hash = [0u8; 32];
    rng.fill(&mut hash);
    hash
}

/// `source` with 0 to 25 distinct bits flipped.
pub(crate) fn near_duplicate(rng: &mut SimRng, source: &[u8; 32]) -> [u8; 32] {
    let mut hash = *source;
    let flips = rng.random_range(0..=MAX_NEAR_DUPLICATE_BITS);
    for bit in index::sample(rng, 256, flips) {
        hash[bit / 8] ^= 1 << (bit % 8);
    }
    hash
}

/// An ordinary photo: a random hash of decent quality.
pub(crate) fn ordinary_photo(rng: &mut SimRng) -> Photo {
    Photo {
        hash: random_hash(rng),
        quality: rng.random_range(60..=100),
        media_id: random_id(rng, "media"),
    }
}

/// A re-upload of a random bank image. `low_quality` uploads (a thumbnail, a
/// heavy crop) have quality 49 or less, which the matcher must not trust.
pub(crate) fn known_image_copy(rng: &mut SimRng, bank: &[BankEntry], low_quality: bool) -> Photo {
    let hash = match bank.len() {
        0 => random_hash(rng),
        len => {
            let source = bank[rng.random_range(0..len)].hash;
            near_duplicate(rng, &source)
        }
    };
    let quality = if low_quality {
        rng.random_range(5..MIN_MATCH_QUALITY)
    } else {
        rng.random_range(MIN_MATCH_QUALITY..=100)
    };
    Photo {
        hash,
        quality,
        media_id: random_id(rng, "media"),
    }
}
