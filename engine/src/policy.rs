//! The policy: how each rule takes part in decisions (its mode, weight,
//! failure mode and veto), how verdicts combine into one decision, and the
//! counters every rule may read. Written as TOML by policy authors; every
//! mistake is refused with the line it is on.
//!
//! ```toml
//! version = "2026-11-28.1"        # recorded in every decision
//!
//! [combine]
//! strategy = "weighted_score"     # or "highest_severity"
//! review = 0.4                    # combined-score thresholds
//! limit = 0.7
//! block = 0.9
//! fail_closed_severity = "review" # the least a fail-closed rule's error yields
//!
//! [defaults]                      # for rules the policy does not name
//! mode = "enforce"                # enforce, shadow or disabled
//! weight = 1.0
//! failure = "open"                # open or closed
//! veto = false
//!
//! [rules.known-hash-match]
//! failure = "closed"
//! veto = true                     # its block stands on its own
//!
//! [counters.reports_received]     # readable by every rule by this name
//! event_kinds = ["report.filed"]
//! key = "target"
//! aggregation = "distinct_actors" # count, sum, distinct, distinct_actors, distinct_targets
//! window_seconds = 86400
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::manifest::{CounterSpec, Manifest};
use crate::verdict::Severity;

/// Whether a rule's verdicts act.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Its verdicts shape the live decision and its effects change state.
    Enforce,
    /// It runs on live traffic, but only the shadow decision sees its
    /// verdicts, and its effects are never applied.
    Shadow,
    /// It does not run.
    Disabled,
}

/// What a rule's error means for the decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// The error is recorded and the rule contributes nothing.
    Open,
    /// The error is recorded and the decision is at least the policy's
    /// `fail_closed_severity`: an entity a high-stakes rule could not judge
    /// is not waved through.
    Closed,
}

/// How verdicts combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The most severe verdict wins; the score is the highest weighted score.
    HighestSeverity,
    /// Weighted scores combine as independent evidence,
    /// `1 - Π(1 - min(1, weight × score))`, and the thresholds map the
    /// result to a severity. A veto rule's block stands regardless.
    WeightedScore,
}

/// Combined-score thresholds for [`Strategy::WeightedScore`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// At or above: review.
    pub review: f64,
    /// At or above: limit.
    pub limit: f64,
    /// At or above: block.
    pub block: f64,
}

impl Thresholds {
    /// The severity a combined score reaches.
    pub fn severity(&self, score: f64) -> Severity {
        if score >= self.block {
            Severity::Block
        } else if score >= self.limit {
            Severity::Limit
        } else if score >= self.review {
            Severity::Review
        } else {
            Severity::Allow
        }
    }
}

/// How one rule takes part in decisions.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RulePolicy {
    /// Enforce, shadow or disabled.
    pub mode: Mode,
    /// Multiplies the rule's score when scores combine.
    pub weight: f64,
    /// What its errors mean.
    pub failure: FailureMode,
    /// Whether its block verdict blocks on its own.
    pub veto: bool,
}

impl Default for RulePolicy {
    fn default() -> Self {
        RulePolicy {
            mode: Mode::Enforce,
            weight: 1.0,
            failure: FailureMode::Open,
            veto: false,
        }
    }
}

/// A parsed, validated policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Recorded in every decision.
    pub version: String,
    /// How verdicts combine.
    pub strategy: Strategy,
    /// Score thresholds (used by the weighted strategy).
    pub thresholds: Thresholds,
    /// The least severity a fail-closed rule's error gives the decision.
    pub fail_closed_severity: Severity,
    /// For rules not named below.
    pub defaults: RulePolicy,
    /// Per rule, with the line its table starts on.
    pub rules: BTreeMap<String, (RulePolicy, usize)>,
    /// Counters every rule may read, with the line each is declared on.
    pub counters: Vec<(CounterSpec, usize)>,
}

/// A policy that cannot be used, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", line.map(|l| format!("policy line {l}: ")).unwrap_or_default())]
pub struct PolicyError {
    /// The 1-based line of the mistake, when it has one.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl PolicyError {
    fn at(line: usize, message: impl Into<String>) -> Self {
        PolicyError {
            line: Some(line),
            message: message.into(),
        }
    }
}

impl Default for Policy {
    /// Every rule enforces with weight 1, fails open, no veto; the most
    /// severe verdict wins.
    fn default() -> Self {
        Policy::parse("version = \"default\"").expect("the default policy parses")
    }
}

impl Policy {
    /// Read and parse a policy file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            line: None,
            message: format!("cannot read {}: {e}", path.display()),
        })?;
        Policy::parse(&text)
    }

    /// Parse and validate policy text.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let raw: raw::Policy = toml::from_str(text).map_err(|e| PolicyError {
            line: e.span().map(|span| line_of(span.start)),
            message: e.message().to_string(),
        })?;

        let version = raw.version.get_ref().trim().to_string();
        if version.is_empty() || version.len() > 128 {
            return Err(PolicyError::at(
                line_of(raw.version.span().start),
                "version must be 1 to 128 characters",
            ));
        }

        let combine_line = raw.combine.as_ref().map_or(1, |c| line_of(c.span().start));
        let combine = raw.combine.map(Spanned::into_inner).unwrap_or_default();
        // Each threshold is checked on its own line; their order on the
        // table's.
        let threshold = |name: &str, value: Option<Spanned<f64>>, default: f64| {
            let Some(value) = value else {
                return Ok(default);
            };
            let (line, value) = (line_of(value.span().start), value.into_inner());
            if value > 0.0 && value <= 1.0 {
                Ok(value)
            } else {
                Err(PolicyError::at(
                    line,
                    format!("threshold `{name}` is {value}; it must be in (0, 1]"),
                ))
            }
        };
        let thresholds = Thresholds {
            review: threshold("review", combine.review, 0.4)?,
            limit: threshold("limit", combine.limit, 0.7)?,
            block: threshold("block", combine.block, 0.9)?,
        };
        if !(thresholds.review <= thresholds.limit && thresholds.limit <= thresholds.block) {
            return Err(PolicyError::at(
                combine_line,
                format!(
                    "thresholds must rise review <= limit <= block; got {} / {} / {}",
                    thresholds.review, thresholds.limit, thresholds.block
                ),
            ));
        }
        let fail_closed_severity = combine.fail_closed_severity.unwrap_or(Severity::Review);
        if fail_closed_severity == Severity::Allow {
            return Err(PolicyError::at(
                combine_line,
                "fail_closed_severity `allow` would make failing closed the same as failing open",
            ));
        }

        let defaults_line = raw.defaults.as_ref().map_or(1, |d| line_of(d.span().start));
        let defaults = raw
            .defaults
            .map(Spanned::into_inner)
            .unwrap_or_default()
            .resolve(&RulePolicy::default(), defaults_line, &line_of)?;

        let mut rules = BTreeMap::new();
        for (name, table) in raw.rules {
            let line = line_of(table.span().start);
            let rule = table.into_inner().resolve(&defaults, line, &line_of)?;
            rules.insert(name, (rule, line));
        }

        let mut counters = Vec::new();
        for (name, table) in raw.counters {
            let line = line_of(table.span().start);
            let spec = table.into_inner().into_spec(name, line)?;
            // Checked the way a manifest's counters are, one at a time so
            // that each error names its own counter's line.
            let alone = Manifest {
                name: "policy".into(),
                version: version.clone(),
                event_kinds: vec!["policy".into()],
                counters: vec![spec.clone()],
                guards: Vec::new(),
            };
            alone.validate().map_err(|message| {
                PolicyError::at(line, format!("counter `{}`: {message}", spec.name))
            })?;
            counters.push((spec, line));
        }

        Ok(Policy {
            version,
            strategy: combine.strategy.unwrap_or(Strategy::HighestSeverity),
            thresholds,
            fail_closed_severity,
            defaults,
            rules,
            counters,
        })
    }

    /// How the rule named `name` takes part.
    pub fn for_rule(&self, name: &str) -> RulePolicy {
        self.rules
            .get(name)
            .map_or(self.defaults, |(rule, _)| *rule)
    }

    /// Check that every rule the policy names is loaded: a misspelt name
    /// would otherwise silently leave the real rule on the defaults.
    pub fn check_rules<'a>(
        &self,
        loaded: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), PolicyError> {
        let loaded: Vec<&str> = loaded.into_iter().collect();
        for (name, (_, line)) in &self.rules {
            if !loaded.contains(&name.as_str()) {
                return Err(PolicyError::at(
                    *line,
                    format!(
                        "names rule `{name}`, which is not loaded (loaded: {})",
                        loaded.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The policy as written, before defaults and validation.
mod raw {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use toml::Spanned;

    use super::{FailureMode, Mode, PolicyError, RulePolicy, Strategy};
    use crate::manifest::{Aggregation, CounterFilter, CounterKey, CounterSpec};
    use crate::verdict::Severity;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Policy {
        pub version: Spanned<String>,
        pub combine: Option<Spanned<Combine>>,
        pub defaults: Option<Spanned<Rule>>,
        #[serde(default)]
        pub rules: BTreeMap<String, Spanned<Rule>>,
        #[serde(default)]
        pub counters: BTreeMap<String, Spanned<Counter>>,
    }

    #[derive(Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Combine {
        pub strategy: Option<Strategy>,
        pub review: Option<Spanned<f64>>,
        pub limit: Option<Spanned<f64>>,
        pub block: Option<Spanned<f64>>,
        pub fail_closed_severity: Option<Severity>,
    }

    #[derive(Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Rule {
        pub mode: Option<Mode>,
        pub weight: Option<Spanned<f64>>,
        pub failure: Option<FailureMode>,
        pub veto: Option<bool>,
    }

    /// Heaviest weight accepted: a weight is a multiplier on a score in
    /// [0, 1], and anything larger is almost surely a typo.
    const MAX_WEIGHT: f64 = 100.0;

    impl Rule {
        /// Fill in from `defaults`; `line` is the table's, `line_of` turns
        /// a byte offset into a line.
        pub fn resolve(
            self,
            defaults: &RulePolicy,
            line: usize,
            line_of: &dyn Fn(usize) -> usize,
        ) -> Result<RulePolicy, PolicyError> {
            let (weight_line, weight) = match self.weight {
                Some(weight) => (line_of(weight.span().start), weight.into_inner()),
                None => (line, defaults.weight),
            };
            if !(0.0..=MAX_WEIGHT).contains(&weight) {
                return Err(PolicyError::at(
                    weight_line,
                    format!("weight {weight} is outside 0 to {MAX_WEIGHT}"),
                ));
            }
            Ok(RulePolicy {
                mode: self.mode.unwrap_or(defaults.mode),
                weight,
                failure: self.failure.unwrap_or(defaults.failure),
                veto: self.veto.unwrap_or(defaults.veto),
            })
        }
    }

    #[derive(Clone, Copy, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum AggregationName {
        Count,
        Sum,
        Distinct,
        DistinctActors,
        DistinctTargets,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct TextEquals {
        pub attribute: String,
        pub equals: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Counter {
        pub event_kinds: Vec<String>,
        pub key: Option<CounterKey>,
        pub aggregation: AggregationName,
        /// The attribute a sum or distinct count reads.
        pub attribute: Option<String>,
        pub window_seconds: u32,
        pub only_if: Option<String>,
        pub only_if_not: Option<String>,
        pub only_if_text: Option<TextEquals>,
    }

    impl Counter {
        pub fn into_spec(self, name: String, line: usize) -> Result<CounterSpec, PolicyError> {
            let needs_attribute = matches!(
                self.aggregation,
                AggregationName::Sum | AggregationName::Distinct
            );
            let aggregation = match (self.aggregation, self.attribute) {
                (AggregationName::Sum, Some(a)) => Aggregation::Sum(a),
                (AggregationName::Distinct, Some(a)) => Aggregation::Distinct(a),
                (AggregationName::Count, None) => Aggregation::Count,
                (AggregationName::DistinctActors, None) => Aggregation::DistinctActors,
                (AggregationName::DistinctTargets, None) => Aggregation::DistinctTargets,
                (_, attribute) => {
                    let message = if needs_attribute {
                        format!("counter `{name}` needs an `attribute` to aggregate")
                    } else {
                        format!(
                            "counter `{name}` has `attribute = {:?}`, which its aggregation does not read",
                            attribute.unwrap_or_default()
                        )
                    };
                    return Err(PolicyError::at(line, message));
                }
            };
            let filter = match (self.only_if, self.only_if_not, self.only_if_text) {
                (None, None, None) => CounterFilter::All,
                (Some(a), None, None) => CounterFilter::IsTrue(a),
                (None, Some(a), None) => CounterFilter::IsFalse(a),
                (None, None, Some(t)) => CounterFilter::TextEquals(t.attribute, t.equals),
                _ => {
                    return Err(PolicyError::at(
                        line,
                        format!(
                            "counter `{name}` has more than one of only_if, only_if_not, only_if_text"
                        ),
                    ));
                }
            };
            Ok(CounterSpec {
                name,
                event_kinds: self.event_kinds,
                key: self.key.unwrap_or(CounterKey::Actor),
                aggregation,
                filter,
                window_seconds: self.window_seconds,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Aggregation, CounterFilter, CounterKey};

    const FULL: &str = r#"
version = "2026-11-28.1"

[combine]
strategy = "weighted_score"
review = 0.3
limit = 0.6
block = 0.85
fail_closed_severity = "limit"

[defaults]
mode = "shadow"
weight = 0.5

[rules.known-hash-match]
mode = "enforce"
failure = "closed"
veto = true

[rules.report-velocity]
weight = 2.0

[counters.spam_reporters]
event_kinds = ["report.filed"]
key = "target"
aggregation = "distinct_actors"
window_seconds = 86400
only_if_text = { attribute = "reason", equals = "spam" }
"#;

    fn error(text: &str) -> PolicyError {
        Policy::parse(text).unwrap_err()
    }

    #[test]
    fn parses_every_setting() {
        let policy = Policy::parse(FULL).unwrap();
        assert_eq!(policy.version, "2026-11-28.1");
        assert_eq!(policy.strategy, Strategy::WeightedScore);
        assert_eq!(policy.thresholds.severity(0.84), Severity::Limit);
        assert_eq!(policy.thresholds.severity(0.85), Severity::Block);
        assert_eq!(policy.fail_closed_severity, Severity::Limit);
        let hash = policy.for_rule("known-hash-match");
        assert_eq!(
            hash,
            RulePolicy {
                mode: Mode::Enforce,
                weight: 0.5,
                failure: FailureMode::Closed,
                veto: true
            }
        );
        // Unset fields come from [defaults], not from the built-in defaults.
        assert_eq!(policy.for_rule("report-velocity").mode, Mode::Shadow);
        assert_eq!(policy.for_rule("report-velocity").weight, 2.0);
        assert_eq!(policy.for_rule("anything-else").mode, Mode::Shadow);
        assert_eq!(policy.rules["report-velocity"].1, 20);
        let (counter, line) = &policy.counters[0];
        assert_eq!(*line, 23);
        assert_eq!(counter.key, CounterKey::Target);
        assert_eq!(counter.aggregation, Aggregation::DistinctActors);
        assert_eq!(
            counter.filter,
            CounterFilter::TextEquals("reason".into(), "spam".into())
        );
    }

    #[test]
    fn the_default_policy_enforces_everything_by_severity() {
        let policy = Policy::default();
        assert_eq!(policy.strategy, Strategy::HighestSeverity);
        assert_eq!(policy.for_rule("x"), RulePolicy::default());
    }

    #[test]
    fn unknown_keys_name_their_line() {
        let e = error("version = \"1\"\n\n[rules.a]\nwieght = 2.0\n");
        assert_eq!(e.line, Some(4));
        assert!(e.message.contains("unknown field `wieght`"), "{e}");
        let e = error("version = \"1\"\npolcy = 3\n");
        assert_eq!(e.line, Some(2));
        assert!(
            e.to_string()
                .starts_with("policy line 2: unknown field `polcy`"),
            "{e}"
        );
    }

    #[test]
    fn impossible_values_name_their_line() {
        let e = error("version = \"1\"\n[rules.a]\nmode = \"enforced\"\n");
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("enforced"), "{e}");

        let e = error("version = \"1\"\n\n[rules.a]\nweight = -1.0\n");
        assert_eq!(e.line, Some(4));
        assert!(e.message.contains("weight -1"), "{e}");

        let e = error("version = \"1\"\n[combine]\nreview = 0.8\nlimit = 0.5\n");
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("must rise"), "{e}");

        let e = error("version = \"1\"\n[combine]\nreview = 0.4\nblock = 1.5\n");
        assert_eq!(e.line, Some(4));
        assert!(e.message.contains("`block` is 1.5"), "{e}");

        let e = error("version = \"1\"\n[combine]\nfail_closed_severity = \"allow\"\n");
        assert!(e.message.contains("same as failing open"), "{e}");

        let e = error("version = \"\"\n");
        assert_eq!(e.line, Some(1));
    }

    #[test]
    fn bad_counters_name_their_line() {
        let counter = |body: &str| {
            format!(
                "version = \"1\"\n\n[counters.c]\nevent_kinds = [\"x\"]\nwindow_seconds = 60\n{body}"
            )
        };
        let e = error(&counter("aggregation = \"sum\"\n"));
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("needs an `attribute`"), "{e}");
        let e = error(&counter(
            "aggregation = \"count\"\nonly_if = \"a\"\nonly_if_not = \"b\"\n",
        ));
        assert!(e.message.contains("more than one"), "{e}");
        let e = error(&counter("aggregation = \"distinct_actors\"\n"));
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("always 1"), "{e}");
        let e = error(&counter("aggregation = \"count\"\nwindow = 5\n"));
        assert_eq!(e.line, Some(7));
        // A problem the counter's name does not appear in still names its line.
        let e = error(
            "version = \"1\"\n\n\n[counters.c]\nevent_kinds = [\"a b\"]\nwindow_seconds = 60\naggregation = \"count\"\n",
        );
        assert_eq!(e.line, Some(4));
        assert!(
            e.message.contains("counter `c`: ") && e.message.contains("' '"),
            "{e}"
        );
    }

    #[test]
    fn rules_the_policy_names_must_be_loaded() {
        let policy = Policy::parse(FULL).unwrap();
        assert!(
            policy
                .check_rules(["known-hash-match", "report-velocity", "x"])
                .is_ok()
        );
        let e = policy.check_rules(["known-hash-match"]).unwrap_err();
        assert_eq!(e.line, Some(20));
        assert!(
            e.message.contains("`report-velocity`, which is not loaded"),
            "{e}"
        );
    }
}
