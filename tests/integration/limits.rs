//! Back-pressure over real connections: per-client rate limits on unary
//! calls and inside streams (each event over the limit answered on its own,
//! in order), and `Evaluate` calls shed with `RESOURCE_EXHAUSTED` when more
//! batches wait for a worker than allowed. Nothing refused is decided.

use std::collections::HashMap;
use std::sync::Arc;

use enforcer::access::{AccessConfig, AccessControl, ClientConfig, DataPlaneAccess, Role};
use enforcer::api::v1;
use enforcer::api::v1::enforcement_client::EnforcementClient;
use enforcer::pipeline::{Pipeline, PipelineOptions};
use enforcer::policy::Policy;
use enforcer::rule::Rule;
use enforcer::runtime::Runtime;
use enforcer::server::ServerOptions;
use enforcer::server::rate_limit::{Rate, RateLimits};
use tonic::Code;

use crate::common::plugin;
use crate::grpc_errors::good;
use crate::grpc_server::{BearerToken, TestServer};

const BATCH_TOKEN: &str = "batch-client-token-0123456789";
const GATEWAY_TOKEN: &str = "gateway-client-token-0123456789";

fn request(id: &str) -> v1::EvaluateRequest {
    v1::EvaluateRequest {
        event: Some(good(id)),
        ..Default::default()
    }
}

/// Two known clients: `batch` limited to a burst of 5 and 1 event/s,
/// `gateway` with no limit of its own and none by default.
async fn limited_server() -> TestServer {
    let client = |name: &str, token: &str| ClientConfig {
        name: name.into(),
        token: Some(token.into()),
        certificate_name: None,
        roles: vec![Role::Evaluate],
        events_per_second: None,
    };
    let access = AccessConfig {
        data_plane: DataPlaneAccess::Authenticated,
        clients: vec![
            client("batch", BATCH_TOKEN),
            client("gateway", GATEWAY_TOKEN),
        ],
    };
    let per_client = HashMap::from([(
        Arc::<str>::from("batch"),
        Rate {
            per_second: 1.0,
            burst: 5.0,
        },
    )]);
    let options = ServerOptions {
        access: Arc::new(AccessControl::new(&access, &[])),
        rate_limits: Arc::new(RateLimits::new(None, per_client)),
        ..ServerOptions::default()
    };
    TestServer::start(
        PipelineOptions {
            max_future_skew_ms: None,
            ..PipelineOptions::default()
        },
        options,
    )
    .await
}

async fn client_of(
    server: &TestServer,
    token: &str,
) -> EnforcementClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, BearerToken>,
> {
    EnforcementClient::with_interceptor(server.channel().await, BearerToken(Some(token.into())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_rate_is_refused_and_others_are_not() {
    let server = limited_server().await;
    let mut batch = client_of(&server, BATCH_TOKEN).await;
    for i in 0..5 {
        batch
            .evaluate(request(&format!("within-{i}")))
            .await
            .expect("within the burst");
    }
    let refused = batch.evaluate(request("over")).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("client `batch`") && refused.message().contains("1 events/s"),
        "{}",
        refused.message()
    );
    let pushback: u64 = refused
        .metadata()
        .get("grpc-retry-pushback-ms")
        .expect("a retry pushback")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1000).contains(&pushback), "{pushback}");
    // Another client is not held back by the first one's limit.
    let mut gateway = client_of(&server, GATEWAY_TOKEN).await;
    for i in 0..20 {
        gateway
            .evaluate(request(&format!("gateway-{i}")))
            .await
            .expect("no limit");
    }
    assert!(
        server.log.get("dec-over").is_none(),
        "a refused event is not decided"
    );
    assert_eq!(server.log.len(), 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_answers_each_event_over_the_limit_in_order() {
    let server = limited_server().await;
    let requests: Vec<_> = (0..12).map(|i| request(&format!("streamed-{i}"))).collect();
    let mut call = tonic::Request::new(tokio_stream::iter(requests));
    call.metadata_mut().insert(
        "authorization",
        format!("Bearer {BATCH_TOKEN}").parse().unwrap(),
    );
    let mut answers = server
        .client()
        .await
        .evaluate_stream(call)
        .await
        .unwrap()
        .into_inner();
    let mut results = Vec::new();
    while let Some(result) = answers.message().await.unwrap() {
        results.push(result);
    }
    assert_eq!(results.len(), 12);
    use v1::evaluate_stream_response::Result as R;
    let mut decided = 0;
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result.event_id, format!("streamed-{i}"), "in order");
        match &result.result {
            Some(R::Evaluated(_)) => {
                assert_eq!(
                    decided, i,
                    "every decided event comes before every refused one"
                );
                decided += 1;
            }
            Some(R::Error(error)) => {
                assert_eq!(error.code, Code::ResourceExhausted as i32, "{error:?}");
                assert!(error.message.contains("rate limit"), "{error:?}");
            }
            None => panic!("an empty result"),
        }
    }
    // The burst, and perhaps one more refilled while the stream ran.
    assert!((5..=6).contains(&decided), "{decided} decided");
    assert_eq!(server.log.len(), decided);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_waiting_limit_are_shed() {
    // One worker, a rule that spins until its fuel runs out (about 10 ms a
    // call), and room for two batches to wait: most of 40 calls sent at
    // once are shed.
    let runtime = Runtime::new().unwrap();
    let spinning: Arc<dyn Rule> = Arc::new(runtime.load(&plugin("hostile-infinite-loop")).unwrap());
    let policy = Policy::parse("version = \"shed\"\n").unwrap();
    let options = PipelineOptions {
        max_future_skew_ms: None,
        ..PipelineOptions::default()
    };
    let pipeline = Arc::new(Pipeline::new(vec![spinning], policy, options).unwrap());
    let server = TestServer::start_with(
        pipeline,
        1000,
        ServerOptions {
            workers: 1,
            max_waiting_batches: 2,
            ..ServerOptions::default()
        },
    )
    .await;
    let client = server.client().await;
    let calls = (0..40).map(|i| {
        let mut client = client.clone();
        async move { client.evaluate(request(&format!("crowd-{i}"))).await }
    });
    let answered = futures_util::future::join_all(calls).await;
    let mut shed = 0;
    for answer in &answered {
        if let Err(status) = answer {
            assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
            assert!(
                status.message().contains("overloaded"),
                "{}",
                status.message()
            );
            shed += 1;
        }
    }
    let decided = answered.len() - shed;
    assert!(shed >= 20, "only {shed} of 40 shed");
    assert!(decided >= 1, "nothing decided");
    assert_eq!(server.log.len(), decided, "a shed call is not decided");
}
