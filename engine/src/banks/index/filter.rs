//! Which entries of a bucket keep a filter byte near the query's: eight
//! bytes compared at once in one 64-bit word, so a bucket of up to 24
//! entries costs three words' arithmetic and one branch.

/// Bytes a filter array carries past its last entry, so that a bucket's
/// first [`WORDS`] words can be read whole however short it is.
pub(super) const PADDING: usize = 8 * WORDS;

/// Words every bucket is compared in, without a branch on its length: a
/// bucket holds about sixteen entries, and hardly ever more than 24. (A
/// branch on the length would be mispredicted for about a third of them.)
const WORDS: usize = 3;

/// The bytes of a bucket's first words that [`for_each_near`] reads
/// whatever its length: the cache lines to have at hand before it runs.
pub(super) fn first_bytes(start: usize) -> [usize; 2] {
    [start, start + 8 * WORDS - 1]
}

/// `LANES[n]`: the low `n` bytes of a word.
const LANES: [u64; 9] = {
    let mut lanes = [u64::MAX; 9];
    let mut n = 0;
    while n < 8 {
        lanes[n] = (1 << (8 * n)) - 1;
        n += 1;
    }
    lanes
};

/// Each byte of a word set to `byte`.
const fn splat(byte: u8) -> u64 {
    0x0101_0101_0101_0101 * byte as u64
}

/// Call `visit(i)` for every `i` in `start..end` whose filter differs from
/// `query` in at most `limit` bits. `filters` holds [`PADDING`] bytes past
/// `end`.
pub(super) fn for_each_near(
    filters: &[u8],
    start: usize,
    end: usize,
    query: u8,
    limit: u32,
    visit: impl FnMut(usize),
) {
    // Most buckets a search visits must hold the query's filter exactly:
    // a test of equality, compiled apart, takes four operations a word
    // where counting bits takes a dozen.
    if limit == 0 {
        near_in::<true>(filters, start, end, Near::new(query, limit), visit);
    } else {
        near_in::<false>(filters, start, end, Near::new(query, limit), visit);
    }
}

/// [`for_each_near`] for filters equal to the query (`EXACT`) or within a
/// limit of it.
fn near_in<const EXACT: bool>(
    filters: &[u8],
    start: usize,
    end: usize,
    near: Near,
    mut visit: impl FnMut(usize),
) {
    let len = end - start;
    let first: &[u8; 8 * WORDS] = filters[start..start + 8 * WORDS]
        .try_into()
        .expect("padded");
    let words: [u64; WORDS] = std::array::from_fn(|w| {
        let word = u64::from_le_bytes(first[8 * w..8 * w + 8].try_into().expect("8 bytes"));
        near.lanes::<EXACT>(word) & LANES[len.saturating_sub(8 * w).min(8)]
    });
    // Most buckets hold no near entry: one branch settles them.
    if words.iter().fold(0, |any, word| any | word) != 0 {
        for (w, word) in words.into_iter().enumerate() {
            visit_lanes(word, start + 8 * w, &mut visit);
        }
    }
    let mut at = start + 8 * WORDS;
    while at < end {
        let lanes = (end - at).min(8);
        let word = u64::from_le_bytes(filters[at..at + 8].try_into().expect("padded"));
        visit_lanes(near.lanes::<EXACT>(word) & LANES[lanes], at, &mut visit);
        at += 8;
    }
}

/// How near a filter must be, for eight at a time.
struct Near {
    query: u64,
    /// A byte's bit count plus `127 - limit` reaches 128 (its top bit) just
    /// when the count exceeds `limit`; counts are at most 8, so no byte
    /// carries into the next.
    bias: u64,
}

impl Near {
    fn new(query: u8, limit: u32) -> Near {
        Near {
            query: splat(query),
            bias: splat(127 - limit.min(8) as u8),
        }
    }

    /// The top bit of the byte of each near filter of `word`; `EXACT` when
    /// the limit is 0.
    fn lanes<const EXACT: bool>(&self, word: u64) -> u64 {
        let differ = word ^ self.query;
        if EXACT {
            // A byte is zero when neither its low seven bits, carried up
            // into its top bit, nor its top bit itself are set.
            let low = splat(0x7f);
            !(((differ & low) + low) | differ | low)
        } else {
            !(byte_counts(differ) + self.bias) & splat(0x80)
        }
    }
}

/// Call `visit` with the index of each lane set in `word`, from `at`.
fn visit_lanes(mut word: u64, at: usize, visit: &mut impl FnMut(usize)) {
    while word != 0 {
        visit(at + word.trailing_zeros() as usize / 8);
        word &= word - 1;
    }
}

/// Each byte's count of set bits, in that byte.
fn byte_counts(word: u64) -> u64 {
    let pairs = word - ((word >> 1) & splat(0x55));
    let nibbles = (pairs & splat(0x33)) + ((pairs >> 2) & splat(0x33));
    (nibbles + (nibbles >> 4)) & splat(0x0f)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The same entries as comparing one byte at a time.
        #[test]
        fn finds_what_a_byte_loop_finds(
            filters in prop::collection::vec(any::<u8>(), 0..80),
            bounds in (0usize..80, 0usize..80),
            query in any::<u8>(),
            limit in 0u32..10,
        ) {
            let (start, end) = (bounds.0.min(filters.len()), bounds.1.min(filters.len()));
            let (start, end) = (start.min(end), start.max(end));
            let mut padded = filters.clone();
            padded.extend([0; PADDING]);
            let mut found = Vec::new();
            for_each_near(&padded, start, end, query, limit, |i| found.push(i));
            let expected: Vec<usize> = (start..end)
                .filter(|&i| (filters[i] ^ query).count_ones() <= limit)
                .collect();
            prop_assert_eq!(found, expected);
        }
    }

    #[test]
    fn counts_bits_per_byte() {
        let counts = byte_counts(u64::from_le_bytes([0, 1, 3, 7, 0x0f, 0x1f, 0x7f, 0xff]));
        assert_eq!(counts.to_le_bytes(), [0, 1, 2, 3, 4, 5, 7, 8]);
    }
}
