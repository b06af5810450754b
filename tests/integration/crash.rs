//! Crashes: the `enforcer` binary killed with SIGKILL, round after round,
//! while clients evaluate events against it; restarted each time on the
//! same data directory. Every decision a client was given must be in the
//! log after the restart, under the sequence it was given with, and the
//! log numbered without gaps or repeats across all the restarts. An event
//! whose answer was lost in a crash and is sent again gets the decision it
//! was logged with, if it was logged.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use enforcer::api::v1;
use enforcer::api::v1::enforcement_client::EnforcementClient;
use enforcer_examples::simulator::{SimConfig, Simulator};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

use crate::grpc_server::wire;

const ROUNDS: usize = 20;
const CLIENTS: usize = 4;

/// The `enforcer` binary cargo built beside this test binary.
pub(crate) fn enforcer_binary() -> PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let profile_dir = test_binary
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let binary = profile_dir.join(format!("enforcer{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: `cargo test --workspace` builds it (or `cargo build -p enforcer`)",
        binary.display()
    );
    binary
}

/// One run of the engine, as an operator starts it.
pub(crate) struct Engine {
    child: Child,
    pub(crate) url: String,
}

impl Engine {
    pub(crate) fn start(config: &Path) -> Engine {
        let mut child = Command::new(enforcer_binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start enforcer");
        let stdout = child.stdout.take().expect("piped stdout");
        let (found, listening) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("enforcer listening on ") {
                    let addr = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    let _ = found.send(addr);
                }
            }
        });
        let addr = listening
            .recv_timeout(Duration::from_secs(120))
            .expect("the engine started listening");
        Engine {
            child,
            url: format!("http://{addr}"),
        }
    }

    pub(crate) async fn client(&self) -> EnforcementClient<Channel> {
        EnforcementClient::connect(self.url.clone())
            .await
            .expect("connect to the engine")
    }

    /// SIGKILL: no shutdown, no last checkpoint, nothing flushed.
    pub(crate) fn kill(mut self) {
        self.child.kill().expect("kill the engine");
        self.child.wait().expect("reap the engine");
    }
}

/// What the clients were told.
#[derive(Default)]
struct Acknowledged {
    /// Decision id → sequence, for every decision a client received.
    sequences: BTreeMap<String, u64>,
    /// Events sent again after a crash whose decision was found logged.
    recovered_retries: usize,
}

/// Send events from `queue` until the engine dies; return the events whose
/// answer never came.
async fn send_until_killed(
    url: String,
    queue: Arc<Mutex<VecDeque<v1::Event>>>,
    acknowledged: Arc<Mutex<Acknowledged>>,
) -> Vec<v1::Event> {
    let Ok(mut client) = EnforcementClient::connect(url).await else {
        return Vec::new();
    };
    loop {
        let Some(event) = queue.lock().unwrap().pop_front() else {
            return Vec::new();
        };
        let request = v1::EvaluateRequest {
            event: Some(event.clone()),
            view: v1::DecisionView::Compact as i32,
        };
        match client.evaluate(request).await {
            Ok(response) => {
                let response = response.into_inner();
                let decision = response.decision.expect("a decision");
                assert!(decision.sequence > 0, "{} has no sequence", decision.id);
                let mut acknowledged = acknowledged.lock().unwrap();
                if let Some(&earlier) = acknowledged.sequences.get(&decision.id) {
                    assert!(response.duplicate, "{} decided twice", decision.id);
                    assert_eq!(earlier, decision.sequence, "{}", decision.id);
                }
                acknowledged
                    .sequences
                    .insert(decision.id.clone(), decision.sequence);
            }
            Err(_) => return vec![event],
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_decision_survives_twenty_sigkills() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("enforcer.toml");
    std::fs::write(
        &config,
        format!(
            "[rules]\ncompile_cache_dir = {:?}\n\n[storage]\ndata_dir = {:?}\ncheckpoint_seconds = 1\n",
            dir.path().join("cache"),
            dir.path().join("data"),
        ),
    )
    .unwrap();
    let traffic = Simulator::new(SimConfig {
        seed: 9,
        accounts: 2_000,
        groups: 100,
        duration_seconds: 60 * 60,
        ..SimConfig::default()
    })
    .unwrap()
    .run();
    let queue: Arc<Mutex<VecDeque<v1::Event>>> = Arc::new(Mutex::new(
        traffic.events.iter().map(|l| wire(&l.event)).collect(),
    ));
    let acknowledged = Arc::new(Mutex::new(Acknowledged::default()));
    let mut unanswered: Vec<v1::Event> = Vec::new();

    for round in 0..ROUNDS {
        let engine = Engine::start(&config);
        // Events whose answer a crash swallowed go first: logged ones get
        // their decision again, the rest are decided now.
        {
            let mut client = engine.client().await;
            let acknowledged_before = acknowledged.lock().unwrap().sequences.len();
            for event in unanswered.drain(..) {
                let response = client
                    .evaluate(v1::EvaluateRequest {
                        event: Some(event),
                        view: v1::DecisionView::Compact as i32,
                    })
                    .await
                    .expect("the restarted engine answers")
                    .into_inner();
                let decision = response.decision.expect("a decision");
                let mut acknowledged = acknowledged.lock().unwrap();
                acknowledged.recovered_retries += usize::from(response.duplicate);
                acknowledged
                    .sequences
                    .insert(decision.id, decision.sequence);
            }
            assert!(acknowledged.lock().unwrap().sequences.len() >= acknowledged_before);
        }
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                tokio::spawn(send_until_killed(
                    engine.url.clone(),
                    queue.clone(),
                    acknowledged.clone(),
                ))
            })
            .collect();
        // Let it work (and checkpoint, every second) for a while, then
        // kill it mid-flight.
        let before = acknowledged.lock().unwrap().sequences.len();
        tokio::time::sleep(Duration::from_millis(400 + 97 * (round as u64 % 7))).await;
        assert!(
            acknowledged.lock().unwrap().sequences.len() > before,
            "round {round}: no event was answered before the kill"
        );
        engine.kill();
        for client in clients {
            unanswered.extend(client.await.unwrap());
        }
    }

    // A last start: every acknowledged decision is there, under its number.
    let engine = Engine::start(&config);
    let mut client = engine.client().await;
    let acknowledged = Arc::try_unwrap(acknowledged)
        .ok()
        .expect("the clients are done")
        .into_inner()
        .unwrap();
    for (id, &sequence) in &acknowledged.sequences {
        let logged = client
            .get_decision(v1::GetDecisionRequest {
                decision_id: id.clone(),
            })
            .await
            .unwrap_or_else(|status| panic!("{id} (sequence {sequence}) was lost: {status}"))
            .into_inner();
        assert_eq!(logged.sequence, sequence, "{id}");
    }
    // The log from its start: numbered 1, 2, 3... across every restart,
    // holding every acknowledged decision at its number.
    let last = *acknowledged.sequences.values().max().unwrap();
    let mut watch = client
        .watch_decisions(v1::WatchDecisionsRequest {
            after_sequence: Some(0),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut by_sequence = BTreeMap::new();
    while let Some(decision) = watch.next().await {
        let decision = decision.unwrap();
        by_sequence.insert(decision.sequence, decision.id);
        if decision.sequence >= last {
            break;
        }
    }
    let numbers: Vec<u64> = by_sequence.keys().copied().collect();
    assert_eq!(numbers, (1..=last).collect::<Vec<u64>>());
    for (id, sequence) in &acknowledged.sequences {
        assert_eq!(by_sequence.get(sequence), Some(id));
    }
    println!(
        "{ROUNDS} kills: {} decisions acknowledged, all kept; {} lost answers found logged on retry",
        acknowledged.sequences.len(),
        acknowledged.recovered_retries
    );
    engine.kill();
}
