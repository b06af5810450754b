//! The registry's state directory: what the control plane has done
//! survives a restart. Every admitted build is kept by its sha256 (the
//! wasm, its signature and its fixtures, written once), beside one
//! `registry.json` naming each rule's builds and where each stands, and the
//! policy in force; the audit trail is appended to `audit.jsonl`.
//!
//! `registry.json` is replaced whole (written to a temporary file, synced,
//! renamed), after the builds it names are on disk, so a crash leaves
//! either the old state or the new one, never a state naming a build that
//! is not there. On start the builds are admitted again, signature and
//! fixtures included, so a state directory can only hold what the engine
//! would admit now; with a compile cache this costs no compiling.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::admission::RuleSource;
use super::audit::AuditEntry;
use super::book::Standings;

/// The format of `registry.json`; a file of another format is refused.
pub(super) const FORMAT: u32 = 1;

/// What `registry.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedState {
    /// Always [`FORMAT`].
    pub format: u32,
    /// The policy in force, as given.
    pub policy: String,
    /// Every rule, by name.
    pub rules: Vec<SavedRule>,
}

/// One rule in `registry.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedRule {
    /// Its name.
    pub name: String,
    /// Its builds, oldest first.
    pub versions: Vec<SavedVersion>,
    /// Which build is active, which is the candidate, and the rollback
    /// history, by sha256.
    pub standings: Standings,
}

/// One build in `registry.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedVersion {
    /// Its sha256: its files in `builds/` are named by it.
    pub sha256: String,
    /// Where it first came from.
    pub origin: String,
    /// When it was first admitted (Unix milliseconds).
    pub admitted_at_ms: i64,
}

/// Why the state directory could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("state directory {path}: {message}")]
pub struct StoreError {
    /// The file or directory concerned.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

impl StoreError {
    fn at(path: &Path, message: impl std::fmt::Display) -> Self {
        StoreError {
            path: path.display().to_string(),
            message: message.to_string(),
        }
    }
}

/// A state directory.
#[derive(Clone, Debug)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Use `dir`, creating it (and `builds/` in it) if needed.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir.join("builds")).map_err(|e| StoreError::at(dir, e))?;
        Ok(StateDir {
            dir: dir.to_path_buf(),
        })
    }

    fn build_path(&self, sha256: &str, suffix: &str) -> PathBuf {
        self.dir.join("builds").join(format!("{sha256}{suffix}"))
    }

    /// Keep a build's files, unless they are kept already (they are named
    /// by content, so an existing file is the same bytes).
    pub fn put_build(&self, sha256: &str, source: &RuleSource) -> Result<(), StoreError> {
        let parts = [
            (".wasm", Some(&source.wasm)),
            (".wasm.sig", source.signature.as_ref()),
            (".fixtures.json", source.fixtures.as_ref()),
        ];
        for (suffix, bytes) in parts {
            let path = self.build_path(sha256, suffix);
            match bytes {
                Some(bytes) if !path.exists() => write_atomically(&path, bytes)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// A kept build's files.
    pub fn build(&self, sha256: &str, origin: &str) -> Result<RuleSource, StoreError> {
        let wasm_path = self.build_path(sha256, ".wasm");
        let wasm = std::fs::read(&wasm_path).map_err(|e| StoreError::at(&wasm_path, e))?;
        let optional = |suffix| std::fs::read(self.build_path(sha256, suffix)).ok();
        Ok(RuleSource {
            wasm,
            signature: optional(".wasm.sig"),
            fixtures: optional(".fixtures.json"),
            origin: origin.to_string(),
        })
    }

    /// The saved state, if any has been saved.
    pub fn load(&self) -> Result<Option<SavedState>, StoreError> {
        let path = self.dir.join("registry.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::at(&path, e)),
        };
        let state: SavedState =
            serde_json::from_str(&text).map_err(|e| StoreError::at(&path, e))?;
        if state.format != FORMAT {
            return Err(StoreError::at(
                &path,
                format!(
                    "format {} is not {FORMAT}, the one this engine reads",
                    state.format
                ),
            ));
        }
        Ok(Some(state))
    }

    /// Replace the saved state, then forget the builds it no longer names.
    pub fn save(&self, state: &SavedState) -> Result<(), StoreError> {
        let path = self.dir.join("registry.json");
        let text = serde_json::to_vec_pretty(state).map_err(|e| StoreError::at(&path, e))?;
        write_atomically(&path, &text)?;
        let named: HashSet<&str> = state
            .rules
            .iter()
            .flat_map(|rule| rule.versions.iter().map(|v| v.sha256.as_str()))
            .collect();
        // Builds of refused or forgotten changes: a failure to remove one
        // only leaves a file behind.
        if let Ok(entries) = std::fs::read_dir(self.dir.join("builds")) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                let sha = name.split('.').next().unwrap_or_default();
                if !named.contains(sha) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(())
    }

    /// Append one audit entry to `audit.jsonl`.
    pub fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let path = self.dir.join("audit.jsonl");
        let mut line = serde_json::to_vec(entry).map_err(|e| StoreError::at(&path, e))?;
        line.push(b'\n');
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(&line))
            .map_err(|e| StoreError::at(&path, e))
    }

    /// The last `limit` audit entries, oldest first. A line that does not
    /// parse (the tail of a write cut short by a crash) is skipped.
    pub fn audit_tail(&self, limit: usize) -> Vec<AuditEntry> {
        let Ok(text) = std::fs::read_to_string(self.dir.join("audit.jsonl")) else {
            return Vec::new();
        };
        let entries: Vec<AuditEntry> = text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        let skip = entries.len().saturating_sub(limit);
        entries.into_iter().skip(skip).collect()
    }
}

/// Write `bytes` to `path` whole or not at all: a temporary file beside it,
/// synced, then renamed over it.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    let written = std::fs::File::create(&temporary)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, path));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        StoreError::at(path, e)
    })
}
