//! Generate seeded, labelled traffic as JSON lines.
//!
//! ```text
//! cargo run --release -p enforcer-examples --example simulate -- \
//!     --seed 7 --accounts 5000 --groups 300 --minutes 60 \
//!     --out events.jsonl --truth truth.jsonl --bank bank.jsonl
//! ```
//!
//! Events go to `--out`, or to stdout without it; each line is
//! `{"event": …, "truth": {"class": …, "abusive": …}}`. `--truth` lists every
//! account and group with its class, `--bank` the simulated `known-csam` hash
//! bank. A summary goes to stderr.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use enforcer_examples::simulator::{self, SimConfig, Simulator, Summary};

/// Generate seeded, labelled messaging-platform traffic as JSON lines.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Seed: one seed and configuration always give the same output.
    #[arg(long, default_value_t = SimConfig::default().seed)]
    seed: u64,
    /// Accounts of every class.
    #[arg(long, default_value_t = SimConfig::default().accounts)]
    accounts: usize,
    /// Groups, ordinary and CSAM.
    #[arg(long, default_value_t = SimConfig::default().groups)]
    groups: usize,
    /// Simulated minutes.
    #[arg(long, default_value_t = SimConfig::default().duration_seconds / 60)]
    minutes: u64,
    /// Start of the simulated time, in milliseconds since the Unix epoch.
    #[arg(long, default_value_t = SimConfig::default().start_ms, allow_negative_numbers = true)]
    start_ms: i64,
    /// Share of events arriving a few seconds late (0 keeps event order).
    #[arg(long, default_value_t = SimConfig::default().late_share)]
    late_share: f64,
    /// Share of accounts that are spammers.
    #[arg(long, default_value_t = SimConfig::default().spammer_share)]
    spammer_share: f64,
    /// Share of accounts that are mass-forwarders.
    #[arg(long, default_value_t = SimConfig::default().mass_forwarder_share)]
    mass_forwarder_share: f64,
    /// Share of accounts in CSAM rings.
    #[arg(long, default_value_t = SimConfig::default().csam_ring_share)]
    csam_ring_share: f64,
    /// Share of groups that are CSAM groups.
    #[arg(long, default_value_t = SimConfig::default().csam_group_share)]
    csam_group_share: f64,
    /// Share of accounts that are bots created during the run.
    #[arg(long, default_value_t = SimConfig::default().new_account_bot_share)]
    bot_share: f64,
    /// Events file (JSON lines); stdout when absent.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Entity truth file (JSON lines).
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Hash bank file (JSON lines).
    #[arg(long)]
    bank: Option<PathBuf>,
}

impl Args {
    fn config(&self) -> anyhow::Result<SimConfig> {
        let duration_seconds = self
            .minutes
            .checked_mul(60)
            .context("--minutes is too large")?;
        Ok(SimConfig {
            seed: self.seed,
            accounts: self.accounts,
            groups: self.groups,
            duration_seconds,
            start_ms: self.start_ms,
            late_share: self.late_share,
            spammer_share: self.spammer_share,
            mass_forwarder_share: self.mass_forwarder_share,
            csam_ring_share: self.csam_ring_share,
            csam_group_share: self.csam_group_share,
            new_account_bot_share: self.bot_share,
            ..SimConfig::default()
        })
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let simulator = Simulator::new(args.config()?).context("invalid simulation settings")?;

    let started = Instant::now();
    let traffic = simulator.run();
    let generated = started.elapsed();

    match &args.out {
        Some(path) => simulator::write_events(&traffic, create(path)?)
            .with_context(|| format!("writing events to {}", path.display()))?,
        None => match simulator::write_events(&traffic, io::stdout().lock()) {
            // The reader stopped early (`| head`), which is not a failure.
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {}
            result => result.context("writing events to stdout")?,
        },
    }
    if let Some(path) = &args.truth {
        simulator::write_truth(&traffic, create(path)?)
            .with_context(|| format!("writing truth to {}", path.display()))?;
    }
    if let Some(path) = &args.bank {
        simulator::write_bank(&traffic, create(path)?)
            .with_context(|| format!("writing the bank to {}", path.display()))?;
    }

    let mut stderr = io::stderr().lock();
    writeln!(stderr, "{}", Summary::of(&traffic))?;
    writeln!(
        stderr,
        "generated in {:.2?}, total {:.2?}",
        generated,
        started.elapsed()
    )?;
    // A million events are tens of millions of small allocations; freeing
    // them one by one takes longer than generating them, and the process
    // is about to exit anyway.
    std::mem::forget(traffic);
    Ok(())
}

fn create(path: &Path) -> anyhow::Result<File> {
    File::create(path).with_context(|| format!("creating {}", path.display()))
}
