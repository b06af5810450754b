//! A load generator for the gRPC engine: it replays the simulator's traffic
//! against a running server and reports throughput or latency.
//!
//! Two modes:
//!
//! * `--mode stream` (the default): events over `EvaluateStream` on
//!   `--connections` streams, each on its own connection, as fast as the
//!   server answers or at `--rate` events/s in total, for `--events` events
//!   or `--seconds` seconds. Reports events/s and errors.
//! * `--mode unary`: one `Evaluate` call per event at a fixed offered
//!   `--rate` for `--seconds`, open loop: calls are scheduled at fixed
//!   intervals whether or not earlier ones have returned (at most
//!   `--concurrency` outstanding), and each latency is measured from the
//!   call's scheduled time, so a server that stalls is charged for every
//!   call it delayed, not just the one it was slow on. Reports latency
//!   percentiles.
//!
//! The traffic (an hour of a 10,000-account community by default) is
//! replayed in rounds. Each round gets fresh event ids and fresh account and
//! group ids (a suffix naming the run and the round), so it is a new
//! community rather than retries the engine would answer as duplicates. It
//! is dated one traffic span after the round before, starting from the
//! simulator's start time, so within a run event time moves forward as on a
//! real platform and stays in the past (the engine refuses events dated
//! more than five minutes ahead of its clock). A second run against the
//! same server starts again from the simulator's start time: behind what
//! the server has seen, which it accepts as late events of other entities.
//!
//! Beside either mode, a soak run's disturbances (`--swap-every`,
//! `--hostile-every`) and the server's memory (`--watch-pid`): see
//! `soak.rs`.
//!
//! Run a server (`cargo run --release -p enforcer -- serve`) and then, for
//! example, `cargo run --release -p enforcer-examples --example loadgen --
//! --mode stream --connections 2 --seconds 10`; or add `--spawn-server` to
//! run the server in this process (client and server then share the cores).

mod args;
mod counters;
mod pacer;
mod progress;
mod replay;
mod report;
mod server;
mod soak;
mod stream;
mod unary;

use anyhow::Context;
use clap::Parser;
use enforcer::api::v1::enforcement_client::EnforcementClient;
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;

use crate::args::{Args, Mode, check};
use crate::replay::Replay;
use crate::server::SpawnedServer;
use crate::soak::Soak;
use crate::stream::run_stream;
use crate::unary::run_unary;

/// The allocator the `enforcer` server uses, for the in-process server
/// and for the client alike.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    check(&args)?;
    let replay = Replay::simulate(&args)?;
    let server = args.spawn_server.then(SpawnedServer::start).transpose()?;
    let addr = match &server {
        Some(server) => format!("http://{}", server.addr),
        None => with_scheme(&args.addr),
    };
    // The client gets its own runtime, as it would in its own process.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (report, soak) = runtime.block_on(async {
        let soak = Soak::start(&args, &addr).await?;
        let channels = connect(&addr, args.connections).await?;
        let clients = channels
            .iter()
            .map(|channel| {
                EnforcementClient::new(channel.clone()).max_decoding_message_size(64 << 20)
            })
            .collect();
        let report = match args.mode {
            Mode::Stream => run_stream(&args, clients, replay).await,
            Mode::Unary => run_unary(&args, clients, None, replay).await,
            Mode::Health => {
                let health = channels.into_iter().map(HealthClient::new).collect();
                run_unary(&args, clients, Some(health), replay).await
            }
        }?;
        anyhow::Ok((report, soak.map(|soak| soak.finish(&args))))
    })?;
    let placement = if args.spawn_server {
        "in-process server, sharing this machine's cores with the client"
    } else {
        "server at --addr"
    };
    report.print(&args, &addr, placement, soak.as_ref());
    match server {
        Some(server) => server.stop(),
        None => Ok(()),
    }
}

/// `host:port` as `http://host:port`, the form tonic connects to.
fn with_scheme(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// One client per connection: a tonic channel is one HTTP/2 connection.
async fn connect(addr: &str, connections: u32) -> anyhow::Result<Vec<Channel>> {
    let mut clients = Vec::new();
    for _ in 0..connections {
        let channel = Channel::from_shared(addr.to_string())
            .with_context(|| format!("--addr {addr}: not a URL such as http://127.0.0.1:50051"))?
            .connect()
            .await
            .with_context(|| format!("cannot connect to {addr}: is `enforcer serve` running?"))?;
        clients.push(channel);
    }
    Ok(clients)
}
