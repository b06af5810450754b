//! Bringing a pipeline's state back after a restart: an image of the state
//! stores (saved while evaluation went on), then the logged decisions that
//! came after it replayed onto it, each event counted exactly once (see
//! [`crate::state::image`]) and each label change made again. Label changes
//! are idempotent (setting a label over a stretch where it applies extends
//! nothing; clearing is by event time), so replaying one the image already
//! holds changes nothing.
//!
//! State kept in Redis needs none of this: it outlives the engine. Its
//! images are empty and nothing is replayed into it.

use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;

use super::{CountStamps, Pipeline};
use crate::decision::{Decision, LabelChange};
use crate::event::Entity;
use crate::state::StateImage;
use crate::state::catalog::{LIVE_COUNTERS, SHADOW_COUNTERS};

/// Images of the live store and of the store of shadow-only counters.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StateImages {
    /// The live store.
    pub live: StateImage,
    /// The shadow-only counters.
    pub shadow: StateImage,
}

/// Each entity's stamp in the images restored: which logged events the
/// images already hold.
#[derive(Debug, Default)]
pub struct RestoredStamps {
    live: HashMap<Entity, u64, RandomState>,
    shadow: HashMap<Entity, u64, RandomState>,
}

impl Pipeline {
    /// Copy both state stores (record by record, while evaluation goes on).
    pub fn state_images(&self) -> StateImages {
        let snapshot = self.snapshot.load();
        let Some(stores) = self.shared.state.memory() else {
            return StateImages::default();
        };
        StateImages {
            live: stores.live.image(&snapshot.catalog),
            shadow: stores.shadow.image(&snapshot.catalog),
        }
    }

    /// Load saved images into the (empty) stores, each counter found in the
    /// current catalog by what it counts.
    pub fn restore_state(&self, images: StateImages) -> RestoredStamps {
        let snapshot = self.snapshot.load();
        let catalog = &snapshot.catalog;
        let Some(stores) = self.shared.state.memory() else {
            return RestoredStamps::default();
        };
        RestoredStamps {
            live: stores.live.restore(images.live, |s| catalog.live_id(s)),
            shadow: stores
                .shadow
                .restore(images.shadow, |s| catalog.shadow_id(s)),
        }
    }

    /// Replay a decision logged after the images were taken: count its
    /// event where the images do not hold it yet, and make its live label
    /// changes again.
    pub fn replay(&self, decision: &Decision, stamps: CountStamps, restored: &RestoredStamps) {
        let snapshot = self.snapshot.load();
        let catalog = &snapshot.catalog;
        let Some(stores) = self.shared.state.memory() else {
            return;
        };
        let event = &decision.event;
        let saved = |stamps: &HashMap<Entity, u64, RandomState>, entity: &Entity| {
            stamps.get(entity).copied().unwrap_or(0)
        };
        stores
            .live
            .recount(event, catalog, LIVE_COUNTERS, stamps.live, |e| {
                saved(&restored.live, e)
            });
        if catalog.has_shadow_only() {
            stores
                .shadow
                .recount(event, catalog, SHADOW_COUNTERS, stamps.shadow, |e| {
                    saved(&restored.shadow, e)
                });
        }
        let at = event.occurred_at_ms;
        for change in &decision.label_changes {
            match change {
                LabelChange::Set {
                    entity,
                    label,
                    expires_at_ms,
                    ..
                } => stores
                    .live
                    .set_label_until(entity, label, at, *expires_at_ms),
                LabelChange::Clear { entity, label, .. } => {
                    stores.live.clear_label(entity, label, at)
                }
            }
        }
    }

    /// Forget the event id of a decision that could not be logged, so that
    /// a retry of the event is evaluated afresh. (What its evaluation
    /// counted stays counted: the retry counts it again.)
    pub fn forget(&self, decision: &Arc<Decision>) {
        self.shared.seen.forget(decision);
    }

    /// Whether a decision for event `event_id` is remembered (made, or
    /// being made).
    pub fn remembers(&self, event_id: &str) -> bool {
        self.shared.seen.contains(event_id)
    }

    /// Take a logged decision back into what the pipeline remembers of
    /// recent events: its event id (a retry gets this decision again) and
    /// the shadow and ground-truth tallies.
    pub fn remember(&self, decision: &Arc<Decision>) {
        self.shared.seen.remember(decision.clone());
        if self.shared.keep_reports {
            self.shared.ledger.record(decision);
            self.shared.book.observe(decision);
        }
    }
}
