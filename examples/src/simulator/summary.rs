//! A short account of a run: how many events of each kind, how many
//! entities of each class, how much of it is abuse.

use std::collections::BTreeMap;

use super::truth::{Class, Traffic};

/// Counts over one run's traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// All events.
    pub events: usize,
    /// Events per kind.
    pub by_kind: BTreeMap<String, usize>,
    /// Events that are part of abuse.
    pub abusive_events: usize,
    /// Events whose `occurred_at_ms` is earlier than an event before them.
    pub late_events: usize,
    /// Accounts and groups per class.
    pub entities: BTreeMap<Class, usize>,
}

impl Summary {
    /// Count `traffic`.
    pub fn of(traffic: &Traffic) -> Summary {
        let mut by_kind = BTreeMap::new();
        let mut abusive_events = 0;
        let mut late_events = 0;
        let mut latest = i64::MIN;
        for labelled in &traffic.events {
            // Look up before inserting: a million kind clones add up.
            match by_kind.get_mut(&labelled.event.kind) {
                Some(count) => *count += 1,
                None => {
                    by_kind.insert(labelled.event.kind.clone(), 1);
                }
            }
            abusive_events += usize::from(labelled.truth.abusive);
            late_events += usize::from(labelled.event.occurred_at_ms < latest);
            latest = latest.max(labelled.event.occurred_at_ms);
        }
        let mut entities = BTreeMap::new();
        for entity in &traffic.truth {
            *entities.entry(entity.class).or_insert(0) += 1;
        }
        Summary {
            events: traffic.events.len(),
            by_kind,
            abusive_events,
            late_events,
            entities,
        }
    }

    /// The share of events that are abuse, 0 for no events.
    pub fn abusive_share(&self) -> f64 {
        if self.events == 0 {
            0.0
        } else {
            self.abusive_events as f64 / self.events as f64
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} events", self.events)?;
        for (kind, count) in &self.by_kind {
            writeln!(f, "  {kind:<26} {count:>9}")?;
        }
        writeln!(f, "entities")?;
        for (class, count) in &self.entities {
            writeln!(f, "  {:<26} {count:>9}", class.as_str())?;
        }
        write!(
            f,
            "abusive events: {} ({:.1}%), out of order: {}",
            self.abusive_events,
            100.0 * self.abusive_share(),
            self.late_events
        )
    }
}
