//! Calibration against the example rules: computing the rules' windows over
//! the generated events, ordinary accounts and groups stay clearly below
//! every threshold and each abusive entity clearly crosses at least one.

use std::collections::{HashMap, HashSet};

use enforcer::event::{Entity, Event};

use super::super::{MATCH_DISTANCE, MIN_MATCH_QUALITY, SimConfig, Traffic, nearest_bank_entry};
use super::{
    DAY, HOUR, MINUTE, boolean, bytes, classes, default_traffic, entities_of, float, group_by, int,
    long_traffic, max_count_in_window, max_distinct_in_window, max_sum_in_window, simulate, text,
};
use crate::simulator::Class;

// The example rules' thresholds.
const FANOUT_LIMIT: i64 = 20;
const FORWARD_HOURLY_REVIEW: i64 = 100;
const FORWARD_HOURLY_LIMIT: i64 = 300;
const STRANGERS_HOURLY: usize = 50;
const STRANGERS_WITH_COMPLAINTS: usize = 20;
const COMPLAINTS_DAILY: usize = 5;
const YOUNG_SECONDS: i64 = 30 * 24 * 3600;
const REPORTERS_DAILY_REVIEW: usize = 5;
const CHILD_SAFETY_REVIEW: usize = 3;
const CHILD_SEXUALIZATION_REVIEW: f64 = 0.6;
const SPAM_REVIEW: f64 = 0.8;
const LINK_JOINS_HOURLY: i64 = 200;
const LINK_SHARES_HOURLY: i64 = 100;
const PUBLIC_SHARES_DAILY: i64 = 20;
const BURST_10_MINUTES: i64 = 60;
const BURST_HOURLY: i64 = 200;
const NEW_ACCOUNT_SECONDS: i64 = 24 * 3600;

fn actor(event: &Event) -> Option<Entity> {
    Some(event.actor.clone())
}

fn target(event: &Event) -> Option<Entity> {
    event.target.clone()
}

/// Per actor: the most distinct non-contact recipients in any hour.
fn strangers_per_hour(traffic: &Traffic) -> HashMap<Entity, usize> {
    group_by(traffic, "message.sent", actor)
        .into_iter()
        .map(|(account, sent)| {
            let points = sent
                .iter()
                .filter(|e| !boolean(e, "to_contact"))
                .filter_map(|e| Some((e.occurred_at_ms, e.target.clone()?)))
                .collect();
            (account, max_distinct_in_window(points, HOUR))
        })
        .collect()
}

/// Per target: the most distinct reporters in any day, for reports whose
/// reason passes `reason`.
fn reporters_per_day(traffic: &Traffic, reason: impl Fn(&str) -> bool) -> HashMap<Entity, usize> {
    group_by(traffic, "report.filed", target)
        .into_iter()
        .map(|(reported, reports)| {
            let points = reports
                .iter()
                .filter(|e| reason(text(e, "reason")))
                .map(|e| (e.occurred_at_ms, e.actor.clone()))
                .collect();
            (reported, max_distinct_in_window(points, DAY))
        })
        .collect()
}

/// Per account: the most complaints in any day, as stranger-spray counts
/// them: every block received plus every distinct spam reporter.
fn complaints_per_day(traffic: &Traffic) -> HashMap<Entity, usize> {
    #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
    enum Complaint<'a> {
        Block(&'a str),
        SpamReporter(&'a Entity),
    }
    let mut points: HashMap<Entity, Vec<(i64, Complaint<'_>)>> = HashMap::new();
    for labelled in &traffic.events {
        let event = &labelled.event;
        let complaint = match event.kind.as_str() {
            "account.blocked" => Complaint::Block(&event.id),
            "report.filed" if text(event, "reason") == "spam" => {
                Complaint::SpamReporter(&event.actor)
            }
            _ => continue,
        };
        if let Some(target) = &event.target {
            let at = event.occurred_at_ms;
            points
                .entry(target.clone())
                .or_default()
                .push((at, complaint));
        }
    }
    points
        .into_iter()
        .map(|(account, points)| (account, max_distinct_in_window(points, DAY)))
        .collect()
}

/// Per actor: the largest single forward and the most chats in any hour.
fn forwarding(traffic: &Traffic) -> HashMap<Entity, (i64, i64)> {
    group_by(traffic, "message.forwarded", actor)
        .into_iter()
        .map(|(account, forwards)| {
            let widest = forwards
                .iter()
                .map(|e| int(e, "chat_count"))
                .max()
                .unwrap_or(0);
            let points = forwards
                .iter()
                .map(|e| (e.occurred_at_ms, int(e, "chat_count")))
                .collect();
            (account, (widest, max_sum_in_window(points, HOUR)))
        })
        .collect()
}

/// Per group: the most link joins in an hour, shares in an hour and public
/// shares in a day.
fn link_activity(traffic: &Traffic) -> HashMap<Entity, (i64, i64, i64)> {
    let joins = group_by(traffic, "group.joined", target);
    let shares = group_by(traffic, "group.invite_link_shared", target);
    let groups: HashSet<&Entity> = joins.keys().chain(shares.keys()).collect();
    groups
        .into_iter()
        .map(|group| {
            let none = Vec::new();
            let joined = joins.get(group).unwrap_or(&none);
            let shared = shares.get(group).unwrap_or(&none);
            let via_link: Vec<&Event> = joined
                .iter()
                .copied()
                .filter(|e| boolean(e, "via_invite_link"))
                .collect();
            let public: Vec<&Event> = shared
                .iter()
                .copied()
                .filter(|e| boolean(e, "public"))
                .collect();
            let activity = (
                max_count_in_window(&via_link, HOUR),
                max_count_in_window(shared, HOUR),
                max_count_in_window(&public, DAY),
            );
            (group.clone(), activity)
        })
        .collect()
}

/// Media events: (who the media is about, hash, quality, is abuse).
fn media(traffic: &Traffic) -> Vec<(&Entity, &[u8], i64, bool)> {
    traffic
        .events
        .iter()
        .filter_map(|labelled| {
            let event = &labelled.event;
            let about = match event.kind.as_str() {
                "media.profile_photo" => &event.actor,
                "media.group_icon" => event.target.as_ref()?,
                _ => return None,
            };
            let quality = int(event, "pdq_quality");
            Some((
                about,
                bytes(event, "pdq_hash"),
                quality,
                labelled.truth.abusive,
            ))
        })
        .collect()
}

/// Whether the media matches the bank as `known-hash-match` would.
fn matches_bank(traffic: &Traffic, hash: &[u8], quality: i64) -> bool {
    quality >= MIN_MATCH_QUALITY && is_near_bank(traffic, hash)
}

fn is_near_bank(traffic: &Traffic, hash: &[u8]) -> bool {
    nearest_bank_entry(&traffic.bank, hash).is_some_and(|(_, distance)| distance <= MATCH_DISTANCE)
}

/// Text edits as (whose profile or which group, label, score).
fn text_edits(traffic: &Traffic) -> Vec<(&Entity, &str, f64)> {
    traffic
        .events
        .iter()
        .filter_map(|labelled| {
            let event = &labelled.event;
            let about = match event.kind.as_str() {
                "profile.updated" => &event.actor,
                "group.updated" => event.target.as_ref()?,
                _ => return None,
            };
            Some((
                about,
                text(event, "classifier_label"),
                float(event, "classifier_score"),
            ))
        })
        .collect()
}

fn harmful(label: &str, score: f64) -> bool {
    match label {
        "child_sexualization" => score >= CHILD_SEXUALIZATION_REVIEW,
        "spam" | "scam" | "hate" => score >= SPAM_REVIEW,
        _ => false,
    }
}

/// Per actor: the most messages in 10 minutes and in an hour while younger
/// than a day.
fn young_bursts(traffic: &Traffic) -> HashMap<Entity, (i64, i64)> {
    group_by(traffic, "message.sent", actor)
        .into_iter()
        .map(|(account, sent)| {
            let young: Vec<&Event> = sent
                .into_iter()
                .filter(|e| int(e, "actor_age_seconds") < NEW_ACCOUNT_SECONDS)
                .collect();
            let bursts = (
                max_count_in_window(&young, 10 * MINUTE),
                max_count_in_window(&young, HOUR),
            );
            (account, bursts)
        })
        .collect()
}

fn check_ordinary_stays_below(traffic: &Traffic) {
    let classes = classes(traffic);
    let is_ordinary =
        |entity: &Entity| matches!(classes[entity], Class::Ordinary | Class::OrdinaryGroup);

    for (account, (widest, hourly)) in forwarding(traffic) {
        if is_ordinary(&account) {
            // Ordinary forwards reach at most 10 chats, half the limit.
            assert!(
                widest <= FANOUT_LIMIT / 2,
                "{account} forwarded to {widest} at once"
            );
            assert!(
                hourly < FORWARD_HOURLY_REVIEW * 2 / 3,
                "{account} forwarded to {hourly} in an hour"
            );
        }
    }
    for (account, strangers) in strangers_per_hour(traffic) {
        if is_ordinary(&account) {
            assert!(
                strangers < STRANGERS_WITH_COMPLAINTS / 2,
                "{account} messaged {strangers} strangers"
            );
        }
    }
    for (reported, reporters) in reporters_per_day(traffic, |_| true) {
        if is_ordinary(&reported) {
            assert!(
                reporters < REPORTERS_DAILY_REVIEW - 1,
                "{reported} has {reporters} reporters"
            );
        }
    }
    for (reported, reporters) in reporters_per_day(traffic, |r| r == "child_safety") {
        let ordinary = is_ordinary(&reported);
        assert!(
            !ordinary || reporters == 0,
            "{reported} has {reporters} child-safety reporters"
        );
    }
    for (about, label, score) in text_edits(traffic) {
        if is_ordinary(about) {
            assert!(!harmful(label, score), "{about}: {label} {score}");
            assert!(label != "child_sexualization", "{about}: {label} {score}");
        }
    }
    for (group, (joins, shares, public)) in link_activity(traffic) {
        if is_ordinary(&group) {
            assert!(
                joins < LINK_JOINS_HOURLY / 5,
                "{group}: {joins} link joins in an hour"
            );
            assert!(
                shares < LINK_SHARES_HOURLY / 4,
                "{group}: {shares} link shares in an hour"
            );
            assert!(
                public < PUBLIC_SHARES_DAILY / 4,
                "{group}: {public} public shares in a day"
            );
        }
    }
    for (account, (ten_minutes, hour)) in young_bursts(traffic) {
        if is_ordinary(&account) {
            assert!(
                ten_minutes < BURST_10_MINUTES / 3,
                "{account}: {ten_minutes} in 10 minutes"
            );
            assert!(hour < BURST_HOURLY / 4, "{account}: {hour} in an hour");
        }
    }
}

#[test]
fn ordinary_traffic_stays_clearly_below_every_threshold() {
    check_ordinary_stays_below(default_traffic());
}

#[test]
fn ordinary_traffic_stays_below_over_several_hours() {
    check_ordinary_stays_below(long_traffic());
}

fn check_only_abuse_is_near_the_bank(traffic: &Traffic) {
    let (mut abusive, mut low_quality) = (0, 0);
    for (about, hash, quality, is_abuse) in media(traffic) {
        assert_eq!(is_near_bank(traffic, hash), is_abuse, "{about}");
        abusive += usize::from(is_abuse);
        low_quality += usize::from(is_abuse && quality < MIN_MATCH_QUALITY);
    }
    assert!(abusive > 0, "the ring uploads known images");
    assert!(low_quality > 0, "some ring uploads are too poor to match");
}

fn check_spammers_spray_strangers(traffic: &Traffic) {
    let strangers = strangers_per_hour(traffic);
    let complaints = complaints_per_day(traffic);
    let spammers = entities_of(traffic, Class::Spammer);
    let harmful_profiles: HashSet<&Entity> = text_edits(traffic)
        .into_iter()
        .filter(|&(_, label, score)| harmful(label, score))
        .map(|(about, _, _)| about)
        .collect();
    for spammer in spammers {
        let sprayed = strangers.get(spammer).copied().unwrap_or(0);
        let complaints = complaints.get(spammer).copied().unwrap_or(0);
        assert!(
            sprayed >= STRANGERS_HOURLY
                || (sprayed >= STRANGERS_WITH_COMPLAINTS && complaints >= COMPLAINTS_DAILY),
            "{spammer}: {sprayed} strangers, {complaints} complaints"
        );
        assert!(
            harmful_profiles.contains(spammer),
            "{spammer} has no spam profile"
        );
    }
    for labelled in &traffic.events {
        let event = &labelled.event;
        if labelled.truth.class == Class::Spammer && event.kind == "message.sent" {
            assert!(
                int(event, "actor_age_seconds") < YOUNG_SECONDS,
                "{}",
                event.id
            );
        }
    }
}

fn check_mass_forwarders_forward_widely(traffic: &Traffic) {
    let forwards = forwarding(traffic);
    for account in entities_of(traffic, Class::MassForwarder) {
        let (widest, hourly) = forwards.get(account).copied().unwrap_or_default();
        assert!(
            widest >= FANOUT_LIMIT || hourly >= FORWARD_HOURLY_LIMIT,
            "{account}: widest {widest}, {hourly} in an hour"
        );
    }
}

fn check_ring_members_show_known_images(traffic: &Traffic) {
    let matched: HashSet<&Entity> = media(traffic)
        .into_iter()
        .filter(|&(_, hash, quality, _)| matches_bank(traffic, hash, quality))
        .map(|(about, ..)| about)
        .collect();
    for member in entities_of(traffic, Class::CsamRingMember) {
        assert!(matched.contains(member), "{member} has no matching photo");
    }
    for group in entities_of(traffic, Class::CsamGroup) {
        assert!(matched.contains(group), "{group} has no matching icon");
    }
}

fn check_csam_groups_cross_text_report_and_link_thresholds(traffic: &Traffic) {
    let child_safety = reporters_per_day(traffic, |r| r == "child_safety");
    let links = link_activity(traffic);
    let flagged: HashSet<&Entity> = text_edits(traffic)
        .into_iter()
        .filter(|&(_, label, score)| label == "child_sexualization" && harmful(label, score))
        .map(|(about, _, _)| about)
        .collect();
    for group in entities_of(traffic, Class::CsamGroup) {
        let reporters = child_safety.get(group).copied().unwrap_or(0);
        assert!(
            reporters >= CHILD_SAFETY_REVIEW,
            "{group}: {reporters} child-safety reporters"
        );
        let (_, _, public) = links.get(group).copied().unwrap_or_default();
        assert!(
            public >= PUBLIC_SHARES_DAILY,
            "{group}: {public} public shares"
        );
        assert!(
            flagged.contains(group),
            "{group} has no flagged description"
        );
    }
}

fn check_new_account_bots_burst(traffic: &Traffic) {
    let bursts = young_bursts(traffic);
    let created: HashSet<&Entity> = traffic
        .events
        .iter()
        .filter(|l| l.event.kind == "account.created")
        .map(|l| &l.event.actor)
        .collect();
    for bot in entities_of(traffic, Class::NewAccountBot) {
        assert!(
            created.contains(bot),
            "{bot} was not created during the run"
        );
        let (ten_minutes, hour) = bursts.get(bot).copied().unwrap_or_default();
        assert!(
            ten_minutes >= BURST_10_MINUTES || hour >= BURST_HOURLY,
            "{bot}: {ten_minutes} in 10 minutes, {hour} in an hour"
        );
    }
}

#[test]
fn only_abuse_is_near_the_bank() {
    check_only_abuse_is_near_the_bank(default_traffic());
}

#[test]
fn spammers_spray_strangers() {
    check_spammers_spray_strangers(default_traffic());
}

#[test]
fn mass_forwarders_forward_widely() {
    check_mass_forwarders_forward_widely(default_traffic());
}

#[test]
fn ring_members_show_known_images() {
    check_ring_members_show_known_images(default_traffic());
}

#[test]
fn csam_groups_cross_text_report_and_link_thresholds() {
    check_csam_groups_cross_text_report_and_link_thresholds(default_traffic());
}

#[test]
fn new_account_bots_burst() {
    check_new_account_bots_burst(default_traffic());
}

/// Other seeds and a smaller population: the abusive classes cross their
/// thresholds by design, not by luck of one seed.
#[test]
fn abuse_crosses_thresholds_for_other_seeds() {
    for seed in [1, 2, 3] {
        let traffic = simulate(SimConfig {
            seed,
            accounts: 3_000,
            groups: 150,
            ..SimConfig::default()
        });
        check_only_abuse_is_near_the_bank(&traffic);
        check_spammers_spray_strangers(&traffic);
        check_mass_forwarders_forward_widely(&traffic);
        check_ring_members_show_known_images(&traffic);
        check_csam_groups_cross_text_report_and_link_thresholds(&traffic);
        check_new_account_bots_burst(&traffic);
        check_ordinary_stays_below(&traffic);
    }
}

/// Calibration sweep over many seeds of the default configuration, for
/// whoever retunes the behaviours: `cargo test --release -p
/// enforcer-examples -- --ignored calibration_sweep`.
#[test]
#[ignore = "slow: dozens of full default runs"]
fn calibration_sweep() {
    for seed in 100..130 {
        let traffic = simulate(SimConfig {
            seed,
            ..SimConfig::default()
        });
        check_ordinary_stays_below(&traffic);
        check_only_abuse_is_near_the_bank(&traffic);
        check_spammers_spray_strangers(&traffic);
        check_mass_forwarders_forward_widely(&traffic);
        check_ring_members_show_known_images(&traffic);
        check_csam_groups_cross_text_report_and_link_thresholds(&traffic);
        check_new_account_bots_burst(&traffic);
    }
}
