//! The gRPC server: the `enforcement.v1` data plane, gRPC health checking
//! and server reflection (v1 and v1alpha) on one listener, with limits on
//! message size and concurrent streams, and a graceful shutdown that answers
//! every event already read before the process lets go.
//!
//! [`serve`] is the whole server as a library function: the binary's
//! `enforcer serve` and the end-to-end tests both call it.

pub mod admin;
mod bank_admin;
mod evaluator;
mod labels;
mod limits;
pub mod rate_limit;
mod service;
mod stream;
mod watch;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::access::layer::AccessLayer;
use crate::access::tls::ServerTls;
use crate::access::{AccessControl, Plane};
use crate::api::{self, v1};
use crate::decision_log::DecisionLog;
use crate::media::ImageLimits;
use crate::metrics::{GrpcMetricsLayer, Metrics, Sources};
use crate::overturn::OverturnLog;
use crate::pipeline::Pipeline;
use crate::state::redis::OnUnavailable;
use crate::state::{RedisState, StateBackend};

use evaluator::Evaluator;
use rate_limit::RateLimits;

/// Limits and sizes of the server. The defaults suit one engine on a few
/// cores; every one is in `enforcer serve`'s configuration.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Largest request message accepted, in bytes; larger ones get
    /// `RESOURCE_EXHAUSTED`.
    pub max_message_bytes: usize,
    /// Most concurrent calls (HTTP/2 streams) per connection.
    pub max_concurrent_streams: u32,
    /// Batches evaluated at once across all calls: the evaluation threads.
    pub workers: usize,
    /// Most events of one `EvaluateStream` evaluated as one batch, and the
    /// number of results buffered per stream.
    pub stream_batch: usize,
    /// Batches of one `EvaluateStream` in evaluation at once.
    pub stream_batches_in_flight: usize,
    /// How long shutdown waits for calls to finish before it stops anyway.
    pub shutdown_grace: Duration,
    /// How often a background task reclaims aged-out state (`None`: the
    /// pipeline's own inline sweeps only).
    pub sweep_interval: Option<Duration>,
    /// What an image sent inside an event may cost to decode.
    pub image_limits: ImageLimits,
    /// Who may call which method (by default anyone may call the data
    /// plane).
    pub access: Arc<AccessControl>,
    /// TLS (`None`: plaintext).
    pub tls: Option<ServerTls>,
    /// Events per second each client may send.
    pub rate_limits: Arc<RateLimits>,
    /// Batches waiting for an evaluation thread beyond which `Evaluate`
    /// calls are shed with `RESOURCE_EXHAUSTED`.
    pub max_waiting_batches: usize,
    /// Where the server counts its calls, decisions and queues (`None`:
    /// nowhere). The `/metrics` endpoint serving them is apart:
    /// [`crate::metrics::serve_metrics`].
    pub metrics: Option<Arc<Metrics>>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        ServerOptions {
            max_message_bytes: 4 * 1024 * 1024,
            max_concurrent_streams: 1024,
            workers: cores,
            stream_batch: 128,
            stream_batches_in_flight: 4,
            shutdown_grace: Duration::from_secs(30),
            sweep_interval: Some(Duration::from_secs(2)),
            image_limits: ImageLimits::default(),
            access: Arc::default(),
            tls: None,
            rate_limits: Arc::default(),
            max_waiting_batches: 1024,
            metrics: None,
        }
    }
}

/// Reclaim aged-out state every `every`, on a blocking thread, until the
/// server shuts down: no request waits for a sweep.
async fn sweep_periodically(
    pipeline: Arc<Pipeline>,
    every: Duration,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // the first tick is immediate: nothing to sweep yet
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let pipeline = pipeline.clone();
                let _ = tokio::task::spawn_blocking(move || pipeline.sweep()).await;
            }
            () = stopped(&mut stopping) => return,
        }
    }
}

/// How often a node whose state is in Redis checks that it can reach it.
const STATE_PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// With state in Redis and `on_unavailable = "closed"`, report the data
/// plane NOT_SERVING while Redis cannot be reached (every event would be
/// refused), so that a load balancer sends traffic elsewhere, and SERVING
/// again once a probe gets through. The probe is what brings the node
/// back: a node out of rotation gets no events to find out with.
async fn follow_state_health(
    redis: Arc<RedisState>,
    health: tonic_health::server::HealthReporter,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let mut serving = true;
    let mut ticks = tokio::time::interval(STATE_PROBE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let probe = redis.clone();
                let reachable = tokio::task::spawn_blocking(move || probe.ping().is_ok())
                    .await
                    .unwrap_or(false);
                if reachable == serving {
                    continue;
                }
                serving = reachable;
                type Data = v1::enforcement_server::EnforcementServer<service::EnforcementService>;
                if serving {
                    tracing::info!("Redis reachable: serving again");
                    health.set_serving::<Data>().await;
                } else {
                    tracing::warn!("Redis unreachable: NOT_SERVING until it answers");
                    health.set_not_serving::<Data>().await;
                }
            }
            () = stopped(&mut stopping) => return,
        }
    }
}

/// Completes once the server starts shutting down (or is gone).
async fn stopped(stopping: &mut tokio::sync::watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`: drop it here, not in
    // the caller's `select!`.
    let _ = stopping.wait_for(|stop| *stop).await;
}

/// Why the server stopped other than by being asked to.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The transport failed.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not read the API's descriptors.
    #[error("server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// A tonic server builder for a listener, with TLS when configured.
fn server_builder(tls: Option<&ServerTls>) -> Result<tonic::transport::Server, ServeError> {
    let builder = tonic::transport::Server::builder();
    Ok(match tls {
        Some(tls) => builder.tls_config(tls.server_config())?,
        None => builder,
    })
}

/// Serve the data plane for `pipeline` on `listener` until `shutdown`
/// completes, logging decisions to `log` (and the overturns of won
/// appeals beside it, as many as the log keeps decisions).
///
/// On shutdown the server stops accepting connections and calls, reports
/// NOT_SERVING to health checks, answers every event it has read (streams
/// then end with `UNAVAILABLE`), ends watchers, and returns once calls have
/// finished or `shutdown_grace` has passed.
pub async fn serve(
    listener: TcpListener,
    pipeline: Arc<Pipeline>,
    log: Arc<DecisionLog>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // Overturns are of kept decisions (one per entity each acted on):
    // keep as many as the log keeps decisions.
    let overturns = Arc::new(OverturnLog::new(log.capacity()));
    serve_with_overturns(listener, pipeline, log, overturns, options, shutdown).await
}

/// [`serve`], recording the overturns of won appeals in `overturns` (a
/// durable log recovered beside the decision log).
pub async fn serve_with_overturns(
    listener: TcpListener,
    pipeline: Arc<Pipeline>,
    log: Arc<DecisionLog>,
    overturns: Arc<OverturnLog>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<v1::enforcement_server::EnforcementServer<service::EnforcementService>>()
        .await;

    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(api::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // The descriptor set holds the control plane too; this
            // listener serves only the data plane and health.
            .with_service_name("enforcement.v1.Enforcement")
            .with_service_name("grpc.health.v1.Health")
            .with_service_name("grpc.reflection.v1.ServerReflection")
            .with_service_name("grpc.reflection.v1alpha.ServerReflection")
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    if let Some(every) = options.sweep_interval {
        tokio::spawn(sweep_periodically(
            pipeline.clone(),
            every,
            stopping.clone(),
        ));
    }
    if let StateBackend::Redis(redis) = pipeline.state()
        && redis.on_unavailable() == OnUnavailable::Closed
    {
        tokio::spawn(follow_state_health(
            redis.clone(),
            health.clone(),
            stopping.clone(),
        ));
    }
    let evaluator = Evaluator::new(
        pipeline.clone(),
        log.clone(),
        options.workers,
        options.image_limits.clone(),
        options.metrics.clone(),
    );
    if let Some(metrics) = &options.metrics {
        metrics.watch(Sources {
            pipeline: pipeline.clone(),
            log: log.clone(),
            queue: evaluator.queue().clone(),
            workers: options.workers.max(1),
        });
    }
    let service = service::EnforcementService {
        overturns,
        pipeline,
        evaluator,
        log,
        options: options.clone(),
        stopping,
    };
    let enforcement = v1::enforcement_server::EnforcementServer::new(service)
        .max_decoding_message_size(options.max_message_bytes);

    let (begin_grace, grace_begun) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        let _ = begin_grace.send(());
        tracing::info!("shutting down: finishing calls in flight");
        health.set_not_serving::<v1::enforcement_server::EnforcementServer<service::EnforcementService>>().await;
        health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        let _ = stop.send(true);
    };
    // Small responses must leave at once: without TCP_NODELAY a reply
    // waits for the client's delayed acknowledgement (tens of ms).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = server_builder(options.tls.as_ref())?
        .max_concurrent_streams(options.max_concurrent_streams)
        // Outermost, and outside the size-limit rewrite, so that every call
        // is counted with the status its client sees, refusals included.
        .layer(GrpcMetricsLayer::new(options.metrics.as_deref()))
        .layer(AccessLayer::new(options.access.clone(), Plane::Data))
        .layer(tower::util::MapResponseLayer::new(
            limits::oversized_response,
        ))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(enforcement)
        .serve_with_incoming_shutdown(incoming, signal);
    // Calls get `shutdown_grace` from the signal to finish; a client that
    // holds a call open longer is cut off rather than holding the process.
    let grace = async {
        if grace_begun.await.is_ok() {
            tokio::time::sleep(options.shutdown_grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = server => served?,
        () = grace => tracing::warn!(
            "calls still open {:?} after shutdown began; stopping anyway",
            options.shutdown_grace
        ),
    }
    Ok(())
}
