//! Connections to Redis, and the guard that keeps an outage from stalling
//! evaluation.
//!
//! Calls come from evaluation threads, which are not async. A small
//! runtime of the store's own drives a pool of multiplexed connections
//! (each pipelines the calls of many threads); the calling thread hands its
//! request over and waits for the answer at most `timeout`. After a
//! failure the connection is left alone for `retry_after`: calls in that
//! time fail at once instead of each waiting out a timeout, and the first
//! call after it tries again.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::{RedisError, RedisResult};

use super::settings::RedisSettings;

/// One connection of the pool: to a single server, or to a cluster (which
/// routes each call to the node holding its keys).
#[derive(Clone)]
pub(super) enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Connection {
    /// Run a script on this connection.
    pub(super) async fn invoke<T: redis::FromRedisValue>(
        &mut self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> RedisResult<T> {
        match self {
            Connection::Single(c) => invocation.invoke_async(c).await,
            Connection::Cluster(c) => invocation.invoke_async(c).await,
        }
    }

    /// Run a command on this connection.
    pub(super) async fn query<T: redis::FromRedisValue>(
        &mut self,
        command: &redis::Cmd,
    ) -> RedisResult<T> {
        match self {
            Connection::Single(c) => command.query_async(c).await,
            Connection::Cluster(c) => command.query_async(c).await,
        }
    }
}

/// Why a call did not get its answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Redis answered with an error, or the connection failed.
    #[error("{0}")]
    Redis(#[from] RedisError),
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    /// A recent failure; calls are not tried until `retry_after` has
    /// passed since it.
    #[error("not tried: Redis failed {0:?} ago ({1})")]
    Resting(Duration, String),
}

/// How the connection has fared: what an operator watches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedisHealth {
    /// Calls made (tried or not).
    pub calls: u64,
    /// Calls that failed when tried: errors and timeouts.
    pub failures: u64,
    /// Calls failed at once because Redis had just failed.
    pub not_tried: u64,
    /// Whether the last call tried failed.
    pub down: bool,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

/// The pool, its runtime and the failure guard.
pub(super) struct Pool {
    /// Dropped without waiting (see `Drop`), so a store may be dropped on
    /// an async thread.
    runtime: Option<tokio::runtime::Runtime>,
    connections: Vec<Connection>,
    next: AtomicUsize,
    timeout: Duration,
    retry_after: Duration,
    /// When the last failure happened, and what it was.
    failed: Mutex<Option<(Instant, String)>>,
    down: AtomicBool,
    calls: AtomicU64,
    failures: AtomicU64,
    not_tried: AtomicU64,
}

impl Pool {
    /// Connect `settings.pool_size` connections. Fails if Redis cannot be
    /// reached now: a wrong address should stop the engine at start, not
    /// show up as an outage later.
    pub(super) fn connect(settings: &RedisSettings) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(settings.io_threads.max(1))
            .thread_name("redis-io")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the Redis I/O threads: {e}"))?;
        let pool_size = settings.pool_size.max(1);
        let timeout = Duration::from_millis(settings.timeout_ms);
        let connect = open(settings.clone(), pool_size, timeout);
        let connections =
            wait(&runtime, connect, timeout * 4 + Duration::from_secs(1)).map_err(|e| {
                format!(
                    "cannot connect to Redis at {}: {e}",
                    settings.urls.join(", ")
                )
            })?;
        Ok(Pool {
            runtime: Some(runtime),
            connections,
            next: AtomicUsize::new(0),
            timeout,
            retry_after: Duration::from_millis(settings.retry_after_ms),
            failed: Mutex::new(None),
            down: AtomicBool::new(false),
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            not_tried: AtomicU64::new(0),
        })
    }

    /// Run `call` on the next connection of the pool and wait for its
    /// answer, at most the timeout. Never blocks longer than that, whatever
    /// Redis does.
    pub(super) fn run<T, F, Fut>(&self, call: F) -> Result<T, CallError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if let Some(resting) = self.resting() {
            self.not_tried.fetch_add(1, Ordering::Relaxed);
            return Err(resting);
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        let future = call(self.connections[index].clone());
        let runtime = self.runtime.as_ref().expect("present until dropped");
        let outcome = wait(runtime, future, self.timeout);
        match &outcome {
            Ok(_) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!("Redis answers again");
                }
            }
            Err(error) => self.failed(error),
        }
        outcome
    }

    /// What has happened so far.
    pub(super) fn health(&self) -> RedisHealth {
        RedisHealth {
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            not_tried: self.not_tried.load(Ordering::Relaxed),
            down: self.down.load(Ordering::Relaxed),
            last_error: self
                .failed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .map(|(_, e)| e.clone()),
        }
    }

    /// The error to fail a call with at once, while resting after a
    /// failure.
    fn resting(&self) -> Option<CallError> {
        if !self.down.load(Ordering::Relaxed) {
            return None;
        }
        let failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        let (at, error) = failed.as_ref()?;
        let since = at.elapsed();
        (since < self.retry_after).then(|| CallError::Resting(since, error.clone()))
    }

    fn failed(&self, error: &CallError) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        // An error Redis answered with (a script's, say) says nothing about
        // whether Redis is reachable.
        let unreachable = match error {
            CallError::Redis(e) => {
                e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_unrecoverable_error()
            }
            CallError::TimedOut(_) | CallError::Resting(..) => true,
        };
        if !unreachable {
            return;
        }
        *self.failed.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), error.to_string()));
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::warn!(%error, "Redis is unreachable");
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Open `count` connections as `settings` say.
async fn open(
    settings: RedisSettings,
    count: usize,
    timeout: Duration,
) -> RedisResult<Vec<Connection>> {
    let mut connections = Vec::with_capacity(count);
    if settings.cluster {
        let client = redis::cluster::ClusterClient::builder(settings.urls.clone())
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(2)
            .build()?;
        for _ in 0..count {
            connections.push(Connection::Cluster(client.get_async_connection().await?));
        }
    } else {
        let client = redis::Client::open(settings.urls[0].as_str())?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        for _ in 0..count {
            let manager = client
                .get_connection_manager_with_config(config.clone())
                .await?;
            connections.push(Connection::Single(manager));
        }
    }
    Ok(connections)
}

/// Wait for `future` on this (non-async) thread, at most `timeout`.
///
/// The connections' own tasks run on the pool's runtime; a call's future
/// only hands its request to them and waits for the answer, so it needs no
/// executor of its own: it is polled right here, the thread parked between
/// polls, which saves a task and two hand-overs between threads per call.
/// The runtime is entered so that what the client does inside (timers, a
/// reconnect) finds it.
fn wait<T>(
    runtime: &tokio::runtime::Runtime,
    future: impl Future<Output = RedisResult<T>>,
    timeout: Duration,
) -> Result<T, CallError> {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let _entered = runtime.enter();
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let deadline = Instant::now() + timeout;
    loop {
        if let Poll::Ready(outcome) = future.as_mut().poll(&mut context) {
            return outcome.map_err(CallError::Redis);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // Dropping the future abandons the call; its answer, if it
            // ever comes, is discarded by the connection.
            return Err(CallError::TimedOut(timeout));
        }
        std::thread::park_timeout(left);
    }
}
