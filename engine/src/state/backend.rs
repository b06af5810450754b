//! Where a pipeline keeps its state: in this process's memory, or in Redis
//! shared with other engine nodes. The pipeline and the rules' views go
//! through [`StateBackend`] alone, so that neither knows which.

use std::sync::Arc;

use super::StateError;
use super::catalog::{CounterCatalog, CounterId, LIVE_COUNTERS, SHADOW_COUNTERS};
use super::image::CountStamps;
use super::redis::{OnUnavailable, RedisState};
use super::view::CounterStores;
use crate::event::{Entity, Event};
use crate::manifest::Aggregation;

/// The pipeline's state store.
#[derive(Clone, Debug)]
pub enum StateBackend {
    /// In memory: the live store and the store of shadow-only counters.
    Memory(CounterStores),
    /// In Redis.
    Redis(Arc<RedisState>),
}

impl StateBackend {
    /// Count `event` into the counters of `catalog` it updates. In memory,
    /// the stamps the counting took (for exact replay after a restart).
    pub fn count(
        &self,
        event: &Event,
        catalog: &CounterCatalog,
    ) -> Result<CountStamps, StateError> {
        match self {
            StateBackend::Memory(stores) => Ok(stores.count(event, catalog)),
            StateBackend::Redis(redis) => {
                redis.count(event, catalog).map(|()| CountStamps::default())
            }
        }
    }

    /// Counter `id` of `catalog` for `entity` over the `window` seconds
    /// ending with the second of `at_ms`.
    pub fn counter(
        &self,
        catalog: &CounterCatalog,
        entity: &Entity,
        id: CounterId,
        window: u32,
        at_ms: i64,
    ) -> Result<u64, StateError> {
        match self {
            StateBackend::Memory(stores) => {
                Ok(stores.for_counter(id).counter(entity, id, window, at_ms))
            }
            StateBackend::Redis(redis) => match catalog.get(id) {
                Some(def) => redis.counter(entity, def, window, at_ms),
                None => Ok(0),
            },
        }
    }

    /// The labels on `entity` at `at_ms`, sorted.
    pub fn labels(&self, entity: &Entity, at_ms: i64) -> Result<Vec<String>, StateError> {
        match self {
            StateBackend::Memory(stores) => Ok(stores.live.labels(entity, at_ms)),
            StateBackend::Redis(redis) => redis.labels(entity, at_ms),
        }
    }

    /// Whether `entity` carries `label` at `at_ms`.
    pub fn has_label(&self, entity: &Entity, label: &str, at_ms: i64) -> Result<bool, StateError> {
        match self {
            StateBackend::Memory(stores) => Ok(stores.live.has_label(entity, label, at_ms)),
            StateBackend::Redis(redis) => redis.has_label(entity, label, at_ms),
        }
    }

    /// Label `entity` from `at_ms` until `expires_at_ms` (see
    /// [`crate::state::MemoryState::set_label`]).
    pub fn set_label(
        &self,
        entity: &Entity,
        label: &str,
        at_ms: i64,
        expires_at_ms: i64,
    ) -> Result<(), StateError> {
        match self {
            StateBackend::Memory(stores) => {
                stores
                    .live
                    .set_label_until(entity, label, at_ms, expires_at_ms);
                Ok(())
            }
            StateBackend::Redis(redis) => redis.set_label(entity, label, at_ms, expires_at_ms),
        }
    }

    /// Remove `label` from `entity` as of `at_ms`.
    pub fn clear_label(&self, entity: &Entity, label: &str, at_ms: i64) -> Result<(), StateError> {
        match self {
            StateBackend::Memory(stores) => {
                stores.live.clear_label(entity, label, at_ms);
                Ok(())
            }
            StateBackend::Redis(redis) => redis.clear_label(entity, label, at_ms),
        }
    }

    /// Reclaim what has aged out (Redis expires its keys itself).
    pub fn sweep(&self, catalog: &CounterCatalog) {
        if let StateBackend::Memory(stores) = self {
            stores.live.sweep(catalog);
            stores.shadow.sweep(catalog);
        }
    }

    /// The latest event time counted (by this node).
    pub fn watermark_ms(&self) -> Option<i64> {
        match self {
            StateBackend::Memory(stores) => stores.live.watermark_ms(),
            StateBackend::Redis(redis) => redis.watermark_ms(),
        }
    }

    /// Carry over the history of counters that `previous` kept for shadow
    /// rules alone and `next` keeps live (a shadow rule was promoted). In
    /// Redis a counter is keyed by what it counts, so there is nothing to
    /// move.
    pub fn promote_counters(&self, previous: &CounterCatalog, next: &CounterCatalog) {
        if let StateBackend::Memory(stores) = self {
            for (shadow, live, aggregation) in next.promoted_from(previous) {
                stores.adopt(shadow, live, &aggregation);
            }
        }
    }

    /// Whether an evaluation that met a state failure must be refused
    /// rather than decided.
    pub fn refuses_when_unavailable(&self) -> bool {
        match self {
            StateBackend::Memory(_) => false,
            StateBackend::Redis(redis) => redis.on_unavailable() == OnUnavailable::Closed,
        }
    }

    /// The in-memory stores, if the state is kept in memory.
    pub fn memory(&self) -> Option<&CounterStores> {
        match self {
            StateBackend::Memory(stores) => Some(stores),
            StateBackend::Redis(_) => None,
        }
    }
}

impl CounterStores {
    /// Count `event` into the live store, and into the shadow store if
    /// any counter is kept for shadow rules alone.
    pub fn count(&self, event: &Event, catalog: &CounterCatalog) -> CountStamps {
        let mut stamps = CountStamps {
            live: self.live.record_counters(event, catalog, LIVE_COUNTERS),
            ..CountStamps::default()
        };
        if catalog.has_shadow_only() {
            stamps.shadow = self.shadow.record_counters(event, catalog, SHADOW_COUNTERS);
        }
        stamps
    }

    fn adopt(&self, shadow: CounterId, live: CounterId, aggregation: &Aggregation) {
        self.live
            .adopt_counter(&self.shadow, shadow, live, aggregation);
    }
}
