//! Access control and TLS over real connections: every method refused to a
//! client without its role (and nothing done), rule authors kept from what
//! changes what enforces, TLS and mutual-TLS handshakes with certificates
//! made here, plaintext refused by a TLS listener, and clients named by
//! their certificates.

use std::net::SocketAddr;
use std::sync::Arc;

use enforcer::access::tls::{ClientCertificates, ServerTls};
use enforcer::access::{AccessConfig, AccessControl, ClientConfig, DataPlaneAccess, Role};
use enforcer::api::v1;
use enforcer::api::v1::admin_client::AdminClient;
use enforcer::api::v1::enforcement_client::EnforcementClient;
use enforcer::decision_log::DecisionLog;
use enforcer::examples::{EXAMPLE_POLICY, example_sources};
use enforcer::pipeline::PipelineOptions;
use enforcer::registry::{Registry, RegistrySettings, SignaturePolicy};
use enforcer::runtime::Runtime;
use enforcer::server::admin::{AdminToken, serve_control_plane};
use enforcer::server::{ServerOptions, serve};
use enforcer_examples::builds::variant;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::common::{forward, plugin};
use crate::grpc_server::{BearerToken, wire};

const EVALUATOR: &str = "evaluator-token-0123456789";
const READER: &str = "reader-token-0123456789";
const REVIEWER: &str = "reviewer-token-0123456789";
const AUTHOR: &str = "author-token-0123456789";
const OWNER: &str = "owner-token-0123456789";

/// The name the server's certificate carries, and clients expect.
const SERVER_NAME: &str = "enforcer.test";

/// A certificate authority made for one test.
struct Authority {
    pem: String,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, in PEM.
struct Leaf {
    certificate: String,
    key: String,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Authority {
            pem: issuer.pem(),
            issuer,
        }
    }

    /// A certificate for `dns_name`, for a server or a client.
    fn leaf(&self, dns_name: &str, usage: ExtendedKeyUsagePurpose) -> Leaf {
        let mut params = CertificateParams::new(vec![dns_name.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, dns_name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            certificate: certificate.pem(),
            key: key.serialize_pem(),
        }
    }

    fn server(&self) -> Leaf {
        self.leaf(SERVER_NAME, ExtendedKeyUsagePurpose::ServerAuth)
    }

    fn client(&self, dns_name: &str) -> Leaf {
        self.leaf(dns_name, ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// A TLS listener with a certificate this authority signed; mutual
    /// when `clients` signs client certificates.
    fn server_tls(&self, clients: Option<&Authority>, mode: ClientCertificates) -> ServerTls {
        let server = self.server();
        ServerTls::from_pem(
            server.certificate.into_bytes(),
            server.key.into_bytes(),
            clients.map(|ca| ca.pem.clone().into_bytes()),
            mode,
        )
        .unwrap()
    }
}

fn token_client(name: &str, token: &str, roles: &[Role]) -> ClientConfig {
    ClientConfig {
        name: name.into(),
        token: Some(token.into()),
        certificate_name: None,
        roles: roles.to_vec(),
        events_per_second: None,
    }
}

fn certificate_client(name: &str, dns_name: &str, roles: &[Role]) -> ClientConfig {
    ClientConfig {
        name: name.into(),
        token: None,
        certificate_name: Some(dns_name.into()),
        roles: roles.to_vec(),
        events_per_second: None,
    }
}

/// The example engine with both listeners under one access configuration.
struct SecuredEngine {
    data: SocketAddr,
    control: SocketAddr,
    log: Arc<DecisionLog>,
    registry: Arc<Registry>,
    stop: Option<tokio::sync::watch::Sender<bool>>,
}

impl Drop for SecuredEngine {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}

impl SecuredEngine {
    /// The ids of the events decided, in the order they were logged.
    fn logged(&self) -> Vec<String> {
        self.log
            .read_after(0, 100)
            .unwrap()
            .into_iter()
            .map(|logged| logged.decision.event.id.to_string())
            .collect()
    }

    async fn start(access: AccessConfig, tls: Option<ServerTls>) -> SecuredEngine {
        access.check(16).expect("a valid [access]");
        let owner = AdminToken {
            name: "owner".into(),
            token: OWNER.into(),
        };
        let access = Arc::new(AccessControl::new(&access, &[owner]));
        let registry = tokio::task::spawn_blocking(|| {
            Registry::start(
                Runtime::new().unwrap(),
                RegistrySettings {
                    signatures: SignaturePolicy {
                        allow_unsigned: true,
                        ..SignaturePolicy::default()
                    },
                    audit_capacity: 100,
                    state_dir: None,
                },
                example_sources(),
                EXAMPLE_POLICY.to_string(),
                PipelineOptions {
                    max_future_skew_ms: None,
                    ..PipelineOptions::default()
                },
            )
            .unwrap_or_else(|e| panic!("{e}"))
        })
        .await
        .unwrap();
        let registry = Arc::new(registry);
        let log = Arc::new(DecisionLog::new(1000));
        let data = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let control = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (data_addr, control_addr) = (data.local_addr().unwrap(), control.local_addr().unwrap());
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let until_stopped = |mut stopping: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        };
        let options = ServerOptions {
            access: access.clone(),
            tls: tls.clone(),
            ..ServerOptions::default()
        };
        tokio::spawn(serve(
            data,
            registry.pipeline().clone(),
            log.clone(),
            options,
            until_stopped(stopping.clone()),
        ));
        tokio::spawn(serve_control_plane(
            control,
            registry.clone(),
            access,
            tls,
            until_stopped(stopping),
        ));
        SecuredEngine {
            data: data_addr,
            control: control_addr,
            log,
            registry,
            stop: Some(stop),
        }
    }
}

/// A channel to `addr`: plaintext, or TLS trusting `authority` and
/// presenting `identity` when given.
async fn channel(
    addr: SocketAddr,
    tls: Option<(&Authority, Option<&Leaf>)>,
) -> Result<Channel, tonic::transport::Error> {
    let Some((authority, identity)) = tls else {
        return Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await;
    };
    let mut config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&authority.pem))
        .domain_name(SERVER_NAME);
    if let Some(leaf) = identity {
        config = config.identity(Identity::from_pem(&leaf.certificate, &leaf.key));
    }
    Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(config)?
        .connect()
        .await
}

type Data = EnforcementClient<InterceptedService<Channel, BearerToken>>;
type Control = AdminClient<InterceptedService<Channel, BearerToken>>;

async fn data_client(engine: &SecuredEngine, token: Option<&str>) -> Data {
    let channel = channel(engine.data, None).await.unwrap();
    EnforcementClient::with_interceptor(channel, BearerToken(token.map(String::from)))
}

async fn control_client(engine: &SecuredEngine, token: &str) -> Control {
    let channel = channel(engine.control, None).await.unwrap();
    AdminClient::with_interceptor(channel, BearerToken(Some(token.into())))
        .max_encoding_message_size(64 << 20)
}

fn event(id: &str) -> v1::EvaluateRequest {
    v1::EvaluateRequest {
        event: Some(wire(&forward(id, "acct-1", 2, 1_700_000_000_000))),
        ..Default::default()
    }
}

/// Whether a call failed in the connection (a handshake refused, the
/// connection closed), not with an answer from the engine.
fn refused_by_transport(status: &tonic::Status) -> bool {
    std::error::Error::source(status)
        .is_some_and(|source| source.downcast_ref::<tonic::transport::Error>().is_some())
}

/// The status of a call: `Code::Ok` when it succeeded.
fn code<T>(result: Result<T, tonic::Status>) -> Code {
    result.err().map_or(Code::Ok, |status| status.code())
}

/// What each data-plane method answers the client holding `token`: the
/// access check's refusal, or whatever the method itself says.
async fn data_plane_codes(
    engine: &SecuredEngine,
    token: Option<&str>,
    tag: &str,
) -> Vec<(&'static str, Code)> {
    let mut client = data_client(engine, token).await;
    let evaluate = code(client.evaluate(event(&format!("{tag}-unary"))).await);
    let stream = code(
        client
            .evaluate_stream(tokio_stream::iter(vec![event(&format!("{tag}-stream"))]))
            .await,
    );
    let get = code(
        client
            .get_decision(v1::GetDecisionRequest {
                decision_id: "no-such-decision".into(),
            })
            .await,
    );
    let list = code(
        client
            .list_decisions(v1::ListDecisionsRequest::default())
            .await,
    );
    let shadow = code(
        client
            .get_shadow_report(v1::ShadowReportRequest::default())
            .await,
    );
    let watch = code(
        client
            .watch_decisions(v1::WatchDecisionsRequest::default())
            .await,
    );
    let overturns = code(
        client
            .watch_overturns(v1::WatchOverturnsRequest::default())
            .await,
    );
    let export = code(
        client
            .export_reports(v1::ExportReportsRequest::default())
            .await,
    );
    let labels = code(
        client
            .submit_labels(v1::SubmitLabelsRequest::default())
            .await,
    );
    vec![
        ("Evaluate", evaluate),
        ("EvaluateStream", stream),
        ("GetDecision", get),
        ("ListDecisions", list),
        ("GetShadowReport", shadow),
        ("WatchDecisions", watch),
        ("WatchOverturns", overturns),
        ("ExportReports", export),
        ("SubmitLabels", labels),
    ]
}

/// The role each data-plane method needs.
fn needed(method: &str) -> Role {
    match method {
        "Evaluate" | "EvaluateStream" => Role::Evaluate,
        "SubmitLabels" => Role::Review,
        _ => Role::ReadDecisions,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_data_plane_method_is_refused_without_its_role() {
    let access = AccessConfig {
        data_plane: DataPlaneAccess::Authenticated,
        clients: vec![
            token_client("gateway", EVALUATOR, &[Role::Evaluate]),
            token_client("analyst", READER, &[Role::ReadDecisions]),
            token_client("reviewer", REVIEWER, &[Role::Review]),
        ],
    };
    let engine = SecuredEngine::start(access, None).await;
    // Who calls, the role they hold, and how a call without it is refused:
    // a known client lacks permission; an unknown one is not authenticated.
    for (token, holds, refusal, tag) in [
        (
            Some(EVALUATOR),
            Some(Role::Evaluate),
            Code::PermissionDenied,
            "gateway",
        ),
        (
            Some(READER),
            Some(Role::ReadDecisions),
            Code::PermissionDenied,
            "analyst",
        ),
        (
            Some(REVIEWER),
            Some(Role::Review),
            Code::PermissionDenied,
            "reviewer",
        ),
        (Some(OWNER), None, Code::PermissionDenied, "owner"),
        (
            Some("a-token-nobody-holds-0123"),
            None,
            Code::Unauthenticated,
            "stranger",
        ),
        (None, None, Code::Unauthenticated, "anonymous"),
    ] {
        for (method, answered) in data_plane_codes(&engine, token, tag).await {
            if holds == Some(needed(method)) {
                assert!(
                    !matches!(answered, Code::PermissionDenied | Code::Unauthenticated),
                    "{tag} holds the role for {method}, and was answered {answered:?}"
                );
            } else {
                assert_eq!(answered, refusal, "{tag} calling {method}");
            }
        }
    }
    // Only the gateway's two events were decided.
    let mut logged = engine.logged();
    logged.sort();
    assert_eq!(logged, ["gateway-stream", "gateway-unary"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_data_plane_asks_nothing_and_the_control_plane_always_asks() {
    let engine = SecuredEngine::start(AccessConfig::default(), None).await;
    let mut anonymous = data_client(&engine, None).await;
    anonymous
        .evaluate(event("open"))
        .await
        .expect("an open data plane decides for anyone");
    let channel = channel(engine.control, None).await.unwrap();
    let refused = AdminClient::new(channel)
        .list_rules(v1::ListRulesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(
        refused.message().contains("no credentials"),
        "{}",
        refused.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_author_cannot_change_what_enforces() {
    let access = AccessConfig {
        clients: vec![token_client("author", AUTHOR, &[Role::AuthorRules])],
        ..AccessConfig::default()
    };
    let engine = SecuredEngine::start(access, None).await;
    let mut author = control_client(&engine, AUTHOR).await;
    let mut owner = control_client(&engine, OWNER).await;
    let rule = "mass-forwarding";
    let policy = author
        .get_policy(v1::GetPolicyRequest::default())
        .await
        .expect("an author reads the policy")
        .into_inner();
    author
        .list_rules(v1::ListRulesRequest::default())
        .await
        .expect("an author lists the rules");
    let upload = |tag: &str, activation: v1::Activation| v1::UploadRuleRequest {
        wasm: variant(&plugin(rule), tag),
        activation: activation as i32,
        rollout_percent: 20,
        ..Default::default()
    };
    let shadowed = author
        .upload_rule(upload("shadow", v1::Activation::Shadow))
        .await
        .expect("an author uploads a build to run in shadow")
        .into_inner();
    let candidate = shadowed
        .versions
        .iter()
        .find(|v| v.standing() == v1::Standing::Candidate)
        .expect("the upload is the candidate")
        .sha256
        .clone();
    let audit_before = engine.registry.audit().list(None, 100).len();
    let set_mode = |mode: v1::VersionMode| v1::SetVersionModeRequest {
        rule: rule.into(),
        sha256: candidate.clone(),
        mode: mode as i32,
        rollout_percent: 0,
    };
    let refusals = [
        (
            "activate",
            code(
                author
                    .upload_rule(upload("activate", v1::Activation::Activate))
                    .await,
            ),
        ),
        (
            "rollout",
            code(
                author
                    .upload_rule(upload("rollout", v1::Activation::Rollout))
                    .await,
            ),
        ),
        (
            "enforce",
            code(
                author
                    .set_version_mode(set_mode(v1::VersionMode::Enforce))
                    .await,
            ),
        ),
        (
            "disable",
            code(
                author
                    .set_version_mode(set_mode(v1::VersionMode::Disabled))
                    .await,
            ),
        ),
        (
            "promote",
            code(author.promote(v1::RuleRequest { rule: rule.into() }).await),
        ),
        (
            "rollback",
            code(author.rollback(v1::RuleRequest { rule: rule.into() }).await),
        ),
        (
            "policy",
            code(
                author
                    .replace_policy(v1::ReplacePolicyRequest {
                        toml: policy.toml.clone(),
                    })
                    .await,
            ),
        ),
        (
            "delete bank",
            code(
                author
                    .delete_bank(v1::DeleteBankRequest {
                        bank: "demo".into(),
                    })
                    .await,
            ),
        ),
    ];
    for (step, answered) in refusals {
        assert_eq!(answered, Code::PermissionDenied, "the author's {step}");
    }
    assert_eq!(
        engine.registry.audit().list(None, 100).len(),
        audit_before,
        "no refused step reached the registry"
    );
    let status = author
        .list_rules(v1::ListRulesRequest { rule: rule.into() })
        .await
        .unwrap()
        .into_inner()
        .rules
        .remove(0);
    let standing = |sha: &str| {
        status
            .versions
            .iter()
            .find(|v| v.sha256 == sha)
            .map(|v| v.standing())
    };
    assert_eq!(standing(&candidate), Some(v1::Standing::Candidate));
    author
        .set_version_mode(set_mode(v1::VersionMode::Shadow))
        .await
        .expect("an author keeps a candidate in shadow");
    // The owner may do what the author may not.
    owner
        .promote(v1::RuleRequest { rule: rule.into() })
        .await
        .expect("the owner promotes");
    owner
        .replace_policy(v1::ReplacePolicyRequest { toml: policy.toml })
        .await
        .expect("the owner replaces the policy");
    let refused = author
        .rollback(v1::RuleRequest { rule: rule.into() })
        .await
        .unwrap_err();
    assert!(
        refused.message().contains("`administer`") && refused.message().contains("author"),
        "{}",
        refused.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_both_listeners_and_plaintext_is_refused() {
    let authority = Authority::new("enforcer test CA");
    let tls = authority.server_tls(None, ClientCertificates::Required);
    let access = AccessConfig::default();
    let engine = SecuredEngine::start(access, Some(tls)).await;

    let secure = channel(engine.data, Some((&authority, None)))
        .await
        .unwrap();
    EnforcementClient::new(secure)
        .evaluate(event("over-tls"))
        .await
        .expect("decided over TLS");
    let secure = channel(engine.control, Some((&authority, None)))
        .await
        .unwrap();
    AdminClient::with_interceptor(secure, BearerToken(Some(OWNER.into())))
        .list_rules(v1::ListRulesRequest::default())
        .await
        .expect("the control plane over TLS");

    for addr in [engine.data, engine.control] {
        let plaintext = match channel(addr, None).await {
            Err(_) => continue, // refused at connection: as good
            Ok(channel) => channel,
        };
        let answered = EnforcementClient::new(plaintext)
            .evaluate(event("in-the-clear"))
            .await;
        let status = answered.expect_err("a TLS listener answers no plaintext call");
        assert!(refused_by_transport(&status), "{status:?}");
    }
    // A client that does not trust the server's CA stops at the handshake.
    let stranger = Authority::new("another CA");
    let untrusted = channel(engine.data, Some((&stranger, None))).await;
    if let Ok(untrusted) = untrusted {
        EnforcementClient::new(untrusted)
            .evaluate(event("untrusted"))
            .await
            .expect_err("a server the client cannot verify");
    }
    let logged = engine.logged();
    assert_eq!(logged, ["over-tls"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_names_the_client_by_its_certificate() {
    let authority = Authority::new("enforcer test CA");
    let clients = Authority::new("clients CA");
    let tls = authority.server_tls(Some(&clients), ClientCertificates::Required);
    let access = AccessConfig {
        data_plane: DataPlaneAccess::Authenticated,
        clients: vec![
            certificate_client("gateway", "gateway.clients.test", &[Role::Evaluate]),
            certificate_client("analyst", "analyst.clients.test", &[Role::ReadDecisions]),
        ],
    };
    let engine = SecuredEngine::start(access, Some(tls)).await;
    let connect = |leaf: Option<Leaf>| {
        let authority = &authority;
        let addr = engine.data;
        async move {
            channel(addr, Some((authority, leaf.as_ref())))
                .await
                .map(EnforcementClient::new)
        }
    };

    let mut gateway = connect(Some(clients.client("gateway.clients.test")))
        .await
        .unwrap();
    let decided = gateway
        .evaluate(event("by-certificate"))
        .await
        .expect("the gateway's certificate names a client that evaluates")
        .into_inner();
    let decision_id = decided.decision.unwrap().id;
    assert_eq!(
        code(
            gateway
                .list_decisions(v1::ListDecisionsRequest::default())
                .await
        ),
        Code::PermissionDenied
    );
    let mut analyst = connect(Some(clients.client("analyst.clients.test")))
        .await
        .unwrap();
    let read = analyst
        .get_decision(v1::GetDecisionRequest {
            decision_id: decision_id.clone(),
        })
        .await
        .expect("the analyst reads decisions")
        .into_inner();
    assert_eq!(read.id, decision_id);
    let refused = analyst.evaluate(event("by-analyst")).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("analyst"),
        "{}",
        refused.message()
    );

    // Signed by the right CA, but naming no client.
    let mut stranger = connect(Some(clients.client("stranger.clients.test")))
        .await
        .unwrap();
    let refused = stranger.evaluate(event("by-stranger")).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(
        refused
            .message()
            .contains("certificate names no known client"),
        "{}",
        refused.message()
    );

    // No certificate, or one the client CA did not sign: no connection.
    let forged = Authority::new("forger CA").client("gateway.clients.test");
    for (what, leaf) in [
        ("no certificate", None),
        ("a forged certificate", Some(forged)),
    ] {
        if let Ok(mut client) = connect(leaf).await {
            let status = client
                .evaluate(event("refused-at-handshake"))
                .await
                .expect_err(what);
            assert!(refused_by_transport(&status), "{what}: {status:?}");
        }
    }
    let logged = engine.logged();
    assert_eq!(logged, ["by-certificate"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_client_certificates_let_token_holders_in() {
    let authority = Authority::new("enforcer test CA");
    let clients = Authority::new("clients CA");
    let tls = authority.server_tls(Some(&clients), ClientCertificates::Optional);
    let access = AccessConfig {
        data_plane: DataPlaneAccess::Authenticated,
        clients: vec![
            certificate_client("gateway", "gateway.clients.test", &[Role::Evaluate]),
            token_client("batch", EVALUATOR, &[Role::Evaluate]),
        ],
    };
    let engine = SecuredEngine::start(access, Some(tls)).await;
    let with_certificate = channel(
        engine.data,
        Some((&authority, Some(&clients.client("gateway.clients.test")))),
    )
    .await
    .unwrap();
    EnforcementClient::new(with_certificate)
        .evaluate(event("certified"))
        .await
        .expect("a client with a certificate");
    let without = channel(engine.data, Some((&authority, None)))
        .await
        .unwrap();
    EnforcementClient::with_interceptor(without.clone(), BearerToken(Some(EVALUATOR.into())))
        .evaluate(event("token"))
        .await
        .expect("a client with a token and no certificate");
    let refused = EnforcementClient::new(without)
        .evaluate(event("neither"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    // A certificate the client CA did not sign still fails the handshake.
    let forged = Authority::new("forger CA").client("gateway.clients.test");
    if let Ok(forged) = channel(engine.data, Some((&authority, Some(&forged)))).await {
        let status = EnforcementClient::new(forged)
            .evaluate(event("forged"))
            .await
            .unwrap_err();
        assert!(refused_by_transport(&status), "{status:?}");
    }
    assert_eq!(engine.log.len(), 2);
}

#[test]
fn unusable_certificates_are_refused_when_loaded() {
    let authority = Authority::new("enforcer test CA");
    let server = authority.server();
    let other = authority.server();
    let garbage = ServerTls::from_pem(
        server.certificate.clone().into_bytes(),
        b"not a key".to_vec(),
        None,
        ClientCertificates::Required,
    )
    .unwrap_err();
    assert!(garbage.to_string().contains("[tls]"), "{garbage}");
    // A key that is not the certificate's.
    let mismatched = ServerTls::from_pem(
        server.certificate.into_bytes(),
        other.key.into_bytes(),
        None,
        ClientCertificates::Required,
    );
    assert!(
        mismatched.is_err(),
        "a key that does not match its certificate"
    );
}
