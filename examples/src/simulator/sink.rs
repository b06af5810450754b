//! Where behaviours put their events: kept only inside the run's window,
//! then delayed a little at random (as events from a busy platform arrive),
//! sorted by arrival and numbered.

use enforcer::event::Event;
use rand::Rng;

use super::sample::{SimRng, Window};
use super::truth::{Class, EventTruth, LabelledEvent};

/// The most ordinary-on-ordinary reports any one account or group receives,
/// far below the 5 distinct reporters that send a target to review.
const STRAY_REPORTS_PER_TARGET: u8 = 2;

/// The shortest delay of a late event (unless the configured maximum is
/// shorter): less is not noticeably late.
const MIN_LATENESS_MS: i64 = 200;

/// Collects a run's events.
pub(crate) struct Sink {
    window: Window,
    events: Vec<LabelledEvent>,
    /// Stray reports each account (then each group) has received, to keep
    /// ordinary targets clear of report-velocity.
    stray_reports: Vec<u8>,
}

impl Sink {
    pub(crate) fn new(window: Window, accounts: usize, groups: usize) -> Self {
        Sink {
            window,
            events: Vec::new(),
            stray_reports: vec![0; accounts + groups],
        }
    }

    /// Keep `event` if it happened during the run; what falls after the end
    /// (a reaction to the last messages, say) is simply not seen.
    pub(crate) fn emit(&mut self, event: Event, class: Class, abusive: bool) {
        if self.window.contains(event.occurred_at_ms) {
            let truth = EventTruth { class, abusive };
            self.events.push(LabelledEvent { event, truth });
        }
    }

    /// Whether one more stray report against `slot` (an account index, or
    /// the number of accounts plus a group index) stays within its quota.
    pub(crate) fn take_stray_report(&mut self, slot: usize) -> bool {
        let received = &mut self.stray_reports[slot];
        if *received < STRAY_REPORTS_PER_TARGET {
            *received += 1;
            true
        } else {
            false
        }
    }

    /// The events in arrival order, numbered `evt-0`, `evt-1`, …
    ///
    /// A `late_share` of events arrives up to `max_lateness_ms` after it
    /// happened, so `occurred_at_ms` may go backwards by that much. Ties are
    /// broken by event time, then by the order behaviours emitted them,
    /// which depends only on the seed.
    pub(crate) fn finish(
        mut self,
        rng: &mut SimRng,
        late_share: f64,
        max_lateness_ms: i64,
    ) -> Vec<LabelledEvent> {
        let mut keys: Vec<(i64, i64, usize)> = self
            .events
            .iter()
            .enumerate()
            .map(|(index, labelled)| {
                let occurred = labelled.event.occurred_at_ms;
                let late = max_lateness_ms > 0 && rng.random_bool(late_share);
                let delay = if late {
                    rng.random_range(MIN_LATENESS_MS.min(max_lateness_ms)..=max_lateness_ms)
                } else {
                    0
                };
                (occurred + delay, occurred, index)
            })
            .collect();
        keys.sort_unstable();
        let order: Vec<usize> = keys.into_iter().map(|(_, _, index)| index).collect();
        permute_in_place(&mut self.events, order);
        for (number, labelled) in self.events.iter_mut().enumerate() {
            labelled.event.id = format!("evt-{number}");
        }
        self.events
    }
}

/// Reorder `items` so that position `k` holds what was at `order[k]`,
/// without a second copy of the events (a million of them take most of a
/// gigabyte).
fn permute_in_place<T>(items: &mut [T], mut order: Vec<usize>) {
    for start in 0..items.len() {
        // Walk the cycle through `start`, pulling each item into place;
        // positions already done point at themselves.
        let mut at = start;
        while order[at] != start {
            let from = order[at];
            items.swap(at, from);
            order[at] = at;
            at = from;
        }
        order[at] = at;
    }
}

#[cfg(test)]
mod tests {
    use super::permute_in_place;

    #[test]
    fn permutation_puts_each_item_where_the_order_says() {
        let mut items = vec!['a', 'b', 'c', 'd', 'e', 'f'];
        // Two cycles (0 2 4) and (1 5), and a fixed point 3.
        permute_in_place(&mut items, vec![2, 5, 4, 3, 0, 1]);
        assert_eq!(items, vec!['c', 'f', 'e', 'd', 'a', 'b']);
    }
}
