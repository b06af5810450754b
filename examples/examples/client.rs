//! A first gRPC client for the engine: it tells a short spam story, one
//! `Evaluate` call per event, prints each decision, then reads the
//! account's decisions back with `GetDecision` and `ListDecisions`.
//!
//! The story: a two-hour-old account messages 22 strangers (the example
//! rule `stranger-spray` sends it to review from the 20th), then 16 of them
//! block it or report it for spam, and its next message gets it blocked.
//! The event vocabulary is in `plugins/EVENTS.md`.
//!
//! Run a server (`cargo run --release -p enforcer -- serve`), then:
//! `cargo run -p enforcer-examples --example client -- --addr http://127.0.0.1:50051`

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Parser;
use enforcer::api::v1;
use enforcer::api::v1::enforcement_client::EnforcementClient;
use enforcer::api::v1::value::Kind;
use tonic::transport::Channel;

#[derive(Parser)]
struct Args {
    /// The engine's address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut client = connect(&Args::parse().addr).await?;
    let mut story = Story::new()?;
    let spammer = story.account("spammer");

    println!("A two-hour-old account messages strangers:");
    for n in 0..22 {
        let event = story.message_to_stranger(&spammer, n, 7_200 + 10 * n as i64);
        evaluate(&mut client, event).await?;
    }
    println!("Its recipients push back:");
    for n in 0..16 {
        let (kind, attributes) = match n < 8 {
            true => ("account.blocked", vec![]),
            false => ("report.filed", vec![("reason", Kind::Text("spam".into()))]),
        };
        let recipient = story.account(&format!("stranger-{n}"));
        let event = story.event(kind, recipient, Some(spammer.clone()), attributes);
        evaluate(&mut client, event).await?;
    }
    println!("And it sends one more message:");
    let last = story.message_to_stranger(&spammer, 22, 7_500);
    // Every decision is kept (up to the server's log capacity) under `dec-`
    // and the event id: what an appeal or an audit looks up later.
    let decision_id = format!("dec-{}", last.id);
    evaluate(&mut client, last).await?;

    let decision = client
        .get_decision(v1::GetDecisionRequest { decision_id })
        .await
        .context("GetDecision")?
        .into_inner();
    println!(
        "\nGetDecision {}: sequence {}",
        decision.id, decision.sequence
    );
    print_decision(&decision);

    // Decisions about one entity, as actor, target or the subject of an
    // action, newest first: the account's history for a reviewer.
    let request = v1::ListDecisionsRequest {
        entity: Some(spammer.clone()),
        page_size: 5,
        ..Default::default()
    };
    let page = client
        .list_decisions(request)
        .await
        .context("ListDecisions")?;
    let page = page.into_inner();
    println!(
        "\nListDecisions {} (newest first, a page of 5):",
        spammer.id
    );
    for decision in &page.decisions {
        println!("  {} {}", decision.id, severity(decision));
    }
    if !page.next_page_token.is_empty() {
        println!("  ... more with page_token {:?}", page.next_page_token);
    }
    Ok(())
}

/// A client on one HTTP/2 connection. tonic needs a scheme; a bare
/// `host:port` is taken as plain-text `http://`.
async fn connect(addr: &str) -> anyhow::Result<EnforcementClient<Channel>> {
    let url = match addr.contains("://") {
        true => addr.to_string(),
        false => format!("http://{addr}"),
    };
    let channel = Channel::from_shared(url.clone())
        .with_context(|| format!("--addr {addr}: not a URL such as http://127.0.0.1:50051"))?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {url}: is `enforcer serve` running?"))?;
    Ok(EnforcementClient::new(channel))
}

/// Makes the story's events. Ids are the client's to choose and must be
/// unique (a repeated id is a retry and gets the first decision), so every
/// id carries a per-run tag: the example can run again against the same
/// server and tell a fresh story. Events are dated now: the engine refuses
/// events dated more than five minutes ahead of its clock, and rules count
/// behaviour in windows of event time.
struct Story {
    tag: String,
    sent: usize,
}

impl Story {
    fn new() -> anyhow::Result<Story> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
        let tag = format!("{:x}", now.as_millis());
        Ok(Story { tag, sent: 0 })
    }

    fn account(&self, name: &str) -> v1::Entity {
        v1::Entity {
            r#type: v1::EntityType::Account.into(),
            id: format!("{name}-{}", self.tag),
        }
    }

    fn event(
        &mut self,
        kind: &str,
        actor: v1::Entity,
        target: Option<v1::Entity>,
        attributes: Vec<(&str, Kind)>,
    ) -> v1::Event {
        self.sent += 1;
        let value = |kind| v1::Value { kind: Some(kind) };
        v1::Event {
            id: format!("client-{}-{:03}", self.tag, self.sent),
            kind: kind.into(),
            occurred_at: Some(SystemTime::now().into()),
            actor: Some(actor),
            target,
            attributes: attributes
                .into_iter()
                .map(|(name, kind)| (name.to_string(), value(kind)))
                .collect(),
        }
    }

    /// A message to someone who does not have the sender as a contact:
    /// `stranger-spray` counts these per sender.
    fn message_to_stranger(&mut self, from: &v1::Entity, n: usize, age: i64) -> v1::Event {
        let to = self.account(&format!("stranger-{n}"));
        let attributes = vec![
            ("to_contact", Kind::Boolean(false)),
            ("actor_age_seconds", Kind::Int(age)),
        ];
        self.event("message.sent", from.clone(), Some(to), attributes)
    }
}

/// Evaluate one event and print its decision: one line for an allow, the
/// rules and reasons behind anything more.
async fn evaluate(client: &mut EnforcementClient<Channel>, event: v1::Event) -> anyhow::Result<()> {
    let target = event.target.as_ref().map_or("", |t| t.id.as_str());
    let summary = format!("{} {} -> {}", event.id, event.kind, target);
    let request = v1::EvaluateRequest {
        event: Some(event),
        ..Default::default()
    };
    let response = client
        .evaluate(request)
        .await
        .with_context(|| format!("Evaluate {summary}"))?;
    let response = response.into_inner();
    let decision = response.decision.context("the server sent no decision")?;
    let duplicate = if response.duplicate {
        " (duplicate)"
    } else {
        ""
    };
    println!("  {summary}: {}{duplicate}", severity(&decision));
    if severity(&decision) != "ALLOW" {
        print_decision(&decision);
    }
    Ok(())
}

/// The outcome's actions, and each rule that wanted more than allow or
/// failed, with its reasons.
fn print_decision(decision: &v1::Decision) {
    for action in decision.outcome.iter().flat_map(|o| &o.actions) {
        let entity = action.entity.as_ref().map_or("", |e| e.id.as_str());
        println!(
            "      action {} on {entity}",
            short(action.action().as_str_name())
        );
    }
    for rule in &decision.rules {
        if let Some(error) = &rule.error {
            println!(
                "      rule {} failed: {} {}",
                rule.rule, error.kind, error.message
            );
        } else if rule.severity() > v1::Severity::Allow {
            let severity = short(rule.severity().as_str_name());
            println!(
                "      rule {} says {severity} (score {:.2})",
                rule.rule, rule.score
            );
            for reason in &rule.reasons {
                println!("        {}: {}", reason.code, reason.explanation);
            }
        }
    }
}

fn severity(decision: &v1::Decision) -> &'static str {
    let severity = decision.outcome.as_ref().map(|o| o.severity());
    short(severity.unwrap_or_default().as_str_name())
}

/// `SEVERITY_BLOCK` as `BLOCK`: the enum prefixes are noise on screen.
fn short(name: &str) -> &str {
    let name = name.strip_prefix("SEVERITY_").unwrap_or(name);
    name.strip_prefix("ACTION_TYPE_").unwrap_or(name)
}
