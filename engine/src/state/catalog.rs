//! The counters the engine keeps, deduplicated across rules and the policy.
//!
//! Two declarations that count the same events the same way (same kinds,
//! key, aggregation and filter) share one counter, whatever each calls it,
//! so ten rules reading "messages sent per hour" cost one update per event.
//! The counter keeps as much history as the longest window any of them
//! declared. Rules read by their own names; [`CounterCatalog::resolve`]
//! turns a rule's name into the shared [`CounterId`].

use std::collections::HashMap;
use std::sync::Arc;

use crate::manifest::{Aggregation, CounterFilter, CounterKey, CounterSpec};

/// A counter the engine keeps. Stable for the life of the engine: a
/// counter keeps its id, and so its history, across rule swaps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CounterId(pub u32);

/// The first id of a counter kept for shadow rules alone. Live ids count up
/// from 0 and shadow-only ids from here, so the two never meet, and the
/// store a counter lives in follows from its id.
pub const SHADOW_COUNTER_BASE: CounterId = CounterId(1 << 31);

/// The ids of live counters.
pub const LIVE_COUNTERS: std::ops::Range<CounterId> = CounterId(0)..SHADOW_COUNTER_BASE;
/// The ids of counters only shadow rules read.
pub const SHADOW_COUNTERS: std::ops::Range<CounterId> = SHADOW_COUNTER_BASE..CounterId(u32::MAX);

/// What a counter counts: a declaration without its name and window.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CounterShape {
    /// The event kinds that update it, sorted and deduplicated.
    pub event_kinds: Vec<String>,
    /// Whose counter an event updates.
    pub key: CounterKey,
    /// What it adds up.
    pub aggregation: Aggregation,
    /// Which events it counts.
    pub filter: CounterFilter,
}

impl CounterShape {
    fn of(spec: &CounterSpec) -> Self {
        let mut event_kinds = spec.event_kinds.clone();
        event_kinds.sort();
        event_kinds.dedup();
        CounterShape {
            event_kinds,
            key: spec.key,
            aggregation: spec.aggregation.clone(),
            filter: spec.filter.clone(),
        }
    }
}

/// One kept counter.
#[derive(Clone, Debug)]
pub struct CounterDef {
    /// What it counts.
    pub shape: CounterShape,
    /// How much history it keeps: the longest window declared for it.
    pub retention_seconds: u32,
    /// What names it outside this engine (in a store shared by several
    /// nodes): a digest of its shape, the same on every node and across
    /// restarts, where ids depend on the order rules were deployed in.
    pub stable_key: Arc<str>,
}

impl CounterShape {
    /// A digest of the shape: 16 hex digits of the SHA-256 of its JSON.
    fn stable_key(&self) -> Arc<str> {
        use sha2::Digest;
        let json = serde_json::to_vec(self).expect("a shape always serialises");
        Arc::from(hex::encode(&sha2::Sha256::digest(json)[..8]))
    }
}

/// Every kept counter, and which event kinds update which.
#[derive(Clone, Debug, Default)]
pub struct CounterCatalog {
    /// Live counters by id; `None` for an id an earlier catalog gave to a
    /// counter no rule declares any more.
    live: Vec<Option<CounterDef>>,
    /// Shadow-only counters by id less [`SHADOW_COUNTER_BASE`].
    shadow: Vec<Option<CounterDef>>,
    by_shape: HashMap<CounterShape, CounterId>,
    /// Counters kept for shadow rules alone, by shape.
    shadow_by_shape: HashMap<CounterShape, CounterId>,
    by_kind: HashMap<String, Vec<CounterId>, foldhash::fast::RandomState>,
    /// Every id ever given, by this catalog or the ones it succeeds, so
    /// that a shape declared again gets its old id back.
    assigned: HashMap<CounterShape, CounterId>,
    assigned_shadow: HashMap<CounterShape, CounterId>,
}

impl CounterCatalog {
    /// No counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty catalog for the next rule set of the same engine: it keeps
    /// no counter yet, but a counter declared again gets the id it had
    /// here, so its history in the store carries over.
    pub fn successor(&self) -> Self {
        CounterCatalog {
            live: vec![None; self.live.len()],
            shadow: vec![None; self.shadow.len()],
            assigned: self.assigned.clone(),
            assigned_shadow: self.assigned_shadow.clone(),
            ..Self::default()
        }
    }

    /// Keep the counter `spec` describes, sharing an existing one of the
    /// same shape (and lengthening its history if `spec` needs more).
    pub fn declare(&mut self, spec: &CounterSpec) -> CounterId {
        let shape = CounterShape::of(spec);
        if let Some(&id) = self.by_shape.get(&shape) {
            let def = self.def_mut(id);
            def.retention_seconds = def.retention_seconds.max(spec.window_seconds);
            return id;
        }
        let id = self.push(shape.clone(), spec.window_seconds, false);
        self.by_shape.insert(shape, id);
        id
    }

    /// Keep the counter a *shadow* rule's `spec` describes. It shares a live
    /// counter of the same shape only if that one already keeps enough
    /// history; otherwise it gets a counter of its own, so that a shadow
    /// rule never lengthens (or otherwise changes) a live counter. Declare
    /// every live counter first.
    pub fn declare_shadow(&mut self, spec: &CounterSpec) -> CounterId {
        let shape = CounterShape::of(spec);
        if let Some(&id) = self.by_shape.get(&shape)
            && self.def(id).retention_seconds >= spec.window_seconds
        {
            return id;
        }
        if let Some(&id) = self.shadow_by_shape.get(&shape) {
            let def = self.def_mut(id);
            def.retention_seconds = def.retention_seconds.max(spec.window_seconds);
            return id;
        }
        let id = self.push(shape.clone(), spec.window_seconds, true);
        self.shadow_by_shape.insert(shape, id);
        id
    }

    fn push(&mut self, shape: CounterShape, retention_seconds: u32, shadow: bool) -> CounterId {
        let (defs, assigned, base) = if shadow {
            (
                &mut self.shadow,
                &mut self.assigned_shadow,
                SHADOW_COUNTER_BASE.0,
            )
        } else {
            (&mut self.live, &mut self.assigned, 0)
        };
        let id = *assigned.entry(shape.clone()).or_insert_with(|| {
            defs.push(None);
            CounterId(base + defs.len() as u32 - 1)
        });
        for kind in &shape.event_kinds {
            self.by_kind.entry(kind.clone()).or_default().push(id);
        }
        defs[(id.0 - base) as usize] = Some(CounterDef {
            stable_key: shape.stable_key(),
            shape,
            retention_seconds,
        });
        id
    }

    /// The id of the live counter `spec` describes, if it is kept.
    pub fn resolve(&self, spec: &CounterSpec) -> Option<CounterId> {
        self.by_shape.get(&CounterShape::of(spec)).copied()
    }

    /// The live counter that counts what `shape` counts.
    pub fn live_id(&self, shape: &CounterShape) -> Option<CounterId> {
        self.by_shape.get(shape).copied()
    }

    /// The shadow-only counter that counts what `shape` counts.
    pub fn shadow_id(&self, shape: &CounterShape) -> Option<CounterId> {
        self.shadow_by_shape.get(shape).copied()
    }

    /// The counters an event of `kind` updates.
    pub fn for_kind(&self, kind: &str) -> &[CounterId] {
        self.by_kind.get(kind).map_or(&[], Vec::as_slice)
    }

    /// One kept counter's definition, or `None` if this catalog does not
    /// keep it (an id of a counter no rule declares any more).
    pub fn get(&self, id: CounterId) -> Option<&CounterDef> {
        let slot = if id >= SHADOW_COUNTER_BASE {
            self.shadow.get((id.0 - SHADOW_COUNTER_BASE.0) as usize)
        } else {
            self.live.get(id.0 as usize)
        };
        slot.and_then(Option::as_ref)
    }

    /// One kept counter's definition.
    ///
    /// # Panics
    /// If the catalog does not keep `id`: ids come from this catalog.
    pub fn def(&self, id: CounterId) -> &CounterDef {
        self.get(id).expect("a counter id from this catalog")
    }

    fn def_mut(&mut self, id: CounterId) -> &mut CounterDef {
        let slot = if id >= SHADOW_COUNTER_BASE {
            &mut self.shadow[(id.0 - SHADOW_COUNTER_BASE.0) as usize]
        } else {
            &mut self.live[id.0 as usize]
        };
        slot.as_mut().expect("a counter id from this catalog")
    }

    /// The counters this catalog keeps live that `previous` kept for
    /// shadow rules alone: (the shadow id, the live id, how it counts).
    /// Their history moves to the live store when a shadow rule is promoted.
    pub fn promoted_from(
        &self,
        previous: &CounterCatalog,
    ) -> Vec<(CounterId, CounterId, Aggregation)> {
        self.by_shape
            .iter()
            .filter(|(shape, _)| !previous.by_shape.contains_key(*shape))
            .filter_map(|(shape, &live)| {
                let shadow = *previous.shadow_by_shape.get(shape)?;
                Some((shadow, live, shape.aggregation.clone()))
            })
            .collect()
    }

    /// Whether any counter is kept for shadow rules alone.
    pub fn has_shadow_only(&self) -> bool {
        !self.shadow_by_shape.is_empty()
    }

    /// How many counters are kept.
    pub fn len(&self) -> usize {
        self.by_shape.len() + self.shadow_by_shape.len()
    }

    /// Whether no counter is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, kinds: &[&str], window_seconds: u32) -> CounterSpec {
        CounterSpec {
            name: name.into(),
            event_kinds: kinds.iter().map(|k| k.to_string()).collect(),
            key: CounterKey::Actor,
            aggregation: Aggregation::Count,
            filter: CounterFilter::All,
            window_seconds,
        }
    }

    #[test]
    fn same_shape_shares_one_counter_with_the_longest_window() {
        let mut catalog = CounterCatalog::new();
        let a = catalog.declare(&spec("sent", &["message.sent", "message.forwarded"], 60));
        let b = catalog.declare(&spec("msgs", &["message.forwarded", "message.sent"], 3600));
        assert_eq!(a, b);
        assert_eq!(catalog.len(), 1);
        assert_eq!(catalog.def(a).retention_seconds, 3600);
        assert_eq!(catalog.for_kind("message.sent"), [a]);
        assert_eq!(catalog.for_kind("message.forwarded"), [a]);
    }

    #[test]
    fn a_counters_stable_key_follows_its_shape_not_its_id() {
        let mut first = CounterCatalog::new();
        let a = first.declare(&spec("sent", &["message.sent", "message.forwarded"], 60));
        let other = first.declare(&spec("joined", &["group.joined"], 60));
        // Another engine declares the same shape second, under another
        // name and window, with the kinds in another order.
        let mut second = CounterCatalog::new();
        second.declare(&spec("x", &["report.filed"], 60));
        let b = second.declare(&spec("m", &["message.forwarded", "message.sent"], 10));
        assert_ne!(a, b);
        assert_eq!(first.def(a).stable_key, second.def(b).stable_key);
        assert_ne!(first.def(a).stable_key, first.def(other).stable_key);
        assert_eq!(first.def(a).stable_key.len(), 16);
    }

    #[test]
    fn different_shapes_are_different_counters() {
        let mut catalog = CounterCatalog::new();
        let count = catalog.declare(&spec("sent", &["message.sent"], 60));
        let mut by_target = spec("received", &["message.sent"], 60);
        by_target.key = CounterKey::Target;
        let mut filtered = spec("to_strangers", &["message.sent"], 60);
        filtered.filter = CounterFilter::IsFalse("to_contact".into());
        let ids = [
            count,
            catalog.declare(&by_target),
            catalog.declare(&filtered),
        ];
        assert_eq!(ids, [CounterId(0), CounterId(1), CounterId(2)]);
        assert_eq!(catalog.for_kind("message.sent"), ids);
    }

    #[test]
    fn a_shadow_counter_never_lengthens_a_live_one() {
        let mut catalog = CounterCatalog::new();
        let live = catalog.declare(&spec("sent", &["message.sent"], 60));
        // Needs no more history than the live counter keeps: shared.
        assert_eq!(
            catalog.declare_shadow(&spec("s", &["message.sent"], 30)),
            live
        );
        // Needs more: a counter of its own, and the live one is untouched.
        let own = catalog.declare_shadow(&spec("s", &["message.sent"], 3600));
        assert_ne!(own, live);
        assert_eq!(catalog.def(live).retention_seconds, 60);
        assert_eq!(catalog.def(own).retention_seconds, 3600);
        assert_eq!(
            catalog.declare_shadow(&spec("t", &["message.sent"], 7200)),
            own
        );
        assert_eq!(catalog.def(own).retention_seconds, 7200);
        assert_eq!(catalog.for_kind("message.sent"), [live, own]);
    }

    #[test]
    fn a_successor_gives_a_shape_declared_again_its_old_id() {
        let mut first = CounterCatalog::new();
        let sent = first.declare(&spec("sent", &["message.sent"], 60));
        let joined = first.declare(&spec("joined", &["group.joined"], 60));
        let shadow = first.declare_shadow(&spec("s", &["message.sent"], 3600));
        assert!(shadow >= SHADOW_COUNTER_BASE);

        // The next rule set drops `joined`, keeps `sent` and adds a counter.
        let mut next = first.successor();
        let reported = next.declare(&spec("reports", &["report.filed"], 60));
        assert_eq!(next.declare(&spec("msgs", &["message.sent"], 30)), sent);
        assert_eq!(
            next.declare_shadow(&spec("t", &["message.sent"], 7200)),
            shadow
        );
        assert!(![sent, joined].contains(&reported));
        assert!(
            next.get(joined).is_none(),
            "a counter nobody declares is not kept"
        );
        assert_eq!(next.def(sent).retention_seconds, 30);
        assert_eq!(next.for_kind("group.joined"), []);
        assert_eq!(next.len(), 3);
        assert!(next.has_shadow_only());
    }
}
