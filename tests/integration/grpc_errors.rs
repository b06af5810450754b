//! Bad requests over gRPC: each gets the status a client can act on, with a
//! message naming the field, and none of them changes the engine's state or
//! stops it serving good requests.

use enforcer::api::v1;
use enforcer::event::{Entity, Event, Value};
use enforcer::pipeline::PipelineOptions;
use enforcer::server::ServerOptions;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::grpc_server::{TestServer, evaluate_stream_whole, wire};

const T0: i64 = 1_764_000_000_000;

/// An event every check passes.
pub(crate) fn good(id: &str) -> v1::Event {
    wire(&Event::new(
        id,
        "message.sent",
        T0,
        Entity::account("sender"),
    ))
}

/// A good event with one change made by `change`.
fn broken(change: impl FnOnce(&mut v1::Event)) -> Option<v1::Event> {
    let mut event = good("broken");
    change(&mut event);
    Some(event)
}

fn text(value: &str) -> v1::Value {
    v1::Value {
        kind: Some(v1::value::Kind::Text(value.into())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_events_are_refused_naming_the_field() {
    let server = TestServer::start(PipelineOptions::default(), ServerOptions::default()).await;
    let mut client = server.client().await;
    let far_future = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 3600;

    let cases: Vec<(Option<v1::Event>, &str)> = vec![
        (None, "event: is missing"),
        (broken(|e| e.id.clear()), "event.id: is empty"),
        (broken(|e| e.id = "x".repeat(300)), "event.id: is 300 bytes"),
        (broken(|e| e.kind.clear()), "event.kind: is empty"),
        (broken(|e| e.kind = "no spaces".into()), "event.kind:"),
        (
            broken(|e| e.occurred_at = None),
            "event.occurred_at: is missing",
        ),
        (
            broken(|e| e.occurred_at.as_mut().unwrap().nanos = -1),
            "event.occurred_at: nanos -1",
        ),
        (
            broken(|e| e.occurred_at.as_mut().unwrap().seconds = -5),
            "event.occurred_at: -5000 ms is before the Unix epoch",
        ),
        (
            broken(|e| e.occurred_at.as_mut().unwrap().seconds = far_future),
            "s ahead of the engine's clock",
        ),
        (broken(|e| e.actor = None), "event.actor: is missing"),
        (
            broken(|e| e.actor.as_mut().unwrap().r#type = 0),
            "event.actor.type: is unspecified",
        ),
        (
            broken(|e| e.actor.as_mut().unwrap().r#type = 9),
            "event.actor.type: 9 is not an entity type",
        ),
        (
            broken(|e| e.actor.as_mut().unwrap().id.clear()),
            "event.actor.id: is empty",
        ),
        (
            broken(|e| {
                e.target = Some(v1::Entity {
                    r#type: v1::EntityType::Group as i32,
                    id: String::new(),
                })
            }),
            "event.target.id: is empty",
        ),
        (
            broken(|e| {
                e.attributes
                    .insert("empty".into(), v1::Value { kind: None });
            }),
            "event.attributes[\"empty\"]: has no value set",
        ),
        (
            broken(|e| {
                e.attributes.insert("bad name".into(), text("x"));
            }),
            "event.attributes[\"bad name\"]",
        ),
        (
            broken(|e| {
                for i in 0..300 {
                    e.attributes.insert(format!("a{i}"), text("x"));
                }
            }),
            "event.attributes: 300 attributes, over the limit of 256",
        ),
    ];
    for (event, expected) in cases {
        let status = client
            .evaluate(v1::EvaluateRequest {
                event,
                ..Default::default()
            })
            .await
            .expect_err(expected);
        assert_eq!(status.code(), Code::InvalidArgument, "{expected}: {status}");
        assert!(
            status.message().contains(expected),
            "expected {expected:?} in {:?}",
            status.message()
        );
    }
    // Nothing was decided, logged or counted.
    assert!(server.log.is_empty());
    assert_eq!(server.pipeline.live_state().size().entities, 0);
    // And good requests are still served.
    let response = client
        .evaluate(v1::EvaluateRequest {
            event: Some(good("fine")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.decision.unwrap().id, "dec-fine");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_event_in_a_stream_gets_an_error_result_and_the_stream_goes_on() {
    let server = TestServer::start(PipelineOptions::default(), ServerOptions::default()).await;
    let mut client = server.client().await;
    let requests = vec![
        v1::EvaluateRequest {
            event: Some(good("first")),
            ..Default::default()
        },
        v1::EvaluateRequest {
            event: broken(|e| {
                e.id = "bad".into();
                e.actor = None;
            }),
            ..Default::default()
        },
        v1::EvaluateRequest {
            event: None,
            ..Default::default()
        },
        v1::EvaluateRequest {
            event: Some(good("last")),
            ..Default::default()
        },
    ];
    let results = evaluate_stream_whole(&mut client, requests).await;
    let ids: Vec<&str> = results.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(ids, ["first", "bad", "", "last"]);
    use v1::evaluate_stream_response::Result as R;
    assert!(matches!(results[0].result, Some(R::Evaluated(_))));
    let Some(R::Error(error)) = &results[1].result else {
        panic!("{:?}", results[1])
    };
    assert_eq!(error.code, Code::InvalidArgument as i32);
    assert_eq!(
        (error.field.as_str(), error.message.as_str()),
        ("event.actor", "is missing")
    );
    let Some(R::Error(error)) = &results[2].result else {
        panic!("{:?}", results[2])
    };
    assert_eq!(error.field, "event");
    assert!(matches!(results[3].result, Some(R::Evaluated(_))));
    assert_eq!(server.log.len(), 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_are_resource_exhausted_on_both_calls() {
    let limits = ServerOptions {
        max_message_bytes: 16 * 1024,
        ..ServerOptions::default()
    };
    let server = TestServer::start(PipelineOptions::default(), limits).await;
    let mut client = server.client().await;
    let huge = wire(
        &Event::new("huge", "message.sent", T0, Entity::account("a"))
            .with("body", Value::Text("x".repeat(64 * 1024))),
    );

    let status = client
        .evaluate(v1::EvaluateRequest {
            event: Some(huge.clone()),
            ..Default::default()
        })
        .await
        .expect_err("over the limit");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    assert!(
        status
            .message()
            .contains("over this server's limit of 16384 bytes"),
        "{status}"
    );

    // In a stream: the events before it are answered, then the stream
    // ends with the same status.
    let requests = vec![
        v1::EvaluateRequest {
            event: Some(good("before")),
            ..Default::default()
        },
        v1::EvaluateRequest {
            event: Some(huge),
            ..Default::default()
        },
    ];
    let mut results = client
        .evaluate_stream(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut answered = Vec::new();
    let ending = loop {
        match results.next().await {
            Some(Ok(result)) => answered.push(result.event_id),
            Some(Err(status)) => break status,
            None => panic!("the stream ended without a status"),
        }
    };
    assert_eq!(answered, ["before"]);
    assert_eq!(ending.code(), Code::ResourceExhausted, "{ending}");
    assert!(server.log.get("dec-huge").is_none());

    // The connection and the server are fine afterwards.
    client
        .evaluate(v1::EvaluateRequest {
            event: Some(good("after")),
            ..Default::default()
        })
        .await
        .expect("still serving");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lookups_and_watches_are_refused_precisely() {
    let server = TestServer::start(PipelineOptions::default(), ServerOptions::default()).await;
    let mut client = server.client().await;

    let status = client
        .get_decision(v1::GetDecisionRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::InvalidArgument, "decision_id: is empty")
    );
    let status = client
        .get_decision(v1::GetDecisionRequest {
            decision_id: "dec-never".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status}");

    let account = Some(v1::Entity {
        r#type: v1::EntityType::Account as i32,
        id: "a".into(),
    });
    let list_cases = [
        (v1::ListDecisionsRequest::default(), "entity: is missing"),
        (
            v1::ListDecisionsRequest {
                entity: Some(v1::Entity {
                    r#type: 0,
                    id: "a".into(),
                }),
                ..Default::default()
            },
            "entity.type: is unspecified",
        ),
        (
            v1::ListDecisionsRequest {
                entity: account.clone(),
                page_size: 5000,
                ..Default::default()
            },
            "page_size: 5000 is over the limit of 1000",
        ),
        (
            v1::ListDecisionsRequest {
                entity: account.clone(),
                page_token: "forged".into(),
                ..Default::default()
            },
            "page_token:",
        ),
        (
            v1::ListDecisionsRequest {
                entity: account.clone(),
                from: Some(prost_types::Timestamp {
                    seconds: 0,
                    nanos: 2_000_000_000,
                }),
                ..Default::default()
            },
            "from: nanos",
        ),
    ];
    for (request, expected) in list_cases {
        let status = client.list_decisions(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status}");
        assert!(
            status.message().starts_with(expected),
            "{expected:?}: {status}"
        );
    }

    let watch_cases = [
        (
            v1::WatchDecisionsRequest {
                actions: vec![1, 42],
                ..Default::default()
            },
            "actions[1]: 42 is not an action type",
        ),
        (
            v1::WatchDecisionsRequest {
                min_severity: 17,
                ..Default::default()
            },
            "min_severity: 17 is not a severity",
        ),
    ];
    for (request, expected) in watch_cases {
        let status = client.watch_decisions(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status}");
        assert_eq!(status.message(), expected);
    }
    server.shutdown().await;
}
