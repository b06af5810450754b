//! Unary and health modes: one call per event on an open-loop schedule at a
//! fixed offered rate, and the latencies measured from it.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use enforcer::api::v1::enforcement_client::EnforcementClient;
use hdrhistogram::Histogram;
use tokio::sync::{Semaphore, mpsc};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::args::Args;
use crate::counters::Counters;
use crate::pacer::Pacer;
use crate::progress::{end_progress, progress};
use crate::replay::Replay;
use crate::report::{Report, UnaryReport};

/// One finished call.
struct Completion {
    scheduled: Instant,
    sent: Instant,
    finished: Instant,
    outcome: Result<bool, tonic::Status>,
}

pub(crate) async fn run_unary(
    args: &Args,
    clients: Vec<EnforcementClient<Channel>>,
    health: Option<Vec<HealthClient<Channel>>>,
    replay: Replay,
) -> anyhow::Result<Report> {
    let rate = args.rate.unwrap_or(5_000.0);
    let seconds = args.seconds.unwrap_or(10.0);
    let calls = ((args.warmup + seconds) * rate).ceil() as u64;
    ensure!(
        calls <= replay.len() * replay.rounds,
        "{calls} calls need more traffic than fits between the simulator's start and now"
    );
    let counters = Arc::new(Counters::default());
    let (done, completions) = mpsc::unbounded_channel();
    let started = Instant::now();
    let measure_from = started + Duration::from_secs_f64(args.warmup);
    let collector = tokio::spawn(collect(completions, counters.clone(), measure_from));
    let progress = (!args.quiet).then(|| progress(counters.clone(), started));

    let schedule = Schedule {
        clients,
        health,
        replay,
        counters: counters.clone(),
        outstanding: Arc::new(Semaphore::new(args.concurrency as usize)),
        pacer: Pacer::new(started, Some(rate)),
        calls,
    };
    let runtime = tokio::runtime::Handle::current();
    // The schedule keeps time on a thread of its own: the async timer's
    // millisecond ticks would add up to a millisecond of lateness to every
    // call, and that lateness would count as latency.
    tokio::task::spawn_blocking(move || schedule.run(&runtime, done))
        .await
        .context("the scheduling thread failed")??;
    // The collector ends when the last call's sender is dropped.
    let latency = collector.await.context("the collector failed")?;
    end_progress(progress);
    Ok(Report::Unary(Box::new(UnaryReport::new(
        &counters, latency, rate, seconds,
    ))))
}

/// The open-loop schedule of unary calls.
struct Schedule {
    clients: Vec<EnforcementClient<Channel>>,
    /// Health clients instead, in `--mode health`.
    health: Option<Vec<HealthClient<Channel>>>,
    replay: Replay,
    counters: Arc<Counters>,
    outstanding: Arc<Semaphore>,
    pacer: Pacer,
    calls: u64,
}

impl Schedule {
    /// Start each call at its time, on `runtime`; each reports to `done`.
    fn run(
        mut self,
        runtime: &tokio::runtime::Handle,
        done: mpsc::UnboundedSender<Completion>,
    ) -> anyhow::Result<()> {
        for index in 0..self.calls {
            // The event is made before its time comes, not after.
            let Some(event) = self.replay.event(index) else {
                break;
            };
            let scheduled = self.pacer.next_due();
            if let Some(wait) = scheduled.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            // When `--concurrency` calls are outstanding the send waits, and
            // the wait counts in its latency: it is from the scheduled time.
            let permit = runtime.block_on(self.outstanding.clone().acquire_owned())?;
            let mut client = self.clients[index as usize % self.clients.len()].clone();
            let done = done.clone();
            let request = self.replay.request(event);
            let health = self
                .health
                .as_ref()
                .map(|health| health[index as usize % health.len()].clone());
            self.counters.sent.fetch_add(1, Relaxed);
            runtime.spawn(async move {
                let sent = Instant::now();
                let outcome = match health {
                    Some(mut health) => health
                        .check(HealthCheckRequest {
                            service: "enforcement.v1.Enforcement".into(),
                        })
                        .await
                        .map(|_| false),
                    None => client
                        .evaluate(request)
                        .await
                        .map(|response| response.into_inner().duplicate),
                };
                let finished = Instant::now();
                let _ = done.send(Completion {
                    scheduled,
                    sent,
                    finished,
                    outcome,
                });
                drop(permit);
            });
        }
        Ok(())
    }
}

/// What the measured calls (scheduled after the warm-up) took, in
/// microseconds.
pub(crate) struct Latency {
    /// From each call's scheduled time to its answer: the latency a caller
    /// sending at this rate sees.
    pub(crate) scheduled: Histogram<u64>,
    /// From when the call was actually started: the transport's and the
    /// server's share.
    pub(crate) sent: Histogram<u64>,
    /// How late calls started: the client's own share (a busy machine, or
    /// `--concurrency` calls outstanding).
    pub(crate) lag: Histogram<u64>,
    pub(crate) measured: u64,
    pub(crate) first_scheduled: Option<Instant>,
    pub(crate) last_finished: Option<Instant>,
}

impl Latency {
    fn new() -> Latency {
        // From 1 µs to a minute, to three significant digits.
        let histogram = || Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
        Latency {
            scheduled: histogram(),
            sent: histogram(),
            lag: histogram(),
            measured: 0,
            first_scheduled: None,
            last_finished: None,
        }
    }

    fn record(&mut self, call: &Completion) {
        self.measured += 1;
        // Calls finish out of order: keep the earliest start and latest end.
        let first = self
            .first_scheduled
            .map_or(call.scheduled, |first| first.min(call.scheduled));
        self.first_scheduled = Some(first);
        self.last_finished = self.last_finished.max(Some(call.finished));
        self.lag
            .saturating_record(micros(call.sent - call.scheduled));
        // A failed call's time says nothing about evaluating; it is
        // counted as an error instead.
        if call.outcome.is_ok() {
            self.scheduled
                .saturating_record(micros(call.finished - call.scheduled));
            self.sent
                .saturating_record(micros(call.finished - call.sent));
        }
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

async fn collect(
    mut completions: mpsc::UnboundedReceiver<Completion>,
    counters: Arc<Counters>,
    measure_from: Instant,
) -> Latency {
    let mut latency = Latency::new();
    while let Some(call) = completions.recv().await {
        match &call.outcome {
            Ok(duplicate) => counters.evaluated(*duplicate),
            Err(status) => {
                counters.event_error(format!("{:?}: {}", status.code(), status.message()))
            }
        }
        if call.scheduled >= measure_from {
            latency.record(&call);
        }
    }
    latency
}
