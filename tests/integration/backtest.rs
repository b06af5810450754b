//! Backtests on the simulator's labelled traffic: the same input gives the
//! same report byte for byte (whatever the thread count), and its
//! precision, recall, curve and rule counts agree with a count made here
//! from a pipeline's own decisions over the same events.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use enforcer::backtest::report::{BacktestReport, Confusion};
use enforcer::backtest::{self, Format, History, Judging, RuleSetUnderTest};
use enforcer::banks::HashBanks;
use enforcer::decision::Decision;
use enforcer::event::Entity;
use enforcer::examples::{EXAMPLE_POLICY, load_example_rules};
use enforcer::pipeline::{Pipeline, PipelineOptions};
use enforcer::policy::Policy;
use enforcer::runtime::Runtime;
use enforcer::verdict::Severity;
use enforcer_examples::simulator::{self, SimConfig, Simulator, Traffic};

/// The rule the baseline runs without.
const LEFT_OUT: &str = "stranger-spray";

fn traffic() -> Traffic {
    let config = SimConfig {
        seed: 11,
        accounts: 1_500,
        groups: 80,
        duration_seconds: 20 * 60,
        ..SimConfig::default()
    };
    Simulator::new(config).unwrap().run()
}

/// The simulator's files, written where a backtest reads them.
struct Files {
    dir: PathBuf,
    events: PathBuf,
    truth: PathBuf,
}

impl Files {
    fn write(traffic: &Traffic, name: &str) -> Files {
        let dir =
            std::env::temp_dir().join(format!("enforcer-backtest-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let events = dir.join("events.jsonl");
        let truth = dir.join("truth.jsonl");
        simulator::write_events(traffic, std::fs::File::create(&events).unwrap()).unwrap();
        simulator::write_truth(traffic, std::fs::File::create(&truth).unwrap()).unwrap();
        Files { dir, events, truth }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn example_set(runtime: &Runtime, without: Option<&str>) -> RuleSetUnderTest {
    let rules = load_example_rules(runtime)
        .unwrap()
        .into_iter()
        .filter(|rule| Some(rule.name()) != without)
        .collect();
    RuleSetUnderTest {
        rules,
        policy: Policy::parse(EXAMPLE_POLICY).unwrap(),
    }
}

fn judge(
    history: &History,
    candidate: &RuleSetUnderTest,
    baseline: &RuleSetUnderTest,
    banks: &HashBanks,
) -> BacktestReport {
    backtest::judge(
        history,
        &Judging {
            candidate,
            baseline: Some(baseline),
            banks,
            positive: Severity::Limit,
            top_disagreements: 10,
            predictions: false,
        },
        &|_, _| {},
    )
    .unwrap()
}

#[test]
fn a_rerun_gives_the_same_report_byte_for_byte() {
    let traffic = traffic();
    let files = Files::write(&traffic, "rerun");
    let runtime = Runtime::new().unwrap();
    let candidate = example_set(&runtime, None);
    let baseline = example_set(&runtime, Some(LEFT_OUT));
    let banks = traffic.hash_banks();
    let judging = Judging {
        candidate: &candidate,
        baseline: Some(&baseline),
        banks: &banks,
        positive: Severity::Limit,
        top_disagreements: 10,
        predictions: false,
    };
    let render = |report: &BacktestReport| {
        (
            serde_json::to_string_pretty(report).unwrap(),
            backtest::html::render(report),
        )
    };
    // Replayed while parsing, with one and with four threads.
    let streamed = |threads: usize| {
        let judged = backtest::read_and_judge(
            std::slice::from_ref(&files.events),
            &Format::JsonLines,
            Some(&files.truth),
            threads,
            &judging,
            &|_, _| {},
        )
        .unwrap();
        judged.report
    };
    let first = streamed(1);
    let (json, html) = render(&first);
    let (json_again, html_again) = render(&streamed(4));
    assert!(json == json_again, "the JSON report differs between runs");
    assert!(html == html_again, "the HTML report differs between runs");
    // Read whole first, then replayed: the same report again.
    let history = History::read(
        std::slice::from_ref(&files.events),
        &Format::JsonLines,
        Some(&files.truth),
        3,
    )
    .unwrap();
    let (json_read_first, _) = render(&judge(&history, &candidate, &baseline, &banks));
    assert!(
        json == json_read_first,
        "replaying while parsing changes the report"
    );

    // The comparison is not empty: leaving a rule out changes decisions.
    let comparison = first.comparison.as_ref().unwrap();
    assert!(comparison.events_differ > 0);
    assert!(!comparison.top_disagreements.is_empty());
    for disagreement in &comparison.top_disagreements {
        assert!(
            disagreement.candidate.fired.iter().any(|r| r == LEFT_OUT)
                || disagreement.candidate.severity != disagreement.baseline.severity
                || disagreement.candidate.actions != disagreement.baseline.actions,
            "{disagreement:?}"
        );
    }
    assert_eq!(first.input.events, traffic.events.len() as u64);
}

/// What a backtest should find, counted here from a pipeline's decisions.
#[derive(Debug, Default)]
struct Count {
    events: Confusion,
    entities: Confusion,
    /// Each event's score and label.
    scores: Vec<(f64, bool)>,
    severities: [u64; 4],
    fired: BTreeMap<String, (u64, u64)>,
}

fn count(
    traffic: &Traffic,
    set: &RuleSetUnderTest,
    banks: &HashBanks,
    positive: Severity,
) -> Count {
    let options = PipelineOptions {
        banks: banks.clone(),
        max_future_skew_ms: None,
        ..PipelineOptions::default()
    };
    let pipeline = Pipeline::new(set.rules.clone(), set.policy.clone(), options).unwrap();
    let mut events: Vec<_> = traffic.events.iter().collect();
    events.sort_by_key(|labelled| labelled.event.occurred_at_ms);
    let mut count = Count::default();
    let mut acted: HashMap<Entity, bool> = HashMap::new();
    for labelled in events {
        let decision: Arc<Decision> = pipeline.evaluate(labelled.event.clone()).unwrap().decision;
        let abusive = labelled.truth.abusive;
        let severity = decision.outcome.severity;
        add(&mut count.events, severity >= positive, abusive);
        count.scores.push((decision.outcome.score, abusive));
        count.severities[severity as usize] += 1;
        for report in decision
            .rules
            .iter()
            .filter(|r| r.severity > Severity::Allow)
        {
            let entry = count.fired.entry(report.rule.to_string()).or_default();
            entry.0 += 1;
            entry.1 += u64::from(abusive);
        }
        if severity >= positive {
            for action in &decision.outcome.actions {
                acted.insert(action.entity.clone(), true);
            }
        }
    }
    for truth in &traffic.truth {
        add(
            &mut count.entities,
            acted.contains_key(&truth.entity),
            truth.abusive,
        );
    }
    count
}

fn add(confusion: &mut Confusion, predicted: bool, actual: bool) {
    match (predicted, actual) {
        (true, true) => confusion.tp += 1,
        (true, false) => confusion.fp += 1,
        (false, true) => confusion.fn_ += 1,
        (false, false) => confusion.tn += 1,
    }
}

#[test]
fn precision_and_recall_agree_with_an_independent_count() {
    let traffic = traffic();
    let files = Files::write(&traffic, "count");
    let runtime = Runtime::new().unwrap();
    let candidate = example_set(&runtime, None);
    let baseline = example_set(&runtime, Some(LEFT_OUT));
    let banks = traffic.hash_banks();
    let history = History::read(
        std::slice::from_ref(&files.events),
        &Format::JsonLines,
        Some(&files.truth),
        2,
    )
    .unwrap();
    let report = judge(&history, &candidate, &baseline, &banks);

    for (run, set) in [
        (&report.candidate, &candidate),
        (report.baseline.as_ref().unwrap(), &baseline),
    ] {
        let expected = count(&traffic, set, &banks, Severity::Limit);
        assert_eq!(run.events.confusion, expected.events);
        assert_eq!(run.entities.confusion, expected.entities);
        assert_eq!(run.severities, expected.severities);
        let precision =
            expected.events.tp as f64 / (expected.events.tp + expected.events.fp) as f64;
        let recall = expected.events.tp as f64 / (expected.events.tp + expected.events.fn_) as f64;
        assert!((run.events.precision - precision).abs() < 1e-12);
        assert!((run.events.recall - recall).abs() < 1e-12);
        assert!((run.events.f1 - 2.0 * precision * recall / (precision + recall)).abs() < 1e-12);
        // Every example rule acts on some abusive class, so both sets
        // catch something and act on little else.
        assert!(
            expected.events.tp > 0 && expected.entities.tp > 0,
            "{expected:?}"
        );

        // The curve's point at the lowest threshold of at least 0.5 counts
        // exactly the events scored that high.
        let point = run
            .pr_curve
            .iter()
            .find(|p| p.threshold >= 0.5)
            .expect("a point at 0.5 or above");
        let mut at_point = Confusion::default();
        for &(score, abusive) in &expected.scores {
            add(&mut at_point, score >= point.threshold, abusive);
        }
        assert_eq!(point.confusion, at_point);

        // Each rule's fires, and of those on abusive events.
        for stats in &run.rule_stats {
            let (fired, on_abusive) = expected.fired.get(&stats.name).copied().unwrap_or_default();
            assert_eq!(
                (stats.fired, stats.fired_on_abusive),
                (fired, on_abusive),
                "{}",
                stats.name
            );
            let at = run
                .rule_stats
                .iter()
                .position(|s| s.name == stats.name)
                .unwrap();
            assert_eq!(
                run.overlaps[at][at], fired,
                "{}: overlaps with itself",
                stats.name
            );
        }
    }
    // The baseline lacks the rule, so the candidate fires it and the
    // baseline cannot.
    assert!(
        report
            .candidate
            .rule_stats
            .iter()
            .any(|s| s.name == LEFT_OUT && s.fired > 0)
    );
    assert!(
        report
            .baseline
            .as_ref()
            .unwrap()
            .rule_stats
            .iter()
            .all(|s| s.name != LEFT_OUT)
    );
}

/// A browser to open the HTML report in: `ENFORCER_CHROMIUM`, or the first
/// Chromium on the path.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("ENFORCER_CHROMIUM") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "this test opens the HTML report in headless Chromium, and none was found: \
         install it (`apt-get install chromium`, as .ci/run does) or set ENFORCER_CHROMIUM"
    );
}

#[test]
fn the_html_report_draws_every_chart_in_a_headless_browser() {
    let traffic = traffic();
    let runtime = Runtime::new().unwrap();
    let candidate = example_set(&runtime, None);
    let baseline = example_set(&runtime, Some(LEFT_OUT));
    let labelled = traffic
        .events
        .iter()
        .map(|l| backtest::LabelledEvent {
            event: l.event.clone(),
            truth: backtest::Truth {
                abusive: l.truth.abusive,
                class: Some(l.truth.class.to_string()),
            },
        })
        .collect();
    let history = History::from_labelled(labelled, Vec::new());
    let report = judge(&history, &candidate, &baseline, &traffic.hash_banks());
    let html = backtest::html::render(&report);
    let charts = html.matches("class=\"chart\"").count();
    // Four confusion matrices, decisions by severity, the curve, one
    // histogram per class, the rules, their overlaps, the severity matrix.
    assert_eq!(charts, 9 + report.candidate.score_distributions.len());

    let dir = std::env::temp_dir().join(format!("enforcer-backtest-html-{}", std::process::id()));
    let profile = dir.join("profile");
    std::fs::create_dir_all(&profile).unwrap();
    let page = dir.join("report.html");
    std::fs::write(&page, &html).unwrap();
    let output = std::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run headless Chromium");
    let dom = String::from_utf8_lossy(&output.stdout);
    // The page's own check, run by the browser after layout: how many
    // charts have a drawn mark and a nonzero size, out of how many.
    let rendered = dom
        .split("data-charts-rendered=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| {
            panic!(
                "the browser did not run the page's check; stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert_eq!(rendered, format!("{charts}/{charts}"));
    std::fs::remove_dir_all(&dir).unwrap();
}
