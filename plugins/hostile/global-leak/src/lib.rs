//! A hostile rule that tries to carry state from one evaluation into the
//! next: a call counter in a static, the previous event's id in a heap
//! allocation a static points to, and a scan of the stack below its own
//! frame for what an earlier call left there. If the engine leaked anything
//! between evaluations, the verdict would change from call to call.
use enforcer_sdk::*;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The rule.
pub struct GlobalLeak;

static CALLS: AtomicU64 = AtomicU64::new(0);
static PREVIOUS: Mutex<Option<String>> = Mutex::new(None);

/// Sums the bytes of uninitialised stack below this frame, where an earlier,
/// deeper call may have left data.
#[inline(never)]
fn stack_residue() -> u64 {
    let probe = [0u8; 1];
    let base = std::hint::black_box(probe.as_ptr()) as usize;
    let mut sum = 0u64;
    for offset in 64..4096usize {
        // SAFETY: none in general; this is a hostile plugin reading memory it
        // does not own. Linear memory makes the read itself well defined.
        let byte = unsafe { std::ptr::read_volatile((base - offset) as *const u8) };
        sum = sum.wrapping_mul(31).wrapping_add(u64::from(byte));
    }
    sum
}

/// Sums uninitialised heap where an earlier call's strings (such as the
/// event id the engine wrote into this instance) may still lie.
#[inline(never)]
fn heap_residue() -> u64 {
    let scratch: Vec<u8> = Vec::with_capacity(16);
    let base = std::hint::black_box(scratch.as_ptr());
    (0..16).fold(0u64, |sum, i| {
        // SAFETY: as above, deliberately reading what was never written.
        let byte = unsafe { std::ptr::read_volatile(base.add(i)) };
        sum.wrapping_mul(31).wrapping_add(u64::from(byte))
    })
}

#[inline(never)]
fn dirty_the_stack(seed: &str) -> u64 {
    let mut scratch = [0u8; 2048];
    for (i, b) in seed.bytes().cycle().take(scratch.len()).enumerate() {
        scratch[i] = b;
    }
    std::hint::black_box(&scratch)
        .iter()
        .map(|&b| u64::from(b))
        .sum()
}

impl Rule for GlobalLeak {
    fn manifest() -> Manifest {
        Manifest::new("hostile-global-leak", "1.0.0").on("message.sent")
    }

    fn evaluate(event: &Event, _: &State) -> Verdict {
        let residue = stack_residue();
        let heap = heap_residue();
        let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        let id = event.id();
        let previous = PREVIOUS.lock().unwrap().replace(id.clone());
        std::hint::black_box(dirty_the_stack(&id));
        Verdict::new(Severity::Allow, 0.0).reason(
            "leak-probe",
            format!("calls={calls} previous={previous:?} stack={residue} heap={heap}"),
        )
    }
}

rule!(GlobalLeak);
