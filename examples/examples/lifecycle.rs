//! Rule lifecycle latency: how long after a control-plane change the data
//! plane decides with the build it asked for.
//!
//! The program starts a real engine in this process, on loopback, as
//! `enforcer serve` runs it: the example rules admitted by a registry, the
//! `enforcement.v1` data plane on one port and the `enforcement.v1.Admin`
//! control plane on another, uploads checked against a freshly generated
//! trusted key. The rule changed is the example rule `mass-forwarding`, a
//! typical rule; each new build of it is its wasm with a custom section
//! appended that holds a build number, so that its sha256 differs and its
//! behaviour does not. Every upload ships the rule's fixtures, which
//! admission runs.
//!
//! Measured, over gRPC, for `--rounds` changes of each kind:
//!
//! * activation: from sending `UploadRule` (a new build, activated at once)
//!   to the first `Evaluate` response whose report for `mass-forwarding`
//!   names the new sha256;
//! * re-activation: the same for a build admitted before (no compiling);
//! * rollback: from sending `Rollback` to the first decision naming the
//!   build active before;
//! * the baseline: one `Evaluate` round trip while nothing changes.
//!
//! The first decision is observed, not assumed: a separate task sends one
//! `Evaluate` after another while the change is made, so the figures are
//! precise to about one round trip. Each change's acknowledgement (its
//! response) is timed as well, and new builds are also uploaded with no
//! `Evaluate` traffic at all: the probe keeps the client and the data plane
//! busy, and on a machine with few cores that slows the compile it shares
//! them with. Then, in process, the registry calls alone:
//! `Registry::upload` of a new build and of a known one, `roll_back`, and
//! admission taken apart into signature check, compile and fixtures.
//!
//! `cargo run --release -p enforcer-examples --example lifecycle`
//! (`-- --json` for one JSON object, `-- --rounds N` for more changes).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use enforcer::api::v1;
use enforcer::api::v1::admin_client::AdminClient;
use enforcer::api::v1::enforcement_client::EnforcementClient;
use enforcer::event::{Entity, Event, Value};
use enforcer::fixtures::Fixtures;
use enforcer::pipeline::PipelineOptions;
use enforcer::registry::{Activation, Caller, Provenance, Registry, RuleSource, SignaturePolicy};
use enforcer::runtime::Runtime;
use enforcer::server::admin::AdminToken;
use enforcer_examples::builds::with_custom_section;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The allocator the `enforcer` server uses, so that the engine here runs
/// as it does in production.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The rule whose builds are changed: it subscribes to one event kind and
/// keeps one counter, a typical rule.
const RULE: &str = "mass-forwarding";

/// The name of the custom section that makes each build distinct.
const VARIANT_SECTION: &str = "enforcer-variant";

/// Chats per forward in the probing events: at the rule's fanout limit or
/// above, so its guard lets the call through and the new build really runs
/// (a skipped rule is reported too, but would not show its first call).
const PROBE_CHATS: i64 = 45;

/// Accounts the probing events come from, in turn.
const PROBE_ACCOUNTS: u64 = 64;

/// Evaluate calls before the baseline is measured, to warm the connection,
/// the server's threads and the rules' instances.
const WARMUP_CALLS: usize = 300;

/// Evaluate calls timed for the baseline.
const BASELINE_CALLS: usize = 2_000;

/// How long a change may take to show in decisions before the run gives up.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// The control-plane token. The listener is on loopback and lives only as
/// long as this process, so a fixed token protects nothing worth a secret.
const ADMIN_TOKEN: &str = "lifecycle-measurement";

#[derive(Parser)]
struct Args {
    /// Changes measured of each kind.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=200))]
    rounds: u32,
    /// Print the results as one JSON object.
    #[arg(long)]
    json: bool,
    /// Compile with the single-pass register allocator
    /// (`RuntimeConfig::fast_compile`): faster activation, slower calls.
    #[arg(long)]
    fast_compile: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rounds = args.rounds as usize;
    let mut builds = Builds::new()?;
    let engine = Engine::start(&builds, args.fast_compile)?;

    // The client gets its own runtime, as it would in its own process. One
    // thread: the probe and the change interleave on it, and neither does
    // more than wait on the network.
    let client_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let over_grpc = client_runtime.block_on(measure_over_grpc(&engine, &mut builds, rounds))?;
    // Dropping the runtime closes the client's connections, so the
    // server's graceful shutdown has no calls to wait for.
    drop(client_runtime);

    let in_process = measure_in_process(&engine, &mut builds, rounds)?;
    let report = Report {
        rounds,
        build_bytes: builds.base.wasm.len(),
        fixtures: in_process.fixtures_passed,
        over_grpc,
        in_process,
    };
    engine.stop()?;
    if args.json {
        println!("{}", report.json());
    } else {
        report.print();
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Builds of the rule.

/// One build of the rule, signed.
#[derive(Clone)]
struct Build {
    wasm: Vec<u8>,
    sha256: String,
    signature: Vec<u8>,
}

/// The rule's builds: the one the engine starts with, and new ones made on
/// demand, each signed with the key the engine trusts.
struct Builds {
    base: Build,
    fixtures: Vec<u8>,
    secret: String,
    public: String,
    made: u64,
}

impl Builds {
    fn new() -> anyhow::Result<Builds> {
        let (_, wasm) = enforcer::examples::EXAMPLE_RULES
            .iter()
            .find(|(name, _)| *name == RULE)
            .with_context(|| format!("the example rules have no `{RULE}`"))?;
        let fixtures = enforcer::examples::example_fixtures(RULE)
            .with_context(|| format!("the example rule `{RULE}` has no fixtures"))?;
        let pair = enforcer::signing::generate_keypair()?;
        let base = signed(&pair.secret, wasm.to_vec())?;
        Ok(Builds {
            base,
            fixtures: fixtures.as_bytes().to_vec(),
            secret: pair.secret,
            public: pair.public,
            made: 0,
        })
    }

    /// A build never seen before: the base build with a custom section
    /// holding the next build number. Custom sections carry no semantics,
    /// so the rule behaves exactly as the base build does.
    fn fresh(&mut self) -> anyhow::Result<Build> {
        self.made += 1;
        let wasm = with_custom_section(&self.base.wasm, VARIANT_SECTION, &self.made.to_le_bytes());
        signed(&self.secret, wasm)
    }

    /// What `UploadRule` sends for `build`, activated at once.
    fn request(&self, build: &Build) -> v1::UploadRuleRequest {
        v1::UploadRuleRequest {
            wasm: build.wasm.clone(),
            signature: build.signature.clone(),
            fixtures: self.fixtures.clone(),
            activation: v1::Activation::Activate as i32,
            rollout_percent: 0,
        }
    }

    /// What `Registry::upload` is given for `build`, as the control plane
    /// would hand it over.
    fn source(&self, build: &Build) -> RuleSource {
        RuleSource {
            wasm: build.wasm.clone(),
            signature: Some(build.signature.clone()),
            fixtures: Some(self.fixtures.clone()),
            origin: "upload".into(),
        }
    }
}

fn signed(secret: &str, wasm: Vec<u8>) -> anyhow::Result<Build> {
    let signature = enforcer::signing::sign(secret, &wasm)?.into_bytes();
    Ok(Build {
        sha256: enforcer::runtime::build_sha256(&wasm),
        wasm,
        signature,
    })
}

// ---------------------------------------------------------------------------
// The engine.

/// A real engine on its own runtime and threads: the registry over the
/// example rules, the data plane and the control plane.
struct Engine {
    registry: Arc<Registry>,
    runtime: Runtime,
    signatures: SignaturePolicy,
    data_addr: std::net::SocketAddr,
    admin_addr: std::net::SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
}

impl Engine {
    fn start(builds: &Builds, fast_compile: bool) -> anyhow::Result<Engine> {
        use enforcer::config::ServeConfig;
        use enforcer::decision_log::DecisionLog;
        use enforcer::server::ServerOptions;
        use enforcer::signing::TrustedKeys;

        let runtime = Runtime::with_config(enforcer::runtime::RuntimeConfig {
            fast_compile,
            ..Default::default()
        })?;
        let signatures = SignaturePolicy {
            trusted: TrustedKeys::parse(std::slice::from_ref(&builds.public))?,
            allow_unsigned: false,
        };
        let registry = Registry::start(
            runtime.clone(),
            enforcer::registry::RegistrySettings {
                signatures: signatures.clone(),
                audit_capacity: 1000,
                state_dir: None,
            },
            enforcer::examples::example_sources(),
            enforcer::examples::EXAMPLE_POLICY.to_string(),
            // The probing events are dated by the clock the engine reads,
            // so a limit on clock skew would check nothing here.
            PipelineOptions {
                max_future_skew_ms: None,
                ..Default::default()
            },
        )
        .context("starting the registry with the example rules")?;
        let registry = Arc::new(registry);
        let log = Arc::new(DecisionLog::new(
            ServeConfig::default().limits.decision_log_capacity,
        ));

        let (stop, stopping) = tokio::sync::watch::channel(false);
        let (bound, addresses) = std::sync::mpsc::channel();
        let served = registry.clone();
        let thread = std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let data = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let _ = bound.send((data.local_addr()?, admin.local_addr()?));
                let data_plane = enforcer::server::serve(
                    data,
                    served.pipeline().clone(),
                    log,
                    ServerOptions::default(),
                    stopped(stopping.clone()),
                );
                let control_plane = enforcer::server::admin::serve_admin(
                    admin,
                    served,
                    vec![AdminToken {
                        name: "lifecycle".into(),
                        token: ADMIN_TOKEN.into(),
                    }],
                    stopped(stopping),
                );
                tokio::try_join!(data_plane, control_plane)?;
                Ok(())
            })
        });
        let Ok((data_addr, admin_addr)) = addresses.recv() else {
            // The thread ended before binding: its error says why.
            return Err(match thread.join() {
                Ok(Err(e)) => e.context("starting the in-process engine"),
                _ => anyhow::anyhow!("the in-process engine failed to start"),
            });
        };
        Ok(Engine {
            registry,
            runtime,
            signatures,
            data_addr,
            admin_addr,
            stop,
            thread,
        })
    }

    fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        match self.thread.join() {
            Ok(result) => result.context("the in-process engine"),
            Err(_) => bail!("the in-process engine's thread panicked"),
        }
    }
}

/// Completes once `stop` is sent (or its sender is gone).
async fn stopped(mut stopping: tokio::sync::watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

// ---------------------------------------------------------------------------
// Over gRPC.

/// Adds the control-plane token to every call.
#[derive(Clone)]
struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Admin = AdminClient<InterceptedService<Channel, Bearer>>;

/// The probing events: `message.forwarded`, each with a new id (a repeated
/// id would get its first decision back, made by whatever build ran then).
struct Probes {
    next: AtomicU64,
}

impl Probes {
    fn request(&self) -> v1::EvaluateRequest {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let event = Event::new(
            format!("lifecycle-{n}"),
            "message.forwarded",
            now_ms,
            Entity::account(format!("lifecycle-forwarder-{}", n % PROBE_ACCOUNTS)),
        )
        .with("chat_count", Value::Int(PROBE_CHATS));
        v1::EvaluateRequest {
            event: Some(enforcer::api::event_to_proto(&event)),
            view: v1::DecisionView::Full as i32,
        }
    }
}

#[derive(Clone)]
struct Clients {
    data: EnforcementClient<Channel>,
    admin: Admin,
    probes: Arc<Probes>,
}

impl Clients {
    async fn connect(engine: &Engine) -> anyhow::Result<Clients> {
        let data = Channel::from_shared(format!("http://{}", engine.data_addr))?
            .connect()
            .await
            .context("connecting to the data plane")?;
        let admin = Channel::from_shared(format!("http://{}", engine.admin_addr))?
            .connect()
            .await
            .context("connecting to the control plane")?;
        let bearer = Bearer(format!("Bearer {ADMIN_TOKEN}").parse()?);
        Ok(Clients {
            data: EnforcementClient::new(data),
            admin: AdminClient::with_interceptor(admin, bearer).max_decoding_message_size(64 << 20),
            probes: Arc::new(Probes {
                next: AtomicU64::new(0),
            }),
        })
    }

    /// One `Evaluate`: the sha256 of the `mass-forwarding` build that
    /// decided.
    async fn evaluate(&mut self) -> anyhow::Result<String> {
        let response = self
            .data
            .evaluate(self.probes.request())
            .await
            .context("Evaluate")?
            .into_inner();
        let decision = response.decision.context("a response with no decision")?;
        decision
            .rules
            .into_iter()
            .find(|report| report.rule == RULE)
            .map(|report| report.sha256)
            .with_context(|| format!("a decision with no report for `{RULE}`"))
    }
}

/// A control-plane change.
enum Change {
    Upload(v1::UploadRuleRequest),
    Rollback,
}

/// One change, timed from sending it.
#[derive(Clone, Copy)]
struct Observed {
    /// Until the first decision naming the expected build.
    first_decision: Duration,
    /// Until the change's own response.
    acknowledged: Duration,
}

/// Make `change` while probing, and time it until a decision names
/// `expected`.
async fn observe(clients: &Clients, change: Change, expected: &str) -> anyhow::Result<Observed> {
    let (probing, probe_started) = tokio::sync::oneshot::channel();
    let probe = tokio::spawn(probe_until(clients.clone(), expected.to_string(), probing));
    // The change goes out only once the probe has had an answer naming
    // another build: it is then in its loop, and nothing stale is taken for
    // the change showing.
    if probe_started.await.is_err() {
        return Err(match probe.await {
            Ok(Err(e)) => e,
            _ => anyhow::anyhow!("the probe ended before its first decision"),
        });
    }
    let mut admin = clients.admin.clone();
    let sent = Instant::now();
    let result = match change {
        Change::Upload(request) => admin.upload_rule(request).await.map(drop),
        Change::Rollback => admin
            .rollback(v1::RuleRequest { rule: RULE.into() })
            .await
            .map(drop),
    };
    let acknowledged = sent.elapsed();
    if let Err(status) = result {
        probe.abort();
        bail!("the control plane refused the change: {status}");
    }
    let seen = probe.await.context("the probe task")??;
    Ok(Observed {
        first_decision: seen.duration_since(sent),
        acknowledged,
    })
}

/// Evaluate until a decision names `expected`; return when it arrived.
/// `started` is sent after the first decision, which must name another
/// build.
async fn probe_until(
    mut clients: Clients,
    expected: String,
    started: tokio::sync::oneshot::Sender<()>,
) -> anyhow::Result<Instant> {
    let mut started = Some(started);
    let deadline = Instant::now() + CHANGE_TIMEOUT;
    loop {
        let sha256 = clients.evaluate().await?;
        let at = Instant::now();
        if sha256 == expected {
            ensure!(
                started.is_none(),
                "the build {expected} decided before the change was made"
            );
            return Ok(at);
        }
        if let Some(started) = started.take() {
            let _ = started.send(());
        }
        ensure!(
            at < deadline,
            "no decision named {expected} within {CHANGE_TIMEOUT:?}"
        );
    }
}

/// What was measured over gRPC.
struct OverGrpc {
    baseline: Vec<Duration>,
    activation: Vec<Observed>,
    activation_quiet: Vec<Duration>,
    reactivation: Vec<Observed>,
    rollback: Vec<Observed>,
}

async fn measure_over_grpc(
    engine: &Engine,
    builds: &mut Builds,
    rounds: usize,
) -> anyhow::Result<OverGrpc> {
    let mut clients = Clients::connect(engine).await?;

    for _ in 0..WARMUP_CALLS {
        let sha256 = clients.evaluate().await?;
        ensure!(
            sha256 == builds.base.sha256,
            "the engine started with build {sha256} of `{RULE}`, not the example build"
        );
    }
    let mut baseline = Vec::with_capacity(BASELINE_CALLS);
    for _ in 0..BASELINE_CALLS {
        let started = Instant::now();
        clients.evaluate().await?;
        baseline.push(started.elapsed());
    }

    // Activation: a new build each round, so each is compiled.
    let mut activation = Vec::with_capacity(rounds);
    let mut latest = builds.base.clone();
    for _ in 0..rounds {
        latest = builds.fresh()?;
        let change = Change::Upload(builds.request(&latest));
        activation.push(observe(&clients, change, &latest.sha256).await?);
    }

    // The same uploads with no Evaluate traffic. On a machine with few
    // cores the probe's calls compete with the compile for them; this
    // shows by how much. Only the response can be timed, but the registry
    // has published the build by the time it answers.
    let mut activation_quiet = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        latest = builds.fresh()?;
        let request = builds.request(&latest);
        let started = Instant::now();
        clients
            .admin
            .upload_rule(request)
            .await
            .context("UploadRule")?;
        activation_quiet.push(started.elapsed());
    }

    // Re-activation: the base build and the latest new one in turn, both
    // admitted already, starting with the one not active now.
    let known = [builds.base.clone(), latest];
    // A rule keeps only its latest builds, so the base build may have been
    // forgotten by now: admit both again, untimed, leaving the latest active.
    for build in &known {
        clients
            .admin
            .upload_rule(builds.request(build))
            .await
            .context("UploadRule")?;
    }
    let mut active = 1;
    let mut reactivation = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let target = 1 - active;
        let change = Change::Upload(builds.request(&known[target]));
        reactivation.push(observe(&clients, change, &known[target].sha256).await?);
        active = target;
    }

    // Rollback: each round activates the other known build (not timed),
    // then rolls back to the one active before.
    let mut rollback = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let other = &known[1 - active];
        clients
            .admin
            .upload_rule(builds.request(other))
            .await
            .context("UploadRule before a rollback")?;
        rollback.push(observe(&clients, Change::Rollback, &known[active].sha256).await?);
    }

    Ok(OverGrpc {
        baseline,
        activation,
        activation_quiet,
        reactivation,
        rollback,
    })
}

// ---------------------------------------------------------------------------
// In process.

/// What was measured calling the registry and admission directly.
struct InProcess {
    upload_new: Vec<Duration>,
    upload_known: Vec<Duration>,
    roll_back: Vec<Duration>,
    signature: Vec<Duration>,
    compile: Vec<Duration>,
    fixtures: Vec<Duration>,
    admission: Vec<Duration>,
    fixtures_passed: usize,
}

fn measure_in_process(
    engine: &Engine,
    builds: &mut Builds,
    rounds: usize,
) -> anyhow::Result<InProcess> {
    let registry = &engine.registry;
    let caller = Caller::internal("bench");

    // `Registry::upload` of a new build: admission and publishing.
    let mut upload_new = Vec::with_capacity(rounds);
    let mut latest = builds.base.clone();
    for _ in 0..rounds {
        latest = builds.fresh()?;
        let source = builds.source(&latest);
        let started = Instant::now();
        registry.upload(&caller, source, Activation::Activate)?;
        upload_new.push(started.elapsed());
    }

    // Of a known build: the signature is checked again, then published.
    let known = [builds.base.clone(), latest];
    for build in &known {
        registry.upload(&caller, builds.source(build), Activation::Activate)?;
    }
    let mut active = 1;
    let mut upload_known = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let target = 1 - active;
        let source = builds.source(&known[target]);
        let started = Instant::now();
        registry.upload(&caller, source, Activation::Activate)?;
        upload_known.push(started.elapsed());
        active = target;
    }

    // A rollback publishes and checks nothing else.
    let mut roll_back = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let other = builds.source(&known[1 - active]);
        registry.upload(&caller, other, Activation::Activate)?;
        let started = Instant::now();
        let status = registry.roll_back(&caller, RULE)?;
        roll_back.push(started.elapsed());
        let now_active = status
            .versions
            .iter()
            .find(|v| v.standing == enforcer::registry::Standing::Active)
            .map(|v| v.sha256.as_str());
        ensure!(
            now_active == Some(known[active].sha256.as_str()),
            "a rollback did not return to the build active before it"
        );
    }

    // Admission taken apart, in its own order, on new builds that are
    // then dropped: the signature, the compile (isolation pass,
    // componentizing, native code, the first instance and its manifest
    // call), then the fixtures (parsed and run).
    let mut signature = Vec::with_capacity(rounds);
    let mut compile = Vec::with_capacity(rounds);
    let mut fixtures = Vec::with_capacity(rounds);
    let mut admission = Vec::with_capacity(rounds);
    let mut fixtures_passed = 0;
    for _ in 0..rounds {
        let build = builds.fresh()?;
        let source = builds.source(&build);
        let started = Instant::now();
        enforcer::registry::admission::check_signature(
            &engine.signatures,
            &source,
            Provenance::External,
        )?;
        let signed = Instant::now();
        let rule = engine.runtime.load(&source.wasm)?;
        let compiled = Instant::now();
        let json = source.fixtures.as_deref().unwrap_or_default();
        fixtures_passed = Fixtures::parse(json)?.run(&rule)?.passed;
        let done = Instant::now();
        signature.push(signed - started);
        compile.push(compiled - signed);
        fixtures.push(done - compiled);
        admission.push(done - started);
    }

    Ok(InProcess {
        upload_new,
        upload_known,
        roll_back,
        signature,
        compile,
        fixtures,
        admission,
        fixtures_passed,
    })
}

// ---------------------------------------------------------------------------
// The report.

/// Median, 90th percentile and maximum of a set of durations, in ms. The
/// percentiles are nearest-rank: each is one of the samples.
#[derive(Clone, Copy)]
struct Summary {
    n: usize,
    median: f64,
    p90: f64,
    max: f64,
}

impl Summary {
    fn of(samples: impl IntoIterator<Item = Duration>) -> Summary {
        let mut ms: Vec<f64> = samples.into_iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let index = (p * ms.len() as f64).ceil() as usize;
            ms.get(index.saturating_sub(1)).copied().unwrap_or(f64::NAN)
        };
        Summary {
            n: ms.len(),
            median: rank(0.5),
            p90: rank(0.9),
            max: ms.last().copied().unwrap_or(f64::NAN),
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "n": self.n,
            "median_ms": self.median,
            "p90_ms": self.p90,
            "max_ms": self.max,
        })
    }
}

/// The targets: a new build deciding within 100 ms of its upload,
/// a rollback within 10 ms.
const ACTIVATION_TARGET_MS: f64 = 100.0;
const ROLLBACK_TARGET_MS: f64 = 10.0;

struct Report {
    rounds: usize,
    build_bytes: usize,
    fixtures: usize,
    over_grpc: OverGrpc,
    in_process: InProcess,
}

/// One line of the table: its key in the JSON, its label, its figures.
struct Row {
    key: &'static str,
    label: &'static str,
    summary: Summary,
}

fn row(key: &'static str, label: &'static str, samples: &[Duration]) -> Row {
    Row {
        key,
        label,
        summary: Summary::of(samples.iter().copied()),
    }
}

fn first_decisions(observed: &[Observed]) -> Vec<Duration> {
    observed.iter().map(|o| o.first_decision).collect()
}

fn responses(observed: &[Observed]) -> Vec<Duration> {
    observed.iter().map(|o| o.acknowledged).collect()
}

impl Report {
    /// The table's sections, each with its heading.
    fn sections(&self) -> [(&'static str, Vec<Row>); 2] {
        let grpc = &self.over_grpc;
        let local = &self.in_process;
        let over_grpc = vec![
            row(
                "evaluate_baseline",
                "Evaluate round trip, nothing changing",
                &grpc.baseline,
            ),
            row(
                "activation",
                "activation: UploadRule, new build",
                &first_decisions(&grpc.activation),
            ),
            row(
                "activation_response",
                "  its response",
                &responses(&grpc.activation),
            ),
            row(
                "activation_response_no_traffic",
                "  its response, no Evaluate traffic",
                &grpc.activation_quiet,
            ),
            row(
                "reactivation",
                "re-activation: UploadRule, known build",
                &first_decisions(&grpc.reactivation),
            ),
            row(
                "reactivation_response",
                "  its response",
                &responses(&grpc.reactivation),
            ),
            row(
                "rollback",
                "rollback: Rollback",
                &first_decisions(&grpc.rollback),
            ),
            row(
                "rollback_response",
                "  its response",
                &responses(&grpc.rollback),
            ),
        ];
        let in_process = vec![
            row(
                "registry_upload_new",
                "Registry::upload, new build",
                &local.upload_new,
            ),
            row(
                "admission",
                "  admission, timed apart: the three below",
                &local.admission,
            ),
            row(
                "admission_signature",
                "    signature check",
                &local.signature,
            ),
            row(
                "admission_compile",
                "    compile and first instance",
                &local.compile,
            ),
            row(
                "admission_fixtures",
                "    fixtures, parsed and run",
                &local.fixtures,
            ),
            row(
                "registry_upload_known",
                "Registry::upload, known build",
                &local.upload_known,
            ),
            row(
                "registry_roll_back",
                "Registry::roll_back (nothing to admit)",
                &local.roll_back,
            ),
        ];
        [
            (
                "over gRPC, from sending the change to the first decision naming its build",
                over_grpc,
            ),
            ("in process, the registry's calls alone", in_process),
        ]
    }

    /// Each target and the changes it is judged on: the slowest of them,
    /// not a typical one.
    fn targets(&self) -> [(&'static str, f64, Summary); 2] {
        let grpc = &self.over_grpc;
        [
            (
                "activation",
                ACTIVATION_TARGET_MS,
                Summary::of(first_decisions(&grpc.activation)),
            ),
            (
                "rollback",
                ROLLBACK_TARGET_MS,
                Summary::of(first_decisions(&grpc.rollback)),
            ),
        ]
    }

    fn print(&self) {
        println!(
            "Rule lifecycle latency: `{RULE}` ({} KB build, {} fixtures run on admission), \
             {} changes of each kind",
            self.build_bytes / 1024,
            self.fixtures,
            self.rounds
        );
        println!(
            "engine in this process on loopback, client on its own runtime, {} cores",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        println!();
        println!(
            "{:<48} {:>9} {:>9} {:>9} {:>6}",
            "ms", "median", "p90", "max", "n"
        );
        for (heading, rows) in self.sections() {
            println!("{heading}");
            for Row { label, summary, .. } in rows {
                println!(
                    "{label:<48} {:>9.3} {:>9.3} {:>9.3} {:>6}",
                    summary.median, summary.p90, summary.max, summary.n
                );
            }
        }
        println!();
        for (name, target, s) in self.targets() {
            let verdict = if s.max < target { "met" } else { "missed" };
            println!(
                "target: {name} under {target} ms: {verdict} (slowest {:.2} ms, median {:.2} ms)",
                s.max, s.median
            );
        }
    }

    fn json(&self) -> serde_json::Value {
        let latency: serde_json::Map<String, serde_json::Value> = self
            .sections()
            .into_iter()
            .flat_map(|(_, rows)| rows)
            .map(|row| (row.key.to_string(), row.summary.json()))
            .collect();
        let targets: serde_json::Map<String, serde_json::Value> = self
            .targets()
            .into_iter()
            .map(|(name, target, s)| {
                let judged = serde_json::json!({
                    "target_ms": target,
                    "max_ms": s.max,
                    "met": s.max < target,
                });
                (name.to_string(), judged)
            })
            .collect();
        serde_json::json!({
            "rule": RULE,
            "rounds": self.rounds,
            "build_bytes": self.build_bytes,
            "fixtures": self.fixtures,
            "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "latency_ms": latency,
            "targets": targets,
        })
    }
}
