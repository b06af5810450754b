//! What each rule build costs and does, by rule, version and mode: calls,
//! guard skips, call time, fuel, verdicts by severity and errors by kind.
//!
//! Observed for every rule report of every fresh decision, so the hot path
//! is one read lock per decision, one hash of the rule's name per report,
//! and relaxed atomic adds: no allocation, no string copied.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use foldhash::fast::RandomState;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

use super::histogram::IntHistogram;
use super::names::{ERROR_KINDS, SEVERITIES, error_index, mode_name, severity_index};
use crate::decision::RuleReport;
use crate::policy::Mode;

/// Call time buckets, in microseconds (what `RuleReport.elapsed_us`
/// holds): a warm call takes about one, the default deadline is 100 ms.
static CALL_MICROS: [u64; 19] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000,
    200_000, 500_000, 1_000_000,
];

/// Fuel buckets: powers of two from 1024 to 2^24 (the default budget is
/// ten million units; the example rules use a few thousand).
static FUEL_UNITS: [u64; 15] = {
    let mut bounds = [0; 15];
    let mut i = 0;
    while i < bounds.len() {
        bounds[i] = 1024 << i;
        i += 1;
    }
    bounds
};

/// One build's series.
#[derive(Debug)]
struct RuleSeries {
    version: Arc<str>,
    mode: Mode,
    calls: AtomicU64,
    skips: AtomicU64,
    duration: IntHistogram,
    fuel: IntHistogram,
    /// Verdicts of calls that returned one, by severity.
    verdicts: [AtomicU64; SEVERITIES.len()],
    /// Calls that failed, by [`crate::verdict::RuleError::kind`].
    errors: [AtomicU64; ERROR_KINDS.len()],
}

impl RuleSeries {
    fn new(report: &RuleReport) -> Self {
        RuleSeries {
            version: report.version.clone(),
            mode: report.mode,
            calls: AtomicU64::new(0),
            skips: AtomicU64::new(0),
            duration: IntHistogram::new(&CALL_MICROS, 1e6),
            fuel: IntHistogram::new(&FUEL_UNITS, 1.0),
            verdicts: Default::default(),
            errors: Default::default(),
        }
    }

    fn is_for(&self, report: &RuleReport) -> bool {
        self.mode == report.mode
            && (Arc::ptr_eq(&self.version, &report.version) || self.version == report.version)
    }

    fn observe(&self, report: &RuleReport) {
        if report.skipped {
            self.skips.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.duration.observe(report.elapsed_us);
        self.fuel.observe(report.fuel_used);
        match &report.error {
            Some(error) => &self.errors[error_index(error)],
            None => &self.verdicts[severity_index(report.severity)],
        }
        .fetch_add(1, Ordering::Relaxed);
    }
}

/// A build's labels.
fn labels<'a>(rule: &'a str, series: &'a RuleSeries) -> [(&'static str, &'a str); 3] {
    [
        ("rule", rule),
        ("version", &series.version),
        ("mode", mode_name(series.mode)),
    ]
}

/// Reads one of a build's counters.
type CounterOf = fn(&RuleSeries) -> u64;

/// Picks one of a build's histograms.
type HistogramOf = fn(&RuleSeries) -> &IntHistogram;

/// Every build seen, by rule name; a rule has one or two builds at a time
/// (active and candidate), so a short scan follows the hash.
type ByRule = HashMap<Arc<str>, Vec<RuleSeries>, RandomState>;

/// The per-build series of every rule that has reported.
#[derive(Debug, Default)]
pub(super) struct RuleMetrics {
    by_rule: RwLock<ByRule>,
}

fn find<'a>(by_rule: &'a ByRule, report: &RuleReport) -> Option<&'a RuleSeries> {
    by_rule
        .get(&*report.rule)?
        .iter()
        .find(|series| series.is_for(report))
}

impl RuleMetrics {
    fn read(&self) -> RwLockReadGuard<'_, ByRule> {
        self.by_rule.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Count the reports of one decision.
    pub(super) fn observe(&self, reports: &[RuleReport]) {
        let by_rule = self.read();
        for (index, report) in reports.iter().enumerate() {
            match find(&by_rule, report) {
                Some(series) => series.observe(report),
                None => {
                    // A build not seen before: rare (once per build), so
                    // the rest of the decision goes under the write lock.
                    drop(by_rule);
                    self.observe_new(&reports[index..]);
                    return;
                }
            }
        }
    }

    fn observe_new(&self, reports: &[RuleReport]) {
        let mut by_rule = self.by_rule.write().unwrap_or_else(|p| p.into_inner());
        for report in reports {
            let builds = by_rule.entry(report.rule.clone()).or_default();
            let series = match builds.iter().position(|s| s.is_for(report)) {
                Some(position) => &builds[position],
                None => {
                    builds.push(RuleSeries::new(report));
                    builds.last().expect("just pushed")
                }
            };
            series.observe(report);
        }
    }

    /// Write every series.
    pub(super) fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let by_rule = self.read();
        // Sorted, so that a scrape reads the same from one time to the next.
        let mut all: Vec<(&str, &RuleSeries)> = by_rule
            .iter()
            .flat_map(|(rule, builds)| builds.iter().map(move |series| (&**rule, series)))
            .collect();
        all.sort_by(|(a, x), (b, y)| {
            (a, &x.version, mode_name(x.mode)).cmp(&(b, &y.version, mode_name(y.mode)))
        });

        let counters: [(&str, &str, CounterOf); 2] = [
            (
                "rule_calls",
                "Calls of the rule build (rules skipped by their guards are not called).",
                |s| s.calls.load(Ordering::Relaxed),
            ),
            (
                "rule_skips",
                "Events on which the rule build's guards kept it from being called.",
                |s| s.skips.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for &(rule, series) in &all {
                let labels = labels(rule, series);
                ConstCounter::new(value(series)).encode(family.encode_family(&labels)?)?;
            }
        }

        let histograms: [(&str, &str, HistogramOf); 2] = [
            (
                "rule_call_duration_seconds",
                "Wall-clock time of the rule build's calls.",
                |s| &s.duration,
            ),
            (
                "rule_fuel_used",
                "Fuel (wasm instructions, roughly) the rule build's calls used, reset included.",
                |s| &s.fuel,
            ),
        ];
        for (name, help, histogram) in histograms {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
            for &(rule, series) in &all {
                let labels = labels(rule, series);
                histogram(series).encode(family.encode_family(&labels)?)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "rule_verdicts",
            "Verdicts the rule build returned, by severity (allow included; a failed call returns none).",
            None,
            MetricType::Counter,
        )?;
        for &(rule, series) in &all {
            for (severity, count) in SEVERITIES.iter().zip(&series.verdicts) {
                let [rule, version, mode] = labels(rule, series);
                let labels = [rule, version, mode, ("severity", severity.name())];
                ConstCounter::new(count.load(Ordering::Relaxed))
                    .encode(family.encode_family(&labels)?)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "rule_errors",
            "Calls of the rule build that failed, by kind (out_of_fuel, deadline, trap, state, ...).",
            None,
            MetricType::Counter,
        )?;
        for &(rule, series) in &all {
            for (kind, count) in ERROR_KINDS.iter().zip(&series.errors) {
                let [rule, version, mode] = labels(rule, series);
                let labels = [rule, version, mode, ("kind", *kind)];
                ConstCounter::new(count.load(Ordering::Relaxed))
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
