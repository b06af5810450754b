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
//!
//! * [`settings`]: `[nats]`, checked.
//! * [`messages`]: what each decision is published as: subjects, message
//!   ids, headers, payload.
//! * [`setup`]: the stream made ready at start, and where publishing
//!   resumes.

mod messages;
mod settings;
mod setup;

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::context::{PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::decision_log::{DecisionLog, ReadError};

pub use messages::{
    CONTENT_TYPE, HEADER_ACTION, HEADER_DECISION_ID, HEADER_ENTITY, HEADER_SEQUENCE,
    HEADER_SEVERITY, Planned, entity_name, escape, planned_messages,
};
pub use settings::{NatsConfig, Retention, Storage};

use messages::{headers, payload};
use setup::{ensure_jetstream, ensure_stream, resume_point};

/// How many decisions the publisher reads from the log at a time.
const READ_BATCH: usize = 256;
/// The first wait after a failure; it doubles up to `retry_max_ms`.
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// The least time between two warnings about the same trouble.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// A lag above this many decisions is warned about even without errors.
const LAG_WARNING: u64 = 10_000;

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
