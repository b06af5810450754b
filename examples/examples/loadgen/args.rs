//! The command line: the flags, the modes, and the checks on how the flags
//! combine.

use anyhow::{bail, ensure};
use clap::{Parser, ValueEnum};

#[derive(Parser)]
pub(crate) struct Args {
    /// The server's address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub(crate) addr: String,
    /// Start a server in this process on a free loopback port (the example
    /// rules, as `enforcer serve` runs them) instead of using `--addr`.
    #[arg(long)]
    pub(crate) spawn_server: bool,
    /// What to measure.
    #[arg(long, value_enum, default_value_t = Mode::Stream)]
    pub(crate) mode: Mode,
    /// Connections: streams in stream mode (one per connection); in unary
    /// mode, calls are spread over them in turn.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub(crate) connections: u32,
    /// Events per second offered, in total. Stream mode: unset sends as
    /// fast as the server answers. Unary mode: default 5,000.
    #[arg(long)]
    pub(crate) rate: Option<f64>,
    /// Unary mode: most calls outstanding at once.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) concurrency: u32,
    /// Stream mode: stop after this many events.
    #[arg(long)]
    pub(crate) events: Option<u64>,
    /// Stop after this many seconds (default 10 when `--events` is unset).
    #[arg(long)]
    pub(crate) seconds: Option<f64>,
    /// Unary mode: seconds of load at the same rate before measuring, so
    /// connection set-up and the server's first threads are not counted.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) warmup: f64,
    /// Simulator seed.
    #[arg(long, default_value_t = 7)]
    pub(crate) seed: u64,
    /// Accounts in the simulated community.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) accounts: usize,
    /// Minutes of traffic per round.
    #[arg(long, default_value_t = 60)]
    pub(crate) minutes: u64,
    /// Ask for compact decisions (`DECISION_VIEW_COMPACT`: no event echoed
    /// back, only the rules that fired or failed) instead of whole ones.
    #[arg(long)]
    pub(crate) compact: bool,
    /// No progress line on stderr.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Print the results as one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
    /// Soak: every this many seconds, activate another build of a rule
    /// through the control plane (two builds in turn).
    #[arg(long)]
    pub(crate) swap_every: Option<f64>,
    /// The control plane's address, for `--swap-every`.
    #[arg(long, default_value = "http://127.0.0.1:50052")]
    pub(crate) admin_addr: String,
    /// A control-plane token, for `--swap-every`.
    #[arg(long, env = "ENFORCER_ADMIN_TOKEN", hide_env_values = true)]
    pub(crate) admin_token: Option<String>,
    /// Soak: every this many seconds, send the hostile corpus and check
    /// each refusal.
    #[arg(long)]
    pub(crate) hostile_every: Option<f64>,
    /// Soak: sample this process's resident memory (the server's pid).
    #[arg(long)]
    pub(crate) watch_pid: Option<u32>,
    /// Seconds between memory samples.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) sample_every: f64,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub(crate) enum Mode {
    /// `EvaluateStream`: throughput.
    Stream,
    /// `Evaluate` at a fixed offered rate: latency.
    Unary,
    /// `grpc.health.v1.Health/Check` at a fixed offered rate, measured as
    /// `unary` is: the floor that the transport and this machine set, the
    /// baseline for `unary`'s figures.
    Health,
}

/// Refuse flag combinations that would measure something else than asked.
pub(crate) fn check(args: &Args) -> anyhow::Result<()> {
    if let Some(rate) = args.rate {
        ensure!(
            rate.is_finite() && rate > 0.0,
            "--rate must be a positive number, not {rate}"
        );
    }
    if let Some(seconds) = args.seconds {
        ensure!(
            seconds.is_finite() && seconds > 0.0,
            "--seconds must be positive, not {seconds}"
        );
    }
    ensure!(
        args.warmup.is_finite() && args.warmup >= 0.0,
        "--warmup must be 0 or more"
    );
    if args.mode != Mode::Stream && args.events.is_some() {
        bail!("--events is for stream mode; unary mode runs for --seconds at --rate");
    }
    for (flag, value) in [
        ("--swap-every", args.swap_every),
        ("--hostile-every", args.hostile_every),
        ("--sample-every", Some(args.sample_every)),
    ] {
        if let Some(seconds) = value {
            ensure!(
                seconds.is_finite() && seconds >= 0.01,
                "{flag} must be at least 0.01 seconds, not {seconds}"
            );
        }
    }
    if args.events.is_some() && args.seconds.is_some() {
        bail!("give --events or --seconds, not both");
    }
    Ok(())
}
