//! The decision store: every logged decision in an embedded redb database,
//! by sequence and by id, written in one transaction per group commit and
//! durable when the transaction returns.
//!
//! A value is a small header (the event time, for pruning by age without
//! decoding, and the decision id, for unindexing) and the decision with
//! the stamps its counting took, as JSON: the decision's own serde form,
//! self-describing, so a store written by an older engine still reads.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use super::DurableError;
use crate::decision::Decision;
use crate::decision_log::{Backing, BackingError, Entry, Gap, Logged, ReadError};
use crate::overturn::{Overturn, OverturnBacking};
use crate::pipeline::CountStamps;

/// Decisions by sequence.
const DECISIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("decisions");
/// Sequences by decision id.
const DECISION_IDS: TableDefinition<&str, u64> = TableDefinition::new("decision_ids");
/// Overturns by sequence, as JSON. Rare and small: all are kept.
const OVERTURNS: TableDefinition<u64, &[u8]> = TableDefinition::new("overturns");

/// Most decisions removed by one pruning transaction: commits wait while
/// it runs, so it stays short.
const PRUNE_BATCH: usize = 10_000;

/// How long the store keeps decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// At most this many decisions.
    pub max_decisions: u64,
    /// None about events older than this before the newest one's event
    /// time (milliseconds); `None`: no age limit.
    pub max_age_ms: Option<i64>,
}

/// One stored decision, as written.
#[derive(Serialize)]
struct StoredRef<'a> {
    decision: &'a Decision,
    #[serde(skip_serializing_if = "is_default")]
    stamps: CountStamps,
}

/// One stored decision, as read.
#[derive(Deserialize)]
struct Stored {
    decision: Arc<Decision>,
    #[serde(default)]
    stamps: CountStamps,
}

fn is_default(stamps: &CountStamps) -> bool {
    *stamps == CountStamps::default()
}

/// A decision read back with the stamps its counting took.
pub struct StoredDecision {
    /// Its sequence.
    pub sequence: u64,
    /// The decision.
    pub decision: Arc<Decision>,
    /// The stamps.
    pub stamps: CountStamps,
}

/// The decisions of one data directory.
pub struct DecisionStore {
    db: Database,
}

impl DecisionStore {
    /// Open (or create) the store at `path`, caching at most
    /// `cache_bytes` of its pages in memory.
    pub fn open(path: &Path, cache_bytes: usize) -> Result<Self, DurableError> {
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => DurableError::InUse(path.to_path_buf()),
                other => DurableError::Store(format!("{}: {other}", path.display())),
            })?;
        // Create the tables, so that readers never find them missing.
        let txn = db.begin_write().map_err(store_error)?;
        txn.open_table(DECISIONS).map_err(store_error)?;
        txn.open_table(DECISION_IDS).map_err(store_error)?;
        txn.open_table(OVERTURNS).map_err(store_error)?;
        txn.commit().map_err(store_error)?;
        Ok(DecisionStore { db })
    }

    /// The first and last sequences kept (`None` when empty).
    pub fn bounds(&self) -> Result<Option<(u64, u64)>, DurableError> {
        let txn = self.db.begin_read().map_err(store_error)?;
        let table = txn.open_table(DECISIONS).map_err(store_error)?;
        let first = table.first().map_err(store_error)?.map(|(k, _)| k.value());
        let last = table.last().map_err(store_error)?.map(|(k, _)| k.value());
        Ok(first.zip(last))
    }

    /// How many decisions are kept.
    pub fn len(&self) -> Result<u64, DurableError> {
        let txn = self.db.begin_read().map_err(store_error)?;
        let table = txn.open_table(DECISIONS).map_err(store_error)?;
        table.len().map_err(store_error)
    }

    /// Whether none is.
    pub fn is_empty(&self) -> Result<bool, DurableError> {
        Ok(self.len()? == 0)
    }

    /// Up to `limit` decisions after sequence `after`, in order.
    pub fn after(&self, after: u64, limit: usize) -> Result<Vec<StoredDecision>, DurableError> {
        Ok(self.read(after, limit)?.1)
    }

    /// The first sequence kept, and up to `limit` decisions after `after`,
    /// read in one transaction: a prune between the two cannot hide a gap.
    fn read(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<(Option<u64>, Vec<StoredDecision>), DurableError> {
        let txn = self.db.begin_read().map_err(store_error)?;
        let table = txn.open_table(DECISIONS).map_err(store_error)?;
        let first = table.first().map_err(store_error)?.map(|(k, _)| k.value());
        let mut found = Vec::new();
        for row in table
            .range(after.saturating_add(1)..)
            .map_err(store_error)?
            .take(limit)
        {
            let (sequence, value) = row.map_err(store_error)?;
            found.push(decode(sequence.value(), value.value())?);
        }
        Ok((first, found))
    }

    /// Every overturn kept, in order.
    pub fn overturns(&self) -> Result<Vec<Overturn>, DurableError> {
        let txn = self.db.begin_read().map_err(store_error)?;
        let table = txn.open_table(OVERTURNS).map_err(store_error)?;
        let mut found = Vec::new();
        for row in table.iter().map_err(store_error)? {
            let (sequence, value) = row.map_err(store_error)?;
            let overturn: Overturn = serde_json::from_slice(value.value()).map_err(|e| {
                DurableError::Corrupt(format!("overturn {}: {e}", sequence.value()))
            })?;
            found.push(overturn);
        }
        Ok(found)
    }

    /// Drop the oldest decisions beyond `retention`, but none after
    /// `keep_after` (what a recovery still needs). Returns how many went.
    pub fn prune(&self, retention: Retention, keep_after: u64) -> Result<u64, DurableError> {
        let mut removed = 0;
        loop {
            let txn = self.db.begin_write().map_err(store_error)?;
            let batch = {
                let mut table = txn.open_table(DECISIONS).map_err(store_error)?;
                let mut ids = txn.open_table(DECISION_IDS).map_err(store_error)?;
                let count = table.len().map_err(store_error)?;
                let newest_at = match table.last().map_err(store_error)? {
                    Some((_, value)) => header(value.value())?.0,
                    None => return Ok(removed),
                };
                let over = count.saturating_sub(retention.max_decisions);
                let mut doomed = Vec::new();
                for row in table.range(..=keep_after).map_err(store_error)? {
                    let (sequence, value) = row.map_err(store_error)?;
                    let (at_ms, id) = header(value.value())?;
                    let too_old = retention
                        .max_age_ms
                        .is_some_and(|age| at_ms < newest_at.saturating_sub(age));
                    if (doomed.len() as u64) >= over && !too_old || doomed.len() >= PRUNE_BATCH {
                        break;
                    }
                    doomed.push((sequence.value(), id.to_string()));
                }
                for (sequence, id) in &doomed {
                    table.remove(sequence).map_err(store_error)?;
                    ids.remove(id.as_str()).map_err(store_error)?;
                }
                doomed.len()
            };
            txn.commit().map_err(store_error)?;
            removed += batch as u64;
            if batch < PRUNE_BATCH {
                return Ok(removed);
            }
        }
    }
}

impl Backing for DecisionStore {
    fn write(&self, first_sequence: u64, entries: &[Entry]) -> Result<(), BackingError> {
        let txn = self.db.begin_write().map_err(backing_error)?;
        {
            let mut table = txn.open_table(DECISIONS).map_err(backing_error)?;
            let mut ids = txn.open_table(DECISION_IDS).map_err(backing_error)?;
            let mut value = Vec::new();
            for ((decision, stamps), sequence) in entries.iter().zip(first_sequence..) {
                encode(decision, *stamps, &mut value).map_err(backing_error)?;
                table
                    .insert(sequence, value.as_slice())
                    .map_err(backing_error)?;
                ids.insert(decision.id.as_str(), sequence)
                    .map_err(backing_error)?;
            }
        }
        txn.commit().map_err(backing_error)
    }

    fn get(&self, id: &str) -> Result<Option<Logged>, BackingError> {
        let txn = self.db.begin_read().map_err(backing_error)?;
        let ids = txn.open_table(DECISION_IDS).map_err(backing_error)?;
        let Some(sequence) = ids.get(id).map_err(backing_error)?.map(|s| s.value()) else {
            return Ok(None);
        };
        let table = txn.open_table(DECISIONS).map_err(backing_error)?;
        let Some(value) = table.get(sequence).map_err(backing_error)? else {
            return Ok(None);
        };
        let stored = decode(sequence, value.value()).map_err(backing_error)?;
        Ok(Some(Logged {
            sequence,
            decision: stored.decision,
        }))
    }

    fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Logged>, ReadError> {
        let (first, found) = self.read(after, limit).map_err(backing_error)?;
        if let Some(first) = first {
            Gap::start_after(after, first)?;
        }
        Ok(found
            .into_iter()
            .map(|s| Logged {
                sequence: s.sequence,
                decision: s.decision,
            })
            .collect())
    }
}

impl OverturnBacking for DecisionStore {
    fn write_overturns(&self, overturns: &[Arc<Overturn>]) -> Result<(), BackingError> {
        let txn = self.db.begin_write().map_err(backing_error)?;
        {
            let mut table = txn.open_table(OVERTURNS).map_err(backing_error)?;
            for overturn in overturns {
                let value = serde_json::to_vec(&**overturn).map_err(backing_error)?;
                table
                    .insert(overturn.sequence, value.as_slice())
                    .map_err(backing_error)?;
            }
        }
        txn.commit().map_err(backing_error)
    }
}

/// Header (event time, id length, id) then the JSON body.
fn encode(decision: &Decision, stamps: CountStamps, out: &mut Vec<u8>) -> Result<(), DurableError> {
    out.clear();
    out.extend_from_slice(&decision.event.occurred_at_ms.to_be_bytes());
    let id = decision.id.as_bytes();
    let id_len = u16::try_from(id.len())
        .map_err(|_| DurableError::Corrupt(format!("decision id of {} bytes", id.len())))?;
    out.extend_from_slice(&id_len.to_be_bytes());
    out.extend_from_slice(id);
    serde_json::to_writer(&mut *out, &StoredRef { decision, stamps })
        .map_err(|e| DurableError::Corrupt(format!("encoding decision {}: {e}", decision.id)))
}

/// The event time and id from a value's header.
fn header(value: &[u8]) -> Result<(i64, &str), DurableError> {
    let corrupt = || DurableError::Corrupt("a stored decision's header is cut short".into());
    let at_ms = i64::from_be_bytes(
        value
            .get(..8)
            .ok_or_else(corrupt)?
            .try_into()
            .expect("8 bytes"),
    );
    let id_len = u16::from_be_bytes(
        value
            .get(8..10)
            .ok_or_else(corrupt)?
            .try_into()
            .expect("2 bytes"),
    );
    let id = value
        .get(10..10 + usize::from(id_len))
        .ok_or_else(corrupt)?;
    let id = std::str::from_utf8(id)
        .map_err(|_| DurableError::Corrupt("a stored decision id is not UTF-8".into()))?;
    Ok((at_ms, id))
}

fn decode(sequence: u64, value: &[u8]) -> Result<StoredDecision, DurableError> {
    let (_, id) = header(value)?;
    let body = &value[10 + id.len()..];
    let stored: Stored = serde_json::from_slice(body)
        .map_err(|e| DurableError::Corrupt(format!("decision at sequence {sequence}: {e}")))?;
    Ok(StoredDecision {
        sequence,
        decision: stored.decision,
        stamps: stored.stamps,
    })
}

fn store_error(error: impl Into<redb::Error>) -> DurableError {
    DurableError::Store(error.into().to_string())
}

fn backing_error(error: impl std::fmt::Display) -> BackingError {
    BackingError(error.to_string())
}
