//! Counting results: what happened so far, shared by the connections, the
//! progress line and the report.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Distinct error descriptions kept with their counts; beyond this many,
/// further kinds are counted together.
const ERROR_KINDS: usize = 20;

/// What happened so far, shared by the connections and the progress line.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) sent: AtomicU64,
    pub(crate) ok: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) event_errors: AtomicU64,
    pub(crate) stream_errors: AtomicU64,
    /// Sends the stream mode skipped because the traffic would be dated in
    /// the future (only after thousands of rounds).
    pub(crate) out_of_traffic: AtomicBool,
    kinds: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    pub(crate) fn errors(&self) -> u64 {
        self.event_errors.load(Relaxed) + self.stream_errors.load(Relaxed)
    }

    pub(crate) fn answered(&self) -> u64 {
        self.ok.load(Relaxed) + self.event_errors.load(Relaxed)
    }

    pub(crate) fn evaluated(&self, duplicate: bool) {
        self.ok.fetch_add(1, Relaxed);
        if duplicate {
            self.duplicates.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn event_error(&self, description: String) {
        self.event_errors.fetch_add(1, Relaxed);
        self.note(description);
    }

    pub(crate) fn stream_error(&self, status: &tonic::Status) {
        self.stream_errors.fetch_add(1, Relaxed);
        self.note(format!(
            "stream ended with {:?}: {}",
            status.code(),
            status.message()
        ));
    }

    fn note(&self, description: String) {
        let mut kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        let key = if kinds.len() < ERROR_KINDS || kinds.contains_key(&description) {
            description
        } else {
            "(other errors)".to_string()
        };
        *kinds.entry(key).or_default() += 1;
    }

    pub(crate) fn error_kinds(&self) -> BTreeMap<String, u64> {
        self.kinds.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
