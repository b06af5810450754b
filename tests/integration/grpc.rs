//! The data plane end to end: a real server on a loopback port, real gRPC
//! clients. Simulated traffic over `Evaluate` and `EvaluateStream` is
//! decided exactly as the pipeline decides it in process and agrees with the
//! ground truth; watchers see every matching decision once and resume
//! exactly; health and reflection answer.

use std::collections::{BTreeMap, HashMap, HashSet};

use enforcer::api::v1;
use enforcer::event::{Entity, Event};
use enforcer::examples::{EXAMPLE_POLICY, load_example_rules};
use enforcer::pipeline::{Pipeline, PipelineOptions};
use enforcer::policy::Policy;
use enforcer::runtime::Runtime;
use enforcer::server::ServerOptions;
use enforcer_examples::simulator::{Class, SimConfig, Simulator, Traffic};
use tokio_stream::StreamExt;

use crate::grpc_server::{TestServer, wire};

fn traffic() -> Traffic {
    let config = SimConfig::community(23, 1_200, 30);
    Simulator::new(config).expect("valid config").run()
}

fn options(traffic: &Traffic) -> PipelineOptions {
    PipelineOptions {
        banks: traffic.hash_banks(),
        ..PipelineOptions::default()
    }
}

/// The example rules and policy in process, as the reference.
fn reference(traffic: &Traffic) -> Pipeline {
    let runtime = Runtime::new().unwrap();
    let rules = load_example_rules(&runtime).unwrap_or_else(|(n, e)| panic!("{n}: {e}"));
    Pipeline::new(
        rules,
        Policy::parse(EXAMPLE_POLICY).unwrap(),
        options(traffic),
    )
    .unwrap()
}

/// What must agree between a decision over the wire and one in process:
/// severity, actions, and each rule's verdict.
/// Severity, actions (type and entity id), and each rule's (name, severity,
/// skipped).
type Summary = (i32, Vec<(i32, String)>, Vec<(String, i32, bool)>);

fn summary(decision: &v1::Decision) -> Summary {
    let outcome = decision.outcome.as_ref().expect("an outcome");
    (
        outcome.severity,
        outcome
            .actions
            .iter()
            .map(|a| (a.action, a.entity.as_ref().unwrap().id.clone()))
            .collect(),
        decision
            .rules
            .iter()
            .map(|r| (r.rule.clone(), r.severity, r.skipped))
            .collect(),
    )
}

/// Send `events` over one `EvaluateStream` call, in chunks of `chunk`, and
/// return the results in order.
async fn stream_events(
    client: &mut v1::enforcement_client::EnforcementClient<tonic::transport::Channel>,
    events: Vec<v1::Event>,
) -> Vec<v1::EvaluateStreamResponse> {
    let requests = tokio_stream::iter(events.into_iter().map(|event| v1::EvaluateRequest {
        event: Some(event),
        ..Default::default()
    }));
    let mut results = client
        .evaluate_stream(requests)
        .await
        .expect("the stream opens")
        .into_inner();
    let mut out = Vec::new();
    while let Some(result) = results.next().await {
        out.push(result.expect("the stream does not fail"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_traffic_is_decided_over_both_calls_as_in_process_and_matches_the_truth() {
    let traffic = traffic();
    // One batch of a stream at a time: the server then sees the events in
    // exactly the order the reference does. (By default a stream's batches
    // are evaluated concurrently, like events from concurrent clients.)
    let sequential = ServerOptions {
        stream_batches_in_flight: 1,
        ..ServerOptions::default()
    };
    let server = TestServer::start(options(&traffic), sequential).await;
    let mut client = server.client().await;
    let reference = reference(&traffic);

    // Alternate chunks between the two calls; each chunk is answered before
    // the next is sent, so the server sees the events in the same order as
    // the reference.
    let mut decisions: Vec<v1::Decision> = Vec::with_capacity(traffic.events.len());
    let (mut streamed, mut unary) = (0, 0);
    for (index, chunk) in traffic.events.chunks(400).enumerate() {
        if index % 2 == 0 {
            let results =
                stream_events(&mut client, chunk.iter().map(|l| wire(&l.event)).collect()).await;
            assert_eq!(results.len(), chunk.len());
            for (labelled, result) in chunk.iter().zip(results) {
                assert_eq!(
                    result.event_id, labelled.event.id,
                    "results come back in order"
                );
                match result.result.expect("a result") {
                    v1::evaluate_stream_response::Result::Evaluated(response) => {
                        decisions.push(response.decision.unwrap());
                    }
                    v1::evaluate_stream_response::Result::Error(e) => {
                        panic!("{} refused: {e:?}", labelled.event.id)
                    }
                }
                streamed += 1;
            }
        } else {
            for labelled in chunk {
                let response = client
                    .evaluate(v1::EvaluateRequest {
                        event: Some(wire(&labelled.event)),
                        ..Default::default()
                    })
                    .await
                    .unwrap_or_else(|s| panic!("{} refused: {s}", labelled.event.id))
                    .into_inner();
                assert!(!response.duplicate);
                decisions.push(response.decision.unwrap());
                unary += 1;
            }
        }
    }
    assert!(
        streamed > 1000 && unary > 1000,
        "{streamed} streamed, {unary} unary"
    );

    // Decided exactly as in process.
    for (labelled, remote) in traffic.events.iter().zip(&decisions) {
        let local = reference.evaluate(labelled.event.clone()).unwrap().decision;
        let local = enforcer::api::decision_to_proto(&local, 0);
        assert_eq!(remote.id, format!("dec-{}", labelled.event.id));
        assert_eq!(summary(remote), summary(&local), "{}", labelled.event.id);
        assert_eq!(
            remote.event.as_ref(),
            Some(&wire(&labelled.event)),
            "the event comes back whole"
        );
    }
    // Logged in order, one sequence each.
    let sequences: Vec<u64> = decisions.iter().map(|d| d.sequence).collect();
    assert_eq!(sequences, (1..=decisions.len() as u64).collect::<Vec<_>>());

    // Against the ground truth: no ordinary account or group is acted on,
    // and each abusive class is caught by the rule aimed at it.
    let classes: HashMap<&str, Class> = traffic
        .truth
        .iter()
        .map(|t| (t.entity.id.as_str(), t.class))
        .collect();
    let mut caught: BTreeMap<&str, HashSet<String>> = BTreeMap::new();
    for (labelled, decision) in traffic.events.iter().zip(&decisions) {
        for action in &decision.outcome.as_ref().unwrap().actions {
            let id = &action.entity.as_ref().unwrap().id;
            let class = classes.get(id.as_str()).copied();
            assert!(
                class.is_some_and(|c| c.is_abusive()),
                "action {:?} against {id} ({class:?}) for {}",
                action.action,
                labelled.event.id
            );
        }
        for report in decision
            .rules
            .iter()
            .filter(|r| r.severity > v1::Severity::Allow as i32)
        {
            caught
                .entry(labelled.truth.class.as_str())
                .or_default()
                .insert(report.rule.clone());
        }
    }
    for (class, rule) in [
        ("spammer", "stranger-spray"),
        ("mass_forwarder", "mass-forwarding"),
        ("csam_ring_member", "known-hash-match"),
    ] {
        assert!(
            caught.get(class).is_some_and(|rules| rules.contains(rule)),
            "{rule} never fired on a {class}: {caught:?}"
        );
    }

    // A retry of an event decided within the idempotency window (ten
    // minutes of event time; the server's background sweep forgets older
    // ids) gets the first decision.
    let last = traffic.events.len() - 1;
    let again = client
        .evaluate(v1::EvaluateRequest {
            event: Some(wire(&traffic.events[last].event)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(again.duplicate);
    assert_eq!(again.decision.as_ref(), Some(&decisions[last]));
    server.shutdown().await;
}

/// Events for one account, one a second from `start_ms`, that each pass
/// through the example rules without needing any traffic before them.
fn messages(account: &str, prefix: &str, count: usize, start_ms: i64) -> Vec<Event> {
    (0..count)
        .map(|i| {
            Event::new(
                format!("{prefix}-{i}"),
                "message.sent",
                start_ms + i as i64 * 1000,
                Entity::account(account),
            )
            .with_target(Entity::account(format!("friend-{i}")))
        })
        .collect()
}

/// Forwarding events from `account`, each to 60 chats: the example
/// mass-forwarding rule limits its forwarding.
fn forwards(account: &str, prefix: &str, count: usize, start_ms: i64) -> Vec<Event> {
    (0..count)
        .map(|i| {
            Event::new(
                format!("{prefix}-{i}"),
                "message.forwarded",
                start_ms + i as i64 * 1000,
                Entity::account(account),
            )
            .with("chat_count", enforcer::event::Value::Int(60))
            .with("forward_depth", enforcer::event::Value::Int(5))
        })
        .collect()
}

const T0: i64 = 1_764_000_000_000;

async fn evaluate_all(
    client: &mut v1::enforcement_client::EnforcementClient<tonic::transport::Channel>,
    events: &[Event],
) -> Vec<v1::Decision> {
    let mut out = Vec::new();
    for event in events {
        let response = client
            .evaluate(v1::EvaluateRequest {
                event: Some(wire(event)),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("{}: {s}", event.id))
            .into_inner();
        out.push(response.decision.unwrap());
    }
    out
}

fn has_action(decision: &v1::Decision, action: v1::ActionType) -> bool {
    decision
        .outcome
        .as_ref()
        .is_some_and(|o| o.actions.iter().any(|a| a.action == action as i32))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_see_each_matching_decision_once_and_resume_exactly() {
    let server = TestServer::start(PipelineOptions::default(), ServerOptions::default()).await;
    let mut client = server.client().await;

    // Two watchers from the start: one for forwarding limits, one for all.
    let mut limits = client
        .watch_decisions(v1::WatchDecisionsRequest {
            actions: vec![v1::ActionType::LimitForwarding as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut everything = client
        .watch_decisions(v1::WatchDecisionsRequest::default())
        .await
        .unwrap()
        .into_inner();

    let mut events = messages("quiet", "m", 30, T0);
    events.extend(forwards("loud", "f", 30, T0));
    let decisions = evaluate_all(&mut client, &events).await;
    let limited: Vec<&v1::Decision> = decisions
        .iter()
        .filter(|d| has_action(d, v1::ActionType::LimitForwarding))
        .collect();
    assert!(
        !limited.is_empty(),
        "the forwarding flood was never limited"
    );
    assert!(limited.len() < decisions.len());

    let mut seen = Vec::new();
    while seen.len() < limited.len() {
        seen.push(limits.next().await.unwrap().unwrap());
    }
    assert_eq!(
        seen.iter().map(|d| &d.id).collect::<Vec<_>>(),
        limited.iter().map(|d| &d.id).collect::<Vec<_>>()
    );
    let mut all = Vec::new();
    while all.len() < decisions.len() {
        all.push(everything.next().await.unwrap().unwrap());
    }
    assert_eq!(
        all, decisions,
        "the unfiltered watcher sees every decision, in order"
    );

    // A watcher that reconnects after the tenth decision gets exactly the
    // rest: nothing missed, nothing twice.
    let mut resumed = client
        .watch_decisions(v1::WatchDecisionsRequest {
            after_sequence: Some(decisions[9].sequence),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut rest = Vec::new();
    while rest.len() < decisions.len() - 10 {
        rest.push(resumed.next().await.unwrap().unwrap());
    }
    assert_eq!(rest, decisions[10..]);
    // And then it waits for new decisions, which arrive.
    let next = evaluate_all(&mut client, &messages("quiet", "later", 1, T0 + 60_000)).await;
    assert_eq!(resumed.next().await.unwrap().unwrap(), next[0]);

    // A cursor from the future (a log that restarted) is refused.
    let ahead = client
        .watch_decisions(v1::WatchDecisionsRequest {
            after_sequence: Some(1_000_000),
            ..Default::default()
        })
        .await
        .expect_err("a cursor ahead of the log");
    assert_eq!(ahead.code(), tonic::Code::OutOfRange, "{ahead}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_from_decisions_the_log_dropped_is_out_of_range() {
    let runtime = Runtime::new().unwrap();
    let rules = load_example_rules(&runtime).unwrap_or_else(|(n, e)| panic!("{n}: {e}"));
    let pipeline = std::sync::Arc::new(
        Pipeline::new(
            rules,
            Policy::parse(EXAMPLE_POLICY).unwrap(),
            PipelineOptions::default(),
        )
        .unwrap(),
    );
    let server = TestServer::start_with(pipeline, 5, ServerOptions::default()).await;
    let mut client = server.client().await;
    let decisions = evaluate_all(&mut client, &messages("a", "m", 12, T0)).await;
    assert_eq!(server.log.len(), 5);

    let status = client
        .watch_decisions(v1::WatchDecisionsRequest {
            after_sequence: Some(2),
            ..Default::default()
        })
        .await
        .expect_err("decisions 3 to 7 are gone");
    assert_eq!(status.code(), tonic::Code::OutOfRange);
    assert!(status.message().contains("oldest kept is 8"), "{status}");

    // Dropped decisions are gone from lookups too; kept ones are there.
    let gone = client
        .get_decision(v1::GetDecisionRequest {
            decision_id: decisions[0].id.clone(),
        })
        .await
        .expect_err("dropped");
    assert_eq!(gone.code(), tonic::Code::NotFound);
    let kept = client
        .get_decision(v1::GetDecisionRequest {
            decision_id: decisions[11].id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept, decisions[11]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_listed_by_entity_newest_first_a_page_at_a_time() {
    let server = TestServer::start(PipelineOptions::default(), ServerOptions::default()).await;
    let mut client = server.client().await;
    // Sent out of time order: the listing is by event time.
    let mut events = messages("lister", "m", 25, T0);
    events.swap(3, 20);
    evaluate_all(&mut client, &events).await;
    evaluate_all(&mut client, &messages("other", "o", 5, T0)).await;

    let account = Some(v1::Entity {
        r#type: v1::EntityType::Account as i32,
        id: "lister".into(),
    });
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_decisions(v1::ListDecisionsRequest {
                entity: account.clone(),
                page_size: 10,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages.push(page.decisions.len());
        token = page.next_page_token;
        let times: Vec<i64> = page
            .decisions
            .iter()
            .map(|d| d.event.as_ref().unwrap().occurred_at.unwrap().seconds)
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] > w[1]),
            "newest first: {times:?}"
        );
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(pages, [10, 10, 5]);

    // A time range: from inclusive, to exclusive.
    let ranged = client
        .list_decisions(v1::ListDecisionsRequest {
            entity: account.clone(),
            from: Some(prost_types::Timestamp {
                seconds: T0 / 1000 + 5,
                nanos: 0,
            }),
            to: Some(prost_types::Timestamp {
                seconds: T0 / 1000 + 8,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = ranged.decisions.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["dec-m-7", "dec-m-6", "dec-m-5"]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_answer() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use tonic_reflection::pb::v1 as reflection;
    use tonic_reflection::pb::v1alpha as reflection_alpha;

    let server = TestServer::start(PipelineOptions::default(), ServerOptions::default()).await;
    let channel = server.channel().await;
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "enforcement.v1.Enforcement"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "service {service:?}");
    }

    // v1: list the services, and fetch the file that defines ours.
    let mut v1_client =
        reflection::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let requests = tokio_stream::iter([
        reflection::ServerReflectionRequest {
            message_request: Some(
                reflection::server_reflection_request::MessageRequest::ListServices(String::new()),
            ),
            ..Default::default()
        },
        reflection::ServerReflectionRequest {
            message_request: Some(
                reflection::server_reflection_request::MessageRequest::FileContainingSymbol(
                    "enforcement.v1.Enforcement".into(),
                ),
            ),
            ..Default::default()
        },
    ]);
    let mut responses = v1_client
        .server_reflection_info(requests)
        .await
        .unwrap()
        .into_inner();
    let listed = responses.next().await.unwrap().unwrap();
    let Some(reflection::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        listed.message_response
    else {
        panic!("not a service list: {listed:?}")
    };
    let names: HashSet<String> = list.service.into_iter().map(|s| s.name).collect();
    for name in [
        "enforcement.v1.Enforcement",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(names.contains(name), "{name} not listed: {names:?}");
    }
    assert!(
        !names.contains("enforcement.v1.Admin"),
        "the data plane does not serve the control plane: {names:?}"
    );
    let file = responses.next().await.unwrap().unwrap();
    let Some(reflection::server_reflection_response::MessageResponse::FileDescriptorResponse(
        files,
    )) = file.message_response
    else {
        panic!("no descriptor: {file:?}")
    };
    let descriptor = <prost_types::FileDescriptorProto as prost::Message>::decode(
        files.file_descriptor_proto[0].as_slice(),
    )
    .unwrap();
    assert_eq!(descriptor.package(), "enforcement.v1");
    assert!(descriptor.service.iter().any(|s| s.name() == "Enforcement"));

    // v1alpha, which older tools still use.
    let mut alpha =
        reflection_alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let request = reflection_alpha::ServerReflectionRequest {
        message_request: Some(
            reflection_alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
        ..Default::default()
    };
    let listed = alpha
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner()
        .next()
        .await
        .unwrap()
        .unwrap();
    let Some(reflection_alpha::server_reflection_response::MessageResponse::ListServicesResponse(
        list,
    )) = listed.message_response
    else {
        panic!("not a service list: {listed:?}")
    };
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "enforcement.v1.Enforcement")
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_every_event_read_then_ends_streams_unavailable() {
    let server = TestServer::start(PipelineOptions::default(), ServerOptions::default()).await;
    let mut client = server.client().await;
    let mut watcher = client
        .watch_decisions(v1::WatchDecisionsRequest::default())
        .await
        .unwrap()
        .into_inner();

    // A stream whose client keeps it open: 50 events, then silence.
    let (requests, receiver) = tokio::sync::mpsc::channel(64);
    for event in messages("s", "s", 50, T0) {
        requests
            .send(v1::EvaluateRequest {
                event: Some(wire(&event)),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let mut results = client
        .evaluate_stream(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await
        .unwrap()
        .into_inner();
    let mut answered = Vec::new();
    while answered.len() < 50 {
        answered.push(results.next().await.unwrap().unwrap());
    }

    let log = server.log.clone();
    let stopping = tokio::spawn(server.shutdown());
    let ended = results.next().await.expect("the stream ends with a status");
    let status = ended.expect_err("ended by shutdown");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status}");
    assert!(status.message().contains("shutting down"), "{status}");
    let watcher_end = loop {
        match watcher.next().await {
            Some(Ok(_)) => continue,
            Some(Err(status)) => break status,
            None => panic!("the watcher ended without saying why"),
        }
    };
    assert_eq!(watcher_end.code(), tonic::Code::Unavailable);
    stopping.await.unwrap();
    drop(requests);

    // Every event answered is in the log.
    for result in &answered {
        assert!(log.get(&format!("dec-{}", result.event_id)).is_some());
    }
}

/// `Evaluate` with the compact view, and the same decision from the log.
async fn compact_and_logged(
    client: &mut v1::enforcement_client::EnforcementClient<tonic::transport::Channel>,
    event: &Event,
) -> (v1::Decision, v1::Decision) {
    let compact = client
        .evaluate(v1::EvaluateRequest {
            event: Some(wire(event)),
            view: v1::DecisionView::Compact as i32,
        })
        .await
        .unwrap()
        .into_inner()
        .decision
        .unwrap();
    let logged = client
        .get_decision(v1::GetDecisionRequest {
            decision_id: compact.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    (compact, logged)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compact_decision_leaves_out_the_event_and_quiet_rules_and_the_log_keeps_all() {
    let server = TestServer::start(PipelineOptions::default(), ServerOptions::default()).await;
    let mut client = server.client().await;

    // A forward the mass-forwarding rule limits: its report stays.
    let event = &forwards("compact", "c", 1, T0)[0];
    let (compact, full) = compact_and_logged(&mut client, event).await;
    assert_eq!(compact.event, None);
    let fired: Vec<&str> = compact.rules.iter().map(|r| r.rule.as_str()).collect();
    assert_eq!(fired, ["mass-forwarding"]);
    assert!(has_action(&compact, v1::ActionType::LimitForwarding));
    assert_eq!(full.event, Some(wire(event)));
    assert_eq!(full.rules, compact.rules);
    assert_eq!(
        (full.outcome, full.sequence, full.policy_version),
        (compact.outcome, compact.sequence, compact.policy_version)
    );

    // An ordinary message: several rules subscribe, none fires; compact
    // leaves all their reports out, the log keeps them.
    let quiet = &messages("compact", "q", 1, T0)[0];
    let (compact, full) = compact_and_logged(&mut client, quiet).await;
    assert!(compact.rules.is_empty(), "{:?}", compact.rules);
    assert!(full.rules.len() >= 2, "{:?}", full.rules);
    server.shutdown().await;
}

/// The server reclaims aged-out state on a background task: with the
/// pipeline's inline sweeps off, an entity whose history has aged out is
/// still forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_sweeps_aged_out_state_in_the_background() {
    let options = PipelineOptions {
        sweep_every_events: None,
        ..PipelineOptions::default()
    };
    let server_options = ServerOptions {
        sweep_interval: Some(std::time::Duration::from_millis(50)),
        ..ServerOptions::default()
    };
    let server = TestServer::start(options, server_options).await;
    let mut client = server.client().await;
    evaluate_all(&mut client, &forwards("old", "o", 3, T0)).await;
    // Forty days later (past every counter's longest window, 31 days, and
    // the lateness allowance), another account acts.
    let later = T0 + 40 * 24 * 3600 * 1000;
    evaluate_all(&mut client, &forwards("new", "n", 1, later)).await;
    let state = || server.pipeline.live_state().size().entities;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while state() > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "still {} entities after 20 s",
            state()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(state(), 1);
    server.shutdown().await;
}
