//! Hash banks through the control plane, end to end: banks and an
//! allow-list created, changed and deleted live; a media event matched
//! against them, its decision carrying the match as evidence (or the known
//! false positive that suppressed it); clearing-house report records
//! exported for the decisions that report; every bad change refused with a
//! precise status, changing nothing; and evaluation going on while a large
//! bank is replaced.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use enforcer::api::v1;
use enforcer::event::{Entity, Event, Value};
use enforcer::examples::{EXAMPLE_POLICY, example_sources};
use enforcer::pipeline::PipelineOptions;
use enforcer::registry::SignaturePolicy;
use tonic::Code;

use crate::grpc_server::{TestAdmin, TestEngine, wire};

const T0: i64 = 1_764_000_000_000;
const BANK: &str = "known-csam";
const ALLOW_LIST: &str = "known-fp";

/// A hash from a seed: distinct seeds give hashes about 128 bits apart.
fn hash(seed: u64) -> [u8; 32] {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(8) {
        // xorshift64*: enough to scatter bits for a test.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        chunk.copy_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out
}

/// `base` with its first `bits` bits flipped.
fn flipped(base: [u8; 32], bits: u32) -> [u8; 32] {
    let mut out = base;
    for bit in 0..bits as usize {
        out[bit / 8] ^= 0x80 >> (bit % 8);
    }
    out
}

fn entry(id: &str, hash: [u8; 32]) -> v1::BankEntry {
    v1::BankEntry {
        hash: hash.to_vec(),
        id: id.into(),
        source: "test list".into(),
        added_at: Some(enforcer::api::timestamp_to_proto(T0 - 86_400_000)),
    }
}

fn settings(name: &str, kind: v1::BankKind, allow: &[&str], distance: u32) -> v1::BankSettings {
    v1::BankSettings {
        name: name.into(),
        kind: kind.into(),
        allow_lists: allow.iter().map(|s| s.to_string()).collect(),
        allow_max_distance: distance,
    }
}

/// Replace (or create) a bank, its entries in chunks of `chunk`.
async fn replace(
    admin: &mut TestAdmin,
    bank: v1::BankSettings,
    entries: Vec<v1::BankEntry>,
    chunk: usize,
) -> Result<v1::BankStatus, tonic::Status> {
    let mut messages = vec![v1::ReplaceBankRequest {
        bank: Some(bank),
        entries: Vec::new(),
    }];
    for part in entries.chunks(chunk.max(1)) {
        messages.push(v1::ReplaceBankRequest {
            bank: None,
            entries: part.to_vec(),
        });
    }
    admin
        .replace_bank(futures_util::stream::iter(messages))
        .await
        .map(|r| r.into_inner())
}

/// A photo (or, with a group, an icon) event carrying `hash`.
fn media(id: &str, actor: &str, group: Option<&str>, hash: [u8; 32], at: i64) -> v1::Event {
    let kind = if group.is_some() {
        "media.group_icon"
    } else {
        "media.profile_photo"
    };
    let mut event = Event::new(id, kind, at, Entity::account(actor))
        .with("pdq_hash", Value::Bytes(hash.to_vec()))
        .with("pdq_quality", Value::Int(90))
        .with("media_id", Value::Text(format!("m-{id}")));
    if let Some(group) = group {
        event.target = Some(Entity::group(group));
    }
    wire(&event)
}

async fn decide(engine: &TestEngine, event: v1::Event) -> v1::Decision {
    let mut client = engine.server.client().await;
    client
        .evaluate(v1::EvaluateRequest {
            event: Some(event),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .decision
        .unwrap()
}

fn severity(decision: &v1::Decision) -> v1::Severity {
    decision.outcome.as_ref().unwrap().severity()
}

/// The evidence the known-hash rule's report carries.
fn evidence(decision: &v1::Decision) -> Vec<v1::MatchEvidence> {
    decision
        .rules
        .iter()
        .find(|r| r.rule == "known-hash-match")
        .expect("the known-hash rule ran")
        .evidence
        .clone()
}

async fn engine_without_banks() -> TestEngine {
    TestEngine::start_with_options(
        SignaturePolicy::default(),
        example_sources(),
        EXAMPLE_POLICY.to_string(),
        PipelineOptions {
            max_future_skew_ms: None,
            ..PipelineOptions::default()
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn banks_change_live_and_decisions_carry_the_evidence() {
    let engine = engine_without_banks().await;
    let mut admin = engine.admin().await;
    let banked = hash(1);
    let false_positive = hash(2);
    // A banked image that the benign one happens to be near: 10 bits.
    let colliding = flipped(false_positive, 10);

    let fp = replace(
        &mut admin,
        settings(ALLOW_LIST, v1::BankKind::Allow, &[], 4),
        vec![entry("fp-1", false_positive)],
        10,
    )
    .await
    .unwrap();
    assert_eq!(fp.entries, 1);
    let status = replace(
        &mut admin,
        settings(BANK, v1::BankKind::Match, &[ALLOW_LIST], 0),
        vec![
            entry("e1", banked),
            entry("e2", colliding),
            entry("e3", hash(3)),
        ],
        2,
    )
    .await
    .unwrap();
    assert_eq!(status.entries, 3);
    assert!(status.memory_bytes > 3 * 32, "{}", status.memory_bytes);

    // A photo 3 bits from a banked hash blocks and reports, with evidence.
    let photo = decide(
        &engine,
        media("p1", "uploader", None, flipped(banked, 3), T0),
    )
    .await;
    assert_eq!(severity(&photo), v1::Severity::Block);
    let [found] = &evidence(&photo)[..] else {
        panic!("one lookup recorded: {:?}", evidence(&photo));
    };
    assert_eq!(found.bank, BANK);
    assert_eq!(found.query_hash, hex::encode(flipped(banked, 3)));
    assert_eq!(found.max_distance, 31);
    assert_eq!(found.suppressed_by, None);
    let [m] = &found.matches[..] else {
        panic!("one match: {:?}", found.matches);
    };
    assert_eq!(
        (m.entry_id.as_str(), m.distance, m.entry_hash.as_str()),
        ("e1", 3, hex::encode(banked).as_str())
    );
    assert_eq!(m.source, "test list");
    assert_eq!(
        m.added_at,
        Some(enforcer::api::timestamp_to_proto(T0 - 86_400_000))
    );

    // A copy of the known false positive (2 bits off) is allowed although
    // it is within 12 bits of a banked entry; the evidence says why.
    let benign = decide(
        &engine,
        media("p2", "someone", None, flipped(false_positive, 2), T0 + 1),
    )
    .await;
    assert_eq!(severity(&benign), v1::Severity::Allow);
    let [suppressed] = &evidence(&benign)[..] else {
        panic!("one lookup recorded: {:?}", evidence(&benign));
    };
    assert_eq!(suppressed.matches[0].entry_id, "e2");
    let hit = suppressed.suppressed_by.clone().expect("suppressed");
    assert_eq!(
        (hit.allow_list.as_str(), hit.entry_id.as_str(), hit.distance),
        (ALLOW_LIST, "fp-1", 2)
    );

    // Removing the entry stops the match at once; adding it back restores it.
    let removed = admin
        .remove_bank_entries(v1::RemoveBankEntriesRequest {
            bank: BANK.into(),
            entry_ids: vec!["e1".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(removed.entries, 2);
    let after_removal = decide(&engine, media("p3", "uploader2", None, banked, T0 + 2)).await;
    assert_eq!(severity(&after_removal), v1::Severity::Allow);
    assert!(evidence(&after_removal).is_empty());
    admin
        .add_bank_entries(v1::AddBankEntriesRequest {
            bank: BANK.into(),
            entries: vec![entry("e1", banked)],
        })
        .await
        .unwrap();
    let icon = decide(
        &engine,
        media("p4", "ring", Some("grp-1"), flipped(banked, 1), T0 + 3),
    )
    .await;
    assert_eq!(severity(&icon), v1::Severity::Block);

    // The two blocks are exported as report records, nothing else.
    let mut client = engine.server.client().await;
    let page = client
        .export_reports(v1::ExportReportsRequest {
            after_sequence: 0,
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = page.reports.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(ids, ["p1", "p4"]);
    assert_eq!(page.last_sequence, 4, "every decision read");
    let report = &page.reports[1];
    assert_eq!(report.decision_id, icon.id);
    assert_eq!(report.sequence, icon.sequence);
    assert_eq!(report.event_kind, "media.group_icon");
    let accounts: Vec<&str> = report.accounts.iter().map(|e| e.id.as_str()).collect();
    let groups: Vec<&str> = report.groups.iter().map(|e| e.id.as_str()).collect();
    assert_eq!((accounts, groups), (vec!["ring"], vec!["grp-1"]));
    let media = report.media.clone().unwrap();
    assert_eq!(media.pdq_hash, hex::encode(flipped(banked, 1)));
    assert_eq!((media.pdq_quality, media.media_id.as_str()), (90, "m-p4"));
    assert_eq!(
        report.occurred_at,
        Some(enforcer::api::timestamp_to_proto(T0 + 3))
    );
    let rule = report
        .rules
        .iter()
        .find(|r| r.rule == "known-hash-match")
        .expect("the matching rule is named");
    assert_eq!(rule.evidence[0].matches[0].entry_id, "e1");
    assert_eq!(rule.evidence[0].matches[0].distance, 1);
    assert!(rule.reasons[0].explanation.contains("e1"));
    assert!(
        report
            .actions
            .iter()
            .any(|a| a.action() == v1::ActionType::ReportToClearinghouse)
    );
    // Resuming from the last sequence finds nothing new.
    let next = client
        .export_reports(v1::ExportReportsRequest {
            after_sequence: page.last_sequence,
            limit: 10,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(next.reports.is_empty());
    assert_eq!(next.last_sequence, page.last_sequence);

    let listed = admin
        .list_banks(v1::ListBanksRequest {})
        .await
        .unwrap()
        .into_inner()
        .banks;
    let counts: Vec<(String, u64)> = listed
        .iter()
        .map(|b| (b.bank.clone().unwrap().name, b.entries))
        .collect();
    assert_eq!(counts, [(BANK.to_string(), 3), (ALLOW_LIST.to_string(), 1)]);
}

/// What was tried, what came back, the code and a part of the message
/// expected.
type RefusalCase = (
    &'static str,
    Result<tonic::Response<v1::BankStatus>, tonic::Status>,
    Code,
    &'static str,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bank_changes_are_refused_precisely_and_change_nothing() {
    let engine = engine_without_banks().await;
    let mut admin = engine.admin().await;
    replace(
        &mut admin,
        settings(ALLOW_LIST, v1::BankKind::Allow, &[], 4),
        vec![entry("fp-1", hash(2))],
        10,
    )
    .await
    .unwrap();
    replace(
        &mut admin,
        settings(BANK, v1::BankKind::Match, &[ALLOW_LIST], 0),
        vec![entry("e1", hash(1))],
        10,
    )
    .await
    .unwrap();

    let add = |bank: &str, entries: Vec<v1::BankEntry>| v1::AddBankEntriesRequest {
        bank: bank.into(),
        entries,
    };
    let mut short = entry("x", hash(5));
    short.hash.pop();
    let bad_time = v1::BankEntry {
        added_at: Some(prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        }),
        ..entry("y", hash(6))
    };
    let cases: Vec<RefusalCase> = vec![
        (
            "an id already in the bank",
            admin
                .add_bank_entries(add(BANK, vec![entry("e1", hash(9))]))
                .await,
            Code::AlreadyExists,
            "entry id `e1` is already in the bank",
        ),
        (
            "an id given twice",
            admin
                .add_bank_entries(add(BANK, vec![entry("z", hash(7)), entry("z", hash(8))]))
                .await,
            Code::InvalidArgument,
            "entry id `z` is given twice",
        ),
        (
            "a 31-byte hash",
            admin
                .add_bank_entries(add(BANK, vec![entry("ok", hash(4)), short]))
                .await,
            Code::InvalidArgument,
            "entries[1].hash: is 31 bytes; a PDQ hash is 32",
        ),
        (
            "a bad time",
            admin.add_bank_entries(add(BANK, vec![bad_time])).await,
            Code::InvalidArgument,
            "entries[0].added_at",
        ),
        (
            "an unknown bank",
            admin
                .add_bank_entries(add("nope", vec![entry("a", hash(4))]))
                .await,
            Code::NotFound,
            "no hash bank named `nope`",
        ),
        (
            "no entries",
            admin.add_bank_entries(add(BANK, Vec::new())).await,
            Code::InvalidArgument,
            "entries: is empty",
        ),
        (
            "an unknown id to remove",
            admin
                .remove_bank_entries(v1::RemoveBankEntriesRequest {
                    bank: BANK.into(),
                    entry_ids: vec!["e1".into(), "ghost".into()],
                })
                .await,
            Code::NotFound,
            "bank `known-csam` has no entry `ghost`",
        ),
        (
            "an allow-list too wide",
            replace(
                &mut admin,
                settings("wide", v1::BankKind::Allow, &[], 40),
                Vec::new(),
                1,
            )
            .await
            .map(tonic::Response::new),
            Code::InvalidArgument,
            "31 bits or less",
        ),
        (
            "a missing allow-list",
            replace(
                &mut admin,
                settings("other", v1::BankKind::Match, &["missing"], 0),
                Vec::new(),
                1,
            )
            .await
            .map(tonic::Response::new),
            Code::InvalidArgument,
            "there is no allow-list `missing`",
        ),
        (
            "an allow-list turned into a match bank while in use",
            replace(
                &mut admin,
                settings(ALLOW_LIST, v1::BankKind::Match, &[], 0),
                Vec::new(),
                1,
            )
            .await
            .map(tonic::Response::new),
            Code::FailedPrecondition,
            "is an allow-list of bank `known-csam`",
        ),
    ];
    for (what, result, code, message) in cases {
        let status = result.expect_err(what);
        assert_eq!(status.code(), code, "{what}: {}", status.message());
        assert!(
            status.message().contains(message),
            "{what}: {}",
            status.message()
        );
    }

    // A stream whose first message names no bank.
    let unnamed = admin
        .replace_bank(futures_util::stream::iter(vec![v1::ReplaceBankRequest {
            bank: None,
            entries: vec![entry("a", hash(1))],
        }]))
        .await
        .unwrap_err();
    assert_eq!(unnamed.code(), Code::InvalidArgument);
    assert!(
        unnamed
            .message()
            .contains("first message must name the bank")
    );
    let deleted = admin
        .delete_bank(v1::DeleteBankRequest {
            bank: ALLOW_LIST.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(deleted.code(), Code::FailedPrecondition);

    // Nothing changed: one entry each, still linked.
    let banks = admin
        .list_banks(v1::ListBanksRequest {})
        .await
        .unwrap()
        .into_inner()
        .banks;
    let shown: Vec<(String, u64, Vec<String>)> = banks
        .into_iter()
        .map(|b| {
            let s = b.bank.unwrap();
            (s.name, b.entries, s.allow_lists)
        })
        .collect();
    assert_eq!(
        shown,
        [
            (BANK.to_string(), 1, vec![ALLOW_LIST.to_string()]),
            (ALLOW_LIST.to_string(), 1, Vec::new()),
        ]
    );
    // The audit trail holds every refused change with its reason.
    let audit = admin
        .list_audit(v1::ListAuditRequest {
            rule: String::new(),
            limit: 100,
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let refused = audit.iter().filter(|e| !e.refused.is_empty()).count();
    let made = audit.iter().filter(|e| e.refused.is_empty()).count();
    // Refused at the registry: everything but the field checks made before
    // it (31-byte hash, bad time, no entries, the unnamed stream).
    assert_eq!((made, refused), (2, 8), "{audit:#?}");
    assert!(audit.iter().all(|e| e.identity == "tester"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluation_goes_on_while_a_large_bank_is_replaced() {
    let engine = engine_without_banks().await;
    let mut admin = engine.admin().await;
    let banked = hash(1);
    replace(
        &mut admin,
        settings(BANK, v1::BankKind::Match, &[], 0),
        vec![entry("old", banked)],
        1,
    )
    .await
    .unwrap();

    let replacing = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let during = Arc::new(AtomicU64::new(0));
    let evaluating = {
        let (replacing, done, during) = (replacing.clone(), done.clone(), during.clone());
        let mut client = engine.server.client().await;
        tokio::spawn(async move {
            let mut n = 0u64;
            while !done.load(Ordering::SeqCst) {
                n += 1;
                let decision = client
                    .evaluate(v1::EvaluateRequest {
                        event: Some(media(&format!("d{n}"), "u", None, banked, T0 + n as i64)),
                        ..Default::default()
                    })
                    .await
                    .expect("every evaluation succeeds")
                    .into_inner()
                    .decision
                    .unwrap();
                // Old bank or new, the banked hash is in it: always a block.
                assert_eq!(severity(&decision), v1::Severity::Block, "event d{n}");
                if replacing.load(Ordering::SeqCst) {
                    during.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };

    let mut entries: Vec<v1::BankEntry> = (10..150_010)
        .map(|n| entry(&format!("n{n}"), hash(n)))
        .collect();
    entries.push(entry("new", banked));
    replacing.store(true, Ordering::SeqCst);
    let status = replace(
        &mut admin,
        settings(BANK, v1::BankKind::Match, &[], 0),
        entries,
        20_000,
    )
    .await
    .unwrap();
    replacing.store(false, Ordering::SeqCst);
    done.store(true, Ordering::SeqCst);
    evaluating.await.unwrap();
    assert_eq!(status.entries, 150_001);
    assert!(
        during.load(Ordering::SeqCst) > 0,
        "no evaluation finished while the bank was replaced"
    );
    let after = decide(&engine, media("final", "u2", None, banked, T0 - 1)).await;
    assert_eq!(evidence(&after)[0].matches[0].entry_id, "new");
}

/// A picture drawn for the engine's own tests, and its PDQ hash by Meta's
/// implementation (see `engine/src/media/tests.rs`).
const SHAPES_PNG: &[u8] = include_bytes!("../../engine/src/media/testdata/shapes-320x200.png");
const SHAPES_PDQ: &str = "72660e2f3399cce6331628e3d19926e783183ee64e993327cc98b3563366cd99";

fn photo_with_image(id: &str, image: &[u8], extra: Option<(&str, Value)>) -> v1::Event {
    let mut event = Event::new(id, "media.profile_photo", T0, Entity::account("uploader"))
        .with("image", Value::Bytes(image.to_vec()));
    if let Some((name, value)) = extra {
        event = event.with(name, value);
    }
    wire(&event)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_sent_in_an_event_is_hashed_matched_and_dropped() {
    use sha2::Digest;
    let engine = engine_without_banks().await;
    let mut admin = engine.admin().await;
    let mut banked = [0u8; 32];
    hex::decode_to_slice(SHAPES_PDQ, &mut banked).unwrap();
    replace(
        &mut admin,
        settings(BANK, v1::BankKind::Match, &[], 0),
        vec![entry("shapes", banked)],
        1,
    )
    .await
    .unwrap();

    let decision = decide(&engine, photo_with_image("img-1", SHAPES_PNG, None)).await;
    assert_eq!(severity(&decision), v1::Severity::Block);
    let [found] = &evidence(&decision)[..] else {
        panic!("one lookup: {:?}", evidence(&decision));
    };
    assert_eq!(found.matches[0].entry_id, "shapes");
    assert!(found.matches[0].distance <= 4, "{:?}", found.matches[0]);

    // The event as decided holds the hashes, never the bytes.
    let event = decision.event.clone().unwrap();
    let names: Vec<&str> = event.attributes.keys().map(String::as_str).collect();
    assert!(!names.contains(&"image"), "{names:?}");
    for name in [
        "pdq_hash",
        "pdq_quality",
        "image_sha256",
        "image_md5",
        "image_width",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let sha256 = hex::encode(sha2::Sha256::digest(SHAPES_PNG));
    let mut client = engine.server.client().await;
    let reports = client
        .export_reports(v1::ExportReportsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .reports;
    let media = reports[0].media.clone().unwrap();
    assert_eq!(media.image_sha256, sha256);
    assert_eq!(media.image_md5.len(), 32);
    assert_eq!(media.pdq_hash, found.query_hash);
    assert!(media.pdq_quality > 49, "{}", media.pdq_quality);

    // Bytes that are not an image, and an image beside a hash, are refused.
    for (event, message) in [
        (
            photo_with_image("img-2", b"\x00\x01\x02\x03 not an image", None),
            "event.attributes.image: image bytes are not a JPEG, PNG, GIF or WebP",
        ),
        (
            photo_with_image(
                "img-3",
                SHAPES_PNG,
                Some(("pdq_hash", Value::Bytes(banked.to_vec()))),
            ),
            "event.attributes.pdq_hash: is computed from `image`",
        ),
        (
            photo_with_image("img-4", &SHAPES_PNG[..40], None),
            "event.attributes.image: PNG data is corrupt",
        ),
    ] {
        let status = client
            .evaluate(v1::EvaluateRequest {
                event: Some(event),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
        assert!(status.message().contains(message), "{}", status.message());
    }
}
