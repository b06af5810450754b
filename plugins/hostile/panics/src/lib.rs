//! A hostile rule that panics on every event.
use enforcer_sdk::*;

/// The rule.
pub struct Panics;

impl Rule for Panics {
    fn manifest() -> Manifest {
        Manifest::new("hostile-panics", "1.0.0").on("message.sent")
    }

    fn evaluate(event: &Event, _: &State) -> Verdict {
        panic!("refusing to judge event {}", event.id())
    }
}

rule!(Panics);
