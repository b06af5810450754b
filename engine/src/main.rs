//! The `enforcer` command line: run the example rules, or check a rule file.
//! The gRPC server (`enforcer serve`) arrives with the data plane.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use enforcer::event::{Entity, Event, Value};
use enforcer::router::RuleSet;
use enforcer::rule::Rule;
use enforcer::runtime::Runtime;
use enforcer::state::{FixedState, StateView};
use enforcer::verdict::RuleOutcome;

#[derive(Parser)]
#[command(
    name = "enforcer",
    version,
    about = "Sandboxed wasm rules over account and group behaviour"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load the built-in example rules and run them on sample traffic.
    Demo {
        /// Print each outcome as a JSON line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Load a rule from a wasm file, print its manifest, and optionally run
    /// it on events read as JSON lines (one `Event` per line).
    Check {
        /// The rule's wasm (a core module built for wasm32-unknown-unknown).
        wasm: PathBuf,
        /// JSON-lines events to evaluate; `-` reads standard input.
        #[arg(long)]
        events: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Demo { json } => demo(json),
        Command::Check { wasm, events } => check(&wasm, events.as_deref()),
    }
}

/// A few minutes of one account's behaviour, ordinary then abusive.
fn sample_traffic() -> Vec<Event> {
    let start = 1_764_000_000_000;
    let forward = |n: i64, chats: i64| {
        Event::new(
            format!("evt-{n}"),
            "message.forwarded",
            start + n * 1_000,
            Entity::account("acct-42"),
        )
        .with("chat_count", Value::Int(chats))
    };
    vec![
        Event::new("evt-0", "message.sent", start, Entity::account("acct-42"))
            .with_target(Entity::account("acct-7")),
        forward(1, 2),
        forward(2, 5),
        forward(3, 45),
    ]
}

fn demo(json: bool) -> anyhow::Result<()> {
    let runtime = Runtime::new()?;
    let mut rules = Vec::new();
    for (name, wasm) in enforcer::examples::EXAMPLE_RULES {
        let rule = runtime
            .load(wasm)
            .with_context(|| format!("loading example rule {name}"))?;
        rules.push(Arc::new(rule));
    }
    let sizes: Vec<usize> = rules.iter().map(|r| r.wasm_bytes()).collect();
    let rule_set = RuleSet::new(rules.into_iter().map(|r| r as Arc<dyn Rule>).collect())?;
    if !json {
        println!("Loaded {} example rule(s):", rule_set.rules().len());
        for (rule, size) in rule_set.rules().iter().zip(sizes) {
            let manifest = rule.manifest();
            println!(
                "  {} {} (sha256 {}…, {} bytes) on {}",
                manifest.name,
                manifest.version,
                &rule.sha256()[..12],
                size,
                manifest.event_kinds.join(", ")
            );
        }
        println!();
    }
    // The account has already forwarded 120 messages in the last hour.
    let state: Arc<dyn StateView> =
        Arc::new(FixedState::new().with_counter(Entity::account("acct-42"), "forwards", 120));
    for event in sample_traffic() {
        let event = Arc::new(event);
        let outcomes = rule_set.evaluate(&event, &state);
        print_outcomes(&event, &outcomes, json)?;
    }
    Ok(())
}

fn print_outcomes(event: &Event, outcomes: &[RuleOutcome], json: bool) -> anyhow::Result<()> {
    if json {
        for outcome in outcomes {
            println!(
                "{}",
                serde_json::json!({ "event": event.id, "outcome": outcome })
            );
        }
        return Ok(());
    }
    println!("{} {} by {}", event.id, event.kind, event.actor);
    if outcomes.is_empty() {
        println!("  (no rule subscribes to {})", event.kind);
    }
    for outcome in outcomes {
        match &outcome.result {
            Ok(verdict) => {
                let reasons: Vec<_> = verdict
                    .reasons
                    .iter()
                    .map(|r| format!("{}: {}", r.code, r.explanation))
                    .collect();
                let actions: Vec<_> = verdict
                    .actions
                    .iter()
                    .map(|a| format!("{:?}", a.action))
                    .collect();
                println!(
                    "  {:<18} {:?} score {:.2} {} {}  [{} fuel, {:?}]",
                    outcome.rule,
                    verdict.severity,
                    verdict.score,
                    actions.join(","),
                    reasons.join("; "),
                    outcome.fuel_used,
                    outcome.elapsed
                );
            }
            Err(error) => println!("  {:<18} error {}: {error}", outcome.rule, error.kind()),
        }
    }
    Ok(())
}

fn check(wasm: &std::path::Path, events: Option<&std::path::Path>) -> anyhow::Result<()> {
    let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let runtime = Runtime::new()?;
    let rule = runtime
        .load(&bytes)
        .with_context(|| format!("loading {}", wasm.display()))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "manifest": rule.manifest(),
            "sha256": rule.sha256(),
            "wasm_bytes": rule.wasm_bytes(),
        }))?
    );
    let Some(events) = events else { return Ok(()) };
    let reader: Box<dyn BufRead> = if events.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(events).with_context(|| format!("opening {}", events.display()))?,
        ))
    };
    let state: Arc<dyn StateView> = Arc::new(FixedState::new());
    for (number, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let event: Event = serde_json::from_str(&line)
            .with_context(|| format!("line {} is not an event", number + 1))?;
        let event = Arc::new(event);
        if !rule.wants(&event.kind) {
            continue;
        }
        print_outcomes(&event, &[rule.evaluate(&event, &state)], true)?;
    }
    Ok(())
}
