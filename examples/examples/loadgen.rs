//! A load generator for the gRPC engine: it replays the simulator's traffic
//! against a running server and reports throughput or latency.
//!
//! Two modes:
//!
//! * `--mode stream` (the default): events over `EvaluateStream` on
//!   `--connections` streams, each on its own connection, as fast as the
//!   server answers or at `--rate` events/s in total, for `--events` events
//!   or `--seconds` seconds. Reports events/s and errors.
//! * `--mode unary`: one `Evaluate` call per event at a fixed offered
//!   `--rate` for `--seconds`, open loop: calls are scheduled at fixed
//!   intervals whether or not earlier ones have returned (at most
//!   `--concurrency` outstanding), and each latency is measured from the
//!   call's scheduled time, so a server that stalls is charged for every
//!   call it delayed, not just the one it was slow on. Reports latency
//!   percentiles.
//!
//! The traffic (an hour of a 10,000-account community by default) is
//! replayed in rounds. Each round gets fresh event ids and fresh account and
//! group ids (a suffix naming the run and the round), so it is a new
//! community rather than retries the engine would answer as duplicates. It
//! is dated one traffic span after the round before, starting from the
//! simulator's start time, so within a run event time moves forward as on a
//! real platform and stays in the past (the engine refuses events dated
//! more than five minutes ahead of its clock). A second run against the
//! same server starts again from the simulator's start time: behind what
//! the server has seen, which it accepts as late events of other entities.
//!
//! Run a server (`cargo run --release -p enforcer -- serve`) and then, for
//! example, `cargo run --release -p enforcer-examples --example loadgen --
//! --mode stream --connections 2 --seconds 10`; or add `--spawn-server` to
//! run the server in this process (client and server then share the cores).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use clap::{Parser, ValueEnum};
use enforcer::api::v1;
use enforcer::api::v1::enforcement_client::EnforcementClient;
use enforcer_examples::simulator::{SimConfig, Simulator};
use futures_util::Stream;
use hdrhistogram::Histogram;
use tokio::sync::{Semaphore, mpsc};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// The allocator the `enforcer` server uses, for the in-process server
/// and for the client alike.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    /// The server's address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Start a server in this process on a free loopback port (the example
    /// rules, as `enforcer serve` runs them) instead of using `--addr`.
    #[arg(long)]
    spawn_server: bool,
    /// What to measure.
    #[arg(long, value_enum, default_value_t = Mode::Stream)]
    mode: Mode,
    /// Connections: streams in stream mode (one per connection); in unary
    /// mode, calls are spread over them in turn.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    connections: u32,
    /// Events per second offered, in total. Stream mode: unset sends as
    /// fast as the server answers. Unary mode: default 5,000.
    #[arg(long)]
    rate: Option<f64>,
    /// Unary mode: most calls outstanding at once.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: u32,
    /// Stream mode: stop after this many events.
    #[arg(long)]
    events: Option<u64>,
    /// Stop after this many seconds (default 10 when `--events` is unset).
    #[arg(long)]
    seconds: Option<f64>,
    /// Unary mode: seconds of load at the same rate before measuring, so
    /// connection set-up and the server's first threads are not counted.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Simulator seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Accounts in the simulated community.
    #[arg(long, default_value_t = 10_000)]
    accounts: usize,
    /// Minutes of traffic per round.
    #[arg(long, default_value_t = 60)]
    minutes: u64,
    /// Ask for compact decisions (`DECISION_VIEW_COMPACT`: no event echoed
    /// back, only the rules that fired or failed) instead of whole ones.
    #[arg(long)]
    compact: bool,
    /// No progress line on stderr.
    #[arg(long)]
    quiet: bool,
    /// Print the results as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Mode {
    /// `EvaluateStream`: throughput.
    Stream,
    /// `Evaluate` at a fixed offered rate: latency.
    Unary,
    /// `grpc.health.v1.Health/Check` at a fixed offered rate, measured as
    /// `unary` is: the floor that the transport and this machine set, the
    /// baseline for `unary`'s figures.
    Health,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    check(&args)?;
    let replay = Replay::simulate(&args)?;
    let server = args.spawn_server.then(SpawnedServer::start).transpose()?;
    let addr = match &server {
        Some(server) => format!("http://{}", server.addr),
        None => with_scheme(&args.addr),
    };
    // The client gets its own runtime, as it would in its own process.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let channels = connect(&addr, args.connections).await?;
        let clients = channels
            .iter()
            .map(|channel| {
                EnforcementClient::new(channel.clone()).max_decoding_message_size(64 << 20)
            })
            .collect();
        match args.mode {
            Mode::Stream => run_stream(&args, clients, replay).await,
            Mode::Unary => run_unary(&args, clients, None, replay).await,
            Mode::Health => {
                let health = channels.into_iter().map(HealthClient::new).collect();
                run_unary(&args, clients, Some(health), replay).await
            }
        }
    })?;
    let placement = if args.spawn_server {
        "in-process server, sharing this machine's cores with the client"
    } else {
        "server at --addr"
    };
    report.print(&args, &addr, placement);
    match server {
        Some(server) => server.stop(),
        None => Ok(()),
    }
}

/// Refuse flag combinations that would measure something else than asked.
fn check(args: &Args) -> anyhow::Result<()> {
    if let Some(rate) = args.rate {
        ensure!(
            rate.is_finite() && rate > 0.0,
            "--rate must be a positive number, not {rate}"
        );
    }
    if let Some(seconds) = args.seconds {
        ensure!(
            seconds.is_finite() && seconds > 0.0,
            "--seconds must be positive, not {seconds}"
        );
    }
    ensure!(
        args.warmup.is_finite() && args.warmup >= 0.0,
        "--warmup must be 0 or more"
    );
    if args.mode != Mode::Stream && args.events.is_some() {
        bail!("--events is for stream mode; unary mode runs for --seconds at --rate");
    }
    if args.events.is_some() && args.seconds.is_some() {
        bail!("give --events or --seconds, not both");
    }
    Ok(())
}

/// `host:port` as `http://host:port`, the form tonic connects to.
fn with_scheme(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// One client per connection: a tonic channel is one HTTP/2 connection.
async fn connect(addr: &str, connections: u32) -> anyhow::Result<Vec<Channel>> {
    let mut clients = Vec::new();
    for _ in 0..connections {
        let channel = Channel::from_shared(addr.to_string())
            .with_context(|| format!("--addr {addr}: not a URL such as http://127.0.0.1:50051"))?
            .connect()
            .await
            .with_context(|| format!("cannot connect to {addr}: is `enforcer serve` running?"))?;
        clients.push(channel);
    }
    Ok(clients)
}

// ---------------------------------------------------------------------------
// The traffic.

/// The simulator's traffic as wire events, replayed in rounds.
struct Replay {
    events: Vec<v1::Event>,
    /// Each event's time in milliseconds, to shift per round.
    times_ms: Vec<i64>,
    /// How far apart rounds are dated: the traffic's span and a second.
    span_ms: i64,
    /// Rounds that can be dated entirely in the past of the wall clock.
    rounds: u64,
    /// Distinguishes this run's ids from an earlier run's against the same
    /// server, which would otherwise be answered as retries.
    run: String,
    /// The decision view every request asks for.
    view: v1::DecisionView,
}

impl Replay {
    fn simulate(args: &Args) -> anyhow::Result<Replay> {
        let config = SimConfig {
            seed: args.seed,
            accounts: args.accounts,
            groups: (args.accounts / 20).max(1),
            duration_seconds: args.minutes * 60,
            ..SimConfig::default()
        };
        let traffic = Simulator::new(config)
            .map_err(|e| anyhow::anyhow!("simulator: {e}"))?
            .run();
        ensure!(
            !traffic.events.is_empty(),
            "the simulator produced no events"
        );
        let times_ms: Vec<i64> = traffic
            .events
            .iter()
            .map(|e| e.event.occurred_at_ms)
            .collect();
        let (first, last) = (times_ms.iter().min(), times_ms.iter().max());
        let (Some(&first), Some(&last)) = (first, last) else {
            bail!("the simulator produced no events");
        };
        let span_ms = last - first + 1_000;
        let now_ms = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
        let rounds = u64::try_from((now_ms - last) / span_ms).unwrap_or(0);
        ensure!(
            rounds > 0,
            "the simulated traffic ends after this machine's clock"
        );
        let events = traffic
            .events
            .iter()
            .map(|e| enforcer::api::event_to_proto(&e.event))
            .collect();
        Ok(Replay {
            events,
            times_ms,
            span_ms,
            rounds,
            run: format!("{now_ms:x}"),
            view: if args.compact {
                v1::DecisionView::Compact
            } else {
                v1::DecisionView::Full
            },
        })
    }

    fn len(&self) -> u64 {
        self.events.len() as u64
    }

    /// A request for `event` in this run's view.
    fn request(&self, event: v1::Event) -> v1::EvaluateRequest {
        v1::EvaluateRequest {
            event: Some(event),
            view: self.view.into(),
        }
    }

    /// The `index`th event of the endless replay, or `None` once it would
    /// be dated after the wall clock.
    fn event(&self, index: u64) -> Option<v1::Event> {
        let round = index / self.len();
        if round >= self.rounds {
            return None;
        }
        let at = (index % self.len()) as usize;
        let mut event = self.events[at].clone();
        let suffix = format!("-{}r{round}", self.run);
        event.id.push_str(&suffix);
        for entity in [event.actor.as_mut(), event.target.as_mut()]
            .into_iter()
            .flatten()
        {
            entity.id.push_str(&suffix);
        }
        let ms = self.times_ms[at] + round as i64 * self.span_ms;
        event.occurred_at = Some(prost_types::Timestamp {
            seconds: ms.div_euclid(1000),
            nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
        });
        Some(event)
    }
}

// ---------------------------------------------------------------------------
// Counting results.

/// Distinct error descriptions kept with their counts; beyond this many,
/// further kinds are counted together.
const ERROR_KINDS: usize = 20;

/// What happened so far, shared by the connections and the progress line.
#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    ok: AtomicU64,
    duplicates: AtomicU64,
    event_errors: AtomicU64,
    stream_errors: AtomicU64,
    /// Sends the stream mode skipped because the traffic would be dated in
    /// the future (only after thousands of rounds).
    out_of_traffic: AtomicBool,
    kinds: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    fn errors(&self) -> u64 {
        self.event_errors.load(Relaxed) + self.stream_errors.load(Relaxed)
    }

    fn answered(&self) -> u64 {
        self.ok.load(Relaxed) + self.event_errors.load(Relaxed)
    }

    fn evaluated(&self, duplicate: bool) {
        self.ok.fetch_add(1, Relaxed);
        if duplicate {
            self.duplicates.fetch_add(1, Relaxed);
        }
    }

    fn event_error(&self, description: String) {
        self.event_errors.fetch_add(1, Relaxed);
        self.note(description);
    }

    fn stream_error(&self, status: &tonic::Status) {
        self.stream_errors.fetch_add(1, Relaxed);
        self.note(format!(
            "stream ended with {:?}: {}",
            status.code(),
            status.message()
        ));
    }

    fn note(&self, description: String) {
        let mut kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        let key = if kinds.len() < ERROR_KINDS || kinds.contains_key(&description) {
            description
        } else {
            "(other errors)".to_string()
        };
        *kinds.entry(key).or_default() += 1;
    }

    fn error_kinds(&self) -> BTreeMap<String, u64> {
        self.kinds.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// One line on stderr, rewritten every second, until aborted.
fn progress(counters: Arc<Counters>, started: Instant) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let mut last = 0;
        loop {
            tick.tick().await;
            let answered = counters.answered();
            eprint!(
                "\r{:>6.1} s  sent {:>12}  answered {:>9}/s  errors {}   ",
                started.elapsed().as_secs_f64(),
                grouped(counters.sent.load(Relaxed)),
                grouped(answered - last),
                grouped(counters.errors()),
            );
            last = answered;
        }
    })
}

/// Stop the progress line and end it, so results start on a fresh line.
fn end_progress(progress: Option<tokio::task::JoinHandle<()>>) {
    if let Some(progress) = progress {
        progress.abort();
        eprintln!();
    }
}

// ---------------------------------------------------------------------------
// Stream mode.

/// Where the streams take their events from: one shared sequence, so the
/// connections together send each event of the replay once.
struct Feed {
    replay: Replay,
    next: AtomicU64,
    total: Option<u64>,
    deadline: Instant,
}

impl Feed {
    fn next_request(&self, counters: &Counters) -> Option<v1::EvaluateRequest> {
        if Instant::now() >= self.deadline {
            return None;
        }
        let index = self.next.fetch_add(1, Relaxed);
        if self.total.is_some_and(|total| index >= total) {
            return None;
        }
        let Some(event) = self.replay.event(index) else {
            counters.out_of_traffic.store(true, Relaxed);
            return None;
        };
        counters.sent.fetch_add(1, Relaxed);
        Some(self.replay.request(event))
    }
}

/// Holds sends to a rate: the `n`th send is due `n / rate` seconds after
/// the start. The timer's millisecond granularity makes sends leave in
/// small bursts, each on time on average.
struct Pacer {
    start: Instant,
    per_second: Option<f64>,
    count: u64,
}

impl Pacer {
    fn new(start: Instant, per_second: Option<f64>) -> Pacer {
        Pacer {
            start,
            per_second,
            count: 0,
        }
    }

    /// The due time of the next send, and count it.
    fn next_due(&mut self) -> Instant {
        let due = match self.per_second {
            Some(rate) => self.start + Duration::from_secs_f64(self.count as f64 / rate),
            None => self.start,
        };
        self.count += 1;
        due
    }

    async fn wait(&mut self) {
        let due = self.next_due();
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
    }
}

async fn run_stream(
    args: &Args,
    clients: Vec<EnforcementClient<Channel>>,
    replay: Replay,
) -> anyhow::Result<Report> {
    let seconds = args.seconds.unwrap_or(if args.events.is_some() {
        f64::MAX
    } else {
        10.0
    });
    if let Some(events) = args.events {
        let rounds = events.div_ceil(replay.len());
        ensure!(
            rounds <= replay.rounds,
            "--events {events} needs {rounds} rounds of traffic, but only {} fit between the \
             simulator's start and now",
            replay.rounds
        );
    }
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let feed = Arc::new(Feed {
        replay,
        next: AtomicU64::new(0),
        total: args.events,
        deadline: started
            .checked_add(Duration::from_secs_f64(seconds.min(1e9)))
            .unwrap_or(started),
    });
    let progress = (!args.quiet).then(|| progress(counters.clone(), started));
    let per_stream = args.rate.map(|rate| rate / clients.len() as f64);
    let streams: Vec<_> = clients
        .into_iter()
        .map(|client| {
            tokio::spawn(one_stream(
                client,
                feed.clone(),
                counters.clone(),
                per_stream,
            ))
        })
        .collect();
    for stream in streams {
        stream.await.context("a stream's task failed")?;
    }
    let elapsed = started.elapsed();
    end_progress(progress);
    Ok(Report::Stream(StreamReport::new(&counters, elapsed)))
}

/// One `EvaluateStream` call: send from the feed until it runs dry, read
/// every result. A failed stream is counted, not retried: the point is to
/// see failures.
async fn one_stream(
    mut client: EnforcementClient<Channel>,
    feed: Arc<Feed>,
    counters: Arc<Counters>,
    rate: Option<f64>,
) {
    let requests = requests(feed, counters.clone(), rate);
    let mut results = match client.evaluate_stream(requests).await {
        Ok(response) => response.into_inner(),
        Err(status) => return counters.stream_error(&status),
    };
    loop {
        match results.message().await {
            Ok(Some(result)) => count_result(&counters, result),
            Ok(None) => return,
            Err(status) => return counters.stream_error(&status),
        }
    }
}

/// The requests of one stream, paced to `rate` if set. tonic pulls them as
/// HTTP/2 flow control allows, so an unpaced stream sends as fast as the
/// server reads.
fn requests(
    feed: Arc<Feed>,
    counters: Arc<Counters>,
    rate: Option<f64>,
) -> impl Stream<Item = v1::EvaluateRequest> + Send + 'static {
    let state = (feed, counters, Pacer::new(Instant::now(), rate));
    futures_util::stream::unfold(state, |(feed, counters, mut pacer)| async move {
        pacer.wait().await;
        let request = feed.next_request(&counters)?;
        Some((request, (feed, counters, pacer)))
    })
}

fn count_result(counters: &Counters, result: v1::EvaluateStreamResponse) {
    use v1::evaluate_stream_response::Result as R;
    match result.result {
        Some(R::Evaluated(response)) => counters.evaluated(response.duplicate),
        Some(R::Error(error)) => counters.event_error(format!(
            "event error code {}: {}: {}",
            error.code, error.field, error.message
        )),
        None => counters.event_error("a result with neither decision nor error".into()),
    }
}

// ---------------------------------------------------------------------------
// Unary mode.

/// One finished call.
struct Completion {
    scheduled: Instant,
    sent: Instant,
    finished: Instant,
    outcome: Result<bool, tonic::Status>,
}

async fn run_unary(
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
struct Latency {
    /// From each call's scheduled time to its answer: the latency a caller
    /// sending at this rate sees.
    scheduled: Histogram<u64>,
    /// From when the call was actually started: the transport's and the
    /// server's share.
    sent: Histogram<u64>,
    /// How late calls started: the client's own share (a busy machine, or
    /// `--concurrency` calls outstanding).
    lag: Histogram<u64>,
    measured: u64,
    first_scheduled: Option<Instant>,
    last_finished: Option<Instant>,
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

// ---------------------------------------------------------------------------
// Results.

enum Report {
    Stream(StreamReport),
    /// Boxed: its histograms make it large.
    Unary(Box<UnaryReport>),
}

impl Report {
    fn print(&self, args: &Args, addr: &str, placement: &str) {
        let (json, errors) = match self {
            Report::Stream(r) => (r.json(args), &r.errors),
            Report::Unary(r) => (r.json(args), &r.errors),
        };
        if args.json {
            let mut object = serde_json::json!({
                "addr": addr,
                "server": placement,
                "connections": args.connections,
            });
            if let (Some(object), serde_json::Value::Object(more)) = (object.as_object_mut(), json)
            {
                object.extend(more);
            }
            println!("{object}");
            return;
        }
        println!("{addr} ({placement})");
        match self {
            Report::Stream(r) => r.print(args),
            Report::Unary(r) => r.print(args),
        }
        for (description, count) in errors {
            println!("  {} x {description}", grouped(*count));
        }
    }
}

struct StreamReport {
    sent: u64,
    ok: u64,
    duplicates: u64,
    event_errors: u64,
    stream_errors: u64,
    errors: BTreeMap<String, u64>,
    seconds: f64,
    out_of_traffic: bool,
}

impl StreamReport {
    fn new(counters: &Counters, elapsed: Duration) -> StreamReport {
        StreamReport {
            sent: counters.sent.load(Relaxed),
            ok: counters.ok.load(Relaxed),
            duplicates: counters.duplicates.load(Relaxed),
            event_errors: counters.event_errors.load(Relaxed),
            stream_errors: counters.stream_errors.load(Relaxed),
            errors: counters.error_kinds(),
            seconds: elapsed.as_secs_f64(),
            out_of_traffic: counters.out_of_traffic.load(Relaxed),
        }
    }

    /// Results (decisions and per-event errors alike) per second.
    fn throughput(&self) -> f64 {
        (self.ok + self.event_errors) as f64 / self.seconds
    }

    fn print(&self, args: &Args) {
        let pace = match args.rate {
            Some(rate) => format!("offered {} events/s", grouped(rate as u64)),
            None => "as fast as answered".to_string(),
        };
        println!(
            "EvaluateStream on {} connection(s), {pace}",
            args.connections
        );
        println!(
            "sent {}, decided {} ({} duplicates), event errors {}, stream errors {}",
            grouped(self.sent),
            grouped(self.ok),
            grouped(self.duplicates),
            grouped(self.event_errors),
            grouped(self.stream_errors)
        );
        println!(
            "throughput {} events/s over {:.2} s",
            grouped(self.throughput() as u64),
            self.seconds
        );
        if self.out_of_traffic {
            println!("stopped early: further rounds would be dated in the future");
        }
    }

    fn json(&self, args: &Args) -> serde_json::Value {
        serde_json::json!({
            "mode": "stream",
            "offered_rate": args.rate,
            "sent": self.sent,
            "decided": self.ok,
            "duplicates": self.duplicates,
            "event_errors": self.event_errors,
            "stream_errors": self.stream_errors,
            "errors": self.errors,
            "seconds": self.seconds,
            "events_per_second": self.throughput(),
            "out_of_traffic": self.out_of_traffic,
        })
    }
}

struct UnaryReport {
    offered: f64,
    seconds: f64,
    sent: u64,
    ok: u64,
    duplicates: u64,
    errors_total: u64,
    errors: BTreeMap<String, u64>,
    latency: Latency,
}

impl UnaryReport {
    fn new(counters: &Counters, latency: Latency, offered: f64, seconds: f64) -> UnaryReport {
        UnaryReport {
            offered,
            seconds,
            sent: counters.sent.load(Relaxed),
            ok: counters.ok.load(Relaxed),
            duplicates: counters.duplicates.load(Relaxed),
            errors_total: counters.event_errors.load(Relaxed),
            errors: counters.error_kinds(),
            latency,
        }
    }

    /// Calls answered with a decision per second over the measured part of
    /// the run (the latency histograms hold exactly those calls).
    fn achieved(&self) -> f64 {
        let window = match (self.latency.first_scheduled, self.latency.last_finished) {
            (Some(first), Some(last)) => (last - first).as_secs_f64(),
            _ => 0.0,
        };
        if window > 0.0 {
            self.latency.scheduled.len() as f64 / window
        } else {
            0.0
        }
    }

    /// The histograms reported, by name.
    fn histograms(&self) -> [(&'static str, &Histogram<u64>); 3] {
        [
            ("from scheduled send", &self.latency.scheduled),
            ("from actual send", &self.latency.sent),
            ("send lateness", &self.latency.lag),
        ]
    }

    fn print(&self, args: &Args) {
        let call = if args.mode == Mode::Health {
            "Health/Check (the transport's floor)"
        } else {
            "Evaluate"
        };
        println!(
            "{call} at an offered {} calls/s for {} s (after {} s warm-up), at most {} \
             outstanding, {} connection(s)",
            grouped(self.offered as u64),
            self.seconds,
            args.warmup,
            args.concurrency,
            args.connections
        );
        println!(
            "sent {}, decided {} ({} duplicates), errors {}; achieved {} calls/s",
            grouped(self.sent),
            grouped(self.ok),
            grouped(self.duplicates),
            grouped(self.errors_total),
            grouped(self.achieved() as u64)
        );
        for (name, histogram) in self.histograms() {
            let line: Vec<String> = percentiles(histogram)
                .iter()
                .map(|(p, us)| format!("{p} {}", grouped(*us)))
                .collect();
            println!("{name:<20} µs: {}", line.join("  "));
        }
    }

    fn json(&self, args: &Args) -> serde_json::Value {
        let mut object = serde_json::json!({
            "mode": if args.mode == Mode::Health { "health" } else { "unary" },
            "offered_rate": self.offered,
            "seconds": self.seconds,
            "warmup_seconds": args.warmup,
            "concurrency": args.concurrency,
            "sent": self.sent,
            "decided": self.ok,
            "duplicates": self.duplicates,
            "errors_total": self.errors_total,
            "errors": self.errors,
            "achieved_rate": self.achieved(),
            "measured_calls": self.latency.measured,
        });
        for (name, histogram) in self.histograms() {
            let key = format!("latency_{}_us", name.replace(' ', "_"));
            let values: serde_json::Map<String, serde_json::Value> = percentiles(histogram)
                .iter()
                .map(|(p, us)| (p.to_string(), (*us).into()))
                .collect();
            object[key] = values.into();
        }
        object
    }
}

/// The percentiles reported, and the maximum.
fn percentiles(h: &Histogram<u64>) -> [(&'static str, u64); 5] {
    [
        ("p50", h.value_at_quantile(0.50)),
        ("p90", h.value_at_quantile(0.90)),
        ("p99", h.value_at_quantile(0.99)),
        ("p99.9", h.value_at_quantile(0.999)),
        ("max", h.max()),
    ]
}

/// 1234567 as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

// ---------------------------------------------------------------------------
// The in-process server.

/// A server on its own runtime and threads, as `enforcer serve` runs it
/// with no configuration: the example rules, the example policy and the
/// demo hash bank.
struct SpawnedServer {
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
}

impl SpawnedServer {
    fn start() -> anyhow::Result<SpawnedServer> {
        use enforcer::config::ServeConfig;
        use enforcer::decision_log::DecisionLog;
        use enforcer::examples::{EXAMPLE_POLICY, load_example_rules};
        use enforcer::pipeline::{Pipeline, PipelineOptions};
        use enforcer::policy::Policy;

        let config = ServeConfig::default();
        let runtime = enforcer::runtime::Runtime::new()?;
        let rules = load_example_rules(&runtime)
            .map_err(|(name, e)| anyhow::anyhow!("loading example rule {name}: {e}"))?;
        let policy = Policy::parse(EXAMPLE_POLICY).context("the example policy")?;
        let options = PipelineOptions {
            banks: enforcer::demo::banks(),
            ..config.pipeline_options()
        };
        let pipeline = Arc::new(Pipeline::new(rules, policy, options)?);
        let log = Arc::new(DecisionLog::new(config.limits.decision_log_capacity));
        let server_options = config.server_options();

        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (bound, address) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let _ = bound.send(listener.local_addr()?);
                let shutdown = async move {
                    let _ = stopped.await;
                };
                enforcer::server::serve(listener, pipeline, log, server_options, shutdown).await?;
                Ok(())
            })
        });
        let Ok(addr) = address.recv() else {
            // The thread ended before binding: its error says why.
            return Err(match thread.join() {
                Ok(Err(e)) => e.context("starting the in-process server"),
                _ => anyhow::anyhow!("the in-process server failed to start"),
            });
        };
        Ok(SpawnedServer { addr, stop, thread })
    }

    fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        match self.thread.join() {
            Ok(result) => result.context("the in-process server"),
            Err(_) => bail!("the in-process server's thread panicked"),
        }
    }
}
