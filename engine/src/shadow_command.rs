//! `enforcer shadow report`: what the shadow rules and candidate builds of
//! a running engine would have changed, read over gRPC and shown as the
//! agreement matrix, the would-block and would-unblock counts, each build's
//! fire rate and cost, sample disagreements, and the live, shadow and
//! per-rule precision and recall against the ground truth submitted.

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
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
        /// For accuracy: an entity counts as acted on when a decision acted
        /// on it at this severity or above.
        #[arg(long, value_enum, default_value_t = Positive::Limit)]
        positive_severity: Positive,
        /// Print the report as JSON (the gRPC message's fields).
        #[arg(long)]
        json: bool,
    },
}

/// The severities that can count as acting.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Positive {
    /// A human should look.
    Review,
    /// Restrict the entity.
    Limit,
    /// Stop the entity.
    Block,
}

impl Positive {
    fn to_proto(self) -> v1::Severity {
        match self {
            Positive::Review => v1::Severity::Review,
            Positive::Limit => v1::Severity::Limit,
            Positive::Block => v1::Severity::Block,
        }
    }
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
        positive_severity,
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
                    positive_severity: positive_severity.to_proto().into(),
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
        "accuracy": report.accuracy.as_ref().map(accuracy_json),
    })
}

fn matrix_json(matrix: Option<v1::ConfusionMatrix>) -> serde_json::Value {
    let m = matrix.unwrap_or_default();
    serde_json::json!({
        "true_positives": m.true_positives,
        "false_positives": m.false_positives,
        "false_negatives": m.false_negatives,
        "true_negatives": m.true_negatives,
        "precision": m.precision,
        "recall": m.recall,
        "f1": m.f1,
    })
}

fn accuracy_json(accuracy: &v1::Accuracy) -> serde_json::Value {
    serde_json::json!({
        "positive_severity": accuracy.positive_severity().as_str_name(),
        "labelled_entities": accuracy.labelled_entities,
        "joined": accuracy.joined,
        "without_decisions": accuracy.without_decisions,
        "abusive": accuracy.abusive,
        "benign": accuracy.benign,
        "event_labels": accuracy.event_labels,
        "live": matrix_json(accuracy.live),
        "shadow": matrix_json(accuracy.shadow),
        "rules": accuracy.rules.iter().map(|r| serde_json::json!({
            "rule": r.rule,
            "mode": r.mode().as_str_name(),
            "candidate": r.candidate,
            "matrix": matrix_json(r.matrix),
        })).collect::<Vec<_>>(),
    })
}

fn mode_name(mode: v1::Mode, candidate: bool) -> String {
    format!(
        "{}{}",
        match mode {
            v1::Mode::Enforce => "enforce",
            v1::Mode::Shadow => "shadow",
            v1::Mode::Unspecified => "-",
        },
        if candidate { " candidate" } else { "" }
    )
}

fn print_accuracy(accuracy: &v1::Accuracy) {
    let severity = accuracy
        .positive_severity()
        .as_str_name()
        .trim_start_matches("SEVERITY_")
        .to_lowercase();
    println!();
    println!(
        "accuracy against ground truth (acted on: {severity} or above): {} labelled entities \
         ({} abusive, {} benign), {} with decisions in the range, {} without (counted as not \
         acted on); {} event labels (not counted)",
        accuracy.labelled_entities,
        accuracy.abusive,
        accuracy.benign,
        accuracy.joined,
        accuracy.without_decisions,
        accuracy.event_labels,
    );
    if accuracy.labelled_entities == 0 {
        return;
    }
    println!(
        "{:<20} {:<16} {:>6} {:>6} {:>6} {:>6} {:>9} {:>7} {:>6}",
        "", "mode", "tp", "fp", "fn", "tn", "precision", "recall", "f1"
    );
    let row = |name: &str, mode: &str, matrix: Option<v1::ConfusionMatrix>| {
        let m = matrix.unwrap_or_default();
        println!(
            "{:<20} {:<16} {:>6} {:>6} {:>6} {:>6} {:>9.3} {:>7.3} {:>6.3}",
            name,
            mode,
            m.true_positives,
            m.false_positives,
            m.false_negatives,
            m.true_negatives,
            m.precision,
            m.recall,
            m.f1
        );
    };
    row("live decisions", "", accuracy.live);
    row("shadow decisions", "", accuracy.shadow);
    for rule in &accuracy.rules {
        row(
            &rule.rule,
            &mode_name(rule.mode(), rule.candidate),
            rule.matrix,
        );
    }
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
        let mode = mode_name(build.mode(), build.candidate);
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
    if let Some(accuracy) = &report.accuracy {
        print_accuracy(accuracy);
    }
}
