//! Admission: the checks a rule build passes before it may run, in order,
//! each refusing with its reason. The signature first (before the engine
//! so much as parses untrusted bytes), then the loader's own checks (wasm,
//! contract version, imports, manifest) and compilation, then the rule's
//! fixtures. Nothing here touches what is running.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::fixtures::{FixtureError, Fixtures};
use crate::rule::Rule;
use crate::runtime::{LoadError, Runtime};
use crate::signing::{SigningError, TrustedKeys};

use super::book::Version;

/// Which builds the engine accepts.
#[derive(Clone, Debug, Default)]
pub struct SignaturePolicy {
    /// The public keys whose signatures are accepted.
    pub trusted: TrustedKeys,
    /// Development mode: accept unsigned builds (a signature, if present,
    /// must still be valid). Never on in production.
    pub allow_unsigned: bool,
}

/// A rule build offered to the engine, with what ships alongside it.
#[derive(Clone, Debug, Default)]
pub struct RuleSource {
    /// The wasm module.
    pub wasm: Vec<u8>,
    /// Its signature (`<rule>.wasm.sig`), if signed.
    pub signature: Option<Vec<u8>>,
    /// Its fixtures (`<rule>.fixtures.json`), if it ships any.
    pub fixtures: Option<Vec<u8>>,
    /// Where it came from, for the audit trail: `upload`, `plugin_dir
    /// <file>`, `built-in`.
    pub origin: String,
}

/// Why a build was refused. The running set is untouched.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// Unsigned, signed by an untrusted key, or changed after signing.
    #[error("signature: {0}")]
    Signature(#[from] SigningError),
    /// Not wasm, wrong contract, forbidden import, bad manifest, or it
    /// does not compile.
    #[error("{0}")]
    Load(#[from] LoadError),
    /// Its fixtures are malformed or it fails one.
    #[error("fixtures: {0}")]
    Fixtures(#[from] FixtureError),
}

/// Whether to check the signature: built-in rules are part of the binary
/// and trusted with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provenance {
    /// From outside the binary: the signature policy applies.
    External,
    /// Embedded in the binary.
    BuiltIn,
}

/// Check the signature (unless built in): who signed it, if anyone.
pub fn check_signature(
    policy: &SignaturePolicy,
    source: &RuleSource,
    provenance: Provenance,
) -> Result<Option<String>, SigningError> {
    if provenance == Provenance::BuiltIn {
        return Ok(None);
    }
    match (&source.signature, policy.allow_unsigned) {
        (None, true) => Ok(None),
        (signature, _) => policy
            .trusted
            .verify(&source.wasm, signature.as_deref())
            .map(Some),
    }
}

/// Run every check and compile: the version, ready to deploy.
pub fn admit(
    runtime: &Runtime,
    policy: &SignaturePolicy,
    source: &RuleSource,
    provenance: Provenance,
) -> Result<Version, AdmissionError> {
    let signed_by = check_signature(policy, source, provenance)?;
    // Parse the fixtures before compiling, so a malformed file is refused
    // without the cost of a compile.
    let fixtures = source
        .fixtures
        .as_deref()
        .map(Fixtures::parse)
        .transpose()?;
    let rule: Arc<dyn Rule> = Arc::new(runtime.load(&source.wasm)?);
    let fixtures_passed = match fixtures {
        Some(fixtures) => fixtures.run(rule.as_ref())?.passed,
        None => 0,
    };
    Ok(Version {
        rule,
        size_bytes: source.wasm.len() as u64,
        admitted_at_ms: now_ms(),
        signed_by,
        fixtures_passed,
        origin: source.origin.clone(),
    })
}

/// Admit bytes compiled before (`known` is their version): the signature
/// is checked against this request, and its fixtures, if any, are run.
pub fn readmit(
    policy: &SignaturePolicy,
    source: &RuleSource,
    known: Version,
) -> Result<Version, AdmissionError> {
    check_signature(policy, source, Provenance::External)?;
    if let Some(fixtures) = &source.fixtures {
        Fixtures::parse(fixtures)?.run(known.rule.as_ref())?;
    }
    Ok(known)
}

/// The wall clock in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
