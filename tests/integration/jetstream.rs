//! Decisions published to NATS JetStream, end to end: a real `nats-server`
//! (from PATH, started by each test on a free port with its own store), an
//! engine serving gRPC in process, and the publisher following its log. A
//! consumer sees every (decision, action) exactly once across its own
//! disconnects; a publisher that crashes or stops and starts again misses
//! nothing and publishes nothing twice; NATS going away and coming back
//! delays publishing, never evaluation; a server without JetStream and
//! decisions dropped from the log are reported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream::Stream};
use enforcer::api::v1;
use enforcer::decision_log::{DecisionLog, ReadError};
use enforcer::event::{Entity, Event, Value};
use enforcer::jetstream::{
    HEADER_ACTION, HEADER_DECISION_ID, HEADER_SEQUENCE, JetStreamPublisher, NatsConfig, escape,
    planned_messages,
};
use enforcer::pipeline::PipelineOptions;
use enforcer::server::ServerOptions;
use futures_util::StreamExt;
use prost::Message as _;
use tokio::sync::watch;

use crate::common::{free_port, installed_program, start_listening};
use crate::grpc_server::{TestServer, wire};

const T0: i64 = 1_764_000_000_000;

/// A `nats-server` child process on a loopback port, with its own store.
struct NatsServer {
    port: u16,
    store: PathBuf,
    jetstream: bool,
    child: Option<Child>,
}

impl NatsServer {
    fn start(jetstream: bool) -> NatsServer {
        let port = free_port();
        let store =
            std::env::temp_dir().join(format!("enforcer-nats-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&store).unwrap();
        let mut server = NatsServer {
            port,
            store,
            jetstream,
            child: None,
        };
        server.up();
        server
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Start the process (again, on the same port and store) and wait
    /// until it takes connections.
    fn up(&mut self) {
        assert!(self.child.is_none());
        let mut command = Command::new(installed_program("nats-server", "nats-server"));
        command.args(["-a", "127.0.0.1", "-p", &self.port.to_string()]);
        if self.jetstream {
            command.arg("-js").arg("-sd").arg(&self.store);
        }
        self.child = Some(start_listening(command, self.port));
    }

    /// Kill the process (its store stays).
    fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.down();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// Publisher settings for a test: its own stream and prefix, quick retries.
fn settings(nats: &NatsServer, stream: &str) -> NatsConfig {
    NatsConfig {
        url: nats.url(),
        subject_prefix: format!("test.{}", stream.to_lowercase()),
        stream: stream.into(),
        in_flight: 16,
        ack_timeout_ms: 1_000,
        retry_max_ms: 300,
        shutdown_grace_seconds: 5,
        ..NatsConfig::default()
    }
}

/// A server on the example rules, with the demo hash bank the group icons
/// below match.
async fn engine(log_capacity: usize) -> TestServer {
    let runtime = enforcer::runtime::Runtime::new().unwrap();
    let rules = enforcer::examples::load_example_rules(&runtime)
        .unwrap_or_else(|(n, e)| panic!("{n}: {e}"));
    let policy = enforcer::policy::Policy::parse(enforcer::examples::EXAMPLE_POLICY).unwrap();
    let options = PipelineOptions {
        banks: enforcer::demo::banks(),
        ..PipelineOptions::default()
    };
    let pipeline = Arc::new(enforcer::pipeline::Pipeline::new(rules, policy, options).unwrap());
    TestServer::start_with(pipeline, log_capacity, ServerOptions::default()).await
}

/// Event `i` of a run named `run`: a group icon matching the known-hash
/// bank (block, report, ban, remove: four actions), a message forwarded to
/// 60 chats (limit forwarding), or an ordinary message (allow).
fn event(run: &str, i: usize) -> Event {
    let at = T0 + i as i64 * 10;
    match i % 3 {
        0 => {
            let mut icon = enforcer::demo::BANKED_HASH;
            icon[0] ^= 0b0000_0011;
            let mut event = Event::new(
                format!("{run}-icon-{i}"),
                "media.group_icon",
                at,
                Entity::account(format!("{run}-ring-{i}")),
            )
            .with("pdq_hash", Value::Bytes(icon.to_vec()))
            .with("pdq_quality", Value::Int(92))
            .with("media_id", Value::Text(format!("icon-{i}")));
            event.target = Some(Entity::group(format!("{run}-group-{i}")));
            event
        }
        1 => Event::new(
            format!("{run}-fwd-{i}"),
            "message.forwarded",
            at,
            Entity::account(format!("{run}-fwd-{i}")),
        )
        .with("chat_count", Value::Int(60)),
        _ => Event::new(
            format!("{run}-msg-{i}"),
            "message.sent",
            at,
            Entity::account(format!("{run}-talker-{i}")),
        )
        .with("to_contact", Value::Bool(true))
        .with("actor_age_seconds", Value::Int(400 * 86_400)),
    }
}

/// Evaluate events `range` over gRPC; each call's time, the longest.
async fn evaluate(server: &TestServer, run: &str, range: std::ops::Range<usize>) -> Duration {
    let mut client = server.client().await;
    let mut longest = Duration::ZERO;
    for i in range {
        let started = Instant::now();
        client
            .evaluate(v1::EvaluateRequest {
                event: Some(wire(&event(run, i))),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("event {i}: {s}"));
        longest = longest.max(started.elapsed());
    }
    longest
}

/// The message ids the engine's decisions call for: one per action each
/// carried out, one per review decision (or one with no action).
fn expected(log: &DecisionLog) -> BTreeSet<String> {
    let logged = log
        .read_after(0, usize::MAX)
        .or_else(|error| match error {
            ReadError::Gap(gap) => log.read_after(gap.oldest_kept - 1, usize::MAX),
            other => Err(other),
        })
        .unwrap();
    logged
        .iter()
        .flat_map(|l| planned_messages(&l.decision))
        .map(|p| p.message_id)
        .collect()
}

/// Wait until the publisher has published every decision logged.
async fn caught_up(publisher: &JetStreamPublisher, log: &DecisionLog, within: Duration) {
    let deadline = Instant::now() + within;
    while publisher.published_through() < log.last_sequence() {
        assert!(
            Instant::now() < deadline,
            "the publisher did not catch up: {:?}",
            publisher.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn jetstream_of(nats: &NatsServer) -> jetstream::Context {
    jetstream::new(async_nats::connect(nats.url()).await.unwrap())
}

/// Every message in the stream, counted by message id, each checked
/// against its headers and payload.
async fn stream_counts(stream: &Stream) -> BTreeMap<String, usize> {
    let mut stream = stream.clone();
    let state = stream.info().await.unwrap().state.clone();
    let mut counts = BTreeMap::new();
    if state.messages == 0 {
        return counts;
    }
    for sequence in state.first_sequence..=state.last_sequence {
        let message = stream.get_raw_message(sequence).await.unwrap();
        let header = |name: &str| message.headers.get(name).unwrap().as_str().to_string();
        let decision = v1::Decision::decode(message.payload.clone()).unwrap();
        check_message(&header("Nats-Msg-Id"), &header(HEADER_ACTION), &decision);
        assert_eq!(header(HEADER_SEQUENCE), decision.sequence.to_string());
        assert_eq!(header(HEADER_DECISION_ID), escape(&decision.id));
        *counts.entry(header("Nats-Msg-Id")).or_insert(0) += 1;
    }
    counts
}

/// A message says what its payload decided: its id names the decision, and
/// its action is one the decision carries out (or its severity).
fn check_message(message_id: &str, action: &str, decision: &v1::Decision) {
    assert!(
        message_id.starts_with(&format!("{}/{action}", escape(&decision.id))),
        "{message_id} vs {}",
        decision.id
    );
    let outcome = decision.outcome.as_ref().unwrap();
    let carried_out = outcome.actions.iter().any(|a| {
        v1::ActionType::try_from(a.action)
            .unwrap()
            .as_str_name()
            .eq_ignore_ascii_case(&format!("action_type_{action}"))
    });
    let severity = v1::Severity::try_from(outcome.severity)
        .unwrap()
        .as_str_name()
        .eq_ignore_ascii_case(&format!("severity_{action}"));
    assert!(
        carried_out || severity,
        "{message_id}: {action} not in {outcome:?}"
    );
}

fn assert_exactly_once(counts: &BTreeMap<String, usize>, expected: &BTreeSet<String>) {
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "published more than once: {twice:?}");
    let got: BTreeSet<String> = counts.keys().cloned().collect();
    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {} ({:?}...), extra {} ({:?}...)",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        extra.len(),
        extra.iter().take(5).collect::<Vec<_>>()
    );
}

/// Pull from the durable consumer `name`, acknowledging each message
/// (and waiting for the server to confirm it) before counting it, until
/// `want` are counted or `stop_after` is reached in this connection; then
/// the connection is dropped, mid-batch.
async fn consume(
    nats: &NatsServer,
    stream_name: &str,
    name: &str,
    received: &mut BTreeMap<String, usize>,
    stop_after: usize,
    deadline: Instant,
) {
    let context = jetstream_of(nats).await;
    let stream = context.get_stream(stream_name).await.unwrap();
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            name,
            pull::Config {
                durable_name: Some(name.into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut counted = 0;
    while counted < stop_after && Instant::now() < deadline {
        let mut batch = consumer
            .fetch()
            .max_messages(25)
            .expires(Duration::from_millis(300))
            .messages()
            .await
            .unwrap();
        while let Some(message) = batch.next().await {
            let message = message.unwrap();
            let headers = message.headers.clone().unwrap();
            let id = headers.get("Nats-Msg-Id").unwrap().as_str().to_string();
            let action = headers.get(HEADER_ACTION).unwrap().as_str().to_string();
            let decision = v1::Decision::decode(message.payload.clone()).unwrap();
            check_message(&id, &action, &decision);
            message.double_ack().await.unwrap();
            *received.entry(id).or_insert(0) += 1;
            counted += 1;
            if counted >= stop_after {
                // Gone in the middle of a batch: what it was sent and did
                // not acknowledge comes again to the next connection.
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consumer_sees_every_decision_action_once_across_disconnects() {
    let nats = NatsServer::start(true);
    let server = engine(100_000).await;
    let (_stop, stopping) = watch::channel(false);
    let config = settings(&nats, "ONCE");
    let publisher = JetStreamPublisher::start(server.log.clone(), config.clone(), stopping);

    // Decisions are made while the consumer reads.
    let events = 450;
    let evaluating = evaluate(&server, "once", 0..events);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut received = BTreeMap::new();
    // The stream exists once the publisher has connected.
    while jetstream_of(&nats).await.get_stream("ONCE").await.is_err() {
        assert!(Instant::now() < deadline, "{:?}", publisher.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let consuming = async {
        for _ in 0..3 {
            consume(&nats, "ONCE", "ban-service", &mut received, 170, deadline).await;
        }
    };
    let (longest, ()) = tokio::join!(evaluating, consuming);
    assert!(longest < Duration::from_secs(5), "{longest:?}");
    caught_up(&publisher, &server.log, Duration::from_secs(30)).await;
    let expected = expected(&server.log);
    // Everything left, then nothing more: no message comes twice.
    while received.values().sum::<usize>() < expected.len() && Instant::now() < deadline {
        consume(
            &nats,
            "ONCE",
            "ban-service",
            &mut received,
            usize::MAX,
            Instant::now() + Duration::from_secs(1),
        )
        .await;
    }
    consume(
        &nats,
        "ONCE",
        "ban-service",
        &mut received,
        usize::MAX,
        Instant::now() + Duration::from_secs(3),
    )
    .await;

    // The traffic did what the test means: every action, and allows.
    let topics: BTreeSet<&str> = expected
        .iter()
        .map(|id| id.split('/').nth(1).unwrap())
        .collect();
    assert_eq!(
        topics,
        BTreeSet::from([
            "ban_group",
            "block_account",
            "limit_forwarding",
            "remove_media",
            "report_to_clearinghouse"
        ])
    );
    assert!(expected.len() >= 5 * events / 3, "{}", expected.len());
    assert_eq!(server.log.last_sequence(), events as u64);
    assert_exactly_once(&received, &expected);
    let stream = jetstream_of(&nats).await.get_stream("ONCE").await.unwrap();
    assert_exactly_once(&stream_counts(&stream).await, &expected);
    assert_eq!(publisher.lag(), 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_publisher_started_again_misses_nothing_and_repeats_nothing() {
    let nats = NatsServer::start(true);
    let server = engine(100_000).await;
    let config = NatsConfig {
        // Short, so that a publish repeated after it would be stored twice:
        // only the publisher's own reading of the stream prevents that.
        duplicate_window_seconds: 1,
        in_flight: 8,
        ..settings(&nats, "RESTART")
    };

    // The first publisher follows traffic and is killed halfway, publishes
    // in flight and all.
    let (_stop, stopping) = watch::channel(false);
    let first = JetStreamPublisher::start(server.log.clone(), config.clone(), stopping);
    evaluate(&server, "restart", 0..150).await;
    let killed_at = first.published_through();
    first.abort().await;
    evaluate(&server, "restart", 150..300).await;
    assert!(
        killed_at > 0 && killed_at < 300,
        "killed at {killed_at}: not halfway"
    );
    // Past the duplicate window.
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    // The second reads where to go on from in the stream, and is stopped
    // gracefully after a while: it publishes what the log holds first.
    let (stop, stopping) = watch::channel(false);
    let second = JetStreamPublisher::start(server.log.clone(), config.clone(), stopping);
    evaluate(&server, "restart", 300..360).await;
    stop.send(true).unwrap();
    second.join().await;
    let stream = jetstream_of(&nats)
        .await
        .get_stream("RESTART")
        .await
        .unwrap();
    assert_exactly_once(&stream_counts(&stream).await, &expected(&server.log));

    // A third, after more traffic and the window again.
    evaluate(&server, "restart", 360..420).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (_stop, stopping) = watch::channel(false);
    let third = JetStreamPublisher::start(server.log.clone(), config, stopping);
    caught_up(&third, &server.log, Duration::from_secs(30)).await;
    assert_eq!(third.status().duplicates, 0, "{:?}", third.status());
    assert_exactly_once(&stream_counts(&stream).await, &expected(&server.log));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_going_away_delays_publishing_never_evaluation() {
    let mut nats = NatsServer::start(true);
    let server = engine(100_000).await;
    let (_stop, stopping) = watch::channel(false);
    let publisher =
        JetStreamPublisher::start(server.log.clone(), settings(&nats, "OUTAGE"), stopping);
    evaluate(&server, "outage", 0..60).await;
    caught_up(&publisher, &server.log, Duration::from_secs(30)).await;

    nats.down();
    let longest = evaluate(&server, "outage", 60..240).await;
    assert!(
        longest < Duration::from_millis(500),
        "an evaluation waited {longest:?} while NATS was down"
    );
    // The publisher notices, and falls behind without blocking anyone.
    let deadline = Instant::now() + Duration::from_secs(20);
    while publisher.status().connected || publisher.status().last_error.is_none() {
        assert!(Instant::now() < deadline, "{:?}", publisher.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(publisher.lag() > 0, "{:?}", publisher.status());
    let behind = publisher.published_through();
    assert!(behind < server.log.last_sequence());

    nats.up();
    caught_up(&publisher, &server.log, Duration::from_secs(30)).await;
    let status = publisher.status();
    assert!(
        status.connected && status.last_error.is_none(),
        "{status:?}"
    );
    let stream = jetstream_of(&nats)
        .await
        .get_stream("OUTAGE")
        .await
        .unwrap();
    assert_exactly_once(&stream_counts(&stream).await, &expected(&server.log));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn decisions_the_log_dropped_before_nats_came_up_are_counted_not_hidden() {
    // NATS is not there at first; the log keeps only 40 decisions.
    let mut nats = NatsServer::start(true);
    nats.down();
    let server = engine(40).await;
    let (_stop, stopping) = watch::channel(false);
    let publisher =
        JetStreamPublisher::start(server.log.clone(), settings(&nats, "DROPPED"), stopping);
    evaluate(&server, "dropped", 0..100).await;
    assert_eq!(publisher.published_through(), 0);
    nats.up();
    caught_up(&publisher, &server.log, Duration::from_secs(30)).await;
    assert_eq!(publisher.status().decisions_dropped, 60);
    let stream = jetstream_of(&nats)
        .await
        .get_stream("DROPPED")
        .await
        .unwrap();
    // Exactly what the log still holds.
    assert_exactly_once(&stream_counts(&stream).await, &expected(&server.log));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_server_without_jetstream_is_named_and_evaluation_goes_on() {
    let nats = NatsServer::start(false);
    let server = engine(1_000).await;
    let (_stop, stopping) = watch::channel(false);
    let publisher =
        JetStreamPublisher::start(server.log.clone(), settings(&nats, "NONE"), stopping);
    evaluate(&server, "nojs", 0..9).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let error = publisher.status().last_error.unwrap_or_default();
        if error.contains("has no JetStream") {
            assert!(error.contains(&nats.url()), "{error}");
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", publisher.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(publisher.lag(), 9);
    server.shutdown().await;
}
