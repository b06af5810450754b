//! `enforcer serve`'s configuration: a TOML file, every key optional, each
//! mistake refused with its line (`config line 3: ...`). Command-line flags
//! and environment variables override the file; with no file at all the
//! engine runs the built-in example rules under the example policy.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::access::tls::TlsSettings;
use crate::access::{AccessConfig, AccessControl, weak_token};
use crate::banks::file::BankSpec;
use crate::jetstream::NatsConfig;
use crate::media::ImageLimits;
use crate::pipeline::{DEFAULT_MAX_FUTURE_SKEW_MS, PipelineOptions};
use crate::registry::SignaturePolicy;
use crate::server::ServerOptions;
use crate::server::admin::AdminToken;
use crate::server::rate_limit::{Rate, RateLimits};
use crate::signing::{SigningError, TrustedKeys};
use crate::state::RedisSettings;
use crate::telemetry::TracingConfig;

/// The address the engine listens on unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

/// Bounds on values that would make no sense or exhaust the machine.
const MESSAGE_BYTES_RANGE: std::ops::RangeInclusive<usize> = 1024..=(256 << 20);

/// The whole configuration, as read from the file (all keys optional).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Address and port to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// A directory of rule builds (`*.wasm`), all loaded at start. Unset:
    /// the built-in example rules (with the demo hash bank).
    #[serde(default)]
    pub plugin_dir: Option<PathBuf>,
    /// The policy file (TOML). Unset: the built-in example policy.
    #[serde(default)]
    pub policy: Option<PathBuf>,
    /// Server limits.
    #[serde(default)]
    pub limits: Limits,
    /// Behaviour state and intake.
    #[serde(default)]
    pub state: StateConfig,
    /// The control plane.
    #[serde(default)]
    pub admin: AdminConfig,
    /// Which rule builds are admitted, and how they are deployed.
    #[serde(default)]
    pub rules: RulesConfig,
    /// Hash banks loaded from files at start (`[[banks]]`). None, and no
    /// `plugin_dir`: the demo bank of the example rules.
    #[serde(default)]
    pub banks: Vec<BankSpec>,
    /// Where decisions and state are kept.
    #[serde(default)]
    pub storage: StorageConfig,
    /// `[nats]`: publish decisions to NATS JetStream. Unset: no publishing.
    #[serde(default)]
    pub nats: Option<NatsConfig>,
    /// `[redis]`: keep counters and labels in Redis, shared with every
    /// engine node that uses the same servers and prefix. Unset: in memory.
    #[serde(default)]
    pub redis: Option<RedisSettings>,
    /// `[tls]`: serve both gRPC listeners over TLS, or mutual TLS with a
    /// client CA. Unset: plaintext.
    #[serde(default)]
    pub tls: Option<TlsSettings>,
    /// `[access]`: the known clients, their roles, and whether the data
    /// plane asks who is calling.
    #[serde(default)]
    pub access: AccessConfig,
    /// `[metrics]`: the Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// `[tracing]`: export spans over OTLP. Unset: logs only.
    #[serde(default)]
    pub tracing: Option<TracingConfig>,
}

/// `[metrics]`: Prometheus metrics (what each rule costs and does, the
/// decisions, calls, queues and state), on a listener of their own.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address and port that answer `GET /metrics`. Unset: no endpoint.
    pub listen: Option<SocketAddr>,
    /// A bearer token every scrape must send (`Authorization: Bearer
    /// ...`), at least `MIN_TOKEN_CHARS` long. Unset: scrapes are open.
    pub token: Option<String>,
}

/// Where decisions and state are kept.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StorageMode {
    /// In an embedded database under `data_dir`: decisions survive a
    /// crash, state comes back at restart.
    Embedded,
    /// In memory only: a restart begins empty. For tests and demos.
    Memory,
}

/// `[storage]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Embedded (the default) or memory.
    pub mode: StorageMode,
    /// The data directory of the embedded store: `enforcer-data` in the
    /// configuration file's directory, or where the engine runs without
    /// one.
    pub data_dir: PathBuf,
    /// Most decisions the store keeps; the oldest go first.
    pub keep_decisions: u64,
    /// Hours of event time the store keeps decisions for, before the
    /// newest; 0: no age limit.
    pub keep_hours: u64,
    /// Seconds between checkpoints of the state (a restart replays the
    /// decisions logged since the last one).
    pub checkpoint_seconds: u64,
    /// MiB of the store's pages cached in memory; the operating system's
    /// page cache serves the rest.
    pub cache_mb: usize,
}

/// The data directory unless told otherwise, relative to where the engine
/// runs.
pub const DEFAULT_DATA_DIR: &str = "enforcer-data";

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            mode: StorageMode::Embedded,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            keep_decisions: 100_000_000,
            keep_hours: 0,
            checkpoint_seconds: 60,
            cache_mb: 64,
        }
    }
}

impl StorageConfig {
    /// The store's cache, in bytes.
    pub fn cache_bytes(&self) -> usize {
        self.cache_mb.saturating_mul(1 << 20)
    }

    /// What the store keeps.
    pub fn retention(&self) -> crate::durable::Retention {
        crate::durable::Retention {
            max_decisions: self.keep_decisions,
            max_age_ms: (self.keep_hours > 0)
                .then(|| (self.keep_hours as i64).saturating_mul(3_600_000)),
        }
    }
}

/// `[admin]`: the control plane, on a listener of its own.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address and port of the control-plane listener.
    pub listen: SocketAddr,
    /// The bearer tokens accepted, each with the name the audit trail
    /// records for its holder. With none, the control plane is not served.
    pub tokens: Vec<AdminToken>,
    /// Control-plane changes kept in the audit trail.
    pub audit_capacity: usize,
}

/// The shortest bearer token accepted: a guessable token is no control.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The control plane's address unless told otherwise.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:50052";

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: DEFAULT_ADMIN_LISTEN
                .parse()
                .expect("a valid default address"),
            tokens: Vec::new(),
            audit_capacity: crate::registry::DEFAULT_AUDIT_CAPACITY,
        }
    }
}

/// `[rules]`: admitting rule builds.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Public keys (`ed25519:<hex>`) whose signatures are accepted.
    pub trusted_keys: Vec<String>,
    /// Development mode: admit unsigned builds from the plugin directory
    /// and uploads. Never in production.
    pub allow_unsigned: bool,
    /// Poll `plugin_dir` and deploy what changes in it.
    pub watch_plugin_dir: bool,
    /// How often, in milliseconds.
    pub watch_interval_ms: u64,
    /// Keep compiled rules here, by content hash and engine version, so a
    /// restart compiles nothing it compiled before. Unset: no disk cache.
    /// As trusted as the binary: whoever can write here can run code.
    pub compile_cache_dir: Option<PathBuf>,
    /// Keep the registry here (every build by sha256, where each stands,
    /// the policy in force, the audit trail), so that control-plane
    /// changes survive a restart. Unset: in memory only; a restart begins
    /// again from the plugin directory (or the built-in rules) and policy.
    pub state_dir: Option<PathBuf>,
    /// Compile rules with the single-pass register allocator: a third
    /// faster to activate, 13 to 22% slower per call.
    pub fast_compile: bool,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            trusted_keys: Vec::new(),
            allow_unsigned: false,
            watch_plugin_dir: true,
            watch_interval_ms: 1000,
            compile_cache_dir: None,
            state_dir: None,
            fast_compile: false,
        }
    }
}

impl RulesConfig {
    /// The signature policy these settings give.
    pub fn signature_policy(&self) -> Result<SignaturePolicy, SigningError> {
        Ok(SignaturePolicy {
            trusted: TrustedKeys::parse(&self.trusted_keys)?,
            allow_unsigned: self.allow_unsigned,
        })
    }
}

/// `[limits]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request message, in bytes.
    pub max_message_bytes: usize,
    /// Most concurrent calls per connection.
    pub max_concurrent_streams: u32,
    /// Evaluation threads; unset: one per core, or four per core with
    /// state in Redis (where they spend most of their time waiting for it).
    pub workers: Option<usize>,
    /// Decisions kept in memory for `GetDecision`, `ListDecisions` and
    /// resuming watchers.
    pub decision_log_capacity: usize,
    /// Seconds calls get to finish at shutdown.
    pub shutdown_grace_seconds: u64,
    /// Most events of one `EvaluateStream` evaluated as one batch.
    pub stream_batch_events: usize,
    /// Batches of one stream evaluated at once; 1 evaluates each stream's
    /// events strictly in order.
    pub stream_batches_in_flight: usize,
    /// Largest image an event may carry, in bytes.
    pub max_image_bytes: usize,
    /// Longest side of such an image, in pixels.
    pub max_image_side: u32,
    /// Most pixels of such an image.
    pub max_image_pixels: u64,
    /// Events per second one client may send, sustained; 0: no limit.
    /// `[[access.clients]] events_per_second` sets a client's own.
    pub client_events_per_second: u32,
    /// Events a client may send at once above its rate; 0: one second's
    /// worth (at least one stream batch).
    pub client_burst_events: u32,
    /// Batches waiting for an evaluation thread beyond which `Evaluate`
    /// calls are shed with `RESOURCE_EXHAUSTED` instead of queueing.
    pub max_waiting_batches: usize,
}

impl Default for Limits {
    fn default() -> Self {
        let server = ServerOptions::default();
        Limits {
            max_message_bytes: server.max_message_bytes,
            max_concurrent_streams: server.max_concurrent_streams,
            workers: None,
            decision_log_capacity: crate::decision_log::DEFAULT_CAPACITY,
            shutdown_grace_seconds: server.shutdown_grace.as_secs(),
            stream_batch_events: server.stream_batch,
            stream_batches_in_flight: server.stream_batches_in_flight,
            max_image_bytes: server.image_limits.max_bytes,
            max_image_side: server.image_limits.max_width,
            max_image_pixels: server.image_limits.max_pixels,
            client_events_per_second: 0,
            client_burst_events: 0,
            max_waiting_batches: server.max_waiting_batches,
        }
    }
}

/// `[state]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// How late (in event time) an event may arrive and still count.
    pub lateness_seconds: u32,
    /// How long a repeated event id gets its first decision.
    pub idempotency_window_seconds: u64,
    /// Most event ids remembered for idempotency.
    pub idempotency_max_remembered: usize,
    /// How far ahead of the engine's clock an event may be dated; 0 turns
    /// the check off (for replaying traffic with odd clocks).
    pub max_future_skew_seconds: u64,
    /// Seconds between background sweeps of aged-out state.
    pub sweep_interval_seconds: u64,
    /// Minutes of event time the shadow report covers.
    pub shadow_report_minutes: u64,
    /// Entities whose decisions' conclusions are kept for accuracy
    /// against ground truth.
    pub ground_truth_entities: usize,
    /// Ground-truth labels kept about entities (and as many about events).
    pub ground_truth_labels: usize,
}

impl Default for StateConfig {
    fn default() -> Self {
        let pipeline = PipelineOptions::default();
        StateConfig {
            lateness_seconds: pipeline.lateness_seconds,
            idempotency_window_seconds: (pipeline.idempotency_retention_ms / 1000) as u64,
            idempotency_max_remembered: pipeline.idempotency_max_remembered,
            max_future_skew_seconds: (DEFAULT_MAX_FUTURE_SKEW_MS / 1000) as u64,
            sweep_interval_seconds: ServerOptions::default()
                .sweep_interval
                .map_or(2, |interval| interval.as_secs()),
            shadow_report_minutes: pipeline.shadow_report_minutes as u64,
            ground_truth_entities: pipeline.ground_truth_entities,
            ground_truth_labels: pipeline.ground_truth_labels,
        }
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: default_listen(),
            plugin_dir: None,
            policy: None,
            limits: Limits::default(),
            state: StateConfig::default(),
            admin: AdminConfig::default(),
            rules: RulesConfig::default(),
            banks: Vec::new(),
            storage: StorageConfig::default(),
            nats: None,
            redis: None,
            tls: None,
            access: AccessConfig::default(),
            metrics: MetricsConfig::default(),
            tracing: None,
        }
    }
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN.parse().expect("a valid default address")
}

/// A configuration mistake: where and what.
#[derive(Debug, thiserror::Error)]
#[error("{origin}{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct ConfigError {
    /// The file, flag or variable the value came from.
    pub origin: String,
    /// The 1-based line, for a file.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// The table and key whose value is wrong, when one is (`limits`,
    /// `workers`).
    key: Option<(&'static str, &'static str)>,
}

impl ConfigError {
    fn new(origin: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            origin: origin.into(),
            line: None,
            message: message.into(),
            key: None,
        }
    }
}

/// The line `key` is set on in `[table]`, for values that parse but are
/// refused after: its `key =` line, else the header of a `[table.key]` or
/// `[[table.key]]` it is written as.
fn line_of_key(text: &str, table: &str, key: &str) -> Option<usize> {
    let sub_table = format!("{table}.{key}");
    let mut current = "";
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if let Some(header) = line.strip_prefix('[') {
            let name = header.trim_start_matches('[');
            let name = name.split(']').next().unwrap_or_default().trim();
            if name == sub_table {
                return Some(index + 1);
            }
            current = name;
        } else if current == table
            && line
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            return Some(index + 1);
        }
    }
    None
}

impl ServeConfig {
    /// Read a configuration file. Relative paths in it are taken relative
    /// to the file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let origin = format!("config {}", path.display());
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(&origin, format!("cannot read it: {e}")))?;
        let mut config = Self::parse(&text).map_err(|mut e| {
            e.origin = origin;
            e
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let bank_files = config.banks.iter_mut().map(|b| &mut b.file);
        let tls_files = config.tls.iter_mut().flat_map(|tls| {
            [&mut tls.certificate, &mut tls.private_key]
                .into_iter()
                .chain(tls.client_ca.as_mut())
        });
        for relative in [
            &mut config.plugin_dir,
            &mut config.policy,
            &mut config.rules.compile_cache_dir,
            &mut config.rules.state_dir,
        ]
        .into_iter()
        .flatten()
        .chain(bank_files)
        .chain(tls_files)
        .chain([&mut config.storage.data_dir])
        {
            if relative.is_relative() {
                *relative = base.join(&*relative);
            }
        }
        Ok(config)
    }

    /// Parse and check configuration text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let config: ServeConfig = toml::from_str(text).map_err(|e| ConfigError {
            line: e.span().map(|span| line_of(span.start)),
            ..ConfigError::new("config", e.message().trim())
        })?;
        config.check("config").map_err(|mut e| {
            e.line = e.key.and_then(|(table, key)| line_of_key(text, table, key));
            e
        })?;
        Ok(config)
    }

    /// Check values that parse but make no sense; `origin` names where
    /// they came from in the error.
    pub fn check(&self, origin: &str) -> Result<(), ConfigError> {
        let limits = &self.limits;
        let bad = |table: &'static str, key: &'static str, message: String| ConfigError {
            key: Some((table, key)),
            ..ConfigError::new(origin, format!("{table}.{key}: {message}"))
        };
        if !MESSAGE_BYTES_RANGE.contains(&limits.max_message_bytes) {
            return Err(bad(
                "limits",
                "max_message_bytes",
                format!(
                    "{} is outside {}..={}",
                    limits.max_message_bytes,
                    MESSAGE_BYTES_RANGE.start(),
                    MESSAGE_BYTES_RANGE.end()
                ),
            ));
        }
        let at_least_one = [
            (
                "limits",
                "max_concurrent_streams",
                limits.max_concurrent_streams as usize,
            ),
            ("limits", "workers", limits.workers.unwrap_or(1)),
            (
                "limits",
                "decision_log_capacity",
                limits.decision_log_capacity,
            ),
            ("limits", "stream_batch_events", limits.stream_batch_events),
            ("limits", "max_waiting_batches", limits.max_waiting_batches),
            (
                "limits",
                "stream_batches_in_flight",
                limits.stream_batches_in_flight,
            ),
            (
                "state",
                "idempotency_max_remembered",
                self.state.idempotency_max_remembered,
            ),
            (
                "state",
                "sweep_interval_seconds",
                self.state.sweep_interval_seconds as usize,
            ),
            (
                "state",
                "shadow_report_minutes",
                self.state.shadow_report_minutes as usize,
            ),
            (
                "state",
                "ground_truth_entities",
                self.state.ground_truth_entities,
            ),
            (
                "state",
                "ground_truth_labels",
                self.state.ground_truth_labels,
            ),
            (
                "storage",
                "keep_decisions",
                self.storage.keep_decisions.min(usize::MAX as u64) as usize,
            ),
            (
                "storage",
                "checkpoint_seconds",
                self.storage.checkpoint_seconds.min(usize::MAX as u64) as usize,
            ),
        ];
        for (table, key, value) in at_least_one {
            if value == 0 {
                return Err(bad(table, key, "must be at least 1".into()));
            }
        }
        for (index, token) in self.admin.tokens.iter().enumerate() {
            if token.name.trim().is_empty() {
                return Err(bad("admin", "tokens", format!("[{index}].name: is empty")));
            }
            if let Some(weakness) = weak_token(&token.token, MIN_TOKEN_CHARS) {
                return Err(bad(
                    "admin",
                    "tokens",
                    format!("[{index}] ({}): the token {weakness}", token.name),
                ));
            }
        }
        if let Err(error) = self.rules.signature_policy() {
            return Err(bad("rules", "trusted_keys", error.to_string()));
        }
        if self.admin.audit_capacity == 0 {
            return Err(bad("admin", "audit_capacity", "must be at least 1".into()));
        }
        if self.rules.watch_interval_ms == 0 {
            return Err(bad(
                "rules",
                "watch_interval_ms",
                "must be at least 1".into(),
            ));
        }
        if let Some(nats) = &self.nats {
            nats.check()
                .map_err(|(key, message)| bad("nats", key, message))?;
        }
        if let Some(redis) = &self.redis {
            redis
                .check()
                .map_err(|(key, message)| bad("redis", key, message))?;
        }
        if let Some(weakness) = self
            .metrics
            .token
            .as_deref()
            .and_then(|t| weak_token(t, MIN_TOKEN_CHARS))
        {
            return Err(bad("metrics", "token", weakness));
        }
        self.access
            .check(MIN_TOKEN_CHARS)
            .map_err(|(key, message)| bad("access", key, message))?;
        if let Some(tracing) = &self.tracing {
            tracing
                .check()
                .map_err(|(key, message)| bad("tracing", key, message))?;
        }
        Ok(())
    }

    /// The server's options.
    pub fn server_options(&self) -> ServerOptions {
        // An evaluation with state in Redis waits on the network for most
        // of its time: more threads than cores keep the cores busy
        // (measured in BENCHMARKS.md).
        const REDIS_WORKERS_PER_CORE: usize = 4;
        let defaults = ServerOptions::default();
        ServerOptions {
            max_message_bytes: self.limits.max_message_bytes,
            max_concurrent_streams: self.limits.max_concurrent_streams,
            workers: self.limits.workers.unwrap_or(match self.redis {
                Some(_) => defaults.workers * REDIS_WORKERS_PER_CORE,
                None => defaults.workers,
            }),
            shutdown_grace: Duration::from_secs(self.limits.shutdown_grace_seconds),
            stream_batch: self.limits.stream_batch_events,
            stream_batches_in_flight: self.limits.stream_batches_in_flight,
            sweep_interval: Some(Duration::from_secs(self.state.sweep_interval_seconds)),
            image_limits: ImageLimits {
                max_bytes: self.limits.max_image_bytes,
                max_width: self.limits.max_image_side,
                max_height: self.limits.max_image_side,
                max_pixels: self.limits.max_image_pixels,
                ..defaults.image_limits
            },
            access: std::sync::Arc::new(AccessControl::new(&self.access, &self.admin.tokens)),
            rate_limits: std::sync::Arc::new(self.rate_limits()),
            max_waiting_batches: self.limits.max_waiting_batches,
            // Read from its files by the caller, which can report a failure.
            tls: None,
            // Made by whoever serves `[metrics] listen`, which outlives
            // these options.
            metrics: None,
        }
    }

    /// The per-client rate limits: `[limits]` for every client, and each
    /// `[[access.clients]]` entry's own rate.
    fn rate_limits(&self) -> RateLimits {
        let limits = &self.limits;
        let rate = |per_second: u32| Rate {
            per_second: f64::from(per_second),
            burst: match limits.client_burst_events {
                0 => f64::from(per_second).max(limits.stream_batch_events as f64),
                burst => f64::from(burst),
            },
        };
        let default =
            (limits.client_events_per_second > 0).then(|| rate(limits.client_events_per_second));
        let per_client = self
            .access
            .clients
            .iter()
            .filter_map(|client| {
                let own = client.events_per_second?;
                Some((client.name.as_str().into(), rate(own)))
            })
            .collect();
        RateLimits::new(default, per_client)
    }

    /// The pipeline's options (without hash banks).
    pub fn pipeline_options(&self) -> PipelineOptions {
        let state = &self.state;
        PipelineOptions {
            lateness_seconds: state.lateness_seconds,
            idempotency_retention_ms: (state.idempotency_window_seconds as i64)
                .saturating_mul(1000),
            idempotency_max_remembered: state.idempotency_max_remembered,
            max_future_skew_ms: match state.max_future_skew_seconds {
                0 => None,
                s => Some((s as i64).saturating_mul(1000)),
            },
            // The server sweeps on a background task instead.
            sweep_every_events: None,
            shadow_report_minutes: state.shadow_report_minutes.min(i64::MAX as u64) as i64,
            ground_truth_entities: state.ground_truth_entities,
            ground_truth_labels: state.ground_truth_labels,
            ..PipelineOptions::default()
        }
    }

    /// `[redis]`, with what it shares with `[state]`: the lateness
    /// allowance, and how long event ids are remembered (in Redis, so that
    /// a retry on another node counts once).
    pub fn redis_settings(&self) -> Option<RedisSettings> {
        self.redis.clone().map(|redis| RedisSettings {
            lateness_seconds: self.state.lateness_seconds,
            dedupe_seconds: self.state.idempotency_window_seconds.min(u32::MAX as u64) as u32,
            ..redis
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_defaults() {
        assert_eq!(ServeConfig::parse("").unwrap(), ServeConfig::default());
        assert_eq!(ServeConfig::default().listen.to_string(), DEFAULT_LISTEN);
    }

    /// The documented example states the defaults, so it cannot drift
    /// from them unnoticed.
    #[test]
    fn the_example_file_states_the_defaults() {
        let example = ServeConfig::parse(include_str!("../enforcer.example.toml")).unwrap();
        assert_eq!(example, ServeConfig::default());
    }

    #[test]
    fn every_key_is_read() {
        let config = ServeConfig::parse(
            r#"
listen = "0.0.0.0:6000"
plugin_dir = "rules"
policy = "policy.toml"

[limits]
max_message_bytes = 65536
max_concurrent_streams = 10
workers = 3
decision_log_capacity = 1000
shutdown_grace_seconds = 5
stream_batch_events = 32
stream_batches_in_flight = 1

[state]
lateness_seconds = 60
idempotency_window_seconds = 120
idempotency_max_remembered = 5000
max_future_skew_seconds = 0
sweep_interval_seconds = 7
shadow_report_minutes = 90
ground_truth_entities = 300
ground_truth_labels = 400
"#,
        )
        .unwrap();
        assert_eq!(config.listen.port(), 6000);
        let server = config.server_options();
        assert_eq!(
            (
                server.max_message_bytes,
                server.max_concurrent_streams,
                server.workers
            ),
            (65536, 10, 3)
        );
        assert_eq!(server.shutdown_grace, Duration::from_secs(5));
        assert_eq!(
            (server.stream_batch, server.stream_batches_in_flight),
            (32, 1)
        );
        let pipeline = config.pipeline_options();
        assert_eq!(pipeline.lateness_seconds, 60);
        assert_eq!(pipeline.idempotency_retention_ms, 120_000);
        assert_eq!(pipeline.idempotency_max_remembered, 5000);
        assert_eq!(pipeline.max_future_skew_ms, None);
        assert_eq!(pipeline.sweep_every_events, None);
        assert_eq!(server.sweep_interval, Some(Duration::from_secs(7)));
        assert_eq!(
            (
                pipeline.shadow_report_minutes,
                pipeline.ground_truth_entities,
                pipeline.ground_truth_labels
            ),
            (90, 300, 400)
        );
    }

    #[test]
    fn tls_and_access_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("enforcer.toml");
        std::fs::write(
            &file,
            r#"
[tls]
certificate = "tls/server.pem"
private_key = "tls/server.key"
client_ca = "tls/ca.pem"
client_certificates = "optional"

[access]
data_plane = "authenticated"
[[access.clients]]
name = "gateway"
certificate_name = "gateway.internal"
roles = ["evaluate"]
[[access.clients]]
name = "console"
token = "a-long-console-token"
roles = ["read_decisions", "review"]
"#,
        )
        .unwrap();
        let config = ServeConfig::load(&file).unwrap();
        let tls = config.tls.unwrap();
        assert_eq!(tls.certificate, dir.path().join("tls/server.pem"));
        assert_eq!(tls.client_ca, Some(dir.path().join("tls/ca.pem")));
        assert_eq!(
            tls.client_certificates,
            crate::access::tls::ClientCertificates::Optional
        );
        assert_eq!(
            config.access.data_plane,
            crate::access::DataPlaneAccess::Authenticated
        );
        assert_eq!(
            config.access.clients[1].roles,
            [
                crate::access::Role::ReadDecisions,
                crate::access::Role::Review
            ]
        );
        let refused = ServeConfig::parse(
            "[access]\ndata_plane = \"authenticated\"\nclients = [{ name = \"x\", token = \"0123456789abcdef\", roles = [\"author_rules\"] }]\n",
        )
        .unwrap_err();
        assert_eq!(refused.line, Some(2), "{refused}");
        assert!(refused.message.contains("access.data_plane"), "{refused}");
        let refused =
            ServeConfig::parse("[tracing]\notlp_endpoint = \"collector:4317\"\n").unwrap_err();
        assert!(
            refused.message.contains("tracing.otlp_endpoint"),
            "{refused}"
        );
        let refused = ServeConfig::parse(
            "[tracing]\notlp_endpoint = \"http://c:4317\"\nsample_ratio = 1.5\n",
        )
        .unwrap_err();
        assert!(
            refused.message.contains("tracing.sample_ratio"),
            "{refused}"
        );
        let refused = ServeConfig::parse("[access]\nclients = [{ name = \"x\", token = \"0123456789abcdef\", roles = [\"superuser\"] }]\n").unwrap_err();
        assert!(refused.message.contains("superuser"), "{refused}");
    }

    #[test]
    fn nats_is_off_unless_its_section_is_there() {
        assert_eq!(ServeConfig::parse("").unwrap().nats, None);
        let nats = ServeConfig::parse("[nats]\n").unwrap().nats.unwrap();
        assert_eq!(nats, NatsConfig::default());
        let nats = ServeConfig::parse(
            "[nats]\nurl = \"nats://10.0.0.1:4333\"\nsubject_prefix = \"t.d\"\nstream = \"S\"\n\
             retention = \"work_queue\"\nstorage = \"memory\"\nduplicate_window_seconds = 30\n\
             max_age_seconds = 3600\nin_flight = 8\nreplicas = 3\nack_timeout_ms = 100\n\
             retry_max_ms = 200\nshutdown_grace_seconds = 1\n",
        )
        .unwrap()
        .nats
        .unwrap();
        assert_eq!(nats.subject("block_account"), "t.d.block_account");
        assert_eq!(
            (
                nats.retention,
                nats.storage,
                nats.duplicate_window_seconds,
                nats.in_flight
            ),
            (
                crate::jetstream::Retention::WorkQueue,
                crate::jetstream::Storage::Memory,
                30,
                8
            )
        );
    }

    #[test]
    fn redis_is_off_unless_its_section_is_there() {
        assert_eq!(ServeConfig::parse("").unwrap().redis_settings(), None);
        let redis = ServeConfig::parse(
            "[state]\nlateness_seconds = 90\nidempotency_window_seconds = 120\n\
             [redis]\nurls = [\"redis://10.0.0.1:7000\", \"redis://10.0.0.2:7000\"]\n\
             cluster = true\nprefix = \"t\"\npool_size = 8\ntimeout_ms = 50\n\
             on_unavailable = \"open\"\n",
        )
        .unwrap()
        .redis_settings()
        .unwrap();
        assert_eq!(
            (
                redis.urls.len(),
                redis.cluster,
                redis.prefix.as_str(),
                redis.pool_size
            ),
            (2, true, "t", 8)
        );
        assert_eq!(
            (
                redis.on_unavailable,
                redis.lateness_seconds,
                redis.dedupe_seconds
            ),
            (crate::state::redis::OnUnavailable::Open, 90, 120)
        );
    }

    #[test]
    fn metrics_are_served_only_with_an_address() {
        assert_eq!(ServeConfig::parse("").unwrap().metrics.listen, None);
        assert_eq!(
            ServeConfig::parse("[metrics]\n").unwrap().metrics.listen,
            None
        );
        let config = ServeConfig::parse("[metrics]\nlisten = \"0.0.0.0:9464\"\n").unwrap();
        assert_eq!(config.metrics.listen, Some("0.0.0.0:9464".parse().unwrap()));
        assert_eq!(config.metrics.token, None);
        let config = ServeConfig::parse("[metrics]\ntoken = \"scrape-0123456789\"\n").unwrap();
        assert_eq!(config.metrics.token.as_deref(), Some("scrape-0123456789"));
        let refused = ServeConfig::parse("[metrics]\n\ntoken = \"short\"\n").unwrap_err();
        assert_eq!(
            refused.to_string(),
            "config line 3: metrics.token: is shorter than 16 characters"
        );
    }

    #[test]
    fn a_key_is_found_in_its_own_table() {
        let text =
            "prefix = 1\n[nats]\nprefix = 2\n\n[redis]\n  prefix= 3\n[[redis.nodes]]\nx = 1\n";
        assert_eq!(line_of_key(text, "redis", "prefix"), Some(6));
        assert_eq!(line_of_key(text, "nats", "prefix"), Some(3));
        assert_eq!(line_of_key(text, "redis", "nodes"), Some(7));
        assert_eq!(line_of_key(text, "limits", "prefix"), None);
    }

    #[test]
    fn mistakes_are_refused_with_their_line() {
        let cases = [
            (
                "listen = \"nowhere\"",
                "config line 1: invalid socket address syntax",
            ),
            ("\n\nlisten = 5", "config line 3:"),
            (
                "[limits]\nworkerz = 2",
                "config line 2: unknown field `workerz`",
            ),
            (
                "[limits]\nworkers = 0",
                "config line 2: limits.workers: must be at least 1",
            ),
            (
                "[limits]\n\nmax_message_bytes = 10",
                "config line 3: limits.max_message_bytes: 10 is outside 1024..=268435456",
            ),
            ("[limits]\nworkers = -1", "config line 2:"),
            (
                "[limits]\nstream_batches_in_flight = 0",
                "config line 2: limits.stream_batches_in_flight: must be at least 1",
            ),
            (
                "[state]\nsweep_interval_seconds = 0",
                "config line 2: state.sweep_interval_seconds: must be at least 1",
            ),
            (
                "[storage]\nmode = \"disk\"",
                "config line 2: unknown variant `disk`, expected `embedded` or `memory`",
            ),
            (
                "[storage]\ncheckpoint_seconds = 0",
                "config line 2: storage.checkpoint_seconds: must be at least 1",
            ),
            (
                "[nats]\nstream = \"ENFORCER\"\nsubject_prefix = \"a.*\"",
                "config line 3: nats.subject_prefix: \"a.*\": has a wildcard",
            ),
            ("[nats]\n\nurl = \"nats://\"", "config line 3: nats.url: "),
            (
                "[nats]\nurls = \"x\"",
                "config line 2: unknown field `urls`",
            ),
            (
                "[redis]\nurls = [\"redis://a:1\", \"redis://b:1\"]",
                "config line 2: redis.urls: 2 servers for a single Redis; set `cluster = true`",
            ),
            (
                "[redis]\nprefix = \"a{b}\"",
                "config line 2: redis.prefix: \"a{b}\": must be non-empty, without '{' or '}'",
            ),
            (
                "[redis]\n\npool_size = 0",
                "config line 3: redis.pool_size: must be at least 1",
            ),
            (
                "[redis]\nurls = [\"http://x\"]",
                "config line 2: redis.urls: \"http://x\" is not a Redis address",
            ),
            (
                "[redis]\non_unavailable = \"maybe\"",
                "config line 2: unknown variant `maybe`, expected `closed` or `open`",
            ),
            (
                "[metrics]\n\nlisten = \"localhost\"",
                "config line 3: invalid socket address syntax",
            ),
            (
                "[metrics]\nport = 9464",
                "config line 2: unknown field `port`, expected `listen`",
            ),
        ];
        for (text, expected) in cases {
            let error = ServeConfig::parse(text).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn relative_paths_are_taken_from_the_file_s_directory() {
        let dir = std::env::temp_dir().join(format!("enforcer-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("enforcer.toml");
        std::fs::write(
            &file,
            "plugin_dir = \"rules\"\npolicy = \"/abs/policy.toml\"\n",
        )
        .unwrap();
        let config = ServeConfig::load(&file).unwrap();
        assert_eq!(config.plugin_dir, Some(dir.join("rules")));
        assert_eq!(config.storage.data_dir, dir.join("enforcer-data"));
        assert_eq!(config.policy, Some(PathBuf::from("/abs/policy.toml")));
        let missing = ServeConfig::load(&dir.join("missing.toml")).unwrap_err();
        assert!(missing.to_string().contains("cannot read it"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
