//! `[nats]`: where decisions are published, and the checks on it.

use std::str::FromStr;
use std::time::Duration;

use async_nats::jetstream::stream;
use serde::Deserialize;

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

    pub(super) fn stream_config(&self) -> stream::Config {
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

#[cfg(test)]
mod tests {
    use super::*;

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
