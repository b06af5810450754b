//! Conversions between the contract's generated types and the engine's own,
//! with the checks a rule's output must pass on the way in.

use super::contract::bindings::enforcer::rule::types as wit;
use super::host::entity_from_wit;
use crate::event::MAX_ID_BYTES;
use crate::manifest::{Aggregation, CounterFilter, CounterKey, CounterSpec, Guard, Manifest};
use crate::verdict::MAX_LABEL_TTL_SECONDS;
use crate::verdict::{
    Action, Effect, Reason, RecommendedAction, RuleError, Severity, Subject, Verdict,
};

/// Bytes counted for each list item on top of its strings, so that a verdict
/// of many empty items is still bounded.
const ITEM_OVERHEAD: usize = 16;

/// The engine's manifest for a rule's, field for field. It is checked
/// after, by [`Manifest::validate`].
pub fn manifest_from_wit(m: wit::Manifest) -> Manifest {
    Manifest {
        name: m.name,
        version: m.version,
        event_kinds: m.event_kinds,
        counters: m
            .counters
            .into_iter()
            .map(|c| CounterSpec {
                name: c.name,
                event_kinds: c.event_kinds,
                key: match c.key {
                    wit::CounterKey::Actor => CounterKey::Actor,
                    wit::CounterKey::Target => CounterKey::Target,
                },
                aggregation: match c.aggregation {
                    wit::Aggregation::Count => Aggregation::Count,
                    wit::Aggregation::Sum(a) => Aggregation::Sum(a),
                    wit::Aggregation::Distinct(a) => Aggregation::Distinct(a),
                    wit::Aggregation::DistinctActors => Aggregation::DistinctActors,
                    wit::Aggregation::DistinctTargets => Aggregation::DistinctTargets,
                },
                filter: match c.filter {
                    wit::CounterFilter::All => CounterFilter::All,
                    wit::CounterFilter::IsTrue(a) => CounterFilter::IsTrue(a),
                    wit::CounterFilter::IsFalse(a) => CounterFilter::IsFalse(a),
                    wit::CounterFilter::TextEquals((a, v)) => CounterFilter::TextEquals(a, v),
                },
                window_seconds: c.window_seconds,
            })
            .collect(),
        guards: m
            .guards
            .into_iter()
            .map(|g| match g {
                wit::Guard::IntAtLeast((a, v)) => Guard::IntAtLeast(a, v),
                wit::Guard::IntBelow((a, v)) => Guard::IntBelow(a, v),
                wit::Guard::FloatAtLeast((a, v)) => Guard::FloatAtLeast(a, v),
                wit::Guard::CounterAtLeast(c) => Guard::CounterAtLeast {
                    counter: c.counter,
                    subject: match c.subject {
                        wit::CounterKey::Actor => CounterKey::Actor,
                        wit::CounterKey::Target => CounterKey::Target,
                    },
                    window_seconds: c.window_seconds,
                    value: c.value,
                },
            })
            .collect(),
    }
}

fn subject_size(s: &wit::Subject) -> usize {
    match s {
        wit::Subject::Entity(e) => e.id.len(),
        _ => 0,
    }
}

/// The size of a verdict as the output cap counts it.
fn verdict_size(v: &wit::Verdict) -> usize {
    let actions: usize = v
        .actions
        .iter()
        .map(|a| ITEM_OVERHEAD + subject_size(&a.subject))
        .sum();
    let reasons: usize = v
        .reasons
        .iter()
        .map(|r| ITEM_OVERHEAD + r.code.len() + r.explanation.len())
        .sum();
    let effects: usize = v
        .effects
        .iter()
        .map(|e| {
            ITEM_OVERHEAD
                + match e {
                    wit::Effect::SetLabel(s) => subject_size(&s.subject) + s.label.len(),
                    wit::Effect::ClearLabel(c) => subject_size(&c.subject) + c.label.len(),
                }
        })
        .sum();
    actions + reasons + effects
}

fn subject_from_wit(s: wit::Subject) -> Subject {
    match s {
        wit::Subject::Actor => Subject::Actor,
        wit::Subject::Target => Subject::Target,
        wit::Subject::Entity(e) => Subject::Entity(entity_from_wit(e)),
    }
}

/// Check what a verdict asks the engine to store or act on: label names
/// usable as keys, label lifetimes within [`MAX_LABEL_TTL_SECONDS`], and
/// entity ids within [`MAX_ID_BYTES`]. A rule cannot make the engine keep
/// a label forever or on an entity no client could name.
fn check_names_and_ttls(v: &wit::Verdict) -> Result<(), String> {
    let check_subject = |subject: &wit::Subject| match subject {
        wit::Subject::Entity(e) if e.id.is_empty() || e.id.len() > MAX_ID_BYTES => Err(format!(
            "names an entity whose id is {} bytes (1 to {MAX_ID_BYTES})",
            e.id.len()
        )),
        _ => Ok(()),
    };
    for action in &v.actions {
        check_subject(&action.subject)?;
    }
    for effect in &v.effects {
        let (subject, label) = match effect {
            wit::Effect::SetLabel(set) => {
                if set.ttl_seconds == 0 || set.ttl_seconds > MAX_LABEL_TTL_SECONDS {
                    return Err(format!(
                        "sets label `{}` for {} s; a label lasts 1 s to {MAX_LABEL_TTL_SECONDS} s",
                        set.label, set.ttl_seconds
                    ));
                }
                (&set.subject, &set.label)
            }
            wit::Effect::ClearLabel(clear) => (&clear.subject, &clear.label),
        };
        check_subject(subject)?;
        crate::manifest::check_name("label", label)?;
    }
    Ok(())
}

/// Check a verdict against the contract and the output cap, and convert it.
pub fn verdict_from_wit(v: wit::Verdict, max_output_bytes: usize) -> Result<Verdict, RuleError> {
    if !(0.0..=1.0).contains(&v.score) {
        return Err(RuleError::BadOutput {
            message: format!("score {} is outside [0, 1]", v.score),
        });
    }
    let size = verdict_size(&v);
    if size > max_output_bytes {
        return Err(RuleError::BadOutput {
            message: format!(
                "verdict is {size} bytes ({} reasons, {} actions, {} effects), over the {max_output_bytes}-byte cap",
                v.reasons.len(),
                v.actions.len(),
                v.effects.len()
            ),
        });
    }
    check_names_and_ttls(&v).map_err(|message| RuleError::BadOutput { message })?;
    Ok(Verdict {
        score: v.score,
        severity: match v.severity {
            wit::Severity::Allow => Severity::Allow,
            wit::Severity::Review => Severity::Review,
            wit::Severity::Limit => Severity::Limit,
            wit::Severity::Block => Severity::Block,
        },
        actions: v
            .actions
            .into_iter()
            .map(|a| RecommendedAction {
                action: match a.action {
                    wit::Action::BlockAccount => Action::BlockAccount,
                    wit::Action::BanGroup => Action::BanGroup,
                    wit::Action::LimitForwarding => Action::LimitForwarding,
                    wit::Action::RemoveMedia => Action::RemoveMedia,
                    wit::Action::ReportToClearinghouse => Action::ReportToClearinghouse,
                },
                subject: subject_from_wit(a.subject),
            })
            .collect(),
        reasons: v
            .reasons
            .into_iter()
            .map(|r| Reason {
                code: r.code,
                explanation: r.explanation,
            })
            .collect(),
        effects: v
            .effects
            .into_iter()
            .map(|e| match e {
                wit::Effect::SetLabel(s) => Effect::SetLabel {
                    subject: subject_from_wit(s.subject),
                    label: s.label,
                    ttl_seconds: s.ttl_seconds,
                },
                wit::Effect::ClearLabel(c) => Effect::ClearLabel {
                    subject: subject_from_wit(c.subject),
                    label: c.label,
                },
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(score: f64, reasons: usize) -> wit::Verdict {
        wit::Verdict {
            score,
            severity: wit::Severity::Review,
            actions: vec![],
            reasons: (0..reasons)
                .map(|i| wit::Reason {
                    code: format!("r{i}"),
                    explanation: "x".repeat(100),
                })
                .collect(),
            effects: vec![],
        }
    }

    #[test]
    fn labels_need_usable_names_and_bounded_lives() {
        let with = |effect: wit::Effect| wit::Verdict {
            effects: vec![effect],
            ..verdict(0.5, 0)
        };
        let set = |label: &str, ttl_seconds: u64| {
            with(wit::Effect::SetLabel(wit::SetLabel {
                subject: wit::Subject::Actor,
                label: label.into(),
                ttl_seconds,
            }))
        };
        assert!(verdict_from_wit(set("spammer", 3600), 1024).is_ok());
        let message = |v| match verdict_from_wit(v, 1024) {
            Err(RuleError::BadOutput { message }) => message,
            other => panic!("{other:?}"),
        };
        assert!(message(set("spammer", u64::MAX)).contains("a label lasts 1 s to"));
        assert!(message(set("spammer", 0)).contains("a label lasts"));
        assert!(message(set("has space", 60)).contains("label `has space`"));
        let nameless = with(wit::Effect::ClearLabel(wit::ClearLabel {
            subject: wit::Subject::Entity(wit::Entity {
                kind: wit::EntityKind::Account,
                id: String::new(),
            }),
            label: "x".into(),
        }));
        assert!(message(nameless).contains("whose id is 0 bytes"));
    }

    #[test]
    fn score_must_be_a_probability() {
        assert!(verdict_from_wit(verdict(0.5, 1), 1024).is_ok());
        for bad in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let err = verdict_from_wit(verdict(bad, 1), 1024).unwrap_err();
            assert_eq!(err.kind(), "bad_output", "score {bad}");
        }
    }

    #[test]
    fn output_cap_counts_strings_and_items() {
        // Each reason: 16 overhead + 2 code + 100 explanation = 118 bytes.
        assert!(verdict_from_wit(verdict(0.1, 8), 8 * 118).is_ok());
        let err = verdict_from_wit(verdict(0.1, 9), 8 * 118).unwrap_err();
        assert!(err.to_string().contains("over the 944-byte cap"), "{err}");
    }
}
