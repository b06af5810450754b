//! An exact Hamming-distance index over 256-bit hashes: multi-index hashing
//! (Norouzi, Punjani and Fleet) with filtered buckets, sized for banks of
//! millions of PDQ hashes in at most 64 bytes a hash.
//!
//! The hashes are stored sorted by their first 16 bits, in 65,536 rows,
//! each keeping only its other 30 bytes: a head of 8, which with the row
//! settles almost every far hash, and a rest of 22. The other 240 bits are
//! cut into ten chunks of 24, and each chunk has a table: a bucket per
//! value of the chunk's top 16 bits (fewer in a small bank), holding for
//! each hash its next 8 bits (the filter) and its row number. By the
//! pigeonhole principle a hash within `r` of the query is within `t_c` of
//! it in some chunk `c`, for any thresholds with `sum(t_c + 1) > r` (see
//! [`plan`]). So a search reads the rows near the query's first 16 bits,
//! and in each table the buckets near the query's key; in those it keeps
//! the entries whose filter is near enough too, reads the rows they name,
//! and checks every hash of those rows against the whole query.
//!
//! At distance 31 in a bank of a million random hashes that is 17 rows
//! and 1,370 buckets of about 15 entries, whose filters leave about 180
//! rows to read: every row number stands for a chunk of 24 bits near the
//! query's, so few are read in vain. Row numbers instead of positions and
//! hashes without their row bits are what keep it near 63 bytes a hash
//! (30 of hash, 10 x 3 of entries, 3 of offsets); see BENCHMARKS.md for
//! the layouts measured on the way.
//!
//! Small banks scan: under [`MIN_PROBED`] hashes a scan is about as fast
//! and needs no row offsets. When the distance asked for is so wide that
//! the buckets would cost more than reading everything, a search scans
//! too: every distance is exact and none is pathological.

mod filter;
mod plan;

use std::sync::OnceLock;

use super::entry::{Pdq, hamming};
use plan::{Plan, ROW_BITS, Shape, TABLES, for_each_mask};

/// Below this many hashes an index keeps them whole and scans.
const MIN_PROBED: usize = 1 << 14;

/// The last 22 bytes of a hash: what is left after its row and head.
type Rest = [u8; 22];

/// An exact index over 256-bit hashes. `search` returns what
/// [`linear_scan`] returns, for any distance.
pub struct HashIndex {
    layout: Layout,
}

enum Layout {
    /// Every hash whole, read in full by each search.
    Scanned(Vec<Pdq>),
    Probed(Box<Probed>),
}

/// Rows, tables, and the plan for each distance once one has been asked.
struct Probed {
    shape: Shape,
    /// Row `r` is positions `rows[r]..rows[r + 1]`: the hashes whose first
    /// two bytes are `r`, big-endian.
    rows: Vec<u32>,
    /// Each hash's next 8 bytes, then its last 22, by position: a search
    /// reads a row's heads together and only the near ones' rests.
    heads: Vec<u64>,
    rests: Vec<Rest>,
    tables: Vec<Table>,
    /// Indexed by distance, 0 to 256; a plan of `None` means scan.
    plans: Vec<OnceLock<Option<Plan>>>,
    /// Tests probe small banks at every distance, to compare with a scan.
    probe_always: bool,
}

/// One chunk's table: bucket `b` is entries `offsets[b]..offsets[b + 1]`,
/// each a filter and a row number.
struct Table {
    offsets: Vec<u32>,
    /// Carries [`filter::PADDING`] bytes past the last entry.
    filters: Vec<u8>,
    rows: Vec<u16>,
}

/// A bucket to read: its entries, and how near their filters must be.
struct Bucket {
    key: u32,
    start: u32,
    end: u32,
    table: u8,
    filter: u8,
    limit: u8,
}

impl HashIndex {
    /// Index `hashes`; position `p` holds `hashes[order[p]]`.
    pub fn build(hashes: Vec<Pdq>) -> (HashIndex, Vec<u32>) {
        if hashes.len() < MIN_PROBED || hashes.len() > u32::MAX as usize {
            let order = (0..hashes.len() as u32).collect();
            return (
                HashIndex {
                    layout: Layout::Scanned(hashes),
                },
                order,
            );
        }
        Self::probed(hashes, false)
    }

    /// The probed layout whatever the bank's size.
    fn probed(hashes: Vec<Pdq>, probe_always: bool) -> (HashIndex, Vec<u32>) {
        let (probed, order) = Probed::build(hashes, probe_always);
        let layout = Layout::Probed(Box::new(probed));
        (HashIndex { layout }, order)
    }

    /// How many hashes.
    pub fn len(&self) -> usize {
        match &self.layout {
            Layout::Scanned(hashes) => hashes.len(),
            Layout::Probed(probed) => probed.heads.len(),
        }
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The hash at `position`.
    pub fn hash(&self, position: u32) -> Pdq {
        match &self.layout {
            Layout::Scanned(hashes) => hashes[position as usize],
            Layout::Probed(probed) => probed.hash(position),
        }
    }

    /// Append every `(position, distance)` within `max_distance` of
    /// `query` to `out`, each once, in no particular order.
    pub fn search(&self, query: &Pdq, max_distance: u32, out: &mut Vec<(u32, u32)>) {
        match &self.layout {
            Layout::Scanned(hashes) => linear_scan(hashes, query, max_distance, out),
            Layout::Probed(probed) => match probed.plan(max_distance) {
                Some(plan) => probed.probe(query, max_distance, plan, out),
                None => probed.scan(query, max_distance, out),
            },
        }
    }

    /// Bytes the index holds: hashes, rows and tables.
    pub fn memory_bytes(&self) -> usize {
        match &self.layout {
            Layout::Scanned(hashes) => hashes.capacity() * size_of::<Pdq>(),
            Layout::Probed(probed) => probed.memory_bytes(),
        }
    }
}

impl Probed {
    fn build(hashes: Vec<Pdq>, probe_always: bool) -> (Probed, Vec<u32>) {
        let shape = Shape::new(hashes.len());
        let (rows, order) = counting_sort(hashes.len(), 1 << ROW_BITS, |i| {
            usize::from(row_of(&hashes[i]))
        });
        // In row order once, so that each table's pass reads it in turn.
        let hashes: Vec<Pdq> = order.iter().map(|&i| hashes[i as usize]).collect();
        let row_numbers: Vec<u16> = hashes.iter().map(row_of).collect();
        let tables = (0..TABLES)
            .map(|c| Table::build(&hashes, &row_numbers, c, shape))
            .collect();
        let probed = Probed {
            shape,
            rows,
            heads: hashes.iter().map(head_of).collect(),
            rests: hashes.iter().map(rest_of).collect(),
            tables,
            plans: (0..=256).map(|_| OnceLock::new()).collect(),
            probe_always,
        };
        (probed, order)
    }

    /// The plan for `max_distance`, made the first time it is asked for;
    /// `None` to scan.
    fn plan(&self, max_distance: u32) -> Option<&Plan> {
        // No two hashes differ in more than 256 bits.
        let max_distance = max_distance.min(256);
        let slot = &self.plans[max_distance as usize];
        let plan = slot.get_or_init(|| match self.probe_always {
            true => self.shape.cheapest(max_distance).map(|(plan, _)| plan),
            false => self.shape.plan(max_distance),
        });
        plan.as_ref()
    }

    /// Every hash within `max_distance` of `query` in the rows the plan
    /// leads to. Each step reads all it needs for the next before the next
    /// begins (every bucket's bounds, then every bucket's filters, then
    /// every row's bounds and heads, then the rests of the near heads):
    /// independent misses overlap, a miss that waits for another does not.
    fn probe(&self, query: &Pdq, max_distance: u32, plan: &Plan, out: &mut Vec<(u32, u32)>) {
        let query_row = row_of(query);
        let mut rows: Vec<u16> = Vec::new();
        if let Some(t) = plan.row {
            for_each_mask(ROW_BITS, t, |mask, _| rows.push(query_row ^ mask as u16));
        }
        let buckets = self.buckets(query, plan);
        touch(buckets.iter().map(|b| {
            let filters = &self.tables[usize::from(b.table)].filters;
            let [first, last] = filter::first_bytes(b.start as usize);
            filters[first] ^ filters[last] ^ filters[b.end as usize]
        }));
        let mut near: Vec<(u8, u32)> = Vec::new();
        for bucket in &buckets {
            let filters = &self.tables[usize::from(bucket.table)].filters;
            let (start, end) = (bucket.start as usize, bucket.end as usize);
            filter::for_each_near(
                filters,
                start,
                end,
                bucket.filter,
                bucket.limit.into(),
                |i| near.push((bucket.table, i as u32)),
            );
        }
        rows.extend(
            near.iter()
                .map(|&(table, i)| self.tables[usize::from(table)].rows[i as usize]),
        );
        // A row named twice is read once, so each hash is reported once.
        rows.sort_unstable();
        rows.dedup();
        self.check_rows(&rows, query, max_distance, out);
    }

    /// Every hash of `rows` within `max_distance` of `query`. A hash's first
    /// 80 bits (its row and head) settle almost every far one: only the
    /// near ones' rests are read.
    fn check_rows(&self, rows: &[u16], query: &Pdq, max_distance: u32, out: &mut Vec<(u32, u32)>) {
        let (query_row, query_head) = (row_of(query), head_of(query));
        let spans: Vec<(u16, u32, u32)> = rows
            .iter()
            .map(|&row| {
                (
                    row,
                    self.rows[usize::from(row)],
                    self.rows[usize::from(row) + 1],
                )
            })
            .collect();
        // A row's heads span two or three lines: a head in each, the last
        // included. (A row probed for the query's row chunk may be empty:
        // its read is kept in bounds.)
        let heads_per_line = 64 / size_of::<u64>();
        touch(spans.iter().flat_map(|&(_, start, end)| {
            let (start, end) = (start as usize, end as usize);
            let last = end.max(start + 1) - 1;
            (start..end)
                .step_by(heads_per_line)
                .chain([last])
                .map(|p| self.heads.get(p).map_or(0, |&head| head as u8))
        }));
        let mut near: Vec<(u32, u32)> = Vec::new();
        for (row, start, end) in spans {
            let row_distance = (row ^ query_row).count_ones();
            for position in start..end {
                let distance =
                    row_distance + (self.heads[position as usize] ^ query_head).count_ones();
                if distance <= max_distance {
                    near.push((position, distance));
                }
            }
        }
        touch(near.iter().map(|&(p, _)| {
            let rest = &self.rests[p as usize];
            rest[0] ^ rest[size_of::<Rest>() - 1]
        }));
        let query_rest = rest_of(query);
        for (position, head_distance) in near {
            let distance =
                head_distance + rest_distance(&self.rests[position as usize], &query_rest);
            if distance <= max_distance {
                out.push((position, distance));
            }
        }
    }

    /// The buckets the plan visits, with their bounds read.
    fn buckets(&self, query: &Pdq, plan: &Plan) -> Vec<Bucket> {
        let mut buckets = Vec::with_capacity(self.bucket_count(plan));
        for c in 0..TABLES {
            let Some(threshold) = plan.tables[c] else {
                continue;
            };
            let (key, filter) = self.shape.split(chunk_of(query, c));
            for_each_mask(self.shape.key_bits, threshold, |mask, weight| {
                buckets.push(Bucket {
                    key: key ^ mask,
                    start: 0,
                    end: 0,
                    table: c as u8,
                    filter,
                    limit: (threshold - weight) as u8,
                });
            });
        }
        // The bounds in a loop of their own: nothing but independent loads.
        for bucket in &mut buckets {
            let offsets = &self.tables[usize::from(bucket.table)].offsets;
            bucket.start = offsets[bucket.key as usize];
            bucket.end = offsets[bucket.key as usize + 1];
        }
        buckets
    }

    /// How many buckets the plan visits.
    fn bucket_count(&self, plan: &Plan) -> usize {
        let masks = |t: u32| plan::masks_within(self.shape.key_bits, t) as usize;
        plan.tables.iter().flatten().map(|&t| masks(t)).sum()
    }

    /// Every hash, row by row.
    fn scan(&self, query: &Pdq, max_distance: u32, out: &mut Vec<(u32, u32)>) {
        let (query_row, query_head, query_rest) = (row_of(query), head_of(query), rest_of(query));
        for (row, bounds) in self.rows.windows(2).enumerate() {
            let row_distance = (row as u16 ^ query_row).count_ones();
            for position in bounds[0]..bounds[1] {
                let p = position as usize;
                let distance = row_distance
                    + (self.heads[p] ^ query_head).count_ones()
                    + rest_distance(&self.rests[p], &query_rest);
                if distance <= max_distance {
                    out.push((position, distance));
                }
            }
        }
    }

    fn hash(&self, position: u32) -> Pdq {
        let row = self.rows.partition_point(|&start| start <= position) - 1;
        let mut hash = [0u8; 32];
        hash[..2].copy_from_slice(&(row as u16).to_be_bytes());
        hash[2..10].copy_from_slice(&self.heads[position as usize].to_le_bytes());
        hash[10..].copy_from_slice(&self.rests[position as usize]);
        hash
    }

    fn memory_bytes(&self) -> usize {
        let tables: usize = self
            .tables
            .iter()
            .map(|t| t.offsets.capacity() * 4 + t.filters.capacity() + t.rows.capacity() * 2)
            .sum();
        self.rows.capacity() * 4
            + self.heads.capacity() * size_of::<u64>()
            + self.rests.capacity() * size_of::<Rest>()
            + tables
    }
}

impl Table {
    /// Chunk `c`'s table over `hashes` (in row order, with their row
    /// numbers): a counting sort of their positions by the chunk's key.
    fn build(hashes: &[Pdq], row_numbers: &[u16], c: usize, shape: Shape) -> Table {
        // The chunks in a column of their own: the sort reads them in its
        // own order, and 4 bytes a hash stay in cache where 32 do not.
        let chunks: Vec<u32> = hashes.iter().map(|hash| chunk_of(hash, c)).collect();
        let split = |p: usize| shape.split(chunks[p]);
        let (offsets, by_key) =
            counting_sort(hashes.len(), 1 << shape.key_bits, |p| split(p).0 as usize);
        let mut filters = Vec::with_capacity(hashes.len() + filter::PADDING);
        filters.extend(by_key.iter().map(|&p| split(p as usize).1));
        filters.extend([0; filter::PADDING]);
        let rows = by_key.iter().map(|&p| row_numbers[p as usize]).collect();
        Table {
            offsets,
            filters,
            rows,
        }
    }
}

impl Shape {
    /// A table chunk's bucket key (its top bits) and filter (the 8 after).
    fn split(self, chunk: u32) -> (u32, u8) {
        let below_key = 24 - self.key_bits;
        (
            chunk >> below_key,
            (chunk >> (below_key - plan::FILTER_BITS)) as u8,
        )
    }
}

/// Sort `0..len` by `key` (below `keys`): the offsets of each key's run
/// (`keys + 1` of them) and the sorted order.
fn counting_sort(len: usize, keys: usize, key: impl Fn(usize) -> usize) -> (Vec<u32>, Vec<u32>) {
    let mut offsets = vec![0u32; keys + 1];
    for i in 0..len {
        offsets[key(i) + 1] += 1;
    }
    for k in 1..offsets.len() {
        offsets[k] += offsets[k - 1];
    }
    let mut next = offsets.clone();
    let mut order = vec![0u32; len];
    for i in 0..len {
        let slot = &mut next[key(i)];
        order[*slot as usize] = i as u32;
        *slot += 1;
    }
    (offsets, order)
}

/// Make every read of `reads` and discard what they read. The reads are
/// independent, so the cache misses they cause overlap, and what reads
/// those lines next finds them in cache. (Reading them where they are
/// used waits for one miss at a time: a search took half as long again.)
fn touch(reads: impl Iterator<Item = u8>) {
    std::hint::black_box(reads.fold(0, |acc, byte| acc ^ byte));
}

/// A hash's row: its first two bytes, big-endian.
fn row_of(hash: &Pdq) -> u16 {
    u16::from_be_bytes([hash[0], hash[1]])
}

/// A hash's head: bytes 2 to 9, as one word.
fn head_of(hash: &Pdq) -> u64 {
    u64::from_le_bytes(hash[2..10].try_into().expect("8 bytes"))
}

/// A hash's rest: bytes 10 to 31.
fn rest_of(hash: &Pdq) -> Rest {
    hash[10..].try_into().expect("22 bytes")
}

/// Table chunk `c`: three bytes after the row chunk, big-endian.
fn chunk_of(hash: &Pdq, c: usize) -> u32 {
    let at = 2 + 3 * c;
    u32::from_be_bytes([0, hash[at], hash[at + 1], hash[at + 2]])
}

/// Bits in which two rests differ: three 64-bit words, the last one
/// overlapping the second by two bytes, which it shifts out.
fn rest_distance(a: &Rest, b: &Rest) -> u32 {
    let word = |r: &Rest, at: usize| u64::from_le_bytes(r[at..at + 8].try_into().expect("8 bytes"));
    let differ = |at: usize| word(a, at) ^ word(b, at);
    differ(0).count_ones() + differ(8).count_ones() + (differ(14) >> 16).count_ones()
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

    /// What the index finds, as `(input index, distance)`, sorted.
    fn searched(
        (index, order): &(HashIndex, Vec<u32>),
        query: &Pdq,
        max_distance: u32,
    ) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        index.search(query, max_distance, &mut out);
        let all = out.len();
        let unique = sorted(
            out.into_iter()
                .map(|(p, d)| (order[p as usize], d))
                .collect(),
        );
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

    /// The probed layout for a bank of any size, probing at every
    /// distance a plan covers.
    fn probed(bank: &[Pdq]) -> (HashIndex, Vec<u32>) {
        HashIndex::probed(bank.to_vec(), true)
    }

    fn layout(index: &HashIndex) -> &Probed {
        match &index.layout {
            Layout::Probed(probed) => probed,
            Layout::Scanned(_) => panic!("the index scans"),
        }
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
            let index = probed(&bank);
            for (position, &input) in index.1.iter().enumerate() {
                prop_assert_eq!(index.0.hash(position as u32), bank[input as usize]);
            }
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
        let index = HashIndex::build(bank.clone());
        let probed = layout(&index.0);
        assert!(probed.plan(31).is_some(), "31 is probed");
        assert!(probed.plan(128).is_none(), "128 is scanned");
        let mut matched = 0;
        for n in 0..300 {
            let query = rng.near(bank[n * 97 % bank.len()], (n % 40) as u32);
            for distance in [0, 15, 16, 31, 32, 47, 128] {
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

    /// Flip `flips` of the bits chunk `chunk` covers (`None` is the row
    /// chunk), alternating between a table chunk's key and its filter.
    fn flip_in_chunk(hash: &mut Pdq, chunk: Option<usize>, flips: u32, shape: Shape) {
        for j in 0..flips as usize {
            let bit = match chunk {
                None => j,
                Some(c) if j % 2 == 0 => 16 + 24 * c + j / 2,
                Some(c) => 16 + 24 * c + shape.key_bits as usize + j / 2,
            };
            hash[bit / 8] ^= 0x80 >> (bit % 8);
        }
    }

    /// A hash at exactly the distance, every chunk but one just beyond its
    /// threshold and that one just at it, is found through that chunk
    /// alone; one more bit and it is not.
    #[test]
    fn edges_of_the_distance() {
        let mut rng = Rng(3);
        let mut bank: Vec<Pdq> = (0..1000).map(|_| rng.hash()).collect();
        let base = bank[0];
        let shape = Shape::new(bank.len() + 2 * (TABLES + 1) + 1);
        let plan = shape.cheapest(31).expect("31 is covered").0;
        let chunks: Vec<(Option<usize>, Option<u32>)> = std::iter::once((None, plan.row))
            .chain(plan.tables.iter().enumerate().map(|(c, &t)| (Some(c), t)))
            .collect();
        for &(at_edge, _) in chunks.iter().filter(|(_, t)| t.is_some()) {
            let mut at = base;
            for &(chunk, threshold) in &chunks {
                let beyond = threshold.map_or(0, |t| t + 1);
                let flips = if chunk == at_edge { beyond - 1 } else { beyond };
                flip_in_chunk(&mut at, chunk, flips, shape);
            }
            assert_eq!(hamming(&at, &base), 31, "edge at {at_edge:?}");
            let mut past = at;
            past[1] ^= 1;
            bank.push(at);
            bank.push(past);
        }
        bank.push(base);
        let index = probed(&bank);
        assert_eq!(layout(&index.0).shape.key_bits, shape.key_bits);
        assert_eq!(layout(&index.0).plan(31), Some(&plan));
        let found = searched(&index, &base, 31);
        let edges = (1000..bank.len() as u32 - 1).step_by(2).map(|i| (i, 31));
        let expected: Vec<(u32, u32)> = std::iter::once((0, 0))
            .chain(edges)
            .chain([(bank.len() as u32 - 1, 0)])
            .collect();
        assert_eq!(found, expected);
        assert_eq!(
            searched(&index, &base, 0),
            [(0, 0), (bank.len() as u32 - 1, 0)]
        );
        assert_eq!(searched(&index, &base, 256).len(), bank.len());
    }

    #[test]
    fn empty_and_small_indexes_scan() {
        let empty = HashIndex::build(Vec::new());
        assert!(empty.0.is_empty() && empty.1.is_empty());
        assert!(searched(&empty, &[0; 32], 256).is_empty());
        let small = HashIndex::build(vec![[1; 32], [1; 32]]);
        assert_eq!(searched(&small, &[1; 32], 0), [(0, 0), (1, 0)]);
        assert_eq!(small.0.memory_bytes(), 64);
        let probed_empty = probed(&[]);
        assert!(searched(&probed_empty, &[0; 32], 31).is_empty());
    }

    #[test]
    fn parts_differ_where_hashes_do() {
        let mut rng = Rng(5);
        for _ in 0..200 {
            let (a, b) = (rng.hash(), rng.hash());
            let rows = (row_of(&a) ^ row_of(&b)).count_ones();
            let heads = (head_of(&a) ^ head_of(&b)).count_ones();
            let rests = rest_distance(&rest_of(&a), &rest_of(&b));
            assert_eq!(rows + heads + rests, hamming(&a, &b));
        }
    }
}
