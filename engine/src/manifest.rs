//! A rule's manifest as the engine keeps it: what the rule is, which events
//! it wants and which counters it needs, validated at load.

use serde::{Deserialize, Serialize};

/// How a counter aggregates the events it sees.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// The number of matching events.
    Count,
    /// The sum of an integer attribute.
    Sum(String),
    /// The number of distinct values of an attribute.
    Distinct(String),
    /// The number of distinct actors.
    DistinctActors,
    /// The number of distinct targets.
    DistinctTargets,
}

/// Which events of its kinds a counter counts. An event that lacks the
/// attribute, or has it with another type, is not counted.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CounterFilter {
    /// Every event.
    All,
    /// Events whose boolean attribute is true.
    IsTrue(String),
    /// Events whose boolean attribute is false.
    IsFalse(String),
    /// Events whose text attribute (first) equals the value (second).
    TextEquals(String, String),
}

/// Whose counter a matching event updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CounterKey {
    /// The event's actor.
    Actor,
    /// The event's target.
    Target,
}

/// A behaviour counter a rule needs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CounterSpec {
    /// The name the rule reads it by.
    pub name: String,
    /// Event kinds that update it.
    pub event_kinds: Vec<String>,
    /// Whose counter an event updates.
    pub key: CounterKey,
    /// What it adds up.
    pub aggregation: Aggregation,
    /// Which events it counts.
    pub filter: CounterFilter,
    /// The longest window the rule reads, in seconds.
    pub window_seconds: u32,
}

/// A cheap condition the engine checks before calling a rule. The rule is
/// called only if at least one of its guards holds (always, if it has
/// none); otherwise the engine records an allow without a call. An
/// attribute that is absent or of another type fails its guard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guard {
    /// An integer attribute at or above a value.
    IntAtLeast(String, i64),
    /// An integer attribute below a value.
    IntBelow(String, i64),
    /// A float attribute at or above a value.
    FloatAtLeast(String, f64),
    /// A declared counter, for the actor or target, at or above a value.
    CounterAtLeast {
        /// The counter's name in the manifest.
        counter: String,
        /// Whose counter.
        subject: CounterKey,
        /// The window read.
        window_seconds: u32,
        /// The least value that lets the rule be called.
        value: u64,
    },
}

/// What a rule is and what it needs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Unique name in a rule set.
    pub name: String,
    /// The rule's own version string.
    pub version: String,
    /// Event kinds the rule is given.
    pub event_kinds: Vec<String>,
    /// Counters it reads.
    pub counters: Vec<CounterSpec>,
    /// When it is worth calling.
    #[serde(default)]
    pub guards: Vec<Guard>,
}

/// Longest accepted rule name, counter name or event kind, in bytes.
pub(crate) const MAX_NAME_BYTES: usize = 128;

/// Longest counter window: 31 days. The engine keeps a counter's history
/// for its longest window, so this bounds the memory a counter can take.
pub const MAX_WINDOW_SECONDS: u32 = 31 * 24 * 3600;

impl Manifest {
    /// Check what the engine relies on: names that are usable as keys, at
    /// least one event kind, counters with unique names and real windows.
    pub fn validate(&self) -> Result<(), String> {
        check_name("rule name", &self.name)?;
        if self.version.len() > MAX_NAME_BYTES {
            return Err(format!("version is over {MAX_NAME_BYTES} bytes"));
        }
        if self.event_kinds.is_empty() {
            return Err("subscribes to no event kinds, so it would never run".into());
        }
        for kind in &self.event_kinds {
            check_name("event kind", kind)?;
        }
        let mut seen = std::collections::HashSet::new();
        for counter in &self.counters {
            check_name("counter name", &counter.name)?;
            if !seen.insert(counter.name.as_str()) {
                return Err(format!("declares counter `{}` twice", counter.name));
            }
            if counter.window_seconds == 0 {
                return Err(format!(
                    "counter `{}` has a zero-second window",
                    counter.name
                ));
            }
            if counter.window_seconds > MAX_WINDOW_SECONDS {
                return Err(format!(
                    "counter `{}` has a {}s window, over the {MAX_WINDOW_SECONDS}s (31-day) limit",
                    counter.name, counter.window_seconds
                ));
            }
            if counter.event_kinds.is_empty() {
                return Err(format!("counter `{}` counts no event kinds", counter.name));
            }
            for kind in &counter.event_kinds {
                check_name("event kind", kind)?;
            }
            match (&counter.aggregation, counter.key) {
                (Aggregation::Sum(attribute) | Aggregation::Distinct(attribute), _) => {
                    check_name("attribute name", attribute)?
                }
                (Aggregation::DistinctActors, CounterKey::Actor) => {
                    return Err(format!(
                        "counter `{}` counts distinct actors per actor, which is always 1; key it by target",
                        counter.name
                    ));
                }
                (Aggregation::DistinctTargets, CounterKey::Target) => {
                    return Err(format!(
                        "counter `{}` counts distinct targets per target, which is always 1; key it by actor",
                        counter.name
                    ));
                }
                _ => {}
            }
            match &counter.filter {
                CounterFilter::All => {}
                CounterFilter::IsTrue(attribute)
                | CounterFilter::IsFalse(attribute)
                | CounterFilter::TextEquals(attribute, _) => {
                    check_name("attribute name", attribute)?
                }
            }
        }
        for guard in &self.guards {
            match guard {
                Guard::IntAtLeast(attribute, _) | Guard::IntBelow(attribute, _) => {
                    check_name("attribute name", attribute)?
                }
                Guard::FloatAtLeast(attribute, value) => {
                    check_name("attribute name", attribute)?;
                    // No value is at least NaN: the rule would never run.
                    if value.is_nan() {
                        return Err(format!(
                            "guards on `{attribute}` being at least NaN, which no value is, so it would never run"
                        ));
                    }
                }
                Guard::CounterAtLeast {
                    counter,
                    window_seconds,
                    ..
                } => {
                    let Some(declared) = self.counters.iter().find(|c| c.name == *counter) else {
                        return Err(format!(
                            "guards on counter `{counter}`, which it does not declare"
                        ));
                    };
                    if *window_seconds == 0 || *window_seconds > declared.window_seconds {
                        return Err(format!(
                            "guards on counter `{counter}` over {window_seconds}s; the window \
                             must be 1 to the {}s it declares",
                            declared.window_seconds
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Check a name used as a key (rule, counter, event kind, attribute):
/// non-empty, at most [`MAX_NAME_BYTES`], of letters, digits and `-_.:`.
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("has an empty {what}"));
    }
    if name.len() > MAX_NAME_BYTES {
        // Quote the start of it, cut on a character boundary.
        let cut = name.char_indices().nth(32).map_or(name.len(), |(i, _)| i);
        return Err(format!(
            "{what} `{}…` is over {MAX_NAME_BYTES} bytes",
            &name[..cut]
        ));
    }
    // Names are checked on every event (its kind, its attribute names), so
    // the common case is one pass over bytes.
    let usable = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':');
    if name.bytes().all(|b| usable(&b)) {
        return Ok(());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.:".contains(*c)))
    {
        return Err(format!(
            "{what} `{name}` contains {c:?}; use letters, digits and - _ . :"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            name: "r".into(),
            version: "1".into(),
            event_kinds: vec!["message.sent".into()],
            counters: vec![CounterSpec {
                name: "sent".into(),
                event_kinds: vec!["message.sent".into()],
                key: CounterKey::Actor,
                aggregation: Aggregation::Count,
                filter: CounterFilter::All,
                window_seconds: 60,
            }],
            guards: Vec::new(),
        }
    }

    #[test]
    fn a_float_guard_at_nan_is_refused() {
        let mut m = manifest();
        m.guards
            .push(Guard::FloatAtLeast("toxicity".into(), f64::NAN));
        let error = m.validate().unwrap_err();
        assert!(error.contains("`toxicity` being at least NaN"), "{error}");
        // Infinities are thresholds, if odd ones: -inf admits any float.
        m.guards[0] = Guard::FloatAtLeast("toxicity".into(), f64::NEG_INFINITY);
        assert_eq!(m.validate(), Ok(()));
    }

    #[test]
    fn accepts_a_sound_manifest() {
        assert_eq!(manifest().validate(), Ok(()));
    }

    #[test]
    fn refuses_what_the_engine_cannot_use() {
        let mut m = manifest();
        m.event_kinds.clear();
        assert!(m.validate().unwrap_err().contains("no event kinds"));

        let mut m = manifest();
        m.counters.push(m.counters[0].clone());
        assert!(m.validate().unwrap_err().contains("twice"));

        let mut m = manifest();
        m.counters[0].window_seconds = 0;
        assert!(m.validate().unwrap_err().contains("zero-second"));

        let mut m = manifest();
        m.counters[0].window_seconds = u32::MAX;
        assert!(m.validate().unwrap_err().contains("31-day"));

        let mut m = manifest();
        m.counters[0].aggregation = Aggregation::DistinctActors;
        assert!(m.validate().unwrap_err().contains("always 1"));

        let mut m = manifest();
        m.guards.push(Guard::CounterAtLeast {
            counter: "unknown".into(),
            subject: CounterKey::Actor,
            window_seconds: 60,
            value: 1,
        });
        assert!(m.validate().unwrap_err().contains("does not declare"));

        let mut m = manifest();
        m.guards.push(Guard::CounterAtLeast {
            counter: "sent".into(),
            subject: CounterKey::Actor,
            window_seconds: 61,
            value: 1,
        });
        assert!(m.validate().unwrap_err().contains("must be 1 to the 60s"));

        // A long name is quoted in part, cut between characters.
        let mut m = manifest();
        m.name = "€".repeat(43);
        assert!(m.validate().unwrap_err().contains("is over 128 bytes"));

        let mut m = manifest();
        m.name = "has space".into();
        assert!(m.validate().unwrap_err().contains("' '"));
    }
}
