//! `enforcer shadow report`: what the shadow rules and candidate builds of
//! a running engine would have changed, read over gRPC and shown as the
//! agreement matrix, the would-block and would-unblock counts, each build's
//! fire rate and cost, and sample disagreements.

use anyhow::Context;
use clap::Subcommand;
use enforcer::api::v1;
use enforcer::api::v1::enforcement_client::EnforcementClient;

/// `enforcer shadow`'s subcommands.
#[derive(Subcommand)]
pub enum ShadowCommand {
    /// Compare the shadow decisions with the live ones over a range of
    /// event time.
    Report {
        /// The engine's data-plane address.
        #[arg(
            long,
            env = "ENFORCER_SERVER",
            default_value = "http://127.0.0.1:50051"
        )]
        server: String,
        /// From this event time (Unix milliseconds); default: the oldest kept.
        #[arg(long, value_name = "MS")]
        from_ms: Option<i64>,
        /// To this event time (Unix milliseconds, exclusive); default: the
        /// newest kept.
        #[arg(long, value_name = "MS")]
        to_ms: Option<i64>,
        /// Only this rule's builds.
        #[arg(long)]
        rule: Option<String>,
        /// Sample disagreements to show.
        #[arg(long, default_value_t = 5)]
        samples: u32,
        /// Print the report as JSON (the gRPC message's fields).
        #[arg(long)]
        json: bool,
    },
}

const SEVERITIES: [&str; 4] = ["allow", "review", "limit", "block"];

/// Run one `enforcer shadow` subcommand.
pub fn run(command: ShadowCommand) -> anyhow::Result<()> {
    let ShadowCommand::Report {
        server,
        from_ms,
        to_ms,
        rule,
        samples,
        json,
    } = command;
    let report = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let mut client = EnforcementClient::connect(server.clone())
                .await
                .with_context(|| format!("cannot reach the engine at {server}"))?
                .max_decoding_message_size(64 << 20);
            client
                .get_shadow_report(v1::ShadowReportRequest {
                    from: from_ms.map(enforcer::api::timestamp_to_proto),
                    to: to_ms.map(enforcer::api::timestamp_to_proto),
                    rule: rule.unwrap_or_default(),
                    max_samples: samples,
                })
                .await
                .map_err(|s| anyhow::anyhow!("{:?}: {}", s.code(), s.message()))
        })?
        .into_inner();
    if json {
        println!("{}", serde_json::to_string_pretty(&as_json(&report))?);
    } else {
        print_report(&report);
    }
    Ok(())
}

fn ms(at: &Option<prost_types::Timestamp>) -> i64 {
    at.as_ref()
        .map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos / 1_000_000))
}

fn counts(counts: &Option<v1::SeverityCounts>) -> Vec<u64> {
    counts.as_ref().map_or(vec![0; 4], |c| c.counts.clone())
}

fn as_json(report: &v1::ShadowReport) -> serde_json::Value {
    serde_json::json!({
        "from_ms": ms(&report.from),
        "to_ms": ms(&report.to),
        "decisions": report.decisions,
        "with_shadow": report.with_shadow,
        "disagreements": report.disagreements,
        "matrix": report.matrix.iter().map(|row| row.counts.clone()).collect::<Vec<_>>(),
        "would_block": report.would_block,
        "would_unblock": report.would_unblock,
        "actions": report.actions.iter().map(|a| serde_json::json!({
            "action": v1::ActionType::try_from(a.action).map_or("?", |t| t.as_str_name()),
            "both": a.both,
            "live_only": a.live_only,
            "shadow_only": a.shadow_only,
        })).collect::<Vec<_>>(),
        "builds": report.builds.iter().map(|b| serde_json::json!({
            "rule": b.rule,
            "sha256": b.sha256,
            "mode": b.mode().as_str_name(),
            "candidate": b.candidate,
            "events": b.events,
            "skipped": b.skipped,
            "errors": b.errors,
            "verdicts": counts(&b.verdicts),
            "fuel": b.fuel,
            "elapsed_us": b.elapsed_us,
        })).collect::<Vec<_>>(),
        "samples": report.samples.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
    })
}

fn print_report(report: &v1::ShadowReport) {
    println!(
        "event time {} to {} (Unix ms): {} decisions, {} with a shadow decision, {} disagree",
        ms(&report.from),
        ms(&report.to),
        report.decisions,
        report.with_shadow,
        report.disagreements
    );
    println!(
        "would block {}, would unblock {}",
        report.would_block, report.would_unblock
    );
    println!();
    println!(
        "live \\ shadow {:>10} {:>10} {:>10} {:>10}",
        "allow", "review", "limit", "block"
    );
    for (name, row) in SEVERITIES.iter().zip(&report.matrix) {
        let cells: Vec<String> = row.counts.iter().map(|c| format!("{c:>10}")).collect();
        println!("{name:<13} {}", cells.join(" "));
    }
    if !report.actions.is_empty() {
        println!();
        println!(
            "{:<26} {:>10} {:>10} {:>12}",
            "action", "both", "live only", "shadow only"
        );
    }
    for agreement in &report.actions {
        let name = v1::ActionType::try_from(agreement.action)
            .map_or("?", |a| a.as_str_name())
            .trim_start_matches("ACTION_TYPE_")
            .to_lowercase();
        println!(
            "{:<26} {:>10} {:>10} {:>12}",
            name, agreement.both, agreement.live_only, agreement.shadow_only
        );
    }
    println!();
    println!(
        "{:<20} {:<12} {:<16} {:>9} {:>8} {:>7} {:>8} {:>12} {:>10}",
        "rule", "build", "mode", "events", "called", "fired", "errors", "fuel/call", "us/call"
    );
    for build in &report.builds {
        let called = build.events - build.skipped;
        let fired: u64 = counts(&build.verdicts)[1..].iter().sum();
        let per_call = |total: u64| total.checked_div(called).unwrap_or(0);
        let mode = format!(
            "{}{}",
            match build.mode() {
                v1::Mode::Enforce => "enforce",
                v1::Mode::Shadow => "shadow",
                v1::Mode::Unspecified => "-",
            },
            if build.candidate { " candidate" } else { "" }
        );
        println!(
            "{:<20} {:<12} {:<16} {:>9} {:>8} {:>7} {:>8} {:>12} {:>10}",
            build.rule,
            &build.sha256[..build.sha256.len().min(12)],
            mode,
            build.events,
            called,
            fired,
            build.errors,
            per_call(build.fuel),
            per_call(build.elapsed_us),
        );
    }
    if !report.samples.is_empty() {
        println!();
        println!("sample disagreements:");
    }
    for decision in &report.samples {
        let severity = |s: i32| {
            v1::Severity::try_from(s).map_or("?", |s| match s {
                v1::Severity::Allow => "allow",
                v1::Severity::Review => "review",
                v1::Severity::Limit => "limit",
                v1::Severity::Block => "block",
                v1::Severity::Unspecified => "?",
            })
        };
        let live = decision.outcome.as_ref().map_or(0, |o| o.severity);
        let shadow = decision
            .shadow
            .as_ref()
            .and_then(|s| s.outcome.as_ref())
            .map_or(0, |o| o.severity);
        let fired: Vec<&str> = decision
            .rules
            .iter()
            .filter(|r| r.severity > v1::Severity::Allow as i32)
            .map(|r| r.rule.as_str())
            .collect();
        println!(
            "  {}  live {} / shadow {}  (fired: {})",
            decision.id,
            severity(live),
            severity(shadow),
            fired.join(", ")
        );
    }
}
