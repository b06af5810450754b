//! The rule lifecycle end to end: hot swaps under steady load that lose,
//! fail or double nothing; rollouts by a stable hash of the actor; shadow
//! candidates that stand in for the active version in the shadow decision
//! only; state that carries across swaps; and every refusal (signature,
//! contract, imports, fixtures, bytes, policy) leaving everything as it
//! was, with the reason, in the audit trail too.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use enforcer::api::v1;
use enforcer::deployment::{Candidate, Deployment, RuleDeployment, Stage, in_rollout};
use enforcer::event::{Entity, Event};
use enforcer::examples::{EXAMPLE_POLICY, example_fixtures, example_sources};
use enforcer::pipeline::{Pipeline, PipelineOptions};
use enforcer::policy::{Mode, Policy};
use enforcer::registry::{
    Activation, Caller, Provenance, Registry, RegistrySettings, RuleSource, SignaturePolicy,
};
use enforcer::rule::Rule;
use enforcer::runtime::Runtime;
use enforcer::signing::{self, KeyPair, TrustedKeys};
use enforcer::verdict::Severity;
use enforcer_examples::builds::variant;
use enforcer_examples::simulator::{SimConfig, Simulator};
use tokio_stream::StreamExt;
use tonic::Code;

use crate::common::{forward, plugin, wat_rule};
use crate::grpc_server::{TestAdmin, TestEngine, wire};

const RULE: &str = "mass-forwarding";

fn sha256(wasm: &[u8]) -> String {
    enforcer::runtime::build_sha256(wasm)
}

/// Registry settings with these signatures, in memory.
fn settings(signatures: SignaturePolicy) -> RegistrySettings {
    RegistrySettings {
        signatures,
        audit_capacity: 1000,
        state_dir: None,
    }
}

struct Keys {
    pair: KeyPair,
}

impl Keys {
    fn new() -> Self {
        Keys {
            pair: signing::generate_keypair().unwrap(),
        }
    }

    fn policy(&self) -> SignaturePolicy {
        SignaturePolicy {
            trusted: TrustedKeys::parse(std::slice::from_ref(&self.pair.public)).unwrap(),
            allow_unsigned: false,
        }
    }

    fn sign(&self, wasm: &[u8]) -> Vec<u8> {
        signing::sign(&self.pair.secret, wasm).unwrap().into_bytes()
    }

    fn upload(&self, wasm: Vec<u8>, activation: v1::Activation) -> v1::UploadRuleRequest {
        v1::UploadRuleRequest {
            signature: self.sign(&wasm),
            fixtures: example_fixtures(RULE).unwrap().as_bytes().to_vec(),
            wasm,
            activation: activation as i32,
            rollout_percent: 0,
        }
    }
}

/// The sha256 of the `mass-forwarding` build that decided, and whether it
/// ran as a candidate. Exactly one version must have run.
fn decided_by(decision: &v1::Decision) -> (String, bool) {
    let reports: Vec<&v1::RuleReport> = decision.rules.iter().filter(|r| r.rule == RULE).collect();
    assert_eq!(
        reports.len(),
        1,
        "exactly one version of {RULE} reports on {}: {reports:?}",
        decision.id
    );
    (reports[0].sha256.clone(), reports[0].candidate)
}

fn forwarded(id: &str, account: &str, chats: i64, at_ms: i64) -> v1::EvaluateRequest {
    v1::EvaluateRequest {
        event: Some(wire(&forward(id, account, chats, at_ms))),
        ..Default::default()
    }
}

async fn rule_status(admin: &mut TestAdmin, rule: &str) -> v1::RuleStatus {
    admin
        .list_rules(v1::ListRulesRequest { rule: rule.into() })
        .await
        .unwrap()
        .into_inner()
        .rules
        .remove(0)
}

fn active_sha(status: &v1::RuleStatus) -> String {
    status
        .versions
        .iter()
        .find(|v| v.standing() == v1::Standing::Active)
        .map(|v| v.sha256.clone())
        .unwrap_or_default()
}

/// The Done-when of the lifecycle: at least 100 swaps of a rule while a
/// stream carries steady traffic, and not one evaluation failed, dropped
/// or doubled; every decision names exactly one of the two builds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_swaps_under_stream_load_lose_nothing() {
    let keys = Keys::new();
    let engine = TestEngine::start(keys.policy()).await;
    let mut admin = engine.admin().await;
    let original = plugin(RULE);
    let v1_sha = active_sha(&rule_status(&mut admin, RULE).await);
    let other = variant(&original, "swap");

    // The stream: events until the swapping is over, then a last few.
    let swapping_done = Arc::new(AtomicBool::new(false));
    let (requests, outgoing) = tokio::sync::mpsc::channel::<v1::EvaluateRequest>(256);
    let mut client = engine.server.client().await;
    let responses = tokio::spawn(async move {
        let mut stream = client
            .evaluate_stream(tokio_stream::wrappers::ReceiverStream::new(outgoing))
            .await
            .expect("the stream opens")
            .into_inner();
        let mut results = Vec::new();
        while let Some(result) = stream.next().await {
            results.push(result.expect("the stream never fails"));
        }
        results
    });
    let done = swapping_done.clone();
    let sender = tokio::spawn(async move {
        let mut sent = Vec::new();
        let mut n = 0u64;
        // Keep going until the swaps are over, and at least 2,000 events.
        while !done.load(Ordering::Relaxed) || n < 2_000 {
            let id = format!("swap-{n}");
            let account = format!("acct-{}", n % 97);
            let at = 1_700_000_000_000 + n as i64 * 10;
            if requests
                .send(forwarded(&id, &account, 1 + (n % 40) as i64, at))
                .await
                .is_err()
            {
                break;
            }
            sent.push(id);
            n += 1;
            if n.is_multiple_of(16) {
                tokio::task::yield_now().await;
            }
        }
        sent
    });

    // 120 swaps: activate the other build, roll back to the first.
    let mut swaps = 0;
    let mut first = true;
    while swaps < 120 {
        let request = if first {
            keys.upload(other.clone(), v1::Activation::Activate)
        } else {
            // Known bytes: admitted again (signature checked) with no compile.
            v1::UploadRuleRequest {
                fixtures: Vec::new(),
                ..keys.upload(other.clone(), v1::Activation::Activate)
            }
        };
        first = false;
        let status = admin
            .upload_rule(request)
            .await
            .expect("upload")
            .into_inner();
        assert_ne!(active_sha(&status), v1_sha);
        let status = admin
            .rollback(v1::RuleRequest { rule: RULE.into() })
            .await
            .expect("rollback")
            .into_inner();
        assert_eq!(active_sha(&status), v1_sha);
        swaps += 2;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    swapping_done.store(true, Ordering::Relaxed);
    let sent = sender.await.unwrap();
    let results = responses.await.unwrap();

    assert_eq!(results.len(), sent.len(), "one result per event sent");
    let other_sha = engine
        .registry
        .rule(RULE)
        .unwrap()
        .versions
        .iter()
        .map(|v| v.sha256.clone())
        .find(|sha| *sha != v1_sha)
        .unwrap();
    let mut seen_versions = HashSet::new();
    for (result, id) in results.iter().zip(&sent) {
        assert_eq!(&result.event_id, id, "results come back in order");
        let Some(v1::evaluate_stream_response::Result::Evaluated(evaluated)) = &result.result
        else {
            panic!("{id} failed: {result:?}");
        };
        assert!(!evaluated.duplicate, "{id} was decided twice");
        let decision = evaluated.decision.as_ref().unwrap();
        let (sha, _) = decided_by(decision);
        assert!(
            sha == v1_sha || sha == other_sha,
            "{id}: unknown build {sha}"
        );
        seen_versions.insert(sha);
    }
    assert_eq!(
        seen_versions.len(),
        2,
        "the swaps happened while the stream ran"
    );
    // The log holds each decision once, numbered without a gap.
    let ids: HashSet<String> = sent.iter().map(|id| format!("dec-{id}")).collect();
    assert_eq!(ids.len(), sent.len());
    for id in sent.iter().step_by(97) {
        let logged = engine.server.log.get(&format!("dec-{id}"));
        assert!(logged.is_some(), "{id} is in the log");
    }
    let audit = engine.registry.audit().list(Some(RULE), 1000);
    assert_eq!(audit.iter().filter(|e| e.refused.is_none()).count(), 120);
}

/// A rollout takes the actors the documented hash picks, and only those;
/// promotion gives everyone the new build, rollback the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_decides_for_the_actors_its_hash_picks() {
    let keys = Keys::new();
    let engine = TestEngine::start(keys.policy()).await;
    let mut admin = engine.admin().await;
    let mut client = engine.server.client().await;
    let v1_sha = active_sha(&rule_status(&mut admin, RULE).await);
    let request = v1::UploadRuleRequest {
        rollout_percent: 30,
        ..keys.upload(variant(&plugin(RULE), "rollout"), v1::Activation::Rollout)
    };
    let status = admin.upload_rule(request).await.unwrap().into_inner();
    let candidate = status
        .versions
        .iter()
        .find(|v| v.standing() == v1::Standing::Candidate)
        .expect("a candidate");
    assert_eq!(candidate.rollout_percent, 30);
    let active = status
        .versions
        .iter()
        .find(|v| v.standing() == v1::Standing::Active)
        .unwrap();
    assert_eq!(active.rollout_percent, 70);
    let candidate_sha = candidate.sha256.clone();

    let mut taken = 0;
    for n in 0..200 {
        let account = format!("roll-{n}");
        let decision = client
            .evaluate(forwarded(
                &format!("r-{n}"),
                &account,
                3,
                1_700_000_000_000 + n,
            ))
            .await
            .unwrap()
            .into_inner()
            .decision
            .unwrap();
        let (sha, is_candidate) = decided_by(&decision);
        let picked = in_rollout(RULE, &Entity::account(account.as_str()), 30);
        assert_eq!(sha == candidate_sha, picked, "{account}");
        assert_eq!(is_candidate, picked);
        taken += usize::from(picked);
    }
    assert!((30..=90).contains(&taken), "30% of 200 took {taken}");

    admin
        .promote(v1::RuleRequest { rule: RULE.into() })
        .await
        .unwrap();
    let after = |n: i64| {
        forwarded(
            &format!("p-{n}"),
            &format!("roll-{n}"),
            3,
            1_700_000_100_000 + n,
        )
    };
    for n in 0..20 {
        let decision = client
            .evaluate(after(n))
            .await
            .unwrap()
            .into_inner()
            .decision
            .unwrap();
        assert_eq!(decided_by(&decision), (candidate_sha.clone(), false));
    }
    admin
        .rollback(v1::RuleRequest { rule: RULE.into() })
        .await
        .unwrap();
    for n in 20..40 {
        let decision = client
            .evaluate(after(n))
            .await
            .unwrap()
            .into_inner()
            .decision
            .unwrap();
        assert_eq!(decided_by(&decision), (v1_sha.clone(), false));
    }
}

/// A rule that gives every `message.sent` the score `score`, as build
/// `tag` of rule `probe`.
fn probe(score: f64, tag: &str) -> Arc<dyn Rule> {
    let wasm = variant(&wat_rule("probe", "", &format!("f64.const {score}")), tag);
    Arc::new(Runtime::new().unwrap().load(&wasm).unwrap())
}

/// A candidate in shadow stands in for the active version in the shadow
/// decision, and changes nothing live.
#[test]
fn a_shadow_candidate_stands_in_for_the_active_version_in_shadow_only() {
    let policy = Policy::parse(
        "version = \"p\"\n[combine]\nstrategy = \"weighted_score\"\nreview = 0.4\nlimit = 0.7\nblock = 0.9\n",
    )
    .unwrap();
    let active = probe(0.95, "active");
    let candidate = probe(0.0, "candidate");
    let deployment = Deployment {
        rules: vec![RuleDeployment {
            name: "probe".into(),
            active: Some(active.clone()),
            candidate: Some(Candidate {
                rule: candidate.clone(),
                stage: Stage::Shadow,
            }),
        }],
        policy,
    };
    let pipeline = Pipeline::with_deployment(deployment, PipelineOptions::default()).unwrap();
    let event = Event::new(
        "e1",
        "message.sent",
        1_700_000_000_000,
        Entity::account("a"),
    );
    let decision = pipeline.evaluate(event).unwrap().decision;

    // Live: the active build alone, whose 0.95 blocks.
    assert_eq!(decision.outcome.severity, Severity::Block);
    let reports: Vec<(&str, Mode, bool)> = decision
        .rules
        .iter()
        .map(|r| (&*r.sha256, r.mode, r.candidate))
        .collect();
    assert_eq!(
        reports,
        [
            (active.sha256(), Mode::Enforce, false),
            (candidate.sha256(), Mode::Shadow, true)
        ]
    );
    // Shadow: the candidate in the active build's place, whose 0.0 allows.
    // (Had both counted, 0.95 would still block.)
    let shadow = decision.shadow.as_ref().expect("a shadow decision");
    assert_eq!(shadow.outcome.severity, Severity::Allow);
    assert!(shadow.differs);
    // The candidate's calls are counted against its own build.
    for build in [&active, &candidate] {
        let counts = pipeline.version_counts(build.sha256()).unwrap();
        assert_eq!((counts.calls, counts.errors), (1, 0));
    }
}

/// Counters carry across swaps: traffic decided while the rule is swapped
/// every few events is decided exactly as without swaps (save for which
/// build's sha256 each decision names).
#[test]
fn decisions_across_swaps_match_decisions_without_them() {
    let traffic = Simulator::new(SimConfig::community(5, 300, 20))
        .unwrap()
        .run();
    let options = || PipelineOptions {
        banks: traffic.hash_banks(),
        max_future_skew_ms: None,
        ..PipelineOptions::default()
    };
    let start = || {
        Registry::start(
            Runtime::new().unwrap(),
            settings(SignaturePolicy {
                allow_unsigned: true,
                ..SignaturePolicy::default()
            }),
            example_sources(),
            EXAMPLE_POLICY.to_string(),
            options(),
        )
        .unwrap()
    };
    let steady = start();
    let swapped = start();
    let caller = Caller::internal("test");
    let builds: Vec<Vec<u8>> = ["a", "b"]
        .iter()
        .map(|t| variant(&plugin(RULE), t))
        .collect();
    let mut swaps = 0;
    for (n, labelled) in traffic.events.iter().enumerate() {
        if n % 25 == 0 {
            let source = RuleSource {
                wasm: builds[swaps % 2].clone(),
                origin: "upload".into(),
                ..RuleSource::default()
            };
            swapped
                .upload(&caller, source, Activation::Activate)
                .unwrap();
            swaps += 1;
        }
        let a = steady
            .pipeline()
            .evaluate(labelled.event.clone())
            .unwrap()
            .decision;
        let b = swapped
            .pipeline()
            .evaluate(labelled.event.clone())
            .unwrap()
            .decision;
        assert_eq!(a.outcome, b.outcome, "event {n} ({})", labelled.event.id);
        assert_eq!(a.label_changes, b.label_changes, "event {n}");
        let verdicts = |d: &enforcer::decision::Decision| -> Vec<(String, Severity, bool)> {
            d.rules
                .iter()
                .map(|r| (r.rule.to_string(), r.severity, r.skipped))
                .collect()
        };
        assert_eq!(verdicts(&a), verdicts(&b), "event {n}");
    }
    assert!(swaps > 20, "{swaps} swaps");
    assert!(
        steady.pipeline().live_state().snapshot() == swapped.pipeline().live_state().snapshot(),
        "the state is the same"
    );
    let fired = steady
        .pipeline()
        .version_counts(&sha256(&plugin(RULE)))
        .unwrap()
        .fired;
    assert!(fired > 0, "the traffic made {RULE} fire");
}

/// Asserts that a control-plane call was refused with `code` and a message
/// containing `needle`.
fn assert_refused<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: Code, needle: &str) {
    let status = result.expect_err("refused");
    assert_eq!(status.code(), code, "{}", status.message());
    assert!(
        status.message().contains(needle),
        "expected `{needle}` in: {}",
        status.message()
    );
}

/// Every way an upload or a policy can be wrong is refused with the
/// reason, and nothing changes: not the rules, not the policy, not a
/// single decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_builds_and_policies_are_refused_and_change_nothing() {
    let keys = Keys::new();
    let engine = TestEngine::start(keys.policy()).await;
    let mut admin = engine.admin().await;
    let rules_before = admin
        .list_rules(v1::ListRulesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let policy_before = admin
        .get_policy(v1::GetPolicyRequest {})
        .await
        .unwrap()
        .into_inner();
    let good = variant(&plugin(RULE), "refusals");

    // Unsigned.
    assert_refused(
        admin
            .upload_rule(v1::UploadRuleRequest {
                signature: Vec::new(),
                ..keys.upload(good.clone(), v1::Activation::Activate)
            })
            .await,
        Code::PermissionDenied,
        "unsigned",
    );
    // Signed by a key the engine does not trust.
    let stranger = Keys::new();
    assert_refused(
        admin
            .upload_rule(stranger.upload(good.clone(), v1::Activation::Activate))
            .await,
        Code::PermissionDenied,
        "not among the trusted keys",
    );
    // Changed after signing.
    let mut tampered = keys.upload(good.clone(), v1::Activation::Activate);
    tampered.wasm = variant(&good, "tampered");
    assert_refused(
        admin.upload_rule(tampered).await,
        Code::PermissionDenied,
        "does not match these bytes",
    );
    // Built against another version of the contract.
    let old_contract = wat::parse_str(
        r#"(module (import "enforcer:rule/host@0.1.0" "counter" (func)) (memory (export "memory") 1))"#,
    )
    .unwrap();
    assert_refused(
        admin
            .upload_rule(keys.upload(old_contract, v1::Activation::Activate))
            .await,
        Code::InvalidArgument,
        "was built against contract enforcer:rule@0.1.0",
    );
    // A forbidden import.
    assert_refused(
        admin
            .upload_rule(keys.upload(plugin("hostile-forbidden-import"), v1::Activation::Activate))
            .await,
        Code::InvalidArgument,
        "`wasi_snapshot_preview1::fd_write`",
    );
    // Corrupt bytes: a signed truncation of a real build, and no wasm at all.
    assert_refused(
        admin
            .upload_rule(keys.upload(good[..good.len() / 2].to_vec(), v1::Activation::Activate))
            .await,
        Code::InvalidArgument,
        "not a valid WebAssembly module: unexpected end-of-file",
    );
    assert_refused(
        admin
            .upload_rule(keys.upload(b"MZ\x90\x00 not wasm".to_vec(), v1::Activation::Activate))
            .await,
        Code::InvalidArgument,
        "not a WebAssembly module",
    );
    // Fixtures the build fails.
    let fixtures = example_fixtures(RULE).unwrap().replacen(
        "\"severity\": \"allow\"",
        "\"severity\": \"block\"",
        1,
    );
    assert_ne!(
        fixtures,
        example_fixtures(RULE).unwrap(),
        "the fixture was changed"
    );
    assert_refused(
        admin
            .upload_rule(v1::UploadRuleRequest {
                fixtures: fixtures.into_bytes(),
                ..keys.upload(good.clone(), v1::Activation::Activate)
            })
            .await,
        Code::FailedPrecondition,
        "expected severity block, got allow",
    );
    // Malformed fixtures.
    assert_refused(
        admin
            .upload_rule(v1::UploadRuleRequest {
                fixtures: b"{\"cases\": 3}".to_vec(),
                ..keys.upload(good.clone(), v1::Activation::Activate)
            })
            .await,
        Code::InvalidArgument,
        "fixtures",
    );
    // A policy naming a rule that is not loaded, and one that does not parse.
    let misspelt = format!("{EXAMPLE_POLICY}\n[rules.mass-forwardin]\nweight = 2.0\n");
    let line = misspelt.lines().count() - 1;
    assert_refused(
        admin
            .replace_policy(v1::ReplacePolicyRequest { toml: misspelt })
            .await,
        Code::InvalidArgument,
        &format!("policy line {line}: names rule `mass-forwardin`, which is not loaded"),
    );
    assert_refused(
        admin
            .replace_policy(v1::ReplacePolicyRequest {
                toml: "version = 3".into(),
            })
            .await,
        Code::InvalidArgument,
        "policy line 1",
    );
    // Steps that do not apply.
    assert_refused(
        admin.promote(v1::RuleRequest { rule: RULE.into() }).await,
        Code::FailedPrecondition,
        "no candidate",
    );
    assert_refused(
        admin
            .rollback(v1::RuleRequest {
                rule: "no-such-rule".into(),
            })
            .await,
        Code::NotFound,
        "no rule is named `no-such-rule`",
    );
    assert_refused(
        admin
            .retire_rule(v1::RuleRequest {
                rule: "known-hash-match".into(),
            })
            .await,
        Code::InvalidArgument,
        "names rule `known-hash-match`, which is not loaded",
    );

    // Nothing changed.
    let rules_after = admin
        .list_rules(v1::ListRulesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let shas = |rules: &v1::ListRulesResponse| -> Vec<(String, Vec<(String, i32)>)> {
        rules
            .rules
            .iter()
            .map(|r| {
                let versions = r
                    .versions
                    .iter()
                    .map(|v| (v.sha256.clone(), v.standing))
                    .collect();
                (r.name.clone(), versions)
            })
            .collect()
    };
    assert_eq!(shas(&rules_after), shas(&rules_before));
    let policy_after = admin
        .get_policy(v1::GetPolicyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(policy_after, policy_before);
    // Every refusal is in the audit trail, with who asked.
    let audit = admin
        .list_audit(v1::ListAuditRequest::default())
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(audit.len(), 14);
    assert!(
        audit
            .iter()
            .all(|e| !e.refused.is_empty() && e.identity == "tester"),
        "{audit:?}"
    );
    assert!(audit.iter().all(|e| e.peer.starts_with("127.0.0.1:")));
}

/// The control plane needs a known token; the data plane does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_plane_needs_a_token() {
    let engine = TestEngine::start(SignaturePolicy::default()).await;
    for token in [None, Some("wrong-token-0123456789")] {
        let mut admin = engine.admin_presenting(token).await;
        assert_refused(
            admin.list_rules(v1::ListRulesRequest::default()).await,
            Code::Unauthenticated,
            "authorization",
        );
        assert_refused(
            admin.rollback(v1::RuleRequest { rule: RULE.into() }).await,
            Code::Unauthenticated,
            "authorization",
        );
    }
    assert!(
        engine.registry.audit().list(None, 10).is_empty(),
        "nothing reached the registry"
    );
    let mut client = engine.server.client().await;
    client
        .evaluate(forwarded("no-token", "a", 1, 1_700_000_000_000))
        .await
        .expect("the data plane needs no control-plane token");
}

/// A replaced policy decides from the next event on, and names itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_policy_decides_the_next_event() {
    let engine = TestEngine::start(SignaturePolicy::default()).await;
    let mut admin = engine.admin().await;
    let mut client = engine.server.client().await;
    let before = client
        .evaluate(forwarded("pol-1", "a", 1, 1_700_000_000_000))
        .await
        .unwrap()
        .into_inner()
        .decision
        .unwrap();
    assert_eq!(before.policy_version, "examples-1");
    let text = EXAMPLE_POLICY.replace(
        "version = \"examples-1\"",
        "version = \"examples-2\"\n# mass forwarding in shadow",
    ) + "\n[rules.mass-forwarding]\nmode = \"shadow\"\n";
    let document = admin
        .replace_policy(v1::ReplacePolicyRequest { toml: text.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (document.version.as_str(), document.toml.as_str()),
        ("examples-2", text.as_str())
    );
    let after = client
        .evaluate(forwarded("pol-2", "a", 1, 1_700_000_000_100))
        .await
        .unwrap()
        .into_inner()
        .decision
        .unwrap();
    assert_eq!(after.policy_version, "examples-2");
    let report = after.rules.iter().find(|r| r.rule == RULE).unwrap();
    assert_eq!(report.mode(), v1::Mode::Shadow);
}

/// File-based deployment: a new file is deployed, a changed one replaces
/// its rule's active build, a refused one changes nothing, a removed one
/// retires its rule.
#[test]
fn the_watched_plugin_directory_deploys_changes_and_retires_removals() {
    use enforcer::registry::watch_dir::{DirWatcher, sources};

    let dir = std::env::temp_dir().join(format!("enforcer-watch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let keys = Keys::new();
    let write_signed = |name: &str, wasm: &[u8]| {
        std::fs::write(dir.join(format!("{name}.wasm.sig")), keys.sign(wasm)).unwrap();
        std::fs::write(dir.join(format!("{name}.wasm")), wasm).unwrap();
    };
    write_signed("forwarding", &plugin(RULE));
    let registry = Arc::new(
        Registry::start(
            Runtime::new().unwrap(),
            settings(keys.policy()),
            sources(&dir).unwrap(),
            "version = \"files\"".into(),
            PipelineOptions::default(),
        )
        .unwrap(),
    );
    let names = || -> Vec<String> { registry.list().into_iter().map(|r| r.name).collect() };
    let active = |rule: &str| -> Option<String> {
        registry.rule(rule).and_then(|r| {
            r.versions
                .into_iter()
                .find(|v| v.standing == enforcer::registry::Standing::Active)
                .map(|v| v.sha256)
        })
    };
    assert_eq!(names(), [RULE]);
    let _watcher = DirWatcher::start(registry.clone(), dir.clone(), Duration::from_millis(20));
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        for _ in 0..500 {
            if done() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("timed out waiting for: {what}");
    };

    write_signed("spray", &plugin("stranger-spray"));
    wait_for("a new file is deployed", &|| {
        names().contains(&"stranger-spray".to_string())
    });

    let changed = variant(&plugin(RULE), "file");
    write_signed("forwarding", &changed);
    let changed_sha = sha256(&changed);
    wait_for("a changed file replaces the build", &|| {
        active(RULE).as_deref() == Some(changed_sha.as_str())
    });

    // Unsigned: refused, recorded, and nothing changes.
    std::fs::write(
        dir.join("unsigned.wasm"),
        variant(&plugin("report-velocity"), "x"),
    )
    .unwrap();
    wait_for("the refusal is recorded", &|| {
        registry
            .audit()
            .list(None, 100)
            .iter()
            .any(|e| e.refused.as_deref().is_some_and(|r| r.contains("unsigned")))
    });
    assert!(!names().contains(&"report-velocity".to_string()));

    std::fs::remove_file(dir.join("spray.wasm")).unwrap();
    wait_for("a removed file retires its rule", &|| {
        !names().contains(&"stranger-spray".to_string())
    });
    let audit = registry.audit().list(None, 100);
    assert!(audit.iter().all(|e| e.caller.identity == "plugin-dir"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starting rules must pass admission too: a plugin directory holding an
/// unsigned build does not start.
#[test]
fn an_engine_does_not_start_with_an_unsigned_rule() {
    let keys = Keys::new();
    let error = Registry::start(
        Runtime::new().unwrap(),
        settings(keys.policy()),
        vec![(
            RuleSource {
                wasm: plugin(RULE),
                origin: "plugin_dir rules/forwarding.wasm".into(),
                ..RuleSource::default()
            },
            Provenance::External,
        )],
        "version = \"v\"".into(),
        PipelineOptions::default(),
    )
    .err()
    .expect("refused");
    let message = error.to_string();
    assert!(message.contains("rules/forwarding.wasm"), "{message}");
    assert!(message.contains("unsigned"), "{message}");
}

/// A fresh directory under the system's temporary one, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("enforcer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn active_of(registry: &Registry, rule: &str) -> Option<String> {
    registry.rule(rule).and_then(|status| {
        status
            .versions
            .into_iter()
            .find(|v| v.standing == enforcer::registry::Standing::Active)
            .map(|v| v.sha256)
    })
}

fn start_in(keys: &Keys, state: &TempDir, policy: &str) -> Result<Registry, String> {
    Registry::start(
        Runtime::new().unwrap(),
        RegistrySettings {
            signatures: keys.policy(),
            audit_capacity: 1000,
            state_dir: Some(state.0.clone()),
        },
        example_sources(),
        policy.to_string(),
        PipelineOptions::default(),
    )
    .map_err(|e| e.to_string())
}

fn signed_source(keys: &Keys, wasm: Vec<u8>) -> RuleSource {
    RuleSource {
        signature: Some(keys.sign(&wasm)),
        fixtures: Some(example_fixtures(RULE).unwrap().as_bytes().to_vec()),
        origin: "upload".into(),
        wasm,
    }
}

/// With a state directory, what the control plane did survives a restart:
/// the builds, where each stands, the policy and the audit trail, and a
/// rollback after the restart goes where it would have gone before.
#[test]
fn changes_survive_a_restart_with_a_state_dir() {
    let keys = Keys::new();
    let state = TempDir::new("state-restart");
    let caller = Caller::internal("test");
    let built_in = sha256(&plugin(RULE));
    let second = variant(&plugin(RULE), "second");
    let third = variant(&plugin(RULE), "third");
    let policy_two = format!("{}\n", EXAMPLE_POLICY.replace("examples-1", "examples-2"));
    let last_audit;
    {
        let registry = start_in(&keys, &state, EXAMPLE_POLICY).unwrap();
        registry
            .upload(
                &caller,
                signed_source(&keys, second.clone()),
                Activation::Activate,
            )
            .unwrap();
        registry
            .upload(
                &caller,
                signed_source(&keys, third.clone()),
                Activation::Candidate(Stage::Rollout { percent: 20 }),
            )
            .unwrap();
        registry
            .replace_policy(&caller, policy_two.clone())
            .unwrap();
        assert!(
            registry
                .upload(
                    &caller,
                    signed_source(&Keys::new(), third.clone()),
                    Activation::Keep
                )
                .is_err()
        );
        last_audit = registry.audit().list(None, 1)[0].sequence;
        assert_eq!(last_audit, 4);
    }

    // Started again, with another policy given: the saved one wins.
    let registry = start_in(&keys, &state, "version = \"ignored\"").unwrap();
    assert_eq!(registry.policy().version, "examples-2");
    assert_eq!(registry.policy().text, policy_two);
    assert_eq!(active_of(&registry, RULE), Some(sha256(&second)));
    let status = registry.rule(RULE).unwrap();
    let candidate = status
        .versions
        .iter()
        .find(|v| matches!(v.standing, enforcer::registry::Standing::Candidate(_)))
        .unwrap();
    assert_eq!(candidate.sha256, sha256(&third));
    assert_eq!(candidate.rollout_percent, 20);
    assert_eq!(
        registry.pipeline().snapshot().policy().version,
        "examples-2",
        "the restored policy decides"
    );
    // The audit trail goes on from where it was.
    registry.roll_back(&caller, RULE).unwrap();
    let audit = registry.audit().list(None, 100);
    assert_eq!(audit[0].sequence, last_audit + 1);
    assert_eq!(audit.len(), 5);
    // Rollback walks back through the history kept before the restart.
    assert_eq!(
        active_of(&registry, RULE),
        Some(sha256(&second)),
        "the candidate went first"
    );
    registry.roll_back(&caller, RULE).unwrap();
    assert_eq!(active_of(&registry, RULE), Some(built_in));
}

/// A saved build changed on disk is refused at the next start, naming the
/// rule, rather than run.
#[test]
fn a_tampered_state_dir_does_not_start() {
    let keys = Keys::new();
    let state = TempDir::new("state-tampered");
    let second = variant(&plugin(RULE), "second");
    {
        let registry = start_in(&keys, &state, EXAMPLE_POLICY).unwrap();
        registry
            .upload(
                &Caller::internal("test"),
                signed_source(&keys, second.clone()),
                Activation::Activate,
            )
            .unwrap();
    }
    let saved = state
        .0
        .join("builds")
        .join(format!("{}.wasm", sha256(&second)));
    std::fs::write(&saved, variant(&second, "tampered")).unwrap();
    let error = start_in(&keys, &state, EXAMPLE_POLICY)
        .err()
        .expect("refused");
    assert!(
        error.contains(&format!("restoring rule `{RULE}`")),
        "{error}"
    );
    assert!(error.contains("does not match these bytes"), "{error}");
}

/// A change that cannot be saved is undone and refused: what runs never
/// differs from what a restart would restore.
#[test]
fn a_change_that_cannot_be_saved_is_not_made() {
    let keys = Keys::new();
    let state = TempDir::new("state-unsaved");
    let registry = start_in(&keys, &state, EXAMPLE_POLICY).unwrap();
    let before = active_of(&registry, RULE);
    // Nothing can be renamed over a directory that holds a file.
    let saved = state.0.join("registry.json");
    std::fs::remove_file(&saved).unwrap();
    std::fs::create_dir_all(saved.join("blocker")).unwrap();
    let error = registry
        .upload(
            &Caller::internal("test"),
            signed_source(&keys, variant(&plugin(RULE), "unsaved")),
            Activation::Activate,
        )
        .expect_err("refused");
    assert!(error.to_string().contains("could not be saved"), "{error}");
    assert_eq!(active_of(&registry, RULE), before);
    let event = Event::new(
        "unsaved-1",
        "message.forwarded",
        1_700_000_000_000,
        Entity::account("a"),
    )
    .with("chat_count", enforcer::event::Value::Int(3));
    let decision = registry.pipeline().evaluate(event).unwrap().decision;
    let report = decision.rules.iter().find(|r| &*r.rule == RULE).unwrap();
    assert_eq!(
        Some(report.sha256.to_string()),
        before,
        "the old build still decides"
    );
}

/// A rule tried in shadow, then promoted, does not start blind: the history
/// of the counters only it kept moves to the live store, so its decisions
/// after promotion are those it would have made had it enforced all along.
#[test]
fn a_promoted_shadow_rule_keeps_its_counts() {
    let without_forwarding = || -> Vec<(RuleSource, Provenance)> {
        example_sources()
            .into_iter()
            .filter(|(source, _)| !source.origin.ends_with(RULE))
            .collect()
    };
    let start = |sources: Vec<(RuleSource, Provenance)>| {
        Registry::start(
            Runtime::new().unwrap(),
            settings(SignaturePolicy {
                allow_unsigned: true,
                ..SignaturePolicy::default()
            }),
            sources,
            EXAMPLE_POLICY.to_string(),
            PipelineOptions::default(),
        )
        .unwrap()
    };
    let all_along = start(example_sources());
    let tried = start(without_forwarding());
    let caller = Caller::internal("test");
    let source = RuleSource {
        wasm: plugin(RULE),
        origin: "upload".into(),
        ..RuleSource::default()
    };
    tried
        .upload(&caller, source, Activation::Candidate(Stage::Shadow))
        .unwrap();

    // 90 forwards to one chat each (the rule sums chats) in 15 minutes:
    // under every threshold, but counted.
    let t0 = 1_764_000_000_000;
    let forwards = |from: usize, to: usize| {
        (from..to).map(move |n| {
            Event::new(
                format!("f-{n}"),
                "message.forwarded",
                t0 + n as i64 * 10_000,
                Entity::account("busy"),
            )
            .with("chat_count", enforcer::event::Value::Int(1))
        })
    };
    for event in forwards(0, 90) {
        let live = all_along
            .pipeline()
            .evaluate(event.clone())
            .unwrap()
            .decision;
        let shadow = tried.pipeline().evaluate(event).unwrap().decision;
        assert_eq!(live.outcome.severity, Severity::Allow);
        assert_eq!(shadow.shadow.as_ref().unwrap().outcome, live.outcome);
    }
    tried.promote(&caller, RULE).unwrap();
    // 60 more cross the review threshold of 100 an hour, but only if the
    // first 90 still count.
    let mut fired = 0;
    for event in forwards(90, 150) {
        let live = all_along
            .pipeline()
            .evaluate(event.clone())
            .unwrap()
            .decision;
        let promoted = tried.pipeline().evaluate(event).unwrap().decision;
        assert_eq!(promoted.outcome, live.outcome, "{}", live.event.id);
        fired += usize::from(live.outcome.severity > Severity::Allow);
    }
    assert!(fired > 0, "the counts crossed a threshold");
}
