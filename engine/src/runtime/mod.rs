//! The sandboxed wasm runtime: one wasmtime engine for all rules, the loader
//! that turns a rule's bytes into a [`LoadedRule`], and the budgets every
//! call runs under.
//!
//! Loading goes: check the bytes are a core module that imports nothing but
//! the contract, run the [isolation pass](isolation), wrap the result into a
//! component of the engine's private `isolated-rule` world, compile it, make
//! one instance and read its manifest (which also takes the instance's reset
//! snapshot). Every step can refuse the rule with a [`LoadError`] that says
//! what was wrong; none of them can hurt the rules already loaded.
//!
//! With a [cache directory](RuntimeConfig::cache_dir), the compiled rule is
//! also written to disk, and a later load of the same build (in this process
//! or after a restart) reads it back instead of running the isolation pass,
//! componentizing and compiling again.

mod cache;
mod contract;
mod convert;
mod host;
pub mod isolation;
mod limits;
mod rule;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, RegallocAlgorithm,
};

pub use contract::{CONTRACT_VERSION, RULE_WIT};

/// The contract's types and the checked conversions of what a rule returns
/// (its manifest, its verdicts), public so that the boundary can be tested
/// from outside the engine with values no well-behaved rule would send.
#[doc(hidden)]
pub mod boundary {
    pub use super::contract::bindings::enforcer::rule::types;
    pub use super::convert::{manifest_from_wit, verdict_from_wit};
}
pub use isolation::IsolationError;
pub use limits::Limits;
pub use rule::LoadedRule;

use cache::CompileCache;
use contract::ContractInfo;
use contract::bindings::{IsolatedRule, IsolatedRulePre};
use host::HostState;

/// How rule calls are metered. Anything but the default weakens the
/// sandbox; the others exist to measure what each guard costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metering {
    /// Fuel for instructions and an epoch deadline for wall-clock time.
    FuelAndEpoch,
    /// Fuel only: a rule stuck in a slow host call is not interrupted.
    FuelOnly,
    /// Epoch deadline only: cheaper, but coarse (millisecond ticks).
    EpochOnly,
    /// Neither: a looping rule hangs its thread. Benchmarks only.
    Unmetered,
}

impl Metering {
    fn fuel(self) -> bool {
        matches!(self, Metering::FuelAndEpoch | Metering::FuelOnly)
    }

    fn epoch(self) -> bool {
        matches!(self, Metering::FuelAndEpoch | Metering::EpochOnly)
    }
}

/// How the runtime is set up. The defaults are the production settings.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Budgets for each rule call, unless a rule is loaded with its own.
    pub limits: Limits,
    /// Which guards meter a call.
    pub metering: Metering,
    /// Reuse warm instances (reset after each call by the isolation pass).
    /// Off, every call gets a fresh instance: the same isolation at several
    /// times the cost, kept for comparison and as a fallback.
    pub reuse_instances: bool,
    /// Run the isolation pass on every rule, so that warm instances are
    /// reset after each call. Off, a warm instance keeps whatever earlier
    /// calls left in it: that breaks determinism and exists only to measure
    /// what isolation costs.
    pub isolate: bool,
    /// Most rule instances alive at once, across all rules. Each takes a
    /// slot in the pooling allocator, so this bounds the engine's memory.
    pub max_instances: u32,
    /// How often the epoch advances. The deadline is checked at this
    /// granularity.
    pub epoch_tick: Duration,
    /// A directory for compiled rules, so that loading a build this engine
    /// has compiled before (in this process or an earlier one) skips the
    /// isolation pass and compilation. `None`, the default, compiles every
    /// load. The directory is created when first written.
    ///
    /// The engine runs what it finds there as native code, trusting that it
    /// wrote it: wasmtime only checks that an entry was made by the same
    /// engine version with the same settings. The directory must therefore
    /// be as protected as the engine's binary, writable by the engine's user
    /// alone. An entry that cannot be read back is removed and the rule
    /// compiled; a failure to write one is logged and ignored.
    pub cache_dir: Option<PathBuf>,
    /// Compile with the single-pass register allocator instead of the
    /// backtracking one: a new build compiles about a third faster (what it
    /// waits before it decides), but its calls run 13 to 22% slower
    /// (BENCHMARKS.md, "Rule lifecycle"). Off by default: activations are
    /// rare and calls are not.
    pub fast_compile: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            limits: Limits::default(),
            metering: Metering::FuelAndEpoch,
            reuse_instances: true,
            isolate: true,
            max_instances: 256,
            epoch_tick: Duration::from_millis(1),
            cache_dir: None,
            fast_compile: false,
        }
    }
}

/// Why a rule could not be loaded. The running rule set is never affected.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly module: {0}")]
    NotWasm(String),
    /// The module breaks the contract or uses what the sandbox cannot allow.
    #[error("rule refused: {0}")]
    Refused(#[from] IsolationError),
    /// The module does not match the contract's types.
    #[error("rule does not match contract {CONTRACT_VERSION}: {0}")]
    Contract(String),
    /// Compilation or instantiation failed.
    #[error("rule could not be instantiated: {0}")]
    Instantiate(String),
    /// The manifest call failed or returned something unusable.
    #[error("rule manifest rejected: {0}")]
    Manifest(String),
    /// The limits asked for exceed what the runtime was configured with.
    #[error("invalid limits: {0}")]
    Limits(String),
}

/// The engine-wide wasm runtime. Cheap to clone; rules loaded from it share
/// its compiled-code settings, instance pool and epoch clock.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

pub(crate) struct RuntimeInner {
    engine: Engine,
    linker: Linker<HostState>,
    config: RuntimeConfig,
    cache: Option<CompileCache>,
    _ticker: Option<EpochTicker>,
}

impl Runtime {
    /// A runtime with the production defaults.
    pub fn new() -> anyhow::Result<Self> {
        Self::with_config(RuntimeConfig::default())
    }

    /// A runtime with these settings.
    pub fn with_config(config: RuntimeConfig) -> anyhow::Result<Self> {
        let limits = &config.limits;
        let mut pool = PoolingAllocationConfig::default();
        // A rule instance is one component holding up to three core
        // instances (the rule and the adapter shims the component needs),
        // two memories (the rule's and the isolation snapshot) and two
        // tables.
        pool.total_component_instances(config.max_instances)
            .total_core_instances(config.max_instances * 4)
            .total_memories(config.max_instances * 2)
            .total_tables(config.max_instances * 4)
            .max_memories_per_module(2)
            .max_memory_size(isolation::shadow_memory_bytes(limits.max_memory_bytes) as usize);

        let mut wasm = Config::new();
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .wasm_component_model(true)
            .wasm_multi_memory(true)
            .consume_fuel(config.metering.fuel())
            .epoch_interruption(config.metering.epoch())
            .max_wasm_stack(limits.max_stack_bytes)
            .cranelift_regalloc_algorithm(if config.fast_compile {
                RegallocAlgorithm::SinglePass
            } else {
                RegallocAlgorithm::Backtracking
            });
        let engine = Engine::new(&wasm).map_err(|e| anyhow::anyhow!("{e}"))?;

        let mut linker = Linker::new(&engine);
        IsolatedRule::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .map_err(|e| anyhow::anyhow!("{e}"))?;

        let ticker = config
            .metering
            .epoch()
            .then(|| EpochTicker::start(engine.clone(), config.epoch_tick));
        let cache = config.cache_dir.clone().map(CompileCache::new);
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                config,
                cache,
                _ticker: ticker,
            }),
        })
    }

    /// The settings this runtime was made with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Load a rule with the runtime's default limits.
    pub fn load(&self, wasm: &[u8]) -> Result<LoadedRule, LoadError> {
        self.load_with_limits(wasm, self.inner.config.limits.clone())
    }

    /// Load a rule with limits of its own. Its memory cap may not exceed
    /// the runtime's, which sized the instance pool.
    pub fn load_with_limits(&self, wasm: &[u8], limits: Limits) -> Result<LoadedRule, LoadError> {
        if limits.max_memory_bytes > self.inner.config.limits.max_memory_bytes {
            return Err(LoadError::Limits(format!(
                "memory cap {} is over the runtime's {}",
                limits.max_memory_bytes, self.inner.config.limits.max_memory_bytes
            )));
        }
        if !wasm.starts_with(b"\0asm") {
            let head: Vec<String> = wasm.iter().take(8).map(|b| format!("{b:02x}")).collect();
            return Err(LoadError::NotWasm(format!(
                "{} bytes starting {} (a wasm module starts 00 61 73 6d)",
                wasm.len(),
                head.join(" ")
            )));
        }
        let sha256 = build_sha256(wasm);
        let cache = self.inner.cache.as_ref().map(|cache| {
            let key = CompileCache::key(
                &self.inner.engine,
                &sha256,
                self.inner.config.isolate,
                limits.max_memory_bytes,
            );
            (cache, key)
        });
        let cached = cache.as_ref().and_then(|(cache, key)| {
            let component = cache.load(&self.inner.engine, key)?;
            // An entry that does not fit the contract has no business under
            // its key; it is dropped like a corrupt one and compiled afresh.
            self.prepare(&component)
                .inspect_err(|e| {
                    tracing::warn!(
                        error = %e,
                        "rule cache entry does not fit the contract; compiling instead"
                    );
                    cache.remove(key);
                })
                .ok()
        });
        let from_cache = cached.is_some();
        let (pre, compiled) = match cached {
            Some(pre) => (pre, None),
            None => {
                let component = self.compile(wasm, &limits)?;
                (self.prepare(&component)?, Some(component))
            }
        };
        let rule = LoadedRule::new(
            self.inner.clone(),
            pre,
            sha256,
            wasm.len(),
            limits,
            from_cache,
        )?;
        // Only a rule that loaded is worth keeping: one refused later (by
        // its manifest) would be refused again on every load.
        if let (Some((cache, key)), Some(component)) = (cache, compiled) {
            cache.store(&key, &component);
        }
        Ok(rule)
    }

    /// The slow part of a load: the isolation pass, componentizing and
    /// compiling to native code.
    fn compile(&self, wasm: &[u8], limits: &Limits) -> Result<Component, LoadError> {
        let contract = ContractInfo::get();
        let isolated = if self.inner.config.isolate {
            isolation::isolate(wasm, contract, limits.max_memory_bytes)?
        } else {
            isolation::check_only(wasm, contract)?
        };
        let component = componentize(isolated, contract)?;
        Component::new(&self.inner.engine, &component)
            .map_err(|e| LoadError::Instantiate(format!("{e:#}")))
    }

    /// Resolve a compiled rule's imports against the host, ready to be
    /// instantiated.
    fn prepare(&self, component: &Component) -> Result<IsolatedRulePre<HostState>, LoadError> {
        self.inner
            .linker
            .instantiate_pre(component)
            .and_then(IsolatedRulePre::new)
            .map_err(|e| LoadError::Instantiate(format!("{e:#}")))
    }
}

/// The sha256 of a rule build, in hex: what identifies the build in
/// decisions, the registry, the state directory and the compile cache.
pub fn build_sha256(wasm: &[u8]) -> String {
    hex::encode(Sha256::digest(wasm))
}

/// Embed the engine's world into the isolated module and make it a component.
fn componentize(mut module: Vec<u8>, contract: &ContractInfo) -> Result<Vec<u8>, LoadError> {
    wit_component::embed_component_metadata(
        &mut module,
        &contract.resolve,
        contract.isolated_world,
        wit_component::StringEncoding::UTF8,
    )
    .map_err(|e| LoadError::Contract(format!("{e:#}")))?;
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .and_then(|mut encoder| encoder.encode())
        .map_err(|e| LoadError::Contract(format!("{e:#}")))
}

/// Advances the engine's epoch on a fixed tick, so that a call's deadline
/// (counted in ticks) is a wall-clock deadline.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine, tick: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("enforcer-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .expect("spawn the epoch thread");
        EpochTicker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
