//! Spans exported over OTLP: the `enforcer` binary, told to trace every
//! evaluation, sends a collector run here (the protocol's own gRPC service)
//! an `evaluate` span for each event, carrying the event's id and its
//! decision's id, under the configured service name; and its JSON logs
//! carry the same ids.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use enforcer::api::v1;
use enforcer::api::v1::enforcement_client::EnforcementClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use tonic::{Request, Response, Status};

use crate::common::{free_port, start_listening};
use crate::crash::enforcer_binary;
use crate::grpc_errors::good;

/// A good event dated now (the engine refuses events far from its clock).
fn current(id: &str) -> v1::EvaluateRequest {
    let mut event = good(id);
    event.occurred_at = Some(prost_types::Timestamp {
        seconds: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
        nanos: 0,
    });
    v1::EvaluateRequest {
        event: Some(event),
        ..Default::default()
    }
}

/// One span as the collector received it.
#[derive(Clone, Debug)]
struct Received {
    service: String,
    name: String,
    attributes: Vec<(String, String)>,
}

impl Received {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Received>>>,
}

fn text(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .map(|a| text(a.value.as_ref()))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push(Received {
                        service: service.clone(),
                        name: span.name,
                        attributes: span
                            .attributes
                            .iter()
                            .map(|a| (a.key.clone(), text(a.value.as_ref())))
                            .collect(),
                    });
                }
            }
        }
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_evaluation_is_a_span_naming_its_decision() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("enforcer.toml");
    std::fs::write(
        &config,
        format!(
            "[tracing]\notlp_endpoint = \"http://{collector_addr}\"\nservice_name = \"enforcer-under-test\"\nsample_ratio = 1.0\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let mut command = Command::new(enforcer_binary());
    command
        .args(["serve", "--in-memory", "--log-format", "json", "--config"])
        .arg(&config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        // The rules' own log lines at every level, and batches sent often.
        .env("RUST_LOG", "warn,enforcer=debug")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100");
    let mut server = start_listening(command, port);

    let mut client = EnforcementClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    let mut decided = Vec::new();
    for i in 0..3 {
        let response = client
            .evaluate(current(&format!("traced-{i}")))
            .await
            .unwrap()
            .into_inner();
        decided.push((format!("traced-{i}"), response.decision.unwrap().id));
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    let evaluations = loop {
        let spans = collector.spans.lock().unwrap().clone();
        let evaluations: Vec<Received> = spans
            .into_iter()
            .filter(|span| span.name == "evaluate")
            .collect();
        if evaluations.len() >= decided.len() || Instant::now() > deadline {
            break evaluations;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for (event, decision) in &decided {
        let span = evaluations
            .iter()
            .find(|span| span.attribute("event") == Some(event.as_str()))
            .unwrap_or_else(|| panic!("no span for {event}: {evaluations:?}"));
        assert_eq!(span.attribute("decision"), Some(decision.as_str()));
        assert_eq!(span.service, "enforcer-under-test");
    }
    assert_eq!(evaluations.len(), decided.len(), "{evaluations:?}");

    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn json_logs_carry_the_decision_id() {
    let port = free_port();
    let mut server = Command::new(enforcer_binary())
        .args(["serve", "--in-memory", "--log-format", "json"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn,enforcer=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start enforcer");
    let stderr = server.stderr.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let decision = runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut client = loop {
            match EnforcementClient::connect(format!("http://127.0.0.1:{port}")).await {
                Ok(client) => break client,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("connect: {e}"),
            }
        };
        client
            .evaluate(current("logged-1"))
            .await
            .unwrap()
            .into_inner()
            .decision
            .unwrap()
            .id
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let decided = loop {
        let line = received
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("a `decided` log line");
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
            panic!("a log line that is not JSON: {line}");
        };
        if json["fields"]["message"] == "decided" {
            break json;
        }
    };
    assert_eq!(decided["span"]["name"], "evaluate", "{decided}");
    assert_eq!(decided["span"]["decision"], decision.as_str(), "{decided}");
    assert_eq!(decided["span"]["event"], "logged-1", "{decided}");
    let _ = server.kill();
    let _ = server.wait();
}
