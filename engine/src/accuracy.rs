//! Accuracy against ground truth: confusion matrices, precision, recall and
//! F1, and the accuracy section of a shadow report (the live decisions, the
//! shadow decisions and each rule build, side by side, over the labelled
//! entities). The counting itself is the ground-truth book's
//! ([`crate::ground_truth`]); this module only says what the numbers are.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::policy::Mode;
use crate::verdict::Severity;

/// Predictions against the truth, each judged item (an event, an
/// entity) counted once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// Acted on, abusive.
    pub tp: u64,
    /// Acted on, benign.
    pub fp: u64,
    /// Not acted on, abusive.
    #[serde(rename = "fn")]
    pub fn_: u64,
    /// Not acted on, benign.
    pub tn: u64,
}

impl Confusion {
    /// Count one judgement.
    pub fn add(&mut self, predicted: bool, actual: bool) {
        match (predicted, actual) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fn_ += 1,
            (false, false) => self.tn += 1,
        }
    }

    /// Of those acted on, the share abusive; 0 when none was acted on.
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    /// Of the abusive, the share acted on; 0 when none is abusive.
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// The harmonic mean of precision and recall; 0 when both are 0.
    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }

    /// With its ratios.
    pub fn metrics(self) -> Metrics {
        Metrics {
            precision: self.precision(),
            recall: self.recall(),
            f1: self.f1(),
            confusion: self,
        }
    }
}

/// `part / whole`, and 0 for an empty whole (as scikit-learn reports with
/// `zero_division=0`), so that the report never holds a NaN.
pub fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// A confusion matrix and its ratios.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// The counts.
    pub confusion: Confusion,
    /// tp / (tp + fp).
    pub precision: f64,
    /// tp / (tp + fn).
    pub recall: f64,
    /// 2tp / (2tp + fp + fn).
    pub f1: f64,
}

/// One rule build's predictions: positive for an entity when the rule
/// fired on it at the positive severity or above in the range.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleAccuracy {
    /// The rule.
    pub rule: Arc<str>,
    /// The mode it ran in.
    pub mode: Mode,
    /// Whether it ran as a candidate build.
    pub candidate: bool,
    /// Its predictions against the truth.
    pub matrix: Confusion,
}

/// Live and shadow decisions against ground truth over a range of event
/// time, over every labelled entity the book holds (its latest truth).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Accuracy {
    /// An entity counts as acted on when a decision acted on it at this
    /// severity or above.
    pub positive_severity: Severity,
    /// Entities with a truth: each counted once in every matrix.
    pub labelled_entities: u64,
    /// Of those, entities with at least one decision in the range that
    /// concluded something (above allow, a rule firing, an action or a
    /// label change; the book keeps no other).
    pub joined: u64,
    /// Of those, entities without one: counted as not acted on (a false
    /// negative if abusive, a true negative if benign).
    pub without_decisions: u64,
    /// Entities labelled abusive.
    pub abusive: u64,
    /// Entities labelled benign.
    pub benign: u64,
    /// The live decisions.
    pub live: Confusion,
    /// The shadow decisions (the live decision where there was none).
    pub shadow: Confusion,
    /// Every rule build that fired in the range, by rule, then candidate,
    /// then mode.
    pub rules: Vec<RuleAccuracy>,
    /// Event-id labels held: they overturn decisions but are not counted
    /// in the matrices, which are per entity.
    pub event_labels: u64,
}

impl Default for Accuracy {
    fn default() -> Self {
        Accuracy {
            positive_severity: Severity::Limit,
            labelled_entities: 0,
            joined: 0,
            without_decisions: 0,
            abusive: 0,
            benign: 0,
            live: Confusion::default(),
            shadow: Confusion::default(),
            rules: Vec::new(),
            event_labels: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_follow_their_definitions_and_are_never_nan() {
        let empty = Confusion::default();
        assert_eq!(
            (empty.precision(), empty.recall(), empty.f1()),
            (0.0, 0.0, 0.0)
        );

        let mut m = Confusion::default();
        for (predicted, abusive, times) in [
            (true, true, 6),
            (true, false, 2),
            (false, true, 4),
            (false, false, 9),
        ] {
            for _ in 0..times {
                m.add(predicted, abusive);
            }
        }
        assert_eq!((m.tp, m.fp, m.fn_, m.tn), (6, 2, 4, 9));
        assert!((m.precision() - 0.75).abs() < 1e-12);
        assert!((m.recall() - 0.6).abs() < 1e-12);
        let harmonic = 2.0 * 0.75 * 0.6 / (0.75 + 0.6);
        assert!((m.f1() - harmonic).abs() < 1e-12);

        // Nothing predicted positive: precision 0, recall 0, not NaN.
        let mut silent = Confusion::default();
        silent.add(false, true);
        silent.add(false, false);
        assert_eq!(
            (silent.precision(), silent.recall(), silent.f1()),
            (0.0, 0.0, 0.0)
        );
    }
}
