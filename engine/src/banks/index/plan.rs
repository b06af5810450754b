//! Where a hash is cut into chunks, and how near each chunk must be for a
//! search of a given distance.
//!
//! A search of distance `r` may choose any threshold `t_c` per chunk (or
//! skip a chunk, `t_c = -1`) as long as the thresholds plus one sum to
//! more than `r`: a hash farther than `t_c` in every chunk is then farther
//! than `r` in all (the pigeonhole principle, generalised). Raising a
//! chunk's threshold costs more lookups in its table; the plan raises, one
//! step at a time, whichever is cheapest next.

/// Bits of the row chunk, a hash's first two bytes: the hashes are stored
/// sorted by it, in rows, and each table entry names its hash's row.
pub(super) const ROW_BITS: u32 = 16;

/// Tables after the row chunk, one for each 24-bit chunk of the other 240.
pub(super) const TABLES: usize = 10;

/// Bits of a table chunk kept in each entry, below the bucket key: a
/// bucket's entries are filtered on them before any row is read.
pub(super) const FILTER_BITS: u32 = 8;

/// Costs in nanoseconds, measured in the benchmark at a million hashes
/// with nothing in cache (1,370 buckets and about 195 rows a query): a
/// bucket visited (its bounds and its filters' lines, each a miss, the
/// misses overlapped), an entry's filter compared, a row read (its bounds,
/// its heads' lines, the rests of its near heads), each hash in a row
/// compared, a hash scanned.
const BUCKET_COST: f64 = 40.0;
const ENTRY_COST: f64 = 0.4;
const ROW_COST: f64 = 150.0;
const ROW_HASH_COST: f64 = 3.0;
const SCAN_COST: f64 = 2.3;

/// How near each chunk must be, for one distance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    /// The row chunk's threshold; `None` when no row is read for it.
    pub(super) row: Option<u32>,
    /// Each table's threshold over its key and filter bits; `None` for a
    /// table that is not visited.
    pub(super) tables: [Option<u32>; TABLES],
}

/// The shape of one index: how many hashes, and how many bits of each
/// table chunk choose its bucket.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape {
    pub(super) len: usize,
    pub(super) key_bits: u32,
}

impl Shape {
    /// Buckets of about sixteen hashes: fewer key bits in a small bank, so
    /// that its bucket offsets stay small next to its hashes.
    pub(super) fn new(len: usize) -> Shape {
        let len_bits = usize::BITS - len.leading_zeros();
        Shape {
            len,
            key_bits: len_bits.saturating_sub(4).clamp(1, 24 - FILTER_BITS),
        }
    }

    /// Bits of a table chunk the index covers: its key and its filter.
    pub(super) fn table_bits(self) -> u32 {
        self.key_bits + FILTER_BITS
    }

    /// The cheapest plan for `max_distance`, or `None` when reading every
    /// hash costs less than any plan (or no plan covers the distance).
    pub(super) fn plan(self, max_distance: u32) -> Option<Plan> {
        let (plan, cost) = self.cheapest(max_distance)?;
        (cost < self.len as f64 * SCAN_COST).then_some(plan)
    }

    /// The cheapest plan for `max_distance` and its expected cost, however
    /// high; `None` when no plan covers the distance.
    pub(super) fn cheapest(self, max_distance: u32) -> Option<(Plan, f64)> {
        let mut plan = Plan {
            row: None,
            tables: [None; TABLES],
        };
        let mut total = 0.0;
        // Each step raises one threshold by one: `max_distance + 1` steps.
        for _ in 0..=max_distance {
            let row = plan.row.is_none_or(|t| t < ROW_BITS).then(|| {
                (
                    None,
                    self.row_cost(next(plan.row)) - self.row_cost(plan.row),
                )
            });
            let tables = (0..TABLES)
                .filter(|&c| plan.tables[c].is_none_or(|t| t < self.table_bits()))
                .map(|c| {
                    let more =
                        self.table_cost(next(plan.tables[c])) - self.table_cost(plan.tables[c]);
                    (Some(c), more)
                });
            let (chunk, more) = row
                .into_iter()
                .chain(tables)
                .min_by(|a, b| a.1.total_cmp(&b.1))?;
            match chunk {
                None => plan.row = next(plan.row),
                Some(c) => plan.tables[c] = next(plan.tables[c]),
            }
            total += more;
        }
        Some((plan, total))
    }

    /// Hashes in a row, on average.
    fn per_row(self) -> f64 {
        self.len as f64 / f64::from(ROW_BITS).exp2()
    }

    /// The expected cost of reading the rows within `threshold` of the
    /// query's row chunk.
    fn row_cost(self, threshold: Option<u32>) -> f64 {
        threshold.map_or(0.0, |t| {
            masks_within(ROW_BITS, t) * (ROW_COST + self.per_row() * ROW_HASH_COST)
        })
    }

    /// The expected cost of visiting a table at `threshold`: its buckets,
    /// their entries, and the rows their near filters lead to.
    fn table_cost(self, threshold: Option<u32>) -> f64 {
        let Some(t) = threshold else {
            return 0.0;
        };
        let per_bucket = self.len as f64 / f64::from(self.key_bits).exp2();
        let (mut buckets, mut rows) = (0.0, 0.0);
        let mut choose = 1.0;
        for weight in 0..=t.min(self.key_bits) {
            buckets += choose;
            rows += choose * per_bucket * masks_within(FILTER_BITS, t - weight)
                / f64::from(FILTER_BITS).exp2();
            choose = choose * f64::from(self.key_bits - weight) / f64::from(weight + 1);
        }
        buckets * (BUCKET_COST + per_bucket * ENTRY_COST)
            + rows * (ROW_COST + self.per_row() * ROW_HASH_COST)
    }
}

/// One more than `threshold`, where `None` is minus one.
fn next(threshold: Option<u32>) -> Option<u32> {
    Some(threshold.map_or(0, |t| t + 1))
}

/// Call `visit(mask, weight)` with every `bits`-bit mask of at most
/// `max_weight` set bits, lightest first (Gosper's hack within each
/// weight).
pub(super) fn for_each_mask(bits: u32, max_weight: u32, mut visit: impl FnMut(u32, u32)) {
    let limit = 1u64 << bits;
    for weight in 0..=max_weight.min(bits) {
        let mut mask = (1u64 << weight) - 1;
        while mask < limit {
            visit(mask as u32, weight);
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
pub(super) fn masks_within(bits: u32, max_weight: u32) -> f64 {
    let mut total = 0.0;
    let mut choose = 1.0;
    for weight in 0..=max_weight.min(bits) {
        total += choose;
        choose = choose * f64::from(bits - weight) / f64::from(weight + 1);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the pigeonhole principle needs: thresholds plus one summing to
    /// more than the distance, each within its chunk.
    fn covers(shape: Shape, plan: &Plan, max_distance: u32) -> bool {
        let sum: u32 = std::iter::once(plan.row)
            .chain(plan.tables)
            .map(|t| t.map_or(0, |t| t + 1))
            .sum();
        sum > max_distance
            && plan.row.is_none_or(|t| t <= ROW_BITS)
            && plan
                .tables
                .iter()
                .flatten()
                .all(|&t| t <= shape.table_bits())
    }

    #[test]
    fn every_plan_covers_its_distance() {
        for len in [300, 5_000, 100_000, 1_000_000, 16_000_000] {
            let shape = Shape::new(len);
            for distance in 0..=256 {
                if let Some(plan) = shape.plan(distance) {
                    assert!(covers(shape, &plan, distance), "{len} {distance}");
                }
            }
        }
    }

    #[test]
    fn a_million_hashes_at_31_reads_two_bits_of_each_table() {
        let shape = Shape::new(1_000_000);
        assert_eq!(shape.key_bits, 16);
        let plan = shape.plan(31).expect("31 is probed");
        assert_eq!(plan.tables, [Some(2); TABLES]);
        assert_eq!(plan.row, Some(1));
        assert_eq!(shape.plan(128), None, "128 is scanned");
    }

    #[test]
    fn masks_are_each_visited_once() {
        let mut seen = Vec::new();
        for_each_mask(8, 2, |mask, weight| {
            assert_eq!(mask.count_ones(), weight);
            seen.push(mask);
        });
        assert_eq!(seen.len() as f64, masks_within(8, 2));
        assert_eq!(seen.len(), 1 + 8 + 28);
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 37);
        assert!(seen.iter().all(|&m| m < 256));
    }
}
