//! A hostile rule that allocates memory until it runs out. The per-instance
//! memory cap stops it.
use enforcer_sdk::*;

/// The rule.
pub struct MemoryBomb;

impl Rule for MemoryBomb {
    fn manifest() -> Manifest {
        Manifest::new("hostile-memory-bomb", "1.0.0").on("message.sent")
    }

    fn evaluate(_: &Event, _: &State) -> Verdict {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(Vec::with_capacity(1 << 20));
            std::hint::black_box(&hoard);
        }
    }
}

rule!(MemoryBomb);
