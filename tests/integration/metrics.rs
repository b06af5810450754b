//! Metrics end to end: simulated traffic over both evaluation calls (good
//! events, malformed ones, copies of decided ones) to a real server, then
//! `/metrics` scraped over plain HTTP and every figure checked against a
//! count made from the decisions the clients were given: decisions by
//! severity and action, each rule build's calls, skips, verdicts, errors,
//! call-time and fuel histograms, shadow disagreements, refusals,
//! duplicates, the gRPC methods' status codes, the queues and the state.
//! And the `enforcer` binary serving `--metrics-listen`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use enforcer::api::v1;
use enforcer::examples::{EXAMPLE_POLICY, load_example_rules};
use enforcer::metrics::{Metrics, serve_metrics};
use enforcer::pipeline::{Pipeline, PipelineOptions};
use enforcer::policy::Policy;
use enforcer::runtime::Runtime;
use enforcer::server::ServerOptions;
use enforcer_examples::simulator::{SimConfig, Simulator};
use tonic::Code;

use crate::crash::enforcer_binary;
use crate::grpc_server::{TestServer, evaluate_stream_whole, wire};

/// An HTTP/1.1 GET on a fresh connection: the status, the headers (lower
/// case) and the body.
async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n");
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("the endpoint answers");
        response
    })
    .await
    .unwrap();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("headers, then a body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// Every sample of a Prometheus text scrape: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            (series.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

/// A proto enum's name as the metrics spell it: `SEVERITY_BLOCK` → `block`.
fn label(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix)
        .expect("a prefixed enum name")
        .to_ascii_lowercase()
}

fn severity(value: i32) -> String {
    label(
        v1::Severity::try_from(value).unwrap().as_str_name(),
        "SEVERITY_",
    )
}

/// What the scrape must say, counted from the decisions the clients got.
#[derive(Default)]
struct Expected {
    decisions: BTreeMap<String, f64>,
    actions: BTreeMap<String, f64>,
    shadow: BTreeMap<String, f64>,
    disagreements: f64,
    /// Per rule build (`rule="..",version="..",mode=".."`).
    calls: BTreeMap<String, f64>,
    skips: BTreeMap<String, f64>,
    fuel: BTreeMap<String, f64>,
    micros: BTreeMap<String, f64>,
    /// Per rule build and severity or error kind.
    verdicts: BTreeMap<String, f64>,
    errors: BTreeMap<String, f64>,
}

impl Expected {
    fn count(&mut self, decision: &v1::Decision) {
        let outcome = decision.outcome.as_ref().unwrap();
        *self
            .decisions
            .entry(severity(outcome.severity))
            .or_default() += 1.0;
        for action in &outcome.actions {
            let name = v1::ActionType::try_from(action.action)
                .unwrap()
                .as_str_name();
            *self.actions.entry(label(name, "ACTION_TYPE_")).or_default() += 1.0;
        }
        if let Some(shadow) = &decision.shadow {
            let outcome = shadow.outcome.as_ref().unwrap();
            *self.shadow.entry(severity(outcome.severity)).or_default() += 1.0;
            self.disagreements += f64::from(u8::from(shadow.differs));
        }
        for report in &decision.rules {
            let mode = label(
                v1::Mode::try_from(report.mode).unwrap().as_str_name(),
                "MODE_",
            );
            let build = format!(
                r#"rule="{}",version="{}",mode="{mode}""#,
                report.rule, report.version
            );
            if report.skipped {
                *self.skips.entry(build).or_default() += 1.0;
                continue;
            }
            *self.calls.entry(build.clone()).or_default() += 1.0;
            *self.fuel.entry(build.clone()).or_default() += report.fuel_used as f64;
            *self.micros.entry(build.clone()).or_default() += report.elapsed_us as f64;
            match &report.error {
                Some(error) => {
                    *self
                        .errors
                        .entry(format!(r#"{build},kind="{}""#, error.kind))
                        .or_default() += 1.0
                }
                None => {
                    *self
                        .verdicts
                        .entry(format!(
                            r#"{build},severity="{}""#,
                            severity(report.severity)
                        ))
                        .or_default() += 1.0
                }
            }
        }
    }
}

/// The example rules under the example policy with `harmful-text` in
/// shadow (it fires on this traffic from the start), so that shadow
/// decisions and their disagreements are made.
fn pipeline(options: PipelineOptions) -> Arc<Pipeline> {
    let runtime = Runtime::new().unwrap();
    let rules = load_example_rules(&runtime).unwrap_or_else(|(n, e)| panic!("{n}: {e}"));
    let enforced = "[rules.harmful-text]\nweight = 0.8\n";
    assert!(EXAMPLE_POLICY.contains(enforced));
    let policy = EXAMPLE_POLICY.replace(
        enforced,
        "[rules.harmful-text]\nweight = 0.8\nmode = \"shadow\"\n",
    );
    let policy = Policy::parse(&policy).unwrap();
    Arc::new(Pipeline::new(rules, policy, options).unwrap())
}

const METHOD: &str = r#"grpc_service="enforcement.v1.Enforcement",grpc_method"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_counts_what_the_clients_were_told() {
    let traffic = Simulator::new(SimConfig::community(23, 1_200, 30))
        .expect("valid config")
        .run();
    let events: Vec<v1::Event> = traffic.events[..600]
        .iter()
        .map(|l| wire(&l.event))
        .collect();
    let metrics = Arc::new(Metrics::new());
    let options = PipelineOptions {
        banks: traffic.hash_banks(),
        ..PipelineOptions::default()
    };
    let workers = 3;
    let server = TestServer::start_with(
        pipeline(options),
        10_000,
        ServerOptions {
            workers,
            metrics: Some(metrics.clone()),
            ..ServerOptions::default()
        },
    )
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = listener.local_addr().unwrap();
    let (stop_endpoint, endpoint_stopping) = tokio::sync::oneshot::channel::<()>();
    let endpoint_task = tokio::spawn(serve_metrics(listener, metrics.clone(), None, async move {
        let _ = endpoint_stopping.await;
    }));
    let mut client = server.client().await;
    let full = |event: v1::Event| v1::EvaluateRequest {
        event: Some(event),
        view: v1::DecisionView::Full as i32,
    };
    let malformed = |id: &str| {
        let mut event = events[0].clone();
        event.id = id.to_string();
        event.kind.clear();
        event
    };
    let mut expected = Expected::default();

    // Half over Evaluate, with five malformed events among them.
    let (mut unary_ok, mut unary_invalid) = (0.0, 0.0);
    for (index, event) in events[..300].iter().enumerate() {
        if index % 60 == 7 {
            let status = client
                .evaluate(full(malformed(&format!("bad-unary-{index}"))))
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
            unary_invalid += 1.0;
        }
        let response = client
            .evaluate(full(event.clone()))
            .await
            .unwrap()
            .into_inner();
        assert!(!response.duplicate);
        expected.count(response.decision.as_ref().unwrap());
        unary_ok += 1.0;
    }
    assert_eq!(unary_invalid, 5.0);

    // Half over one EvaluateStream, with four malformed events among them.
    let mut requests = Vec::new();
    for (index, event) in events[300..].iter().enumerate() {
        if index % 75 == 3 {
            requests.push(full(malformed(&format!("bad-stream-{index}"))));
        }
        requests.push(full(event.clone()));
    }
    let (mut streamed, mut stream_invalid) = (0, 0.0);
    for result in evaluate_stream_whole(&mut client, requests).await {
        match result.result.unwrap() {
            v1::evaluate_stream_response::Result::Evaluated(response) => {
                assert!(!response.duplicate);
                expected.count(response.decision.as_ref().unwrap());
                streamed += 1;
            }
            v1::evaluate_stream_response::Result::Error(error) => {
                assert_eq!(error.field, "event.kind");
                stream_invalid += 1.0;
            }
        }
    }
    assert_eq!((streamed, stream_invalid), (300, 4.0));

    // Three copies of decided events: answered from memory.
    for event in &events[..3] {
        let response = client
            .evaluate(full(event.clone()))
            .await
            .unwrap()
            .into_inner();
        assert!(response.duplicate);
        unary_ok += 1.0;
    }

    // A sweep now, so that the state's sizes are those of this traffic.
    let pipeline = server.pipeline.clone();
    tokio::task::spawn_blocking(move || pipeline.sweep())
        .await
        .unwrap();

    let (status, head, body) = get(endpoint, "/metrics", &[]).await;
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let got = samples(&body);
    let value = |series: &str| -> f64 {
        *got.get(series)
            .unwrap_or_else(|| panic!("no series {series} in the scrape:\n{body}"))
    };

    // Decisions: one per distinct good event, by severity and action.
    let decided: f64 = ["allow", "review", "limit", "block"]
        .iter()
        .map(|s| value(&format!(r#"enforcer_decisions_total{{severity="{s}"}}"#)))
        .sum();
    assert_eq!(decided, 600.0);
    for (severity, count) in &expected.decisions {
        assert_eq!(
            value(&format!(
                r#"enforcer_decisions_total{{severity="{severity}"}}"#
            )),
            *count,
            "{severity}"
        );
    }
    assert!(
        expected.decisions.keys().any(|s| s != "allow"),
        "the traffic fires rules"
    );
    for (action, count) in &expected.actions {
        assert_eq!(
            value(&format!(
                r#"enforcer_decision_actions_total{{action="{action}"}}"#
            )),
            *count,
            "{action}"
        );
    }
    assert!(
        !expected.actions.is_empty(),
        "the traffic carries out actions"
    );
    for (severity, count) in &expected.shadow {
        assert_eq!(
            value(&format!(
                r#"enforcer_shadow_decisions_total{{severity="{severity}"}}"#
            )),
            *count
        );
    }
    assert!(expected.disagreements > 0.0, "the shadow rule disagrees");
    assert_eq!(
        value("enforcer_shadow_disagreements_total"),
        expected.disagreements
    );

    // Each rule build: calls, skips, verdicts, errors, and histograms
    // whose counts are the calls and whose sums are the reports'.
    assert!(expected.calls.len() >= 4, "{:?}", expected.calls.keys());
    assert!(
        expected
            .calls
            .keys()
            .any(|b| b.contains(r#"mode="shadow""#)),
        "a shadow build is counted apart"
    );
    assert!(!expected.skips.is_empty(), "guards skip some calls");
    for (build, calls) in &expected.calls {
        assert_eq!(
            value(&format!("enforcer_rule_calls_total{{{build}}}")),
            *calls,
            "{build}"
        );
        for histogram in ["rule_call_duration_seconds", "rule_fuel_used"] {
            assert_eq!(
                value(&format!("enforcer_{histogram}_count{{{build}}}")),
                *calls,
                "{histogram} {build}"
            );
            assert_eq!(
                value(&format!(
                    r#"enforcer_{histogram}_bucket{{{build},le="+Inf"}}"#
                )),
                *calls
            );
        }
        assert_eq!(
            value(&format!("enforcer_rule_fuel_used_sum{{{build}}}")),
            expected.fuel[build],
            "fuel of {build}"
        );
        let seconds = value(&format!(
            "enforcer_rule_call_duration_seconds_sum{{{build}}}"
        ));
        assert!(
            (seconds * 1e6 - expected.micros[build]).abs() < 1e-3,
            "{build}: {seconds} s, {} µs",
            expected.micros[build]
        );
    }
    for (build, skips) in &expected.skips {
        assert_eq!(
            value(&format!("enforcer_rule_skips_total{{{build}}}")),
            *skips
        );
    }
    for (series, count) in &expected.verdicts {
        assert_eq!(
            value(&format!("enforcer_rule_verdicts_total{{{series}}}")),
            *count
        );
    }
    for (series, count) in &expected.errors {
        assert_eq!(
            value(&format!("enforcer_rule_errors_total{{{series}}}")),
            *count
        );
    }
    // And nothing counted that no client was told of.
    let total = |prefix: &str| -> f64 {
        got.iter()
            .filter(|(series, _)| series.starts_with(prefix))
            .map(|(_, v)| v)
            .sum()
    };
    let sum = |map: &BTreeMap<String, f64>| -> f64 { map.values().sum() };
    assert_eq!(total("enforcer_rule_calls_total{"), sum(&expected.calls));
    assert_eq!(total("enforcer_rule_skips_total{"), sum(&expected.skips));
    assert_eq!(
        total("enforcer_rule_verdicts_total{"),
        sum(&expected.verdicts)
    );
    assert_eq!(total("enforcer_rule_errors_total{"), sum(&expected.errors));
    assert_eq!(
        total("enforcer_decision_actions_total{"),
        sum(&expected.actions)
    );

    // Refusals and copies.
    assert_eq!(
        value(r#"enforcer_events_refused_total{reason="invalid"}"#),
        unary_invalid + stream_invalid
    );
    for reason in [
        "state_unavailable",
        "log_unavailable",
        "first_copy_unlogged",
        "rate_limited",
        "shed",
    ] {
        assert_eq!(
            value(&format!(
                r#"enforcer_events_refused_total{{reason="{reason}"}}"#
            )),
            0.0
        );
    }
    assert_eq!(value("enforcer_duplicate_events_total"), 3.0);

    // The calls, by their final status.
    let requests = |method: &str, code: &str| {
        value(&format!(
            r#"enforcer_grpc_requests_total{{{METHOD}="{method}",grpc_code="{code}"}}"#
        ))
    };
    assert_eq!(requests("Evaluate", "OK"), unary_ok);
    assert_eq!(requests("Evaluate", "INVALID_ARGUMENT"), unary_invalid);
    assert_eq!(requests("EvaluateStream", "OK"), 1.0);
    assert_eq!(
        total("enforcer_grpc_requests_total{"),
        unary_ok + unary_invalid + 1.0
    );
    assert_eq!(
        value(&format!(
            r#"enforcer_grpc_request_duration_seconds_count{{{METHOD}="Evaluate"}}"#
        )),
        unary_ok + unary_invalid
    );
    for method in ["Evaluate", "EvaluateStream"] {
        assert_eq!(
            value(&format!(
                r#"enforcer_grpc_requests_in_flight{{{METHOD}="{method}"}}"#
            )),
            0.0
        );
    }

    // Queues drained; the state and the log as the traffic left them.
    assert_eq!(value("enforcer_evaluation_workers"), workers as f64);
    for stage in ["waiting", "evaluating", "logging"] {
        assert_eq!(
            value(&format!(
                r#"enforcer_evaluation_batches{{stage="{stage}"}}"#
            )),
            0.0
        );
    }
    assert_eq!(value("enforcer_stream_events_pending"), 0.0);
    let size = server.pipeline.live_state().size();
    assert!(size.entities > 0);
    assert_eq!(
        value(r#"enforcer_state_entities{store="live"}"#),
        size.entities as f64
    );
    assert_eq!(
        value(r#"enforcer_state_counter_series{store="live"}"#),
        size.series as f64
    );
    assert_eq!(
        value(r#"enforcer_state_labels{store="live"}"#),
        size.labels as f64
    );
    assert_eq!(
        value("enforcer_remembered_event_ids"),
        server.pipeline.remembered_events() as f64
    );
    assert_eq!(value("enforcer_decision_log_decisions"), 600.0);
    assert_eq!(value("enforcer_decision_log_last_sequence"), 600.0);
    assert_eq!(value("enforcer_decision_log_capacity"), 10_000.0);

    // OpenMetrics for a scraper that asks for it; nothing elsewhere.
    let (status, head, body) = get(
        endpoint,
        "/metrics",
        &[(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        )],
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"));
    assert_eq!(get(endpoint, "/", &[]).await.0, 404);
    assert_eq!(get(endpoint, "/metrics/x", &[]).await.0, 404);

    server.shutdown().await;
    let _ = stop_endpoint.send(());
    endpoint_task.await.unwrap().unwrap();
}

/// With `[metrics] token`, a scrape must bring it as a bearer token: one
/// without it, or with another, is answered 401 and shown nothing.
#[tokio::test]
async fn a_metrics_token_keeps_scrapes_out_without_it() {
    let metrics = Arc::new(Metrics::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = listener.local_addr().unwrap();
    let (stop, stopping) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_metrics(
        listener,
        metrics,
        Some("scrape-token-0123456789".into()),
        async move {
            let _ = stopping.await;
        },
    ));
    let refused = [
        vec![],
        vec![("Authorization", "Bearer scrape-token-012345678")],
        vec![("Authorization", "Bearer scrape-token-0123456789x")],
        vec![("Authorization", "Basic scrape-token-0123456789")],
    ];
    for headers in refused {
        let (status, head, body) = get(endpoint, "/metrics", &headers).await;
        assert_eq!(status, 401, "{headers:?}");
        assert!(head.contains("www-authenticate: bearer"), "{head}");
        assert!(!body.contains("enforcer_"), "{headers:?}: {body}");
    }
    let bearer = [("Authorization", "Bearer scrape-token-0123456789")];
    let (status, _, body) = get(endpoint, "/metrics", &bearer).await;
    assert_eq!(status, 200);
    assert!(body.contains("enforcer_events_refused_total"), "{body}");
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

/// `enforcer serve --metrics-listen` prints where it serves the metrics,
/// asks for the configured token, and the scrape counts the calls made to
/// the engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_metrics_where_it_says() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("enforcer.toml");
    std::fs::write(&config, "[metrics]\ntoken = \"binary-scrape-token-0123\"\n").unwrap();
    let mut child = Command::new(enforcer_binary())
        .args([
            "serve",
            "--in-memory",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start enforcer");
    let stdout = child.stdout.take().expect("piped stdout");
    let (found, addresses) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let first_word = |rest: &str| rest.split_whitespace().next().unwrap_or("").to_string();
            if let Some(rest) = line.strip_prefix("enforcer listening on ") {
                let _ = found.send(("grpc", first_word(rest)));
            }
            if let Some(rest) = line.strip_prefix("metrics (Prometheus) on http://") {
                let _ = found.send(("metrics", first_word(rest).replace("/metrics", "")));
            }
        }
    });
    let mut grpc = None;
    let mut endpoint = None;
    while grpc.is_none() || endpoint.is_none() {
        let (which, address) = addresses
            .recv_timeout(Duration::from_secs(120))
            .expect("the engine says where it listens");
        let address: SocketAddr = address.parse().unwrap();
        match which {
            "grpc" => grpc = Some(address),
            _ => endpoint = Some(address),
        }
    }
    let (grpc, endpoint) = (grpc.unwrap(), endpoint.unwrap());

    let mut client = v1::enforcement_client::EnforcementClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    let status = client
        .get_decision(v1::GetDecisionRequest {
            decision_id: "dec-nothing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let event = crate::grpc_errors::good("metrics-binary-1");
    let request = v1::EvaluateRequest {
        event: Some(event),
        ..Default::default()
    };
    client.evaluate(request.clone()).await.unwrap();
    assert!(
        client
            .evaluate(request)
            .await
            .unwrap()
            .into_inner()
            .duplicate
    );

    assert_eq!(get(endpoint, "/metrics", &[]).await.0, 401);
    let bearer = [("Authorization", "Bearer binary-scrape-token-0123")];
    let (status, _, body) = get(endpoint, "/metrics", &bearer).await;
    assert_eq!(status, 200);
    let got = samples(&body);
    let requests = |method: &str, code: &str| {
        got[&format!(r#"enforcer_grpc_requests_total{{{METHOD}="{method}",grpc_code="{code}"}}"#)]
    };
    assert_eq!(requests("GetDecision", "NOT_FOUND"), 1.0);
    assert_eq!(requests("Evaluate", "OK"), 2.0);
    assert_eq!(got["enforcer_duplicate_events_total"], 1.0);
    let decided: f64 = got
        .iter()
        .filter(|(series, _)| series.starts_with("enforcer_decisions_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(decided, 1.0);
    assert_eq!(get(endpoint, "/", &[]).await.0, 404);

    child.kill().expect("stop the engine");
    child.wait().expect("reap the engine");
}
