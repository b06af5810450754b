//! `enforcer backtest`: replay a labelled history through a candidate rule
//! set and policy (and a baseline beside it), and write the report as JSON
//! and as a self-contained HTML page, and the candidate's prediction for
//! each entity as CSV.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use enforcer::backtest::mapping::CsvMapping;
use enforcer::backtest::report::{BacktestReport, Metrics, RunReport};
use enforcer::backtest::{self, DEFAULT_TOP_DISAGREEMENTS, Format, Judging};
use enforcer::banks::file::read_bank_file;
use enforcer::banks::{Bank, BankKind, HashBanks};
use enforcer::examples::{EXAMPLE_POLICY, load_example_rules};
use enforcer::policy::Policy;
use enforcer::rule::Rule;
use enforcer::runtime::Runtime;
use enforcer::verdict::Severity;
use indicatif::{ProgressBar, ProgressStyle};

/// `enforcer backtest`'s arguments.
#[derive(clap::Args)]
pub struct BacktestArgs {
    /// Labelled history: JSON lines (`{"event": …, "truth": {"abusive": …,
    /// "class": …}}`, as the simulator writes), or CSV with `--mapping`.
    /// Several files are merged in event-time order.
    #[arg(required = true, value_name = "FILE")]
    inputs: Vec<PathBuf>,
    /// Read the inputs as CSV, turning rows into events with this column
    /// mapping (TOML; see `enforcer::backtest::mapping`).
    #[arg(long, value_name = "FILE")]
    mapping: Option<PathBuf>,
    /// Entity labels, one `{"entity": …, "abusive": …, "class": …}` a line
    /// (the simulator's `--truth`); without it an entity's label comes
    /// from its own events.
    #[arg(long, value_name = "FILE")]
    entity_truth: Option<PathBuf>,
    /// The candidate's rule builds (every `*.wasm` in the directory);
    /// default: the built-in example rules.
    #[arg(long, value_name = "DIR")]
    rules: Option<PathBuf>,
    /// The candidate's policy (TOML); default: the example policy.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Compare with the built-in example rules under the example policy
    /// (implied by either `--baseline-*` flag, which replaces one half).
    #[arg(long)]
    baseline: bool,
    /// The baseline's rule builds (every `*.wasm` in the directory).
    #[arg(long, value_name = "DIR")]
    baseline_rules: Option<PathBuf>,
    /// The baseline's policy (TOML).
    #[arg(long, value_name = "FILE")]
    baseline_policy: Option<PathBuf>,
    /// A hash bank, `NAME=FILE` with one `{"id": …, "hash": "<64 hex>"}` a
    /// line (the simulator's `--bank`); repeat for several. Default: the
    /// demo bank the engine serves with.
    #[arg(long = "bank", value_name = "NAME=FILE")]
    banks: Vec<String>,
    /// The least decision severity that counts as acting on an entity.
    #[arg(long, default_value = "limit", value_parser = parse_severity)]
    positive: Severity,
    /// Disagreements with the baseline to list.
    #[arg(long, default_value_t = DEFAULT_TOP_DISAGREEMENTS)]
    top: usize,
    /// Write the JSON report here (`-`: standard output).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the HTML report here.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Write the candidate's prediction for each judged entity here, as
    /// CSV (`entity,label,acted_severity,max_score,decided_severity`; see
    /// `enforcer::backtest::predictions`), for checking the report
    /// elsewhere.
    #[arg(long, value_name = "FILE")]
    predictions: Option<PathBuf>,
    /// Threads for reading the input (default: one per core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn parse_severity(text: &str) -> Result<Severity, String> {
    match text {
        "review" => Ok(Severity::Review),
        "limit" => Ok(Severity::Limit),
        "block" => Ok(Severity::Block),
        other => Err(format!("`{other}` is not review, limit or block")),
    }
}

/// Run a backtest.
pub fn run(args: BacktestArgs) -> anyhow::Result<()> {
    if args.json.is_none() && args.html.is_none() && args.predictions.is_none() {
        anyhow::bail!(
            "say where the report goes: --json FILE (or -), --html FILE and/or --predictions FILE"
        );
    }
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let runtime = Runtime::new()?;
    let candidate = rule_set(&runtime, args.rules.as_deref(), args.policy.as_deref())
        .context("the candidate")?;
    let wants_baseline =
        args.baseline || args.baseline_rules.is_some() || args.baseline_policy.is_some();
    let baseline = wants_baseline
        .then(|| {
            rule_set(
                &runtime,
                args.baseline_rules.as_deref(),
                args.baseline_policy.as_deref(),
            )
        })
        .transpose()
        .context("the baseline")?;
    let banks = banks(&args.banks)?;
    let format = match &args.mapping {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Format::Csv(Box::new(
                CsvMapping::from_toml(&text).with_context(|| format!("{}", path.display()))?,
            ))
        }
        None => Format::JsonLines,
    };

    let runs = 1 + u64::from(baseline.is_some());
    let bar = progress_bar(args.quiet);
    let started = Instant::now();
    let backtest::Judged {
        history,
        report,
        predictions,
    } = backtest::read_and_judge(
        &args.inputs,
        &format,
        args.entity_truth.as_deref(),
        threads,
        &Judging {
            candidate: &candidate,
            baseline: baseline.as_ref(),
            banks: &banks,
            positive: args.positive,
            top_disagreements: args.top,
            predictions: args.predictions.is_some(),
        },
        &|done, events| {
            bar.set_length(events * runs);
            bar.inc(done);
        },
    )?;
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    eprintln!(
        "read and replayed {} events through {} rule set{} in {:.2?}: {:.0} events/s (input sha256 {}…)",
        history.events.len(),
        runs,
        if runs == 1 { "" } else { "s" },
        elapsed,
        history.events.len() as f64 / elapsed.as_secs_f64(),
        &history.sha256[..16],
    );
    print_summary(&report);

    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)? + "\n";
        write_out(path, json.as_bytes())?;
    }
    if let Some(path) = &args.html {
        write_out(path, backtest::html::render(&report).as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &args.predictions {
        let mut csv = Vec::new();
        backtest::predictions::write_csv(&predictions, &mut csv)?;
        write_out(path, &csv)?;
        eprintln!("wrote {} ({} entities)", path.display(), predictions.len());
    }
    Ok(())
}

/// Rules from a directory of builds (or the built-in ones) under a policy
/// file (or the example policy).
fn rule_set(
    runtime: &Runtime,
    rules: Option<&Path>,
    policy: Option<&Path>,
) -> anyhow::Result<backtest::RuleSetUnderTest> {
    let rules = match rules {
        None => load_example_rules(runtime)
            .map_err(|(name, e)| anyhow::anyhow!("loading example rule {name}: {e}"))?,
        Some(dir) => {
            let mut loaded = Vec::new();
            for entry in enforcer::registry::watch_dir::read_dir(dir)
                .with_context(|| format!("reading {}", dir.display()))?
            {
                let rule = runtime
                    .load(&entry.source.wasm)
                    .with_context(|| format!("loading {}", entry.path.display()))?;
                loaded.push(Arc::new(rule) as Arc<dyn Rule>);
            }
            anyhow::ensure!(!loaded.is_empty(), "{} holds no *.wasm rule", dir.display());
            loaded
        }
    };
    let policy = match policy {
        Some(path) => Policy::load(path).with_context(|| format!("policy {}", path.display()))?,
        None => Policy::parse(EXAMPLE_POLICY).context("the example policy")?,
    };
    Ok(backtest::RuleSetUnderTest { rules, policy })
}

/// Hash banks from `NAME=FILE` arguments (bank files: hex or JSON lines),
/// or the demo bank.
fn banks(specs: &[String]) -> anyhow::Result<HashBanks> {
    if specs.is_empty() {
        return Ok(enforcer::demo::banks());
    }
    let mut banks = HashBanks::new();
    for spec in specs {
        let (name, path) = spec
            .split_once('=')
            .with_context(|| format!("--bank {spec}: expected NAME=FILE"))?;
        let entries = read_bank_file(Path::new(path), 0)?;
        banks = banks.with_bank(Bank::build(name, BankKind::matching(), entries)?)?;
    }
    Ok(banks)
}

fn progress_bar(quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    // Its length is known once the input's lines are counted.
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template(
        "replaying {bar:40} {percent:>3}% {human_pos}/{human_len} events ({per_sec}, {eta} left)",
    ) {
        bar.set_style(style);
    }
    bar
}

fn write_out(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if path == Path::new("-") {
        use std::io::Write;
        std::io::stdout().lock().write_all(bytes)?;
        return Ok(());
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn print_summary(report: &BacktestReport) {
    let input = &report.input;
    eprintln!(
        "{} events ({} abusive), {} entities ({} abusive); acting at {:?} or above",
        input.events, input.abusive_events, input.entities, input.abusive_entities, report.positive
    );
    let line = |name: &str, run: &RunReport| {
        let show = |m: &Metrics| {
            format!(
                "precision {:.3} recall {:.3} F1 {:.3}",
                m.precision, m.recall, m.f1
            )
        };
        eprintln!("  {name:<9} events:   {}", show(&run.events));
        eprintln!("  {:<9} entities: {}", "", show(&run.entities));
    };
    line("candidate", &report.candidate);
    if let Some(baseline) = &report.baseline {
        line("baseline", baseline);
    }
    if let Some(comparison) = &report.comparison {
        eprintln!(
            "  {} events decided differently; entities acted on by the candidate only: {} abusive, {} benign; by the baseline only: {} abusive, {} benign",
            comparison.events_differ,
            comparison.candidate_only.abusive,
            comparison.candidate_only.benign,
            comparison.baseline_only.abusive,
            comparison.baseline_only.benign
        );
    }
}
