//! Durable state in a data directory, with nothing to set up: the decision
//! log in an embedded database (redb), and periodic checkpoints of the
//! behaviour state beside it.
//!
//! * [`store`]: decisions by sequence and id, and overturns; the backing
//!   of the decision log and of the overturn log. A decision is in the
//!   store, synced to disk, before its client gets it or a watcher sees it.
//! * [`checkpoint`]: images of the state stores, saved atomically every
//!   interval and at shutdown.
//! * [`recover`]: at start, the last image plus the decisions logged after
//!   it, replayed.
//!
//! The decision log is the write-ahead log of everything else. Counters
//! are what logged events counted; labels are what logged decisions set
//! or cleared, less what overturns cleared; the event ids a retry must
//! find are the logged decisions'.
//! So an acknowledged decision loses nothing in a crash, and the state
//! comes back exactly: the last image, and every logged event after it
//! counted once (stamps tell which events an image already holds). What
//! can differ after a crash is bounded to events whose evaluation had
//! counted them but whose decision was not yet logged when the process
//! died: their clients got no decision and retry, and those that were in
//! the last image count twice. The ground-truth book (accuracy against
//! labels) is not kept yet.

pub mod checkpoint;
pub mod recover;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use checkpoint::{Checkpointer, Checkpointing};
pub use recover::{Recovered, RecoveredLogs};
pub use store::{DecisionStore, Retention};

use crate::pipeline::Pipeline;

/// The database's file name in the data directory.
const STORE_FILE: &str = "decisions.redb";

/// Why durable state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    /// Another process has the data directory open.
    #[error("{}: another engine has this data directory open", .0.display())]
    InUse(PathBuf),
    /// The database failed.
    #[error("decision store: {0}")]
    Store(String),
    /// A file could not be read or written.
    #[error("{}: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// What was read makes no sense.
    #[error("corrupt durable state: {0}")]
    Corrupt(String),
}

impl DurableError {
    fn io(path: &Path, error: impl std::fmt::Display) -> Self {
        DurableError::Io {
            path: path.to_path_buf(),
            message: error.to_string(),
        }
    }
}

/// An opened data directory: its decision store, and the decision log and
/// state recovered from it.
pub struct DataDir {
    /// The directory.
    pub dir: PathBuf,
    /// The decision store.
    pub store: Arc<DecisionStore>,
}

impl DataDir {
    /// Open (creating if need be) the data directory `dir`, its store
    /// caching at most `cache_bytes` in memory (the embedded database's own
    /// default, 1 GiB, is memory that only grows until it is full).
    pub fn open(dir: &Path, cache_bytes: usize) -> Result<Self, DurableError> {
        std::fs::create_dir_all(dir).map_err(|e| DurableError::io(dir, e))?;
        let store = DecisionStore::open(&dir.join(STORE_FILE), cache_bytes)?;
        Ok(DataDir {
            dir: dir.to_path_buf(),
            store: Arc::new(store),
        })
    }

    /// Bring `pipeline`'s state back and return the logs that go on from
    /// the store, `capacity` decisions kept in memory.
    pub fn recover(
        &self,
        pipeline: &Pipeline,
        capacity: usize,
    ) -> Result<RecoveredLogs, DurableError> {
        recover::recover(&self.dir, self.store.clone(), pipeline, capacity)
    }
}

#[cfg(test)]
mod tests;
