//! Decisions published to NATS JetStream, for the services that carry them
//! out: a service that blocks accounts subscribes to
//! `<prefix>.block_account` and nothing else.
//!
//! The publisher is one more follower of the decision log, like a
//! `WatchDecisions` watcher: it reads the log from its own position, so it
//! never slows evaluation, and a decision is published only once it is in
//! the log. Each decision gives one message per action it carries out (an
//! action at or above [`EnforcementAction::min_severity`]), on
//! `<prefix>.<action>`; a review decision, or a limit or block decision
//! that carries no action, gives one message on `<prefix>.<severity>`
//! instead; an allow decision gives none. The payload is the decision as
//! the gRPC API returns it (`enforcement.v1.Decision`, protobuf), with its
//! log sequence.
//!
//! Every message has a `Nats-Msg-Id` made of the decision id, the subject's
//! last token and the entity, so JetStream drops a re-publish within the
//! stream's duplicate window. Nothing is kept locally: at start the
//! publisher reads the newest messages of the stream, takes the log
//! sequence from their headers, and publishes again from a little before it
//! (the publishes that were in flight when it stopped), skipping the
//! messages it finds already there. Publishes are pipelined, each awaited
//! for its acknowledgement in order; while NATS is unreachable the
//! publisher retries with back-off, falls behind the log (its [`lag`]), and
//! catches up when NATS is back. Decisions the log dropped before they were
//! published are reported as an error naming their sequences.
//!
//! [`lag`]: JetStreamPublisher::lag

use std::collections::{HashSet, VecDeque};
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::context::{GetStreamErrorKind, PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, LastRawMessageErrorKind};
use async_nats::jetstream::{self, ErrorCode};
use prost::Message as _;
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::api::{self, v1};
use crate::decision::{Decision, EnforcementAction};
use crate::decision_log::{DecisionLog, Logged, ReadError};
use crate::event::{Entity, EntityKind};
use crate::verdict::{Action, Severity};

/// The header naming the decision's sequence in the decision log.
pub const HEADER_SEQUENCE: &str = "Enforcer-Sequence";
/// The header naming the decision id (escaped, see [`escape`]).
pub const HEADER_DECISION_ID: &str = "Enforcer-Decision-Id";
/// The header naming what the message asks for: the subject's last token,
/// an action (`block_account`) or a severity (`review`).
pub const HEADER_ACTION: &str = "Enforcer-Action";
/// The header naming the entity an action applies to, `account:<id>` or
/// `group:<id>` (the id escaped); absent on a message for a severity.
pub const HEADER_ENTITY: &str = "Enforcer-Entity";
/// The header naming the decision's severity.
pub const HEADER_SEVERITY: &str = "Enforcer-Severity";
/// The content type of every message's payload.
pub const CONTENT_TYPE: &str = "application/x-protobuf; messageType=enforcement.v1.Decision";

/// How many decisions the publisher reads from the log at a time.
const READ_BATCH: usize = 256;
/// The first wait after a failure; it doubles up to `retry_max_ms`.
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// The least time between two warnings about the same trouble.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// A lag above this many decisions is warned about even without errors.
const LAG_WARNING: u64 = 10_000;

/// `[nats]`: where decisions are published. Absent: nowhere.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// The NATS server (`nats://host:port`, or `tls://`; credentials may
    /// be given as `nats://user:password@host:port`).
    pub url: String,
    /// Subjects are `<subject_prefix>.<action>` and
    /// `<subject_prefix>.<severity>`.
    pub subject_prefix: String,
    /// The JetStream stream, created at start if missing, taking
    /// `<subject_prefix>.>`.
    pub stream: String,
    /// How the stream keeps messages: `limits` (until `max_age`), `interest`
    /// (until every consumer acknowledged) or `work_queue` (until one did).
    /// Set when the stream is created; an existing stream keeps its own.
    pub retention: Retention,
    /// Where the stream keeps messages: `file` or `memory`.
    pub storage: Storage,
    /// Copies of the stream in a cluster.
    pub replicas: usize,
    /// How long JetStream remembers a message id to drop a re-publish.
    pub duplicate_window_seconds: u64,
    /// How long the stream keeps a message; 0: no limit.
    pub max_age_seconds: u64,
    /// Publishes awaiting their acknowledgement at once.
    pub in_flight: usize,
    /// How long a publish waits for its acknowledgement (and a JetStream
    /// request for its answer) before it is retried.
    pub ack_timeout_ms: u64,
    /// The longest wait between two attempts while NATS is unreachable.
    pub retry_max_ms: u64,
    /// At shutdown, how long the publisher goes on publishing what the log
    /// holds before it stops anyway.
    pub shutdown_grace_seconds: u64,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: "nats://127.0.0.1:4222".into(),
            subject_prefix: "enforcer.decisions".into(),
            stream: "ENFORCER_DECISIONS".into(),
            retention: Retention::Limits,
            storage: Storage::File,
            replicas: 1,
            duplicate_window_seconds: 120,
            max_age_seconds: 0,
            in_flight: 256,
            ack_timeout_ms: 5_000,
            retry_max_ms: 10_000,
            shutdown_grace_seconds: 10,
        }
    }
}

/// A stream's retention policy.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Retention {
    /// Kept until the stream's limits (age) drop them.
    Limits,
    /// Kept until every consumer has acknowledged them.
    Interest,
    /// Kept until one consumer has acknowledged them.
    WorkQueue,
}

/// Where a stream keeps its messages.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Storage {
    /// On disk.
    File,
    /// In memory.
    Memory,
}

impl NatsConfig {
    /// Check values that parse but would not work: the key and what is
    /// wrong with its value.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        match async_nats::ServerAddr::from_str(&self.url) {
            Err(e) => return Err(("url", format!("{:?} is not a NATS address: {e}", self.url))),
            Ok(addr) if addr.host().is_empty() => {
                return Err(("url", format!("{:?} names no host", self.url)));
            }
            Ok(addr) if addr.is_websocket() => {
                return Err((
                    "url",
                    format!("{:?}: only nats:// and tls:// are supported", self.url),
                ));
            }
            Ok(_) => {}
        }
        if let Some(problem) = subject_prefix_problem(&self.subject_prefix) {
            return Err((
                "subject_prefix",
                format!("{:?}: {problem}", self.subject_prefix),
            ));
        }
        if self.stream.is_empty()
            || self
                .stream
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || ".*>/\\".contains(c))
        {
            return Err((
                "stream",
                format!(
                    "{:?} is not a stream name (not empty; no spaces, '.', '*', '>', '/' or '\\')",
                    self.stream
                ),
            ));
        }
        let at_least_one = [
            ("replicas", self.replicas as u64),
            ("duplicate_window_seconds", self.duplicate_window_seconds),
            ("in_flight", self.in_flight as u64),
            ("ack_timeout_ms", self.ack_timeout_ms),
            ("retry_max_ms", self.retry_max_ms),
        ];
        for (key, value) in at_least_one {
            if value == 0 {
                return Err((key, "must be at least 1".into()));
            }
        }
        Ok(())
    }

    /// The subject of a message for `topic` (an action or a severity).
    pub fn subject(&self, topic: &str) -> String {
        format!("{}.{topic}", self.subject_prefix)
    }

    /// The subjects the stream takes: `<prefix>.>`.
    pub fn stream_subjects(&self) -> String {
        format!("{}.>", self.subject_prefix)
    }

    fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.stream.clone(),
            description: Some("Enforcer decisions, one message per action carried out".into()),
            subjects: vec![self.stream_subjects()],
            retention: match self.retention {
                Retention::Limits => stream::RetentionPolicy::Limits,
                Retention::Interest => stream::RetentionPolicy::Interest,
                Retention::WorkQueue => stream::RetentionPolicy::WorkQueue,
            },
            storage: match self.storage {
                Storage::File => stream::StorageType::File,
                Storage::Memory => stream::StorageType::Memory,
            },
            num_replicas: self.replicas,
            duplicate_window: Duration::from_secs(self.duplicate_window_seconds),
            max_age: Duration::from_secs(self.max_age_seconds),
            ..stream::Config::default()
        }
    }
}

/// What is wrong with a subject prefix, if anything: it must be one or
/// more dot-separated tokens with no wildcards or spaces.
fn subject_prefix_problem(prefix: &str) -> Option<&'static str> {
    if prefix.is_empty() {
        return Some("is empty");
    }
    if prefix.split('.').any(str::is_empty) {
        return Some("has an empty token (a leading, trailing or doubled '.')");
    }
    if prefix.contains(['*', '>']) {
        return Some("has a wildcard ('*' or '>')");
    }
    if prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("has a space or a control character");
    }
    None
}

/// An action's name, as subjects, headers and the rules' contract spell it.
pub fn action_name(action: Action) -> &'static str {
    match action {
        Action::BlockAccount => "block_account",
        Action::BanGroup => "ban_group",
        Action::LimitForwarding => "limit_forwarding",
        Action::RemoveMedia => "remove_media",
        Action::ReportToClearinghouse => "report_to_clearinghouse",
    }
}

/// A severity's name.
pub fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Allow => "allow",
        Severity::Review => "review",
        Severity::Limit => "limit",
        Severity::Block => "block",
    }
}

/// A string made safe for a header value and for joining with `/`: `%`,
/// `/`, white space and control characters are percent-encoded (UTF-8
/// bytes), so two different strings never escape to the same text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '%' || c == '/' || c.is_whitespace() || c.is_control() {
            let mut bytes = [0; 4];
            for byte in c.encode_utf8(&mut bytes).bytes() {
                let _ = write!(out, "%{byte:02X}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// An entity as headers and message ids name it: `account:<id>`.
pub fn entity_name(entity: &Entity) -> String {
    let kind = match entity.kind {
        EntityKind::Account => "account",
        EntityKind::Group => "group",
    };
    format!("{kind}:{}", escape(&entity.id))
}

/// One message a decision gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    /// The subject's last token: an action, or a severity when the decision
    /// carries out no action.
    pub topic: &'static str,
    /// The entity the action applies to (none for a severity).
    pub entity: Option<Entity>,
    /// The `Nats-Msg-Id`: decision id, topic and entity.
    pub message_id: String,
}

/// The messages a decision gives, in the order of its actions: one per
/// action it carries out (at or above the action's least severity); one for
/// its severity when it is above allow and carries out none; none for an
/// allow decision.
pub fn planned_messages(decision: &Decision) -> Vec<Planned> {
    let severity = decision.outcome.severity;
    if severity == Severity::Allow {
        return Vec::new();
    }
    let decision_id = escape(&decision.id);
    let mut planned: Vec<Planned> = decision
        .outcome
        .actions
        .iter()
        .filter(|a| severity >= EnforcementAction::min_severity(a.action))
        .map(|a| {
            let topic = action_name(a.action);
            Planned {
                topic,
                message_id: format!("{decision_id}/{topic}/{}", entity_name(&a.entity)),
                entity: Some(a.entity.clone()),
            }
        })
        .collect();
    planned.dedup();
    if planned.is_empty() {
        let topic = severity_name(severity);
        planned.push(Planned {
            topic,
            entity: None,
            message_id: format!("{decision_id}/{topic}"),
        });
    }
    planned
}

/// The headers of one message.
fn headers(logged: &Logged, planned: &Planned) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", planned.message_id.as_str());
    headers.insert(HEADER_SEQUENCE, logged.sequence.to_string().as_str());
    headers.insert(HEADER_DECISION_ID, escape(&logged.decision.id).as_str());
    headers.insert(HEADER_ACTION, planned.topic);
    if let Some(entity) = &planned.entity {
        headers.insert(HEADER_ENTITY, entity_name(entity).as_str());
    }
    headers.insert(
        HEADER_SEVERITY,
        severity_name(logged.decision.outcome.severity),
    );
    headers.insert("Content-Type", CONTENT_TYPE);
    headers
}

/// What the publisher has done so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublisherStatus {
    /// Every decision up to this log sequence is in the stream (0: none
    /// yet).
    pub published_through: u64,
    /// Decisions logged and not yet in the stream.
    pub lag: u64,
    /// Messages the stream acknowledged as new.
    pub messages_published: u64,
    /// Messages the stream acknowledged as duplicates of earlier ones.
    pub duplicates: u64,
    /// Decisions the log dropped before they were published.
    pub decisions_dropped: u64,
    /// Whether the last attempt reached the stream.
    pub connected: bool,
    /// The last failure, if the last attempt failed.
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Shared {
    published_through: AtomicU64,
    messages: AtomicU64,
    duplicates: AtomicU64,
    dropped: AtomicU64,
    connected: AtomicBool,
    last_error: Mutex<Option<String>>,
}

/// A running publisher: a task on the current tokio runtime.
pub struct JetStreamPublisher {
    shared: Arc<Shared>,
    log: Arc<DecisionLog>,
    task: tokio::task::JoinHandle<()>,
}

impl JetStreamPublisher {
    /// Start publishing the decisions of `log` as `settings` say, until
    /// `stopping` turns true; then go on until the log as it was then is
    /// published or `shutdown_grace_seconds` pass. Must be called within a
    /// tokio runtime. It never fails: an unreachable NATS, or one without
    /// JetStream, is logged and retried.
    pub fn start(
        log: Arc<DecisionLog>,
        settings: NatsConfig,
        stopping: watch::Receiver<bool>,
    ) -> JetStreamPublisher {
        let shared = Arc::new(Shared::default());
        let worker = Worker {
            log: log.clone(),
            settings,
            shared: shared.clone(),
            stopping,
            stop_open: true,
            position: None,
            present: HashSet::new(),
            present_until: 0,
            stop: None,
            last_warning: None,
        };
        JetStreamPublisher {
            shared,
            log,
            task: tokio::spawn(worker.run()),
        }
    }

    /// Every decision up to this log sequence is in the stream.
    pub fn published_through(&self) -> u64 {
        self.shared.published_through.load(Ordering::Acquire)
    }

    /// How many logged decisions are not yet in the stream.
    pub fn lag(&self) -> u64 {
        self.log
            .last_sequence()
            .saturating_sub(self.published_through())
    }

    /// What it has done so far.
    pub fn status(&self) -> PublisherStatus {
        PublisherStatus {
            published_through: self.published_through(),
            lag: self.lag(),
            messages_published: self.shared.messages.load(Ordering::Relaxed),
            duplicates: self.shared.duplicates.load(Ordering::Relaxed),
            decisions_dropped: self.shared.dropped.load(Ordering::Relaxed),
            connected: self.shared.connected.load(Ordering::Relaxed),
            last_error: self
                .shared
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }

    /// Wait until it has stopped (after `stopping` turned true).
    pub async fn join(self) {
        let _ = self.task.await;
    }

    /// Stop it at once, publishes in flight and all, as a crash would.
    pub async fn abort(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        source: async_nats::ConnectError,
    },
    #[error(
        "the NATS server at {url} has no JetStream: start it with JetStream enabled \
         (nats-server -js, or a jetstream block in its configuration)"
    )]
    NoJetStream { url: String },
    #[error("JetStream at {url}: {message}")]
    JetStream { url: String, message: String },
    #[error("stream {stream}: {message}")]
    Stream { stream: String, message: String },
    #[error("publishing decision {sequence}: {message}")]
    Publish { sequence: u64, message: String },
}

struct InFlight {
    /// Every decision up to here is in the stream once this is
    /// acknowledged (and those before it are).
    through: u64,
    ack: PublishAckFuture,
}

struct Worker {
    log: Arc<DecisionLog>,
    settings: NatsConfig,
    shared: Arc<Shared>,
    stopping: watch::Receiver<bool>,
    /// Whether `stopping` can still change.
    stop_open: bool,
    /// Every decision up to here is in the stream; `None` until the stream
    /// has been read at start.
    position: Option<u64>,
    /// Message ids found in the stream at start, for decisions up to
    /// `present_until`: not published again.
    present: HashSet<String>,
    present_until: u64,
    /// Once stopping: the last sequence to publish, and until when.
    stop: Option<(u64, Instant)>,
    last_warning: Option<Instant>,
}

impl Worker {
    async fn run(mut self) {
        let mut retry = FIRST_RETRY;
        loop {
            match self.attempt(&mut retry).await {
                Ok(()) => break,
                Err(failure) => {
                    self.shared.connected.store(false, Ordering::Relaxed);
                    let message = failure.to_string();
                    let lag = self.lag();
                    if self.should_warn() {
                        match failure {
                            Failure::NoJetStream { .. } | Failure::Stream { .. } => {
                                tracing::error!(lag, "decisions not published: {message}");
                            }
                            _ => tracing::warn!(
                                lag,
                                retry_in_ms = retry.as_millis() as u64,
                                "decisions not published to JetStream: {message}"
                            ),
                        }
                    }
                    *self
                        .shared
                        .last_error
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = Some(message);
                    if !self.wait(retry).await {
                        break;
                    }
                    retry = (retry * 2).min(Duration::from_millis(self.settings.retry_max_ms));
                }
            }
        }
        let position = self.position.unwrap_or(0);
        let last = self.log.last_sequence();
        if position < last {
            tracing::error!(
                first = position + 1,
                last,
                "the engine stopped before decisions {}..={last} were published to JetStream",
                position + 1
            );
        }
    }

    fn lag(&self) -> u64 {
        self.log
            .last_sequence()
            .saturating_sub(self.position.unwrap_or(0))
    }

    fn should_warn(&mut self) -> bool {
        let now = Instant::now();
        if self
            .last_warning
            .is_some_and(|then| now.duration_since(then) < WARN_EVERY)
        {
            return false;
        }
        self.last_warning = Some(now);
        true
    }

    /// Note a stop request: from then on, publish up to the last decision
    /// logged, within the grace period.
    fn note_stop(&mut self) {
        if self.stop.is_none() && *self.stopping.borrow() {
            let grace = Duration::from_secs(self.settings.shutdown_grace_seconds);
            self.stop = Some((self.log.last_sequence(), Instant::now() + grace));
        }
    }

    /// Whether to stop now: asked to, and done or out of time.
    fn finished(&mut self) -> bool {
        self.note_stop();
        match self.stop {
            Some((target, deadline)) => {
                self.position.is_some_and(|p| p >= target) || Instant::now() >= deadline
            }
            None => false,
        }
    }

    /// Wait `retry` before another attempt: false when the publisher
    /// should stop instead.
    async fn wait(&mut self, retry: Duration) -> bool {
        if self.finished() {
            return false;
        }
        let sleep = tokio::time::sleep(retry);
        tokio::pin!(sleep);
        loop {
            let deadline = self.stop.map(|(_, d)| d);
            tokio::select! {
                () = &mut sleep => return !self.finished(),
                () = sleep_until_or_never(deadline) => return false,
                changed = self.stopping.changed(), if self.stop.is_none() && self.stop_open => {
                    // A sender gone without a stop never stops it.
                    self.stop_open = changed.is_ok();
                    self.note_stop();
                }
            }
        }
    }

    fn advance(&mut self, through: u64) {
        let position = self.position.get_or_insert(0);
        if through > *position {
            *position = through;
            self.shared
                .published_through
                .store(through, Ordering::Release);
        }
    }

    /// One connection: connect, make sure of the stream, find where to go
    /// on from (the first time), and publish until stopped or failed.
    async fn attempt(&mut self, retry: &mut Duration) -> Result<(), Failure> {
        let settings = &self.settings;
        let timeout = Duration::from_millis(settings.ack_timeout_ms);
        let client = async_nats::ConnectOptions::new()
            .name("enforcer")
            .connection_timeout(timeout)
            .request_timeout(Some(timeout))
            .connect(settings.url.as_str())
            .await
            .map_err(|source| Failure::Connect {
                url: settings.url.clone(),
                source,
            })?;
        let context = jetstream::ContextBuilder::new()
            .timeout(timeout)
            .max_ack_inflight(settings.in_flight.max(1))
            .build(client.clone());
        ensure_jetstream(&client, &settings.url).await?;
        let stream = ensure_stream(&context, settings).await?;
        if self.position.is_none() {
            let resume = resume_point(&stream, &self.log, settings).await?;
            self.present = resume.present;
            self.present_until = resume.present_until;
            self.position = Some(resume.after);
            self.shared
                .published_through
                .store(resume.after, Ordering::Release);
            tracing::info!(
                stream = settings.stream,
                after = resume.after,
                "publishing decisions to JetStream"
            );
        }
        self.shared.connected.store(true, Ordering::Relaxed);
        *self
            .shared
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
        *retry = FIRST_RETRY;
        let max_payload = client.server_info().max_payload;
        self.publish(&context, max_payload).await
    }

    async fn publish(
        &mut self,
        context: &jetstream::Context,
        max_payload: usize,
    ) -> Result<(), Failure> {
        let mut appended = self.log.subscribe();
        let mut sent_through = self.position.unwrap_or(0);
        let mut pending: VecDeque<InFlight> = VecDeque::new();
        loop {
            if self.finished() {
                return Ok(());
            }
            let batch = match self.log.read_after(sent_through, READ_BATCH) {
                Ok(batch) => batch,
                Err(ReadError::Backing(error)) => {
                    // The store could not be read: try again shortly,
                    // publishing nothing out of order meanwhile.
                    tracing::error!(%error, after = sent_through, "reading decisions to publish");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                Err(ReadError::Gap(gap)) => {
                    self.settle_all(&mut pending).await?;
                    let dropped = gap.oldest_kept - gap.after - 1;
                    self.shared.dropped.fetch_add(dropped, Ordering::Relaxed);
                    tracing::error!(
                        first = gap.after + 1,
                        last = gap.oldest_kept - 1,
                        "decisions {}..={} were dropped from the decision log before they were \
                         published to JetStream; going on from {}",
                        gap.after + 1,
                        gap.oldest_kept - 1,
                        gap.oldest_kept
                    );
                    self.advance(gap.oldest_kept - 1);
                    sent_through = gap.oldest_kept - 1;
                    continue;
                }
            };
            if batch.is_empty() {
                self.settle_all(&mut pending).await?;
                if self.finished() {
                    return Ok(());
                }
                self.warn_if_behind();
                let deadline = self.stop.map(|(_, d)| d);
                tokio::select! {
                    changed = appended.changed() => {
                        if changed.is_err() {
                            return Ok(());
                        }
                    }
                    changed = self.stopping.changed(), if self.stop.is_none() && self.stop_open => {
                        self.stop_open = changed.is_ok();
                    }
                    () = sleep_until_or_never(deadline) => {}
                }
                continue;
            }
            for logged in batch {
                if logged.sequence > self.present_until && !self.present.is_empty() {
                    self.present = HashSet::new();
                }
                let planned: Vec<Planned> = planned_messages(&logged.decision)
                    .into_iter()
                    .filter(|p| !self.present.contains(&p.message_id))
                    .collect();
                let payload = if planned.is_empty() {
                    None
                } else {
                    payload(&logged, max_payload)
                };
                match payload {
                    None => match pending.back_mut() {
                        Some(last) => last.through = logged.sequence,
                        None => self.advance(logged.sequence),
                    },
                    Some(payload) => {
                        let count = planned.len();
                        for (index, message) in planned.iter().enumerate() {
                            while pending.len() >= self.settings.in_flight {
                                let front = pending.pop_front().expect("not empty");
                                self.settle(front).await?;
                            }
                            let publish = PublishMessage::build()
                                .payload(payload.clone())
                                .headers(headers(&logged, message));
                            let ack = context
                                .send_publish(self.settings.subject(message.topic), publish)
                                .await
                                .map_err(|e| Failure::Publish {
                                    sequence: logged.sequence,
                                    message: publish_error(e.kind(), &e),
                                })?;
                            let through = if index + 1 == count {
                                logged.sequence
                            } else {
                                logged.sequence - 1
                            };
                            pending.push_back(InFlight { through, ack });
                        }
                    }
                }
                sent_through = logged.sequence;
            }
        }
    }

    async fn settle(&mut self, in_flight: InFlight) -> Result<(), Failure> {
        let ack = in_flight.ack.await.map_err(|e| Failure::Publish {
            sequence: in_flight.through,
            message: publish_error(e.kind(), &e),
        })?;
        if ack.duplicate {
            self.shared.duplicates.fetch_add(1, Ordering::Relaxed);
        } else {
            self.shared.messages.fetch_add(1, Ordering::Relaxed);
        }
        self.advance(in_flight.through);
        Ok(())
    }

    async fn settle_all(&mut self, pending: &mut VecDeque<InFlight>) -> Result<(), Failure> {
        while let Some(front) = pending.pop_front() {
            self.settle(front).await?;
        }
        Ok(())
    }

    fn warn_if_behind(&mut self) {
        let lag = self.lag();
        if lag > LAG_WARNING && self.should_warn() {
            tracing::warn!(lag, "publishing decisions to JetStream is behind the log");
        }
    }
}

fn publish_error(kind: PublishErrorKind, error: &dyn std::fmt::Display) -> String {
    match kind {
        PublishErrorKind::StreamNotFound => {
            format!("{error} (the stream is gone; it is created again on the next attempt)")
        }
        _ => error.to_string(),
    }
}

async fn sleep_until_or_never(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The payload of a decision's messages: the whole decision, or, when that
/// is larger than the server takes, the compact view (without the event
/// and the rules that said nothing); `None`, with an error logged, when
/// even that is too large.
fn payload(logged: &Logged, max_payload: usize) -> Option<bytes::Bytes> {
    // Headers take a few hundred bytes; ids are client-chosen, so leave room.
    let room = max_payload.saturating_sub(4096);
    let full = api::decision_to_proto(&logged.decision, logged.sequence).encode_to_vec();
    if max_payload == 0 || full.len() <= room {
        return Some(full.into());
    }
    let compact =
        api::decision_view_to_proto(&logged.decision, logged.sequence, v1::DecisionView::Compact)
            .encode_to_vec();
    if compact.len() <= room {
        tracing::warn!(
            sequence = logged.sequence,
            decision = logged.decision.id,
            bytes = full.len(),
            max_payload,
            "decision larger than the NATS server takes: published in its compact view"
        );
        return Some(compact.into());
    }
    tracing::error!(
        sequence = logged.sequence,
        decision = logged.decision.id,
        bytes = compact.len(),
        max_payload,
        "decision larger than the NATS server takes even in its compact view: not published"
    );
    None
}

/// Fail clearly when the server has no JetStream. (The account request is
/// read loosely: servers older than the client add and rename fields.)
async fn ensure_jetstream(client: &async_nats::Client, url: &str) -> Result<(), Failure> {
    use async_nats::client::RequestErrorKind;
    let no_jetstream = || Failure::NoJetStream { url: url.into() };
    let answer = client
        .request("$JS.API.INFO", bytes::Bytes::new())
        .await
        .map_err(|e| match e.kind() {
            RequestErrorKind::NoResponders => no_jetstream(),
            _ => Failure::JetStream {
                url: url.into(),
                message: e.to_string(),
            },
        })?;
    let answer: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap_or_default();
    match answer.get("error") {
        None => Ok(()),
        Some(error) => {
            let code = error.get("err_code").and_then(serde_json::Value::as_u64);
            let not_enabled = [
                ErrorCode::JETSTREAM_NOT_ENABLED,
                ErrorCode::JETSTREAM_NOT_ENABLED_FOR_ACCOUNT,
            ]
            .iter()
            .any(|c| Some(c.0) == code);
            if not_enabled {
                Err(no_jetstream())
            } else {
                Err(Failure::JetStream {
                    url: url.into(),
                    message: error.to_string(),
                })
            }
        }
    }
}

/// The stream, created when missing; an existing one is given the
/// subjects, duplicate window and age limit configured (its retention,
/// storage and replicas stay its own).
async fn ensure_stream(
    context: &jetstream::Context,
    settings: &NatsConfig,
) -> Result<stream::Stream, Failure> {
    let failure = |message: String| Failure::Stream {
        stream: settings.stream.clone(),
        message,
    };
    let wanted = settings.stream_config();
    match context.get_stream(&settings.stream).await {
        Ok(mut stream) => {
            let info = stream
                .info()
                .await
                .map_err(|e| failure(format!("cannot read its settings: {e}")))?;
            let mut config = info.config.clone();
            if !config.subjects.contains(&settings.stream_subjects()) {
                config.subjects.push(settings.stream_subjects());
            }
            config.duplicate_window = wanted.duplicate_window;
            config.max_age = wanted.max_age;
            if config.retention != wanted.retention {
                tracing::warn!(
                    stream = settings.stream,
                    "the stream exists with another retention than configured ({:?}); it keeps its own",
                    config.retention
                );
            }
            if config != info.config {
                context.update_stream(config).await.map_err(|e| {
                    failure(format!(
                        "cannot give it subjects {}, a duplicate window and an age limit: {e}",
                        settings.stream_subjects()
                    ))
                })?;
                tracing::info!(stream = settings.stream, "JetStream stream updated");
            }
            Ok(stream)
        }
        Err(e) => match e.kind() {
            GetStreamErrorKind::JetStream(error)
                if error.error_code() == ErrorCode::STREAM_NOT_FOUND =>
            {
                let stream = context
                    .create_stream(wanted)
                    .await
                    .map_err(|e| failure(format!("cannot create it: {e}")))?;
                tracing::info!(
                    stream = settings.stream,
                    subjects = settings.stream_subjects(),
                    "JetStream stream created"
                );
                Ok(stream)
            }
            _ => Err(failure(format!("cannot read it: {e}"))),
        },
    }
}

/// Where publishing goes on from.
#[derive(Debug, Default)]
struct Resume {
    /// Publish the decisions after this sequence.
    after: u64,
    /// Message ids already in the stream among them.
    present: HashSet<String>,
    /// The newest sequence `present` covers.
    present_until: u64,
}

/// Read the newest messages of the stream: the newest one's headers say
/// the last decision published, and the publishes in flight then may have
/// been lost, so publishing goes on from `in_flight` decisions before it,
/// skipping the messages found in the stream. When the log does not hold
/// that decision at that sequence, it is not the log the stream was
/// following (an engine started again in memory, with a new log): all it holds is
/// published, and the duplicate window drops what is already there.
async fn resume_point(
    stream: &stream::Stream,
    log: &DecisionLog,
    settings: &NatsConfig,
) -> Result<Resume, Failure> {
    let failure = |message: String| Failure::Stream {
        stream: settings.stream.clone(),
        message,
    };
    let info = stream
        .get_info()
        .await
        .map_err(|e| failure(format!("cannot read its state: {e}")))?;
    let state = info.state;
    if state.messages == 0 {
        return Ok(Resume::default());
    }
    let overlap = settings.in_flight as u64;
    let mut budget = settings.in_flight.saturating_mul(16).saturating_add(256);
    let mut newest: Option<(u64, String)> = None;
    let mut floor = 0;
    let mut present = HashSet::new();
    let mut stream_sequence = state.last_sequence;
    while stream_sequence >= state.first_sequence.max(1) && budget > 0 {
        budget -= 1;
        let message = match stream.get_raw_message(stream_sequence).await {
            Ok(message) => message,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
                stream_sequence -= 1;
                continue;
            }
            Err(e) => {
                return Err(failure(format!(
                    "cannot read message {stream_sequence}: {e}"
                )));
            }
        };
        stream_sequence -= 1;
        let header = |name: &str| {
            message
                .headers
                .get(name)
                .map(|value| value.as_str().to_string())
        };
        let Some(sequence) = header(HEADER_SEQUENCE).and_then(|s| s.parse::<u64>().ok()) else {
            continue;
        };
        if newest.is_none() {
            newest = Some((sequence, header(HEADER_DECISION_ID).unwrap_or_default()));
            floor = sequence.saturating_sub(overlap);
        }
        if sequence <= floor {
            break;
        }
        if let Some(id) = header("Nats-Msg-Id") {
            present.insert(id);
        }
    }
    let Some((sequence, decision_id)) = newest else {
        return Ok(Resume::default());
    };
    let same_log = match log.read_after(sequence - 1, 1) {
        Ok(found) => found
            .first()
            .is_some_and(|logged| escape(&logged.decision.id) == decision_id),
        // Older than the log keeps: the gap is reported as publishing
        // reaches it.
        Err(_) => true,
    };
    if !same_log {
        tracing::warn!(
            stream = settings.stream,
            sequence,
            decision = decision_id,
            "the stream's newest decision is not in this decision log at its sequence: \
             the log started again; publishing every decision it holds"
        );
        return Ok(Resume {
            after: 0,
            present,
            present_until: u64::MAX,
        });
    }
    Ok(Resume {
        after: floor,
        present,
        present_until: sequence,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::decision::Outcome;
    use crate::event::Event;

    fn decision(id: &str, severity: Severity, actions: &[(Action, Entity)]) -> Decision {
        let mut event = Event::new(id, "message.sent", 0, Entity::account("actor"));
        event.target = Some(Entity::group("g"));
        Decision {
            id: Decision::id_for(id),
            event: Arc::new(event),
            outcome: Outcome {
                severity,
                score: 1.0,
                actions: actions
                    .iter()
                    .map(|(action, entity)| EnforcementAction {
                        action: *action,
                        entity: entity.clone(),
                    })
                    .collect(),
            },
            rules: Vec::new(),
            label_changes: Vec::new(),
            shadow: None,
            policy_version: Arc::from("test"),
        }
    }

    fn topics(decision: &Decision) -> Vec<&'static str> {
        planned_messages(decision).iter().map(|p| p.topic).collect()
    }

    #[test]
    fn names_are_the_contract_s_names() {
        for action in [
            Action::BlockAccount,
            Action::BanGroup,
            Action::LimitForwarding,
            Action::RemoveMedia,
            Action::ReportToClearinghouse,
        ] {
            assert_eq!(
                serde_json::to_value(action).unwrap(),
                action_name(action),
                "{action:?}"
            );
        }
        for severity in [
            Severity::Allow,
            Severity::Review,
            Severity::Limit,
            Severity::Block,
        ] {
            assert_eq!(
                serde_json::to_value(severity).unwrap(),
                severity_name(severity)
            );
        }
    }

    #[test]
    fn one_subject_per_action_carried_out() {
        let settings = NatsConfig::default();
        let actor = Entity::account("a1");
        let group = Entity::group("g1");
        let block = decision(
            "e1",
            Severity::Block,
            &[
                (Action::BlockAccount, actor.clone()),
                (Action::ReportToClearinghouse, actor.clone()),
                (Action::BanGroup, group.clone()),
                (Action::RemoveMedia, group.clone()),
            ],
        );
        let planned = planned_messages(&block);
        let subjects: Vec<String> = planned.iter().map(|p| settings.subject(p.topic)).collect();
        assert_eq!(
            subjects,
            [
                "enforcer.decisions.block_account",
                "enforcer.decisions.report_to_clearinghouse",
                "enforcer.decisions.ban_group",
                "enforcer.decisions.remove_media",
            ]
        );
        assert_eq!(
            planned[0].message_id, "dec-e1/block_account/account:a1",
            "decision id, action and entity"
        );
        assert_eq!(planned[2].entity.as_ref(), Some(&group));
        assert_eq!(settings.stream_subjects(), "enforcer.decisions.>");

        // The same action on two entities is two messages with two ids.
        let two = decision(
            "e2",
            Severity::Block,
            &[
                (Action::BlockAccount, Entity::account("x")),
                (Action::BlockAccount, Entity::account("y")),
            ],
        );
        let ids: Vec<String> = planned_messages(&two)
            .into_iter()
            .map(|p| p.message_id)
            .collect();
        assert_eq!(
            ids,
            [
                "dec-e2/block_account/account:x",
                "dec-e2/block_account/account:y"
            ]
        );
    }

    #[test]
    fn actions_below_their_severity_are_not_published() {
        // A limit decision carries out limits, never a block it lists.
        let limit = decision(
            "e3",
            Severity::Limit,
            &[
                (Action::LimitForwarding, Entity::account("a")),
                (Action::BlockAccount, Entity::account("a")),
            ],
        );
        assert_eq!(topics(&limit), ["limit_forwarding"]);
        // A review decision carries out nothing: one message for review.
        let review = decision(
            "e4",
            Severity::Review,
            &[(Action::BlockAccount, Entity::account("a"))],
        );
        let planned = planned_messages(&review);
        assert_eq!(topics(&review), ["review"]);
        assert_eq!(planned[0].message_id, "dec-e4/review");
        assert_eq!(planned[0].entity, None);
        // A block with no action of its own: one message for its severity.
        assert_eq!(topics(&decision("e5", Severity::Block, &[])), ["block"]);
        // Allow: nothing at all.
        assert!(topics(&decision("e6", Severity::Allow, &[])).is_empty());
        assert!(
            topics(&decision(
                "e7",
                Severity::Allow,
                &[(Action::BlockAccount, Entity::account("a"))]
            ))
            .is_empty()
        );
    }

    #[test]
    fn ids_are_escaped_so_they_never_collide_or_break_a_header() {
        assert_eq!(escape("plain-id_1.2:3"), "plain-id_1.2:3");
        assert_eq!(escape("a/b"), "a%2Fb");
        assert_eq!(escape("a%2Fb"), "a%252Fb");
        assert_eq!(escape("line\r\nbreak"), "line%0D%0Abreak");
        assert_eq!(escape("sp ace\u{85}"), "sp%20ace%C2%85");
        assert_eq!(escape("é"), "é");
        // An entity id with a '/' cannot pose as another action.
        let tricky = decision(
            "e8",
            Severity::Block,
            &[(Action::BlockAccount, Entity::account("x/ban_group/group:y"))],
        );
        let id = &planned_messages(&tricky)[0].message_id;
        assert_eq!(id, "dec-e8/block_account/account:x%2Fban_group%2Fgroup:y");
        assert_eq!(id.matches('/').count(), 2);
        // Every header of such a decision is accepted.
        let logged = Logged {
            sequence: 7,
            decision: Arc::new(decision(
                "evil\r\nNats-Msg-Id: x",
                Severity::Block,
                &[(Action::BlockAccount, Entity::account("a\nb"))],
            )),
        };
        let planned = planned_messages(&logged.decision);
        let headers = headers(&logged, &planned[0]);
        assert_eq!(headers.get(HEADER_SEQUENCE).unwrap().as_str(), "7");
        assert_eq!(
            headers.get(HEADER_ENTITY).unwrap().as_str(),
            "account:a%0Ab"
        );
        assert_eq!(
            headers.get(HEADER_ACTION).unwrap().as_str(),
            "block_account"
        );
        assert!(
            !headers
                .get("Nats-Msg-Id")
                .unwrap()
                .as_str()
                .contains(['\r', '\n'])
        );
    }

    #[test]
    fn settings_are_checked() {
        assert_eq!(NatsConfig::default().check(), Ok(()));
        let with = |change: fn(&mut NatsConfig)| {
            let mut settings = NatsConfig::default();
            change(&mut settings);
            settings.check().unwrap_err().0
        };
        assert_eq!(with(|s| s.url = "nats://".into()), "url");
        assert_eq!(with(|s| s.url = "http://host:4222".into()), "url");
        assert_eq!(with(|s| s.url = "ws://host:4222".into()), "url");
        assert_eq!(with(|s| s.subject_prefix = "a..b".into()), "subject_prefix");
        assert_eq!(with(|s| s.subject_prefix = "a.>".into()), "subject_prefix");
        assert_eq!(with(|s| s.subject_prefix = "a b".into()), "subject_prefix");
        assert_eq!(with(|s| s.subject_prefix = String::new()), "subject_prefix");
        assert_eq!(with(|s| s.stream = "A.B".into()), "stream");
        assert_eq!(with(|s| s.in_flight = 0), "in_flight");
        assert_eq!(
            with(|s| s.duplicate_window_seconds = 0),
            "duplicate_window_seconds"
        );
    }
}
