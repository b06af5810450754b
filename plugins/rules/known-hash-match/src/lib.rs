//! Known hash match: a profile photo or group icon whose PDQ hash is near a
//! hash of known child-exploitation imagery. Messages are end-to-end
//! encrypted, but profile photos and group icons are visible to anyone who
//! finds the account or is invited to the group, so they are where such
//! imagery can be matched, and a match is as strong a signal as there is.
//! PDQ is a perceptual hash: a re-encoded, resized or lightly edited copy
//! stays within a few bits of the original, so the bank is searched by
//! Hamming distance rather than for an exact hash.
//!
//! Following Meta's Hasher-Matcher-Actioner, a match is at distance
//! [`MAX_DISTANCE`] or less, and a hash of quality [`LOW_QUALITY`] or less
//! (from a flat or tiny image, whose hash matches too much) is never matched.
//! A match blocks the account, reports it to the clearing house, removes the
//! media and, for a group icon, bans the group.

use enforcer_sdk::*;

/// The rule.
pub struct KnownHashMatch;

/// The hash bank of known child-exploitation imagery.
pub const KNOWN_CSAM_BANK: &str = "known-csam";
/// The largest Hamming distance, in bits, that counts as a match.
pub const MAX_DISTANCE: u32 = 31;
/// A hash of this PDQ quality or lower is not matched.
pub const LOW_QUALITY: i64 = 49;
/// The length of a PDQ hash in bytes (256 bits).
pub const HASH_BYTES: usize = 32;
/// At most this many matches are named in the verdict, nearest first.
pub const MAX_REASONS: usize = 3;
/// The label put on the account, and on the group for a group icon.
pub const LABEL: &str = "known-csam-media";
/// How long the label lasts, in seconds (365 days).
pub const LABEL_TTL_SECONDS: u64 = 365 * DAY as u64;

impl Rule for KnownHashMatch {
    fn manifest() -> Manifest {
        Manifest::new("known-hash-match", "1.0.0")
            .on("media.profile_photo")
            .on("media.group_icon")
    }

    fn evaluate(event: &Event, state: &State) -> Verdict {
        let Some(hash) = event.bytes("pdq_hash") else {
            return Verdict::allow();
        };
        if hash.len() != HASH_BYTES {
            log(
                LogLevel::Debug,
                &format!(
                    "pdq_hash is {} bytes, not {HASH_BYTES}; not matched",
                    hash.len()
                ),
            );
            return Verdict::allow();
        }
        // An absent (or non-integer) quality is unknown, and still matched.
        if let Some(quality) = event.int("pdq_quality").filter(|q| *q <= LOW_QUALITY) {
            return Verdict::allow().reason(
                "low-quality-hash",
                format!(
                    "hash quality {quality} is {LOW_QUALITY} or less; not matched against \
                     {KNOWN_CSAM_BANK}"
                ),
            );
        }

        let matches = state.match_hash(KNOWN_CSAM_BANK, &hash, MAX_DISTANCE);
        if matches.is_empty() {
            return Verdict::allow();
        }

        let media_id = event
            .text("media_id")
            .unwrap_or_else(|| "unknown".to_string());
        // For a group icon, the group whose icon it is; a group icon without
        // a group target still blocks and reports the account that set it.
        let group = if event.is("media.group_icon") {
            event.target().filter(|t| t.kind == EntityKind::Group)
        } else {
            None
        };
        let what = match &group {
            Some(g) => format!("icon of group {}", g.id),
            None if event.is("media.group_icon") => "group icon".to_string(),
            None => "profile photo".to_string(),
        };

        let mut verdict = Verdict::new(Severity::Block, 1.0)
            .action(Action::BlockAccount, Subject::Actor)
            .action(Action::ReportToClearinghouse, Subject::Actor);
        for found in matches.iter().take(MAX_REASONS) {
            verdict = verdict.reason(
                "known-hash-match",
                format!(
                    "{what} (media {media_id}) matches {} entry {} at distance {} (match at \
                     {MAX_DISTANCE} or less)",
                    found.bank, found.entry_id, found.distance
                ),
            );
        }
        verdict = verdict.set_label(Subject::Actor, LABEL, LABEL_TTL_SECONDS);
        if group.is_some() {
            verdict
                .action(Action::RemoveMedia, Subject::Target)
                .action(Action::BanGroup, Subject::Target)
                .set_label(Subject::Target, LABEL, LABEL_TTL_SECONDS)
        } else {
            // The media is the actor's own photo, or an icon whose group the
            // event did not name: remove what the actor set.
            verdict.action(Action::RemoveMedia, Subject::Actor)
        }
    }
}

rule!(KnownHashMatch);

#[cfg(test)]
mod tests {
    use super::*;
    use enforcer_sdk::testing::{EventFixture, StateFixture, evaluate};

    const BANKED: [u8; 32] = [0xa5; 32];

    /// `BANKED` with its first `bits` bits flipped.
    fn near(bits: u32) -> Vec<u8> {
        let mut hash = BANKED.to_vec();
        for bit in 0..bits as usize {
            hash[bit / 8] ^= 0x80 >> (bit % 8);
        }
        hash
    }

    fn photo(hash: &[u8]) -> EventFixture {
        EventFixture::new("media.profile_photo")
            .actor(Entity::account("uploader"))
            .bytes("pdq_hash", hash)
            .int("pdq_quality", 90)
            .text("media_id", "m-42")
    }

    fn icon(hash: &[u8]) -> EventFixture {
        EventFixture::new("media.group_icon")
            .actor(Entity::account("uploader"))
            .target(Entity::group("g1"))
            .bytes("pdq_hash", hash)
            .int("pdq_quality", 90)
            .text("media_id", "m-43")
    }

    fn bank() -> StateFixture {
        StateFixture::new().bank_entry(KNOWN_CSAM_BANK, "entry-7", &BANKED)
    }

    fn run(event: &EventFixture, state: &StateFixture) -> Verdict {
        evaluate::<KnownHashMatch>(event, state)
    }

    fn act(action: Action, subject: Subject) -> RecommendedAction {
        RecommendedAction { action, subject }
    }

    fn label(subject: Subject) -> Effect {
        Effect::SetLabel {
            subject,
            label: "known-csam-media".to_string(),
            ttl_seconds: 365 * 86_400,
        }
    }

    #[test]
    fn manifest_subscribes_to_both_media_kinds_and_reads_no_counter() {
        let manifest = KnownHashMatch::manifest();
        assert_eq!(manifest.name, "known-hash-match");
        assert_eq!(
            manifest.event_kinds,
            ["media.profile_photo", "media.group_icon"]
        );
        assert!(manifest.counters.is_empty());
        assert_eq!((KNOWN_CSAM_BANK, MAX_DISTANCE), ("known-csam", 31));
    }

    #[test]
    fn unmatched_photo_is_allowed() {
        let verdict = run(&photo(&[0x5a; 32]), &bank());
        assert!(verdict.is_allow());
        assert!(verdict.reasons.is_empty());
        assert!(verdict.actions.is_empty());
        assert!(run(&photo(&BANKED), &StateFixture::new()).is_allow());
    }

    #[test]
    fn matched_profile_photo_blocks_reports_and_removes() {
        let verdict = run(&photo(&near(4)), &bank());
        assert_eq!(verdict.severity, Severity::Block);
        assert_eq!(verdict.score, 1.0);
        assert_eq!(
            verdict.actions,
            [
                act(Action::BlockAccount, Subject::Actor),
                act(Action::ReportToClearinghouse, Subject::Actor),
                act(Action::RemoveMedia, Subject::Actor),
            ]
        );
        assert_eq!(verdict.effects, [label(Subject::Actor)]);
        let [reason] = &verdict.reasons[..] else {
            panic!("expected one reason, got {:?}", verdict.reasons);
        };
        assert_eq!(reason.code, "known-hash-match");
        for part in [
            "profile photo",
            "m-42",
            "known-csam",
            "entry-7",
            "distance 4",
        ] {
            assert!(reason.explanation.contains(part), "{}", reason.explanation);
        }
    }

    #[test]
    fn matched_group_icon_also_bans_the_group() {
        let verdict = run(&icon(&BANKED), &bank());
        assert_eq!(verdict.severity, Severity::Block);
        assert_eq!(verdict.score, 1.0);
        assert_eq!(
            verdict.actions,
            [
                act(Action::BlockAccount, Subject::Actor),
                act(Action::ReportToClearinghouse, Subject::Actor),
                act(Action::RemoveMedia, Subject::Target),
                act(Action::BanGroup, Subject::Target),
            ]
        );
        assert_eq!(
            verdict.effects,
            [label(Subject::Actor), label(Subject::Target)]
        );
        let explanation = &verdict.reasons[0].explanation;
        assert!(explanation.contains("icon of group g1"), "{explanation}");
        assert!(explanation.contains("m-43"), "{explanation}");
        assert!(explanation.contains("distance 0"), "{explanation}");
    }

    #[test]
    fn group_icon_without_a_group_still_blocks_the_account() {
        let event = EventFixture::new("media.group_icon")
            .bytes("pdq_hash", &BANKED)
            .int("pdq_quality", 90);
        let verdict = run(&event, &bank());
        assert_eq!(verdict.severity, Severity::Block);
        assert_eq!(
            verdict.actions,
            [
                act(Action::BlockAccount, Subject::Actor),
                act(Action::ReportToClearinghouse, Subject::Actor),
                act(Action::RemoveMedia, Subject::Actor),
            ]
        );
        assert_eq!(verdict.effects, [label(Subject::Actor)]);

        // A target that is an account is not banned as a group.
        let odd = event.target(Entity::account("someone"));
        let verdict = run(&odd, &bank());
        assert_eq!(verdict.severity, Severity::Block);
        assert!(
            verdict
                .actions
                .iter()
                .all(|a| a.subject == Subject::Actor && a.action != Action::BanGroup)
        );
    }

    #[test]
    fn distance_edge_is_thirty_one_bits() {
        let at = run(&photo(&near(31)), &bank());
        assert_eq!(at.severity, Severity::Block);
        assert!(at.reasons[0].explanation.contains("distance 31"));
        let beyond = run(&photo(&near(32)), &bank());
        assert!(beyond.is_allow());
        assert!(beyond.actions.is_empty());
    }

    #[test]
    fn quality_edge_is_fifty() {
        let event = |quality: i64| {
            EventFixture::new("media.profile_photo")
                .bytes("pdq_hash", &BANKED)
                .int("pdq_quality", quality)
        };
        let low = run(&event(49), &bank());
        assert!(low.is_allow());
        assert!(low.actions.is_empty());
        assert!(low.effects.is_empty());
        let [reason] = &low.reasons[..] else {
            panic!("expected one reason, got {:?}", low.reasons);
        };
        assert_eq!(reason.code, "low-quality-hash");
        assert!(
            reason.explanation.contains("quality 49"),
            "{}",
            reason.explanation
        );

        assert_eq!(run(&event(50), &bank()).severity, Severity::Block);
        assert_eq!(run(&event(0), &bank()).reasons[0].code, "low-quality-hash");
        assert_eq!(run(&event(-3), &bank()).reasons[0].code, "low-quality-hash");
    }

    #[test]
    fn unknown_quality_is_still_matched() {
        let absent = EventFixture::new("media.profile_photo").bytes("pdq_hash", &BANKED);
        let verdict = run(&absent, &bank());
        assert_eq!(verdict.severity, Severity::Block);
        assert!(verdict.reasons[0].explanation.contains("media unknown"));

        let text = absent.clone().text("pdq_quality", "10");
        assert_eq!(run(&text, &bank()).severity, Severity::Block);
    }

    #[test]
    fn at_most_three_matches_are_named_nearest_first() {
        let state = bank()
            .bank_entry(KNOWN_CSAM_BANK, "entry-far", &near(20))
            .bank_entry(KNOWN_CSAM_BANK, "entry-mid", &near(10))
            .bank_entry(KNOWN_CSAM_BANK, "entry-near", &near(1))
            .bank_entry("other-bank", "elsewhere", &BANKED);
        let verdict = run(&photo(&BANKED), &state);
        assert_eq!(verdict.severity, Severity::Block);
        let explanations: Vec<&str> = verdict
            .reasons
            .iter()
            .map(|r| r.explanation.as_str())
            .collect();
        assert_eq!(explanations.len(), 3);
        assert!(verdict.reasons.iter().all(|r| r.code == "known-hash-match"));
        assert!(explanations[0].contains("entry-7 at distance 0"));
        assert!(explanations[1].contains("entry-near at distance 1"));
        assert!(explanations[2].contains("entry-mid at distance 10"));
        assert!(!explanations.iter().any(|e| e.contains("elsewhere")));
        // Several matches still recommend each action once.
        assert_eq!(verdict.actions.len(), 3);
        assert_eq!(verdict.effects.len(), 1);
    }

    #[test]
    fn other_banks_do_not_match() {
        let state = StateFixture::new().bank_entry("other-bank", "x", &BANKED);
        assert!(run(&photo(&BANKED), &state).is_allow());
    }

    #[test]
    fn missing_or_malformed_hash_is_allowed() {
        let none = EventFixture::new("media.profile_photo").int("pdq_quality", 90);
        assert!(run(&none, &bank()).is_allow());

        for len in [0, 1, 31, 33, 64] {
            let event =
                EventFixture::new("media.profile_photo").bytes("pdq_hash", &vec![0xa5; len]);
            let verdict = run(&event, &bank());
            assert!(verdict.is_allow(), "{len} bytes");
            assert!(verdict.reasons.is_empty());
        }

        let hex = EventFixture::new("media.group_icon")
            .target(Entity::group("g1"))
            .text("pdq_hash", &"a5".repeat(32));
        assert!(run(&hex, &bank()).is_allow());

        let list = EventFixture::new("media.group_icon")
            .target(Entity::group("g1"))
            .attr("pdq_hash", Value::BytesList(vec![BANKED.to_vec()]));
        assert!(run(&list, &bank()).is_allow());
    }

    #[test]
    fn odd_media_id_is_reported_as_unknown() {
        let event = EventFixture::new("media.profile_photo")
            .bytes("pdq_hash", &BANKED)
            .int("media_id", 42);
        let verdict = run(&event, &bank());
        assert_eq!(verdict.severity, Severity::Block);
        assert!(verdict.reasons[0].explanation.contains("media unknown"));
    }
}
