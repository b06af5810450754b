//! Who may call what: clients known by a bearer token or by a name in
//! their TLS client certificate, each holding roles, and the roles each gRPC
//! method needs. [`layer`] enforces it on both listeners before a request
//! reaches a service; [`tls`] serves both listeners over TLS or mTLS.
//!
//! Roles follow the people and services that call the engine:
//!
//! | Role | Who | May |
//! |---|---|---|
//! | `evaluate` | enforcement services | `Evaluate`, `EvaluateStream` |
//! | `read_decisions` | analysts, reporting | read decisions, overturns, shadow reports, clearing-house reports |
//! | `review` | reviewers | `SubmitLabels`: ground truth and won appeals |
//! | `author_rules` | policy authors | read the control plane, upload rules and try them in shadow |
//! | `administer` | policy owners | everything on the control plane, including what changes what enforces |

pub mod layer;
pub mod tls;

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use tonic::Status;
use tonic::transport::CertificateDer;

use crate::server::admin::AdminToken;

/// What a client may do.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Send events to be decided.
    Evaluate,
    /// Read decisions and what follows from them.
    ReadDecisions,
    /// Submit ground-truth labels and appeal outcomes.
    Review,
    /// Read the control plane, upload rule builds and run them in shadow.
    AuthorRules,
    /// Change what enforces: activate, promote, roll back, retire, the
    /// policy, the hash banks.
    Administer,
}

impl Role {
    /// Every role, in order.
    pub const ALL: [Role; 5] = [
        Role::Evaluate,
        Role::ReadDecisions,
        Role::Review,
        Role::AuthorRules,
        Role::Administer,
    ];

    /// The role's name as the configuration spells it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Evaluate => "evaluate",
            Role::ReadDecisions => "read_decisions",
            Role::Review => "review",
            Role::AuthorRules => "author_rules",
            Role::Administer => "administer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the control plane's `[[admin.tokens]]` hold: full control.
const ADMIN_TOKEN_ROLES: [Role; 2] = [Role::AuthorRules, Role::Administer];

/// Who may call a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Anyone who can connect: health checks and reflection, which a load
    /// balancer or a debugging tool calls without credentials.
    Open,
    /// A known client holding any one of these roles.
    AnyOf(&'static [Role]),
}

const EVALUATE: Need = Need::AnyOf(&[Role::Evaluate]);
const READ_DECISIONS: Need = Need::AnyOf(&[Role::ReadDecisions]);
const REVIEW: Need = Need::AnyOf(&[Role::Review]);
/// Reading the control plane, uploading, and shadow runs; what a call of
/// these may change further (activating a build, enforcing a version) is
/// checked by the control plane against [`Role::Administer`].
const AUTHOR: Need = Need::AnyOf(&[Role::AuthorRules, Role::Administer]);
const ADMINISTER: Need = Need::AnyOf(&[Role::Administer]);

/// Every method of the engine's own services and what it needs. A test
/// checks that every method of the API is here.
const METHODS: &[(&str, Need)] = &[
    ("/enforcement.v1.Enforcement/Evaluate", EVALUATE),
    ("/enforcement.v1.Enforcement/EvaluateStream", EVALUATE),
    ("/enforcement.v1.Enforcement/GetDecision", READ_DECISIONS),
    ("/enforcement.v1.Enforcement/ListDecisions", READ_DECISIONS),
    (
        "/enforcement.v1.Enforcement/GetShadowReport",
        READ_DECISIONS,
    ),
    ("/enforcement.v1.Enforcement/WatchDecisions", READ_DECISIONS),
    ("/enforcement.v1.Enforcement/WatchOverturns", READ_DECISIONS),
    ("/enforcement.v1.Enforcement/ExportReports", READ_DECISIONS),
    ("/enforcement.v1.Enforcement/SubmitLabels", REVIEW),
    ("/enforcement.v1.Admin/ListRules", AUTHOR),
    ("/enforcement.v1.Admin/GetPolicy", AUTHOR),
    ("/enforcement.v1.Admin/ListAudit", AUTHOR),
    ("/enforcement.v1.Admin/ListBanks", AUTHOR),
    ("/enforcement.v1.Admin/UploadRule", AUTHOR),
    ("/enforcement.v1.Admin/SetVersionMode", AUTHOR),
    ("/enforcement.v1.Admin/Promote", ADMINISTER),
    ("/enforcement.v1.Admin/Rollback", ADMINISTER),
    ("/enforcement.v1.Admin/RetireRule", ADMINISTER),
    ("/enforcement.v1.Admin/ReplacePolicy", ADMINISTER),
    ("/enforcement.v1.Admin/ReplaceBank", ADMINISTER),
    ("/enforcement.v1.Admin/AddBankEntries", ADMINISTER),
    ("/enforcement.v1.Admin/RemoveBankEntries", ADMINISTER),
    ("/enforcement.v1.Admin/DeleteBank", ADMINISTER),
];

/// Services anyone may call.
const OPEN_SERVICES: [&str; 3] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// What the method at `path` (`/package.Service/Method`) needs. A path
/// that names none of the engine's methods needs [`Role::Administer`]: a
/// method added to the API without a line above is closed, not open.
pub fn method_need(path: &str) -> Need {
    if OPEN_SERVICES.iter().any(|open| path.starts_with(open)) {
        return Need::Open;
    }
    METHODS
        .iter()
        .find(|(method, _)| *method == path)
        .map_or(ADMINISTER, |(_, need)| *need)
}

/// Every method [`method_need`] knows, for tests and documentation.
pub fn known_methods() -> impl Iterator<Item = (&'static str, Need)> {
    METHODS.iter().copied()
}

/// One `[[access.clients]]` entry: a client, how it proves who it is, and
/// its roles.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Who it is, as logs and the audit trail name it.
    pub name: String,
    /// A bearer token it presents in `authorization: Bearer <token>`.
    #[serde(default)]
    pub token: Option<String>,
    /// A DNS name its TLS client certificate carries (a subjectAltName),
    /// under the `[tls] client_ca` that signed it.
    #[serde(default)]
    pub certificate_name: Option<String>,
    /// What it may do.
    pub roles: Vec<Role>,
    /// Its own rate limit, in events per second (0: none), in place of
    /// `[limits] client_events_per_second`.
    #[serde(default)]
    pub events_per_second: Option<u32>,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret never reaches a log or an error message.
        f.debug_struct("ClientConfig")
            .field("name", &self.name)
            .field("token", &self.token.as_ref().map(|_| "****"))
            .field("certificate_name", &self.certificate_name)
            .field("roles", &self.roles)
            .field("events_per_second", &self.events_per_second)
            .finish()
    }
}

/// Whether the data plane asks who is calling.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DataPlaneAccess {
    /// Anyone who can connect may call it: for a data plane reachable only
    /// by its callers (a private network, a sidecar), and for local use.
    #[default]
    Open,
    /// Every call must come from a known client holding the method's role.
    Authenticated,
}

/// `[access]`: the clients and what the data plane asks of them. The
/// control plane always asks.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// Whether data-plane calls must come from a known client.
    pub data_plane: DataPlaneAccess,
    /// The known clients.
    pub clients: Vec<ClientConfig>,
}

impl AccessConfig {
    /// A mistake in the section: the key and what is wrong with it.
    pub fn check(&self, min_token_chars: usize) -> Result<(), (&'static str, String)> {
        for (index, client) in self.clients.iter().enumerate() {
            let at = |message: String| {
                (
                    "clients",
                    format!("[{index}] ({}): {message}", client.name.trim()),
                )
            };
            if client.name.trim().is_empty() {
                return Err(("clients", format!("[{index}].name: is empty")));
            }
            if client.token.is_none() && client.certificate_name.is_none() {
                return Err(at(
                    "give a `token` or a `certificate_name`: with neither, no call can be this client"
                        .into(),
                ));
            }
            if let Some(weakness) = client
                .token
                .as_deref()
                .and_then(|t| weak_token(t, min_token_chars))
            {
                return Err(at(format!("the token {weakness}")));
            }
            if let Some(name) = &client.certificate_name
                && rustls_pki_types::DnsName::try_from(name.as_str()).is_err()
            {
                return Err(at(format!("certificate_name `{name}` is not a DNS name")));
            }
            if client.roles.is_empty() {
                return Err(at("has no roles".into()));
            }
        }
        let serves_data_plane = self.clients.iter().any(|client| {
            client
                .roles
                .iter()
                .any(|role| matches!(role, Role::Evaluate | Role::ReadDecisions | Role::Review))
        });
        if self.data_plane == DataPlaneAccess::Authenticated && !serves_data_plane {
            return Err((
                "data_plane",
                "is `authenticated`, but no client holds `evaluate`, `read_decisions` or `review`: \
                 every data-plane call would be refused"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// A known client as checked on each call.
struct Client {
    name: Arc<str>,
    token: Option<Vec<u8>>,
    certificate_name: Option<rustls_pki_types::ServerName<'static>>,
    roles: Vec<Role>,
}

/// The caller of a request, once known: attached to the request for the
/// services behind the access check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The client's name.
    pub identity: Arc<str>,
    /// Its roles.
    pub roles: Vec<Role>,
}

impl Grant {
    /// Whether the caller holds `role`.
    pub fn holds(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// `PERMISSION_DENIED` unless the caller holds `role`, for `what`.
    pub fn require(&self, role: Role, what: &str) -> Result<(), Status> {
        if self.holds(role) {
            return Ok(());
        }
        Err(Status::permission_denied(format!(
            "client `{}` may not {what}: that needs the role `{role}` (it holds {})",
            self.identity,
            roles_list(&self.roles)
        )))
    }
}

fn roles_list(roles: &[Role]) -> String {
    if roles.is_empty() {
        return "none".into();
    }
    roles
        .iter()
        .map(|role| format!("`{role}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which listener a check is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plane {
    /// `enforcement.v1.Enforcement`, health and reflection.
    Data,
    /// `enforcement.v1.Admin`.
    Control,
}

/// The clients and the rules for both listeners.
pub struct AccessControl {
    clients: Vec<Client>,
    data_plane: DataPlaneAccess,
}

impl fmt::Debug for AccessControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessControl")
            .field("clients", &self.clients.len())
            .field("data_plane", &self.data_plane)
            .finish()
    }
}

impl Default for AccessControl {
    /// An open data plane and no clients: the control plane refuses every
    /// call.
    fn default() -> Self {
        AccessControl::new(&AccessConfig::default(), &[])
    }
}

impl AccessControl {
    /// The clients of `config`, and the control plane's tokens as clients
    /// with full control of it. The configuration is checked already.
    pub fn new(config: &AccessConfig, admin_tokens: &[AdminToken]) -> Self {
        let listed = config.clients.iter().map(|client| Client {
            name: client.name.as_str().into(),
            token: client.token.as_ref().map(|t| t.as_bytes().to_vec()),
            certificate_name: client
                .certificate_name
                .as_ref()
                .and_then(|name| rustls_pki_types::ServerName::try_from(name.clone()).ok()),
            roles: client.roles.clone(),
        });
        let admins = admin_tokens.iter().map(|token| Client {
            name: token.name.as_str().into(),
            token: Some(token.token.as_bytes().to_vec()),
            certificate_name: None,
            roles: ADMIN_TOKEN_ROLES.to_vec(),
        });
        AccessControl {
            clients: listed.chain(admins).collect(),
            data_plane: config.data_plane,
        }
    }

    /// Whether any client could call the control plane.
    pub fn has_control_plane_clients(&self) -> bool {
        self.clients.iter().any(|client| {
            client
                .roles
                .iter()
                .any(|role| matches!(role, Role::AuthorRules | Role::Administer))
        })
    }

    /// Decide a call to `path` on `plane`, from its `authorization` header
    /// (if any) and the certificates its TLS client presented (if any).
    /// `Ok(None)`: allowed with no identity (an open method, or the open
    /// data plane).
    pub fn authorize(
        &self,
        plane: Plane,
        path: &str,
        authorization: Option<&[u8]>,
        certificates: Option<&[CertificateDer<'static>]>,
    ) -> Result<Option<Grant>, Status> {
        let roles = match method_need(path) {
            Need::Open => return Ok(None),
            Need::AnyOf(roles) => roles,
        };
        if plane == Plane::Data && self.data_plane == DataPlaneAccess::Open {
            return Ok(None);
        }
        let client = self.identify(authorization, certificates)?;
        let grant = Grant {
            identity: client.name.clone(),
            roles: client.roles.clone(),
        };
        if roles.iter().any(|role| grant.holds(*role)) {
            return Ok(Some(grant));
        }
        let method = path.trim_start_matches('/');
        let needed = roles_list(roles).replace(", ", " or ");
        Err(Status::permission_denied(format!(
            "client `{}` may not call {method}: it needs {needed}, and the client holds {}",
            grant.identity,
            roles_list(&grant.roles)
        )))
    }

    /// The client the credentials prove, or `UNAUTHENTICATED` saying what
    /// was missing or wrong. A bearer token, when one is presented, decides;
    /// otherwise the client certificate does.
    fn identify(
        &self,
        authorization: Option<&[u8]>,
        certificates: Option<&[CertificateDer<'static>]>,
    ) -> Result<&Client, Status> {
        if let Some(header) = authorization {
            let presented = header.strip_prefix(b"Bearer ").ok_or_else(|| {
                Status::unauthenticated("authorization: expected `Bearer <token>`")
            })?;
            // Every token is compared in full, whether or not an earlier
            // one matched, so the time taken says nothing about the tokens.
            let mut matched = None;
            for client in &self.clients {
                if let Some(token) = &client.token
                    && constant_time_eq(token, presented)
                {
                    matched = Some(client);
                }
            }
            return matched.ok_or_else(|| Status::unauthenticated("authorization: unknown token"));
        }
        let Some(leaf) = certificates.and_then(|chain| chain.first()) else {
            return Err(Status::unauthenticated(
                "no credentials: present `authorization: Bearer <token>` metadata or a TLS client certificate",
            ));
        };
        let certificate = webpki::EndEntityCert::try_from(leaf).map_err(|e| {
            Status::unauthenticated(format!("the client certificate cannot be read: {e}"))
        })?;
        self.clients
            .iter()
            .find(|client| {
                client.certificate_name.as_ref().is_some_and(|name| {
                    certificate.verify_is_valid_for_subject_name(name).is_ok()
                })
            })
            .ok_or_else(|| {
                Status::unauthenticated(
                    "the client certificate names no known client (`certificate_name` in [[access.clients]])",
                )
            })
    }
}

/// Why `token` is too weak to be a credential, if it is: every token the
/// configuration takes (clients', admin and metrics tokens) is held to this.
pub(crate) fn weak_token(token: &str, min_chars: usize) -> Option<String> {
    (token.chars().count() < min_chars).then(|| format!("is shorter than {min_chars} characters"))
}

/// Equal bytes, compared in time that depends only on the lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "evaluator-token-0123456789";

    fn client(name: &str, token: &str, roles: &[Role]) -> ClientConfig {
        ClientConfig {
            name: name.into(),
            token: Some(token.into()),
            certificate_name: None,
            roles: roles.to_vec(),
            events_per_second: None,
        }
    }

    fn authenticated(clients: Vec<ClientConfig>) -> AccessControl {
        let config = AccessConfig {
            data_plane: DataPlaneAccess::Authenticated,
            clients,
        };
        config.check(16).unwrap();
        AccessControl::new(&config, &[])
    }

    fn bearer(token: &str) -> Vec<u8> {
        format!("Bearer {token}").into_bytes()
    }

    #[test]
    fn tokens_compare_in_full() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn every_method_of_the_api_has_a_need() {
        let descriptors = <prost_types::FileDescriptorSet as prost::Message>::decode(
            crate::api::FILE_DESCRIPTOR_SET,
        )
        .unwrap();
        let mut seen = 0;
        for file in &descriptors.file {
            for service in &file.service {
                for method in &service.method {
                    let path = format!("/{}.{}/{}", file.package(), service.name(), method.name());
                    assert!(
                        known_methods().any(|(known, _)| known == path),
                        "{path} has no line in METHODS"
                    );
                    seen += 1;
                }
            }
        }
        assert_eq!(
            seen,
            known_methods().count(),
            "METHODS names a method the API has not"
        );
    }

    #[test]
    fn a_method_is_allowed_only_with_one_of_its_roles() {
        let access = authenticated(vec![client("gateway", TOKEN, &[Role::Evaluate])]);
        let evaluate = "/enforcement.v1.Enforcement/Evaluate";
        let grant = access
            .authorize(Plane::Data, evaluate, Some(&bearer(TOKEN)), None)
            .unwrap()
            .unwrap();
        assert_eq!(&*grant.identity, "gateway");
        let refused = access
            .authorize(
                Plane::Data,
                "/enforcement.v1.Enforcement/ListDecisions",
                Some(&bearer(TOKEN)),
                None,
            )
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert!(
            refused.message().contains("`read_decisions`") && refused.message().contains("gateway"),
            "{}",
            refused.message()
        );
    }

    #[test]
    fn credentials_that_prove_nothing_are_unauthenticated() {
        let access = authenticated(vec![client("gateway", TOKEN, &[Role::Evaluate])]);
        let evaluate = "/enforcement.v1.Enforcement/Evaluate";
        for (header, says) in [
            (None, "no credentials"),
            (Some(bearer("not-the-token-0123456789")), "unknown token"),
            (Some(TOKEN.as_bytes().to_vec()), "Bearer"),
        ] {
            let refused = access
                .authorize(Plane::Data, evaluate, header.as_deref(), None)
                .unwrap_err();
            assert_eq!(refused.code(), tonic::Code::Unauthenticated);
            assert!(refused.message().contains(says), "{}", refused.message());
        }
    }

    #[test]
    fn an_open_data_plane_asks_nothing_but_the_control_plane_always_asks() {
        let access = AccessControl::default();
        assert!(matches!(
            access.authorize(
                Plane::Data,
                "/enforcement.v1.Enforcement/Evaluate",
                None,
                None
            ),
            Ok(None)
        ));
        let refused = access
            .authorize(
                Plane::Control,
                "/enforcement.v1.Admin/ListRules",
                None,
                None,
            )
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn health_and_reflection_are_open_and_unknown_methods_are_closed() {
        let access = authenticated(vec![client("gateway", TOKEN, &[Role::Evaluate])]);
        assert!(matches!(
            access.authorize(Plane::Data, "/grpc.health.v1.Health/Check", None, None),
            Ok(None)
        ));
        assert_eq!(
            method_need("/enforcement.v1.Enforcement/NotYetListed"),
            ADMINISTER
        );
        let refused = access
            .authorize(
                Plane::Data,
                "/enforcement.v1.Enforcement/NotYetListed",
                Some(&bearer(TOKEN)),
                None,
            )
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    }

    #[test]
    fn an_admin_token_authors_and_administers_but_does_not_evaluate() {
        let config = AccessConfig {
            data_plane: DataPlaneAccess::Authenticated,
            clients: vec![client("gateway", TOKEN, &[Role::Evaluate])],
        };
        let admin = AdminToken {
            name: "owner".into(),
            token: "owner-token-0123456789".into(),
        };
        let access = AccessControl::new(&config, &[admin]);
        let owner = bearer("owner-token-0123456789");
        assert!(
            access
                .authorize(
                    Plane::Control,
                    "/enforcement.v1.Admin/ReplacePolicy",
                    Some(&owner),
                    None
                )
                .is_ok()
        );
        assert_eq!(
            access
                .authorize(
                    Plane::Data,
                    "/enforcement.v1.Enforcement/Evaluate",
                    Some(&owner),
                    None
                )
                .unwrap_err()
                .code(),
            tonic::Code::PermissionDenied
        );
    }

    #[test]
    fn mistakes_in_the_section_are_named() {
        let cases = [
            (
                AccessConfig {
                    data_plane: DataPlaneAccess::Authenticated,
                    clients: vec![client("author", TOKEN, &[Role::AuthorRules])],
                },
                "no client holds",
            ),
            (
                AccessConfig {
                    clients: vec![client("short", "tiny", &[Role::Evaluate])],
                    ..AccessConfig::default()
                },
                "shorter than 16",
            ),
            (
                AccessConfig {
                    clients: vec![client("idle", TOKEN, &[])],
                    ..AccessConfig::default()
                },
                "no roles",
            ),
            (
                AccessConfig {
                    clients: vec![ClientConfig {
                        token: None,
                        ..client("nameless", TOKEN, &[Role::Evaluate])
                    }],
                    ..AccessConfig::default()
                },
                "`certificate_name`",
            ),
            (
                AccessConfig {
                    clients: vec![ClientConfig {
                        certificate_name: Some("not a name!".into()),
                        ..client("odd", TOKEN, &[Role::Evaluate])
                    }],
                    ..AccessConfig::default()
                },
                "not a DNS name",
            ),
        ];
        for (config, says) in cases {
            let (_, message) = config.check(16).unwrap_err();
            assert!(message.contains(says), "{message}");
        }
    }
}
