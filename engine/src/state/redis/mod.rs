//! Shared state in Redis: the counters and labels of every entity, kept
//! where several engine nodes read and update them together, so that two
//! nodes given half the traffic each decide as one node given all of it.
//!
//! * [`keys`]: where each entity's state lives (one cluster slot each).
//! * [`scripts`]: the Lua scripts that update and read it atomically.
//! * [`connection`]: the pool, its I/O threads and the outage guard.
//! * [`settings`]: the `redis` section of the configuration.
//!
//! Counting is exact (per-second sums; distinct counts as sets of
//! fingerprints per second, not HyperLogLog) and idempotent by event id:
//! each entity remembers the ids it counted for `dedupe_seconds` of event
//! time, so a retry after a failure, or a copy sent to another node, is
//! counted once. Every key lives as long as its contents are needed
//! (history for a counter's longest window plus the lateness allowance,
//! a label until it expires plus the allowance) past its last write, in
//! Redis's own clock: under replayed traffic much faster than real time,
//! state is kept longer than needed, never shorter.

mod connection;
mod keys;
mod scripts;
mod settings;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};

pub use connection::{CallError, RedisHealth};
pub use settings::{OnUnavailable, RedisSettings};

use super::StateError;
use super::catalog::{CounterCatalog, CounterDef, CounterId};
use super::counting::{Contribution, contributions, entity_of, horizon, second_of};
use crate::event::{Entity, Event};
use crate::manifest::{Aggregation, CounterKey};
use connection::Pool;
use keys::EntityKeys;
use scripts::MAX_EXACT_MS;

/// Counters and labels kept in Redis (a single server or a cluster).
pub struct RedisState {
    pool: Pool,
    settings: RedisSettings,
    /// The latest event time this node counted: what its idempotency
    /// table and reports are swept by.
    watermark_ms: AtomicI64,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState")
            .field("urls", &self.settings.urls)
            .field("prefix", &self.settings.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisState {
    /// Connect as `settings` say. Fails if Redis cannot be reached now.
    pub fn connect(settings: RedisSettings) -> Result<Self, String> {
        settings
            .check()
            .map_err(|(key, message)| format!("redis.{key}: {message}"))?;
        Ok(RedisState {
            pool: Pool::connect(&settings)?,
            settings,
            watermark_ms: AtomicI64::new(i64::MIN),
        })
    }

    /// What to do when Redis cannot be reached.
    pub fn on_unavailable(&self) -> OnUnavailable {
        self.settings.on_unavailable
    }

    /// How the connection has fared.
    pub fn health(&self) -> RedisHealth {
        self.pool.health()
    }

    /// Check that Redis answers (a `PING`), as any call would: failing at
    /// once while resting after a failure.
    pub fn ping(&self) -> Result<(), StateError> {
        let command = redis::cmd("PING");
        self.call(move |mut c| async move { c.query::<String>(&command).await })
            .map(drop)
    }

    /// The latest event time this node counted, if any.
    pub fn watermark_ms(&self) -> Option<i64> {
        let watermark = self.watermark_ms.load(Ordering::Relaxed);
        (watermark != i64::MIN).then_some(watermark)
    }

    /// Count `event` into every counter of `catalog` it updates, live and
    /// shadow-only alike: a counter is keyed by its shape, so one that live
    /// and shadow rules both keep is counted once, with the longer history.
    /// Each entity's counters are updated in one atomic script, and an
    /// event counted for an entity before is not counted again.
    pub fn count(&self, event: &Event, catalog: &CounterCatalog) -> Result<(), StateError> {
        self.watermark_ms
            .fetch_max(event.occurred_at_ms, Ordering::Relaxed);
        let second = second_of(event.occurred_at_ms);
        let mut invocations = Vec::with_capacity(2);
        for key in [CounterKey::Actor, CounterKey::Target] {
            let Some(entity) = entity_of(event, key) else {
                continue;
            };
            let updates = self.updates(event, catalog, key, second);
            if updates.is_empty() {
                continue;
            }
            let keys = EntityKeys::new(&self.settings.prefix, entity);
            let mut invocation = scripts::COUNT.prepare_invoke();
            let dedupe = i64::from(self.settings.dedupe_seconds);
            // The role is part of what is remembered: an event whose actor
            // is its own target counts once as each.
            let role = match key {
                CounterKey::Actor => 'a',
                CounterKey::Target => 't',
            };
            invocation
                .key(keys.counted())
                .arg(format!("{role}:{}", event.id))
                .arg(second)
                .arg(second - dedupe)
                .arg(dedupe.max(1) + i64::from(self.settings.lateness_seconds));
            for (shape_key, update) in &updates {
                invocation.key(keys.counter(shape_key));
                match &update.contribution {
                    Contribution::Amount(n) => invocation.arg("s").arg(*n),
                    Contribution::Value(f) => invocation.arg("d").arg(*f),
                };
                invocation
                    .arg(update.oldest_second)
                    .arg(update.lifetime_seconds);
            }
            invocations.push(invocation);
        }
        if invocations.is_empty() {
            return Ok(());
        }
        // The actor's and the target's scripts go out together (to two
        // cluster nodes, if their slots are on two): one wait, not two.
        // Each is atomic and idempotent, so if one fails the retry counts
        // only what is missing.
        self.call(move |c| async move {
            let runs = invocations.iter().map(|invocation| {
                let mut c = c.clone();
                async move { c.invoke::<i64>(invocation).await }
            });
            futures_util::future::try_join_all(runs).await.map(drop)
        })
    }

    /// `event`'s updates of `entity`'s counters, one per counter shape.
    fn updates(
        &self,
        event: &Event,
        catalog: &CounterCatalog,
        key: CounterKey,
        second: i64,
    ) -> BTreeMap<std::sync::Arc<str>, Update> {
        let lateness = self.settings.lateness_seconds;
        let mut updates = BTreeMap::new();
        let all = CounterId(0)..CounterId(u32::MAX);
        for (_, def, contribution) in contributions(event, catalog, all, key) {
            let retention = def.retention_seconds;
            let update = updates
                .entry(def.stable_key.clone())
                .or_insert_with(|| Update {
                    contribution,
                    oldest_second: i64::MAX,
                    lifetime_seconds: 0,
                });
            update.oldest_second = update
                .oldest_second
                .min(horizon(second, retention, lateness));
            update.lifetime_seconds = update
                .lifetime_seconds
                .max(u64::from(retention) + u64::from(lateness));
        }
        updates
    }

    /// Counter `def` of `entity` over the `window` seconds ending with the
    /// second of `at_ms`.
    pub fn counter(
        &self,
        entity: &Entity,
        def: &CounterDef,
        window: u32,
        at_ms: i64,
    ) -> Result<u64, StateError> {
        let last = second_of(at_ms);
        let kind = match def.shape.aggregation {
            Aggregation::Count | Aggregation::Sum(_) => "s",
            _ => "d",
        };
        let key = EntityKeys::new(&self.settings.prefix, entity).counter(&def.stable_key);
        let mut invocation = scripts::READ.prepare_invoke();
        invocation
            .key(key)
            .arg(kind)
            .arg(last - i64::from(window) + 1)
            .arg(last);
        let total: i64 = self.call(move |mut c| async move { c.invoke(&invocation).await })?;
        Ok(total.max(0) as u64)
    }

    /// Every label of `entity` with its stretches, as stored.
    fn label_stretches(&self, entity: &Entity) -> Result<Vec<(String, String)>, StateError> {
        let key = EntityKeys::new(&self.settings.prefix, entity).labels();
        let command = redis::cmd("HGETALL").arg(key).clone();
        self.call(move |mut c| async move { c.query(&command).await })
    }

    /// The labels on `entity` at `at_ms`, sorted.
    pub fn labels(&self, entity: &Entity, at_ms: i64) -> Result<Vec<String>, StateError> {
        let mut labels: Vec<String> = self
            .label_stretches(entity)?
            .into_iter()
            .filter(|(_, stretches)| scripts::stretches_cover(stretches, at_ms))
            .map(|(name, _)| name)
            .collect();
        labels.sort();
        Ok(labels)
    }

    /// Whether `entity` carries `label` at `at_ms`.
    pub fn has_label(&self, entity: &Entity, label: &str, at_ms: i64) -> Result<bool, StateError> {
        let key = EntityKeys::new(&self.settings.prefix, entity).labels();
        let command = redis::cmd("HGET").arg(key).arg(label).clone();
        let stretches: Option<String> =
            self.call(move |mut c| async move { c.query(&command).await })?;
        Ok(stretches.is_some_and(|s| scripts::stretches_cover(&s, at_ms)))
    }

    /// Label `entity` from `at_ms` until `expires_at_ms`, as
    /// [`crate::state::MemoryState::set_label`] does.
    pub fn set_label(
        &self,
        entity: &Entity,
        label: &str,
        at_ms: i64,
        expires_at_ms: i64,
    ) -> Result<(), StateError> {
        let expires = expires_at_ms.min(MAX_EXACT_MS);
        let lateness_ms = i64::from(self.settings.lateness_seconds) * 1000;
        // A key lifetime Redis accepts: at most a century.
        let lifetime_ms = (expires - at_ms + lateness_ms).clamp(1, 100 * 365 * 86_400_000);
        let mut invocation = scripts::SET_LABEL.prepare_invoke();
        invocation
            .key(EntityKeys::new(&self.settings.prefix, entity).labels())
            .arg(label)
            .arg(at_ms.min(MAX_EXACT_MS))
            .arg(expires)
            .arg(lifetime_ms);
        self.call(move |mut c| async move { c.invoke::<i64>(&invocation).await })
            .map(drop)
    }

    /// Remove `label` from `entity` as of `at_ms`, as
    /// [`crate::state::MemoryState::clear_label`] does.
    pub fn clear_label(&self, entity: &Entity, label: &str, at_ms: i64) -> Result<(), StateError> {
        let mut invocation = scripts::CLEAR_LABEL.prepare_invoke();
        invocation
            .key(EntityKeys::new(&self.settings.prefix, entity).labels())
            .arg(label)
            .arg(at_ms.min(MAX_EXACT_MS));
        self.call(move |mut c| async move { c.invoke::<i64>(&invocation).await })
            .map(drop)
    }

    fn call<T, F, Fut>(&self, call: F) -> Result<T, StateError>
    where
        F: FnOnce(connection::Connection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        self.pool
            .run(call)
            .map_err(|e| StateError::Unavailable(format!("Redis: {e}")))
    }
}

/// One counter's update by one event.
struct Update {
    contribution: Contribution,
    /// The oldest second the counter must keep.
    oldest_second: i64,
    /// How long the key must live past this write.
    lifetime_seconds: u64,
}
