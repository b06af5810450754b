//! `enforcer plugin ...`: keys and signatures on this machine (`keygen`,
//! `sign`), and the control plane of a running engine (`upload`, `list`,
//! `set-mode`, `promote`, `rollback`, `retire`, `policy`, `audit`), called
//! over gRPC with a bearer token.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use enforcer::api::v1;
use enforcer::api::v1::admin_client::AdminClient;
use enforcer::signing;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// `enforcer plugin`'s subcommands.
#[derive(Subcommand)]
pub enum PluginCommand {
    /// Make an ed25519 key pair for signing rules: the secret key goes to
    /// FILE (readable by you alone), the public key to FILE.pub.
    Keygen {
        /// Where to write the secret key.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Sign a rule build: writes WASM.sig, which the engine checks against
    /// its trusted keys.
    Sign {
        /// The secret key file `keygen` wrote.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The rule build.
        wasm: PathBuf,
    },
    /// Upload a rule build to a running engine. Its signature (WASM.sig)
    /// and fixtures (STEM.fixtures.json) are sent when they exist.
    Upload {
        #[command(flatten)]
        admin: AdminArgs,
        /// The rule build.
        wasm: PathBuf,
        /// The signature file, instead of WASM.sig.
        #[arg(long, value_name = "FILE")]
        signature: Option<PathBuf>,
        /// The fixtures file, instead of STEM.fixtures.json.
        #[arg(long, value_name = "FILE")]
        fixtures: Option<PathBuf>,
        /// What to do with it once admitted.
        #[arg(long, value_enum, default_value_t = UploadAs::Shadow)]
        r#as: UploadAs,
        /// For `--as rollout`: the share of actors, 1 to 100.
        #[arg(long, value_name = "PERCENT", default_value_t = 0)]
        rollout: u32,
    },
    /// List rules with every version, its standing and its costs.
    List {
        #[command(flatten)]
        admin: AdminArgs,
        /// Only this rule.
        rule: Option<String>,
    },
    /// Set a version's mode: enforce (with --rollout below 100, for that
    /// share of actors), shadow or disabled.
    SetMode {
        #[command(flatten)]
        admin: AdminArgs,
        /// The rule.
        rule: String,
        /// The version's sha256, or a unique prefix of at least 8 digits.
        sha256: String,
        /// The mode.
        #[arg(value_enum)]
        mode: ModeArg,
        /// For enforce: the share of actors, 1 to 100.
        #[arg(long, value_name = "PERCENT", default_value_t = 100)]
        rollout: u32,
    },
    /// Make a rule's candidate its active version.
    Promote {
        #[command(flatten)]
        admin: AdminArgs,
        /// The rule.
        rule: String,
    },
    /// Withdraw a rule's candidate or, with none, return to the version
    /// active before.
    Rollback {
        #[command(flatten)]
        admin: AdminArgs,
        /// The rule.
        rule: String,
    },
    /// Stop running a rule and forget its versions.
    Retire {
        #[command(flatten)]
        admin: AdminArgs,
        /// The rule.
        rule: String,
    },
    /// Print the policy in force, or replace it with `--set FILE`.
    Policy {
        #[command(flatten)]
        admin: AdminArgs,
        /// A policy file (TOML) to put in force.
        #[arg(long, value_name = "FILE")]
        set: Option<PathBuf>,
    },
    /// The audit trail of control-plane changes, newest first.
    Audit {
        #[command(flatten)]
        admin: AdminArgs,
        /// Only changes to this rule.
        #[arg(long)]
        rule: Option<String>,
        /// At most this many entries.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// Where the control plane is and the token to present.
#[derive(Args)]
pub struct AdminArgs {
    /// The engine's control-plane address.
    #[arg(long, env = "ENFORCER_ADMIN", default_value = "http://127.0.0.1:50052")]
    admin: String,
    /// The bearer token.
    #[arg(long, env = "ENFORCER_ADMIN_TOKEN", hide_env_values = true)]
    token: String,
}

/// What `upload` does with an admitted build.
#[derive(Clone, Copy, ValueEnum)]
pub enum UploadAs {
    /// Make it active now.
    Active,
    /// Try it beside the active version, in shadow.
    Shadow,
    /// Enforce it for `--rollout` percent of actors.
    Rollout,
    /// Keep it; run nothing.
    Keep,
}

/// A version's mode.
#[derive(Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// Enforce.
    Enforce,
    /// Shadow.
    Shadow,
    /// Not running.
    Disabled,
}

/// Adds the bearer token to every call.
pub type AddToken =
    Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send>;

pub type Admin = AdminClient<InterceptedService<Channel, AddToken>>;

impl AdminArgs {
    /// A client of the control plane that presents the token.
    pub async fn connect(&self) -> anyhow::Result<Admin> {
        let channel = Channel::from_shared(self.admin.clone())
            .with_context(|| format!("--admin {}: not a URL", self.admin))?
            .connect()
            .await
            .with_context(|| format!("cannot reach the control plane at {}", self.admin))?;
        let bearer: MetadataValue<_> = format!("Bearer {}", self.token)
            .parse()
            .context("--token: not usable in a header")?;
        let add_token: AddToken = Box::new(move |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", bearer.clone());
            Ok(request)
        });
        Ok(AdminClient::with_interceptor(channel, add_token).max_decoding_message_size(64 << 20))
    }
}

/// Run one `enforcer plugin` subcommand.
pub fn run(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::Keygen { out } => keygen(&out),
        PluginCommand::Sign { key, wasm } => sign(&key, &wasm),
        remote => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(run_remote(remote)),
    }
}

fn keygen(out: &Path) -> anyhow::Result<()> {
    let pair = signing::generate_keypair()?;
    write_secret(out, &pair.secret)?;
    let public = PathBuf::from(format!("{}.pub", out.display()));
    std::fs::write(&public, format!("{}\n", pair.public))
        .with_context(|| format!("writing {}", public.display()))?;
    println!("secret key: {} (keep it secret)", out.display());
    println!("public key: {} ({})", public.display(), pair.public);
    println!("key id:     {}", signing::key_id_of(&pair.public)?);
    println!(
        "trust it in the engine with [rules] trusted_keys = [\"{}\"]",
        pair.public
    );
    Ok(())
}

/// Write a secret readable by its owner alone.
fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| {
        format!(
            "creating {} (an existing key is never overwritten)",
            path.display()
        )
    })?;
    file.write_all(secret.as_bytes())?;
    if !secret.ends_with('\n') {
        file.write_all(b"\n")?;
    }
    Ok(())
}

fn sign(key: &Path, wasm: &Path) -> anyhow::Result<()> {
    let secret =
        std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?;
    let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let signature = signing::sign(&secret, &bytes)?;
    let out = PathBuf::from(format!("{}.sig", wasm.display()));
    std::fs::write(&out, &signature).with_context(|| format!("writing {}", out.display()))?;
    println!("signed {} -> {}", wasm.display(), out.display());
    Ok(())
}

/// A file beside `wasm` if it exists, or the one given.
fn beside(given: Option<PathBuf>, default: PathBuf) -> anyhow::Result<Vec<u8>> {
    match given {
        Some(path) => std::fs::read(&path).with_context(|| format!("reading {}", path.display())),
        None => Ok(std::fs::read(&default).unwrap_or_default()),
    }
}

async fn run_remote(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::Keygen { .. } | PluginCommand::Sign { .. } => {
            unreachable!("run handles the local subcommands")
        }
        PluginCommand::Upload {
            admin,
            wasm,
            signature,
            fixtures,
            r#as,
            rollout,
        } => {
            let bytes =
                std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
            let signature = beside(signature, PathBuf::from(format!("{}.sig", wasm.display())))?;
            let fixtures = beside(fixtures, enforcer::fixtures::fixtures_path(&wasm))?;
            let activation = match r#as {
                UploadAs::Active => v1::Activation::Activate,
                UploadAs::Shadow => v1::Activation::Shadow,
                UploadAs::Rollout => v1::Activation::Rollout,
                UploadAs::Keep => v1::Activation::Keep,
            };
            let status = admin
                .connect()
                .await?
                .upload_rule(v1::UploadRuleRequest {
                    wasm: bytes,
                    signature,
                    fixtures,
                    activation: activation as i32,
                    rollout_percent: rollout,
                })
                .await
                .map_err(refused)?
                .into_inner();
            print_rule(&status);
        }
        PluginCommand::List { admin, rule } => {
            let rules = admin
                .connect()
                .await?
                .list_rules(v1::ListRulesRequest {
                    rule: rule.unwrap_or_default(),
                })
                .await
                .map_err(refused)?
                .into_inner()
                .rules;
            for rule in &rules {
                print_rule(rule);
            }
        }
        PluginCommand::SetMode {
            admin,
            rule,
            sha256,
            mode,
            rollout,
        } => {
            let mut client = admin.connect().await?;
            let sha256 = resolve_sha(&mut client, &rule, &sha256).await?;
            let mode = match mode {
                ModeArg::Enforce => v1::VersionMode::Enforce,
                ModeArg::Shadow => v1::VersionMode::Shadow,
                ModeArg::Disabled => v1::VersionMode::Disabled,
            };
            let status = client
                .set_version_mode(v1::SetVersionModeRequest {
                    rule,
                    sha256,
                    mode: mode as i32,
                    rollout_percent: rollout,
                })
                .await
                .map_err(refused)?
                .into_inner();
            print_rule(&status);
        }
        PluginCommand::Promote { admin, rule } => {
            let status = admin
                .connect()
                .await?
                .promote(v1::RuleRequest { rule })
                .await
                .map_err(refused)?
                .into_inner();
            print_rule(&status);
        }
        PluginCommand::Rollback { admin, rule } => {
            let status = admin
                .connect()
                .await?
                .rollback(v1::RuleRequest { rule })
                .await
                .map_err(refused)?
                .into_inner();
            print_rule(&status);
        }
        PluginCommand::Retire { admin, rule } => {
            admin
                .connect()
                .await?
                .retire_rule(v1::RuleRequest { rule: rule.clone() })
                .await
                .map_err(refused)?;
            println!("retired {rule}");
        }
        PluginCommand::Policy { admin, set } => {
            let mut client = admin.connect().await?;
            let document = match set {
                Some(path) => {
                    let toml = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    client
                        .replace_policy(v1::ReplacePolicyRequest { toml })
                        .await
                }
                None => client.get_policy(v1::GetPolicyRequest {}).await,
            }
            .map_err(refused)?
            .into_inner();
            print!("{}", document.toml);
            eprintln!("(policy version `{}`)", document.version);
        }
        PluginCommand::Audit { admin, rule, limit } => {
            let entries = admin
                .connect()
                .await?
                .list_audit(v1::ListAuditRequest {
                    rule: rule.unwrap_or_default(),
                    limit,
                })
                .await
                .map_err(refused)?
                .into_inner()
                .entries;
            for entry in entries {
                let at = entry.at.map_or(0, |t| t.seconds);
                let outcome = if entry.refused.is_empty() {
                    "made".to_string()
                } else {
                    format!("REFUSED: {}", entry.refused)
                };
                let was = if entry.previous_sha256.is_empty() {
                    String::new()
                } else {
                    format!(" (was {})", short(&entry.previous_sha256))
                };
                println!(
                    "#{:<5} {} {:<10} {:<14} {:<20} {:<12} {}{} {}",
                    entry.sequence,
                    at,
                    entry.identity,
                    entry.action,
                    entry.rule,
                    short(&entry.sha256),
                    entry.detail,
                    was,
                    outcome
                );
            }
        }
    }
    Ok(())
}

/// The full sha256 of `rule`'s version whose sha starts with `prefix`.
async fn resolve_sha(client: &mut Admin, rule: &str, prefix: &str) -> anyhow::Result<String> {
    if prefix.len() == 64 {
        return Ok(prefix.to_string());
    }
    anyhow::ensure!(
        prefix.len() >= 8,
        "sha256 `{prefix}`: give at least 8 hex digits"
    );
    let status = client
        .list_rules(v1::ListRulesRequest { rule: rule.into() })
        .await
        .map_err(refused)?
        .into_inner();
    let matches: Vec<String> = status
        .rules
        .iter()
        .flat_map(|r| &r.versions)
        .filter(|v| v.sha256.starts_with(prefix))
        .map(|v| v.sha256.clone())
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => anyhow::bail!("rule `{rule}` has no version whose sha256 starts {prefix}"),
        _ => anyhow::bail!("sha256 prefix {prefix} fits several versions of `{rule}`"),
    }
}

fn refused(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", status.code(), status.message())
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

fn print_rule(rule: &v1::RuleStatus) {
    println!("{}", rule.name);
    for v in &rule.versions {
        let standing = match v.standing() {
            v1::Standing::Active => "active",
            v1::Standing::Candidate => "candidate",
            v1::Standing::Inactive | v1::Standing::Unspecified => "inactive",
        };
        let mode = if v.disabled {
            "disabled".to_string()
        } else {
            let mode = match v.mode() {
                v1::Mode::Enforce => "enforce",
                v1::Mode::Shadow => "shadow",
                v1::Mode::Unspecified => "-",
            };
            format!("{mode} {}%", v.rollout_percent)
        };
        println!(
            "  {} v{:<8} {:<9} {:<13} {:>7} B  calls {:>9}  errors {:>5}  fired {:>7}  fuel {:>11}  {}{}",
            short(&v.sha256),
            v.version,
            standing,
            mode,
            v.size_bytes,
            v.calls,
            v.errors,
            v.fired,
            v.fuel,
            v.origin,
            if v.signed_by.is_empty() {
                String::new()
            } else {
                format!(", signed by {}", v.signed_by)
            },
        );
    }
}
