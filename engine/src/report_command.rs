//! `enforcer reports`: the clearing-house report records of a running
//! engine's decisions (`ExportReports`), paged through the decision log and
//! written as JSON lines for the service that files them.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use enforcer::api::v1;
use enforcer::api::v1::enforcement_client::EnforcementClient;
use serde_json::{Value, json};

/// `enforcer reports`'s arguments.
#[derive(Args)]
pub struct ReportsArgs {
    /// The engine's data-plane address.
    #[arg(
        long,
        env = "ENFORCER_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    server: String,
    /// Only decisions logged after this sequence (the `sequence` of the
    /// last record read before); 0: every decision still kept.
    #[arg(long, value_name = "SEQUENCE", default_value_t = 0)]
    after: u64,
    /// Write the records here instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Decisions read per call.
const PAGE: u32 = 1000;

/// Export every report record after `--after`, one JSON object a line.
pub fn run(args: ReportsArgs) -> anyhow::Result<()> {
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let (records, last) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let mut client = EnforcementClient::connect(args.server.clone())
                .await
                .with_context(|| format!("cannot reach the engine at {}", args.server))?
                .max_decoding_message_size(64 << 20);
            let mut after = args.after;
            let mut records = 0u64;
            loop {
                let page = client
                    .export_reports(v1::ExportReportsRequest {
                        after_sequence: after,
                        limit: PAGE,
                    })
                    .await
                    .map_err(|s| anyhow::anyhow!("{:?}: {}", s.code(), s.message()))?
                    .into_inner();
                for report in &page.reports {
                    writeln!(out, "{}", report_json(report))?;
                    records += 1;
                }
                if page.last_sequence == after {
                    return anyhow::Ok((records, after));
                }
                after = page.last_sequence;
            }
        })?;
    out.flush()?;
    eprintln!("{records} report records; resume with --after {last}");
    Ok(())
}

fn report_json(report: &v1::ClearinghouseReport) -> Value {
    let media = report.media.clone().unwrap_or_default();
    json!({
        "decision_id": report.decision_id,
        "sequence": report.sequence,
        "event_id": report.event_id,
        "event_kind": report.event_kind,
        "occurred_at": report.occurred_at.as_ref().map(rfc3339),
        "accounts": report.accounts.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        "groups": report.groups.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        "media": {
            "media_id": media.media_id,
            "pdq_hash": media.pdq_hash,
            "pdq_quality": (media.pdq_quality >= 0).then_some(media.pdq_quality),
            "image_sha256": media.image_sha256,
            "image_md5": media.image_md5,
        },
        "rules": report.rules.iter().map(|r| json!({
            "rule": r.rule,
            "version": r.version,
            "sha256": r.sha256,
            "severity": r.severity().as_str_name(),
            "reasons": r.reasons.iter().map(|x| json!({"code": x.code, "explanation": x.explanation})).collect::<Vec<_>>(),
            "evidence": r.evidence.iter().map(evidence_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "actions": report.actions.iter().map(|a| json!({
            "action": a.action().as_str_name(),
            "entity": a.entity.as_ref().map(|e| e.id.clone()),
        })).collect::<Vec<_>>(),
        "policy_version": report.policy_version,
    })
}

fn evidence_json(evidence: &v1::MatchEvidence) -> Value {
    json!({
        "bank": evidence.bank,
        "query_hash": evidence.query_hash,
        "max_distance": evidence.max_distance,
        "matches": evidence.matches.iter().map(|m| json!({
            "bank": m.bank,
            "entry_id": m.entry_id,
            "entry_hash": m.entry_hash,
            "distance": m.distance,
            "source": m.source,
            "added_at": m.added_at.as_ref().map(rfc3339),
        })).collect::<Vec<_>>(),
        "suppressed_by": evidence.suppressed_by.as_ref().map(|hit| json!({
            "allow_list": hit.allow_list,
            "entry_id": hit.entry_id,
            "distance": hit.distance,
        })),
    })
}

fn rfc3339(timestamp: &prost_types::Timestamp) -> String {
    chrono::DateTime::from_timestamp(timestamp.seconds, timestamp.nanos.max(0) as u32)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}
