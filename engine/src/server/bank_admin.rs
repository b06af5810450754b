//! The control plane's hash-bank methods: wire entries checked field by
//! field, changes made on the engine's live [`BankStore`], every change
//! (made or refused) in the audit trail, and bank refusals mapped to
//! statuses in one place.

use std::sync::Arc;

use tonic::{Status, Streaming};

use crate::api::{self, v1};
use crate::banks::{BankEntry, BankError, BankKind, BankStore, BankSummary};
use crate::registry::{Caller, Registry};

/// Most entries one bank may be replaced with: ten times the largest bank
/// benchmarked, far beyond any hash list in use, and a bound on what a
/// stream can make the engine hold.
pub const MAX_REPLACE_ENTRIES: usize = 10_000_000;

/// Most entries one `AddBankEntries` or ids one `RemoveBankEntries` takes.
pub const MAX_CHANGE_ENTRIES: usize = 100_000;

/// The status for a refused bank change.
pub fn bank_status(error: &BankError) -> Status {
    let message = error.to_string();
    match error {
        BankError::UnknownBank(_) | BankError::UnknownEntry { .. } => Status::not_found(message),
        BankError::DuplicateId {
            why: "is already in the bank",
            ..
        } => Status::already_exists(message),
        BankError::DuplicateId { .. } => Status::invalid_argument(message),
        BankError::InUse { .. } => Status::failed_precondition(message),
        BankError::Invalid { .. } => Status::invalid_argument(message),
    }
}

/// A bank as the control plane shows it.
pub fn status_to_proto(summary: &BankSummary) -> v1::BankStatus {
    let (kind, allow_lists, allow_max_distance) = match &summary.kind {
        BankKind::Match { allow_lists } => (v1::BankKind::Match, allow_lists.clone(), 0),
        BankKind::Allow { max_distance } => (v1::BankKind::Allow, Vec::new(), *max_distance),
    };
    v1::BankStatus {
        bank: Some(v1::BankSettings {
            name: summary.name.clone(),
            kind: kind.into(),
            allow_lists,
            allow_max_distance,
        }),
        entries: summary.entries as u64,
        memory_bytes: summary.memory_bytes as u64,
    }
}

/// A bank's name and kind from the wire.
pub fn settings_from_proto(settings: v1::BankSettings) -> Result<(String, BankKind), Status> {
    let kind = match settings.kind() {
        v1::BankKind::Unspecified | v1::BankKind::Match => {
            if settings.allow_max_distance != 0 {
                return Err(Status::invalid_argument(
                    "bank.allow_max_distance: applies to an allow-list (BANK_KIND_ALLOW) only",
                ));
            }
            BankKind::Match {
                allow_lists: settings.allow_lists,
            }
        }
        v1::BankKind::Allow => {
            if !settings.allow_lists.is_empty() {
                return Err(Status::invalid_argument(
                    "bank.allow_lists: an allow-list has no allow-lists of its own",
                ));
            }
            BankKind::Allow {
                max_distance: settings.allow_max_distance,
            }
        }
    };
    Ok((settings.name, kind))
}

/// Wire entries checked, each error naming its field (`entries[3].hash`);
/// `first_index` numbers them across the chunks of a stream.
pub fn entries_from_proto(
    entries: Vec<v1::BankEntry>,
    first_index: usize,
    caller: &Caller,
    now_ms: i64,
) -> Result<Vec<BankEntry>, Status> {
    let default_source: Arc<str> = Arc::from(format!("control plane: {}", caller.identity));
    entries
        .into_iter()
        .enumerate()
        .map(|(offset, entry)| {
            let field = format!("entries[{}]", first_index + offset);
            let hash: [u8; 32] = entry.hash.as_slice().try_into().map_err(|_| {
                Status::invalid_argument(format!(
                    "{field}.hash: is {} bytes; a PDQ hash is 32",
                    entry.hash.len()
                ))
            })?;
            let added_at_ms = match &entry.added_at {
                None => now_ms,
                Some(t) => api::timestamp_ms(t)
                    .map_err(|e| Status::invalid_argument(format!("{field}.added_at: {e}")))?,
            };
            let id = if entry.id.is_empty() {
                hex::encode(hash)
            } else {
                entry.id
            };
            let source = if entry.source.is_empty() {
                default_source.clone()
            } else {
                Arc::from(entry.source)
            };
            Ok(BankEntry::new(id, hash).from_source(source, added_at_ms))
        })
        .collect()
}

/// Read a `ReplaceBank` stream whole: the settings from the first message
/// and every entry, checked.
pub async fn read_replacement(
    mut stream: Streaming<v1::ReplaceBankRequest>,
    caller: &Caller,
    now_ms: i64,
) -> Result<(String, BankKind, Vec<BankEntry>), Status> {
    let mut settings = None;
    let mut entries = Vec::new();
    let mut first = true;
    while let Some(chunk) = stream.message().await? {
        match (chunk.bank, first) {
            (Some(bank), true) => settings = Some(settings_from_proto(bank)?),
            (None, true) => {
                return Err(Status::invalid_argument(
                    "bank: the first message must name the bank and its kind",
                ));
            }
            (Some(_), false) => {
                return Err(Status::invalid_argument(
                    "bank: only the first message names the bank",
                ));
            }
            (None, false) => {}
        }
        first = false;
        if entries.len() + chunk.entries.len() > MAX_REPLACE_ENTRIES {
            return Err(Status::invalid_argument(format!(
                "entries: more than {MAX_REPLACE_ENTRIES}, the most one bank may hold"
            )));
        }
        let checked = entries_from_proto(chunk.entries, entries.len(), caller, now_ms)?;
        entries.extend(checked);
    }
    let (name, kind) = settings
        .ok_or_else(|| Status::invalid_argument("bank: the stream ended before naming the bank"))?;
    Ok((name, kind, entries))
}

/// Make a bank change on a blocking thread (indexing a large bank takes a
/// while), record it in the audit trail, and answer with the bank's status
/// or the refusal's.
pub async fn change<T: Send + 'static>(
    registry: &Arc<Registry>,
    caller: Caller,
    action: &'static str,
    bank: String,
    detail: String,
    work: impl FnOnce(&BankStore) -> Result<T, BankError> + Send + 'static,
) -> Result<T, Status> {
    let registry = registry.clone();
    tokio::task::spawn_blocking(move || {
        let result = work(registry.pipeline().banks());
        let refused = result.as_ref().err().map(ToString::to_string);
        registry.record_bank_change(&caller, action, &bank, detail, refused);
        result.map_err(|e| bank_status(&e))
    })
    .await
    .map_err(|e| Status::internal(format!("control-plane task failed: {e}")))?
}
