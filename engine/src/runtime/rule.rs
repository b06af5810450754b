//! A loaded rule: its identity, its manifest, and a pool of warm instances
//! that calls take one at a time. A call never fails the engine: whatever
//! the rule does, the caller gets a [`RuleOutcome`].

use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::Store;

use super::contract::bindings::{IsolatedRule, IsolatedRulePre};
use super::convert::{manifest_from_wit, verdict_from_wit};
use super::host::{Declarations, HostCallError, HostState, InstanceRetired, StateUnavailable};
use super::isolation::shadow_memory_bytes;
use super::{LoadError, RuntimeConfig, RuntimeInner};
use crate::banks::MatchEvidence;
use crate::event::Event;
use crate::manifest::Manifest;
use crate::runtime::limits::Limits;
use crate::state::StateView;
use crate::verdict::{RuleError, RuleOutcome, Verdict};

/// Idle instances kept per rule; more are dropped when returned. Enough for
/// every worker thread of a busy engine to find one warm.
const MAX_IDLE_INSTANCES: usize = 64;

/// A rule ready to evaluate events, safe to share between threads.
pub struct LoadedRule {
    runtime: Arc<RuntimeInner>,
    pre: IsolatedRulePre<HostState>,
    manifest: Manifest,
    sha256: Arc<str>,
    wasm_bytes: usize,
    limits: Limits,
    name: Arc<str>,
    version: Arc<str>,
    declarations: Arc<Declarations>,
    compiled_from_cache: bool,
    /// Boxed, so that taking one out and putting it back on every call
    /// moves a pointer rather than the whole store and bindings.
    #[allow(clippy::vec_box)]
    idle: Mutex<Vec<Box<WarmInstance>>>,
}

/// One instance of a rule with its store.
struct WarmInstance {
    store: Store<HostState>,
    bindings: IsolatedRule,
}

impl LoadedRule {
    pub(crate) fn new(
        runtime: Arc<RuntimeInner>,
        pre: IsolatedRulePre<HostState>,
        sha256: String,
        wasm_bytes: usize,
        limits: Limits,
        compiled_from_cache: bool,
    ) -> Result<Self, LoadError> {
        let mut rule = LoadedRule {
            runtime,
            pre,
            manifest: Manifest::default(),
            sha256: Arc::from(sha256),
            wasm_bytes,
            limits,
            name: Arc::from("(loading)"),
            version: Arc::from(""),
            declarations: Arc::new(Declarations::default()),
            compiled_from_cache,
            idle: Mutex::new(Vec::new()),
        };
        let (mut first, manifest) = rule
            .instantiate()
            .map_err(|e| LoadError::Manifest(e.to_string()))?;
        manifest.validate().map_err(LoadError::Manifest)?;
        rule.name = Arc::from(manifest.name.as_str());
        rule.version = Arc::from(manifest.version.as_str());
        rule.declarations = Arc::new(Declarations {
            counters: manifest
                .counters
                .iter()
                .map(|c| (c.name.clone(), c.window_seconds))
                .collect(),
        });
        rule.manifest = manifest;
        first.store.data_mut().rule_name = rule.name.clone();
        first.store.data_mut().declarations = rule.declarations.clone();
        rule.idle.get_mut().expect("not shared yet").push(first);
        Ok(rule)
    }

    /// Drop the warm instances kept for calls, freeing their slots in the
    /// engine's instance pool: for a build that no longer runs. A call
    /// still under way returns its instance afterwards, and a later call
    /// makes a fresh one.
    pub fn release_idle(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The rule's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The rule's name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The sha256 of the wasm it was loaded from, in hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The size of the wasm it was loaded from.
    pub fn wasm_bytes(&self) -> usize {
        self.wasm_bytes
    }

    /// Whether its compiled code was read from the runtime's cache
    /// directory rather than compiled by this load.
    pub fn compiled_from_cache(&self) -> bool {
        self.compiled_from_cache
    }

    /// The budgets its calls run under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether the rule subscribes to this event kind.
    pub fn wants(&self, kind: &str) -> bool {
        self.manifest.event_kinds.iter().any(|k| k == kind)
    }

    /// Make an instance and run its first call, `manifest`, which also takes
    /// the instance's reset snapshot. Returns the manifest it reported.
    fn instantiate(&self) -> Result<(Box<WarmInstance>, Manifest), RuleError> {
        let hard_cap = shadow_memory_bytes(self.limits.max_memory_bytes);
        let state = HostState::new(
            self.name.clone(),
            self.declarations.clone(),
            &self.limits,
            hard_cap,
        );
        let mut store = Store::new(&self.runtime.engine, state);
        store.limiter(|state| &mut state.limiter);
        // What reaching the deadline does is set once per store; each call
        // only moves the deadline.
        store.epoch_deadline_trap();
        let unavailable = |e: wasmtime::Error| RuleError::Unavailable {
            message: format!("{e:#}"),
        };
        // Instantiation runs wasm (the component's start-up shims), so the
        // budgets apply from here on.
        arm(&mut store, &self.runtime.config, &self.limits)?;
        let bindings = self.pre.instantiate(&mut store).map_err(unavailable)?;
        let mut instance = Box::new(WarmInstance { store, bindings });
        arm(&mut instance.store, &self.runtime.config, &self.limits)?;
        let manifest = instance.bindings.call_manifest(&mut instance.store);
        let manifest = manifest.map_err(|e| classify(e, instance.store.data(), &self.limits))?;
        Ok((instance, manifest_from_wit(manifest)))
    }

    /// A fresh instance for a call, checked to describe the same rule.
    fn fresh_instance(&self) -> Result<Box<WarmInstance>, RuleError> {
        let (instance, manifest) = self.instantiate()?;
        if manifest != self.manifest {
            return Err(RuleError::BadOutput {
                message: "a new instance reported a different manifest".into(),
            });
        }
        Ok(instance)
    }

    /// Evaluate one event. The event must be of a kind the rule wants; the
    /// router guarantees that, and a rule given another kind simply judges it.
    pub fn evaluate(&self, event: &Arc<Event>, state: &Arc<dyn StateView>) -> RuleOutcome {
        let started = Instant::now();
        let mut call = self.call_once(event, state, false);
        if matches!(call, Call::Retired) {
            // The instance's memory grew in an earlier call and it retired
            // itself before running this one: run it on a fresh instance.
            call = self.call_once(event, state, true);
        }
        let (result, fuel_used, evidence) = match call {
            Call::Done {
                result,
                fuel_used,
                evidence,
                ..
            } => (result, fuel_used, evidence),
            Call::Retired => (
                Err(RuleError::Unavailable {
                    message: "a fresh instance retired itself".into(),
                }),
                0,
                Vec::new(),
            ),
        };
        RuleOutcome {
            rule: self.name.clone(),
            version: self.version.clone(),
            sha256: self.sha256.clone(),
            result,
            fuel_used,
            elapsed: started.elapsed(),
            evidence,
        }
    }

    /// One call on a pooled (or, if `fresh`, a new) instance, which goes
    /// back to the pool if it is still usable.
    fn call_once(&self, event: &Arc<Event>, state: &Arc<dyn StateView>, fresh: bool) -> Call {
        let pooled = if fresh {
            None
        } else {
            self.idle.lock().ok().and_then(|mut idle| idle.pop())
        };
        let mut instance = match pooled.map_or_else(|| self.fresh_instance(), Ok) {
            Ok(instance) => instance,
            Err(error) => {
                return Call::Done {
                    result: Err(error),
                    fuel_used: 0,
                    reusable: false,
                    evidence: Vec::new(),
                };
            }
        };
        let call = instance.evaluate(event, state, &self.runtime.config, &self.limits);
        let reusable = matches!(call, Call::Done { reusable: true, .. });
        if reusable
            && self.runtime.config.reuse_instances
            && let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE_INSTANCES
        {
            idle.push(instance);
        }
        call
    }
}

/// How one call on one instance ended.
enum Call {
    /// The rule ran: a verdict or an error, and whether the instance can
    /// take another call.
    Done {
        result: Result<Verdict, RuleError>,
        fuel_used: u64,
        reusable: bool,
        evidence: Vec<MatchEvidence>,
    },
    /// The instance retired itself before running the call.
    Retired,
}

impl WarmInstance {
    /// Run `evaluate` on this instance.
    fn evaluate(
        &mut self,
        event: &Arc<Event>,
        state: &Arc<dyn StateView>,
        config: &RuntimeConfig,
        limits: &Limits,
    ) -> Call {
        if let Err(error) = arm(&mut self.store, config, limits) {
            return Call::Done {
                result: Err(error),
                fuel_used: 0,
                reusable: false,
                evidence: Vec::new(),
            };
        }
        self.store.data_mut().begin(event.clone(), state.clone());
        let returned = self.bindings.call_evaluate(&mut self.store);
        let fuel_used = if config.metering.fuel() {
            limits.fuel - self.store.get_fuel().unwrap_or(0)
        } else {
            0
        };
        let data = self.store.data_mut();
        data.end();
        let evidence = std::mem::take(&mut data.evidence);
        match returned {
            // The instance reset itself in post-return and can be reused.
            Ok(verdict) => Call::Done {
                result: verdict_from_wit(verdict, limits.max_output_bytes),
                fuel_used,
                reusable: true,
                evidence,
            },
            Err(error) if error.is::<InstanceRetired>() => Call::Retired,
            // A trapped instance is left mid-call and is never entered again.
            Err(error) => Call::Done {
                result: Err(classify(error, data, limits)),
                fuel_used,
                reusable: false,
                evidence,
            },
        }
    }
}

/// Set the budgets for the next call on a store.
fn arm(
    store: &mut Store<HostState>,
    config: &RuntimeConfig,
    limits: &Limits,
) -> Result<(), RuleError> {
    if config.metering.fuel() {
        store
            .set_fuel(limits.fuel)
            .map_err(|e| RuleError::Unavailable {
                message: format!("{e:#}"),
            })?;
    }
    if config.metering.epoch() {
        store.set_epoch_deadline(deadline_ticks(limits, config.epoch_tick));
    }
    Ok(())
}

/// The epoch deadline in ticks of the runtime's epoch clock, plus one
/// because the first tick may come at once.
fn deadline_ticks(limits: &Limits, tick: std::time::Duration) -> u64 {
    let tick = tick.as_micros().max(1);
    limits.deadline.as_micros().div_ceil(tick) as u64 + 1
}

/// Name the failure of a call precisely.
fn classify(error: wasmtime::Error, state: &HostState, limits: &Limits) -> RuleError {
    if let Some(host) = error.downcast_ref::<HostCallError>() {
        return RuleError::HostCall {
            message: host.0.clone(),
        };
    }
    if let Some(state) = error.downcast_ref::<StateUnavailable>() {
        return RuleError::State {
            message: state.0.clone(),
        };
    }
    if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        use wasmtime::Trap;
        return match trap {
            Trap::OutOfFuel => RuleError::OutOfFuel {
                budget: limits.fuel,
            },
            Trap::Interrupt => RuleError::Deadline {
                limit_ms: limits.deadline.as_millis() as u64,
            },
            Trap::StackOverflow => RuleError::StackOverflow,
            _ if state.limiter.denied => RuleError::OutOfMemory {
                limit_bytes: limits.max_memory_bytes,
            },
            Trap::UnreachableCodeReached if state.panic_message.is_some() => RuleError::Panic {
                message: state.panic_message.clone().unwrap_or_default(),
            },
            other => RuleError::Trap {
                message: other.to_string(),
            },
        };
    }
    // What is left is the canonical ABI refusing what the rule handed back:
    // an out-of-bounds pointer, invalid UTF-8, a bad discriminant.
    RuleError::BadOutput {
        message: format!("{error:#}"),
    }
}
