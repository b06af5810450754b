//! Engine-owned state: behaviour counters over sliding windows of event
//! time and labels with an expiry; and [`StateView`], what
//! rules may read of it. The runtime reads through that trait so that the
//! store behind it (in memory, durable, or shared) can change without
//! touching the sandbox.
//!
//! * [`backend`]: where the pipeline keeps state: memory or Redis.
//! * [`catalog`]: which counters exist, deduplicated across rules.
//! * [`counting`]: what an event adds to which counter, in every store.
//! * [`series`]: one counter's history for one entity.
//! * [`memory`]: the in-memory store of every entity's counters and labels.
//! * [`redis`]: the same state in Redis, shared by several engine nodes.
//! * [`view`]: one rule's view of the store, resolving its counter names.
//! * [`image`]: a saved copy of a store, and the stamps that make
//!   replaying after it exact.
//! * [`fixed`]: a hand-set state for tests and examples.

pub mod backend;
pub mod catalog;
mod counting;
pub mod fixed;
pub mod image;
pub mod memory;
pub mod redis;
pub mod series;
pub mod view;

pub use backend::StateBackend;
pub use catalog::{CounterCatalog, CounterId};
pub use fixed::FixedState;
pub use image::{CountStamps, Stamps, StateImage};
pub use memory::MemoryState;
pub use redis::{RedisSettings, RedisState};
pub use view::{CounterStores, RuleStateView, SharedCounter};

use crate::banks::HashLookup;
use crate::event::Entity;

/// Why a state read failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// No bank of that name.
    #[error("no hash bank named `{0}`")]
    UnknownBank(String),
    /// No counter of that name.
    #[error("no counter named `{0}`")]
    UnknownCounter(String),
    /// The store behind the state could not answer.
    #[error("state unavailable: {0}")]
    Unavailable(String),
}

/// Read access to engine-owned state, as of a point in event time.
pub trait StateView: Send + Sync {
    /// The value of counter `name` for `entity` over the `window_seconds`
    /// before `at_ms`, inclusive of events at `at_ms`.
    fn counter(
        &self,
        entity: &Entity,
        name: &str,
        window_seconds: u32,
        at_ms: i64,
    ) -> Result<u64, StateError>;

    /// The labels on `entity` that have not expired at `at_ms`.
    fn labels(&self, entity: &Entity, at_ms: i64) -> Result<Vec<String>, StateError>;

    /// Whether `entity` carries `label` at `at_ms`.
    fn has_label(&self, entity: &Entity, label: &str, at_ms: i64) -> Result<bool, StateError> {
        Ok(self.labels(entity, at_ms)?.iter().any(|l| l == label))
    }

    /// The longest window of a counter that the state itself declares for
    /// every rule (the policy's counters), if it declares `name`. A rule may
    /// read these without declaring them in its manifest.
    fn shared_counter_window(&self, _name: &str) -> Option<u32> {
        None
    }

    /// Entries of the hash bank `bank` within `max_distance` bits of
    /// `hash`, nearest first, and the allow-list entry that suppresses them
    /// if one does (the hash banks are engine state too, though not
    /// behaviour: see [`crate::banks`]).
    fn match_hash(
        &self,
        bank: &str,
        hash: &[u8; 32],
        max_distance: u32,
    ) -> Result<HashLookup, StateError>;
}
