//! Shared state in Redis, against real `redis-server` processes (a single
//! server, and a three-node Redis Cluster): it counts and labels exactly as
//! the in-memory store does, two engine nodes on one Redis decide as one
//! node, a retry or a copy sent to another node counts once, and an outage
//! is met as configured (closed or open) without a hang.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use enforcer::api::v1;
use enforcer::event::{Entity, Event, Value};
use enforcer::examples::{EXAMPLE_POLICY, load_example_rules};
use enforcer::manifest::{Aggregation, CounterFilter, CounterKey, CounterSpec};
use enforcer::pipeline::{EvaluateError, Pipeline, PipelineOptions};
use enforcer::policy::Policy;
use enforcer::runtime::Runtime;
use enforcer::state::memory::label_expiry_ms;
use enforcer::state::redis::OnUnavailable;
use enforcer::state::{CounterCatalog, CounterId, MemoryState, RedisSettings, RedisState};
use enforcer::verdict::RuleError;
use enforcer_examples::simulator::{SimConfig, Simulator, Traffic};
use proptest::prelude::*;

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::common::{free_port, installed_program, start_listening};
use crate::crash::Engine;
use crate::grpc_server::wire;

const T0: i64 = 1_764_000_000_000;

/// A `redis-server` child process on a loopback port, persisting nothing.
struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    cluster: bool,
    child: Option<Child>,
}

impl RedisServer {
    fn start() -> RedisServer {
        Self::start_node(false)
    }

    fn start_node(cluster: bool) -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            cluster,
            child: None,
        };
        server.up();
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Start the process (again, on the same port) and wait until it takes
    /// connections.
    fn up(&mut self) {
        assert!(self.child.is_none());
        let mut command = Command::new(installed_program("redis-server", "redis-server"));
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path());
        if self.cluster {
            command.args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ]);
        }
        self.child = Some(start_listening(command, self.port));
    }

    /// Kill the process.
    fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.down();
    }
}

/// Three masters joined into a Redis Cluster, every slot covered.
struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..3).map(|_| RedisServer::start_node(true)).collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new(installed_program("redis-cli", "redis-tools"))
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &nodes {
            loop {
                let info = Command::new(installed_program("redis-cli", "redis-tools"))
                    .args(["-p", &node.port.to_string(), "cluster", "info"])
                    .output()
                    .expect("run redis-cli cluster info");
                if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                    break;
                }
                assert!(Instant::now() < deadline, "the cluster did not come up");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        RedisCluster { nodes }
    }

    fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}

fn settings(urls: Vec<String>, cluster: bool, prefix: &str) -> RedisSettings {
    RedisSettings {
        urls,
        cluster,
        prefix: prefix.into(),
        ..RedisSettings::default()
    }
}

fn connect(settings: RedisSettings) -> Arc<RedisState> {
    Arc::new(RedisState::connect(settings).expect("connect to the test Redis"))
}

/// Counters of every kind the engine keeps: counts, a sum, distinct
/// counts by actor and by target, a filter; windows from a minute to an
/// hour.
fn catalog() -> (CounterCatalog, Vec<CounterId>) {
    let spec = |kinds: &[&str], key, aggregation, filter, window_seconds| CounterSpec {
        name: "c".into(),
        event_kinds: kinds.iter().map(|k| k.to_string()).collect(),
        key,
        aggregation,
        filter,
        window_seconds,
    };
    let mut catalog = CounterCatalog::new();
    let ids = [
        spec(
            &["message.sent"],
            CounterKey::Actor,
            Aggregation::Count,
            CounterFilter::All,
            3600,
        ),
        spec(
            &["message.forwarded"],
            CounterKey::Actor,
            Aggregation::Sum("chat_count".into()),
            CounterFilter::All,
            3600,
        ),
        spec(
            &["message.sent"],
            CounterKey::Actor,
            Aggregation::DistinctTargets,
            CounterFilter::All,
            600,
        ),
        spec(
            &["group.joined", "message.sent"],
            CounterKey::Target,
            Aggregation::DistinctActors,
            CounterFilter::All,
            3600,
        ),
        spec(
            &["message.sent"],
            CounterKey::Actor,
            Aggregation::Count,
            CounterFilter::IsFalse("to_contact".into()),
            60,
        ),
    ]
    .iter()
    .map(|s| catalog.declare(s))
    .collect();
    (catalog, ids)
}

/// One generated event: kind, actor, target, seconds after T0, and its
/// chat count or whether it went to a contact.
fn events() -> impl Strategy<Value = Vec<Event>> {
    let one = (
        0..3usize,
        0..5u8,
        0..7u8,
        0..5_400i64,
        0..999i64,
        1..40i64,
        any::<bool>(),
    );
    prop::collection::vec(one, 1..160).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(n, (kind, actor, target, second, ms, chats, contact))| {
                let at = T0 + second * 1000 + ms;
                let actor = Entity::account(format!("a{actor}"));
                let target = if target < 4 {
                    Entity::account(format!("a{target}"))
                } else {
                    Entity::group(format!("g{target}"))
                };
                let event = Event::new(
                    format!("e{n}"),
                    ["message.sent", "message.forwarded", "group.joined"][kind],
                    at,
                    actor,
                )
                .with_target(target);
                match kind {
                    0 => event.with("to_contact", Value::Bool(contact)),
                    1 => event.with("chat_count", Value::Int(chats)),
                    _ => event,
                }
            })
            .collect()
    })
}

/// Every counter of every entity, over several windows at several
/// moments, from memory and from Redis.
fn compare_counters(
    memory: &MemoryState,
    redis: &RedisState,
    catalog: &CounterCatalog,
    ids: &[CounterId],
) -> Result<(), TestCaseError> {
    let entities: Vec<Entity> = (0..5)
        .map(|n| Entity::account(format!("a{n}")))
        .chain((4..7).map(|n| Entity::group(format!("g{n}"))))
        .collect();
    for entity in &entities {
        for &id in ids {
            for window in [1, 60, 600, 3600] {
                if window > catalog.def(id).retention_seconds {
                    continue;
                }
                for at in (0..=6).map(|k| T0 + k * 900_000 + 499) {
                    let expected = memory.counter(entity, id, window, at);
                    let got = redis.counter(entity, catalog.def(id), window, at).unwrap();
                    prop_assert_eq!(
                        got,
                        expected,
                        "{} counter {:?} window {} at {}",
                        entity,
                        id,
                        window,
                        at
                    );
                }
            }
        }
    }
    Ok(())
}

fn counting_equals_memory(redis: &RedisState, events: &[Event]) -> Result<(), TestCaseError> {
    let (catalog, ids) = catalog();
    let memory = MemoryState::new();
    for event in events {
        memory.record(event, &catalog);
        redis.count(event, &catalog).unwrap();
    }
    compare_counters(&memory, redis, &catalog, &ids)
}

#[test]
fn redis_counts_exactly_what_memory_counts() {
    let server = RedisServer::start();
    let case = std::sync::atomic::AtomicU32::new(0);
    proptest!(ProptestConfig::with_cases(24), |(events in events())| {
        let case = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // A prefix per case: each starts from nothing.
        let redis = connect(settings(vec![server.url()], false, &format!("count{case}")));
        counting_equals_memory(&redis, &events)?;
    });
}

#[test]
fn a_redis_cluster_counts_exactly_what_memory_counts() {
    let cluster = RedisCluster::start();
    let case = std::sync::atomic::AtomicU32::new(0);
    proptest!(ProptestConfig::with_cases(8), |(events in events())| {
        let case = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let redis = connect(settings(cluster.urls(), true, &format!("cluster{case}")));
        counting_equals_memory(&redis, &events)?;
    });
}

/// A label change: set for a TTL, or cleared, at a moment.
#[derive(Clone, Debug)]
enum LabelOp {
    Set {
        entity: u8,
        label: u8,
        at_s: i64,
        ttl: u64,
    },
    Clear {
        entity: u8,
        label: u8,
        at_s: i64,
    },
}

fn label_ops() -> impl Strategy<Value = Vec<LabelOp>> {
    let set = (
        0..3u8,
        0..3u8,
        0..3_000i64,
        prop_oneof![1..600u64, Just(u64::MAX)],
    )
        .prop_map(|(entity, label, at_s, ttl)| LabelOp::Set {
            entity,
            label,
            at_s,
            ttl,
        });
    let clear = (0..3u8, 0..3u8, 0..3_000i64).prop_map(|(entity, label, at_s)| LabelOp::Clear {
        entity,
        label,
        at_s,
    });
    prop::collection::vec(prop_oneof![3 => set, 1 => clear], 1..40)
}

#[test]
fn labels_in_redis_apply_exactly_when_they_do_in_memory() {
    let server = RedisServer::start();
    let case = std::sync::atomic::AtomicU32::new(0);
    proptest!(ProptestConfig::with_cases(32), |(ops in label_ops())| {
        let case = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let redis = connect(settings(vec![server.url()], false, &format!("labels{case}")));
        let memory = MemoryState::new();
        let entity = |n: u8| Entity::account(format!("a{n}"));
        let label = |n: u8| format!("label-{n}");
        for op in &ops {
            match *op {
                LabelOp::Set { entity: e, label: l, at_s, ttl } => {
                    let at = T0 + at_s * 1000;
                    memory.set_label(&entity(e), &label(l), at, ttl);
                    redis.set_label(&entity(e), &label(l), at, label_expiry_ms(at, ttl)).unwrap();
                }
                LabelOp::Clear { entity: e, label: l, at_s } => {
                    let at = T0 + at_s * 1000;
                    memory.clear_label(&entity(e), &label(l), at);
                    redis.clear_label(&entity(e), &label(l), at).unwrap();
                }
            }
        }
        for e in 0..3 {
            for at_s in (0..4_000).step_by(50) {
                let at = T0 + at_s * 1000;
                prop_assert_eq!(redis.labels(&entity(e), at).unwrap(), memory.labels(&entity(e), at));
                for l in 0..3 {
                    prop_assert_eq!(
                        redis.has_label(&entity(e), &label(l), at).unwrap(),
                        memory.has_label(&entity(e), &label(l), at)
                    );
                }
            }
        }
    });
}

#[test]
fn an_event_counted_on_one_node_is_not_counted_again_on_another() {
    let server = RedisServer::start();
    let first = connect(settings(vec![server.url()], false, "dedupe"));
    let second = connect(settings(vec![server.url()], false, "dedupe"));
    let (catalog, ids) = catalog();
    let sent = |id: &str| {
        Event::new(id, "message.sent", T0, Entity::account("a0"))
            .with_target(Entity::account("a1"))
            .with("to_contact", Value::Bool(false))
    };
    first.count(&sent("e1"), &catalog).unwrap();
    // A retry on the same node and a copy on another count nothing more.
    first.count(&sent("e1"), &catalog).unwrap();
    second.count(&sent("e1"), &catalog).unwrap();
    let count = |redis: &RedisState| {
        redis
            .counter(&Entity::account("a0"), catalog.def(ids[0]), 60, T0)
            .unwrap()
    };
    assert_eq!(count(&first), 1);
    assert_eq!(count(&second), 1);
    second.count(&sent("e2"), &catalog).unwrap();
    assert_eq!(count(&first), 2);
}

fn traffic() -> Traffic {
    let config = SimConfig {
        seed: 5,
        accounts: 600,
        groups: 30,
        duration_seconds: 20 * 60,
        ..SimConfig::default()
    };
    Simulator::new(config).expect("valid config").run()
}

/// The example rules on `traffic`'s bank, with state in `redis` (or in
/// memory).
fn node(runtime: &Runtime, traffic: &Traffic, redis: Option<Arc<RedisState>>) -> Pipeline {
    let rules = load_example_rules(runtime).unwrap_or_else(|(n, e)| panic!("{n}: {e}"));
    let options = PipelineOptions {
        banks: traffic.hash_banks(),
        max_future_skew_ms: None,
        redis,
        ..PipelineOptions::default()
    };
    Pipeline::new(rules, Policy::parse(EXAMPLE_POLICY).unwrap(), options).unwrap()
}

/// What a decision says, without how long each rule took.
fn said(decision: &enforcer::decision::Decision) -> serde_json::Value {
    let mut value = serde_json::to_value(decision).unwrap();
    for report in value["rules"].as_array_mut().into_iter().flatten() {
        report.as_object_mut().unwrap().remove("elapsed_us");
    }
    value
}

/// Decide `traffic` with its events dealt to `nodes` in turn, one at a
/// time; what each decision said, by event.
fn decide_all(nodes: &[&Pipeline], traffic: &Traffic) -> Vec<serde_json::Value> {
    traffic
        .events
        .iter()
        .enumerate()
        .map(|(n, labelled)| {
            let node = nodes[n % nodes.len()];
            said(&node.evaluate(labelled.event.clone()).unwrap().decision)
        })
        .collect()
}

/// Every counter of every entity of `traffic`, over its longest window at
/// the end of the traffic, as `pipeline` reads it.
fn counters(pipeline: &Pipeline, traffic: &Traffic) -> BTreeMap<String, u64> {
    let snapshot = pipeline.snapshot();
    let catalog = snapshot.catalog();
    let end = traffic
        .events
        .iter()
        .map(|e| e.event.occurred_at_ms)
        .max()
        .unwrap();
    let ids: Vec<CounterId> = (0..64)
        .map(CounterId)
        .filter(|&id| catalog.get(id).is_some())
        .collect();
    let mut counters = BTreeMap::new();
    for truth in &traffic.truth {
        for &id in &ids {
            let window = catalog.def(id).retention_seconds;
            let value = pipeline
                .state()
                .counter(catalog, &truth.entity, id, window, end)
                .unwrap();
            if value > 0 {
                counters.insert(
                    format!("{} {}", truth.entity, catalog.def(id).stable_key),
                    value,
                );
            }
        }
    }
    counters
}

/// Every decision in `got` the same as in `expected`, or the first that
/// is not.
fn assert_decided_alike<T: PartialEq + std::fmt::Debug>(got: &[T], expected: &[T]) {
    assert_eq!(got.len(), expected.len());
    let differing: Vec<usize> = (0..got.len()).filter(|&n| got[n] != expected[n]).collect();
    assert!(
        differing.is_empty(),
        "{} of {} decisions differ; the first: {:#?} against {:#?}",
        differing.len(),
        got.len(),
        got[differing[0]],
        expected[differing[0]]
    );
}

fn two_nodes_decide_as_one(urls: Vec<String>, cluster: bool, prefix: &str) {
    let runtime = Runtime::new().unwrap();
    let traffic = traffic();
    let one = node(&runtime, &traffic, None);
    let expected = decide_all(&[&one], &traffic);
    let expected_counters = counters(&one, &traffic);
    assert!(
        expected.iter().any(|d| d["severity"] != "allow"),
        "the traffic must make the rules act"
    );
    assert!(
        expected
            .iter()
            .any(|d| d["label_changes"].as_array().is_some_and(|c| !c.is_empty())),
        "the traffic must make the rules label"
    );
    assert!(expected_counters.len() > 100, "{expected_counters:?}");

    let a = node(
        &runtime,
        &traffic,
        Some(connect(settings(urls.clone(), cluster, prefix))),
    );
    let b = node(
        &runtime,
        &traffic,
        Some(connect(settings(urls, cluster, prefix))),
    );
    assert_decided_alike(&decide_all(&[&a, &b], &traffic), &expected);
    assert_eq!(counters(&a, &traffic), expected_counters);
    assert_eq!(counters(&b, &traffic), expected_counters);

    // The control: two nodes that share nothing see half the traffic each,
    // and decide otherwise.
    let alone = [
        node(&runtime, &traffic, None),
        node(&runtime, &traffic, None),
    ];
    let apart = decide_all(&[&alone[0], &alone[1]], &traffic);
    assert!(
        (0..expected.len()).any(|n| apart[n] != expected[n]),
        "nodes sharing nothing decided as one node: the traffic does not test sharing"
    );
}

#[test]
fn two_nodes_on_one_redis_decide_as_one_node_given_all_the_traffic() {
    let server = RedisServer::start();
    two_nodes_decide_as_one(vec![server.url()], false, "two-nodes");
}

#[test]
fn two_nodes_on_one_redis_cluster_decide_as_one_node() {
    let cluster = RedisCluster::start();
    two_nodes_decide_as_one(cluster.urls(), true, "two-nodes");
}

/// A forward that the mass-forwarding rule reads counters for.
fn forward(id: &str, at: i64) -> Event {
    Event::new(id, "message.forwarded", at, Entity::account("spreader"))
        .with_target(Entity::group("g1"))
        .with("chat_count", Value::Int(40))
}

fn outage_settings(server: &RedisServer, on_unavailable: OnUnavailable) -> RedisSettings {
    RedisSettings {
        timeout_ms: 200,
        retry_after_ms: 300,
        on_unavailable,
        ..settings(vec![server.url()], false, "outage")
    }
}

#[test]
fn closed_refuses_events_while_redis_is_down_and_counts_their_retries_once() {
    let mut server = RedisServer::start();
    let runtime = Runtime::new().unwrap();
    let redis = connect(outage_settings(&server, OnUnavailable::Closed));
    let pipeline = node(&runtime, &traffic(), Some(redis.clone()));
    pipeline.evaluate(forward("f1", T0)).unwrap();

    server.down();
    for n in 0..20 {
        let started = Instant::now();
        let refused = pipeline.evaluate(forward("f2", T0 + 1000)).unwrap_err();
        let waited = started.elapsed();
        assert!(
            matches!(refused, EvaluateError::StateUnavailable(_)),
            "{refused:?}"
        );
        // At most one timeout, and after the first failure none at all.
        assert!(
            waited < Duration::from_secs(1),
            "attempt {n} waited {waited:?}"
        );
    }
    let health = redis.health();
    assert!(
        health.down && health.failures >= 1 && health.not_tried >= 1,
        "{health:?}"
    );
    assert!(
        !pipeline.remembers("f2"),
        "a refused event's id is free for its retry"
    );

    server.up();
    std::thread::sleep(Duration::from_millis(400));
    let decided = retry(|| pipeline.evaluate(forward("f2", T0 + 1000)));
    assert!(!decided.duplicate);
    let snapshot = pipeline.snapshot();
    let catalog = snapshot.catalog();
    let forwards = (0..64)
        .map(CounterId)
        .find(|&id| {
            catalog
                .get(id)
                .is_some_and(|d| d.shape.aggregation == Aggregation::Sum("chat_count".into()))
        })
        .expect("mass-forwarding sums chat counts");
    // Redis restarted empty (it persists nothing here): only the retry is
    // in it, once.
    let total = pipeline
        .state()
        .counter(
            catalog,
            &Entity::account("spreader"),
            forwards,
            3600,
            T0 + 1000,
        )
        .unwrap();
    assert_eq!(total, 40);
    assert!(!redis.health().down);
}

#[test]
fn a_hung_redis_costs_each_event_at_most_the_timeout() {
    let server = RedisServer::start();
    let runtime = Runtime::new().unwrap();
    let redis = connect(outage_settings(&server, OnUnavailable::Closed));
    let pipeline = node(&runtime, &traffic(), Some(redis.clone()));
    pipeline.evaluate(forward("f1", T0)).unwrap();

    // Stopped, not killed: connections stay open and nothing answers.
    let pid = server.child.as_ref().unwrap().id().to_string();
    let signal = |name: &str| {
        let sent = Command::new("kill").args([name, &pid]).status().unwrap();
        assert!(sent.success(), "kill {name} {pid}");
    };
    signal("-STOP");
    let mut waits = Vec::new();
    for n in 0..10 {
        let started = Instant::now();
        let refused = pipeline.evaluate(forward(&format!("hung-{n}"), T0 + 1000));
        waits.push(started.elapsed());
        assert!(
            matches!(refused, Err(EvaluateError::StateUnavailable(_))),
            "{refused:?}"
        );
    }
    signal("-CONT");
    // The first call waits out the 200 ms timeout; the ones after it, in
    // the 300 ms rest that follows, fail at once (or wait one timeout).
    assert!(
        waits.iter().all(|w| *w < Duration::from_millis(700)),
        "{waits:?}"
    );
    assert!(waits[0] >= Duration::from_millis(150), "{waits:?}");
    let health = redis.health();
    assert!(health.not_tried >= 1, "{health:?}");
    retry(|| pipeline.evaluate(forward("after", T0 + 2000)));
}

/// Evaluate until Redis answers (a reconnect takes a moment).
fn retry(
    mut evaluate: impl FnMut() -> Result<enforcer::pipeline::Evaluation, EvaluateError>,
) -> enforcer::pipeline::Evaluation {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match evaluate() {
            Ok(evaluation) => return evaluation,
            Err(error) => {
                assert!(Instant::now() < deadline, "Redis never came back: {error}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

#[test]
fn open_decides_without_redis_and_says_which_rules_could_not_read() {
    let mut server = RedisServer::start();
    let runtime = Runtime::new().unwrap();
    let redis = connect(outage_settings(&server, OnUnavailable::Open));
    let pipeline = node(&runtime, &traffic(), Some(redis));
    server.down();
    let started = Instant::now();
    let decision = pipeline.evaluate(forward("f1", T0)).unwrap().decision;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let state_errors: Vec<&str> = decision
        .rules
        .iter()
        .filter(|r| matches!(r.error, Some(RuleError::State { .. })))
        .map(|r| &*r.rule)
        .collect();
    assert!(
        state_errors.contains(&"mass-forwarding"),
        "the rule that reads counters reports the outage: {:#?}",
        decision.rules
    );
}

#[test]
fn a_redis_that_cannot_be_reached_at_start_is_named() {
    let port = free_port();
    let error = RedisState::connect(RedisSettings {
        timeout_ms: 200,
        ..settings(vec![format!("redis://127.0.0.1:{port}")], false, "x")
    })
    .unwrap_err();
    assert!(
        error.contains(&format!("redis://127.0.0.1:{port}")),
        "{error}"
    );
    let error = RedisState::connect(settings(
        vec!["redis://a".into(), "redis://b".into()],
        false,
        "x",
    ))
    .unwrap_err();
    assert!(error.contains("cluster = true"), "{error}");
}

/// Evaluate `events` on `engines` in turn, one at a time, over gRPC: what
/// each decision concluded (its sequence aside: each node numbers its own
/// log).
async fn decide_over_grpc(engines: &[&Engine], events: &[Event]) -> Vec<String> {
    let mut clients = Vec::new();
    for engine in engines {
        clients.push(engine.client().await);
    }
    let mut concluded = Vec::with_capacity(events.len());
    for (n, event) in events.iter().enumerate() {
        let client = &mut clients[n % engines.len()];
        let request = v1::EvaluateRequest {
            event: Some(wire(event)),
            view: v1::DecisionView::Full as i32,
        };
        let decision = client
            .evaluate(request)
            .await
            .unwrap_or_else(|status| panic!("{}: {status}", event.id))
            .into_inner()
            .decision
            .expect("a decision");
        concluded.push(format!(
            "{} {:?} {:?} {:?}",
            decision.id,
            decision.outcome,
            decision.label_changes,
            decision.shadow.map(|s| s.outcome)
        ));
    }
    concluded
}

fn config_file(dir: &tempfile::TempDir, name: &str, redis: Option<&RedisServer>) -> PathBuf {
    let mut text = String::from("[storage]\nmode = \"memory\"\n");
    if let Some(redis) = redis {
        text.push_str(&format!(
            "[redis]\nurls = [\"{}\"]\ntimeout_ms = 200\nretry_after_ms = 300\n",
            redis.url()
        ));
    }
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_enforcer_processes_on_one_redis_answer_as_one_over_grpc() {
    let mut server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let events: Vec<Event> = traffic()
        .events
        .iter()
        .take(4_000)
        .map(|e| e.event.clone())
        .collect();

    let one = Engine::start(&config_file(&dir, "one.toml", None));
    let expected = decide_over_grpc(&[&one], &events).await;
    one.kill();
    assert!(
        expected
            .iter()
            .filter(|d| !d.contains("severity: Allow"))
            .count()
            > 0,
        "the events must make the rules act"
    );

    let shared = config_file(&dir, "shared.toml", Some(&server));
    let (a, b) = (Engine::start(&shared), Engine::start(&shared));
    assert_decided_alike(&decide_over_grpc(&[&a, &b], &events).await, &expected);

    // Redis gone: refused at once with UNAVAILABLE, on either node.
    server.down();
    for engine in [&a, &b] {
        let started = Instant::now();
        let request = v1::EvaluateRequest {
            event: Some(wire(&forward("after-redis", events[0].occurred_at_ms))),
            view: v1::DecisionView::Compact as i32,
        };
        let status = engine.client().await.evaluate(request).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert!(status.message().contains("Redis"), "{status:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    // Health checks take the nodes out of rotation, and put them back once
    // Redis answers again; then they decide again.
    for engine in [&a, &b] {
        wait_for_health(engine, ServingStatus::NotServing).await;
    }
    server.up();
    for engine in [&a, &b] {
        wait_for_health(engine, ServingStatus::Serving).await;
        let request = v1::EvaluateRequest {
            event: Some(wire(&forward("after-restart", events[0].occurred_at_ms))),
            view: v1::DecisionView::Compact as i32,
        };
        let response = engine.client().await.evaluate(request).await.unwrap();
        assert!(response.into_inner().decision.is_some());
    }
    a.kill();
    b.kill();
}

/// Wait until the engine's health check reports `status` for the data
/// plane.
async fn wait_for_health(engine: &Engine, status: ServingStatus) {
    let channel = tonic::transport::Channel::from_shared(engine.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let request = HealthCheckRequest {
            service: "enforcement.v1.Enforcement".into(),
        };
        let now = health.check(request).await.unwrap().into_inner().status();
        if now == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "health stayed {now:?}, not {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
