//! What an event adds to which counter: the counting rules every store
//! shares, so that memory and Redis count alike to the unit.

use std::hash::{BuildHasher, Hash, Hasher};
use std::ops::Range;

use foldhash::fast::FixedState;

use super::catalog::{CounterCatalog, CounterDef, CounterId};
use crate::event::{Entity, Event, Value};
use crate::manifest::{Aggregation, CounterFilter, CounterKey};

/// The entity whose counters `key` names in `event`: its actor, or its
/// target (none if it has none).
pub(super) fn entity_of(event: &Event, key: CounterKey) -> Option<&Entity> {
    match key {
        CounterKey::Actor => Some(&event.actor),
        CounterKey::Target => event.target.as_ref(),
    }
}

/// What `event` adds to each counter of `catalog` with an id in `ids`
/// that is kept by `key` (the actor's counters, or the target's).
pub(super) fn contributions<'a>(
    event: &'a Event,
    catalog: &'a CounterCatalog,
    ids: Range<CounterId>,
    key: CounterKey,
) -> impl Iterator<Item = (CounterId, &'a CounterDef, Contribution)> + 'a {
    catalog
        .for_kind(&event.kind)
        .iter()
        .filter(move |id| ids.contains(id))
        .map(|&id| (id, catalog.def(id)))
        .filter(move |(_, def)| def.shape.key == key)
        .filter(|(_, def)| passes(&def.shape.filter, event))
        .filter_map(|(id, def)| contribution(&def.shape.aggregation, event).map(|c| (id, def, c)))
}

/// The oldest second a counter with this retention must keep, when the
/// newest event is in `second`.
pub(super) fn horizon(second: i64, retention_seconds: u32, lateness_seconds: u32) -> i64 {
    second - i64::from(retention_seconds) - i64::from(lateness_seconds) + 1
}

/// When a label set at `at_ms` for `ttl_seconds` stops applying.
pub fn label_expiry_ms(at_ms: i64, ttl_seconds: u64) -> i64 {
    at_ms.saturating_add(ttl_seconds.saturating_mul(1000).min(i64::MAX as u64) as i64)
}

/// The second of event time a millisecond timestamp falls in.
pub(super) fn second_of(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

/// What one event adds to one counter.
pub(super) enum Contribution {
    /// An amount added to a sum (1 for a count).
    Amount(u64),
    /// The fingerprint of a value seen, for a distinct count.
    Value(u64),
}

/// What `event` adds under `aggregation`; none if it lacks what the
/// aggregation reads (a sum's attribute, a distinct count's value).
pub(super) fn contribution(aggregation: &Aggregation, event: &Event) -> Option<Contribution> {
    Some(match aggregation {
        Aggregation::Count => Contribution::Amount(1),
        Aggregation::Sum(attribute) => match event.attribute(attribute)? {
            Value::Int(n) if *n > 0 => Contribution::Amount(*n as u64),
            _ => return None,
        },
        Aggregation::Distinct(attribute) => {
            Contribution::Value(fingerprint(event.attribute(attribute)?))
        }
        Aggregation::DistinctActors => Contribution::Value(fingerprint(&event.actor)),
        Aggregation::DistinctTargets => Contribution::Value(fingerprint(event.target.as_ref()?)),
    })
}

/// Whether `event` passes a counter's filter.
pub(super) fn passes(filter: &CounterFilter, event: &Event) -> bool {
    match filter {
        CounterFilter::All => true,
        CounterFilter::IsTrue(attribute) => {
            matches!(event.attribute(attribute), Some(Value::Bool(true)))
        }
        CounterFilter::IsFalse(attribute) => {
            matches!(event.attribute(attribute), Some(Value::Bool(false)))
        }
        CounterFilter::TextEquals(attribute, expected) => {
            matches!(event.attribute(attribute), Some(Value::Text(t)) if t == expected)
        }
    }
}

/// The seed of distinct-count fingerprints. Fixed, so that the same value
/// gives the same fingerprint in every process and a replay counts exactly
/// what the live run counted.
const FINGERPRINT_SEED: u64 = 0x5eed_f1a9_e4f0_7c3d;

/// A 64-bit fingerprint of a value for distinct counting.
pub(super) fn fingerprint(value: &(impl Hash + ?Sized)) -> u64 {
    FixedState::with_seed(FINGERPRINT_SEED).hash_one(value)
}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Value::Int(n) => n.hash(state),
            Value::Float(f) => f.to_bits().hash(state),
            Value::Bool(b) => b.hash(state),
            Value::Text(t) => t.hash(state),
            Value::Bytes(b) => b.hash(state),
            Value::IntList(l) => l.hash(state),
            Value::FloatList(l) => l.iter().for_each(|f| f.to_bits().hash(state)),
            Value::BoolList(l) => l.hash(state),
            Value::TextList(l) => l.hash(state),
            Value::BytesList(l) => l.hash(state),
        }
    }
}
