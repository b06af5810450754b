//! `[redis]`: where shared state lives, and what happens when it cannot be
//! reached.

use serde::Deserialize;

/// What an evaluation does when Redis cannot be reached.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnUnavailable {
    /// Decide nothing without the state: the event is refused with
    /// `UNAVAILABLE`, and the client retries it. (Counting is idempotent
    /// by event id, so a retry never counts twice.)
    #[default]
    Closed,
    /// Decide anyway: nothing is counted, and each rule that reads the
    /// state gets an error, which the policy's failure mode for that rule
    /// turns into a verdict. Rules that read no state (hash matches, text)
    /// decide as ever.
    Open,
}

/// `[redis]`: counters and labels kept in Redis, shared by every engine
/// node configured with the same servers and prefix. Absent: in memory.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// `redis://host:port` (or `rediss://`, with credentials as
    /// `redis://user:password@host:port`); for a cluster, any of its
    /// nodes, one or more.
    pub urls: Vec<String>,
    /// Whether `urls` are nodes of a Redis Cluster.
    pub cluster: bool,
    /// The first part of every key, so that several engines (or other
    /// users) can share one Redis.
    pub prefix: String,
    /// Connections kept open; each carries many calls at once.
    pub pool_size: usize,
    /// Threads driving the connections.
    pub io_threads: usize,
    /// How long a call waits for its answer.
    pub timeout_ms: u64,
    /// After a failure, how long calls fail at once before Redis is tried
    /// again.
    pub retry_after_ms: u64,
    /// What an evaluation does while Redis cannot be reached.
    pub on_unavailable: OnUnavailable,
    /// How late an event may be and still be counted exactly: history and
    /// expired labels are kept this much longer than needed.
    #[serde(skip)]
    pub lateness_seconds: u32,
    /// How long (in event time) an event id is remembered, so that a retry
    /// or a copy sent to another node is not counted twice.
    #[serde(skip)]
    pub dedupe_seconds: u32,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            urls: vec!["redis://127.0.0.1:6379".into()],
            cluster: false,
            prefix: "enforcer".into(),
            pool_size: 4,
            io_threads: 2,
            timeout_ms: 250,
            retry_after_ms: 1_000,
            on_unavailable: OnUnavailable::Closed,
            lateness_seconds: crate::state::memory::DEFAULT_LATENESS_SECONDS,
            dedupe_seconds: 600,
        }
    }
}

impl RedisSettings {
    /// Check values that parse but would not work: the key and what is
    /// wrong with its value.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.urls.is_empty() {
            return Err(("urls", "names no server".into()));
        }
        if !self.cluster && self.urls.len() > 1 {
            return Err((
                "urls",
                format!(
                    "{} servers for a single Redis; set `cluster = true` for a cluster",
                    self.urls.len()
                ),
            ));
        }
        for url in &self.urls {
            if let Err(e) = redis::Client::open(url.as_str()) {
                return Err(("urls", format!("{url:?} is not a Redis address: {e}")));
            }
        }
        if self.prefix.is_empty() || self.prefix.contains(['{', '}']) {
            return Err((
                "prefix",
                format!(
                    "{:?}: must be non-empty, without '{{' or '}}' (they would break the hash tags that keep an entity on one cluster slot)",
                    self.prefix
                ),
            ));
        }
        for (key, value) in [
            ("pool_size", self.pool_size as u64),
            ("io_threads", self.io_threads as u64),
            ("timeout_ms", self.timeout_ms),
        ] {
            if value == 0 {
                return Err((key, "must be at least 1".into()));
            }
        }
        Ok(())
    }
}
