//! Tests of the simulator over whole runs: shared fixtures, attribute
//! accessors and the sliding-window counts the example rules compute.

mod determinism;
mod jsonl;
mod thresholds;
mod vocabulary;

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::OnceLock;

use enforcer::event::{Entity, Event, Value};

use super::{Class, SimConfig, Simulator, Traffic};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// One run of the default configuration, shared by the tests.
fn default_traffic() -> &'static Traffic {
    static TRAFFIC: OnceLock<Traffic> = OnceLock::new();
    TRAFFIC.get_or_init(|| simulate(SimConfig::default()))
}

/// A smaller population over three hours, so that windows slide across
/// hour boundaries and the hourly caps are exercised several times.
fn long_traffic() -> &'static Traffic {
    static TRAFFIC: OnceLock<Traffic> = OnceLock::new();
    TRAFFIC.get_or_init(|| {
        simulate(SimConfig {
            seed: 11,
            accounts: 2_000,
            groups: 120,
            duration_seconds: 3 * 3600,
            ..SimConfig::default()
        })
    })
}

fn simulate(config: SimConfig) -> Traffic {
    Simulator::new(config)
        .expect("the test configuration is valid")
        .run()
}

/// Every account's and group's class.
fn classes(traffic: &Traffic) -> HashMap<&Entity, Class> {
    traffic
        .truth
        .iter()
        .map(|truth| (&truth.entity, truth.class))
        .collect()
}

/// The entities of one class.
fn entities_of(traffic: &Traffic, class: Class) -> Vec<&Entity> {
    traffic
        .truth
        .iter()
        .filter(|truth| truth.class == class)
        .map(|truth| &truth.entity)
        .collect()
}

/// Events of `kind`, grouped by a key the caller extracts (`None` skips).
fn group_by<'a, K: Hash + Eq>(
    traffic: &'a Traffic,
    kind: &str,
    key: impl Fn(&'a Event) -> Option<K>,
) -> HashMap<K, Vec<&'a Event>> {
    let mut groups: HashMap<K, Vec<&'a Event>> = HashMap::new();
    for labelled in &traffic.events {
        if labelled.event.kind == kind
            && let Some(key) = key(&labelled.event)
        {
            groups.entry(key).or_default().push(&labelled.event);
        }
    }
    groups
}

fn int(event: &Event, name: &str) -> i64 {
    match event.attribute(name) {
        Some(Value::Int(value)) => *value,
        other => panic!("{} {name}: expected an int, got {other:?}", event.id),
    }
}

fn float(event: &Event, name: &str) -> f64 {
    match event.attribute(name) {
        Some(Value::Float(value)) => *value,
        other => panic!("{} {name}: expected a float, got {other:?}", event.id),
    }
}

fn boolean(event: &Event, name: &str) -> bool {
    match event.attribute(name) {
        Some(Value::Bool(value)) => *value,
        other => panic!("{} {name}: expected a bool, got {other:?}", event.id),
    }
}

fn text<'a>(event: &'a Event, name: &str) -> &'a str {
    match event.attribute(name) {
        Some(Value::Text(value)) => value,
        other => panic!("{} {name}: expected text, got {other:?}", event.id),
    }
}

fn bytes<'a>(event: &'a Event, name: &str) -> &'a [u8] {
    match event.attribute(name) {
        Some(Value::Bytes(value)) => value,
        other => panic!("{} {name}: expected bytes, got {other:?}", event.id),
    }
}

/// The most points (time, weight) in any window `[t, t + len)`, by total weight.
fn max_sum_in_window(mut points: Vec<(i64, i64)>, len: i64) -> i64 {
    points.sort_unstable();
    let (mut best, mut sum, mut first) = (0, 0, 0);
    for &(at, weight) in &points {
        sum += weight;
        while points[first].0 <= at - len {
            sum -= points[first].1;
            first += 1;
        }
        best = best.max(sum);
    }
    best
}

/// The most events in any window `[t, t + len)`.
fn max_count_in_window(events: &[&Event], len: i64) -> i64 {
    max_sum_in_window(events.iter().map(|e| (e.occurred_at_ms, 1)).collect(), len)
}

/// The most distinct keys among points (time, key) in any window
/// `[t, t + len)`.
fn max_distinct_in_window<K: Hash + Eq + Ord + Clone>(
    mut points: Vec<(i64, K)>,
    len: i64,
) -> usize {
    points.sort_unstable();
    let mut counts: HashMap<K, usize> = HashMap::new();
    let (mut best, mut first) = (0, 0);
    for (at, key) in &points {
        *counts.entry(key.clone()).or_default() += 1;
        while points[first].0 <= at - len {
            let old = &points[first].1;
            let count = counts.get_mut(old).expect("counted on entry");
            *count -= 1;
            if *count == 0 {
                counts.remove(old);
            }
            first += 1;
        }
        best = best.max(counts.len());
    }
    best
}

#[test]
fn window_counts_slide() {
    let points = vec![(0, 5), (HOUR - 1, 5), (HOUR, 5), (3 * HOUR, 1)];
    assert_eq!(max_sum_in_window(points, HOUR), 10);
    let keyed = vec![(0, 'a'), (10, 'a'), (20, 'b'), (HOUR + 15, 'c')];
    assert_eq!(max_distinct_in_window(keyed.clone(), HOUR), 2);
    assert_eq!(max_distinct_in_window(keyed, 2 * HOUR), 3);
}
