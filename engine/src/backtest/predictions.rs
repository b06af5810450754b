//! Each entity's prediction by one replay, as CSV: what the report's entity
//! figures are counted from, one line per judged entity, so that they can be
//! checked (or studied) outside the engine.
//!
//! ```text
//! entity,label,acted_severity,max_score,decided_severity
//! account:alice,0,allow,0.25,allow
//! account:bulk-7,1,block,0.95,block
//! ```
//!
//! * `entity`: `account:<id>` or `group:<id>`, quoted as CSV needs.
//! * `label`: `1` if the entity is labelled abusive, `0` if not, as the
//!   report labels it.
//! * `acted_severity`: the highest severity of a decision that carried an
//!   action on the entity, or `allow` if none did. The report's entity
//!   figures at a severity count an entity as acted on exactly when this is
//!   at least that severity.
//! * `max_score`: the highest combined score of the decisions on events
//!   the entity was the actor of (0 if it acted in none).
//! * `decided_severity`: the highest severity of those decisions (`allow`
//!   if none). When every entity is the actor of exactly one event, as in a
//!   table of account snapshots, the report's event figures at a severity
//!   count exactly the entities whose decided severity reaches it.
//!
//! Lines are in the report's entity order: the entity truth file's, then
//! each actor's first event. Events whose id repeats an earlier one are
//! skipped, as the report skips them.

use std::io::Write;
use std::sync::Arc;

use super::replay::Replay;
use super::report::severity_name;
use super::score::Entities;
use crate::event::{Entity, Event};
use crate::verdict::Severity;

/// One entity's line.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The entity.
    pub entity: Entity,
    /// Whether it is labelled abusive.
    pub abusive: bool,
    /// The highest severity of a decision that acted on it (`Allow`: none).
    pub acted: Severity,
    /// The highest score of a decision on an event it was the actor of.
    pub max_score: f64,
    /// The highest severity of a decision on an event it was the actor of.
    pub decided: Severity,
}

/// Every judged entity's prediction by `replay` of `events`.
pub fn predict(replay: &Replay, events: &[Arc<Event>], entities: &Entities) -> Vec<Prediction> {
    let acted = entities.acted(replay);
    let mut own = vec![(0.0f64, Severity::Allow); acted.len()];
    for (decided, event) in replay.decided.iter().zip(events) {
        if decided.duplicate {
            continue;
        }
        if let Some(at) = entities.position(&event.actor) {
            let (score, severity) = &mut own[at];
            *score = score.max(decided.score);
            *severity = (*severity).max(decided.severity);
        }
    }
    entities
        .labelled()
        .into_iter()
        .zip(acted)
        .zip(own)
        .map(
            |(((entity, abusive), acted), (max_score, decided))| Prediction {
                entity: entity.clone(),
                abusive,
                acted: acted.unwrap_or(Severity::Allow),
                max_score,
                decided,
            },
        )
        .collect()
}

/// Write `predictions` as CSV, with a header line.
pub fn write_csv(predictions: &[Prediction], out: impl Write) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record([
        "entity",
        "label",
        "acted_severity",
        "max_score",
        "decided_severity",
    ])?;
    for p in predictions {
        writer.write_record([
            p.entity.to_string().as_str(),
            if p.abusive { "1" } else { "0" },
            severity_name(p.acted),
            // Shortest text that reads back as the same f64.
            &p.max_score.to_string(),
            severity_name(p.decided),
        ])?;
    }
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backtest::input::Truth;
    use crate::backtest::replay::Decided;
    use crate::decision::EnforcementAction;
    use crate::verdict::Action;

    fn event(id: &str, actor: &str) -> Event {
        Event::new(id, "account.snapshot", 0, Entity::account(actor))
    }

    fn decided(severity: Severity, score: f64, blocks: &[&str], duplicate: bool) -> Decided {
        Decided {
            severity,
            score,
            actions: blocks
                .iter()
                .map(|id| EnforcementAction {
                    action: Action::BlockAccount,
                    entity: Entity::account(*id),
                })
                .collect(),
            fired: Vec::new(),
            duplicate,
        }
    }

    fn truth(abusive: bool) -> Truth {
        Truth {
            abusive,
            class: None,
        }
    }

    #[test]
    fn each_entity_gets_its_acted_and_decided_severity_and_best_score() {
        let events = [
            event("1", "quiet"),
            event("2", "reviewed"),
            event("3", "blocker"),
            event("4", "reviewed"),
            // A repeat of event 2: skipped, whatever it says.
            event("2", "reviewed"),
            event("5", "a,b"),
        ]
        .map(Arc::new);
        let truths = [false, true, true, true, true, false].map(truth);
        let replay = Replay {
            rules: Vec::new(),
            policy_version: "v".into(),
            decided: vec![
                decided(Severity::Allow, 0.25, &[], false),
                decided(Severity::Review, 0.5, &[], false),
                // The blocker's decision acts on `a,b`, not on itself.
                decided(Severity::Block, 0.95, &["a,b"], false),
                decided(Severity::Allow, 0.1, &[], false),
                decided(Severity::Block, 1.0, &["reviewed"], true),
                decided(Severity::Allow, 0.0, &[], false),
            ],
            counts: Vec::new(),
            refused: 0,
            first_refusal: None,
        };
        let entities = Entities::label(&events, &truths, &[]);
        let predictions = predict(&replay, &events, &entities);
        let lines: Vec<(String, bool, Severity, f64, Severity)> = predictions
            .iter()
            .map(|p| {
                (
                    p.entity.to_string(),
                    p.abusive,
                    p.acted,
                    p.max_score,
                    p.decided,
                )
            })
            .collect();
        assert_eq!(
            lines,
            [
                (
                    "account:quiet".into(),
                    false,
                    Severity::Allow,
                    0.25,
                    Severity::Allow
                ),
                (
                    "account:reviewed".into(),
                    true,
                    Severity::Allow,
                    0.5,
                    Severity::Review
                ),
                (
                    "account:blocker".into(),
                    true,
                    Severity::Allow,
                    0.95,
                    Severity::Block
                ),
                (
                    "account:a,b".into(),
                    false,
                    Severity::Block,
                    0.0,
                    Severity::Allow
                ),
            ]
        );

        let mut out = Vec::new();
        write_csv(&predictions, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "entity,label,acted_severity,max_score,decided_severity\n\
             account:quiet,0,allow,0.25,allow\n\
             account:reviewed,1,allow,0.5,review\n\
             account:blocker,1,allow,0.95,block\n\
             \"account:a,b\",0,block,0,allow\n"
        );
    }
}
