//! A real server on a free loopback port for the gRPC tests, and a client
//! connected to it. The server runs on its own runtime thread and shuts
//! down gracefully when the handle is dropped or `shutdown` is called.

use std::net::SocketAddr;
use std::sync::Arc;

use enforcer::api::v1;
use enforcer::api::v1::enforcement_client::EnforcementClient;
use enforcer::decision_log::DecisionLog;
use enforcer::examples::{EXAMPLE_POLICY, load_example_rules};
use enforcer::pipeline::{Pipeline, PipelineOptions};
use enforcer::policy::Policy;
use enforcer::runtime::Runtime;
use enforcer::server::{ServerOptions, serve};
use tonic::transport::Channel;

/// A running server.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its decision log.
    pub log: Arc<DecisionLog>,
    /// Its pipeline.
    pub pipeline: Arc<Pipeline>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<Result<(), enforcer::server::ServeError>>>,
}

impl TestServer {
    /// The example rules and policy, with `options` for the pipeline and
    /// `server` for the server, on port 0.
    pub async fn start(options: PipelineOptions, server: ServerOptions) -> TestServer {
        let runtime = Runtime::new().unwrap();
        let rules = load_example_rules(&runtime).unwrap_or_else(|(n, e)| panic!("{n}: {e}"));
        let policy = Policy::parse(EXAMPLE_POLICY).unwrap();
        let pipeline = Arc::new(Pipeline::new(rules, policy, options).unwrap());
        Self::start_with(pipeline, 10_000, server).await
    }

    /// Serve `pipeline` with a decision log of `log_capacity`.
    pub async fn start_with(
        pipeline: Arc<Pipeline>,
        log_capacity: usize,
        server: ServerOptions,
    ) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(DecisionLog::new(log_capacity));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(serve(
            listener,
            pipeline.clone(),
            log.clone(),
            server,
            async move {
                let _ = stopped.await;
            },
        ));
        TestServer {
            addr,
            log,
            pipeline,
            stop: Some(stop),
            done: Some(done),
        }
    }

    /// `http://` and the address.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A connected channel.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .unwrap()
            .connect()
            .await
            .expect("connect to the test server")
    }

    /// A connected data-plane client.
    pub async fn client(&self) -> EnforcementClient<Channel> {
        EnforcementClient::new(self.channel().await).max_decoding_message_size(64 << 20)
    }

    /// Ask the server to stop and wait until it has.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            done.await.unwrap().expect("the server stopped cleanly");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A wire event from an engine event.
pub fn wire(event: &enforcer::event::Event) -> v1::Event {
    enforcer::api::event_to_proto(event)
}
