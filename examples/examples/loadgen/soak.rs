//! Soak runs: disturbances beside the load, and the server's memory over
//! time. While the load runs, `--swap-every` deploys another build of a
//! rule through the control plane (two builds in turn, each activated live),
//! `--hostile-every` sends the hostile corpus and checks each refusal, and
//! `--watch-pid` samples the server's resident memory. A soak passes when
//! the good events see no error, every swap and refusal is as expected, and
//! memory stays flat once warm.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use enforcer::api::v1;
use enforcer::api::v1::admin_client::AdminClient;
use enforcer::api::v1::enforcement_client::EnforcementClient;
use enforcer_examples::builds::variant;
use enforcer_examples::hostile::{self, Hostile};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::args::Args;
use crate::report::grouped;

/// The rule the swaps deploy builds of.
const SWAPPED_RULE: &str = "mass_forwarding";

/// Most unexpected outcomes kept word for word.
const KEPT_SURPRISES: usize = 10;

#[derive(Default)]
struct Tally {
    swaps: AtomicU64,
    swaps_failed: AtomicU64,
    hostile_sent: AtomicU64,
    hostile_unexpected: AtomicU64,
    surprises: Mutex<Vec<String>>,
    /// (seconds since the start, resident KiB).
    memory: Mutex<Vec<(f64, u64)>>,
}

impl Tally {
    fn surprise(&self, what: String) {
        let mut kept = self.surprises.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < KEPT_SURPRISES {
            kept.push(what);
        }
    }
}

/// The disturbances and the sampler, running.
pub(crate) struct Soak {
    tally: Arc<Tally>,
    tasks: Vec<JoinHandle<()>>,
    started: Instant,
}

/// What a soak saw.
pub(crate) struct SoakReport {
    swaps: u64,
    swaps_failed: u64,
    hostile_sent: u64,
    hostile_unexpected: u64,
    surprises: Vec<String>,
    memory: Vec<(f64, u64)>,
}

impl Soak {
    /// Start what `args` asks for; `None` when it asks for none of it.
    pub(crate) async fn start(args: &Args, addr: &str) -> anyhow::Result<Option<Soak>> {
        if args.swap_every.is_none() && args.hostile_every.is_none() && args.watch_pid.is_none() {
            return Ok(None);
        }
        let tally = Arc::new(Tally::default());
        let started = Instant::now();
        let mut tasks = Vec::new();
        if let Some(every) = args.swap_every {
            let token = args
                .admin_token
                .clone()
                .context("--swap-every needs --admin-token (or ENFORCER_ADMIN_TOKEN)")?;
            let channel = Channel::from_shared(args.admin_addr.clone())?
                .connect()
                .await
                .with_context(|| {
                    format!("cannot connect to the control plane at {}", args.admin_addr)
                })?;
            tasks.push(tokio::spawn(swap(channel, token, every, tally.clone())));
        }
        if let Some(every) = args.hostile_every {
            let channel = Channel::from_shared(addr.to_string())?.connect().await?;
            tasks.push(tokio::spawn(send_hostile(channel, every, tally.clone())));
        }
        if let Some(pid) = args.watch_pid {
            resident_kib(pid)
                .with_context(|| format!("--watch-pid {pid}: cannot read its memory"))?;
            tasks.push(tokio::spawn(sample_memory(
                pid,
                args.sample_every,
                started,
                tally.clone(),
            )));
        }
        Ok(Some(Soak {
            tally,
            tasks,
            started,
        }))
    }

    /// Stop, with a last memory sample, and report.
    pub(crate) fn finish(self, args: &Args) -> SoakReport {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(pid) = args.watch_pid
            && let Ok(kib) = resident_kib(pid)
        {
            let mut memory = self.tally.memory.lock().unwrap_or_else(|e| e.into_inner());
            memory.push((self.started.elapsed().as_secs_f64(), kib));
        }
        let tally = &self.tally;
        SoakReport {
            swaps: tally.swaps.load(Relaxed),
            swaps_failed: tally.swaps_failed.load(Relaxed),
            hostile_sent: tally.hostile_sent.load(Relaxed),
            hostile_unexpected: tally.hostile_unexpected.load(Relaxed),
            surprises: tally
                .surprises
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            memory: tally
                .memory
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

/// Deploy two builds of a rule in turn, each activated live, every
/// `every` seconds. The engine compiles each once and keeps it: a swap back
/// to a build it knows is the hot swap a rollout makes.
async fn swap(channel: Channel, token: String, every: f64, tally: Arc<Tally>) {
    let path =
        std::path::Path::new(enforcer::examples::PLUGIN_DIR).join(format!("{SWAPPED_RULE}.wasm"));
    let wasm = match std::fs::read(&path) {
        Ok(wasm) => wasm,
        Err(e) => {
            tally.swaps_failed.fetch_add(1, Relaxed);
            return tally.surprise(format!("cannot read {}: {e}", path.display()));
        }
    };
    let builds = [variant(&wasm, "soak-a"), variant(&wasm, "soak-b")];
    let bearer: tonic::metadata::MetadataValue<_> = match format!("Bearer {token}").parse() {
        Ok(value) => value,
        Err(_) => return tally.surprise("the admin token is not valid metadata".into()),
    };
    let mut admin =
        AdminClient::with_interceptor(channel, move |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", bearer.clone());
            Ok(request)
        })
        .max_encoding_message_size(64 << 20);
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(every));
    ticks.tick().await;
    for turn in 0.. {
        ticks.tick().await;
        let upload = v1::UploadRuleRequest {
            wasm: builds[turn % 2].clone(),
            activation: v1::Activation::Activate as i32,
            ..Default::default()
        };
        match admin.upload_rule(upload).await {
            Ok(_) => tally.swaps.fetch_add(1, Relaxed),
            Err(status) => {
                tally.surprise(format!(
                    "swap {turn}: {:?}: {}",
                    status.code(),
                    status.message()
                ));
                tally.swaps_failed.fetch_add(1, Relaxed)
            }
        };
    }
}

/// Send the hostile corpus every `every` seconds, each event under a new
/// id, and check that each gets its status.
async fn send_hostile(channel: Channel, every: f64, tally: Arc<Tally>) {
    let mut client = EnforcementClient::new(channel)
        .max_encoding_message_size(64 << 20)
        .max_decoding_message_size(64 << 20);
    let base = hostile_base();
    let mut corpus: Vec<Hostile> = hostile::hostile_events(&base);
    // One message over the server's default size limit.
    corpus.push((
        "a message of 5 MB",
        hostile::attribute(&base, "body", v1::value::Kind::Text("x".repeat(5 << 20))),
        tonic::Code::ResourceExhausted,
        Vec::new(),
    ));
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(every));
    for round in 0u64.. {
        ticks.tick().await;
        for (index, (what, event, code, _)) in corpus.iter().enumerate() {
            let mut event = event.clone();
            event.id = format!("hostile-{round}-{index}");
            let answered = client
                .evaluate(v1::EvaluateRequest {
                    event: Some(event),
                    ..Default::default()
                })
                .await;
            tally.hostile_sent.fetch_add(1, Relaxed);
            let got = answered
                .as_ref()
                .err()
                .map_or(tonic::Code::Ok, |s| s.code());
            if got != *code {
                tally.hostile_unexpected.fetch_add(1, Relaxed);
                tally.surprise(format!("hostile `{what}`: {got:?}, expected {code:?}"));
            }
        }
    }
}

/// A good event, dated now, for the hostile ones to be made from.
fn hostile_base() -> v1::Event {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    enforcer::api::event_to_proto(&enforcer::event::Event::new(
        "hostile",
        "message.sent",
        now_ms,
        enforcer::event::Entity::account("hostile-sender"),
    ))
}

async fn sample_memory(pid: u32, every: f64, started: Instant, tally: Arc<Tally>) {
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(every));
    loop {
        ticks.tick().await;
        if let Ok(kib) = resident_kib(pid) {
            let mut memory = tally.memory.lock().unwrap_or_else(|e| e.into_inner());
            memory.push((started.elapsed().as_secs_f64(), kib));
        }
    }
}

/// The resident memory of process `pid`, in KiB (Linux).
fn resident_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .context("no VmRSS line")?;
    let kib = line
        .split_whitespace()
        .nth(1)
        .context("an empty VmRSS line")?
        .parse()?;
    Ok(kib)
}

impl SoakReport {
    /// Memory growth from the sample a quarter of the way in (warm) to the
    /// last, in MiB and as a share.
    fn growth(&self) -> Option<(f64, f64, f64)> {
        let last = self.memory.last()?;
        let warm = self.memory.get(self.memory.len() / 4)?;
        let mib = |kib: u64| kib as f64 / 1024.0;
        Some((
            mib(warm.1),
            mib(last.1),
            (last.1 as f64 - warm.1 as f64) / warm.1.max(1) as f64 * 100.0,
        ))
    }

    pub(crate) fn print(&self) {
        println!("soak:");
        println!(
            "  rule swaps:      {} done, {} failed",
            grouped(self.swaps),
            self.swaps_failed
        );
        println!(
            "  hostile events:  {} sent, {} not answered as expected",
            grouped(self.hostile_sent),
            self.hostile_unexpected
        );
        for surprise in &self.surprises {
            println!("    {surprise}");
        }
        if !self.memory.is_empty() {
            let samples: Vec<String> = self
                .memory
                .iter()
                .map(|(at, kib)| format!("{at:.0}s {:.1}", *kib as f64 / 1024.0))
                .collect();
            println!("  server memory (MiB resident): {}", samples.join(", "));
        }
        if let Some((warm, last, percent)) = self.growth() {
            println!("  memory once warm: {warm:.1} MiB -> {last:.1} MiB ({percent:+.1}%)");
        }
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "swaps": self.swaps,
            "swaps_failed": self.swaps_failed,
            "hostile_sent": self.hostile_sent,
            "hostile_unexpected": self.hostile_unexpected,
            "surprises": self.surprises,
            "memory_kib": self.memory,
            "memory_growth_percent": self.growth().map(|(_, _, percent)| percent),
        })
    }
}
