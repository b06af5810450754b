//! Events per second on one core through the whole pipeline (idempotency,
//! behaviour state, every example rule subscribed to each event, the
//! combiner and label effects), with the rules as sandboxed wasm and, in the
//! same run, compiled natively: the baseline the sandbox is measured
//! against. A pipeline with no rules at all shows what state and
//! bookkeeping cost alone.
//!
//! The traffic is the simulator's: an hour of a 10,000-account community by
//! default. Each round runs each configuration on a fresh pipeline over all
//! of it; the best round counts (the machine is shared, so the slowest
//! rounds measure the neighbours). The wasm and native decisions are
//! compared event by event and must agree.
//!
//! Run: `cargo run --release -p enforcer-examples --example throughput`
//! (add `--no-default-features` for the system allocator).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use enforcer::decision::Outcome;
use enforcer::event::Event;
use enforcer::examples::{EXAMPLE_POLICY, load_example_rules};
use enforcer::pipeline::{Pipeline, PipelineOptions};
use enforcer::policy::Policy;
use enforcer::rule::Rule;
use enforcer::runtime::Runtime;
use enforcer_examples::native;
use enforcer_examples::simulator::{SimConfig, Simulator};

/// The allocator the `enforcer` server uses: the pipeline allocates a few
/// small objects per event, which the system allocator serves much slower.
/// Build with `--no-default-features` to measure the system allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    /// Simulator seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Accounts in the simulated community.
    #[arg(long, default_value_t = 10_000)]
    accounts: usize,
    /// Minutes of traffic.
    #[arg(long, default_value_t = 60)]
    minutes: u64,
    /// Rounds per configuration.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Reclaim aged-out state every this many events (the pipeline's
    /// default is 100,000).
    #[arg(long, default_value_t = 100_000)]
    sweep_every: u64,
    /// Call every subscribed rule, ignoring the guards in their manifests:
    /// what the sandbox costs when every event enters it.
    #[arg(long)]
    no_guards: bool,
    /// Do not tally decisions for the shadow report and the ground-truth
    /// book (as a backtest runs): what the tallies cost.
    #[arg(long)]
    no_reports: bool,
    /// Run only the configuration whose name starts with this (`state`,
    /// `native` or `wasm`), to profile it.
    #[arg(long)]
    only: Option<String>,
}

struct Run {
    name: &'static str,
    rules: Vec<Arc<dyn Rule>>,
    times: Vec<Duration>,
    outcomes: Vec<Outcome>,
    rule_calls: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = SimConfig::community(args.seed, args.accounts, args.minutes);
    let traffic = Simulator::new(config)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .run();
    let events: Vec<Event> = traffic.events.iter().map(|e| e.event.clone()).collect();
    let banks = traffic.hash_banks();
    let policy = Policy::parse(EXAMPLE_POLICY).context("example policy")?;
    let runtime = Runtime::new()?;
    let wasm =
        load_example_rules(&runtime).map_err(|(name, e)| anyhow::anyhow!("loading {name}: {e}"))?;
    eprintln!(
        "{} events ({} accounts, {} minutes), {} rounds each",
        events.len(),
        args.accounts,
        args.minutes,
        args.rounds
    );

    let mut runs = [
        Run::new("state only (no rules)", Vec::new()),
        Run::new("native rules", native::example_rules()),
        Run::new("wasm rules", wasm),
    ];
    for round in 0..args.rounds {
        for run in &mut runs {
            if args
                .only
                .as_ref()
                .is_some_and(|only| !run.name.starts_with(only.as_str()))
            {
                continue;
            }
            // The example policy names the example rules, so the run without
            // rules takes the default policy.
            let policy = if run.rules.is_empty() {
                Policy::default()
            } else {
                policy.clone()
            };
            let pipeline = Pipeline::new(
                run.rules.clone(),
                policy,
                PipelineOptions {
                    banks: banks.clone(),
                    sweep_every_events: Some(args.sweep_every),
                    honour_guards: !args.no_guards,
                    keep_reports: !args.no_reports,
                    ..PipelineOptions::default()
                },
            )?;
            let batch = events.clone();
            let keep = round == 0;
            let mut outcomes = Vec::with_capacity(if keep { batch.len() } else { 0 });
            let mut rule_calls = 0;
            let started = Instant::now();
            for event in batch {
                let decision = pipeline.evaluate(event)?.decision;
                if keep {
                    rule_calls += decision.rules.iter().filter(|r| !r.skipped).count();
                    outcomes.push(decision.outcome.clone());
                }
            }
            run.times.push(started.elapsed());
            if keep {
                run.outcomes = outcomes;
                run.rule_calls = rule_calls;
            }
            eprint!(".");
        }
    }
    eprintln!();

    if let Some(only) = &args.only {
        for run in runs.iter().filter(|r| r.name.starts_with(only.as_str())) {
            println!(
                "{}: {:.0} events/s",
                run.name,
                events.len() as f64 / run.best().as_secs_f64()
            );
        }
        return Ok(());
    }
    let (native_run, wasm_run) = (&runs[1], &runs[2]);
    ensure!(
        native_run.outcomes == wasm_run.outcomes,
        "wasm and native decisions differ"
    );
    let fired = wasm_run
        .outcomes
        .iter()
        .filter(|o| o.severity > enforcer::verdict::Severity::Allow)
        .count();
    println!(
        "{} events, {:.2} rule calls per event, {} decisions above allow; wasm and native decisions identical",
        events.len(),
        wasm_run.rule_calls as f64 / events.len() as f64,
        fired
    );
    println!(
        "{:<24} {:>12} {:>12} {:>12}",
        "configuration", "events/s", "us/event", "median ev/s"
    );
    for run in &runs {
        let best = run.best();
        let median = run.median();
        println!(
            "{:<24} {:>12.0} {:>12.3} {:>12.0}",
            run.name,
            events.len() as f64 / best.as_secs_f64(),
            best.as_secs_f64() * 1e6 / events.len() as f64,
            events.len() as f64 / median.as_secs_f64(),
        );
    }
    let ratio = wasm_run.best().as_secs_f64() / native_run.best().as_secs_f64();
    println!("wasm pipeline / native pipeline (time per event, best rounds): {ratio:.2}x");
    Ok(())
}

impl Run {
    fn new(name: &'static str, rules: Vec<Arc<dyn Rule>>) -> Self {
        Run {
            name,
            rules,
            times: Vec::new(),
            outcomes: Vec::new(),
            rule_calls: 0,
        }
    }

    fn best(&self) -> Duration {
        self.times.iter().copied().min().unwrap_or_default()
    }

    fn median(&self) -> Duration {
        let mut times = self.times.clone();
        times.sort();
        times.get(times.len() / 2).copied().unwrap_or_default()
    }
}
