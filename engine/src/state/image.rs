//! A saved image of a state store, and the stamps that let a recovery
//! replay exactly the events an image is missing.
//!
//! An image is copied record by record while events keep being counted, so
//! it is not the store at one instant. Stamps make it exact anyway: every
//! update of a record takes the next stamp of its store, under the record's
//! lock, and an event's decision is logged with the stamps its counting
//! took. An event logged after the image began is replayed into a record
//! only if its stamp is newer than the record's stamp in the image: in the
//! image already means counted once, not twice.

use serde::{Deserialize, Serialize};

use super::catalog::CounterShape;
use super::memory::Label;
use crate::event::Entity;

/// The stamps one event's counting took in one store: of its actor's record
/// and of its target's. 0 where the event counted towards nothing there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamps {
    /// The actor's record.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub actor: u64,
    /// The target's record.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub target: u64,
}

impl Stamps {
    /// Whether the event counted towards nothing.
    pub fn is_empty(&self) -> bool {
        self.actor == 0 && self.target == 0
    }
}

/// The stamps one event's counting took in the live store and in the store
/// of counters only shadow rules read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountStamps {
    /// In the live store.
    #[serde(default, skip_serializing_if = "Stamps::is_empty")]
    pub live: Stamps,
    /// In the store of counters only shadow rules read.
    #[serde(default, skip_serializing_if = "Stamps::is_empty")]
    pub shadow: Stamps,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Everything a store held, as [`crate::state::MemoryState::image`] copied it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StateImage {
    /// The store's last stamp when the copy began.
    pub last_stamp: u64,
    /// The latest event time it had seen.
    pub watermark_ms: Option<i64>,
    /// One per entity.
    pub records: Vec<RecordImage>,
}

/// One entity's record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordImage {
    /// Whose.
    pub entity: Entity,
    /// The stamp of the last update the copy holds.
    pub stamp: u64,
    /// Each counter, by what it counts, with its history.
    pub counters: Vec<(CounterShape, SeriesImage)>,
    /// Its labels.
    pub labels: Vec<Label>,
}

/// One counter's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeriesImage {
    /// (second, total) of a count or sum.
    Sum(Vec<(i64, u64)>),
    /// (second, fingerprint) of a distinct count.
    Distinct(Vec<(i64, u64)>),
}
