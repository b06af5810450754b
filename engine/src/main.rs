//! The `enforcer` command line: serve the gRPC engine, run the example
//! rules on demo traffic, or check a rule file.

mod backtest_command;
mod bank_command;
mod plugin_command;
mod report_command;
mod shadow_command;

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use enforcer::access::DataPlaneAccess;
use enforcer::access::tls::TlsSettings;
use enforcer::banks::HashBanks;
use enforcer::banks::file::load_banks;
use enforcer::config::{ServeConfig, StorageMode};
use enforcer::decision::LabelChange;
use enforcer::decision_log::DecisionLog;
use enforcer::durable::{Checkpointer, Checkpointing, DataDir, RecoveredLogs};
use enforcer::event::{Entity, Event};
use enforcer::examples::{EXAMPLE_POLICY, example_sources, load_example_rules};
use enforcer::jetstream::JetStreamPublisher;
use enforcer::metrics::{Metrics, serve_metrics};
use enforcer::overturn::OverturnLog;
use enforcer::pipeline::{Evaluation, Pipeline, PipelineOptions};
use enforcer::policy::{FailureMode, Policy};
use enforcer::registry::admission::now_ms;
use enforcer::registry::watch_dir::{self, DirWatcher};
use enforcer::registry::{Registry, RegistrySettings};
use enforcer::runtime::{Runtime, RuntimeConfig};
use enforcer::server::ServerOptions;
use enforcer::server::admin::{AdminToken, serve_control_plane};
use enforcer::state::redis::OnUnavailable;
use enforcer::state::{FixedState, RedisState, StateView};
use enforcer::telemetry::{self, LogFormat, TracingConfig, init_logging};
use enforcer::verdict::{RuleOutcome, Severity};
use std::time::{Duration, Instant};

/// The pipeline allocates a few small objects per event (the decision, its
/// rule reports, the idempotency record); mimalloc serves them several times
/// faster than the system allocator (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "enforcer",
    version,
    about = "Sandboxed wasm rules over account and group behaviour"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines are written to stderr: `text`, or `json` (one object
    /// per line, with the event and decision ids of the evaluation it was
    /// logged in). `RUST_LOG` sets the levels.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "ENFORCER_LOG_FORMAT"
    )]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gRPC engine (data plane, health, reflection). With no
    /// configuration it runs the built-in example rules under the example
    /// policy on 127.0.0.1:50051.
    Serve(ServeArgs),
    /// Run the built-in example rules under the example policy on a short
    /// script of platform traffic, and show each decision.
    Demo {
        /// Print each decision as a JSON line instead of a table.
        #[arg(long)]
        json: bool,
        /// Decide under this policy (TOML) instead of the example policy,
        /// to see what a policy change does to the same traffic.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Sign rules, and change the rules of a running engine through its
    /// control plane.
    Plugin {
        #[command(subcommand)]
        command: plugin_command::PluginCommand,
    },
    /// Compare what the shadow rules and candidate builds of a running
    /// engine would have decided with what was decided.
    Shadow {
        #[command(subcommand)]
        command: shadow_command::ShadowCommand,
    },
    /// Change the hash banks of a running engine through its control
    /// plane: list, replace from a file, add, remove, delete.
    Bank {
        #[command(subcommand)]
        command: bank_command::BankCommand,
    },
    /// Export the clearing-house report records of a running engine's
    /// decisions as JSON lines.
    Reports(report_command::ReportsArgs),
    /// Replay a labelled history through a rule set and policy (and a
    /// baseline beside it) on a fresh state, and report precision, recall,
    /// the precision/recall curve, score distributions, each rule's fires
    /// and where the two differ, as JSON and as an HTML page.
    Backtest(backtest_command::BacktestArgs),
    /// Load a rule from a wasm file, print its manifest, and optionally run
    /// it on events read as JSON lines (one `Event` per line).
    Check {
        /// The rule's wasm (a core module built for wasm32-unknown-unknown).
        wasm: PathBuf,
        /// JSON-lines events to evaluate; `-` reads standard input.
        #[arg(long)]
        events: Option<PathBuf>,
    },
}

/// `enforcer serve`'s flags; each overrides the configuration file, and
/// each has an environment variable that does the same.
#[derive(clap::Args)]
struct ServeArgs {
    /// Configuration file (TOML); see `engine/enforcer.example.toml`.
    #[arg(long, env = "ENFORCER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address and port to listen on (default 127.0.0.1:50051; port 0
    /// picks a free port).
    #[arg(long, env = "ENFORCER_LISTEN", value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Directory of rule builds (*.wasm) to load instead of the built-in
    /// example rules.
    #[arg(long, env = "ENFORCER_PLUGIN_DIR", value_name = "DIR")]
    plugin_dir: Option<PathBuf>,
    /// Policy file (TOML) instead of the example policy.
    #[arg(long, env = "ENFORCER_POLICY", value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Evaluation threads (default: one per core; four per core with state
    /// in Redis).
    #[arg(long, env = "ENFORCER_WORKERS", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    workers: Option<u32>,
    /// Largest request message accepted, in bytes.
    #[arg(long, env = "ENFORCER_MAX_MESSAGE_BYTES", value_name = "BYTES",
          value_parser = clap::value_parser!(u32).range(1024..=(256 << 20)))]
    max_message_bytes: Option<u32>,
    /// Decisions kept in memory for lookups and resuming watchers.
    #[arg(long, env = "ENFORCER_DECISION_LOG_CAPACITY", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    decision_log_capacity: Option<u64>,
    /// Address and port of the control plane (default 127.0.0.1:50052).
    #[arg(long, env = "ENFORCER_ADMIN_LISTEN", value_name = "ADDR")]
    admin_listen: Option<std::net::SocketAddr>,
    /// Serve Prometheus metrics at `http://ADDR/metrics` (what each rule
    /// costs and does, decisions, calls, queues, state).
    #[arg(long, env = "ENFORCER_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// A bearer token for the control plane, recorded in the audit trail
    /// as `operator`. The control plane is served only with a token.
    #[arg(
        long,
        env = "ENFORCER_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// A public key (`ed25519:<hex>`) whose rule signatures are accepted;
    /// repeat for several.
    #[arg(
        long = "trusted-key",
        env = "ENFORCER_TRUSTED_KEYS",
        value_name = "KEY",
        value_delimiter = ','
    )]
    trusted_keys: Vec<String>,
    /// Development mode: admit unsigned rule builds.
    #[arg(long)]
    allow_unsigned_rules: bool,
    /// Keep the rules, their standings, the policy and the audit trail
    /// here, so that control-plane changes survive a restart.
    #[arg(long, env = "ENFORCER_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Keep decisions and state checkpoints here (default
    /// `enforcer-data`).
    #[arg(long, env = "ENFORCER_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Keep decisions and state in memory only: a restart begins empty.
    #[arg(long, conflicts_with = "data_dir")]
    in_memory: bool,
    /// Publish decisions to the NATS JetStream server at this address
    /// (`nats://host:port`); the rest of `[nats]` as configured, or its
    /// defaults.
    #[arg(long, env = "ENFORCER_NATS_URL", value_name = "URL")]
    nats_url: Option<String>,
    /// Keep counters and labels in the Redis server at this address
    /// (`redis://host:port`), shared with every engine node that uses it;
    /// the rest of `[redis]` as configured, or its defaults.
    #[arg(long, env = "ENFORCER_REDIS_URL", value_name = "URL")]
    redis_url: Option<String>,
    /// Export spans over OTLP/gRPC to the collector at this address
    /// (`http://host:4317`); the rest of `[tracing]` as configured, or its
    /// defaults (1% of evaluations traced).
    #[arg(long, env = "ENFORCER_OTLP_ENDPOINT", value_name = "URL")]
    otlp_endpoint: Option<String>,
}

impl ServeArgs {
    /// The configuration: the file's (or the defaults), overridden by flags
    /// and environment variables.
    fn config(&self) -> anyhow::Result<ServeConfig> {
        let mut config = match &self.config {
            Some(path) => ServeConfig::load(path)?,
            None => ServeConfig::default(),
        };
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(dir) = &self.plugin_dir {
            config.plugin_dir = Some(dir.clone());
        }
        if let Some(policy) = &self.policy {
            config.policy = Some(policy.clone());
        }
        if let Some(workers) = self.workers {
            config.limits.workers = Some(workers as usize);
        }
        if let Some(bytes) = self.max_message_bytes {
            config.limits.max_message_bytes = bytes as usize;
        }
        if let Some(capacity) = self.decision_log_capacity {
            config.limits.decision_log_capacity = capacity as usize;
        }
        if let Some(listen) = self.admin_listen {
            config.admin.listen = listen;
        }
        if let Some(listen) = self.metrics_listen {
            config.metrics.listen = Some(listen);
        }
        if let Some(token) = &self.admin_token {
            config.admin.tokens.push(AdminToken {
                name: "operator".into(),
                token: token.clone(),
            });
        }
        config
            .rules
            .trusted_keys
            .extend(self.trusted_keys.iter().cloned());
        config.rules.allow_unsigned |= self.allow_unsigned_rules;
        if let Some(dir) = &self.state_dir {
            config.rules.state_dir = Some(dir.clone());
        }
        if let Some(dir) = &self.data_dir {
            config.storage.mode = StorageMode::Embedded;
            config.storage.data_dir = dir.clone();
        }
        if self.in_memory {
            config.storage.mode = StorageMode::Memory;
        }
        if let Some(url) = &self.nats_url {
            config.nats.get_or_insert_with(Default::default).url = url.clone();
        }
        if let Some(url) = &self.redis_url {
            config.redis.get_or_insert_with(Default::default).urls = vec![url.clone()];
        }
        if let Some(url) = &self.otlp_endpoint {
            config
                .tracing
                .get_or_insert_with(|| TracingConfig::to(url.clone()))
                .otlp_endpoint = url.clone();
        }
        config.check("settings")?;
        Ok(config)
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Serve(args) = &cli.command {
        let config = args.config()?;
        // The OTLP exporter runs on the server's runtime: made first.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        // A server says what it does (listeners, refusals, Redis coming
        // and going); a one-shot command only what went wrong.
        let telemetry = {
            let _in_runtime = runtime.enter();
            telemetry::init(
                cli.log_format,
                "warn,enforcer=info",
                config.tracing.as_ref(),
            )?
        };
        let served = serve(config, &runtime);
        telemetry.shutdown();
        return served;
    }
    init_logging(cli.log_format, "warn");
    match cli.command {
        Command::Serve(_) => unreachable!("served above"),
        Command::Demo { json, policy } => demo(json, policy.as_deref()),
        Command::Check { wasm, events } => check(&wasm, events.as_deref()),
        Command::Plugin { command } => plugin_command::run(command),
        Command::Shadow { command } => shadow_command::run(command),
        Command::Bank { command } => bank_command::run(command),
        Command::Reports(args) => report_command::run(args),
        Command::Backtest(args) => backtest_command::run(args),
    }
}

/// Run the gRPC engine until Ctrl-C or SIGTERM, then shut down gracefully.
fn serve(config: ServeConfig, io: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    // Certificates are read before anything else is started: a bad file
    // stops the engine at once, naming it.
    let tls = config.tls.as_ref().map(TlsSettings::load).transpose()?;
    let runtime = Runtime::with_config(RuntimeConfig {
        cache_dir: config.rules.compile_cache_dir.clone(),
        fast_compile: config.rules.fast_compile,
        ..RuntimeConfig::default()
    })?;
    let (sources, banks) = match &config.plugin_dir {
        Some(dir) => (
            watch_dir::sources(dir)
                .with_context(|| format!("plugin_dir {}: cannot read it", dir.display()))?,
            HashBanks::new(),
        ),
        None => (example_sources(), enforcer::demo::banks()),
    };
    let banks = if config.banks.is_empty() {
        banks
    } else {
        load_banks(&config.banks, now_ms()).map_err(|e| anyhow::anyhow!("banks: {e}"))?
    };
    for bank in banks.banks() {
        tracing::info!(
            bank = bank.name(),
            kind = bank.kind().name(),
            entries = bank.len(),
            "hash bank loaded"
        );
    }
    if sources.is_empty() {
        anyhow::bail!("the plugin directory holds no rule builds (*.wasm)");
    }
    let policy_text = match &config.policy {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("policy {}: cannot read it", path.display()))?,
        None => EXAMPLE_POLICY.to_string(),
    };
    let redis = match config.redis_settings() {
        Some(settings) => {
            let description = format!(
                "state: Redis{} at {} (prefix {:?}; when unreachable, {})",
                if settings.cluster { " Cluster" } else { "" },
                settings.urls.join(", "),
                settings.prefix,
                match settings.on_unavailable {
                    OnUnavailable::Closed => "events are refused with UNAVAILABLE",
                    OnUnavailable::Open => "events are decided without it",
                },
            );
            let state = RedisState::connect(settings).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{description}");
            Some(Arc::new(state))
        }
        None => None,
    };
    let options = PipelineOptions {
        banks,
        redis,
        ..config.pipeline_options()
    };
    let settings = RegistrySettings {
        signatures: config.rules.signature_policy()?,
        audit_capacity: config.admin.audit_capacity,
        state_dir: config.rules.state_dir.clone(),
    };
    let registry = Registry::start(runtime, settings, sources, policy_text, options)?;
    let registry = Arc::new(registry);
    let pipeline = registry.pipeline().clone();
    let capacity = config.limits.decision_log_capacity;
    let (log, overturns, checkpointer) = match config.storage.mode {
        StorageMode::Memory => {
            println!("storage: in memory only; a restart begins empty");
            let overturns = Arc::new(OverturnLog::new(capacity));
            (Arc::new(DecisionLog::new(capacity)), overturns, None)
        }
        StorageMode::Embedded => {
            let dir = &config.storage.data_dir;
            let data = DataDir::open(dir, config.storage.cache_bytes())
                .with_context(|| format!("data_dir {}", dir.display()))?;
            let RecoveredLogs {
                decisions,
                overturns,
                recovered,
            } = data
                .recover(&pipeline, capacity)
                .with_context(|| format!("recovering from {}", dir.display()))?;
            println!(
                "storage: {} (decisions up to {}; checkpoint {}; {} decisions and {} overturns replayed in {} ms)",
                dir.display(),
                recovered.last_sequence,
                recovered
                    .checkpoint
                    .map_or_else(|| "none".to_string(), |c| format!("at {c}")),
                recovered.replayed,
                recovered.overturns_replayed,
                recovered.elapsed.as_millis(),
            );
            let (log, overturns) = (Arc::new(decisions), Arc::new(overturns));
            let checkpointing = Checkpointing {
                dir: dir.clone(),
                store: data.store.clone(),
                pipeline: pipeline.clone(),
                log: log.clone(),
                overturns: overturns.clone(),
                retention: config.storage.retention(),
            };
            let every = Duration::from_secs(config.storage.checkpoint_seconds);
            (
                log,
                overturns,
                Some(Checkpointer::start(checkpointing, every)),
            )
        }
    };
    let _watcher = match &config.plugin_dir {
        Some(dir) if config.rules.watch_plugin_dir => Some(DirWatcher::start(
            registry.clone(),
            dir.clone(),
            Duration::from_millis(config.rules.watch_interval_ms),
        )),
        _ => None,
    };

    let metrics = config.metrics.listen.map(|_| Arc::new(Metrics::new()));
    let server_options = ServerOptions {
        tls: tls.clone(),
        metrics: metrics.clone(),
        ..config.server_options()
    };
    let access = server_options.access.clone();
    let transport = match &tls {
        Some(tls) if tls.is_mutual() => "mutual TLS",
        Some(_) => "TLS",
        None => "plaintext",
    };
    io.block_on(async move {
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            print_setup(&pipeline);
            println!(
                "enforcer listening on {} (enforcement.v1.Enforcement, grpc.health.v1.Health, reflection v1 and v1alpha) in {transport}; data plane {}; {} evaluation threads",
                listener.local_addr()?,
                match config.access.data_plane {
                    DataPlaneAccess::Open => "open to any caller",
                    DataPlaneAccess::Authenticated => "for known clients with the method's role",
                },
                server_options.workers,
            );
            let (stop_admin, admin_stopping) = tokio::sync::oneshot::channel::<()>();
            let admin = if !access.has_control_plane_clients() {
                println!("control plane off: no client may use it (--admin-token, [admin] tokens, or [access] clients with `author_rules` or `administer`)");
                None
            } else {
                let admin_listener = tokio::net::TcpListener::bind(config.admin.listen)
                    .await
                    .with_context(|| format!("cannot listen on {}", config.admin.listen))?;
                println!(
                    "control plane (enforcement.v1.Admin) on {}, in {transport}",
                    admin_listener.local_addr()?,
                );
                Some(tokio::spawn(serve_control_plane(
                    admin_listener,
                    registry.clone(),
                    access,
                    tls,
                    async move {
                        let _ = admin_stopping.await;
                    },
                )))
            };
            let (stop_metrics, metrics_stopping) = tokio::sync::oneshot::channel::<()>();
            let metrics_endpoint = match (config.metrics.listen, metrics) {
                (Some(address), Some(metrics)) => {
                    let metrics_listener = tokio::net::TcpListener::bind(address)
                        .await
                        .with_context(|| format!("cannot listen on {address}"))?;
                    println!(
                        "metrics (Prometheus) on http://{}/metrics",
                        metrics_listener.local_addr()?
                    );
                    Some(tokio::spawn(serve_metrics(
                        metrics_listener,
                        metrics,
                        config.metrics.token.clone(),
                        async move {
                            let _ = metrics_stopping.await;
                        },
                    )))
                }
                _ => None,
            };
            let (stop_publishing, publishing_stopping) = tokio::sync::watch::channel(false);
            let publisher = config.nats.clone().map(|nats| {
                println!(
                    "publishing decisions to JetStream stream {} at {} ({})",
                    nats.stream,
                    nats.url,
                    nats.stream_subjects()
                );
                JetStreamPublisher::start(log.clone(), nats, publishing_stopping)
            });
            enforcer::server::serve_with_overturns(
                listener,
                pipeline,
                log,
                overturns,
                server_options,
                shutdown_signal(),
            )
            .await?;
            // Every decision is in the log now: publish what is left.
            let _ = stop_publishing.send(true);
            if let Some(publisher) = publisher {
                publisher.join().await;
            }
            let _ = stop_admin.send(());
            if let Some(admin) = admin {
                admin.await??;
            }
            // Scraped until the end: the last calls and decisions show.
            let _ = stop_metrics.send(());
            if let Some(endpoint) = metrics_endpoint {
                endpoint.await??;
            }
            if let Some(checkpointer) = checkpointer {
                // A last checkpoint: the next start replays nothing.
                checkpointer.stop();
            }
            println!("enforcer stopped");
            Ok(())
        })
}

/// Completes on Ctrl-C or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

/// Run the example rules under the example policy on the demo's scripted
/// traffic, and show each decision as it is made.
fn demo(json: bool, policy: Option<&std::path::Path>) -> anyhow::Result<()> {
    let runtime = Runtime::new()?;
    let rules = load_example_rules(&runtime)
        .map_err(|(name, e)| anyhow::anyhow!("loading example rule {name}: {e}"))?;
    let policy = match policy {
        Some(path) => Policy::load(path).with_context(|| format!("policy {}", path.display()))?,
        None => Policy::parse(EXAMPLE_POLICY).context("the example policy")?,
    };
    let options = PipelineOptions {
        banks: enforcer::demo::banks(),
        ..PipelineOptions::default()
    };
    let pipeline = Pipeline::new(rules, policy, options)?;
    if !json {
        print_setup(&pipeline);
    }

    let traffic = enforcer::demo::traffic();
    let started = Instant::now();
    let mut printer = DecisionPrinter::default();
    for event in &traffic {
        let evaluation = pipeline.evaluate(event.clone())?;
        if json {
            println!(
                "{}",
                serde_json::json!({ "duplicate": evaluation.duplicate, "decision": evaluation.decision })
            );
        } else {
            printer.print(&evaluation);
        }
    }
    let elapsed = started.elapsed();
    if !json {
        printer.finish();
        print_summary(&pipeline, &traffic, elapsed);
    }
    Ok(())
}

fn print_setup(pipeline: &Pipeline) {
    let snapshot = pipeline.snapshot();
    let policy = snapshot.policy();
    println!(
        "{} example rules under policy `{}` ({:?}: review {:.2}, limit {:.2}, block {:.2})",
        snapshot.rules().active_rules().count(),
        policy.version,
        policy.strategy,
        policy.thresholds.review,
        policy.thresholds.limit,
        policy.thresholds.block,
    );
    for rule in snapshot.rules().active_rules() {
        let manifest = rule.manifest();
        let part = policy.for_rule(rule.name());
        println!(
            "  {:<18} {:<6} sha256 {}…  {:?}{}{}  on {}",
            manifest.name,
            manifest.version,
            &rule.sha256()[..12],
            part.mode,
            if part.veto { ", veto" } else { "" },
            if part.failure == FailureMode::Closed {
                ", fails closed"
            } else {
                ""
            },
            manifest.event_kinds.join(", ")
        );
    }
    println!();
}

/// Prints decisions, folding runs of alike ones (same kind and outcome, and
/// the same actor or the same target) into one line.
#[derive(Default)]
struct DecisionPrinter {
    last: Option<Alike>,
    folded: usize,
}

/// What makes two decisions in a row alike enough to fold.
#[derive(PartialEq)]
struct Alike {
    kind: String,
    severity: Severity,
    fired: Vec<String>,
    actor: Entity,
    target: Option<Entity>,
}

impl Alike {
    fn folds_into(&self, previous: &Alike) -> bool {
        self.kind == previous.kind
            && self.severity == previous.severity
            && self.fired == previous.fired
            && (self.actor == previous.actor
                || (self.target.is_some() && self.target == previous.target))
    }
}

impl DecisionPrinter {
    fn print(&mut self, evaluation: &Evaluation) {
        let decision = &evaluation.decision;
        let fired: Vec<String> = decision
            .fired()
            .map(|r| format!("{}:{:?}", r.rule, r.severity))
            .collect();
        let alike = Alike {
            kind: decision.event.kind.clone(),
            severity: decision.outcome.severity,
            fired,
            actor: decision.event.actor.clone(),
            target: decision.event.target.clone(),
        };
        if !evaluation.duplicate
            && self
                .last
                .as_ref()
                .is_some_and(|last| alike.folds_into(last))
        {
            self.folded += 1;
            return;
        }
        self.finish();
        self.last = Some(alike);

        let target = decision
            .event
            .target
            .as_ref()
            .map(|t| format!(" → {t}"))
            .unwrap_or_default();
        let actions: Vec<String> = decision
            .outcome
            .actions
            .iter()
            .map(|a| format!("{:?}({})", a.action, a.entity))
            .collect();
        println!(
            "{} {:<24} {}{}",
            decision.event.id, decision.event.kind, decision.event.actor, target
        );
        println!(
            "    => {:?} (score {:.2}){}{}",
            decision.outcome.severity,
            decision.outcome.score,
            if actions.is_empty() {
                String::new()
            } else {
                format!("  {}", actions.join(" "))
            },
            if evaluation.duplicate {
                "  [duplicate id: first decision returned, nothing recounted]"
            } else {
                ""
            }
        );
        for report in decision.fired() {
            for reason in &report.reasons {
                println!(
                    "       {} ({:?}, {:.2}; sha256 {}…): {}",
                    report.rule,
                    report.severity,
                    report.score,
                    &report.sha256[..8],
                    reason.explanation
                );
            }
        }
        for report in decision.rules.iter().filter(|r| r.error.is_some()) {
            println!(
                "       {} failed: {}",
                report.rule,
                report.error.as_ref().expect("filtered")
            );
        }
        for change in &decision.label_changes {
            if let LabelChange::Set { entity, label, .. } = change {
                println!("       label {label} on {entity}");
            }
        }
    }

    fn finish(&mut self) {
        if self.folded > 0 {
            println!("    … and {} more like it", self.folded);
            self.folded = 0;
        }
    }
}

fn print_summary(pipeline: &Pipeline, traffic: &[Event], elapsed: std::time::Duration) {
    let size = pipeline.live_state().size();
    println!();
    println!(
        "{} events in {:.1} ms; state: {} entities, {} counter series, {} labels; {} event ids remembered",
        traffic.len(),
        elapsed.as_secs_f64() * 1e3,
        size.entities,
        size.series,
        size.labels,
        pipeline.remembered_events(),
    );
}

fn check(wasm: &std::path::Path, events: Option<&std::path::Path>) -> anyhow::Result<()> {
    let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let runtime = Runtime::new()?;
    let rule = runtime
        .load(&bytes)
        .with_context(|| format!("loading {}", wasm.display()))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "manifest": rule.manifest(),
            "sha256": rule.sha256(),
            "wasm_bytes": rule.wasm_bytes(),
        }))?
    );
    let Some(events) = events else { return Ok(()) };
    let reader: Box<dyn BufRead> = if events.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(events).with_context(|| format!("opening {}", events.display()))?,
        ))
    };
    let state: Arc<dyn StateView> = Arc::new(FixedState::new());
    for (number, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let event: Event = serde_json::from_str(&line)
            .with_context(|| format!("line {} is not an event", number + 1))?;
        let event = Arc::new(event);
        if !rule.wants(&event.kind) {
            continue;
        }
        let outcome: RuleOutcome = rule.evaluate(&event, &state);
        println!(
            "{}",
            serde_json::json!({ "event": event.id, "outcome": outcome })
        );
    }
    Ok(())
}
