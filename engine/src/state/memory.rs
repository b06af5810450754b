//! The in-memory store: every entity's counters and labels, in one
//! concurrent map keyed by entity.
//!
//! An event updates at most two records (its actor's and its target's),
//! each under one shard lock of the map, so events about different entities
//! never wait for each other. Everything is by event time: the store's
//! clock is the *watermark*, the latest event time it has seen, and it never
//! reads the wall clock. Memory is bounded by retention: a counter keeps
//! only its longest declared window before the watermark, a label only
//! until it expires, each plus a lateness allowance so that late events
//! still count exactly, and [`MemoryState::sweep`] drops what has aged out
//! and every record left empty.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;
use foldhash::fast::RandomState;

use super::catalog::{CounterCatalog, CounterId, CounterShape};
pub use super::counting::label_expiry_ms;
use super::counting::{Contribution, contributions, entity_of, horizon, second_of};
use super::image::{RecordImage, SeriesImage, Stamps, StateImage};
use super::series::{DistinctSeries, SumSeries};
use crate::event::{Entity, Event};
use crate::manifest::{Aggregation, CounterKey};

/// One counter's history for one entity.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Series {
    Sum(SumSeries),
    Distinct(DistinctSeries),
}

impl Series {
    fn for_aggregation(aggregation: &Aggregation) -> Self {
        match aggregation {
            Aggregation::Count | Aggregation::Sum(_) => Series::Sum(SumSeries::default()),
            Aggregation::Distinct(_)
            | Aggregation::DistinctActors
            | Aggregation::DistinctTargets => Series::Distinct(DistinctSeries::default()),
        }
    }

    fn read(&self, second: i64, window: u32) -> u64 {
        match self {
            Series::Sum(s) => s.total(second, window),
            Series::Distinct(s) => s.distinct(second, window),
        }
    }

    fn prune_before(&mut self, second: i64) {
        match self {
            Series::Sum(s) => s.prune_before(second),
            Series::Distinct(s) => s.prune_before(second),
        }
    }

    fn len(&self) -> usize {
        match self {
            Series::Sum(s) => s.len(),
            Series::Distinct(s) => s.len(),
        }
    }
}

/// A label on an entity, visible from when it was set until it expires.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Label {
    /// The label.
    pub name: String,
    /// The event time it was set at.
    pub set_at_ms: i64,
    /// The event time it stops applying at.
    pub expires_at_ms: i64,
}

impl Label {
    fn applies_at(&self, at_ms: i64) -> bool {
        self.set_at_ms <= at_ms && at_ms < self.expires_at_ms
    }
}

/// Everything kept about one entity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Record {
    /// A handful per entity: a scan beats a map.
    counters: Vec<(CounterId, Series)>,
    labels: Vec<Label>,
    /// The stamp of the last event counted into this record: stamps
    /// increase with every record update in the store, so a recovery can
    /// tell whether a logged event is already in a saved image of the
    /// record (see [`Stamps`]).
    stamp: u64,
}

impl Record {
    /// The history of counter `id`, created empty if the entity has none.
    fn series_mut(&mut self, id: CounterId, aggregation: &Aggregation) -> &mut Series {
        let index = match self.counters.iter().position(|(c, _)| *c == id) {
            Some(index) => index,
            None => {
                self.counters
                    .push((id, Series::for_aggregation(aggregation)));
                self.counters.len() - 1
            }
        };
        &mut self.counters[index].1
    }
}

/// One entity's record as [`MemoryState::snapshot`] gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntitySnapshot {
    /// Each counter's full history, rendered.
    pub counters: Vec<(CounterId, String)>,
    /// Its labels, by name.
    pub labels: Vec<Label>,
}

/// What a sweep reclaimed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepStats {
    /// Records dropped because nothing in them was still needed.
    pub records_dropped: usize,
    /// Expired labels dropped.
    pub labels_dropped: usize,
}

/// How much the store holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateSize {
    /// Entities with a record.
    pub entities: usize,
    /// Counter histories across all entities.
    pub series: usize,
    /// Entries across those histories.
    pub entries: usize,
    /// Labels across all entities, expired or not yet swept.
    pub labels: usize,
}

/// What the last sweep of a store kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweptSize {
    /// Counter histories across all entities.
    pub series: usize,
    /// Labels across all entities (expired ones within the lateness
    /// allowance included).
    pub labels: usize,
}

/// How late an event may arrive (behind the store's watermark, the latest
/// event time it has seen) and still be counted exactly: history and
/// expired labels are kept this much longer than they are needed.
pub const DEFAULT_LATENESS_SECONDS: u32 = 300;

/// The in-memory store of counters and labels.
#[derive(Debug)]
pub struct MemoryState {
    /// Keyed by client-chosen ids, so hashed with a per-process random
    /// seed (no one can aim collisions at a shard), by a hasher several
    /// times faster than the standard one.
    records: DashMap<Entity, Record, RandomState>,
    watermark_ms: AtomicI64,
    lateness_seconds: u32,
    /// The last stamp given to a record update (see [`Record::stamp`]).
    last_stamp: AtomicU64,
    /// Counter histories and labels the last sweep kept: what metrics
    /// report without walking the store again (the sweep walks it anyway).
    swept_series: AtomicUsize,
    swept_labels: AtomicUsize,
}

impl Default for MemoryState {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryState {
    /// An empty store that counts events up to
    /// [`DEFAULT_LATENESS_SECONDS`] late exactly.
    pub fn new() -> Self {
        Self::with_lateness(DEFAULT_LATENESS_SECONDS)
    }

    /// An empty store that keeps history `lateness_seconds` beyond each
    /// counter's longest window, so events that much late count exactly.
    pub fn with_lateness(lateness_seconds: u32) -> Self {
        MemoryState {
            records: DashMap::default(),
            watermark_ms: AtomicI64::new(i64::MIN),
            lateness_seconds,
            last_stamp: AtomicU64::new(0),
            swept_series: AtomicUsize::new(0),
            swept_labels: AtomicUsize::new(0),
        }
    }

    /// The latest event time recorded, if any.
    pub fn watermark_ms(&self) -> Option<i64> {
        let watermark = self.watermark_ms.load(Ordering::Relaxed);
        (watermark != i64::MIN).then_some(watermark)
    }

    /// Update every counter of `catalog` that `event` counts towards, and
    /// return the stamps of the records it updated.
    pub fn record(&self, event: &Event, catalog: &CounterCatalog) -> Stamps {
        self.record_counters(event, catalog, CounterId(0)..CounterId(u32::MAX))
    }

    /// Update the counters of `catalog` with ids in `ids` that `event`
    /// counts towards, and return the stamps of the records it updated.
    /// (The pipeline keeps the counters only shadow rules read in a store of
    /// their own, so that they never touch live state.)
    pub fn record_counters(
        &self,
        event: &Event,
        catalog: &CounterCatalog,
        ids: Range<CounterId>,
    ) -> Stamps {
        self.record_counters_where(event, catalog, ids, |_, _| true)
    }

    /// Count a logged event again after a restart, into the records whose
    /// saved image (`saved_stamp`) predates it: `stamps` are those the
    /// event got when it was first counted. An event already in the image
    /// is not counted twice.
    pub fn recount(
        &self,
        event: &Event,
        catalog: &CounterCatalog,
        ids: Range<CounterId>,
        stamps: Stamps,
        saved_stamp: impl Fn(&Entity) -> u64,
    ) {
        self.record_counters_where(event, catalog, ids, |key, entity| {
            let stamp = match key {
                CounterKey::Actor => stamps.actor,
                CounterKey::Target => stamps.target,
            };
            stamp > saved_stamp(entity)
        });
    }

    fn record_counters_where(
        &self,
        event: &Event,
        catalog: &CounterCatalog,
        ids: Range<CounterId>,
        admit: impl Fn(CounterKey, &Entity) -> bool,
    ) -> Stamps {
        self.watermark_ms
            .fetch_max(event.occurred_at_ms, Ordering::Relaxed);
        let second = second_of(event.occurred_at_ms);
        let mut stamps = Stamps::default();
        // Group the updates by entity, so each record is locked once.
        for key in [CounterKey::Actor, CounterKey::Target] {
            let Some(entity) = entity_of(event, key) else {
                continue;
            };
            let mut updates = contributions(event, catalog, ids.clone(), key).peekable();
            if updates.peek().is_none() || !admit(key, entity) {
                continue;
            }
            let lateness = self.lateness_seconds;
            let stamp = self.with_record(entity, |record| {
                for (id, def, contribution) in updates {
                    let series = record.series_mut(id, &def.shape.aggregation);
                    match (&mut *series, contribution) {
                        (Series::Sum(s), Contribution::Amount(n)) => s.add(second, n),
                        (Series::Distinct(s), Contribution::Value(f)) => s.add(second, f),
                        // Only a store reused with a catalog whose ids mean
                        // other counters gets here: leave the history alone.
                        _ => continue,
                    }
                    series.prune_before(horizon(second, def.retention_seconds, lateness));
                }
                // Taken under the record's lock, so a record's stamps
                // increase in the order its updates were made.
                record.stamp = self.last_stamp.fetch_add(1, Ordering::Relaxed) + 1;
                record.stamp
            });
            match key {
                CounterKey::Actor => stamps.actor = stamp,
                CounterKey::Target => stamps.target = stamp,
            }
        }
        stamps
    }

    /// Counter `id` for `entity` over the `window` seconds ending with the
    /// second of `at_ms`.
    pub fn counter(&self, entity: &Entity, id: CounterId, window: u32, at_ms: i64) -> u64 {
        self.records.get(entity).map_or(0, |record| {
            record
                .counters
                .iter()
                .find(|(c, _)| *c == id)
                .map_or(0, |(_, series)| series.read(second_of(at_ms), window))
        })
    }

    /// The labels on `entity` at `at_ms`, sorted.
    pub fn labels(&self, entity: &Entity, at_ms: i64) -> Vec<String> {
        let mut labels: Vec<String> = self.records.get(entity).map_or_else(Vec::new, |record| {
            record
                .labels
                .iter()
                .filter(|l| l.applies_at(at_ms))
                .map(|l| l.name.clone())
                .collect()
        });
        labels.sort();
        labels.dedup();
        labels
    }

    /// Whether `entity` carries `label` at `at_ms`.
    pub fn has_label(&self, entity: &Entity, label: &str, at_ms: i64) -> bool {
        self.records.get(entity).is_some_and(|record| {
            record
                .labels
                .iter()
                .any(|l| l.name == label && l.applies_at(at_ms))
        })
    }

    /// Label `entity` from `at_ms` for `ttl_seconds`. Setting a label over
    /// a stretch where it already applies extends that stretch (it never
    /// shortens one); setting it after it lapsed starts a new stretch, so
    /// the gap stays unlabelled for events from within it.
    pub fn set_label(&self, entity: &Entity, label: &str, at_ms: i64, ttl_seconds: u64) {
        self.set_label_until(entity, label, at_ms, label_expiry_ms(at_ms, ttl_seconds));
    }

    /// Label `entity` from `at_ms` until `expires_at_ms`, as
    /// [`MemoryState::set_label`] does.
    pub fn set_label_until(&self, entity: &Entity, label: &str, at_ms: i64, expires_at_ms: i64) {
        self.with_record(entity, |record| {
            let overlapping = record.labels.iter_mut().find(|l| {
                l.name == label && l.set_at_ms <= expires_at_ms && at_ms <= l.expires_at_ms
            });
            match overlapping {
                Some(existing) => {
                    existing.set_at_ms = existing.set_at_ms.min(at_ms);
                    existing.expires_at_ms = existing.expires_at_ms.max(expires_at_ms);
                }
                None => record.labels.push(Label {
                    name: label.to_string(),
                    set_at_ms: at_ms,
                    expires_at_ms,
                }),
            }
        });
    }

    /// Remove `label` from `entity` as of `at_ms`. A stretch set later in
    /// event time than the clearing is left alone, so a late clear cannot
    /// undo what came after it.
    pub fn clear_label(&self, entity: &Entity, label: &str, at_ms: i64) {
        if let Some(mut record) = self.records.get_mut(entity) {
            for l in record.labels.iter_mut() {
                if l.name == label && l.set_at_ms <= at_ms {
                    l.expires_at_ms = l.expires_at_ms.min(at_ms);
                }
            }
            record.labels.retain(|l| l.set_at_ms < l.expires_at_ms);
        }
    }

    /// Every label record of `entity`, for inspection and tests.
    pub fn label_records(&self, entity: &Entity) -> Vec<Label> {
        self.records
            .get(entity)
            .map_or_else(Vec::new, |record| record.labels.clone())
    }

    /// Everything the store holds, in a canonical order: for comparing two
    /// stores (a shadow rule must leave the live store exactly as it would
    /// be without it) and for inspection.
    pub fn snapshot(&self) -> BTreeMap<Entity, EntitySnapshot> {
        self.records
            .iter()
            .map(|record| {
                let mut counters: Vec<(CounterId, String)> = record
                    .counters
                    .iter()
                    .map(|(id, series)| (*id, format!("{series:?}")))
                    .collect();
                counters.sort();
                let mut labels = record.labels.clone();
                labels.sort_by(|a, b| a.name.cmp(&b.name));
                (record.key().clone(), EntitySnapshot { counters, labels })
            })
            .collect()
    }

    /// Drop what has aged out as of the watermark: counter history older
    /// than its retention, expired labels, and records left empty.
    pub fn sweep(&self, catalog: &CounterCatalog) -> SweepStats {
        let Some(watermark) = self.watermark_ms() else {
            return SweepStats::default();
        };
        let now = second_of(watermark);
        let mut stats = SweepStats::default();
        let (mut series_kept, mut labels_kept) = (0, 0);
        self.records.retain(|_, record| {
            record.counters.retain_mut(|(id, series)| {
                // A counter no longer in the catalog is kept for nobody.
                let retention = catalog.get(*id).map_or(0, |def| def.retention_seconds);
                series.prune_before(horizon(now, retention, self.lateness_seconds));
                series.len() > 0
            });
            // Labels, like counters, stay for late events within the
            // lateness allowance.
            let before = record.labels.len();
            let label_horizon = watermark.saturating_sub(i64::from(self.lateness_seconds) * 1000);
            record.labels.retain(|l| l.expires_at_ms > label_horizon);
            stats.labels_dropped += before - record.labels.len();
            series_kept += record.counters.len();
            labels_kept += record.labels.len();
            let keep = !record.counters.is_empty() || !record.labels.is_empty();
            if !keep {
                stats.records_dropped += 1;
            }
            keep
        });
        self.swept_series.store(series_kept, Ordering::Relaxed);
        self.swept_labels.store(labels_kept, Ordering::Relaxed);
        stats
    }

    /// Add the history `from` keeps for counter `from_id` to this store's
    /// counter `to_id`, entity by entity: what carries a counter's history
    /// over when a shadow rule that kept it alone starts to enforce. The
    /// two must count alike (`aggregation`); sightings merge, so a second
    /// counted in both is counted once more, not lost.
    pub fn adopt_counter(
        &self,
        from: &MemoryState,
        from_id: CounterId,
        to_id: CounterId,
        aggregation: &Aggregation,
    ) {
        for record in from.records.iter() {
            let Some((_, series)) = record.counters.iter().find(|(id, _)| *id == from_id) else {
                continue;
            };
            let entries: Vec<(i64, u64)> = match series {
                Series::Sum(s) => s.entries().collect(),
                Series::Distinct(s) => s.entries().collect(),
            };
            self.with_record(record.key(), |target| {
                match target.series_mut(to_id, aggregation) {
                    Series::Sum(s) => entries.iter().for_each(|&(at, n)| s.add(at, n)),
                    Series::Distinct(s) => entries.iter().for_each(|&(at, f)| s.add(at, f)),
                }
            });
        }
    }

    /// Entities with a record now: cheap (no record is visited).
    pub fn entities(&self) -> usize {
        self.records.len()
    }

    /// Counter histories and labels as of the last [`MemoryState::sweep`]
    /// (0 before the first): free to read, where [`MemoryState::size`]
    /// walks every record.
    pub fn swept_size(&self) -> SweptSize {
        SweptSize {
            series: self.swept_series.load(Ordering::Relaxed),
            labels: self.swept_labels.load(Ordering::Relaxed),
        }
    }

    /// How much the store holds.
    pub fn size(&self) -> StateSize {
        let mut size = StateSize::default();
        for record in self.records.iter() {
            size.entities += 1;
            size.series += record.counters.len();
            size.entries += record.counters.iter().map(|(_, s)| s.len()).sum::<usize>();
            size.labels += record.labels.len();
        }
        size
    }

    /// Run `update` on `entity`'s record, creating it if needed. The key is
    /// cloned only on creation.
    fn with_record<T>(&self, entity: &Entity, update: impl FnOnce(&mut Record) -> T) -> T {
        match self.records.get_mut(entity) {
            Some(mut record) => update(&mut record),
            None => update(&mut self.records.entry(entity.clone()).or_default()),
        }
    }

    /// Everything the store holds, counters named by what they count rather
    /// than by id (ids belong to one engine's catalog), with the stamps
    /// needed to replay what came after. Records are copied one at a time
    /// under their own locks: evaluation goes on meanwhile.
    pub fn image(&self, catalog: &CounterCatalog) -> StateImage {
        // Read first: every update this image misses gets a later stamp.
        let last_stamp = self.last_stamp.load(Ordering::Relaxed);
        let records = self
            .records
            .iter()
            .map(|record| RecordImage {
                entity: record.key().clone(),
                stamp: record.stamp,
                counters: record
                    .counters
                    .iter()
                    .filter_map(|(id, series)| {
                        let shape = catalog.get(*id)?.shape.clone();
                        let entries = match series {
                            Series::Sum(s) => SeriesImage::Sum(s.entries().collect()),
                            Series::Distinct(s) => SeriesImage::Distinct(s.entries().collect()),
                        };
                        Some((shape, entries))
                    })
                    .collect(),
                labels: record.labels.clone(),
            })
            .collect();
        StateImage {
            last_stamp,
            watermark_ms: self.watermark_ms(),
            records,
        }
    }

    /// Load a saved image into this (empty) store, finding each counter's
    /// id with `resolve`; a counter no rule declares any more is dropped.
    /// Returns each entity's saved stamp, for [`MemoryState::recount`].
    pub fn restore(
        &self,
        image: StateImage,
        resolve: impl Fn(&CounterShape) -> Option<CounterId>,
    ) -> HashMap<Entity, u64, RandomState> {
        let mut saved =
            HashMap::with_capacity_and_hasher(image.records.len(), RandomState::default());
        self.last_stamp
            .fetch_max(image.last_stamp, Ordering::Relaxed);
        if let Some(watermark) = image.watermark_ms {
            self.watermark_ms.fetch_max(watermark, Ordering::Relaxed);
        }
        for saved_record in image.records {
            let mut record = Record {
                labels: saved_record.labels,
                stamp: saved_record.stamp,
                ..Record::default()
            };
            for (shape, entries) in saved_record.counters {
                let Some(id) = resolve(&shape) else {
                    continue;
                };
                let series = record.series_mut(id, &shape.aggregation);
                match (series, entries) {
                    (Series::Sum(s), SeriesImage::Sum(entries)) => {
                        entries.into_iter().for_each(|(at, n)| s.add(at, n));
                    }
                    (Series::Distinct(s), SeriesImage::Distinct(entries)) => {
                        entries.into_iter().for_each(|(at, f)| s.add(at, f));
                    }
                    _ => {}
                }
            }
            saved.insert(saved_record.entity.clone(), saved_record.stamp);
            self.records.insert(saved_record.entity, record);
        }
        saved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Value;
    use crate::manifest::{CounterFilter, CounterSpec};

    const T0: i64 = 1_764_000_000_000;

    fn spec(kinds: &[&str], key: CounterKey, aggregation: Aggregation) -> CounterSpec {
        CounterSpec {
            name: "c".into(),
            event_kinds: kinds.iter().map(|k| k.to_string()).collect(),
            key,
            aggregation,
            filter: CounterFilter::All,
            window_seconds: 3600,
        }
    }

    fn sent(n: u32, at_ms: i64, to: &str, to_contact: bool) -> Event {
        Event::new(format!("e{n}"), "message.sent", at_ms, Entity::account("a"))
            .with_target(Entity::account(to))
            .with("to_contact", Value::Bool(to_contact))
    }

    #[test]
    fn counts_by_event_time_with_exact_window_edges() {
        let mut catalog = CounterCatalog::new();
        let id = catalog.declare(&spec(
            &["message.sent"],
            CounterKey::Actor,
            Aggregation::Count,
        ));
        let state = MemoryState::new();
        state.record(&sent(1, T0, "b", true), &catalog);
        state.record(&sent(2, T0 + 59_999, "b", true), &catalog);
        state.record(&sent(3, T0 + 60_000, "b", true), &catalog);
        let a = Entity::account("a");
        // At T0+60s, a 60 s window starts after T0's second.
        assert_eq!(state.counter(&a, id, 60, T0 + 60_000), 2);
        assert_eq!(state.counter(&a, id, 61, T0 + 60_000), 3);
        assert_eq!(state.counter(&a, id, 3600, T0 + 59_999), 2);
        assert_eq!(
            state.counter(&Entity::account("b"), id, 3600, T0 + 60_000),
            0
        );
    }

    #[test]
    fn out_of_order_events_count_as_if_in_order() {
        let mut catalog = CounterCatalog::new();
        let id = catalog.declare(&spec(
            &["message.sent"],
            CounterKey::Actor,
            Aggregation::Count,
        ));
        let strangers = catalog.declare(&CounterSpec {
            filter: CounterFilter::IsFalse("to_contact".into()),
            ..spec(
                &["message.sent"],
                CounterKey::Actor,
                Aggregation::DistinctTargets,
            )
        });
        let events: Vec<Event> = (0..40)
            .map(|n| {
                sent(
                    n,
                    T0 + i64::from(n) * 7_000,
                    &format!("r{}", n % 9),
                    n % 3 == 0,
                )
            })
            .collect();
        let in_order = MemoryState::new();
        for e in &events {
            in_order.record(e, &catalog);
        }
        let shuffled = MemoryState::new();
        for e in events.iter().rev() {
            shuffled.record(e, &catalog);
        }
        let a = Entity::account("a");
        for at in (0..300).map(|s| T0 + s * 1_000) {
            for window in [1, 10, 60, 3600] {
                assert_eq!(
                    in_order.counter(&a, id, window, at),
                    shuffled.counter(&a, id, window, at)
                );
                assert_eq!(
                    in_order.counter(&a, strangers, window, at),
                    shuffled.counter(&a, strangers, window, at)
                );
            }
        }
        // Six of the nine recipients are never messaged as contacts.
        assert_eq!(in_order.counter(&a, strangers, 3600, T0 + 300_000), 6);
    }

    #[test]
    fn sums_filters_and_distinct_keys() {
        let mut catalog = CounterCatalog::new();
        let forwards = catalog.declare(&spec(
            &["message.forwarded"],
            CounterKey::Actor,
            Aggregation::Sum("chat_count".into()),
        ));
        let reporters = catalog.declare(&CounterSpec {
            filter: CounterFilter::TextEquals("reason".into(), "spam".into()),
            ..spec(
                &["report.filed"],
                CounterKey::Target,
                Aggregation::DistinctActors,
            )
        });
        let state = MemoryState::new();
        let forward = |n: &str, chats: Value| {
            Event::new(n, "message.forwarded", T0, Entity::account("a")).with("chat_count", chats)
        };
        state.record(&forward("f1", Value::Int(5)), &catalog);
        state.record(&forward("f2", Value::Int(20)), &catalog);
        state.record(&forward("f3", Value::Text("7".into())), &catalog);
        state.record(&forward("f4", Value::Int(-3)), &catalog);
        assert_eq!(state.counter(&Entity::account("a"), forwards, 60, T0), 25);

        let report = |n: &str, by: &str, reason: &str| {
            Event::new(n, "report.filed", T0, Entity::account(by))
                .with_target(Entity::group("g"))
                .with("reason", Value::Text(reason.into()))
        };
        for (n, by, reason) in [
            ("r1", "x", "spam"),
            ("r2", "x", "spam"),
            ("r3", "y", "spam"),
            ("r4", "z", "scam"),
        ] {
            state.record(&report(n, by, reason), &catalog);
        }
        assert_eq!(state.counter(&Entity::group("g"), reporters, 60, T0), 2);
    }

    #[test]
    fn labels_apply_from_set_until_expiry_and_can_be_cleared() {
        let state = MemoryState::new();
        let a = Entity::account("a");
        state.set_label(&a, "spammer", T0, 60);
        assert!(!state.has_label(&a, "spammer", T0 - 1));
        assert!(state.has_label(&a, "spammer", T0));
        assert!(state.has_label(&a, "spammer", T0 + 59_999));
        assert!(!state.has_label(&a, "spammer", T0 + 60_000));
        // Setting again extends, never shortens.
        state.set_label(&a, "spammer", T0 + 30_000, 60);
        state.set_label(&a, "spammer", T0 + 1_000, 1);
        assert!(state.has_label(&a, "spammer", T0 + 89_999));
        assert_eq!(state.labels(&a, T0 + 10), ["spammer"]);
        state.clear_label(&a, "spammer", T0 + 40_000);
        assert!(state.has_label(&a, "spammer", T0 + 39_999));
        assert!(!state.has_label(&a, "spammer", T0 + 40_000));
        // A late clear leaves a stretch set after it alone.
        state.set_label(&a, "late", T0 + 100_000, 60);
        state.clear_label(&a, "late", T0 + 50_000);
        assert!(state.has_label(&a, "late", T0 + 120_000));
        // Set again after it lapsed: the gap stays unlabelled.
        state.set_label(&a, "spammer", T0 + 100_000, 60);
        assert!(!state.has_label(&a, "spammer", T0 + 99_999));
        assert!(state.has_label(&a, "spammer", T0 + 100_000));
        assert!(state.has_label(&a, "spammer", T0 + 20_000));
        assert_eq!(state.labels(&a, T0 + 100_000), ["late", "spammer"]);
    }

    #[test]
    fn sweep_reclaims_expired_labels_and_aged_out_history() {
        let mut catalog = CounterCatalog::new();
        let id = catalog.declare(&CounterSpec {
            window_seconds: 60,
            ..spec(&["message.sent"], CounterKey::Actor, Aggregation::Count)
        });
        let state = MemoryState::with_lateness(0);
        state.record(&sent(1, T0, "b", true), &catalog);
        state.set_label(&Entity::account("b"), "x", T0, 10);
        assert_eq!(state.size().entities, 2);
        // Another entity's event moves the watermark two minutes on.
        let later = Event::new("e2", "message.sent", T0 + 120_000, Entity::account("c"));
        state.record(&later, &catalog);
        let swept = state.sweep(&catalog);
        assert_eq!(
            swept,
            SweepStats {
                records_dropped: 2,
                labels_dropped: 1
            }
        );
        assert_eq!(
            state.size(),
            StateSize {
                entities: 1,
                series: 1,
                entries: 1,
                labels: 0
            }
        );
        assert_eq!(
            state.counter(&Entity::account("c"), id, 60, T0 + 120_000),
            1
        );
    }

    #[test]
    fn an_image_and_a_stamped_replay_count_each_event_exactly_once() {
        let mut catalog = CounterCatalog::new();
        let sent_by = catalog.declare(&spec(
            &["message.sent"],
            CounterKey::Actor,
            Aggregation::Count,
        ));
        let received = catalog.declare(&spec(
            &["message.sent"],
            CounterKey::Target,
            Aggregation::Count,
        ));
        let distinct = catalog.declare(&spec(
            &["message.sent"],
            CounterKey::Actor,
            Aggregation::DistinctTargets,
        ));
        let original = MemoryState::new();
        let events: Vec<Event> = (0..12)
            .map(|n| sent(n, T0 + i64::from(n) * 700, &format!("to-{}", n % 4), false))
            .collect();
        // Events 0..=5 are logged before the image begins; 6 and 7 are
        // counted while it is copied (so the image holds them) but logged
        // after; 8.. come after the copy.
        let mut stamps = Vec::new();
        for event in &events[..8] {
            stamps.push(original.record(event, &catalog));
        }
        original.set_label(&Entity::account("a"), "suspect", T0, 3600);
        let image = original.image(&catalog);
        for event in &events[8..] {
            stamps.push(original.record(event, &catalog));
        }
        assert!(stamps.windows(2).all(|w| w[0].actor < w[1].actor));

        let recovered = MemoryState::new();
        let saved = recovered.restore(image.clone(), |shape| catalog.live_id(shape));
        for (event, stamps) in events.iter().zip(&stamps).skip(6) {
            recovered.recount(
                event,
                &catalog,
                CounterId(0)..CounterId(u32::MAX),
                *stamps,
                |e| saved.get(e).copied().unwrap_or(0),
            );
        }
        assert_eq!(recovered.snapshot(), original.snapshot());
        let at = T0 + 11 * 700;
        let a = Entity::account("a");
        assert_eq!(recovered.counter(&a, sent_by, 3600, at), 12);
        assert_eq!(recovered.counter(&a, distinct, 3600, at), 4);
        assert_eq!(
            recovered.counter(&Entity::account("to-1"), received, 3600, at),
            3
        );
        assert!(recovered.has_label(&a, "suspect", at));

        // Replaying without the stamps counts events 6 and 7 twice.
        let naive = MemoryState::new();
        naive.restore(image, |shape| catalog.live_id(shape));
        for event in &events[6..] {
            naive.record(event, &catalog);
        }
        assert_eq!(naive.counter(&a, sent_by, 3600, at), 14);
    }
}
