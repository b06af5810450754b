//! A hostile rule that recurses without end. The wasm stack cap stops it.
use enforcer_sdk::*;

/// The rule.
pub struct DeepRecursion;

#[inline(never)]
#[allow(unconditional_recursion)] // The point of this plugin.
fn descend(depth: u64, seed: i64) -> i64 {
    let next = std::hint::black_box(seed.wrapping_mul(31).wrapping_add(depth as i64));
    descend(depth + 1, next).wrapping_add(1)
}

impl Rule for DeepRecursion {
    fn manifest() -> Manifest {
        Manifest::new("hostile-deep-recursion", "1.0.0").on("message.sent")
    }

    fn evaluate(event: &Event, _: &State) -> Verdict {
        let n = descend(0, event.occurred_at_ms());
        Verdict::new(Severity::Allow, n as f64)
    }
}

rule!(DeepRecursion);
