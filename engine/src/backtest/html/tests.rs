//! Tests of the rendered page and of its formatters.

use super::super::report::{
    BacktestReport, ClassCount, ClassOutcome, Comparison, Confusion, CurvePoint, Disagreement,
    EntitySplit, InputSummary, REPORT_FORMAT, RuleBuild, RuleStats, RunReport, SCORE_BINS,
    ScoreDistribution, SeverityMetrics, Side, ratio,
};
use super::format::{Num, clip, count, delta_pp, esc, iso_utc, pct};
use super::render;
use super::svg::{log_ticks, nice_ceiling};
use crate::verdict::Severity;

const HOSTILE_ID: &str = "<script>alert(1)</script>&\"x\"";

fn confusion(tp: u64, fp: u64, fn_: u64, tn: u64) -> Confusion {
    Confusion { tp, fp, fn_, tn }
}

fn rule_stats(name: &str, fired: u64, tp: u64) -> RuleStats {
    RuleStats {
        name: name.to_owned(),
        events: 1000,
        fired,
        fire_rate: ratio(fired, 1000),
        fired_on_abusive: tp,
        events_metrics: confusion(tp, fired - tp, 100 - tp, 900 - (fired - tp)).metrics(),
        errors: 0,
        verdicts: [1000 - fired, fired, 0, 0],
        fired_alone: fired / 2,
    }
}

fn build(name: &str) -> RuleBuild {
    RuleBuild {
        name: name.to_owned(),
        version: "1.0.0".to_owned(),
        sha256: "ab".repeat(32),
    }
}

fn run(events: Confusion, rules: &[&str]) -> RunReport {
    let distribution = |class: &str, abusive: bool| ScoreDistribution {
        class: class.to_owned(),
        abusive,
        bins: (0..SCORE_BINS as u64)
            .map(|i| if abusive { i } else { 20 - i })
            .collect(),
    };
    let outcome = |class: &str, abusive: bool, acted: u64| ClassOutcome {
        class: class.to_owned(),
        abusive,
        events: 500,
        events_acted: acted,
        entities: 50,
        entities_acted: acted / 10,
    };
    RunReport {
        rules: rules.iter().map(|n| build(n)).collect(),
        policy_version: "policy-7".to_owned(),
        severities: [900, 60, 30, 10],
        events: events.metrics(),
        entities: confusion(8, 2, 2, 88).metrics(),
        by_severity: [Severity::Review, Severity::Limit, Severity::Block]
            .into_iter()
            .map(|severity| SeverityMetrics {
                severity,
                events: events.metrics(),
                entities: confusion(8, 2, 2, 88).metrics(),
            })
            .collect(),
        pr_curve: (0..5)
            .map(|i| CurvePoint {
                threshold: f64::from(i) / 4.0,
                confusion: events,
                precision: 0.5 + f64::from(i) / 10.0,
                recall: 1.0 - f64::from(i) / 5.0,
            })
            .collect(),
        score_distributions: vec![
            distribution("benign", false),
            distribution("phishing", true),
            distribution("spam", true),
        ],
        classes: vec![
            outcome("benign", false, 10),
            outcome("phishing", true, 40),
            outcome("spam", true, 30),
        ],
        rule_stats: rules
            .iter()
            .enumerate()
            .map(|(i, n)| rule_stats(n, 40 + 10 * i as u64, 30))
            .collect(),
        overlaps: vec![vec![40, 12], vec![12, 50]],
    }
}

fn side(severity: Severity, score: f64) -> Side {
    Side {
        severity,
        score,
        fired: vec!["mass-forwarding".to_owned()],
        actions: vec!["block account:1".to_owned()],
    }
}

/// Two rules, a baseline, and a disagreement on a hostile event id.
fn full_report() -> BacktestReport {
    let rules = ["mass-forwarding", "new-account-burst"];
    BacktestReport {
        format: REPORT_FORMAT,
        input: InputSummary {
            sources: vec!["day-1.jsonl".to_owned(), "<b>evil</b>.jsonl".to_owned()],
            sha256: "cd".repeat(32),
            events: 12_345,
            duplicate_ids: 2,
            refused_events: 3,
            abusive_events: 100,
            entities: 1_000,
            abusive_entities: 10,
            first_ms: 1_700_000_000_000,
            last_ms: 1_700_086_400_000,
            classes: vec![ClassCount {
                class: "spam".to_owned(),
                abusive: true,
                events: 100,
            }],
        },
        positive: Severity::Limit,
        // Precision 40 / 50 = 80.0%.
        candidate: run(confusion(40, 10, 60, 890), &rules),
        // Precision 30 / 60 = 50.0%.
        baseline: Some(run(confusion(30, 30, 70, 870), &rules[..1])),
        comparison: Some(Comparison {
            events_differ: 37,
            severity_matrix: [[880, 5, 0, 0], [3, 50, 2, 0], [0, 1, 28, 1], [0, 0, 0, 30]],
            candidate_only: EntitySplit {
                abusive: 3,
                benign: 1,
            },
            baseline_only: EntitySplit {
                abusive: 0,
                benign: 2,
            },
            top_disagreements: vec![Disagreement {
                event_id: HOSTILE_ID.to_owned(),
                kind: "message_sent".to_owned(),
                actor: "account:42".to_owned(),
                occurred_at_ms: 1_700_000_000_123,
                class: "spam".to_owned(),
                abusive: true,
                candidate: side(Severity::Block, 0.93),
                baseline: side(Severity::Allow, 0.1),
            }],
        }),
    }
}

/// No baseline, no events, no rules: everything empty.
fn empty_report() -> BacktestReport {
    let empty = Confusion::default().metrics();
    BacktestReport {
        format: REPORT_FORMAT,
        input: InputSummary {
            sources: vec![],
            sha256: String::new(),
            events: 0,
            duplicate_ids: 0,
            refused_events: 0,
            abusive_events: 0,
            entities: 0,
            abusive_entities: 0,
            first_ms: 0,
            last_ms: 0,
            classes: vec![],
        },
        positive: Severity::Review,
        candidate: RunReport {
            rules: vec![],
            policy_version: String::new(),
            severities: [0; 4],
            events: empty,
            entities: empty,
            by_severity: vec![],
            pr_curve: vec![],
            score_distributions: vec![],
            classes: vec![],
            rule_stats: vec![],
            overlaps: vec![],
        },
        baseline: None,
        comparison: None,
    }
}

fn charts(html: &str) -> usize {
    html.matches("class=\"chart\"").count()
}

fn assert_finite_text(html: &str) {
    assert!(!html.contains("NaN"), "NaN in the page");
    assert!(!html.contains("inf"), "inf in the page");
}

#[test]
fn hostile_strings_appear_only_escaped() {
    let html = render(&full_report());
    assert!(!html.contains(HOSTILE_ID));
    assert!(!html.contains("alert(1)</script>"));
    assert!(!html.contains("<b>evil</b>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;x&quot;"));
    assert!(html.contains("&lt;b&gt;evil&lt;/b&gt;.jsonl"));
    // The only script is the self-check.
    assert_eq!(html.matches("<script").count(), 1);
}

#[test]
fn every_chart_of_a_full_report_is_drawn() {
    let html = render(&full_report());
    // 4 confusion matrices, decisions, the PR curve, 3 class
    // histograms, rule bars, rule overlap, the severity matrix.
    assert_eq!(charts(&html), 12);
    for id in [
        "summary",
        "outcomes",
        "scores",
        "comparison",
        "rules",
        "builds",
    ] {
        assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
    }
    assert_eq!(
        html.matches("<circle").count(),
        5 + 1,
        "PR points and legend"
    );
    assert!(html.contains("document.body.dataset.chartsRendered"));
    // Twelve subsections, and each side's rule builds.
    assert_eq!(html.matches("class=\"part\"").count(), 12 + 2);
}

#[test]
fn key_figures_appear() {
    let html = render(&full_report());
    assert!(html.contains("<td>80.0%</td>"), "candidate event precision");
    assert!(html.contains("<td>50.0%</td>"), "baseline event precision");
    assert!(html.contains("<td>+30.0 pp</td>"), "precision change");
    assert!(html.contains("12,345"), "events with a separator");
    assert!(html.contains("2 duplicate ids, 3 refused"), "event caveats");
    assert!(
        html.contains("2023-11-14T22:13:20.123Z"),
        "disagreement time"
    );
    assert!(html.contains("abababababa…"), "short build sha");
}

#[test]
fn no_nan_or_inf_even_from_bad_floats() {
    assert_finite_text(&render(&full_report()));
    let mut report = full_report();
    report.candidate.events.precision = f64::NAN;
    report.candidate.rule_stats[0].fire_rate = f64::INFINITY;
    report.candidate.pr_curve[0].recall = f64::NEG_INFINITY;
    report.candidate.pr_curve[1].precision = f64::NAN;
    if let Some(c) = &mut report.comparison {
        c.top_disagreements[0].candidate.score = f64::NAN;
    }
    assert_finite_text(&render(&report));
}

#[test]
fn an_empty_report_without_baseline_renders() {
    let html = render(&empty_report());
    assert_finite_text(&html);
    // Confusion matrices of events and entities, and decisions.
    assert_eq!(charts(&html), 3);
    assert!(!html.contains("id=\"comparison\""));
    assert!(html.contains("The candidate has no rules."));
    assert!(html.ends_with("</html>\n"));
}

#[test]
fn odd_shapes_do_not_panic() {
    let mut report = full_report();
    report.candidate.pr_curve.truncate(1);
    report.candidate.overlaps = vec![vec![1]];
    report.candidate.score_distributions[0].bins = vec![0; SCORE_BINS];
    report.candidate.score_distributions[1].bins.clear();
    report.baseline = None;
    let html = render(&report);
    assert_finite_text(&html);
    assert!(html.contains("no events"));
    assert_eq!(html.matches("<circle").count(), 1, "the single PR point");
}

#[test]
fn rendering_is_deterministic() {
    assert_eq!(render(&full_report()), render(&full_report()));
}

#[test]
fn formatters() {
    assert_eq!(count(0), "0");
    assert_eq!(count(999), "999");
    assert_eq!(count(1_000), "1,000");
    assert_eq!(count(1_234_567), "1,234,567");
    assert_eq!(pct(0.1234), "12.3%");
    assert_eq!(pct(-0.0), "0.0%");
    assert_eq!(pct(f64::NAN), "–");
    assert_eq!(delta_pp(0.012), "+1.2 pp");
    assert_eq!(delta_pp(-0.012), "−1.2 pp");
    assert_eq!(delta_pp(-0.00001), "0.0 pp");
    assert_eq!(Num(f64::NAN).to_string(), "0");
    assert_eq!(Num(12.0).to_string(), "12");
    assert_eq!(Num(-0.04).to_string(), "0");
    assert_eq!(Num(3.25).to_string(), "3.3");
    assert_eq!(
        esc("a&b<c>\"d'").to_string(),
        "a&amp;b&lt;c&gt;&quot;d&#39;"
    );
    assert_eq!(clip("abcdef", 4), "abc…");
    assert_eq!(clip("äöü", 3), "äöü");
    assert_eq!(nice_ceiling(0.0), 1.0);
    assert_eq!(nice_ceiling(0.03), 0.05);
    assert_eq!(nice_ceiling(7.0), 10.0);
    assert_eq!(log_ticks(0), vec![0]);
    assert_eq!(log_ticks(5), vec![0, 1]);
    assert_eq!(log_ticks(250), vec![0, 10, 100]);
}

#[test]
fn iso_times() {
    assert_eq!(iso_utc(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(iso_utc(-1), "1969-12-31T23:59:59.999Z");
    assert_eq!(iso_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
    assert_eq!(iso_utc(1_709_210_096_789), "2024-02-29T12:34:56.789Z");
    assert_eq!(iso_utc(4_102_444_800_000), "2100-01-01T00:00:00.000Z");
    // The extremes do not overflow.
    assert!(iso_utc(i64::MIN).ends_with('Z'));
    assert!(iso_utc(i64::MAX).ends_with('Z'));
}
