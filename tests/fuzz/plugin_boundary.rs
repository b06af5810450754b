//! Target (c), the sandbox boundary: what a rule returns (its verdict, its
//! manifest) as the contract's values, with anything the types allow,
//! through the engine's conversions and checks. A verdict is accepted
//! exactly when the contract allows it, unchanged; a refusal is a
//! `bad_output` error saying what broke. A manifest that validates is one
//! the engine can rely on.

use enforcer::event::MAX_ID_BYTES;
use enforcer::manifest::{
    Aggregation, CounterFilter, CounterKey, Guard, MAX_WINDOW_SECONDS, Manifest,
};
use enforcer::runtime::Limits;
use enforcer::runtime::boundary::{manifest_from_wit, types as wit, verdict_from_wit};
use enforcer::verdict::{MAX_LABEL_TTL_SECONDS, RuleError};
use proptest::prelude::*;

use crate::budget::fuzz;

/// Names on either side of what a label, counter or kind may be called.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z][a-z0-9_.:-]{0,10}",
        1 => Just(String::new()),
        1 => ".{1,6}",
        1 => (126usize..=130).prop_map(|n| "n".repeat(n)),
        1 => (63usize..=65).prop_map(|n| "é".repeat(n)),
    ]
}

fn entity_id() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9]{1,8}",
        1 => Just(String::new()),
        1 => (MAX_ID_BYTES - 1..=MAX_ID_BYTES + 1).prop_map(|n| "i".repeat(n)),
    ]
}

fn subject() -> impl Strategy<Value = wit::Subject> {
    prop_oneof![
        Just(wit::Subject::Actor),
        Just(wit::Subject::Target),
        (any::<bool>(), entity_id()).prop_map(|(group, id)| {
            let kind = if group {
                wit::EntityKind::Group
            } else {
                wit::EntityKind::Account
            };
            wit::Subject::Entity(wit::Entity { kind, id })
        }),
    ]
}

fn action() -> impl Strategy<Value = wit::RecommendedAction> {
    let action = prop_oneof![
        Just(wit::Action::BlockAccount),
        Just(wit::Action::BanGroup),
        Just(wit::Action::LimitForwarding),
        Just(wit::Action::RemoveMedia),
        Just(wit::Action::ReportToClearinghouse),
    ];
    (action, subject()).prop_map(|(action, subject)| wit::RecommendedAction { action, subject })
}

fn effect() -> impl Strategy<Value = wit::Effect> {
    let ttl = prop_oneof![
        4 => 1..=MAX_LABEL_TTL_SECONDS,
        1 => Just(0u64),
        1 => Just(MAX_LABEL_TTL_SECONDS + 1),
        1 => any::<u64>(),
    ];
    prop_oneof![
        (subject(), name(), ttl).prop_map(|(subject, label, ttl_seconds)| {
            wit::Effect::SetLabel(wit::SetLabel {
                subject,
                label,
                ttl_seconds,
            })
        }),
        (subject(), name()).prop_map(|(subject, label)| wit::Effect::ClearLabel(wit::ClearLabel {
            subject,
            label
        })),
    ]
}

fn score() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => 0.0..=1.0f64,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(-0.0),
        1 => Just(1.0 + f64::EPSILON),
        1 => Just(-f64::MIN_POSITIVE),
        1 => any::<f64>(),
    ]
}

fn verdict() -> impl Strategy<Value = (wit::Verdict, usize)> {
    let severity = prop_oneof![
        Just(wit::Severity::Allow),
        Just(wit::Severity::Review),
        Just(wit::Severity::Limit),
        Just(wit::Severity::Block),
    ];
    let reason =
        (".{0,12}", ".{0,40}").prop_map(|(code, explanation)| wit::Reason { code, explanation });
    let reasons = prop_oneof![
        4 => prop::collection::vec(reason, 0..4),
        // Enough to cross the output cap.
        1 => (100usize..300).prop_map(|n| vec![wit::Reason { code: "c".into(), explanation: "x".repeat(100) }; n]),
    ];
    let cap = prop_oneof![Just(Limits::default().max_output_bytes), 0usize..512];
    (
        score(),
        severity,
        prop::collection::vec(action(), 0..4),
        reasons,
        prop::collection::vec(effect(), 0..4),
        cap,
    )
        .prop_map(|(score, severity, actions, reasons, effects, cap)| {
            (
                wit::Verdict {
                    score,
                    severity,
                    actions,
                    reasons,
                    effects,
                },
                cap,
            )
        })
}

/// The size the contract's output cap counts: each item 16 bytes plus its
/// strings (entity ids, codes, explanations, labels).
fn contract_size(v: &wit::Verdict) -> usize {
    let subject = |s: &wit::Subject| match s {
        wit::Subject::Entity(e) => e.id.len(),
        _ => 0,
    };
    let actions: usize = v.actions.iter().map(|a| 16 + subject(&a.subject)).sum();
    let reasons: usize = v
        .reasons
        .iter()
        .map(|r| 16 + r.code.len() + r.explanation.len())
        .sum();
    let effects: usize = v
        .effects
        .iter()
        .map(|e| match e {
            wit::Effect::SetLabel(s) => 16 + subject(&s.subject) + s.label.len(),
            wit::Effect::ClearLabel(c) => 16 + subject(&c.subject) + c.label.len(),
        })
        .sum();
    actions + reasons + effects
}

fn usable_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Why the contract refuses a verdict (a word its message must hold), in
/// the order the engine checks.
fn verdict_problem(v: &wit::Verdict, cap: usize) -> Option<String> {
    if !(0.0..=1.0).contains(&v.score) {
        return Some("outside [0, 1]".into());
    }
    let size = contract_size(v);
    if size > cap {
        return Some(format!("verdict is {size} bytes"));
    }
    let bad_entity = |s: &wit::Subject| match s {
        wit::Subject::Entity(e) if e.id.is_empty() || e.id.len() > MAX_ID_BYTES => {
            Some(format!("whose id is {} bytes", e.id.len()))
        }
        _ => None,
    };
    if let Some(problem) = v.actions.iter().find_map(|a| bad_entity(&a.subject)) {
        return Some(problem);
    }
    for effect in &v.effects {
        let (subject, label) = match effect {
            wit::Effect::SetLabel(s) => {
                if s.ttl_seconds == 0 || s.ttl_seconds > MAX_LABEL_TTL_SECONDS {
                    return Some(format!("for {} s", s.ttl_seconds));
                }
                (&s.subject, &s.label)
            }
            wit::Effect::ClearLabel(c) => (&c.subject, &c.label),
        };
        if let Some(problem) = bad_entity(subject) {
            return Some(problem);
        }
        if !usable_name(label) {
            return Some("label".into());
        }
    }
    None
}

fn check_verdict((v, cap): (wit::Verdict, usize)) -> Result<(), TestCaseError> {
    let expected = verdict_problem(&v, cap);
    match verdict_from_wit(v.clone(), cap) {
        Err(RuleError::BadOutput { message }) => {
            let word =
                expected.ok_or_else(|| TestCaseError::fail(format!("refused: {message}")))?;
            prop_assert!(message.contains(&word), "{message:?} lacks {word:?}");
        }
        Err(other) => prop_assert!(false, "not a bad_output error: {other:?}"),
        Ok(verdict) => {
            prop_assert_eq!(expected, None);
            prop_assert_eq!(verdict.score.to_bits(), v.score.to_bits());
            prop_assert_eq!(verdict.severity as u8, v.severity as u8);
            prop_assert_eq!(verdict.actions.len(), v.actions.len());
            prop_assert_eq!(verdict.effects.len(), v.effects.len());
            prop_assert_eq!(verdict.reasons.len(), v.reasons.len());
            for (ours, theirs) in verdict.reasons.iter().zip(&v.reasons) {
                prop_assert_eq!(&ours.code, &theirs.code);
                prop_assert_eq!(&ours.explanation, &theirs.explanation);
            }
        }
    }
    Ok(())
}

fn counter_key() -> impl Strategy<Value = wit::CounterKey> {
    prop_oneof![Just(wit::CounterKey::Actor), Just(wit::CounterKey::Target)]
}

fn window() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => 1..=MAX_WINDOW_SECONDS,
        1 => Just(0u32),
        1 => Just(MAX_WINDOW_SECONDS + 1),
        1 => any::<u32>(),
    ]
}

fn counter() -> impl Strategy<Value = wit::CounterSpec> {
    let aggregation = prop_oneof![
        Just(wit::Aggregation::Count),
        name().prop_map(wit::Aggregation::Sum),
        name().prop_map(wit::Aggregation::Distinct),
        Just(wit::Aggregation::DistinctActors),
        Just(wit::Aggregation::DistinctTargets),
    ];
    let filter = prop_oneof![
        Just(wit::CounterFilter::All),
        name().prop_map(wit::CounterFilter::IsTrue),
        name().prop_map(wit::CounterFilter::IsFalse),
        (name(), ".{0,8}").prop_map(wit::CounterFilter::TextEquals),
    ];
    (
        name(),
        prop::collection::vec(name(), 0..3),
        counter_key(),
        aggregation,
        filter,
        window(),
    )
        .prop_map(
            |(name, event_kinds, key, aggregation, filter, window_seconds)| wit::CounterSpec {
                name,
                event_kinds,
                key,
                aggregation,
                filter,
                window_seconds,
            },
        )
}

fn guard() -> impl Strategy<Value = wit::Guard> {
    let float = prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        any::<f64>()
    ];
    prop_oneof![
        (name(), any::<i64>()).prop_map(wit::Guard::IntAtLeast),
        (name(), any::<i64>()).prop_map(wit::Guard::IntBelow),
        (name(), float).prop_map(wit::Guard::FloatAtLeast),
        (name(), counter_key(), window(), any::<u64>()).prop_map(
            |(counter, subject, window_seconds, value)| {
                wit::Guard::CounterAtLeast(wit::CounterAtLeast {
                    counter,
                    subject,
                    window_seconds,
                    value,
                })
            }
        ),
    ]
}

fn manifest() -> impl Strategy<Value = wit::Manifest> {
    (
        name(),
        prop_oneof![".{0,8}", (127usize..=130).prop_map(|n| "v".repeat(n))],
        prop::collection::vec(name(), 0..3),
        prop::collection::vec(counter(), 0..4),
        prop::collection::vec(guard(), 0..3),
    )
        .prop_map(
            |(name, version, event_kinds, counters, guards)| wit::Manifest {
                name,
                version,
                event_kinds,
                counters,
                guards,
            },
        )
}

/// What the engine relies on in a manifest it accepted.
fn sound(m: &Manifest) -> Result<(), String> {
    let names = std::iter::once(&m.name).chain(&m.event_kinds);
    if let Some(bad) = names.clone().find(|n| !usable_name(n)) {
        return Err(format!("unusable name {bad:?}"));
    }
    if m.event_kinds.is_empty() || m.version.len() > 128 {
        return Err("no event kinds, or a long version".into());
    }
    for (index, c) in m.counters.iter().enumerate() {
        let aggregated = match &c.aggregation {
            Aggregation::Sum(a) | Aggregation::Distinct(a) => Some(a),
            _ => None,
        };
        let filtered = match &c.filter {
            CounterFilter::IsTrue(a)
            | CounterFilter::IsFalse(a)
            | CounterFilter::TextEquals(a, _) => Some(a),
            CounterFilter::All => None,
        };
        let self_distinct = matches!(
            (&c.aggregation, c.key),
            (Aggregation::DistinctActors, CounterKey::Actor)
                | (Aggregation::DistinctTargets, CounterKey::Target)
        );
        if !usable_name(&c.name)
            || c.event_kinds.is_empty()
            || !c.event_kinds.iter().all(|k| usable_name(k))
            || [aggregated, filtered]
                .into_iter()
                .flatten()
                .any(|a| !usable_name(a))
            || !(1..=MAX_WINDOW_SECONDS).contains(&c.window_seconds)
            || self_distinct
            || m.counters[..index].iter().any(|o| o.name == c.name)
        {
            return Err(format!("counter {:?} is unusable", c.name));
        }
    }
    for guard in &m.guards {
        match guard {
            Guard::IntAtLeast(a, _) | Guard::IntBelow(a, _) if !usable_name(a) => {
                return Err(format!("guard attribute {a:?}"));
            }
            Guard::FloatAtLeast(a, v) if !usable_name(a) || v.is_nan() => {
                return Err(format!("guard on {a:?} at {v}, which no value reaches"));
            }
            Guard::CounterAtLeast {
                counter,
                window_seconds,
                ..
            } => {
                let declared = m.counters.iter().find(|c| &c.name == counter);
                if declared
                    .is_none_or(|c| *window_seconds == 0 || *window_seconds > c.window_seconds)
                {
                    return Err(format!("guard on counter {counter:?}"));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_manifest(m: wit::Manifest) -> Result<(), TestCaseError> {
    let converted = manifest_from_wit(m.clone());
    prop_assert_eq!(&converted.name, &m.name);
    prop_assert_eq!(&converted.event_kinds, &m.event_kinds);
    prop_assert_eq!(converted.counters.len(), m.counters.len());
    prop_assert_eq!(converted.guards.len(), m.guards.len());
    match converted.validate() {
        Ok(()) => {
            if let Err(problem) = sound(&converted) {
                prop_assert!(
                    false,
                    "accepted an unsound manifest: {problem}: {converted:?}"
                );
            }
        }
        Err(message) => {
            prop_assert!(!message.trim().is_empty());
            prop_assert!(
                sound(&converted).is_err(),
                "refused a sound manifest: {message}"
            );
        }
    }
    Ok(())
}

#[test]
fn verdicts_from_rules_are_checked_exactly() {
    let cases = fuzz("plugin verdicts", verdict(), check_verdict);
    assert!(cases >= 64);
}

#[test]
fn manifests_from_rules_are_checked_soundly() {
    let cases = fuzz("plugin manifests", manifest(), check_manifest);
    assert!(cases >= 64);
}
