//! The `enforcement.v1.Admin` control plane: its own listener, every call
//! checked by [`crate::access`] (a known client with the method's role),
//! each call handed to the [`Registry`] on a
//! blocking thread (admission compiles; a change deploys a snapshot), and
//! every registry refusal mapped to a status in one place.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tonic::{Request, Response, Status, Streaming};

use super::{ServeError, bank_admin};
use crate::access::layer::AccessLayer;
use crate::access::tls::ServerTls;
use crate::access::{AccessConfig, AccessControl, Grant, Plane, Role};
use crate::api::{self, v1};
use crate::deployment::Stage;
use crate::fixtures::FixtureError;
use crate::pipeline::PipelineError;
use crate::policy::Mode;
use crate::registry::admission::now_ms;
use crate::registry::{
    Activation, AdminError, AdmissionError, AuditEntry, BookError, Caller, PolicyDocument,
    Registry, RuleSource, RuleStatus, Standing, VersionMode,
};
use crate::signing::SigningError;

/// Most audit entries one `ListAudit` returns.
const MAX_AUDIT_PAGE: u32 = 10_000;

/// A bearer token and the identity it stands for: one `[[admin.tokens]]`
/// entry of the configuration.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminToken {
    /// Who holds it, as the audit trail records them.
    pub name: String,
    /// The secret, at least
    /// [`MIN_TOKEN_CHARS`](crate::config::MIN_TOKEN_CHARS) characters.
    pub token: String,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never reaches a log or an error message.
        write!(f, "AdminToken({}, ****)", self.name)
    }
}

/// Serve the control plane for `registry` on `listener` until `shutdown`,
/// in plaintext, to the holders of `tokens`.
pub async fn serve_admin(
    listener: TcpListener,
    registry: Arc<Registry>,
    tokens: Vec<AdminToken>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let access = AccessControl::new(&AccessConfig::default(), &tokens);
    serve_control_plane(listener, registry, Arc::new(access), None, shutdown).await
}

/// Serve the control plane for `registry` on `listener` until `shutdown`:
/// over `tls` when given, each call checked by `access`.
pub async fn serve_control_plane(
    listener: TcpListener,
    registry: Arc<Registry>,
    access: Arc<AccessControl>,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // A rule build is a few hundred KB; leave room for large ones.
    let admin = v1::admin_server::AdminServer::new(AdminService { registry })
        .max_decoding_message_size(64 * 1024 * 1024);
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    super::server_builder(tls.as_ref())?
        .layer(AccessLayer::new(access, Plane::Control))
        .add_service(admin)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}

struct AdminService {
    registry: Arc<Registry>,
}

impl AdminService {
    /// Run `work` on the registry on a blocking thread, as `caller`.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Registry) -> Result<T, AdminError> + Send + 'static,
    ) -> Result<T, Status> {
        let registry = self.registry.clone();
        tokio::task::spawn_blocking(move || work(&registry))
            .await
            .map_err(|e| Status::internal(format!("control-plane task failed: {e}")))?
            .map_err(admin_status)
    }

    /// Take `step` on the rule the request names, as its caller.
    async fn rule_step(
        &self,
        request: Request<v1::RuleRequest>,
        step: RuleStep,
    ) -> Result<Response<v1::RuleStatus>, Status> {
        let caller = caller(&request);
        let rule = request.into_inner().rule;
        let status = self
            .run(move |registry| step(registry, &caller, &rule))
            .await?;
        Ok(Response::new(status_to_proto(status)))
    }
}

/// A registry step on one named rule.
type RuleStep = fn(&Registry, &Caller, &str) -> Result<RuleStatus, AdminError>;

/// `PERMISSION_DENIED` unless the caller holds [`Role::Administer`]: what
/// changes what enforces is beyond a rule author.
fn require_administer(grant: Option<&Grant>, what: &str) -> Result<(), Status> {
    match grant {
        Some(grant) => grant.require(Role::Administer, what),
        None => Err(Status::permission_denied(format!(
            "an unknown caller may not {what}"
        ))),
    }
}

fn caller<T>(request: &Request<T>) -> Caller {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        // The access layer runs before every method: this is unreachable
        // unless the service is mounted without it.
        .unwrap_or_else(|| Caller::internal("unauthenticated"))
}

#[tonic::async_trait]
impl v1::admin_server::Admin for AdminService {
    async fn upload_rule(
        &self,
        request: Request<v1::UploadRuleRequest>,
    ) -> Result<Response<v1::RuleStatus>, Status> {
        let caller = caller(&request);
        let grant = request.extensions().get::<Grant>().cloned();
        let request = request.into_inner();
        let activation = match (request.activation(), request.rollout_percent) {
            (v1::Activation::Activate, _) => Activation::Activate,
            (v1::Activation::Unspecified | v1::Activation::Shadow, _) => {
                Activation::Candidate(Stage::Shadow)
            }
            (v1::Activation::Rollout, percent @ 1..=100) => Activation::Candidate(Stage::Rollout {
                percent: percent as u8,
            }),
            (v1::Activation::Rollout, percent) => {
                return Err(Status::invalid_argument(format!(
                    "rollout_percent: {percent} is not between 1 and 100"
                )));
            }
            (v1::Activation::Keep, _) => Activation::Keep,
        };
        if matches!(
            activation,
            Activation::Activate | Activation::Candidate(Stage::Rollout { .. })
        ) {
            require_administer(grant.as_ref(), "upload a build that enforces at once")?;
        }
        if request.wasm.is_empty() {
            return Err(Status::invalid_argument("wasm: is empty"));
        }
        let source = RuleSource {
            wasm: request.wasm,
            signature: (!request.signature.is_empty()).then_some(request.signature),
            fixtures: (!request.fixtures.is_empty()).then_some(request.fixtures),
            origin: "upload".into(),
        };
        let status = self
            .run(move |registry| registry.upload(&caller, source, activation))
            .await?;
        Ok(Response::new(status_to_proto(status)))
    }

    async fn list_rules(
        &self,
        request: Request<v1::ListRulesRequest>,
    ) -> Result<Response<v1::ListRulesResponse>, Status> {
        let rule = request.into_inner().rule;
        let rules = if rule.is_empty() {
            self.registry.list()
        } else {
            vec![
                self.registry
                    .rule(&rule)
                    .ok_or_else(|| Status::not_found(format!("no rule is named `{rule}`")))?,
            ]
        };
        Ok(Response::new(v1::ListRulesResponse {
            rules: rules.into_iter().map(status_to_proto).collect(),
        }))
    }

    async fn set_version_mode(
        &self,
        request: Request<v1::SetVersionModeRequest>,
    ) -> Result<Response<v1::RuleStatus>, Status> {
        let caller = caller(&request);
        let grant = request.extensions().get::<Grant>().cloned();
        let request = request.into_inner();
        let mode = match request.mode() {
            v1::VersionMode::Enforce => VersionMode::Enforce {
                rollout: match request.rollout_percent {
                    0 => 100,
                    percent @ 1..=100 => percent as u8,
                    percent => {
                        return Err(Status::invalid_argument(format!(
                            "rollout_percent: {percent} is over 100"
                        )));
                    }
                },
            },
            v1::VersionMode::Shadow => VersionMode::Shadow,
            v1::VersionMode::Disabled => VersionMode::Disabled,
            v1::VersionMode::Unspecified => {
                return Err(Status::invalid_argument(
                    "mode: is unspecified: use VERSION_MODE_ENFORCE, VERSION_MODE_SHADOW or VERSION_MODE_DISABLED",
                ));
            }
        };
        match mode {
            VersionMode::Shadow => {}
            VersionMode::Enforce { .. } => {
                require_administer(grant.as_ref(), "set a version to enforce")?
            }
            // Disabling the active version stops what it enforces.
            VersionMode::Disabled => require_administer(grant.as_ref(), "disable a version")?,
        }
        let status = self
            .run(move |registry| registry.set_mode(&caller, &request.rule, &request.sha256, mode))
            .await?;
        Ok(Response::new(status_to_proto(status)))
    }

    async fn promote(
        &self,
        request: Request<v1::RuleRequest>,
    ) -> Result<Response<v1::RuleStatus>, Status> {
        self.rule_step(request, Registry::promote).await
    }

    async fn rollback(
        &self,
        request: Request<v1::RuleRequest>,
    ) -> Result<Response<v1::RuleStatus>, Status> {
        self.rule_step(request, Registry::roll_back).await
    }

    async fn retire_rule(
        &self,
        request: Request<v1::RuleRequest>,
    ) -> Result<Response<v1::RetireRuleResponse>, Status> {
        let caller = caller(&request);
        let rule = request.into_inner().rule;
        self.run(move |registry| registry.retire(&caller, &rule))
            .await?;
        Ok(Response::new(v1::RetireRuleResponse {}))
    }

    async fn get_policy(
        &self,
        _: Request<v1::GetPolicyRequest>,
    ) -> Result<Response<v1::PolicyDocument>, Status> {
        Ok(Response::new(policy_to_proto(self.registry.policy())))
    }

    async fn replace_policy(
        &self,
        request: Request<v1::ReplacePolicyRequest>,
    ) -> Result<Response<v1::PolicyDocument>, Status> {
        let caller = caller(&request);
        let text = request.into_inner().toml;
        let document = self
            .run(move |registry| registry.replace_policy(&caller, text))
            .await?;
        Ok(Response::new(policy_to_proto(document)))
    }

    async fn list_audit(
        &self,
        request: Request<v1::ListAuditRequest>,
    ) -> Result<Response<v1::ListAuditResponse>, Status> {
        let request = request.into_inner();
        let limit = match request.limit {
            0 => 100,
            n if n > MAX_AUDIT_PAGE => {
                return Err(Status::invalid_argument(format!(
                    "limit: {n} is over the limit of {MAX_AUDIT_PAGE}"
                )));
            }
            n => n,
        };
        let rule = (!request.rule.is_empty()).then_some(request.rule.as_str());
        let entries = self.registry.audit().list(rule, limit as usize);
        Ok(Response::new(v1::ListAuditResponse {
            entries: entries.into_iter().map(audit_to_proto).collect(),
        }))
    }

    async fn list_banks(
        &self,
        _: Request<v1::ListBanksRequest>,
    ) -> Result<Response<v1::ListBanksResponse>, Status> {
        let banks = self.registry.pipeline().banks().list();
        Ok(Response::new(v1::ListBanksResponse {
            banks: banks.iter().map(bank_admin::status_to_proto).collect(),
        }))
    }

    async fn replace_bank(
        &self,
        request: Request<Streaming<v1::ReplaceBankRequest>>,
    ) -> Result<Response<v1::BankStatus>, Status> {
        let caller = caller(&request);
        let (name, kind, entries) =
            bank_admin::read_replacement(request.into_inner(), &caller, now_ms()).await?;
        let detail = format!(
            "replace with {} entries ({} bank)",
            entries.len(),
            kind.name()
        );
        let summary = bank_admin::change(
            &self.registry,
            caller,
            "replace_bank",
            name.clone(),
            detail,
            move |banks| banks.put(&name, kind, entries),
        )
        .await?;
        Ok(Response::new(bank_admin::status_to_proto(&summary)))
    }

    async fn add_bank_entries(
        &self,
        request: Request<v1::AddBankEntriesRequest>,
    ) -> Result<Response<v1::BankStatus>, Status> {
        let caller = caller(&request);
        let request = request.into_inner();
        check_change_size(request.entries.len(), "entries")?;
        let entries = bank_admin::entries_from_proto(request.entries, 0, &caller, now_ms())?;
        let detail = format!("add {} entries", entries.len());
        let bank = request.bank;
        let summary = bank_admin::change(
            &self.registry,
            caller,
            "add_bank_entries",
            bank.clone(),
            detail,
            move |banks| banks.add(&bank, entries),
        )
        .await?;
        Ok(Response::new(bank_admin::status_to_proto(&summary)))
    }

    async fn remove_bank_entries(
        &self,
        request: Request<v1::RemoveBankEntriesRequest>,
    ) -> Result<Response<v1::BankStatus>, Status> {
        let caller = caller(&request);
        let request = request.into_inner();
        check_change_size(request.entry_ids.len(), "entry_ids")?;
        let detail = format!("remove {} entries", request.entry_ids.len());
        let (bank, ids) = (request.bank, request.entry_ids);
        let summary = bank_admin::change(
            &self.registry,
            caller,
            "remove_bank_entries",
            bank.clone(),
            detail,
            move |banks| banks.remove(&bank, &ids),
        )
        .await?;
        Ok(Response::new(bank_admin::status_to_proto(&summary)))
    }

    async fn delete_bank(
        &self,
        request: Request<v1::DeleteBankRequest>,
    ) -> Result<Response<v1::DeleteBankResponse>, Status> {
        let caller = caller(&request);
        let bank = request.into_inner().bank;
        bank_admin::change(
            &self.registry,
            caller,
            "delete_bank",
            bank.clone(),
            "delete".into(),
            move |banks| banks.delete(&bank),
        )
        .await?;
        Ok(Response::new(v1::DeleteBankResponse {}))
    }
}

/// Refuse a bank change larger than one call may make.
fn check_change_size(count: usize, field: &str) -> Result<(), Status> {
    if count == 0 {
        return Err(Status::invalid_argument(format!("{field}: is empty")));
    }
    if count > bank_admin::MAX_CHANGE_ENTRIES {
        return Err(Status::invalid_argument(format!(
            "{field}: {count} is over the limit of {} per call; use ReplaceBank for a whole list",
            bank_admin::MAX_CHANGE_ENTRIES
        )));
    }
    Ok(())
}

/// The status for a refused control-plane request: the one place registry
/// errors become gRPC codes.
pub fn admin_status(error: AdminError) -> Status {
    let message = error.to_string();
    match &error {
        AdminError::Admission(AdmissionError::Signature(SigningError::Malformed(_))) => {
            Status::invalid_argument(message)
        }
        AdminError::Admission(AdmissionError::Signature(_)) => Status::permission_denied(message),
        AdminError::Admission(AdmissionError::Load(_)) => Status::invalid_argument(message),
        AdminError::Admission(AdmissionError::Fixtures(
            FixtureError::Parse { .. } | FixtureError::NoCases | FixtureError::Invalid { .. },
        )) => Status::invalid_argument(message),
        AdminError::Admission(AdmissionError::Fixtures(_)) => Status::failed_precondition(message),
        AdminError::Book(BookError::UnknownRule(_) | BookError::UnknownVersion { .. }) => {
            Status::not_found(message)
        }
        AdminError::Book(BookError::NotApplicable(_)) => Status::failed_precondition(message),
        AdminError::Policy(_) | AdminError::Pipeline(PipelineError::Policy(_)) => {
            Status::invalid_argument(message)
        }
        AdminError::Pipeline(PipelineError::RuleSet(_)) => Status::failed_precondition(message),
        AdminError::Invalid(_) => Status::invalid_argument(message),
        // The disk may come back: the request can be retried as it is.
        AdminError::Store(_) => Status::unavailable(message),
    }
}

fn status_to_proto(status: RuleStatus) -> v1::RuleStatus {
    v1::RuleStatus {
        name: status.name,
        versions: status
            .versions
            .into_iter()
            .map(|v| {
                let standing = match v.standing {
                    Standing::Active => v1::Standing::Active,
                    Standing::Candidate(_) => v1::Standing::Candidate,
                    Standing::Inactive => v1::Standing::Inactive,
                };
                v1::RuleVersion {
                    sha256: v.sha256,
                    version: v.version,
                    size_bytes: v.size_bytes,
                    admitted_at: Some(api::timestamp_to_proto(v.admitted_at_ms)),
                    signed_by: v.signed_by.unwrap_or_default(),
                    fixtures_passed: v.fixtures_passed as u32,
                    origin: v.origin,
                    standing: standing as i32,
                    mode: api::mode_to_proto(v.mode) as i32,
                    disabled: v.mode == Mode::Disabled,
                    rollout_percent: u32::from(v.rollout_percent),
                    calls: v.counts.calls,
                    errors: v.counts.errors,
                    fuel: v.counts.fuel,
                    fired: v.counts.fired,
                }
            })
            .collect(),
    }
}

fn policy_to_proto(document: PolicyDocument) -> v1::PolicyDocument {
    v1::PolicyDocument {
        version: document.version,
        toml: document.text,
    }
}

fn audit_to_proto(entry: AuditEntry) -> v1::AuditEntry {
    v1::AuditEntry {
        sequence: entry.sequence,
        at: Some(api::timestamp_to_proto(entry.at_ms)),
        identity: entry.caller.identity,
        peer: entry.caller.peer.unwrap_or_default(),
        action: entry.action,
        rule: entry.rule.unwrap_or_default(),
        sha256: entry.sha256.unwrap_or_default(),
        previous_sha256: entry.previous_sha256.unwrap_or_default(),
        detail: entry.detail,
        refused: entry.refused.unwrap_or_default(),
    }
}
