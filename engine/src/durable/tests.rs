//! The durable store, the group commit over it, pruning and checkpoints.

use std::sync::Arc;

use super::*;
use crate::decision::Decision;
use crate::decision_log::{Backing, BackingError, DecisionLog, Entry, Gap, Logged, ReadError};
use crate::event::{Entity, Event};
use crate::pipeline::CountStamps;
use crate::state::{Stamps, StateImage};

fn decision(n: u64) -> Arc<Decision> {
    Decision::allowing(Event::new(
        format!("event-{n}"),
        "message.sent",
        1_764_000_000_000 + n as i64 * 1000,
        Entity::account(format!("account-{}", n % 7)),
    ))
}

fn entry(n: u64) -> Entry {
    let stamps = CountStamps {
        live: Stamps {
            actor: n,
            target: 0,
        },
        shadow: Stamps::default(),
    };
    (decision(n), stamps)
}

fn backed_log(dir: &std::path::Path, capacity: usize) -> (Arc<DecisionStore>, DecisionLog) {
    let store = Arc::new(DecisionStore::open(&dir.join("decisions.redb"), 1 << 20).unwrap());
    let last = store.bounds().unwrap().map_or(0, |(_, last)| last);
    let log = DecisionLog::with_backing(capacity, store.clone(), last, Vec::new());
    (store, log)
}

fn sequences(logged: &[Logged]) -> Vec<u64> {
    logged.iter().map(|l| l.sequence).collect()
}

#[test]
fn a_reopened_store_goes_on_numbering_and_serves_what_memory_dropped() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_, log) = backed_log(dir.path(), 3);
        let first = log.commit((1..=6).map(entry).collect()).unwrap();
        assert_eq!(first, [1, 2, 3, 4, 5, 6]);
        assert_eq!(log.commit(vec![entry(7)]).unwrap(), [7]);
        // Memory keeps 3; the store has the rest.
        assert_eq!(log.len(), 3);
        assert_eq!(
            sequences(&log.read_after(0, 100).unwrap()),
            [1, 2, 3, 4, 5, 6, 7]
        );
        assert_eq!(log.get("dec-event-2").unwrap().sequence, 2);
    }
    let (store, log) = backed_log(dir.path(), 3);
    assert_eq!(store.bounds().unwrap(), Some((1, 7)));
    assert_eq!(log.last_sequence(), 7);
    assert_eq!(log.commit(vec![entry(8)]).unwrap(), [8]);
    let all = store.after(0, 100).unwrap();
    assert_eq!(
        all.iter().map(|s| s.sequence).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    // Decisions and stamps come back as written.
    assert_eq!(*all[4].decision, *decision(5));
    assert_eq!(all[4].stamps.live.actor, 5);
    assert_eq!(log.get("dec-event-1").unwrap().decision.event.id, "event-1");
    assert!(log.get("dec-event-99").is_none());
}

#[test]
fn concurrent_commits_number_every_decision_once_and_in_store_order() {
    let dir = tempfile::tempdir().unwrap();
    let (store, log) = backed_log(dir.path(), 10_000);
    let log = Arc::new(log);
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for batch in 0..40u64 {
                    let base = 1_000_000 * (t + 1) + batch * 3;
                    let entries: Vec<Entry> = (base..base + 3).map(entry).collect();
                    let ids: Vec<String> = entries.iter().map(|(d, _)| d.id.clone()).collect();
                    let got = log.commit(entries).unwrap();
                    // A batch's decisions are numbered together, in order.
                    assert_eq!(got.windows(2).filter(|w| w[1] != w[0] + 1).count(), 0);
                    mine.extend(ids.into_iter().zip(got));
                }
                mine
            })
        })
        .collect();
    let mut all: Vec<(String, u64)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_by_key(|(_, sequence)| *sequence);
    let numbers: Vec<u64> = all.iter().map(|(_, s)| *s).collect();
    assert_eq!(numbers, (1..=960).collect::<Vec<u64>>());
    // The store holds each decision under the sequence its caller got,
    // and memory shows the same.
    let stored = store.after(0, 10_000).unwrap();
    assert_eq!(stored.len(), 960);
    for ((id, sequence), s) in all.iter().zip(&stored) {
        assert_eq!((&s.decision.id, s.sequence), (id, *sequence));
    }
    let shown = log.read_after(0, 10_000).unwrap();
    assert_eq!(sequences(&shown), numbers);
}

/// A backing whose disk is full.
struct Failing;

impl Backing for Failing {
    fn write(&self, _: u64, _: &[Entry]) -> Result<(), BackingError> {
        Err(BackingError("no space left on device".into()))
    }
    fn get(&self, _: &str) -> Result<Option<Logged>, BackingError> {
        Ok(None)
    }
    fn read_after(&self, _: u64, _: usize) -> Result<Vec<Logged>, ReadError> {
        Ok(Vec::new())
    }
}

#[test]
fn a_failed_write_logs_and_shows_nothing() {
    let log = DecisionLog::with_backing(10, Arc::new(Failing), 41, Vec::new());
    let error = log.commit(vec![entry(1), entry(2)]).unwrap_err();
    assert_eq!(error.to_string(), "decision store: no space left on device");
    assert_eq!(log.last_sequence(), 41);
    assert!(log.is_empty());
    assert!(log.get("dec-event-1").is_none());
}

#[test]
fn pruning_keeps_the_retention_and_everything_a_recovery_needs() {
    let dir = tempfile::tempdir().unwrap();
    let (store, log) = backed_log(dir.path(), 5);
    log.commit((1..=100).map(entry).collect()).unwrap();
    let by_count = Retention {
        max_decisions: 10,
        max_age_ms: None,
    };
    // Nothing after sequence 50 may go: 50 are left, not 10.
    assert_eq!(store.prune(by_count, 50).unwrap(), 50);
    assert_eq!(store.bounds().unwrap(), Some((51, 100)));
    assert_eq!(store.prune(by_count, 100).unwrap(), 40);
    assert_eq!(store.bounds().unwrap(), Some((91, 100)));
    // Events one second apart: 5 s of event time keeps 95..=100.
    let by_age = Retention {
        max_decisions: 1000,
        max_age_ms: Some(5_000),
    };
    assert_eq!(store.prune(by_age, 100).unwrap(), 4);
    assert_eq!(store.bounds().unwrap(), Some((95, 100)));
    // What went is gone by id too, and a resume before it is a gap.
    assert!(log.get("dec-event-94").is_none());
    assert_eq!(log.get("dec-event-95").unwrap().sequence, 95);
    assert_eq!(
        log.read_after(10, 5).unwrap_err(),
        ReadError::Gap(Gap {
            after: 10,
            oldest_kept: 95
        })
    );
    assert_eq!(sequences(&log.read_after(94, 3).unwrap()), [95, 96, 97]);
}

#[test]
fn a_checkpoint_reads_back_and_a_damaged_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(checkpoint::load(dir.path()).unwrap().is_none());
    let images = crate::pipeline::StateImages {
        live: StateImage {
            last_stamp: 17,
            watermark_ms: Some(1_764_000_000_000),
            records: Vec::new(),
        },
        shadow: StateImage::default(),
    };
    checkpoint::save(dir.path(), 42, 3, &images).unwrap();
    let loaded = checkpoint::load(dir.path()).unwrap().unwrap();
    assert_eq!(
        (loaded.covers, loaded.covers_overturns, loaded.images),
        (42, 3, images)
    );
    let path = dir.path().join("state.image");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[3] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let error = checkpoint::load(dir.path()).err().unwrap().to_string();
    assert!(error.ends_with("state.image: not a state image"), "{error}");
}

#[test]
fn a_data_directory_is_opened_by_one_engine_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let _first = DataDir::open(dir.path(), 1 << 20).unwrap();
    let error = DataDir::open(dir.path(), 1 << 20).err().unwrap();
    assert!(
        error
            .to_string()
            .ends_with("another engine has this data directory open"),
        "{error}"
    );
}
