//! Pacing sends to a rate, for both modes.

use std::time::{Duration, Instant};

/// Holds sends to a rate: the `n`th send is due `n / rate` seconds after
/// the start. The timer's millisecond granularity makes sends leave in
/// small bursts, each on time on average.
pub(crate) struct Pacer {
    start: Instant,
    per_second: Option<f64>,
    count: u64,
}

impl Pacer {
    pub(crate) fn new(start: Instant, per_second: Option<f64>) -> Pacer {
        Pacer {
            start,
            per_second,
            count: 0,
        }
    }

    /// The due time of the next send, and count it.
    pub(crate) fn next_due(&mut self) -> Instant {
        let due = match self.per_second {
            Some(rate) => self.start + Duration::from_secs_f64(self.count as f64 / rate),
            None => self.start,
        };
        self.count += 1;
        due
    }

    pub(crate) async fn wait(&mut self) {
        let due = self.next_due();
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
    }
}
