//! File-based deployment: a watched plugin directory. Every `*.wasm` file
//! in it is a rule; its signature is `<file>.sig` and its fixtures are
//! `<stem>.fixtures.json` beside it. A new or changed file is admitted and
//! made active, as an upload would be; a removed file retires its rule.
//!
//! The directory is polled (its files read and hashed) rather than watched
//! through OS notifications: it holds a handful of small files, polling
//! needs nothing from the platform, and it sees a file only once its bytes
//! settle (a half-copied file fails admission, and is tried again as soon
//! as its contents change). What was tried is remembered by content, so a
//! refused file is reported once, not on every poll.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::admission::{Provenance, RuleSource};
use super::audit::Caller;
use super::{Activation, Registry};
use crate::runtime::build_sha256;

/// What the watcher knows of one file.
#[derive(Clone, Debug)]
struct Seen {
    /// A digest of the rule, its signature and its fixtures together.
    content: [u8; 32],
    /// The rule it deployed, if it was admitted.
    rule: Option<String>,
}

/// One rule file's contents and what ships beside it.
pub struct DirEntry {
    /// The `.wasm` file.
    pub path: PathBuf,
    /// The build with its signature and fixtures.
    pub source: RuleSource,
}

/// Read every rule in `dir`, in name order, with its signature and
/// fixtures.
pub fn read_dir(dir: &Path) -> std::io::Result<Vec<DirEntry>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
        .collect();
    paths.sort();
    let mut entries = Vec::new();
    for path in paths {
        let wasm = match std::fs::read(&path) {
            Ok(wasm) => wasm,
            // Removed between listing and reading: it is gone.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        let beside = |name: String| std::fs::read(path.with_file_name(name)).ok();
        let file_name = path.file_name().unwrap_or_default().to_string_lossy();
        let source = RuleSource {
            signature: beside(format!("{file_name}.sig")),
            fixtures: std::fs::read(crate::fixtures::fixtures_path(&path)).ok(),
            origin: format!("plugin_dir {}", path.display()),
            wasm,
        };
        entries.push(DirEntry { path, source });
    }
    Ok(entries)
}

fn content_digest(source: &RuleSource) -> [u8; 32] {
    let mut digest = Sha256::new();
    for part in [
        Some(&source.wasm),
        source.signature.as_ref(),
        source.fixtures.as_ref(),
    ] {
        // Length-prefixed, so that bytes cannot move between parts unseen.
        let bytes = part.map_or(&[][..], Vec::as_slice);
        digest.update((bytes.len() as u64 + u64::from(part.is_some())).to_le_bytes());
        digest.update(bytes);
    }
    digest.finalize().into()
}

/// A running watcher; dropping it stops the polling.
pub struct DirWatcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DirWatcher {
    /// Watch `dir`, whose current rules the registry started with (so they
    /// are not deployed again), polling every `interval`.
    pub fn start(registry: Arc<Registry>, dir: PathBuf, interval: Duration) -> Self {
        let mut watcher = Watcher {
            registry,
            dir,
            seen: HashMap::new(),
        };
        watcher.adopt_current();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("enforcer-plugin-dir".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(interval);
                    if !flag.load(Ordering::Relaxed) {
                        watcher.poll();
                    }
                }
            })
            .expect("spawn the plugin directory watcher");
        DirWatcher {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for DirWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Watcher {
    registry: Arc<Registry>,
    dir: PathBuf,
    seen: HashMap<PathBuf, Seen>,
}

impl Watcher {
    /// Take the builds in the directory that the registry already knows
    /// as deployed. A file it does not know (one added while the engine
    /// was down, over a restored state directory) is left for the first
    /// poll to deploy.
    fn adopt_current(&mut self) {
        let Ok(entries) = read_dir(&self.dir) else {
            return;
        };
        let running: Vec<(String, Vec<String>)> = self
            .registry
            .list()
            .into_iter()
            .map(|rule| {
                let shas = rule.versions.into_iter().map(|v| v.sha256).collect();
                (rule.name, shas)
            })
            .collect();
        for entry in entries {
            let sha256 = build_sha256(&entry.source.wasm);
            let Some(rule) = running
                .iter()
                .find(|(_, shas)| shas.contains(&sha256))
                .map(|(name, _)| name.clone())
            else {
                continue;
            };
            self.seen.insert(
                entry.path,
                Seen {
                    content: content_digest(&entry.source),
                    rule: Some(rule),
                },
            );
        }
    }

    /// One pass: deploy what is new or changed, retire what is gone.
    fn poll(&mut self) {
        let entries = match read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) => {
                tracing::warn!(dir = %self.dir.display(), %error, "cannot read the plugin directory");
                return;
            }
        };
        let caller = Caller::internal("plugin-dir");
        let mut present = Vec::with_capacity(entries.len());
        for DirEntry { path, source } in entries {
            present.push(path.clone());
            let content = content_digest(&source);
            if self.seen.get(&path).is_some_and(|s| s.content == content) {
                continue;
            }
            let previous_rule = self.seen.get(&path).and_then(|s| s.rule.clone());
            let rule = match self.registry.upload(&caller, source, Activation::Activate) {
                Ok(status) => {
                    tracing::info!(file = %path.display(), rule = %status.name, "deployed from the plugin directory");
                    Some(status.name)
                }
                Err(error) => {
                    tracing::warn!(file = %path.display(), %error, "refused a rule from the plugin directory");
                    previous_rule
                }
            };
            self.seen.insert(path, Seen { content, rule });
        }
        let gone: Vec<PathBuf> = self
            .seen
            .keys()
            .filter(|path| !present.contains(path))
            .cloned()
            .collect();
        for path in gone {
            let Some(seen) = self.seen.remove(&path) else {
                continue;
            };
            let Some(rule) = seen.rule else { continue };
            // Another file may deploy the same rule now (a renamed file).
            if self.seen.values().any(|s| s.rule.as_deref() == Some(&rule)) {
                continue;
            }
            match self.registry.retire(&caller, &rule) {
                Ok(()) => {
                    tracing::info!(file = %path.display(), %rule, "retired: its file was removed")
                }
                Err(error) => {
                    tracing::warn!(file = %path.display(), %rule, %error, "could not retire a removed rule")
                }
            }
        }
    }
}

/// The sources of a directory's rules, for starting the registry with.
pub fn sources(dir: &Path) -> std::io::Result<Vec<(RuleSource, Provenance)>> {
    Ok(read_dir(dir)?
        .into_iter()
        .map(|entry| (entry.source, Provenance::External))
        .collect())
}
