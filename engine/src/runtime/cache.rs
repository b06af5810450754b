//! An on-disk cache of compiled rules, so that a restart, or loading the
//! same build again, skips the isolation pass, componentizing and
//! compilation, which together are almost all of a rule's load time.
//!
//! An entry is the serialized component for one rule build under one set
//! of compile-relevant settings, in `<dir>/<key>.cwasm`. The key covers
//! everything that shapes the compiled code (see [`CompileCache::key`]), so
//! an entry is never reused for anything else: a changed setting or a new
//! engine version simply misses. Entries are written whole under a
//! temporary name and renamed into place, and never modified in place. A
//! bad entry is logged, removed and compiled afresh: the cache can make a
//! load faster, never make it fail.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::CONTRACT_VERSION;

/// Bumped whenever what goes into a key changes, so that old entries miss.
const KEY_TAG: &[u8] = b"enforcer-compile-cache-v1\0";

/// The extension of cache entries.
const EXTENSION: &str = "cwasm";

/// Numbers the temporary files of one process, so that concurrent writes of
/// the same entry (by threads here, or another engine sharing the
/// directory) never share a temporary file.
static TEMP_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A directory of compiled rules.
pub(crate) struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    /// A cache in `dir`, which is created when the first entry is written.
    pub(crate) fn new(dir: PathBuf) -> Self {
        CompileCache { dir }
    }

    /// The key of a rule build: a sha256, in hex, over the build's sha256,
    /// the engine's version, the contract version, whether the isolation
    /// pass runs and the memory cap it sizes its bookkeeping by (the two
    /// inputs that change the module compiled), and wasmtime's own hash of
    /// the compiler settings (target, CPU features, tunables, wasm features
    /// and its version).
    pub(crate) fn key(
        engine: &Engine,
        wasm_sha256: &str,
        isolate: bool,
        memory_cap: u64,
    ) -> String {
        let mut digest = Sha256::new();
        digest.update(KEY_TAG);
        // Every variable-length field ends with a NUL, so that no two
        // different field lists hash the same bytes.
        for text in [wasm_sha256, env!("CARGO_PKG_VERSION"), CONTRACT_VERSION] {
            digest.update(text.as_bytes());
            digest.update([0]);
        }
        digest.update([u8::from(isolate)]);
        digest.update(memory_cap.to_le_bytes());
        engine
            .precompile_compatibility_hash()
            .hash(&mut DigestHasher(&mut digest));
        hex::encode(digest.finalize())
    }

    /// Where the entry for a key lives.
    pub(crate) fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.{EXTENSION}"))
    }

    /// The compiled rule for a key, if there is a usable entry. An entry
    /// that cannot be read back is logged and removed.
    pub(crate) fn load(&self, engine: &Engine, key: &str) -> Option<Component> {
        let path = self.path(key);
        // Nothing there is a plain miss. So is a directory that cannot be
        // read: the warning for it comes when the entry cannot be written.
        if !path.is_file() {
            return None;
        }
        match deserialize(engine, &path) {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(
                    path = %path.display(),
                    error = %format!("{e:#}"),
                    "rule cache entry is corrupt or from another engine; \
                     removing it and compiling instead"
                );
                self.remove(key);
                None
            }
        }
    }

    /// Drop the entry for a key. Removing unlinks the file, so a rule
    /// already loaded from it keeps its mapping intact.
    pub(crate) fn remove(&self, key: &str) {
        let path = self.path(key);
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(
                path = %path.display(),
                error = %e,
                "could not remove a rule cache entry"
            );
        }
    }

    /// Write the entry for a key. A failure is logged and otherwise
    /// ignored: the rule is loaded either way, only the next load is slower.
    pub(crate) fn store(&self, key: &str, component: &Component) {
        if let Err(e) = self.try_store(key, component) {
            tracing::warn!(
                dir = %self.dir.display(),
                error = %e,
                "could not write a rule cache entry; \
                 the rule is loaded but will be compiled again next time"
            );
        }
    }

    /// Serialize and write an entry, reporting the first failure.
    fn try_store(&self, key: &str, component: &Component) -> std::io::Result<()> {
        let bytes = component
            .serialize()
            .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
        create_private_dir(&self.dir)?;
        let temp = self.dir.join(format!(
            ".{key}.{}-{}.tmp",
            std::process::id(),
            TEMP_SEQUENCE.fetch_add(1, Ordering::Relaxed)
        ));
        // The entry appears under its name complete or not at all: a reader
        // never maps a half-written file, and a file already mapped by a
        // loaded rule is replaced, never overwritten.
        let written = std::fs::File::create(&temp)
            .and_then(|mut file| {
                file.write_all(&bytes)?;
                file.sync_all()
            })
            .and_then(|()| std::fs::rename(&temp, self.path(key)));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written
    }
}

/// Make the cache directory, readable by its owner only where the platform
/// allows: its entries are trusted as code.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Read a compiled rule back from a cache entry.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime trusts a serialized component to hold code it
    // compiled, and maps the file rather than copying it. Both hold here:
    // the cache directory is the engine's own, every entry in it was written
    // by `CompileCache::store` from `Component::serialize`, and entries are
    // only ever renamed into place or unlinked, never modified in place, so
    // a mapped file does not change under a loaded rule. Wasmtime checks
    // the entry's header against this engine's version and settings and
    // refuses one from any other. What it cannot catch, a hostile file
    // planted in the directory, is excluded by requiring the directory to
    // be as protected as the engine's binary (see `RuntimeConfig::cache_dir`).
    unsafe { Component::deserialize_file(engine, path) }
}

/// Feeds what a `Hash` impl writes into a sha256, so that a value can be
/// part of a key without going through a 64-bit `Hasher` output.
struct DigestHasher<'a>(&'a mut Sha256);

impl Hasher for DigestHasher<'_> {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// Unused: the digest is read from the sha256 itself.
    fn finish(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::event::{Entity, Event, Value};
    use crate::runtime::{LoadedRule, Runtime, RuntimeConfig};
    use crate::state::{FixedState, StateView};

    /// A directory under the system's temporary directory that is removed
    /// when the test ends, however it ends.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            static SEQUENCE: AtomicU64 = AtomicU64::new(0);
            let dir = std::env::temp_dir().join(format!(
                "enforcer-cache-test-{name}-{}-{}",
                std::process::id(),
                SEQUENCE.fetch_add(1, Ordering::Relaxed)
            ));
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn example(name: &str) -> &'static [u8] {
        crate::examples::EXAMPLE_RULES
            .iter()
            .find(|(rule, _)| *rule == name)
            .map(|(_, wasm)| *wasm)
            .unwrap()
    }

    fn cached_runtime(dir: &TempDir) -> Runtime {
        Runtime::with_config(RuntimeConfig {
            cache_dir: Some(dir.0.clone()),
            ..RuntimeConfig::default()
        })
        .unwrap()
    }

    fn entries(dir: &TempDir) -> Vec<PathBuf> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir.0)
            .map(|read| read.map(|entry| entry.unwrap().path()).collect())
            .unwrap_or_default();
        entries.sort();
        entries
    }

    fn key_of(runtime: &Runtime, wasm: &[u8]) -> String {
        let sha256 = hex::encode(Sha256::digest(wasm));
        let memory_cap = runtime.config().limits.max_memory_bytes;
        CompileCache::key(&runtime.inner.engine, &sha256, true, memory_cap)
    }

    /// A forward to enough chats, by an account that has forwarded a lot,
    /// to draw a verdict with reasons rather than a plain pass.
    fn judge(rule: &LoadedRule) -> crate::verdict::Verdict {
        let actor = Entity::account("acct-193844");
        let event = Arc::new(
            Event::new(
                "evt-1",
                "message.forwarded",
                1_764_000_000_000,
                actor.clone(),
            )
            .with_target(Entity::group("grp-5521"))
            .with("chat_count", Value::Int(40)),
        );
        let state: Arc<dyn StateView> =
            Arc::new(FixedState::new().with_counter(actor, "forwards", 400));
        let verdict = rule.evaluate(&event, &state).result.unwrap();
        assert_eq!(verdict.reasons[0].code, "mass-forward");
        verdict
    }

    #[test]
    fn a_second_runtime_loads_from_the_cache_and_judges_the_same() {
        let dir = TempDir::new("hit");
        let wasm = example("mass-forwarding");

        let first = cached_runtime(&dir);
        let compiled = first.load(wasm).unwrap();
        assert!(!compiled.compiled_from_cache());
        let entry = first_entry(&first, &dir, wasm);
        assert_eq!(entries(&dir), vec![entry]);

        let second = cached_runtime(&dir);
        let cached = second.load(wasm).unwrap();
        assert!(cached.compiled_from_cache());
        assert_eq!(cached.manifest(), compiled.manifest());
        assert_eq!(cached.sha256(), compiled.sha256());
        assert_eq!(cached.wasm_bytes(), compiled.wasm_bytes());
        assert_eq!(judge(&cached), judge(&compiled));

        // The same build loaded again by the same runtime is a hit too.
        assert!(first.load(wasm).unwrap().compiled_from_cache());
    }

    fn first_entry(runtime: &Runtime, dir: &TempDir, wasm: &[u8]) -> PathBuf {
        dir.0.join(format!("{}.cwasm", key_of(runtime, wasm)))
    }

    #[test]
    fn a_runtime_without_a_cache_dir_compiles_every_time() {
        let runtime = Runtime::new().unwrap();
        assert_eq!(runtime.config().cache_dir, None);
        let wasm = example("mass-forwarding");
        assert!(!runtime.load(wasm).unwrap().compiled_from_cache());
        assert!(!runtime.load(wasm).unwrap().compiled_from_cache());
    }

    #[test]
    fn a_corrupt_entry_is_replaced_and_the_rule_still_loads() {
        let dir = TempDir::new("corrupt");
        let wasm = example("mass-forwarding");
        let runtime = cached_runtime(&dir);
        let expected = judge(&runtime.load(wasm).unwrap());
        let entry = first_entry(&runtime, &dir, wasm);
        let good_len = std::fs::metadata(&entry).unwrap().len();

        // No rule loaded from the entry is alive (the one above was
        // compiled), so changing the file in place is safe here.
        let garbage: &[&[u8]] = &[
            b"not a compiled rule at all",
            b"",
            &std::fs::read(&entry).unwrap()[..64],
        ];
        for bytes in garbage {
            std::fs::write(&entry, bytes).unwrap();
            let fresh = cached_runtime(&dir);
            let rule = fresh.load(wasm).unwrap();
            assert!(!rule.compiled_from_cache());
            assert_eq!(judge(&rule), expected);
            // The bad entry was replaced with a good one, which the next
            // load uses.
            assert_eq!(std::fs::metadata(&entry).unwrap().len(), good_len);
            drop(rule);
            assert!(fresh.load(wasm).unwrap().compiled_from_cache());
        }
        assert_eq!(entries(&dir), vec![entry]);
    }

    #[test]
    fn an_unwritable_cache_dir_does_not_stop_a_load() {
        let dir = TempDir::new("unwritable");
        // A file where the directory should be: nothing can be written
        // under it.
        std::fs::write(&dir.0, b"in the way").unwrap();
        let runtime = cached_runtime(&dir);
        let wasm = example("mass-forwarding");
        assert!(!runtime.load(wasm).unwrap().compiled_from_cache());
        assert!(!runtime.load(wasm).unwrap().compiled_from_cache());
        std::fs::remove_file(&dir.0).unwrap();
    }

    #[test]
    fn every_compile_input_changes_the_key() {
        let runtime = Runtime::new().unwrap();
        let engine = &runtime.inner.engine;
        let sha = hex::encode(Sha256::digest(b"a build"));
        let other_sha = hex::encode(Sha256::digest(b"another build"));
        let base = CompileCache::key(engine, &sha, true, 16 << 20);
        assert_eq!(base.len(), 64);
        assert_eq!(base, CompileCache::key(engine, &sha, true, 16 << 20));
        assert_ne!(base, CompileCache::key(engine, &sha, true, 8 << 20));
        assert_ne!(base, CompileCache::key(engine, &sha, false, 16 << 20));
        assert_ne!(base, CompileCache::key(engine, &other_sha, true, 16 << 20));

        // Compiled code depends on how calls are metered, and so does the key.
        let unmetered = Runtime::with_config(RuntimeConfig {
            metering: crate::runtime::Metering::Unmetered,
            ..RuntimeConfig::default()
        })
        .unwrap();
        assert_ne!(
            base,
            CompileCache::key(&unmetered.inner.engine, &sha, true, 16 << 20)
        );
        // So does the register allocator.
        let fast_compile = Runtime::with_config(RuntimeConfig {
            fast_compile: true,
            ..RuntimeConfig::default()
        })
        .unwrap();
        assert_ne!(
            base,
            CompileCache::key(&fast_compile.inner.engine, &sha, true, 16 << 20)
        );
    }

    #[test]
    fn a_smaller_memory_cap_is_a_separate_entry() {
        let dir = TempDir::new("cap");
        let wasm = example("mass-forwarding");
        let runtime = cached_runtime(&dir);
        runtime.load(wasm).unwrap();
        let limits = crate::runtime::Limits {
            max_memory_bytes: runtime.config().limits.max_memory_bytes / 2,
            ..runtime.config().limits.clone()
        };
        let smaller = runtime.load_with_limits(wasm, limits.clone()).unwrap();
        assert!(!smaller.compiled_from_cache());
        assert_eq!(entries(&dir).len(), 2);
        assert!(
            runtime
                .load_with_limits(wasm, limits)
                .unwrap()
                .compiled_from_cache()
        );
    }
}
