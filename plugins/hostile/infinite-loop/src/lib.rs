//! A hostile rule that never returns. The fuel budget stops it; with fuel
//! set high, the epoch deadline does.
use enforcer_sdk::*;

/// The rule.
pub struct InfiniteLoop;

impl Rule for InfiniteLoop {
    fn manifest() -> Manifest {
        Manifest::new("hostile-infinite-loop", "1.0.0").on("message.sent")
    }

    fn evaluate(event: &Event, _: &State) -> Verdict {
        let time = event.occurred_at_ms();
        let mut spins = 0u64;
        while std::hint::black_box(time) != i64::MIN {
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
        Verdict::new(Severity::Allow, spins as f64)
    }
}

rule!(InfiniteLoop);
