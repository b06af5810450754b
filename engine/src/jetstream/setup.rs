//! The stream made ready at start (JetStream present, the stream created
//! or updated), and where publishing resumes from the stream's newest
//! messages.

use std::collections::HashSet;

use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::stream::{self, LastRawMessageErrorKind};
use async_nats::jetstream::{self, ErrorCode};

use crate::decision_log::DecisionLog;

use super::messages::{HEADER_DECISION_ID, HEADER_SEQUENCE, escape};
use super::{Failure, NatsConfig};
/// Fail clearly when the server has no JetStream. (The account request is
/// read loosely: servers older than the client add and rename fields.)
pub(super) async fn ensure_jetstream(
    client: &async_nats::Client,
    url: &str,
) -> Result<(), Failure> {
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
pub(super) async fn ensure_stream(
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
pub(super) struct Resume {
    /// Publish the decisions after this sequence.
    pub(super) after: u64,
    /// Message ids already in the stream among them.
    pub(super) present: HashSet<String>,
    /// The newest sequence `present` covers.
    pub(super) present_until: u64,
}

/// Read the newest messages of the stream: the newest one's headers say
/// the last decision published, and the publishes in flight then may have
/// been lost, so publishing goes on from `in_flight` decisions before it,
/// skipping the messages found in the stream. When the log does not hold
/// that decision at that sequence, it is not the log the stream was
/// following (an engine started again in memory, with a new log): all it holds is
/// published, and the duplicate window drops what is already there.
pub(super) async fn resume_point(
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
