//! A hostile rule that returns a score of 7, outside [0, 1].
use enforcer_sdk::*;

/// The rule.
pub struct BadScore;

impl Rule for BadScore {
    fn manifest() -> Manifest {
        Manifest::new("hostile-bad-score", "1.0.0").on("message.sent")
    }

    fn evaluate(_: &Event, _: &State) -> Verdict {
        let mut verdict = Verdict::new(Severity::Block, 1.0);
        verdict.score = 7.0;
        verdict
    }
}

rule!(BadScore);
