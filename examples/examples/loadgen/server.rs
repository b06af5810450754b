//! The in-process server of `--spawn-server`.

use std::sync::Arc;

use anyhow::{Context, bail};

/// A server on its own runtime and threads, as `enforcer serve` runs it
/// with no configuration: the example rules, the example policy and the
/// demo hash bank.
pub(crate) struct SpawnedServer {
    pub(crate) addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
}

impl SpawnedServer {
    pub(crate) fn start() -> anyhow::Result<SpawnedServer> {
        use enforcer::config::ServeConfig;
        use enforcer::decision_log::DecisionLog;
        use enforcer::examples::{EXAMPLE_POLICY, load_example_rules};
        use enforcer::pipeline::{Pipeline, PipelineOptions};
        use enforcer::policy::Policy;

        let config = ServeConfig::default();
        let runtime = enforcer::runtime::Runtime::new()?;
        let rules = load_example_rules(&runtime)
            .map_err(|(name, e)| anyhow::anyhow!("loading example rule {name}: {e}"))?;
        let policy = Policy::parse(EXAMPLE_POLICY).context("the example policy")?;
        let options = PipelineOptions {
            banks: enforcer::demo::banks(),
            ..config.pipeline_options()
        };
        let pipeline = Arc::new(Pipeline::new(rules, policy, options)?);
        let log = Arc::new(DecisionLog::new(config.limits.decision_log_capacity));
        let server_options = config.server_options();

        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (bound, address) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let _ = bound.send(listener.local_addr()?);
                let shutdown = async move {
                    let _ = stopped.await;
                };
                enforcer::server::serve(listener, pipeline, log, server_options, shutdown).await?;
                Ok(())
            })
        });
        let Ok(addr) = address.recv() else {
            // The thread ended before binding: its error says why.
            return Err(match thread.join() {
                Ok(Err(e)) => e.context("starting the in-process server"),
                _ => anyhow::anyhow!("the in-process server failed to start"),
            });
        };
        Ok(SpawnedServer { addr, stop, thread })
    }

    pub(crate) fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        match self.thread.join() {
            Ok(result) => result.context("the in-process server"),
            Err(_) => bail!("the in-process server's thread panicked"),
        }
    }
}
