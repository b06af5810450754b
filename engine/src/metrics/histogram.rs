//! A histogram of whole numbers (microseconds, fuel units) kept in atomics.
//!
//! prometheus-client's `Histogram` takes a mutex per observation. A rule
//! call costs about a microsecond, and every worker observes the same
//! rule's histograms, so here an observation is two relaxed atomic adds
//! and no lock; the sum is exact (an integer), and the count is the sum of
//! the buckets, so `_count` always equals the `+Inf` bucket.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{MetricEncoder, NoLabelSet};

/// Bucket bounds (inclusive upper bounds, in the observed unit) and
/// observations per bucket, the last one past every bound (`+Inf`).
#[derive(Debug)]
pub struct IntHistogram {
    bounds: &'static [u64],
    /// Observed units in one exposed unit (1e6 for microseconds shown as
    /// seconds): a divisor, so that bounds such as 10 µs print as 1e-5.
    units: f64,
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl IntHistogram {
    /// An empty histogram over `bounds` (ascending), exposed divided by
    /// `units`.
    pub fn new(bounds: &'static [u64], units: f64) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        IntHistogram {
            bounds,
            units,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    /// Count one observation of `value`.
    pub fn observe(&self, value: u64) {
        // The first bound at or above the value: Prometheus buckets are
        // "less than or equal".
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Observations so far.
    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// Sum of the observations, in the observed unit.
    pub fn sum(&self) -> u64 {
        self.sum.load(Ordering::Relaxed)
    }

    /// Write it as a Prometheus histogram.
    pub fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .map(|&bound| bound as f64 / self.units)
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        encoder.encode_histogram::<NoLabelSet>(
            self.sum() as f64 / self.units,
            count,
            &buckets,
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_the_first_bucket_at_or_above_them() {
        static BOUNDS: [u64; 3] = [10, 100, 1000];
        let histogram = IntHistogram::new(&BOUNDS, 1.0);
        for value in [0, 10, 11, 100, 1000, 1001, u64::MAX / 2] {
            histogram.observe(value);
        }
        let counts: Vec<u64> = histogram
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts, [2, 2, 1, 2]);
        assert_eq!(histogram.count(), 7);
        assert_eq!(histogram.sum(), 10 + 11 + 100 + 1000 + 1001 + u64::MAX / 2);
    }
}
