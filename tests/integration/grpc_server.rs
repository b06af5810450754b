//! A real server on a free loopback port for the gRPC tests, and a client
//! connected to it. The server runs on its own runtime thread and shuts
//! down gracefully when the handle is dropped or `shutdown` is called.

use std::net::SocketAddr;
use std::sync::Arc;

use enforcer::api::v1;
use enforcer::api::v1::admin_client::AdminClient;
use enforcer::api::v1::enforcement_client::EnforcementClient;
use enforcer::decision_log::DecisionLog;
use enforcer::examples::{EXAMPLE_POLICY, example_sources, load_example_rules};
use enforcer::pipeline::{Pipeline, PipelineOptions};
use enforcer::policy::Policy;
use enforcer::registry::{Provenance, Registry, RegistrySettings, RuleSource, SignaturePolicy};
use enforcer::runtime::Runtime;
use enforcer::server::admin::{AdminToken, serve_admin};
use enforcer::server::{ServerOptions, serve};
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
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

/// Send `requests` on one `EvaluateStream` and collect every response;
/// the stream itself must not fail.
pub async fn evaluate_stream_whole(
    client: &mut EnforcementClient<Channel>,
    requests: Vec<v1::EvaluateRequest>,
) -> Vec<v1::EvaluateStreamResponse> {
    use tokio_stream::StreamExt;
    client
        .evaluate_stream(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner()
        .map(|r| r.expect("the stream does not fail"))
        .collect()
        .await
}

/// A wire event from an engine event.
pub fn wire(event: &enforcer::event::Event) -> v1::Event {
    enforcer::api::event_to_proto(event)
}

/// The token the test control plane accepts.
pub const TEST_TOKEN: &str = "test-token-0123456789";

/// A data plane and a control plane over one registry, as `enforcer serve`
/// runs them: the example rules (built in) under the example policy.
pub struct TestEngine {
    /// The data plane.
    pub server: TestServer,
    /// The registry the control plane changes.
    pub registry: Arc<Registry>,
    /// Where the control plane listens.
    pub admin_addr: SocketAddr,
    stop_admin: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A control-plane client that presents a token.
pub type TestAdmin = AdminClient<InterceptedService<Channel, BearerToken>>;

/// Adds `authorization: Bearer <token>` to every call (or nothing).
#[derive(Clone)]
pub struct BearerToken(pub Option<String>);

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(token) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        Ok(request)
    }
}

impl TestEngine {
    /// Start with the example rules, admitting uploads under `signatures`.
    pub async fn start(signatures: SignaturePolicy) -> TestEngine {
        Self::start_with(signatures, example_sources(), EXAMPLE_POLICY.to_string()).await
    }

    /// Start with these rules and this policy.
    pub async fn start_with(
        signatures: SignaturePolicy,
        sources: Vec<(RuleSource, Provenance)>,
        policy: String,
    ) -> TestEngine {
        let options = PipelineOptions {
            max_future_skew_ms: None,
            ..PipelineOptions::default()
        };
        Self::start_with_options(signatures, sources, policy, options).await
    }

    /// Start with these rules, this policy and these pipeline options.
    pub async fn start_with_options(
        signatures: SignaturePolicy,
        sources: Vec<(RuleSource, Provenance)>,
        policy: String,
        options: PipelineOptions,
    ) -> TestEngine {
        let registry = tokio::task::spawn_blocking(move || {
            Registry::start(
                Runtime::new().unwrap(),
                RegistrySettings {
                    signatures,
                    audit_capacity: 1000,
                    state_dir: None,
                },
                sources,
                policy,
                options,
            )
            .unwrap_or_else(|e| panic!("{e}"))
        })
        .await
        .unwrap();
        let registry = Arc::new(registry);
        let server = TestServer::start_with(
            registry.pipeline().clone(),
            100_000,
            ServerOptions::default(),
        )
        .await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin_addr = listener.local_addr().unwrap();
        let (stop_admin, stopped) = tokio::sync::oneshot::channel::<()>();
        let tokens = vec![AdminToken {
            name: "tester".into(),
            token: TEST_TOKEN.into(),
        }];
        tokio::spawn(serve_admin(
            listener,
            registry.clone(),
            tokens,
            async move {
                let _ = stopped.await;
            },
        ));
        TestEngine {
            server,
            registry,
            admin_addr,
            stop_admin: Some(stop_admin),
        }
    }

    /// A control-plane client presenting the test token.
    pub async fn admin(&self) -> TestAdmin {
        self.admin_presenting(Some(TEST_TOKEN)).await
    }

    /// A control-plane client presenting `token` (or none).
    pub async fn admin_presenting(&self, token: Option<&str>) -> TestAdmin {
        let channel = Channel::from_shared(format!("http://{}", self.admin_addr))
            .unwrap()
            .connect()
            .await
            .expect("connect to the control plane");
        AdminClient::with_interceptor(channel, BearerToken(token.map(String::from)))
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20)
    }
}

impl Drop for TestEngine {
    fn drop(&mut self) {
        if let Some(stop) = self.stop_admin.take() {
            let _ = stop.send(());
        }
    }
}
