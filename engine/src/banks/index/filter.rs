//! Which entries of a bucket keep a filter byte near the query's: eight
//! bytes compared at once in one 64-bit word, so a bucket of sixteen
//! entries costs two words' arithmetic and no branch per entry.

/// Bytes a filter array carries past its last entry, so that a bucket's
/// last word can be read whole.
pub(super) const PADDING: usize = 7;

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
    mut visit: impl FnMut(usize),
) {
    let query = splat(query);
    // A byte's bit count plus `127 - limit` reaches 128 (its top bit) just
    // when the count exceeds `limit`; counts are at most 8, so no byte
    // carries into the next.
    let bias = splat(127 - limit.min(8) as u8);
    let mut at = start;
    while at < end {
        let word = u64::from_le_bytes(filters[at..at + 8].try_into().expect("eight bytes"));
        let far = (byte_counts(word ^ query) + bias) & splat(0x80);
        let mut near = !far & splat(0x80);
        if end - at < 8 {
            near &= (1u64 << (8 * (end - at))) - 1;
        }
        while near != 0 {
            visit(at + near.trailing_zeros() as usize / 8);
            near &= near - 1;
        }
        at += 8;
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
            filters in prop::collection::vec(any::<u8>(), 0..40),
            bounds in (0usize..40, 0usize..40),
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
