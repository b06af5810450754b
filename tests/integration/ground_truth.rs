//! Ground truth joined to past decisions, and overturns on won appeals.
//! Simulated traffic runs with a shadow candidate beside the live rules,
//! the simulator's truth for a sample of entities goes in through
//! `SubmitLabels`, and the shadow report's accuracy is checked against an
//! independent count of the decisions received. A won appeal lifts a block:
//! watched (live, and again from a cursor, never twice), shown by
//! `GetDecision`, its labels gone from the state a later event sees, and
//! nothing lifted twice. Malformed label requests are refused naming the
//! field, and change nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use enforcer::api::v1;
use enforcer::demo::{BANKED_HASH, banks};
use enforcer::deployment::Stage;
use enforcer::event::{Entity, Event, Value};
use enforcer::examples::{EXAMPLE_POLICY, example_sources, load_example_rules};
use enforcer::pipeline::{Pipeline, PipelineOptions};
use enforcer::policy::Policy;
use enforcer::registry::{Activation, Caller, RuleSource, SignaturePolicy};
use enforcer::runtime::Runtime;
use enforcer::server::ServerOptions;
use enforcer_examples::simulator::{SimConfig, Simulator};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;

use crate::common::plugin;
use crate::grpc_server::{TestEngine, TestServer, wire};

type Client = v1::enforcement_client::EnforcementClient<Channel>;

const T0: i64 = 1_764_000_000_000;
const CANDIDATE: &str = "stranger-spray";
const ALLOW: i32 = v1::Severity::Allow as i32;

/// An entity as the test counts it: (wire type, id).
type Key = (i32, String);
/// A rule build as accuracy tells them apart: (rule, wire mode, candidate).
type RuleKey = (String, i32, bool);

fn key(entity: &v1::Entity) -> Key {
    (entity.r#type, entity.id.clone())
}

fn engine_key(entity: &Entity) -> Key {
    key(&enforcer::api::entity_to_proto(entity))
}

fn ms(timestamp: &prost_types::Timestamp) -> i64 {
    timestamp.seconds * 1000 + i64::from(timestamp.nanos / 1_000_000)
}

/// What one decision concluded about one entity: its live severity, its
/// shadow severity, and each rule build that fired on it, at what severity.
type Concluded = (i32, i32, Vec<(RuleKey, i32)>);

/// What one decision concluded about each entity it concerned, worked out
/// here from the wire decision: the entities its actions and set labels
/// name get its severity (the actor when it names no one); the actor is
/// always concerned; each rule that fired concluded about the entities its
/// own actions and labels name (the actor when none).
fn concluded(d: &v1::Decision) -> BTreeMap<Key, Concluded> {
    let actor = key(d.event.as_ref().unwrap().actor.as_ref().unwrap());
    let sets = |changes: &[v1::LabelChange], rule: Option<&str>| -> Vec<Key> {
        changes
            .iter()
            .filter(|c| !c.cleared && rule.is_none_or(|r| c.rule == r))
            .map(|c| key(c.entity.as_ref().unwrap()))
            .collect()
    };
    let acted = |outcome: &v1::Outcome| -> Vec<Key> {
        outcome
            .actions
            .iter()
            .map(|a| key(a.entity.as_ref().unwrap()))
            .collect()
    };
    let or_actor = |keys: Vec<Key>| {
        if keys.is_empty() {
            vec![actor.clone()]
        } else {
            keys
        }
    };
    let live = d.outcome.as_ref().unwrap();
    let live_named = or_actor([acted(live), sets(&d.label_changes, None)].concat());
    let no_changes = Vec::new();
    let shadow_changes = d.shadow.as_ref().map_or(&no_changes, |s| &s.label_changes);
    let (shadow_severity, shadow_named) = match &d.shadow {
        None => (live.severity, live_named.clone()),
        Some(shadow) => {
            let outcome = shadow.outcome.as_ref().unwrap();
            let named = [
                acted(outcome),
                sets(&d.label_changes, None),
                sets(shadow_changes, None),
            ]
            .concat();
            (outcome.severity, or_actor(named))
        }
    };
    let mut out = BTreeMap::new();
    out.insert(actor.clone(), (ALLOW, ALLOW, Vec::new()));
    for k in live_named {
        out.entry(k).or_insert((ALLOW, ALLOW, Vec::new())).0 = live.severity;
    }
    for k in shadow_named {
        out.entry(k).or_insert((ALLOW, ALLOW, Vec::new())).1 = shadow_severity;
    }
    for r in d.rules.iter().filter(|r| r.severity > ALLOW) {
        let changes = if r.mode == v1::Mode::Shadow as i32 {
            shadow_changes
        } else {
            &d.label_changes
        };
        let own: Vec<Key> = r
            .actions
            .iter()
            .map(|a| key(a.entity.as_ref().unwrap()))
            .collect();
        for k in or_actor([own, sets(changes, Some(&r.rule))].concat()) {
            out.entry(k)
                .or_insert((ALLOW, ALLOW, Vec::new()))
                .2
                .push(((r.rule.clone(), r.mode, r.candidate), r.severity));
        }
    }
    out
}

/// Everything decisions concluded about one entity.
#[derive(Default)]
struct Seen {
    decisions: u64,
    live: i32,
    shadow: i32,
    rules: BTreeMap<RuleKey, i32>,
}

fn seen<'a>(decisions: impl IntoIterator<Item = &'a v1::Decision>) -> HashMap<Key, Seen> {
    let mut seen: HashMap<Key, Seen> = HashMap::new();
    for d in decisions.into_iter().filter(|d| !concluded_nothing(d)) {
        for (k, (live, shadow, rules)) in concluded(d) {
            let s = seen.entry(k).or_default();
            s.decisions += 1;
            s.live = s.live.max(live);
            s.shadow = s.shadow.max(shadow);
            for (rule, severity) in rules {
                let strongest = s.rules.entry(rule).or_insert(ALLOW);
                *strongest = (*strongest).max(severity);
            }
        }
    }
    seen
}

/// Whether a decision allows live and in shadow with no rule firing, no
/// action and no label change: the book does not mark such a decision, so
/// it joins no label.
fn concluded_nothing(d: &v1::Decision) -> bool {
    let allow = v1::Severity::Allow as i32;
    let live = d.outcome.as_ref().unwrap();
    live.severity == allow
        && live.actions.is_empty()
        && d.label_changes.is_empty()
        && d.rules.iter().all(|r| r.severity <= allow)
        && d.shadow.as_ref().is_none_or(|shadow| {
            let outcome = shadow.outcome.as_ref().unwrap();
            outcome.severity == allow
                && outcome.actions.is_empty()
                && shadow.label_changes.is_empty()
        })
}

/// (tp, fp, fn, tn).
type Counts = (u64, u64, u64, u64);

fn add(counts: &mut Counts, predicted: bool, abusive: bool) {
    match (predicted, abusive) {
        (true, true) => counts.0 += 1,
        (true, false) => counts.1 += 1,
        (false, true) => counts.2 += 1,
        (false, false) => counts.3 += 1,
    }
}

/// The accuracy section as the test expects or reads it.
#[derive(Debug, PartialEq)]
struct Expected {
    labelled: u64,
    joined: u64,
    without: u64,
    live: Counts,
    shadow: Counts,
    rules: BTreeMap<RuleKey, Counts>,
}

fn expected(seen: &HashMap<Key, Seen>, labels: &[(Key, bool)], positive: i32) -> Expected {
    let fired: BTreeSet<RuleKey> = seen
        .values()
        .flat_map(|s| s.rules.keys().cloned())
        .collect();
    let mut e = Expected {
        labelled: labels.len() as u64,
        joined: 0,
        without: 0,
        live: (0, 0, 0, 0),
        shadow: (0, 0, 0, 0),
        rules: fired.iter().map(|r| (r.clone(), (0, 0, 0, 0))).collect(),
    };
    for (k, abusive) in labels {
        let s = seen.get(k);
        match s {
            Some(_) => e.joined += 1,
            None => e.without += 1,
        }
        add(&mut e.live, s.is_some_and(|s| s.live >= positive), *abusive);
        add(
            &mut e.shadow,
            s.is_some_and(|s| s.shadow >= positive),
            *abusive,
        );
        for (rule, counts) in &mut e.rules {
            let predicted = s
                .and_then(|s| s.rules.get(rule))
                .is_some_and(|&v| v >= positive);
            add(counts, predicted, *abusive);
        }
    }
    e
}

fn counts(matrix: &v1::ConfusionMatrix) -> Counts {
    // The rates follow from the counts, 0 where they would divide by 0.
    let rate = |n: u64, d: u64| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    let (tp, fp, fun, tn) = (
        matrix.true_positives,
        matrix.false_positives,
        matrix.false_negatives,
        matrix.true_negatives,
    );
    let precision = rate(tp, tp + fp);
    let recall = rate(tp, tp + fun);
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    for (what, got, want) in [
        ("precision", matrix.precision, precision),
        ("recall", matrix.recall, recall),
        ("f1", matrix.f1, f1),
    ] {
        assert!((got - want).abs() < 1e-9, "{what}: {got} is not {want}");
    }
    (tp, fp, fun, tn)
}

fn reported(accuracy: &v1::Accuracy) -> Expected {
    Expected {
        labelled: accuracy.labelled_entities,
        joined: accuracy.joined,
        without: accuracy.without_decisions,
        live: counts(accuracy.live.as_ref().unwrap()),
        shadow: counts(accuracy.shadow.as_ref().unwrap()),
        rules: accuracy
            .rules
            .iter()
            .map(|r| {
                (
                    (r.rule.clone(), r.mode, r.candidate),
                    counts(r.matrix.as_ref().unwrap()),
                )
            })
            .collect(),
    }
}

fn entity_label(
    entity: v1::Entity,
    truth: v1::Truth,
    source: v1::LabelSource,
) -> v1::GroundTruthLabel {
    v1::GroundTruthLabel {
        subject: Some(v1::ground_truth_label::Subject::Entity(entity)),
        truth: truth as i32,
        source: source as i32,
        labelled_at: None,
        reference: "ticket-1".into(),
    }
}

fn event_label(id: &str, truth: v1::Truth, source: v1::LabelSource) -> v1::GroundTruthLabel {
    v1::GroundTruthLabel {
        subject: Some(v1::ground_truth_label::Subject::EventId(id.into())),
        ..entity_label(v1::Entity::default(), truth, source)
    }
}

async fn submit(client: &mut Client, labels: Vec<v1::GroundTruthLabel>) -> Vec<v1::LabelResult> {
    client
        .submit_labels(v1::SubmitLabelsRequest { labels })
        .await
        .unwrap_or_else(|s| panic!("{s}"))
        .into_inner()
        .results
}

async fn report(client: &mut Client, request: v1::ShadowReportRequest) -> v1::Accuracy {
    client
        .get_shadow_report(request)
        .await
        .unwrap_or_else(|s| panic!("{s}"))
        .into_inner()
        .accuracy
        .expect("an accuracy section")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accuracy_against_submitted_truth_agrees_with_an_independent_count() {
    let traffic = Simulator::new(SimConfig::community(31, 800, 40))
        .unwrap()
        .run();
    // The live set lacks stranger-spray; it is tried as a shadow candidate.
    let sources = example_sources()
        .into_iter()
        .filter(|(source, _)| !source.origin.ends_with(CANDIDATE))
        .collect();
    let engine = TestEngine::start_with_options(
        SignaturePolicy {
            allow_unsigned: true,
            ..SignaturePolicy::default()
        },
        sources,
        EXAMPLE_POLICY.to_string(),
        PipelineOptions {
            banks: traffic.hash_banks(),
            max_future_skew_ms: None,
            ..PipelineOptions::default()
        },
    )
    .await;
    engine
        .registry
        .upload(
            &Caller::internal("analyst"),
            RuleSource {
                wasm: plugin(CANDIDATE),
                origin: "upload".into(),
                ..RuleSource::default()
            },
            Activation::Candidate(Stage::Shadow),
        )
        .unwrap();

    // The traffic over one stream; the decisions received are what the
    // test counts from.
    let mut client = engine.server.client().await;
    let requests: Vec<v1::EvaluateRequest> = traffic
        .events
        .iter()
        .map(|labelled| v1::EvaluateRequest {
            event: Some(wire(&labelled.event)),
            ..Default::default()
        })
        .collect();
    let mut results = client
        .evaluate_stream(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut decisions = Vec::new();
    while let Some(result) = results.next().await {
        match result.unwrap().result {
            Some(v1::evaluate_stream_response::Result::Evaluated(e)) => {
                decisions.push(e.decision.unwrap())
            }
            other => panic!("not evaluated: {other:?}"),
        }
    }
    assert_eq!(decisions.len(), traffic.events.len());
    let whole = seen(&decisions);

    // The truth of every abusive entity and a third of the others, an
    // entity the engine never saw, one event it decided and one it never
    // saw.
    let mut labels: Vec<(Key, bool)> = traffic
        .truth
        .iter()
        .enumerate()
        .filter(|(index, t)| t.abusive || index % 3 == 0)
        .map(|(_, t)| (engine_key(&t.entity), t.abusive))
        .collect();
    labels.push(((v1::EntityType::Account as i32, "never-seen".into()), true));
    let truth_of = |abusive: bool| {
        if abusive {
            v1::Truth::Abusive
        } else {
            v1::Truth::Benign
        }
    };
    let mut request: Vec<v1::GroundTruthLabel> = labels
        .iter()
        .map(|((kind, id), abusive)| {
            let entity = v1::Entity {
                r#type: *kind,
                id: id.clone(),
            };
            entity_label(entity, truth_of(*abusive), v1::LabelSource::Review)
        })
        .collect();
    let first_event = &traffic.events[0];
    request.push(event_label(
        &first_event.event.id,
        truth_of(first_event.truth.abusive),
        v1::LabelSource::Other,
    ));
    request.push(event_label(
        "no-such-event",
        v1::Truth::Abusive,
        v1::LabelSource::Review,
    ));
    assert!(request.len() <= 1000);
    let results = submit(&mut client, request).await;
    assert_eq!(results.len(), labels.len() + 2);
    for ((k, _), result) in labels.iter().zip(&results) {
        let joined = whole.get(k).map_or(0, |s| s.decisions);
        assert_eq!(result.joined_decisions, joined, "{k:?}");
        assert!(result.overturns.is_empty(), "a review overturns nothing");
    }
    let (known, unknown) = (&results[labels.len()], &results[labels.len() + 1]);
    assert_eq!((known.joined_decisions, unknown.joined_decisions), (1, 0));

    // The whole range, at the default positive severity (limit).
    let limit = v1::Severity::Limit as i32;
    let accuracy = report(&mut client, v1::ShadowReportRequest::default()).await;
    assert_eq!(accuracy.positive_severity, limit);
    assert_eq!(accuracy.event_labels, 2);
    let abusive = labels.iter().filter(|(_, a)| *a).count() as u64;
    assert_eq!(
        (accuracy.abusive, accuracy.benign),
        (abusive, labels.len() as u64 - abusive)
    );
    let independent = expected(&whole, &labels, limit);
    assert_eq!(reported(&accuracy), independent);
    // The count is not trivially empty: the live rules caught abuse, the
    // candidate took part, and the entity never seen counts as missed.
    assert!(independent.live.0 > 0, "{independent:?}");
    assert_ne!(
        independent.shadow, independent.live,
        "the candidate changed something"
    );
    assert!(independent.without >= 1);
    let candidate = (CANDIDATE.to_string(), v1::Mode::Shadow as i32, true);
    assert!(
        independent.rules.get(&candidate).is_some_and(|c| c.0 > 0),
        "the candidate caught abuse: {:?}",
        independent.rules
    );
    assert!(
        independent
            .rules
            .keys()
            .any(|(_, mode, _)| *mode == v1::Mode::Enforce as i32)
    );

    // At block, and for review.
    for positive in [v1::Severity::Block, v1::Severity::Review] {
        let at = report(
            &mut client,
            v1::ShadowReportRequest {
                positive_severity: positive as i32,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            reported(&at),
            expected(&whole, &labels, positive as i32),
            "{positive:?}"
        );
    }

    // The first ten minutes of event time, and one rule.
    let start = decisions
        .iter()
        .map(|d| ms(d.event.as_ref().unwrap().occurred_at.as_ref().unwrap()))
        .min()
        .unwrap();
    let from = start - start.rem_euclid(60_000);
    let to = from + 10 * 60_000;
    let part = report(
        &mut client,
        v1::ShadowReportRequest {
            from: Some(enforcer::api::timestamp_to_proto(from)),
            to: Some(enforcer::api::timestamp_to_proto(to)),
            ..Default::default()
        },
    )
    .await;
    let in_part = seen(decisions.iter().filter(|d| {
        let at = ms(d.event.as_ref().unwrap().occurred_at.as_ref().unwrap());
        (from..to).contains(&at)
    }));
    let expected_part = expected(&in_part, &labels, limit);
    assert_eq!(reported(&part), expected_part);
    assert!(expected_part.joined < independent.joined);

    let one = report(
        &mut client,
        v1::ShadowReportRequest {
            rule: CANDIDATE.into(),
            ..Default::default()
        },
    )
    .await;
    let mut only = independent;
    only.rules.retain(|(rule, _, _), _| rule == CANDIDATE);
    assert_eq!(reported(&one), only);
}

/// A group icon three bits from the demo bank's hash: blocks the account,
/// bans the group and labels both `known-csam-media`.
fn icon(id: &str, account: &str, group: &str, at_ms: i64) -> Event {
    let mut hash = BANKED_HASH;
    hash[0] ^= 0b0000_0111;
    Event::new(id, "media.group_icon", at_ms, Entity::account(account))
        .with_target(Entity::group(group))
        .with("pdq_hash", Value::Bytes(hash.to_vec()))
        .with("pdq_quality", Value::Int(92))
        .with("media_id", Value::Text(format!("media-{id}")))
}

/// The group's invite link posted publicly: a ban for a group labelled for
/// harmful media, nothing for any other.
fn public_share(id: &str, account: &str, group: &str, at_ms: i64) -> Event {
    Event::new(
        id,
        "group.invite_link_shared",
        at_ms,
        Entity::account(account),
    )
    .with_target(Entity::group(group))
    .with("public", Value::Bool(true))
    .with("link_id", Value::Text(format!("link-{id}")))
}

async fn decide(client: &mut Client, event: &Event) -> v1::Decision {
    client
        .evaluate(v1::EvaluateRequest {
            event: Some(wire(event)),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("{}: {s}", event.id))
        .into_inner()
        .decision
        .unwrap()
}

async fn get(client: &mut Client, id: &str) -> v1::Decision {
    client
        .get_decision(v1::GetDecisionRequest {
            decision_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn watch(client: &mut Client, after: Option<u64>) -> tonic::Streaming<v1::Overturn> {
    client
        .watch_overturns(v1::WatchOverturnsRequest {
            after_sequence: after,
        })
        .await
        .unwrap()
        .into_inner()
}

async fn next(watcher: &mut tonic::Streaming<v1::Overturn>) -> v1::Overturn {
    tokio::time::timeout(std::time::Duration::from_secs(10), watcher.next())
        .await
        .expect("an overturn arrives")
        .unwrap()
        .unwrap()
}

/// The actions of `decision` on `entity`, and the labels it set on it.
fn on(
    decision: &v1::Decision,
    entity: &Entity,
) -> (Vec<v1::EnforcementAction>, Vec<v1::LabelChange>) {
    let wire_entity = enforcer::api::entity_to_proto(entity);
    let actions = decision
        .outcome
        .as_ref()
        .unwrap()
        .actions
        .iter()
        .filter(|a| a.entity.as_ref() == Some(&wire_entity))
        .cloned()
        .collect();
    let labels = decision
        .label_changes
        .iter()
        .filter(|c| !c.cleared && c.entity.as_ref() == Some(&wire_entity))
        .cloned()
        .collect();
    (actions, labels)
}

fn demo_options() -> PipelineOptions {
    PipelineOptions {
        banks: banks(),
        max_future_skew_ms: None,
        ..PipelineOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_won_appeal_overturns_a_block_once_and_its_labels_are_gone() {
    let server = TestServer::start(demo_options(), ServerOptions::default()).await;
    let mut client = server.client().await;
    let (ring, group) = (Entity::account("ring-1"), Entity::group("g1"));
    let (ring2, group2) = (Entity::account("ring-2"), Entity::group("g2"));
    let mut live = watch(&mut client, None).await;

    let blocked = decide(&mut client, &icon("icon-1", "ring-1", "g1", T0)).await;
    let control = decide(&mut client, &icon("icon-2", "ring-2", "g2", T0 + 1_000)).await;
    let (on_group, group_labels) = on(&blocked, &group);
    assert_eq!(
        blocked.outcome.as_ref().unwrap().severity,
        v1::Severity::Block as i32
    );
    assert!(
        on_group
            .iter()
            .any(|a| a.action == v1::ActionType::BanGroup as i32)
    );
    assert_eq!(group_labels.len(), 1, "{:?}", blocked.label_changes);
    let label = group_labels[0].label.clone();
    assert!(
        server
            .pipeline
            .live_state()
            .has_label(&group, &label, T0 + 60_000)
    );

    // The group wins its appeal.
    let appeal = vec![entity_label(
        enforcer::api::entity_to_proto(&group),
        v1::Truth::Benign,
        v1::LabelSource::Appeal,
    )];
    let results = submit(&mut client, appeal.clone()).await;
    assert_eq!(results[0].joined_decisions, 1);
    let [first] = results[0].overturns.as_slice() else {
        panic!("one overturn: {:?}", results[0].overturns);
    };
    assert_eq!(first.sequence, 1);
    assert_eq!(first.decision_id, blocked.id);
    assert_eq!(first.event_id, "icon-1");
    assert_eq!(first.entity, Some(enforcer::api::entity_to_proto(&group)));
    assert_eq!(
        (first.lifted.clone(), first.labels_cleared.clone()),
        (on_group, group_labels)
    );
    assert_eq!(first.source, v1::LabelSource::Appeal as i32);
    assert_eq!(first.reference, "ticket-1");
    assert!(first.overturned_at.is_some() && first.labelled_at.is_some());

    // Watched, shown on the decision, and the labels are gone: from the
    // state, and from what a later event sees (the control group, still
    // labelled, is banned for the same share).
    assert_eq!(&next(&mut live).await, first);
    assert_eq!(
        get(&mut client, &blocked.id).await.overturns,
        std::slice::from_ref(first)
    );
    assert!(get(&mut client, &control.id).await.overturns.is_empty());
    let state = server.pipeline.live_state();
    assert!(!state.has_label(&group, &label, T0 + 60_000));
    assert!(state.has_label(&group2, &label, T0 + 60_000));
    assert!(
        state.has_label(&ring, &label, T0 + 60_000),
        "only the group won"
    );
    let shared = decide(
        &mut client,
        &public_share("share-1", "ring-1", "g1", T0 + 60_000),
    )
    .await;
    let shared2 = decide(
        &mut client,
        &public_share("share-2", "ring-2", "g2", T0 + 61_000),
    )
    .await;
    assert_eq!(shared.outcome.unwrap().severity, v1::Severity::Allow as i32);
    assert_eq!(
        shared2.outcome.as_ref().unwrap().severity,
        v1::Severity::Block as i32
    );

    // The same appeal again overturns nothing.
    assert!(submit(&mut client, appeal).await[0].overturns.is_empty());

    // An appeal of the event lifts what is left: the account's block.
    let event_appeal = vec![event_label(
        "icon-1",
        v1::Truth::Benign,
        v1::LabelSource::Appeal,
    )];
    let results = submit(&mut client, event_appeal.clone()).await;
    assert_eq!(results[0].joined_decisions, 1);
    let [second] = results[0].overturns.as_slice() else {
        panic!("one overturn: {:?}", results[0].overturns);
    };
    assert_eq!(second.sequence, 2);
    assert_eq!(second.entity, Some(enforcer::api::entity_to_proto(&ring)));
    assert_eq!(
        (second.lifted.clone(), second.labels_cleared.clone()),
        on(&blocked, &ring)
    );
    assert!(
        !server
            .pipeline
            .live_state()
            .has_label(&ring, &label, T0 + 60_000)
    );
    assert!(
        submit(&mut client, event_appeal).await[0]
            .overturns
            .is_empty()
    );
    assert_eq!(&next(&mut live).await, second);

    // Resumed from the start, and from the first: each overturn once.
    let mut from_start = watch(&mut client, Some(0)).await;
    let mut from_first = watch(&mut client, Some(1)).await;
    assert_eq!(&next(&mut from_start).await, first);
    assert_eq!(&next(&mut from_start).await, second);
    assert_eq!(&next(&mut from_first).await, second);

    // The control group's appeal overturns both decisions that banned it;
    // every watcher gets exactly those next.
    let results = submit(
        &mut client,
        vec![entity_label(
            enforcer::api::entity_to_proto(&group2),
            v1::Truth::Benign,
            v1::LabelSource::Appeal,
        )],
    )
    .await;
    let ids: Vec<(u64, &str)> = results[0]
        .overturns
        .iter()
        .map(|o| (o.sequence, o.decision_id.as_str()))
        .collect();
    assert_eq!(ids, [(3, control.id.as_str()), (4, shared2.id.as_str())]);
    for watcher in [&mut live, &mut from_start, &mut from_first] {
        for expected in &results[0].overturns {
            assert_eq!(&next(watcher).await, expected);
        }
    }
    let listed = client
        .list_decisions(v1::ListDecisionsRequest {
            entity: Some(enforcer::api::entity_to_proto(&group2)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.decisions.iter().all(|d| d.overturns.len() == 1));
    assert!(
        state.has_label(&ring2, &label, T0 + 60_000),
        "the account did not appeal"
    );

    // A cursor from the future is refused.
    let ahead = client
        .watch_overturns(v1::WatchOverturnsRequest {
            after_sequence: Some(99),
        })
        .await
        .expect_err("a cursor ahead of the overturns");
    assert_eq!(ahead.code(), Code::OutOfRange, "{ahead}");
    server.shutdown().await;
}

/// A profile photo matching the demo bank: blocks the account.
fn photo(id: &str, account: &str, at_ms: i64) -> Event {
    Event::new(id, "media.profile_photo", at_ms, Entity::account(account))
        .with("pdq_hash", Value::Bytes(BANKED_HASH.to_vec()))
        .with("pdq_quality", Value::Int(90))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_from_overturns_dropped_is_out_of_range() {
    let runtime = Runtime::new().unwrap();
    let rules = load_example_rules(&runtime).unwrap_or_else(|(n, e)| panic!("{n}: {e}"));
    let policy = Policy::parse(EXAMPLE_POLICY).unwrap();
    let pipeline = Arc::new(Pipeline::new(rules, policy, demo_options()).unwrap());
    // The log keeps three decisions, so three overturns.
    let server = TestServer::start_with(pipeline, 3, ServerOptions::default()).await;
    let mut client = server.client().await;
    for n in 0..5 {
        let id = format!("photo-{n}");
        let blocked = decide(&mut client, &photo(&id, &format!("a{n}"), T0 + n)).await;
        assert_eq!(
            blocked.outcome.unwrap().severity,
            v1::Severity::Block as i32
        );
        let results = submit(
            &mut client,
            vec![event_label(&id, v1::Truth::Benign, v1::LabelSource::Appeal)],
        )
        .await;
        assert_eq!(results[0].overturns.len(), 1);
    }
    let gone = client
        .watch_overturns(v1::WatchOverturnsRequest {
            after_sequence: Some(1),
        })
        .await
        .expect_err("overturns 2 is gone");
    assert_eq!(gone.code(), Code::OutOfRange);
    assert!(gone.message().contains("oldest kept is 3"), "{gone}");
    let mut kept = watch(&mut client, Some(2)).await;
    for sequence in 3..=5 {
        assert_eq!(next(&mut kept).await.sequence, sequence);
    }
    // A decision the log dropped cannot be overturned; its truth is kept.
    let results = submit(
        &mut client,
        vec![event_label(
            "photo-0",
            v1::Truth::Benign,
            v1::LabelSource::Appeal,
        )],
    )
    .await;
    assert_eq!(results[0].joined_decisions, 0);
    assert!(results[0].overturns.is_empty());
    assert!(
        server
            .pipeline
            .ground_truth()
            .event_truth("photo-0")
            .is_some()
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_labels_are_refused_naming_the_field_and_change_nothing() {
    let server = TestServer::start(demo_options(), ServerOptions::default()).await;
    let mut client = server.client().await;
    let blocked = decide(&mut client, &photo("photo", "victim", T0)).await;
    let victim = Entity::account("victim");
    let good = || {
        entity_label(
            enforcer::api::entity_to_proto(&victim),
            v1::Truth::Benign,
            v1::LabelSource::Appeal,
        )
    };
    let far_future = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 3600;
    let broken = |change: &dyn Fn(&mut v1::GroundTruthLabel)| {
        let mut label = good();
        change(&mut label);
        // A good label first: the index names the broken one, and the good
        // one (an appeal that would overturn) must not be applied either.
        vec![good(), label]
    };
    let cases: Vec<(Vec<v1::GroundTruthLabel>, &str)> = vec![
        (Vec::new(), "labels: is empty"),
        (
            vec![good(); 1001],
            "labels: 1001 labels, over the limit of 1000",
        ),
        (
            broken(&|l| l.subject = None),
            "labels[1].subject: is missing: set entity or event_id",
        ),
        (
            broken(&|l| l.truth = 0),
            "labels[1].truth: is unspecified: use TRUTH_ABUSIVE or TRUTH_BENIGN",
        ),
        (
            broken(&|l| l.truth = 7),
            "labels[1].truth: 7 is not a truth",
        ),
        (
            broken(&|l| l.source = 0),
            "labels[1].source: is unspecified: use LABEL_SOURCE_REVIEW",
        ),
        (
            broken(&|l| l.source = 9),
            "labels[1].source: 9 is not a label source",
        ),
        (
            broken(&|l| {
                if let Some(v1::ground_truth_label::Subject::Entity(e)) = &mut l.subject {
                    e.r#type = 0;
                }
            }),
            "labels[1].entity.type: is unspecified",
        ),
        (
            broken(&|l| {
                if let Some(v1::ground_truth_label::Subject::Entity(e)) = &mut l.subject {
                    e.id.clear();
                }
            }),
            "labels[1].entity.id: is empty",
        ),
        (
            broken(&|l| l.subject = Some(v1::ground_truth_label::Subject::EventId(String::new()))),
            "labels[1].event_id: is empty",
        ),
        (
            broken(&|l| {
                l.subject = Some(v1::ground_truth_label::Subject::EventId("e".repeat(300)))
            }),
            "labels[1].event_id: is 300 bytes",
        ),
        (
            broken(&|l| l.reference = "r".repeat(300)),
            "labels[1].reference: is 300 bytes, over the 256-byte limit",
        ),
        (
            broken(&|l| {
                l.labelled_at = Some(prost_types::Timestamp {
                    seconds: 1,
                    nanos: -1,
                })
            }),
            "labels[1].labelled_at: nanos -1",
        ),
        (
            broken(&|l| {
                l.labelled_at = Some(prost_types::Timestamp {
                    seconds: far_future,
                    nanos: 0,
                })
            }),
            "s ahead of the engine's clock",
        ),
    ];
    for (labels, expected) in cases {
        let status = client
            .submit_labels(v1::SubmitLabelsRequest { labels })
            .await
            .expect_err(expected);
        assert_eq!(status.code(), Code::InvalidArgument, "{status}");
        assert!(
            status.message().starts_with(expected) || status.message().contains(expected),
            "{expected}: {}",
            status.message()
        );
    }

    // Nothing was kept or overturned: the truth is unknown, the block
    // stands, its label is still set.
    assert!(
        server
            .pipeline
            .ground_truth()
            .entity_truth(&victim)
            .is_none()
    );
    assert!(get(&mut client, &blocked.id).await.overturns.is_empty());
    assert!(
        server
            .pipeline
            .live_state()
            .has_label(&victim, "known-csam-media", T0 + 1)
    );

    // The report's and the watcher's fields too.
    for (positive, expected) in [
        (
            v1::Severity::Allow as i32,
            "positive_severity: SEVERITY_ALLOW would count",
        ),
        (99, "positive_severity: 99 is not a severity"),
    ] {
        let status = client
            .get_shadow_report(v1::ShadowReportRequest {
                positive_severity: positive,
                ..Default::default()
            })
            .await
            .expect_err(expected);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().starts_with(expected),
            "{}",
            status.message()
        );
    }
    let status = client
        .watch_overturns(v1::WatchOverturnsRequest {
            after_sequence: Some(1),
        })
        .await
        .expect_err("no overturn yet");
    assert_eq!(status.code(), Code::OutOfRange);
    assert!(
        status.message().starts_with("after_sequence:"),
        "{}",
        status.message()
    );

    // And the good label alone is applied.
    let results = submit(&mut client, vec![good()]).await;
    assert_eq!(results[0].overturns.len(), 1);
    assert!(
        server
            .pipeline
            .ground_truth()
            .entity_truth(&victim)
            .is_some()
    );
    server.shutdown().await;
}
