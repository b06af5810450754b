//! A hostile rule that returns about 4 MiB of reasons, far over the cap on
//! what a rule may return.
use enforcer_sdk::*;

/// The rule.
pub struct HugeVerdict;

impl Rule for HugeVerdict {
    fn manifest() -> Manifest {
        Manifest::new("hostile-huge-verdict", "1.0.0").on("message.sent")
    }

    fn evaluate(_: &Event, _: &State) -> Verdict {
        let filler = "x".repeat(4096);
        (0..1024).fold(Verdict::new(Severity::Block, 1.0), |v, i| {
            v.reason(format!("reason-{i}"), filler.clone())
        })
    }
}

rule!(HugeVerdict);
