//! Live shadow comparison: a candidate rule runs in shadow beside the live
//! set on simulated traffic, and the shadow report's every count agrees
//! with an independent count of the same decisions, over the whole range
//! and over part of it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use enforcer::api::v1;
use enforcer::decision::Decision;
use enforcer::deployment::Stage;
use enforcer::examples::{EXAMPLE_POLICY, example_sources};
use enforcer::registry::{Activation, Caller, RuleSource, SignaturePolicy};
use enforcer::verdict::Severity;
use enforcer_examples::simulator::{SimConfig, Simulator};

use crate::common::plugin;
use crate::grpc_server::TestEngine;

const CANDIDATE: &str = "stranger-spray";

fn index(severity: Severity) -> usize {
    match severity {
        Severity::Allow => 0,
        Severity::Review => 1,
        Severity::Limit => 2,
        Severity::Block => 3,
    }
}

/// What the report should say of `decisions`, counted here from the
/// decisions themselves.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    decisions: u64,
    with_shadow: u64,
    disagreements: u64,
    matrix: [[u64; 4]; 4],
    would_block: u64,
    would_unblock: u64,
    builds: BTreeMap<(String, bool), Tally>,
    /// Action type (wire value) → (both, live only, shadow only).
    actions: BTreeMap<i32, (u64, u64, u64)>,
}

/// One build's (events, skipped, errors, verdicts by severity, fuel).
type Tally = (u64, u64, u64, [u64; 4], u64);

fn expected<'a>(decisions: impl IntoIterator<Item = &'a Arc<Decision>>) -> Expected {
    let mut e = Expected::default();
    for d in decisions {
        let live = d.outcome.severity;
        let shadow = d.shadow.as_ref().map_or(live, |s| s.outcome.severity);
        e.decisions += 1;
        e.with_shadow += u64::from(d.shadow.is_some());
        e.disagreements += u64::from(d.shadow.as_ref().is_some_and(|s| s.differs));
        e.matrix[index(live)][index(shadow)] += 1;
        e.would_block += u64::from(shadow == Severity::Block && live != Severity::Block);
        e.would_unblock += u64::from(live == Severity::Block && shadow != Severity::Block);
        let types = |outcome: &enforcer::decision::Outcome| -> BTreeSet<i32> {
            outcome
                .actions
                .iter()
                .map(|a| enforcer::api::action_to_proto(a.action) as i32)
                .collect()
        };
        let live_types = types(&d.outcome);
        let shadow_types = d
            .shadow
            .as_ref()
            .map_or(live_types.clone(), |s| types(&s.outcome));
        for action in live_types.union(&shadow_types) {
            let entry = e.actions.entry(*action).or_default();
            match (live_types.contains(action), shadow_types.contains(action)) {
                (true, true) => entry.0 += 1,
                (true, false) => entry.1 += 1,
                _ => entry.2 += 1,
            }
        }
        for r in &d.rules {
            let entry = e
                .builds
                .entry((r.rule.to_string(), r.candidate))
                .or_default();
            entry.0 += 1;
            entry.1 += u64::from(r.skipped);
            entry.2 += u64::from(r.error.is_some());
            entry.3[index(r.severity)] += 1;
            entry.4 += r.fuel_used;
        }
    }
    e
}

fn reported(report: &v1::ShadowReport) -> Expected {
    let row = |counts: &v1::SeverityCounts| -> [u64; 4] {
        counts.counts.clone().try_into().expect("four severities")
    };
    let mut matrix = [[0; 4]; 4];
    for (i, counts) in report.matrix.iter().enumerate() {
        matrix[i] = row(counts);
    }
    Expected {
        decisions: report.decisions,
        with_shadow: report.with_shadow,
        disagreements: report.disagreements,
        matrix,
        would_block: report.would_block,
        would_unblock: report.would_unblock,
        actions: report
            .actions
            .iter()
            .map(|a| (a.action, (a.both, a.live_only, a.shadow_only)))
            .collect(),
        builds: report
            .builds
            .iter()
            .map(|b| {
                let verdicts = row(b.verdicts.as_ref().unwrap());
                (
                    (b.rule.clone(), b.candidate),
                    (b.events, b.skipped, b.errors, verdicts, b.fuel),
                )
            })
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shadow_report_agrees_with_an_independent_count() {
    // The live set lacks stranger-spray; it is tried as a shadow candidate.
    let sources = example_sources()
        .into_iter()
        .filter(|(source, _)| !source.origin.ends_with(CANDIDATE))
        .collect();
    let engine = TestEngine::start_with(
        SignaturePolicy {
            allow_unsigned: true,
            ..SignaturePolicy::default()
        },
        sources,
        EXAMPLE_POLICY.to_string(),
    )
    .await;
    let candidate = RuleSource {
        wasm: plugin(CANDIDATE),
        origin: "upload".into(),
        ..RuleSource::default()
    };
    engine
        .registry
        .upload(
            &Caller::internal("analyst"),
            candidate,
            Activation::Candidate(Stage::Shadow),
        )
        .unwrap();

    let traffic = Simulator::new(SimConfig::community(11, 800, 40))
        .unwrap()
        .run();
    let pipeline = engine.registry.pipeline().clone();
    let decisions: Vec<Arc<Decision>> = tokio::task::spawn_blocking(move || {
        traffic
            .events
            .iter()
            .map(|labelled| pipeline.evaluate(labelled.event.clone()).unwrap().decision)
            .collect()
    })
    .await
    .unwrap();

    let mut client = engine.server.client().await;
    let whole = client
        .get_shadow_report(v1::ShadowReportRequest {
            max_samples: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let independent = expected(&decisions);
    assert_eq!(reported(&whole), independent);
    assert!(
        independent.disagreements > 0,
        "the candidate changed something"
    );
    assert!(
        independent
            .actions
            .values()
            .any(|(_, _, shadow_only)| *shadow_only > 0),
        "the candidate would add actions: {:?}",
        independent.actions
    );
    assert!(independent.would_block + independent.matrix[0][2] > 0);
    let candidate = whole
        .builds
        .iter()
        .find(|b| b.rule == CANDIDATE)
        .expect("the candidate's build is reported");
    assert!(candidate.candidate);
    assert_eq!(candidate.mode(), v1::Mode::Shadow);
    assert_eq!(
        candidate.sha256,
        decisions
            .iter()
            .flat_map(|d| &d.rules)
            .find(|r| &*r.rule == CANDIDATE)
            .unwrap()
            .sha256
            .to_string()
    );
    // Samples are disagreements, whole decisions, oldest minute first.
    assert!(!whole.samples.is_empty());
    for sample in &whole.samples {
        let shadow = sample.shadow.as_ref().expect("a shadow decision");
        assert!(shadow.differs, "{}", sample.id);
        assert!(sample.event.is_some());
    }

    // Part of the range: the first ten minutes of event time.
    let start = decisions
        .iter()
        .map(|d| d.event.occurred_at_ms)
        .min()
        .unwrap();
    let minute_start = start - start.rem_euclid(60_000);
    let end = minute_start + 10 * 60_000;
    let part = client
        .get_shadow_report(v1::ShadowReportRequest {
            from: Some(enforcer::api::timestamp_to_proto(minute_start)),
            to: Some(enforcer::api::timestamp_to_proto(end)),
            max_samples: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let in_part = decisions
        .iter()
        .filter(|d| (minute_start..end).contains(&d.event.occurred_at_ms));
    assert_eq!(reported(&part), expected(in_part));
    assert!(part.decisions < whole.decisions);
    assert!(part.samples.len() <= 3);

    // One rule's builds only; the decision counts stay whole.
    let one = client
        .get_shadow_report(v1::ShadowReportRequest {
            rule: CANDIDATE.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.decisions, whole.decisions);
    assert_eq!(one.builds.len(), 1);
    assert_eq!(one.builds[0].mode(), v1::Mode::Shadow);

    // A bad request names its field.
    let error = client
        .get_shadow_report(v1::ShadowReportRequest {
            max_samples: 1000,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert!(
        error.message().starts_with("max_samples:"),
        "{}",
        error.message()
    );
}
