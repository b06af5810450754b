//! What an observation moves: every series a scrape shows, checked against
//! the exact set of non-zero samples it should hold.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body::{Body, Frame};
use tower::{Layer, Service, ServiceExt};

use super::*;
use crate::decision::{EnforcementAction, Outcome, RuleReport, ShadowDecision};
use crate::event::{Entity, Event};
use crate::policy::Mode;
use crate::verdict::{Action, RuleError, Severity};

/// Every sample of a scrape, `name{labels}` → value.
fn samples(metrics: &Metrics) -> BTreeMap<String, f64> {
    metrics
        .encode()
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            (series.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

/// The samples that are not zero, build information left out.
fn non_zero(metrics: &Metrics) -> BTreeMap<String, f64> {
    samples(metrics)
        .into_iter()
        .filter(|(series, value)| *value != 0.0 && !series.starts_with("enforcer_build_info"))
        .collect()
}

fn report(rule: &str, version: &str, mode: Mode) -> RuleReport {
    RuleReport {
        rule: rule.into(),
        version: version.into(),
        sha256: "ab".repeat(32).into(),
        mode,
        weight: 1.0,
        veto: false,
        severity: Severity::Allow,
        score: 0.0,
        reasons: Vec::new(),
        actions: Vec::new(),
        fuel_used: 0,
        elapsed_us: 0,
        error: None,
        failed_closed: false,
        skipped: false,
        candidate: false,
        evidence: Vec::new(),
    }
}

/// A blocking decision: one enforcing rule fired, one shadow rule ran out
/// of fuel, one rule was skipped by its guards; the shadow decision
/// differs.
fn blocking_decision() -> Decision {
    let mut decision = Arc::unwrap_or_clone(Decision::allowing(Event::new(
        "e-1",
        "message.sent",
        0,
        Entity::account("a"),
    )));
    let fired = RuleReport {
        severity: Severity::Block,
        score: 1.0,
        fuel_used: 3_000,
        elapsed_us: 7,
        ..report("spray", "1.0.0", Mode::Enforce)
    };
    let failed = RuleReport {
        fuel_used: 10_000_000,
        elapsed_us: 1_500,
        error: Some(RuleError::OutOfFuel { budget: 10_000_000 }),
        ..report("bursty", "2.0.0", Mode::Shadow)
    };
    let skipped = RuleReport {
        skipped: true,
        ..report("hashes", "0.3.0", Mode::Enforce)
    };
    decision.rules = vec![fired, failed, skipped];
    let block = |action| EnforcementAction {
        action,
        entity: Entity::account("a"),
    };
    decision.outcome = Outcome {
        severity: Severity::Block,
        score: 1.0,
        actions: vec![block(Action::BlockAccount), block(Action::RemoveMedia)],
    };
    decision.shadow = Some(ShadowDecision {
        outcome: Outcome {
            severity: Severity::Review,
            score: 0.5,
            actions: Vec::new(),
        },
        label_changes: Vec::new(),
        differs: true,
    });
    decision
}

fn expected(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(s, v)| (s.to_string(), *v)).collect()
}

#[test]
fn a_decision_moves_exactly_its_series() {
    let metrics = Metrics::new();
    assert_eq!(non_zero(&metrics), BTreeMap::new());
    metrics.observe_decision(&blocking_decision());

    let spray = r#"rule="spray",version="1.0.0",mode="enforce""#;
    let bursty = r#"rule="bursty",version="2.0.0",mode="shadow""#;
    let hashes = r#"rule="hashes",version="0.3.0",mode="enforce""#;
    let mut want = vec![
        (
            r#"enforcer_decisions_total{severity="block"}"#.to_string(),
            1.0,
        ),
        (
            r#"enforcer_decision_actions_total{action="block_account"}"#.into(),
            1.0,
        ),
        (
            r#"enforcer_decision_actions_total{action="remove_media"}"#.into(),
            1.0,
        ),
        (
            r#"enforcer_shadow_decisions_total{severity="review"}"#.into(),
            1.0,
        ),
        ("enforcer_shadow_disagreements_total".into(), 1.0),
        (format!("enforcer_rule_calls_total{{{spray}}}"), 1.0),
        (format!("enforcer_rule_calls_total{{{bursty}}}"), 1.0),
        (format!("enforcer_rule_skips_total{{{hashes}}}"), 1.0),
        (
            format!(r#"enforcer_rule_verdicts_total{{{spray},severity="block"}}"#),
            1.0,
        ),
        (
            format!(r#"enforcer_rule_errors_total{{{bursty},kind="out_of_fuel"}}"#),
            1.0,
        ),
    ];
    // Histograms: the sum, the count and the +Inf bucket here; the other
    // buckets below.
    let histogram = |name: &str, labels: &str, value: f64| {
        [
            (format!("{name}_sum{{{labels}}}"), value),
            (format!("{name}_count{{{labels}}}"), 1.0),
            (format!(r#"{name}_bucket{{{labels},le="+Inf"}}"#), 1.0),
        ]
    };
    want.extend(histogram(
        "enforcer_rule_call_duration_seconds",
        spray,
        7e-6,
    ));
    want.extend(histogram(
        "enforcer_rule_call_duration_seconds",
        bursty,
        0.0015,
    ));
    want.extend(histogram("enforcer_rule_fuel_used", spray, 3000.0));
    want.extend(histogram("enforcer_rule_fuel_used", bursty, 1e7));
    let got = non_zero(&metrics);
    let buckets_of = |name: &str, labels: &str| -> Vec<String> {
        let prefix = format!("{name}_bucket{{{labels},le=");
        got.keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .map(|rest| {
                rest.trim_end_matches("\"}")
                    .trim_start_matches('"')
                    .to_string()
            })
            .collect()
    };
    // The smallest bucket holding each value (buckets are cumulative, so
    // every larger one holds it too): 10 µs for 7 µs, 2 ms for 1.5 ms,
    // 4096 for 3000 fuel, 2^24 for the default budget of ten million.
    let lowest = |name: &str, labels: &str| -> f64 {
        buckets_of(name, labels)
            .iter()
            .map(|b| {
                if b == "+Inf" {
                    f64::INFINITY
                } else {
                    b.parse().unwrap()
                }
            })
            .fold(f64::INFINITY, f64::min)
    };
    assert_eq!(lowest("enforcer_rule_call_duration_seconds", spray), 1e-5);
    assert_eq!(lowest("enforcer_rule_call_duration_seconds", bursty), 0.002);
    assert_eq!(lowest("enforcer_rule_fuel_used", spray), 4096.0);
    assert_eq!(lowest("enforcer_rule_fuel_used", bursty), 16_777_216.0);
    // Leave the buckets out of the exact comparison (checked above), and
    // compare everything else exactly.
    let without_buckets: BTreeMap<String, f64> = got
        .iter()
        .filter(|(k, _)| !k.contains("_bucket{") || k.contains("le=\"+Inf\""))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let want: BTreeMap<String, f64> = want.into_iter().collect();
    assert_eq!(without_buckets, want);

    // A second decision with the same builds adds to the same series.
    metrics.observe_decision(&blocking_decision());
    let again = non_zero(&metrics);
    assert_eq!(again[&format!("enforcer_rule_calls_total{{{spray}}}")], 2.0);
    assert_eq!(
        again[&format!("enforcer_rule_fuel_used_sum{{{bursty}}}")],
        2e7
    );
    assert_eq!(again[r#"enforcer_decisions_total{severity="block"}"#], 2.0);
}

#[test]
fn duplicates_and_refusals_are_counted_apart() {
    let metrics = Metrics::new();
    metrics.observe_duplicates(2);
    metrics.observe_refused(Refusal::Invalid, 3);
    metrics.observe_refused(Refusal::StateUnavailable, 0);
    metrics.observe_refused(Refusal::LogUnavailable, 4);
    assert_eq!(
        non_zero(&metrics),
        expected(&[
            ("enforcer_duplicate_events_total", 2.0),
            (r#"enforcer_events_refused_total{reason="invalid"}"#, 3.0),
            (
                r#"enforcer_events_refused_total{reason="log_unavailable"}"#,
                4.0
            ),
        ])
    );
    // Zeros are there too, so that rates start from the first scrape.
    assert_eq!(
        samples(&metrics)[r#"enforcer_events_refused_total{reason="state_unavailable"}"#],
        0.0
    );
    assert_eq!(
        samples(&metrics)[r#"enforcer_build_info{version="0.1.0"}"#],
        1.0
    );
}

#[test]
fn openmetrics_ends_with_eof() {
    let metrics = Metrics::new();
    metrics.observe_duplicates(1);
    let text = metrics.encode_openmetrics();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("enforcer_duplicate_events_total 1\n"),
        "{text}"
    );
}

/// A body of one data frame, then trailers (or not).
struct Answer {
    frames: Vec<Frame<bytes::Bytes>>,
}

impl Body for Answer {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Poll::Ready((!self.frames.is_empty()).then(|| Ok(self.frames.remove(0))))
    }
}

fn trailers(code: i32) -> Frame<bytes::Bytes> {
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", code.into());
    Frame::trailers(trailers)
}

async fn drain<B: Body + Unpin>(mut body: B) {
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        assert!(frame.is_ok());
    }
}

#[tokio::test]
async fn calls_are_counted_by_their_final_status() {
    let metrics = Metrics::new();
    // Answers by path: an error in the headers, an answer with trailers, a
    // stream the client drops before its end.
    let routes = tower::service_fn(|request: http::Request<()>| async move {
        let path = request.uri().path().to_string();
        let mut response = http::Response::new(Answer { frames: Vec::new() });
        if path.ends_with("/Evaluate") {
            response.headers_mut().insert("grpc-status", 3.into());
        } else if path.ends_with("/GetDecision") {
            response.body_mut().frames = vec![Frame::data(bytes::Bytes::from("x")), trailers(0)];
        } else {
            response.body_mut().frames = vec![Frame::data(bytes::Bytes::from("x")), trailers(14)];
        }
        Ok::<_, std::convert::Infallible>(response)
    });
    let mut service = GrpcMetricsLayer::new(Some(&metrics)).layer(routes);
    let call = |path: &str| {
        http::Request::builder()
            .uri(format!("http://engine{path}"))
            .body(())
            .unwrap()
    };
    let service = service.ready().await.unwrap();
    let invalid = service
        .call(call("/enforcement.v1.Enforcement/Evaluate"))
        .await
        .unwrap();
    drain(invalid.into_body()).await;
    for _ in 0..2 {
        let found = service
            .call(call("/enforcement.v1.Enforcement/GetDecision"))
            .await
            .unwrap();
        drain(found.into_body()).await;
    }
    let open = service
        .call(call("/enforcement.v1.Enforcement/WatchDecisions"))
        .await
        .unwrap();
    let in_flight = r#"enforcer_grpc_requests_in_flight{grpc_service="enforcement.v1.Enforcement",grpc_method="WatchDecisions"}"#;
    assert_eq!(samples(&metrics)[in_flight], 1.0);
    drop(open);
    let unknown = service.call(call("/made.Up/Thing")).await.unwrap();
    drain(unknown.into_body()).await;

    let requests = |method: &str, code: &str| {
        format!(
            r#"enforcer_grpc_requests_total{{grpc_service="enforcement.v1.Enforcement",grpc_method="{method}",grpc_code="{code}"}}"#
        )
    };
    let got = samples(&metrics);
    assert_eq!(got[&requests("Evaluate", "INVALID_ARGUMENT")], 1.0);
    assert_eq!(got[&requests("GetDecision", "OK")], 2.0);
    assert_eq!(got[&requests("WatchDecisions", "CANCELLED")], 1.0);
    assert_eq!(
        got[r#"enforcer_grpc_requests_total{grpc_service="unknown",grpc_method="unknown",grpc_code="UNAVAILABLE"}"#],
        1.0
    );
    assert_eq!(got[in_flight], 0.0);
    let durations = r#"enforcer_grpc_request_duration_seconds_count{grpc_service="enforcement.v1.Enforcement",grpc_method="GetDecision"}"#;
    assert_eq!(got[durations], 2.0);
}
