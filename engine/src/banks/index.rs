//! An exact Hamming-distance index over 256-bit hashes: multi-index hashing
//! (Norouzi, Punjani and Fleet), sized for banks of millions of PDQ hashes.
//!
//! A hash is cut into 16 chunks of 16 bits, and each chunk has a table
//! from its value to the positions of the hashes holding it. By the
//! pigeonhole principle, a hash within `r = 16q + a` bits of the query
//! (`a < 16`) is within `q` bits of it in one of chunks `0..=a`, or within
//! `q - 1` in one of the others; so a search visits, in each chunk's table,
//! only the values that near the query's chunk, and checks the hashes
//! found there against the whole query. At the matching distance of 31
//! that is every value within one bit of each chunk: 16 x 17 = 272
//! buckets, about 4,000 candidates in a bank of a million random hashes,
//! where a scan reads all million.
//!
//! Why 16 tables, not fewer and wider: a search costs one cache miss per
//! bucket visited and one per candidate. Eight tables of 32-bit words cut
//! the memory to about 62 bytes a hash but must visit every key within
//! three bits of each word (5,576 buckets at a million hashes); measured
//! on the same machine that was 3x faster than a scan, against about 25x
//! for this layout (see BENCHMARKS.md). The cost is memory: 32 bytes of
//! hash plus 16 three-byte positions and the bucket offsets, about 84
//! bytes a hash.
//!
//! Small banks use fewer key bits per chunk (buckets of about 16 hashes),
//! so the offsets stay small; the hash then settles the rest of the chunk.
//! When the distance asked for is so wide that the buckets would cost more
//! than reading everything, a search scans: every distance is exact and
//! none is pathological.

use super::entry::{Pdq, hamming};

/// Chunks a hash is cut into, one table each.
const CHUNKS: usize = 16;

/// Bits in a chunk.
const CHUNK_BITS: u32 = 16;

/// Buckets hold about `2^BUCKET_BITS` hashes.
const BUCKET_BITS: u32 = 4;

/// Positions are stored in three bytes: an index holds at most this many
/// hashes (16.7 million) before it only scans.
const MAX_INDEXED: usize = 1 << 24;

/// Below this many hashes a scan is as fast as anything and needs nothing.
const MIN_INDEXED: usize = 256;

/// Relative costs for choosing between probing and scanning, from the
/// benchmark: a bucket visited is a cache miss, a candidate a miss and a
/// comparison, a hash scanned a streamed comparison.
const BUCKET_COST: f64 = 30.0;
const CANDIDATE_COST: f64 = 12.0;
const SCAN_COST: f64 = 3.0;

/// An exact index over 256-bit hashes. `search` returns what
/// [`linear_scan`] returns, for any distance.
pub struct HashIndex {
    hashes: Vec<Pdq>,
    /// Bits of each chunk that choose its bucket (its top bits); 0 when the
    /// index only scans.
    key_bits: u32,
    tables: Vec<Table>,
}

/// One chunk's table: bucket `b` is `positions[3 * offsets[b]..3 *
/// offsets[b + 1]]`, each position three little-endian bytes.
struct Table {
    offsets: Vec<u32>,
    positions: Vec<u8>,
}

impl HashIndex {
    /// Index `hashes`; position `p` holds `hashes[order[p]]` (here the
    /// input order itself).
    pub fn build(hashes: Vec<Pdq>) -> (HashIndex, Vec<u32>) {
        let order = (0..hashes.len() as u32).collect();
        let len = hashes.len();
        if !(MIN_INDEXED..=MAX_INDEXED).contains(&len) {
            let index = HashIndex {
                hashes,
                key_bits: 0,
                tables: Vec::new(),
            };
            return (index, order);
        }
        let key_bits = (usize::BITS - len.leading_zeros())
            .saturating_sub(BUCKET_BITS)
            .clamp(1, CHUNK_BITS);
        let tables = (0..CHUNKS)
            .map(|c| Table::build(&hashes, c, key_bits))
            .collect();
        (
            HashIndex {
                hashes,
                key_bits,
                tables,
            },
            order,
        )
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

    /// Append every `(position, distance)` within `max_distance` of
    /// `query` to `out`, each once, in no particular order.
    pub fn search(&self, query: &Pdq, max_distance: u32, out: &mut Vec<(u32, u32)>) {
        let plan = Plan::new(max_distance);
        if self.tables.is_empty() || self.scan_is_cheaper(&plan) {
            linear_scan(&self.hashes, query, max_distance, out);
            return;
        }
        let query_chunks = chunks(query);
        let candidates = self.candidates(&query_chunks, &plan);
        // Each candidate's hash is a cache miss. Touching them all first, in
        // a loop of independent loads, lets the processor wait for many at
        // once; the checks below then read from cache. (Checking as they are
        // found waits for one miss at a time: three times slower.)
        let touched = candidates
            .iter()
            .fold(0u8, |acc, &(p, _)| acc ^ self.hashes[p as usize][0]);
        std::hint::black_box(touched);
        for (position, c) in candidates {
            self.verify(position, usize::from(c), &query_chunks, query, &plan, out);
        }
    }

    /// Every position in the buckets the plan visits, with the chunk whose
    /// table led to it. The buckets' bounds are all read first and their
    /// contents after, for the same reason candidates are touched first:
    /// independent misses overlap, a miss that waits for another does not.
    fn candidates(&self, query_chunks: &[u16; CHUNKS], plan: &Plan) -> Vec<(u32, u8)> {
        let drop_bits = CHUNK_BITS - self.key_bits;
        let mut buckets: Vec<(u32, u32, u8)> = Vec::with_capacity(CHUNKS * 17);
        for (c, table) in self.tables.iter().enumerate() {
            let Some(threshold) = plan.thresholds[c] else {
                continue;
            };
            let key = u32::from(query_chunks[c]) >> drop_bits;
            for_each_mask(self.key_bits, threshold, |mask| {
                let bucket = (key ^ mask) as usize;
                buckets.push((table.offsets[bucket], table.offsets[bucket + 1], c as u8));
            });
        }
        let total: usize = buckets.iter().map(|&(s, e, _)| (e - s) as usize).sum();
        let mut candidates = Vec::with_capacity(total);
        for (start, end, c) in buckets {
            let positions = &self.tables[usize::from(c)].positions;
            let bytes = &positions[start as usize * 3..end as usize * 3];
            candidates.extend(
                bytes
                    .chunks_exact(3)
                    .map(|b| (u32::from_le_bytes([b[0], b[1], b[2], 0]), c)),
            );
        }
        candidates
    }

    /// Bytes the index holds: hashes, positions and offsets.
    pub fn memory_bytes(&self) -> usize {
        let tables: usize = self
            .tables
            .iter()
            .map(|t| t.offsets.capacity() * 4 + t.positions.capacity())
            .sum();
        self.hashes.capacity() * 32 + tables
    }

    /// A candidate found through chunk `c`: reported if it is within the
    /// distance and no earlier chunk's table also leads to it, so that each
    /// match is reported once.
    fn verify(
        &self,
        position: u32,
        c: usize,
        query_chunks: &[u16; CHUNKS],
        query: &Pdq,
        plan: &Plan,
        out: &mut Vec<(u32, u32)>,
    ) {
        let hash = &self.hashes[position as usize];
        // Almost every candidate is far: settle that first, cheaply.
        let distance = hamming(hash, query);
        if distance > plan.max_distance {
            return;
        }
        let found = chunks(hash);
        let near = |i: usize| {
            plan.thresholds[i].is_some_and(|t| (found[i] ^ query_chunks[i]).count_ones() <= t)
        };
        // With fewer key bits than chunk bits the bucket holds hashes whose
        // chunk is only near in its top bits: the whole chunk decides.
        if near(c) && !(0..c).any(near) {
            out.push((position, distance));
        }
    }

    /// Whether reading every hash would cost less than the buckets.
    fn scan_is_cheaper(&self, plan: &Plan) -> bool {
        let len = self.hashes.len() as f64;
        let per_bucket = len / f64::from(1u32 << self.key_bits);
        let buckets: f64 = plan
            .thresholds
            .iter()
            .flatten()
            .map(|&t| masks_within(self.key_bits, t))
            .sum();
        buckets * (BUCKET_COST + per_bucket * CANDIDATE_COST) >= len * SCAN_COST
    }
}

impl Table {
    /// Chunk `c`'s table: a counting sort of positions by the chunk's key.
    fn build(hashes: &[Pdq], c: usize, key_bits: u32) -> Table {
        let drop_bits = CHUNK_BITS - key_bits;
        let key = |hash: &Pdq| (u32::from(chunks(hash)[c]) >> drop_bits) as usize;
        let mut offsets = vec![0u32; (1 << key_bits) + 1];
        for hash in hashes {
            offsets[key(hash) + 1] += 1;
        }
        for b in 1..offsets.len() {
            offsets[b] += offsets[b - 1];
        }
        let mut next = offsets.clone();
        let mut positions = vec![0u8; hashes.len() * 3];
        for (position, hash) in hashes.iter().enumerate() {
            let slot = &mut next[key(hash)];
            let at = *slot as usize * 3;
            positions[at..at + 3].copy_from_slice(&(position as u32).to_le_bytes()[..3]);
            *slot += 1;
        }
        Table { offsets, positions }
    }
}

/// How near each chunk must be for a search of `max_distance`.
struct Plan {
    max_distance: u32,
    /// `None` for a chunk whose table need not be visited.
    thresholds: [Option<u32>; CHUNKS],
}

impl Plan {
    fn new(max_distance: u32) -> Self {
        let (q, a) = (max_distance / CHUNKS as u32, max_distance as usize % CHUNKS);
        Plan {
            max_distance,
            thresholds: std::array::from_fn(|c| if c <= a { Some(q) } else { q.checked_sub(1) }),
        }
    }
}

/// The 16 chunks of a hash, each two bytes big-endian.
fn chunks(hash: &Pdq) -> [u16; CHUNKS] {
    std::array::from_fn(|c| u16::from_be_bytes([hash[2 * c], hash[2 * c + 1]]))
}

/// Call `visit` with every `bits`-bit mask of at most `max_weight` set
/// bits, lightest first (Gosper's hack within each weight).
fn for_each_mask(bits: u32, max_weight: u32, mut visit: impl FnMut(u32)) {
    let limit = 1u64 << bits;
    for weight in 0..=max_weight.min(bits) {
        let mut mask = (1u64 << weight) - 1;
        while mask < limit {
            visit(mask as u32);
            if mask == 0 {
                break;
            }
            let lowest = mask & mask.wrapping_neg();
            let ripple = mask + lowest;
            mask = ripple | (((ripple ^ mask) >> 2) >> lowest.trailing_zeros());
        }
    }
}

/// How many masks [`for_each_mask`] visits.
fn masks_within(bits: u32, max_weight: u32) -> f64 {
    let mut total = 0.0;
    let mut choose = 1.0;
    for weight in 0..=max_weight.min(bits) {
        total += choose;
        choose = choose * f64::from(bits - weight) / f64::from(weight + 1);
    }
    total
}

/// The reference: every `(index, distance)` within `max_distance`, by
/// reading every hash.
pub fn linear_scan(hashes: &[Pdq], query: &Pdq, max_distance: u32, out: &mut Vec<(u32, u32)>) {
    for (position, hash) in hashes.iter().enumerate() {
        let distance = hamming(hash, query);
        if distance <= max_distance {
            out.push((position as u32, distance));
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// xorshift64*: hashes from a seed, without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn hash(&mut self) -> Pdq {
            let mut hash = [0u8; 32];
            for chunk in hash.chunks_mut(8) {
                chunk.copy_from_slice(&self.next().to_le_bytes());
            }
            hash
        }

        /// `hash` with `flips` random bits flipped (some may flip back).
        fn near(&mut self, mut hash: Pdq, flips: u32) -> Pdq {
            for _ in 0..flips {
                let bit = (self.next() % 256) as usize;
                hash[bit / 8] ^= 1 << (bit % 8);
            }
            hash
        }
    }

    fn sorted(mut found: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
        found.sort_unstable();
        found
    }

    fn searched(index: &HashIndex, query: &Pdq, max_distance: u32) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        index.search(query, max_distance, &mut out);
        let all = out.len();
        let unique = sorted(out);
        assert!(
            unique.windows(2).all(|w| w[0] != w[1]),
            "duplicates among {all}"
        );
        unique
    }

    fn scanned(hashes: &[Pdq], query: &Pdq, max_distance: u32) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        linear_scan(hashes, query, max_distance, &mut out);
        sorted(out)
    }

    /// A bank of clusters: `seeds` random hashes, each with near copies.
    fn clustered(seed: u64, seeds: usize, copies: usize, spread: u32) -> Vec<Pdq> {
        let mut rng = Rng(seed | 1);
        let mut bank = Vec::new();
        for _ in 0..seeds {
            let centre = rng.hash();
            bank.push(centre);
            for _ in 0..copies {
                let flips = (rng.next() % u64::from(spread + 1)) as u32;
                bank.push(rng.near(centre, flips));
            }
        }
        bank
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The index returns exactly what a scan returns: banks of
        /// near-duplicate clusters (many true matches at small distances),
        /// queries that are copies, near copies or unrelated, and distances
        /// over the whole range with extra weight at and around 31.
        #[test]
        fn search_equals_linear_scan(
            seed in any::<u64>(),
            seeds in 1usize..120,
            copies in 0usize..24,
            spread in 0u32..48,
            queries in prop::collection::vec((any::<u64>(), 0u32..64, 0u8..3), 1..12),
            distances in prop::collection::vec(
                prop_oneof![4 => Just(31u32), 4 => 0u32..=40, 1 => 0u32..=256],
                1..4,
            ),
        ) {
            let bank = clustered(seed, seeds, copies, spread);
            let (index, order) = HashIndex::build(bank.clone());
            prop_assert!(order.iter().enumerate().all(|(p, &i)| p as u32 == i));
            let mut rng = Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1);
            for (pick, flips, kind) in queries {
                let query = match kind {
                    0 => bank[(pick % bank.len() as u64) as usize],
                    1 => rng.near(bank[(pick % bank.len() as u64) as usize], flips),
                    _ => rng.hash(),
                };
                for &distance in &distances {
                    prop_assert_eq!(
                        searched(&index, &query, distance),
                        scanned(&bank, &query, distance),
                        "distance {}", distance
                    );
                }
            }
        }
    }

    #[test]
    fn a_large_bank_is_probed_and_exact() {
        let mut bank = clustered(7, 3000, 9, 40);
        let mut rng = Rng(11);
        bank.extend((0..20_000).map(|_| rng.hash()));
        let (index, _) = HashIndex::build(bank.clone());
        assert!(!index.tables.is_empty(), "indexed, not scanned");
        assert!(!index.scan_is_cheaper(&Plan::new(31)), "31 is probed");
        assert!(index.scan_is_cheaper(&Plan::new(128)), "128 is scanned");
        let mut matched = 0;
        for n in 0..300 {
            let query = rng.near(bank[n * 97 % bank.len()], (n % 40) as u32);
            for distance in [0, 15, 16, 31, 32, 47] {
                let found = searched(&index, &query, distance);
                assert_eq!(
                    found,
                    scanned(&bank, &query, distance),
                    "distance {distance}"
                );
                matched += found.len();
            }
        }
        assert!(
            matched > 1000,
            "the queries found matches to compare: {matched}"
        );
    }

    #[test]
    fn edges_of_the_distance() {
        let mut rng = Rng(3);
        let mut bank: Vec<Pdq> = (0..1000).map(|_| rng.hash()).collect();
        let base = bank[0];
        let mut at = base;
        // 31 bits flipped, two per chunk where possible, so no chunk is
        // within one bit but the hash is within 31.
        for bit in 0..31usize {
            let byte = (bit / 2) * 2 + bit % 2;
            at[byte] ^= 0x80 >> (bit / 2 % 8);
        }
        assert_eq!(hamming(&at, &base), 31);
        let mut beyond = at;
        beyond[31] ^= 1;
        bank.push(at);
        bank.push(beyond);
        bank.push(base);
        let (index, _) = HashIndex::build(bank);
        let found = searched(&index, &base, 31);
        assert_eq!(found, [(0, 0), (1000, 31), (1002, 0)]);
        assert_eq!(searched(&index, &base, 0), [(0, 0), (1002, 0)]);
        assert_eq!(searched(&index, &base, 256).len(), 1003);
    }

    #[test]
    fn empty_and_small_indexes_scan() {
        let (empty, order) = HashIndex::build(Vec::new());
        assert!(empty.is_empty() && order.is_empty());
        assert!(searched(&empty, &[0; 32], 256).is_empty());
        let (small, _) = HashIndex::build(vec![[1; 32], [1; 32]]);
        assert_eq!(searched(&small, &[1; 32], 0), [(0, 0), (1, 0)]);
        assert_eq!(small.memory_bytes(), 64);
    }

    #[test]
    fn masks_are_each_visited_once() {
        let mut seen = Vec::new();
        for_each_mask(8, 2, |m| seen.push(m));
        assert_eq!(seen.len() as f64, masks_within(8, 2));
        assert_eq!(seen.len(), 1 + 8 + 28);
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 37);
        assert!(seen.iter().all(|m| m.count_ones() <= 2 && *m < 256));
    }
}
