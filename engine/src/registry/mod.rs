//! The registry: the control plane's model of rules. It admits builds
//! (signature, contract, fixtures, compilation: [`admission`]), keeps every
//! version of every rule ([`book`]), turns the book and the policy into a
//! [`Deployment`] and has the pipeline publish it as one atomic snapshot,
//! and records every change asked of it ([`audit`]).
//!
//! Changes are serialised under one lock and made on a copy of the book:
//! the copy replaces the book only once the pipeline has accepted the
//! deployment built from it, so a refused change leaves everything as it
//! was. Compiling happens before the lock is taken, so a slow compile never
//! holds up a rollback.

pub mod admission;
pub mod audit;
pub mod book;
pub mod store;
pub mod watch_dir;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use crate::deployment::{Deployment, Stage, VersionCounts};
use crate::pipeline::{Pipeline, PipelineError, PipelineOptions};
use crate::policy::{Mode, Policy, PolicyError};
use crate::runtime::{Runtime, build_sha256};

pub use admission::{AdmissionError, Provenance, RuleSource, SignaturePolicy};
pub use audit::{AuditEntry, AuditLog, Caller, DEFAULT_AUDIT_CAPACITY};
pub use book::{Book, BookError, MAX_KEPT_VERSIONS, RuleHistory, Standing, Standings, Version};
pub use store::{StateDir, StoreError};

use store::{SavedRule, SavedState, SavedVersion};

/// What to do with a build once admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Make it the active version at once (the previous one becomes the
    /// rollback target).
    Activate,
    /// Put it on trial at this stage.
    Candidate(Stage),
    /// Keep it, run nothing.
    Keep,
}

/// The mode a version is set to through the control plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionMode {
    /// Enforce: for everyone (`rollout` 100 on the active version, or a
    /// candidate at 100%), or for `rollout` percent of actors as a
    /// candidate.
    Enforce {
        /// 1 to 100.
        rollout: u8,
    },
    /// Beside the active version, in shadow.
    Shadow,
    /// Not running.
    Disabled,
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Activation::Activate => write!(f, "activate"),
            Activation::Candidate(stage) => write!(f, "candidate {stage}"),
            Activation::Keep => write!(f, "keep"),
        }
    }
}

impl std::fmt::Display for VersionMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionMode::Enforce { rollout } => write!(f, "enforce for {rollout}% of actors"),
            VersionMode::Shadow => write!(f, "shadow"),
            VersionMode::Disabled => write!(f, "disabled"),
        }
    }
}

/// Why a control-plane request was refused. Nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The build failed admission.
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    /// The request does not apply to the rule as it stands.
    #[error(transparent)]
    Book(#[from] BookError),
    /// The policy does not parse, or does not fit the rules.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The rules and policy together cannot run.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// A request field is out of range.
    #[error("{0}")]
    Invalid(String),
    /// The change could not be saved to the state directory, so it was
    /// undone.
    #[error("the change could not be saved, so it was not made: {0}")]
    Store(#[from] StoreError),
}

/// One version as the control plane lists it.
#[derive(Clone, Debug, Serialize)]
pub struct VersionStatus {
    /// The build.
    pub sha256: String,
    /// The rule's own version string.
    pub version: String,
    /// Size of the build in bytes.
    pub size_bytes: u64,
    /// When it was admitted (Unix milliseconds).
    pub admitted_at_ms: i64,
    /// The key that signed it, if any.
    pub signed_by: Option<String>,
    /// Fixtures it passed when admitted.
    pub fixtures_passed: usize,
    /// Where it came from.
    pub origin: String,
    /// Active, candidate or inactive.
    pub standing: Standing,
    /// The mode it runs in now (disabled when it does not run).
    pub mode: Mode,
    /// The share of actors it decides for, in percent (0 when it does not
    /// enforce).
    pub rollout_percent: u8,
    /// Its costs since it first ran.
    pub counts: VersionCounts,
}

/// One rule as the control plane lists it.
#[derive(Clone, Debug, Serialize)]
pub struct RuleStatus {
    /// Its name.
    pub name: String,
    /// Every admitted version, oldest first.
    pub versions: Vec<VersionStatus>,
}

/// The policy in force.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyDocument {
    /// Its `version`.
    pub version: String,
    /// Its TOML text, as given.
    pub text: String,
}

struct Books {
    book: Book,
    policy: Policy,
    policy_text: String,
}

/// How the registry admits, remembers and records.
#[derive(Clone, Debug, Default)]
pub struct RegistrySettings {
    /// Which builds are admitted.
    pub signatures: SignaturePolicy,
    /// Audit entries kept in memory (and read back from the state
    /// directory at start).
    pub audit_capacity: usize,
    /// Where the registry keeps its builds, their standings, the policy
    /// and the audit trail across restarts. `None`: in memory only, and a
    /// restart begins again from the starting rules and policy.
    pub state_dir: Option<PathBuf>,
}

/// The control plane's model of rules, over one pipeline.
pub struct Registry {
    runtime: Runtime,
    pipeline: Arc<Pipeline>,
    signatures: SignaturePolicy,
    books: Mutex<Books>,
    audit: AuditLog,
    store: Option<StateDir>,
}

impl Registry {
    /// Admit the starting rules, build the pipeline over them, and return
    /// the registry that changes it from now on. Any starting rule that
    /// fails admission stops the start, with its origin and the reason.
    ///
    /// With a state directory that holds a saved state, the saved rules,
    /// standings and policy are restored instead (each build admitted
    /// again: signature, contract, fixtures), and `sources` and
    /// `policy_text` serve only to recognise the built-in builds.
    pub fn start(
        runtime: Runtime,
        settings: RegistrySettings,
        sources: Vec<(RuleSource, Provenance)>,
        policy_text: String,
        options: PipelineOptions,
    ) -> Result<Self, StartError> {
        let RegistrySettings {
            signatures,
            audit_capacity,
            state_dir,
        } = settings;
        let store = state_dir.as_deref().map(StateDir::open).transpose()?;
        let saved = store.as_ref().map(StateDir::load).transpose()?.flatten();
        let (book, policy_text) = match &saved {
            Some(saved) => {
                let built_in: HashSet<String> = sources
                    .iter()
                    .filter(|(_, provenance)| *provenance == Provenance::BuiltIn)
                    .map(|(source, _)| build_sha256(&source.wasm))
                    .collect();
                let store = store.as_ref().expect("a saved state comes from a store");
                let book = restore(&runtime, &signatures, store, saved, &built_in)?;
                (book, saved.policy.clone())
            }
            None => (
                admit_starting(&runtime, &signatures, &sources)?,
                policy_text,
            ),
        };
        let policy = Policy::parse(&policy_text)?;
        let pipeline = Arc::new(Pipeline::with_deployment(
            deployment_of(&book, &policy),
            options,
        )?);
        let audit = match &store {
            Some(store) => AuditLog::continuing(audit_capacity, store.audit_tail(audit_capacity)),
            None => AuditLog::new(audit_capacity),
        };
        if let (Some(store), None) = (&store, &saved) {
            for (source, _) in &sources {
                store.put_build(&build_sha256(&source.wasm), source)?;
            }
            store.save(&saved_state(&book, &policy_text))?;
        }
        Ok(Registry {
            runtime,
            pipeline,
            signatures,
            books: Mutex::new(Books {
                book,
                policy,
                policy_text,
            }),
            audit,
            store,
        })
    }

    /// The pipeline this registry deploys to.
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    /// The audit trail.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Admit a build and deploy it as `activation` says. The build is
    /// compiled before any lock is taken; a build admitted before (same
    /// sha256) is not compiled again.
    pub fn upload(
        &self,
        caller: &Caller,
        source: RuleSource,
        activation: Activation,
    ) -> Result<RuleStatus, AdminError> {
        let detail = format!("{activation} from {}", source.origin);
        let sha256 = build_sha256(&source.wasm);
        let known = self.known_version(&sha256);
        let version = match known {
            // The same bytes, compiled already: the signature policy still
            // applies to this request, and fixtures sent with it still run.
            Some(version) => admission::readmit(&self.signatures, &source, version),
            None => admission::admit(
                &self.runtime,
                &self.signatures,
                &source,
                Provenance::External,
            ),
        };
        let version = match version {
            Ok(version) => version,
            Err(error) => {
                let error = AdminError::from(error);
                self.record(
                    caller,
                    "upload",
                    None,
                    Some(sha256),
                    None,
                    detail,
                    Some(&error),
                );
                return Err(error);
            }
        };
        let name = version.rule.name().to_string();
        self.change(caller, "upload", &name, detail, |book| {
            // Kept under the lock, so that no concurrent save forgets the
            // files before the state naming them is written.
            if let Some(store) = &self.store {
                store.put_build(&sha256, &source)?;
            }
            let history = book.entry(name.clone()).or_default();
            let index = history.admit(version);
            match activation {
                Activation::Activate => history.activate(index),
                Activation::Candidate(stage) => history.try_out(index, stage)?,
                Activation::Keep => {}
            }
            Ok(Some(sha256.clone()))
        })
    }

    /// Set one version's mode: see [`VersionMode`].
    pub fn set_mode(
        &self,
        caller: &Caller,
        rule: &str,
        sha256: &str,
        mode: VersionMode,
    ) -> Result<RuleStatus, AdminError> {
        let detail = mode.to_string();
        self.change(caller, "set_mode", rule, detail, |book| {
            let history = history_mut(book, rule)?;
            let index = history
                .find(sha256)
                .ok_or_else(|| BookError::UnknownVersion {
                    rule: rule.into(),
                    sha256: sha256.into(),
                })?;
            let is_active = history.standing(index) == Standing::Active;
            match mode {
                VersionMode::Enforce { rollout } if !(1..=100).contains(&rollout) => {
                    return Err(AdminError::Invalid(format!(
                        "rollout_percent: {rollout} is not between 1 and 100"
                    )));
                }
                VersionMode::Enforce { rollout: 100 } if is_active => {}
                VersionMode::Enforce { rollout } if is_active => {
                    return Err(BookError::NotApplicable(format!(
                        "version {} is active and decides for every actor outside a \
                         candidate's rollout; to enforce another version for {rollout}% \
                         of actors, set that version",
                        book::short(sha256)
                    ))
                    .into());
                }
                VersionMode::Enforce { rollout } => {
                    history.try_out(index, Stage::Rollout { percent: rollout })?
                }
                VersionMode::Shadow => history.try_out(index, Stage::Shadow)?,
                VersionMode::Disabled => history.disable(index)?,
            }
            Ok(Some(sha256.to_string()))
        })
    }

    /// Make a rule's candidate its active version for every actor.
    pub fn promote(&self, caller: &Caller, rule: &str) -> Result<RuleStatus, AdminError> {
        self.change(caller, "promote", rule, String::new(), |book| {
            let history = history_mut(book, rule)?;
            let index = history.promote()?;
            Ok(Some(history.versions[index].rule.sha256().to_string()))
        })
    }

    /// Undo a rule's last step: withdraw its candidate, or with none,
    /// return to the version active before.
    pub fn roll_back(&self, caller: &Caller, rule: &str) -> Result<RuleStatus, AdminError> {
        self.change(caller, "rollback", rule, String::new(), |book| {
            let history = history_mut(book, rule)?;
            let index = history.roll_back()?;
            Ok(index.map(|i| history.versions[i].rule.sha256().to_string()))
        })
    }

    /// Stop running a rule and forget it. Refused while the policy names
    /// it: the policy would then name a rule that is not loaded.
    pub fn retire(&self, caller: &Caller, rule: &str) -> Result<(), AdminError> {
        self.change(caller, "retire", rule, String::new(), |book| {
            book.remove(rule)
                .ok_or_else(|| BookError::UnknownRule(rule.into()))?;
            Ok(None)
        })
        .map(|_| ())
    }

    /// The policy in force.
    pub fn policy(&self) -> PolicyDocument {
        let books = self.lock();
        PolicyDocument {
            version: books.policy.version.clone(),
            text: books.policy_text.clone(),
        }
    }

    /// Replace the policy. Refused, with its line, if it does not parse or
    /// names a rule that is not loaded.
    pub fn replace_policy(
        &self,
        caller: &Caller,
        text: String,
    ) -> Result<PolicyDocument, AdminError> {
        let mut books = self.lock();
        let previous = books.policy.version.clone();
        let result = Policy::parse(&text)
            .map_err(AdminError::from)
            .and_then(|policy| {
                policy.check_rules(books.book.keys().map(String::as_str))?;
                self.publish(&books.book, &policy, &text, (&books.book, &books.policy))?;
                Ok(policy)
            });
        let detail = match &result {
            Ok(policy) => format!("policy `{previous}` replaced by `{}`", policy.version),
            Err(_) => format!("replacing policy `{previous}`"),
        };
        self.record(
            caller,
            "replace_policy",
            None,
            None,
            None,
            detail,
            result.as_ref().err(),
        );
        let policy = result?;
        books.policy = policy;
        books.policy_text = text;
        Ok(PolicyDocument {
            version: books.policy.version.clone(),
            text: books.policy_text.clone(),
        })
    }

    /// Every rule and its versions, by name.
    pub fn list(&self) -> Vec<RuleStatus> {
        let books = self.lock();
        books
            .book
            .iter()
            .map(|(name, history)| self.status(name, history, &books.policy))
            .collect()
    }

    /// One rule and its versions.
    pub fn rule(&self, name: &str) -> Option<RuleStatus> {
        let books = self.lock();
        books
            .book
            .get(name)
            .map(|history| self.status(name, history, &books.policy))
    }

    /// A version admitted before, under any rule.
    fn known_version(&self, sha256: &str) -> Option<Version> {
        let books = self.lock();
        books.book.values().find_map(|history| {
            history
                .find(sha256)
                .map(|index| history.versions[index].clone())
        })
    }

    /// Make a change on a copy of the book, deploy it, and keep the copy
    /// only if the pipeline took it; record the change either way. `edit`
    /// returns the build the change concerns.
    fn change(
        &self,
        caller: &Caller,
        action: &str,
        rule: &str,
        detail: String,
        edit: impl FnOnce(&mut Book) -> Result<Option<String>, AdminError>,
    ) -> Result<RuleStatus, AdminError> {
        let mut books = self.lock();
        let previous_sha = books
            .book
            .get(rule)
            .and_then(|h| h.active())
            .map(|v| v.rule.sha256().to_string());
        let mut book = books.book.clone();
        let result = edit(&mut book).and_then(|sha| {
            self.publish(
                &book,
                &books.policy,
                &books.policy_text,
                (&books.book, &books.policy),
            )?;
            Ok(sha)
        });
        let sha = result.as_ref().ok().cloned().flatten();
        self.record(
            caller,
            action,
            Some(rule.to_string()),
            sha,
            previous_sha,
            detail,
            result.as_ref().err(),
        );
        result?;
        books.book = book;
        // Builds that stopped running give their warm instances back to
        // the engine's pool.
        if let Some(history) = books.book.get(rule) {
            for version in history.idle_versions() {
                version.rule.release_idle();
            }
        }
        Ok(books
            .book
            .get(rule)
            .map(|history| self.status(rule, history, &books.policy))
            .unwrap_or_else(|| RuleStatus {
                name: rule.to_string(),
                versions: Vec::new(),
            }))
    }

    /// Record a change to a hash bank, made or refused (`refused` says
    /// why), in the audit trail beside the rule changes.
    pub fn record_bank_change(
        &self,
        caller: &Caller,
        action: &str,
        bank: &str,
        detail: String,
        refused: Option<String>,
    ) {
        self.append_audit(AuditEntry {
            sequence: 0,
            at_ms: admission::now_ms(),
            caller: caller.clone(),
            action: action.to_string(),
            rule: None,
            sha256: None,
            previous_sha256: None,
            detail: format!("bank `{bank}`: {detail}"),
            refused,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        caller: &Caller,
        action: &str,
        rule: Option<String>,
        sha256: Option<String>,
        previous_sha256: Option<String>,
        detail: String,
        error: Option<&AdminError>,
    ) {
        self.append_audit(AuditEntry {
            sequence: 0,
            at_ms: admission::now_ms(),
            caller: caller.clone(),
            action: action.to_string(),
            rule,
            sha256,
            previous_sha256,
            detail,
            refused: error.map(ToString::to_string),
        });
    }

    fn append_audit(&self, mut entry: AuditEntry) {
        entry.sequence = self.audit.record(entry.clone());
        if let Some(store) = &self.store
            && let Err(error) = store.append_audit(&entry)
        {
            // The change itself stands (or stood refused); only its record
            // on disk is missing, which the operator must hear about.
            tracing::error!(%error, sequence = entry.sequence, "audit entry not saved");
        }
    }

    /// Deploy `book` under `policy` and save it (with `policy_text`) to the
    /// state directory. If it cannot be saved, `previous` (what ran before)
    /// is deployed again and the change refused: what runs and what a
    /// restart restores never differ.
    fn publish(
        &self,
        book: &Book,
        policy: &Policy,
        policy_text: &str,
        previous: (&Book, &Policy),
    ) -> Result<(), AdminError> {
        self.pipeline.deploy(deployment_of(book, policy))?;
        if let Some(store) = &self.store
            && let Err(error) = store.save(&saved_state(book, policy_text))
        {
            let (book, policy) = previous;
            self.pipeline.deploy(deployment_of(book, policy))?;
            return Err(error.into());
        }
        Ok(())
    }

    fn status(&self, name: &str, history: &RuleHistory, policy: &Policy) -> RuleStatus {
        let rule_mode = policy.for_rule(name).mode;
        let versions = history
            .versions
            .iter()
            .enumerate()
            .map(|(index, version)| {
                let standing = history.standing(index);
                let (mode, rollout_percent) = match (standing, rule_mode) {
                    (_, Mode::Disabled) | (Standing::Inactive, _) => (Mode::Disabled, 0),
                    (Standing::Candidate(Stage::Shadow), _) => (Mode::Shadow, 0),
                    (Standing::Candidate(Stage::Rollout { percent }), mode) => (mode, percent),
                    (Standing::Active, mode) => {
                        let taken = match history.candidate() {
                            Some((_, Stage::Rollout { percent })) => percent,
                            _ => 0,
                        };
                        (mode, 100 - taken)
                    }
                };
                let sha256 = version.rule.sha256();
                VersionStatus {
                    sha256: sha256.to_string(),
                    version: version.rule.manifest().version.clone(),
                    size_bytes: version.size_bytes,
                    admitted_at_ms: version.admitted_at_ms,
                    signed_by: version.signed_by.clone(),
                    fixtures_passed: version.fixtures_passed,
                    origin: version.origin.clone(),
                    standing,
                    mode,
                    rollout_percent,
                    counts: self.pipeline.version_counts(sha256).unwrap_or_default(),
                }
            })
            .collect();
        RuleStatus {
            name: name.to_string(),
            versions,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why the engine could not start with these rules and this policy.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A starting rule was refused.
    #[error("rule {origin}: {error}")]
    Rule {
        /// Where it came from.
        origin: String,
        /// Why.
        error: AdmissionError,
    },
    /// Two starting rules share a name.
    #[error("rule {origin}: another starting rule is already named `{name}`")]
    Duplicate {
        /// Where the second came from.
        origin: String,
        /// The name.
        name: String,
    },
    /// The policy does not parse.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The rules and policy together cannot run.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The state directory cannot be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A saved build is no longer admitted (a trusted key was removed, say)
    /// or the saved standings do not fit the saved builds.
    #[error("restoring rule `{rule}` from the state directory: {message}")]
    Restore {
        /// The rule.
        rule: String,
        /// What went wrong.
        message: String,
    },
}

/// Admit the starting rules, each active.
fn admit_starting(
    runtime: &Runtime,
    signatures: &SignaturePolicy,
    sources: &[(RuleSource, Provenance)],
) -> Result<Book, StartError> {
    let mut book = Book::new();
    for (source, provenance) in sources {
        let version =
            admission::admit(runtime, signatures, source, *provenance).map_err(|error| {
                StartError::Rule {
                    origin: source.origin.clone(),
                    error,
                }
            })?;
        let history = book.entry(version.rule.name().to_string()).or_default();
        if history.active().is_some() {
            return Err(StartError::Duplicate {
                origin: source.origin.clone(),
                name: version.rule.name().to_string(),
            });
        }
        let index = history.admit(version);
        history.activate(index);
    }
    Ok(book)
}

/// The book a state directory saved, every build admitted again. A build
/// counts as built in only if this binary has the same bytes built in.
fn restore(
    runtime: &Runtime,
    signatures: &SignaturePolicy,
    store: &StateDir,
    saved: &SavedState,
    built_in: &HashSet<String>,
) -> Result<Book, StartError> {
    let mut book = Book::new();
    for rule in &saved.rules {
        let failed = |message: String| StartError::Restore {
            rule: rule.name.clone(),
            message,
        };
        let mut versions = Vec::with_capacity(rule.versions.len());
        for saved_version in &rule.versions {
            let source = store.build(&saved_version.sha256, &saved_version.origin)?;
            let provenance = if built_in.contains(&saved_version.sha256) {
                Provenance::BuiltIn
            } else {
                Provenance::External
            };
            let mut version = admission::admit(runtime, signatures, &source, provenance)
                .map_err(|e| failed(format!("build {}: {e}", saved_version.sha256)))?;
            if version.rule.sha256() != saved_version.sha256 || version.rule.name() != rule.name {
                return Err(failed(format!(
                    "build {} is not what the state says it is",
                    saved_version.sha256
                )));
            }
            version.admitted_at_ms = saved_version.admitted_at_ms;
            versions.push(version);
        }
        let history =
            RuleHistory::restore(versions, &rule.standings).map_err(|e| failed(e.to_string()))?;
        book.insert(rule.name.clone(), history);
    }
    Ok(book)
}

/// What the state directory keeps of `book` and the policy.
fn saved_state(book: &Book, policy_text: &str) -> SavedState {
    SavedState {
        format: store::FORMAT,
        policy: policy_text.to_string(),
        rules: book
            .iter()
            .map(|(name, history)| SavedRule {
                name: name.clone(),
                versions: history
                    .versions
                    .iter()
                    .map(|v| SavedVersion {
                        sha256: v.rule.sha256().to_string(),
                        origin: v.origin.clone(),
                        admitted_at_ms: v.admitted_at_ms,
                    })
                    .collect(),
                standings: history.standings(),
            })
            .collect(),
    }
}

fn history_mut<'a>(book: &'a mut Book, rule: &str) -> Result<&'a mut RuleHistory, BookError> {
    book.get_mut(rule)
        .ok_or_else(|| BookError::UnknownRule(rule.into()))
}

/// What the pipeline runs for this book under this policy.
fn deployment_of(book: &Book, policy: &Policy) -> Deployment {
    Deployment {
        rules: book
            .iter()
            .map(|(name, history)| history.deployment(name))
            .collect(),
        policy: policy.clone(),
    }
}
