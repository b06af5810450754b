//! One counter's history for one entity, at one-second resolution of event
//! time, exact: a window read adds up exactly the events whose second lies
//! in the window, whatever order they arrived in.
//!
//! A window of `w` seconds read at an event in second `s` covers the
//! seconds `s - w + 1 ..= s`: the event's own second and the `w - 1` before
//! it. An event exactly `w` seconds older is outside.
//!
//! History is kept oldest first. Events almost always arrive in order, so
//! adding is a push at the back and reading walks back from the newest
//! entry until it leaves the window; a late event is placed by binary
//! search. Memory is one entry per second with activity (for sums and
//! counts) or per distinct value per second (for distinct counts), within
//! the counter's retention; older entries are pruned as newer ones arrive
//! and by the store's sweep.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

/// The history of a count or a sum: the total added in each second.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SumSeries {
    seconds: VecDeque<(i64, u64)>,
}

impl SumSeries {
    /// Add `amount` in `second`.
    pub fn add(&mut self, second: i64, amount: u64) {
        match self.seconds.back_mut() {
            Some((last, total)) if *last == second => *total = total.saturating_add(amount),
            Some((last, _)) if *last > second => {
                match self.seconds.binary_search_by_key(&second, |(s, _)| *s) {
                    Ok(i) => self.seconds[i].1 = self.seconds[i].1.saturating_add(amount),
                    Err(i) => self.seconds.insert(i, (second, amount)),
                }
            }
            _ => self.seconds.push_back((second, amount)),
        }
    }

    /// The total over the `window` seconds ending with `second`.
    pub fn total(&self, second: i64, window: u32) -> u64 {
        let oldest = second - i64::from(window);
        let mut total = 0u64;
        for &(s, amount) in self.seconds.iter().rev() {
            if s <= oldest {
                break;
            }
            if s <= second {
                total = total.saturating_add(amount);
            }
        }
        total
    }

    /// Each second's total, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = (i64, u64)> + '_ {
        self.seconds.iter().copied()
    }

    /// Forget every second before `second`.
    pub fn prune_before(&mut self, second: i64) {
        while self.seconds.front().is_some_and(|(s, _)| *s < second) {
            self.seconds.pop_front();
        }
    }

    /// Entries kept (seconds with activity).
    pub fn len(&self) -> usize {
        self.seconds.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.seconds.is_empty()
    }
}

/// The history of a distinct count: which values (as 64-bit fingerprints)
/// were seen in each second, each at most once per second.
///
/// Reads at the newest second (nearly all of them: an event reads its own
/// time) are answered from each value's newest second, kept in a map and
/// counted per second, so they cost the seconds in the window rather than
/// the events. A read at an older time (a late event) scans the history.
#[derive(Clone, Default)]
pub struct DistinctSeries {
    seen: VecDeque<(i64, u64)>,
    /// Each fingerprint's newest second.
    newest_of: HashMap<u64, i64, foldhash::fast::RandomState>,
    /// How many fingerprints have each second as their newest, oldest
    /// first. A count may drop to zero; such entries go when pruned.
    newest_counts: VecDeque<(i64, u32)>,
}

thread_local! {
    /// Scratch space for counting distinct fingerprints without allocating
    /// on every read.
    static SCRATCH: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

impl DistinctSeries {
    /// Record that `fingerprint` was seen in `second`.
    pub fn add(&mut self, second: i64, fingerprint: u64) {
        let previous = self.newest_of.get(&fingerprint).copied();
        if previous == Some(second) {
            return;
        }
        let at = match self.seen.back() {
            Some(&(last, _)) if last <= second => self.seen.len(),
            _ => self.seen.partition_point(|&(s, _)| s <= second),
        };
        if previous.is_some_and(|newest| newest > second) {
            // A late sighting of a value seen since: its newest second
            // stands, and the history holds each value once per second.
            let same_second = self
                .seen
                .range(..at)
                .rev()
                .take_while(|(s, _)| *s == second);
            if same_second.clone().any(|&(_, f)| f == fingerprint) {
                return;
            }
        } else {
            if let Some(old) = previous {
                self.uncount(old);
            }
            self.newest_of.insert(fingerprint, second);
            self.count(second);
        }
        self.seen.insert(at, (second, fingerprint));
    }

    /// Every sighting kept (second, fingerprint), oldest first.
    pub fn entries(&self) -> impl Iterator<Item = (i64, u64)> + '_ {
        self.seen.iter().copied()
    }

    /// How many distinct values were seen in the `window` seconds ending
    /// with `second`.
    pub fn distinct(&self, second: i64, window: u32) -> u64 {
        let oldest = second - i64::from(window);
        if self.newest().is_none_or(|newest| newest <= second) {
            // Nothing newer than the read: a value is in the window exactly
            // when its newest sighting is.
            return self
                .newest_counts
                .iter()
                .rev()
                .take_while(|(s, _)| *s > oldest)
                .map(|(_, n)| u64::from(*n))
                .sum();
        }
        SCRATCH.with_borrow_mut(|scratch| {
            scratch.clear();
            for &(s, fingerprint) in self.seen.iter().rev() {
                if s <= oldest {
                    break;
                }
                if s <= second {
                    scratch.push(fingerprint);
                }
            }
            scratch.sort_unstable();
            scratch.dedup();
            scratch.len() as u64
        })
    }

    /// Forget every second before `second`.
    pub fn prune_before(&mut self, second: i64) {
        while let Some(&(s, fingerprint)) = self.seen.front() {
            if s >= second {
                break;
            }
            self.seen.pop_front();
            if self.newest_of.get(&fingerprint) == Some(&s) {
                self.newest_of.remove(&fingerprint);
                self.uncount(s);
            }
        }
    }

    /// One more fingerprint has `second` as its newest.
    fn count(&mut self, second: i64) {
        match self.newest_counts.back_mut() {
            Some((last, n)) if *last == second => *n += 1,
            Some((last, _)) if *last > second => {
                match self
                    .newest_counts
                    .binary_search_by_key(&second, |(s, _)| *s)
                {
                    Ok(i) => self.newest_counts[i].1 += 1,
                    Err(i) => self.newest_counts.insert(i, (second, 1)),
                }
            }
            _ => self.newest_counts.push_back((second, 1)),
        }
    }

    /// One fewer fingerprint has `second` as its newest.
    fn uncount(&mut self, second: i64) {
        if let Ok(i) = self
            .newest_counts
            .binary_search_by_key(&second, |(s, _)| *s)
        {
            self.newest_counts[i].1 -= 1;
        }
        while self.newest_counts.front().is_some_and(|(_, n)| *n == 0) {
            self.newest_counts.pop_front();
        }
    }

    /// The newest second with activity.
    pub fn newest(&self) -> Option<i64> {
        self.seen.back().map(|(s, _)| *s)
    }

    /// Entries kept.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// Two histories are equal when they saw the same values in the same
/// seconds; the indexes over them follow from that.
impl PartialEq for DistinctSeries {
    fn eq(&self, other: &Self) -> bool {
        self.seen == other.seen
    }
}

impl Eq for DistinctSeries {}

/// Shows the history only, in order, so that snapshots compare as text.
impl std::fmt::Debug for DistinctSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistinctSeries")
            .field("seen", &self.seen)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_covers_its_own_second_and_the_ones_before() {
        let mut series = SumSeries::default();
        series.add(100, 1);
        series.add(159, 2);
        series.add(160, 4);
        // 60 s ending at 160: seconds 101..=160.
        assert_eq!(series.total(160, 60), 6);
        // 61 s reaches back to 100.
        assert_eq!(series.total(160, 61), 7);
        // Read at 159: 160 is in the future of that read.
        assert_eq!(series.total(159, 60), 3);
        assert_eq!(series.total(99, 3600), 0);
    }

    #[test]
    fn late_events_land_in_their_own_second() {
        let mut in_order = SumSeries::default();
        let mut shuffled = SumSeries::default();
        let events = [(10, 1), (11, 2), (11, 3), (15, 1), (20, 5)];
        for &(s, a) in &events {
            in_order.add(s, a);
        }
        for &(s, a) in [events[4], events[1], events[0], events[3], events[2]].iter() {
            shuffled.add(s, a);
        }
        assert_eq!(in_order, shuffled);
        for at in 9..22 {
            for window in 1..12 {
                assert_eq!(in_order.total(at, window), shuffled.total(at, window));
            }
        }
    }

    #[test]
    fn pruning_forgets_only_older_seconds() {
        let mut series = SumSeries::default();
        for s in 0..10 {
            series.add(s, 1);
        }
        series.prune_before(7);
        assert_eq!(series.len(), 3);
        assert_eq!(series.total(9, 100), 3);
    }

    #[test]
    fn distinct_counts_each_value_once_per_window() {
        let mut series = DistinctSeries::default();
        series.add(10, 1);
        series.add(10, 1);
        series.add(11, 1);
        series.add(12, 2);
        series.add(30, 3);
        assert_eq!(series.distinct(12, 3), 2);
        assert_eq!(series.distinct(30, 21), 3);
        assert_eq!(series.distinct(30, 19), 2); // 12..=30 holds 2 and 3
        assert_eq!(series.distinct(30, 1), 1);
        // A duplicate within one second is stored once.
        assert_eq!(series.len(), 4);
    }

    /// The fast read at the newest second and the scan agree, whatever
    /// the order of arrival and pruning.
    #[test]
    fn fast_and_scanned_reads_agree() {
        let mut series = DistinctSeries::default();
        let mut state = 7u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 33
        };
        for step in 0..2_000 {
            let second = 1_000 + (step / 3) as i64 - (next() % 4) as i64;
            series.add(second, next() % 40);
            if step % 250 == 0 {
                series.prune_before(second - 300);
            }
            let newest = series.newest().unwrap();
            for window in [1, 5, 60, 600] {
                let fast = series.distinct(newest, window);
                let scanned = {
                    let oldest = newest - i64::from(window);
                    let mut values: Vec<u64> = series
                        .seen
                        .iter()
                        .filter(|(s, _)| *s > oldest && *s <= newest)
                        .map(|(_, f)| *f)
                        .collect();
                    values.sort_unstable();
                    values.dedup();
                    values.len() as u64
                };
                assert_eq!(fast, scanned, "step {step}, window {window}");
            }
        }
    }

    #[test]
    fn distinct_late_values_are_placed_and_deduplicated() {
        let mut series = DistinctSeries::default();
        series.add(20, 7);
        series.add(10, 7);
        series.add(10, 8);
        series.add(10, 7);
        series.add(15, 9);
        assert_eq!(series.len(), 4);
        assert_eq!(series.distinct(20, 11), 3);
        assert_eq!(series.distinct(20, 10), 2); // 11..=20: 7 and 9
        assert_eq!(series.distinct(10, 1), 2);
    }
}
