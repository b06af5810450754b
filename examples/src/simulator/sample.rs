//! Random draws and time arithmetic shared by the behaviours: the seeded
//! generator streams, windows of simulated time, Poisson arrivals and caps
//! that keep ordinary behaviour below the rules' thresholds by construction.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The generator every draw comes from.
pub(crate) type SimRng = ChaCha8Rng;

pub(crate) const SECOND_MS: i64 = 1_000;
pub(crate) const MINUTE_MS: i64 = 60 * SECOND_MS;
pub(crate) const HOUR_MS: i64 = 60 * MINUTE_MS;
pub(crate) const DAY_MS: i64 = 24 * HOUR_MS;

/// Independent generator streams, one per entity, so that each entity's
/// behaviour depends only on the seed and its own index, not on how much
/// randomness the entities before it consumed.
pub(crate) enum Stream {
    World,
    Lateness,
    Account(usize),
    Group(usize),
}

impl Stream {
    /// The generator for this stream under `seed`.
    pub(crate) fn rng(self, seed: u64) -> SimRng {
        // Entity indices are far below 2^32, so the tags cannot collide.
        let id = match self {
            Stream::World => 0,
            Stream::Lateness => 1,
            Stream::Account(index) => (1 << 32) | index as u64,
            Stream::Group(index) => (2 << 32) | index as u64,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(id);
        rng
    }
}

/// A half-open span of simulated time, `[start, end)` in epoch milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub start: i64,
    pub end: i64,
}

impl Window {
    pub(crate) fn new(start: i64, end: i64) -> Self {
        Window {
            start,
            end: end.max(start),
        }
    }

    pub(crate) fn len(self) -> i64 {
        self.end - self.start
    }

    pub(crate) fn contains(self, at: i64) -> bool {
        (self.start..self.end).contains(&at)
    }

    /// The part of this window from `at` on.
    pub(crate) fn since(self, at: i64) -> Window {
        Window::new(at.max(self.start), self.end)
    }

    /// The first `fraction` of this window.
    pub(crate) fn head(self, fraction: f64) -> Window {
        Window::new(
            self.start,
            self.start + (self.len() as f64 * fraction) as i64,
        )
    }

    /// Consecutive windows of `len` covering this one, the last cut short.
    pub(crate) fn buckets(self, len: i64) -> impl Iterator<Item = Window> {
        (self.start..self.end)
            .step_by(len as usize)
            .map(move |start| Window::new(start, (start + len).min(self.end)))
    }

    /// A uniform time in the window (its start if it is empty).
    pub(crate) fn pick(self, rng: &mut SimRng) -> i64 {
        if self.len() <= 0 {
            self.start
        } else {
            rng.random_range(self.start..self.end)
        }
    }

    /// `count` uniform times in the window, in order.
    pub(crate) fn pick_sorted(self, rng: &mut SimRng, count: usize) -> Vec<i64> {
        let mut times: Vec<i64> = (0..count).map(|_| self.pick(rng)).collect();
        times.sort_unstable();
        times
    }

    /// Arrivals of a Poisson process with `per_hour` events an hour, in order.
    pub(crate) fn poisson(self, rng: &mut SimRng, per_hour: f64) -> Vec<i64> {
        let mut times = Vec::new();
        if per_hour <= 0.0 {
            return times;
        }
        let mut at = self.start;
        loop {
            at += exponential_ms(rng, HOUR_MS as f64 / per_hour);
            if at >= self.end {
                return times;
            }
            times.push(at);
        }
    }
}

/// An exponential gap with the given mean, at least a millisecond.
pub(crate) fn exponential_ms(rng: &mut SimRng, mean_ms: f64) -> i64 {
    let uniform: f64 = rng.random();
    ((-(1.0 - uniform).ln() * mean_ms) as i64).max(1)
}

/// A value spread evenly in orders of magnitude between `low` and `high`:
/// how activity rates and account ages are spread across people.
pub(crate) fn log_uniform(rng: &mut SimRng, low: f64, high: f64) -> f64 {
    let exponent = rng.random_range(low.ln()..=high.ln());
    exponent.exp()
}

/// A delay between `low_ms` and `high_ms`, short ones likelier.
pub(crate) fn delay_ms(rng: &mut SimRng, low_ms: i64, high_ms: i64) -> i64 {
    log_uniform(rng, low_ms as f64, high_ms as f64) as i64
}

/// Alternating active and quiet spells over `window`, the way people pick
/// up their phone: returns the active ones. Spells last minutes to an hour.
pub(crate) fn active_spells(rng: &mut SimRng, window: Window) -> Vec<Window> {
    let mut spells = Vec::new();
    let mut at = window.start;
    let mut active = rng.random_bool(0.55);
    while at < window.end {
        let mean = if active { 25 } else { 20 } * MINUTE_MS;
        let end = (at + exponential_ms(rng, mean as f64)).min(window.end);
        if active {
            spells.push(Window::new(at, end));
        }
        at = end;
        active = !active;
    }
    spells
}

/// At most `cap` uses in each consecutive `len` of time from `origin`. With
/// buckets of a threshold's window, no sliding window of that length can
/// see more than twice the cap: the guarantee ordinary behaviour relies on.
pub(crate) struct BucketCap {
    origin: i64,
    len: i64,
    cap: u32,
    bucket: i64,
    used: u32,
}

impl BucketCap {
    pub(crate) fn new(origin: i64, len: i64, cap: u32) -> Self {
        BucketCap {
            origin,
            len,
            cap,
            bucket: i64::MIN,
            used: 0,
        }
    }

    /// Use one at `at` if the bucket has room. Calls must come in time order.
    pub(crate) fn take(&mut self, at: i64) -> bool {
        let bucket = (at - self.origin).div_euclid(self.len);
        if bucket != self.bucket {
            self.bucket = bucket;
            self.used = 0;
        }
        if self.used < self.cap {
            self.used += 1;
            true
        } else {
            false
        }
    }
}

/// A random 64-bit id in hex with a prefix, for message, media and link
/// ids: unique in practice and, unlike a counter, carrying no hint of who
/// made it or when.
pub(crate) fn random_id(rng: &mut SimRng, prefix: &str) -> String {
    format!("{prefix}-{:016x}", rng.random::<u64>())
}
