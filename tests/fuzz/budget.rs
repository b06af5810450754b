//! The time budget each fuzz target runs under, and the loop that spends
//! it on batches of proptest cases.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngSeed, TestCaseResult, TestError, TestRunner};

/// Seconds per target unless `ENFORCER_FUZZ_SECONDS` says otherwise.
const DEFAULT_SECONDS: f64 = 15.0;

/// Cases per batch: the deadline is checked between batches, so a batch is
/// kept short.
const BATCH_CASES: u32 = 64;

/// The time each target may spend.
pub fn budget() -> Duration {
    let seconds = match std::env::var("ENFORCER_FUZZ_SECONDS") {
        Ok(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or_else(|| panic!("ENFORCER_FUZZ_SECONDS={text:?} is not a number of seconds")),
        Err(_) => DEFAULT_SECONDS,
    };
    Duration::from_secs_f64(seconds)
}

/// The run's seed: `ENFORCER_FUZZ_SEED` to replay a run, else the clock.
fn seed() -> u64 {
    match std::env::var("ENFORCER_FUZZ_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("ENFORCER_FUZZ_SEED={text:?} is not a u64")),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    }
}

/// Run `test` on cases drawn from `strategy` until the budget is spent (at
/// least one batch), failing with the shrunk input and the seed that
/// replays it. Returns the number of cases run, and writes it to stderr
/// (past the test harness's capture, so that CI logs show it).
pub fn fuzz<S: Strategy>(
    name: &str,
    strategy: S,
    test: impl Fn(S::Value) -> TestCaseResult,
) -> u64 {
    let seed = seed();
    let started = Instant::now();
    let deadline = started + budget();
    let cases = AtomicU64::new(0);
    let mut batch = 0u64;
    loop {
        // Each batch its own runner with its own seed derived from the
        // run's: a runner counts successes across runs, and a fixed seed
        // per batch makes any failure replayable.
        let config = Config {
            cases: BATCH_CASES,
            failure_persistence: None,
            rng_seed: RngSeed::Fixed(seed.wrapping_add(batch)),
            ..Config::default()
        };
        let result = TestRunner::new(config).run(&strategy, |value| {
            cases.fetch_add(1, Ordering::Relaxed);
            test(value)
        });
        match result {
            Ok(()) => {}
            Err(TestError::Fail(reason, input)) => panic!(
                "fuzz {name}: {reason}\nshrunk input: {input:?}\n\
                 replay with ENFORCER_FUZZ_SEED={seed} (batch {batch})"
            ),
            Err(TestError::Abort(reason)) => {
                panic!("fuzz {name}: aborted: {reason} (ENFORCER_FUZZ_SEED={seed})")
            }
        }
        batch += 1;
        if Instant::now() >= deadline {
            break;
        }
    }
    let cases = cases.into_inner();
    let _ = writeln!(
        std::io::stderr(),
        "fuzz {name}: {cases} cases in {:.1} s (ENFORCER_FUZZ_SEED={seed})",
        started.elapsed().as_secs_f64()
    );
    cases
}
