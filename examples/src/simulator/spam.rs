//! Spammers and new-account bots, and how their recipients react. Spammers
//! are days-old accounts working through 40-150 strangers an hour behind a
//! spam or scam profile; bots sign up during the run and fire off bursts of
//! 60-120 messages within minutes. A fraction of the people they reach
//! block or report them, which is itself evidence the rules count.

use std::collections::HashSet;

use rand::Rng;

use super::Turn;
use super::media::ordinary_photo;
use super::sample::{HOUR_MS, MINUTE_MS, SECOND_MS, Window, delay_ms, random_id};
use super::vocab::{self, Field, Label, Message, Reason, TextEdit};

/// How a first-time recipient responds: the shares that block and report,
/// block only, or report only (the rest ignore it).
struct Reaction {
    both: f64,
    block_only: f64,
    report_only: f64,
}

/// Unsolicited spam from a stranger is blocked or reported often.
const TO_SPAM: Reaction = Reaction {
    both: 0.10,
    block_only: 0.12,
    report_only: 0.06,
};

/// Bot messages are shorter-lived and more often just ignored.
const TO_BOT: Reaction = Reaction {
    both: 0.03,
    block_only: 0.05,
    report_only: 0.02,
};

/// Strangers messaged per hour by a spammer.
const SPAMMER_RATE: std::ops::RangeInclusive<u32> = 40..=150;

/// A spammer's whole run.
pub(crate) fn spammer(turn: &mut Turn<'_>, index: usize) {
    let world = turn.world;
    let me = &world.accounts[index];
    let per_hour = f64::from(turn.rng.random_range(SPAMMER_RATE));
    let scam = turn.rng.random_bool(0.3);
    let label = if scam { Label::Scam } else { Label::Spam };

    // The persona is set up first: a pitch in the description, often a
    // stock photo (which in itself is not abuse).
    let pitch = TextEdit {
        field: Field::Description,
        label,
        score: turn.rng.random_range(0.8..=0.99),
    };
    let at = world.window.head(0.1).pick(&mut turn.rng);
    turn.sink.emit(
        vocab::profile_updated(at, &me.entity, &pitch),
        me.class,
        true,
    );
    if turn.rng.random_bool(0.5) {
        let at = world.window.head(0.1).pick(&mut turn.rng);
        let photo = ordinary_photo(&mut turn.rng);
        turn.sink
            .emit(vocab::profile_photo(at, &me.entity, photo), me.class, false);
    }

    // Exactly the hourly rate in every full hour, spread at random.
    let mut reached = HashSet::new();
    for hour in world.window.buckets(HOUR_MS) {
        let count = (per_hour * hour.len() as f64 / HOUR_MS as f64).round() as usize;
        for at in hour.pick_sorted(&mut turn.rng, count) {
            let Some(recipient) = world.random_ordinary(&mut turn.rng, index) else {
                continue;
            };
            let has_media = turn.rng.random_bool(0.3);
            send(turn, index, at, recipient, false, has_media);
            if reached.insert(recipient) {
                // Most people file a scam under spam, the first reason offered.
                let reason = if scam && turn.rng.random_bool(0.5) {
                    Reason::Scam
                } else {
                    Reason::Spam
                };
                react(turn, at, recipient, index, &TO_SPAM, reason);
            }
        }
    }
}

/// A bot's whole run: created during the run, then bursts until its
/// operator moves on after one to four hours.
pub(crate) fn bot(turn: &mut Turn<'_>, index: usize) {
    let world = turn.world;
    let me = &world.accounts[index];
    let created = me.created_ms;
    turn.sink
        .emit(vocab::account_created(created, &me.entity), me.class, true);

    let per_hour = f64::from(turn.rng.random_range(100..=600u32));
    let retired = created + delay_ms(&mut turn.rng, HOUR_MS, 4 * HOUR_MS);
    let mut burst_start = created + turn.rng.random_range(MINUTE_MS..=10 * MINUTE_MS);
    let mut reached = HashSet::new();
    while burst_start < retired.min(world.window.end) {
        // Each burst alone crosses 60 messages in 10 minutes; pauses
        // between bursts bring the average to the bot's hourly rate.
        let size = turn.rng.random_range(60..=120usize);
        let len = turn.rng.random_range(3 * MINUTE_MS..=8 * MINUTE_MS);
        let burst = Window::new(burst_start, burst_start + len);
        for at in burst.pick_sorted(&mut turn.rng, size) {
            bot_message(turn, index, at, &mut reached);
        }
        let period = (size as f64 / per_hour * HOUR_MS as f64) as i64;
        burst_start += period.max(len + MINUTE_MS);
    }
}

/// One bot message: mostly to a stranger, sometimes to a fellow bot (bots
/// add each other as contacts to look less alone).
fn bot_message(turn: &mut Turn<'_>, index: usize, at: i64, reached: &mut HashSet<usize>) {
    let world = turn.world;
    let fellow = world.bots[turn.rng.random_range(0..world.bots.len())];
    if turn.rng.random_bool(0.1) && fellow != index && world.accounts[fellow].exists_at(at) {
        send(turn, index, at, fellow, true, false);
        return;
    }
    let Some(recipient) = world.random_ordinary(&mut turn.rng, index) else {
        return;
    };
    let has_media = turn.rng.random_bool(0.5);
    send(turn, index, at, recipient, false, has_media);
    if reached.insert(recipient) {
        react(turn, at, recipient, index, &TO_BOT, Reason::Spam);
    }
}

/// An abusive direct message from `sender` to `recipient`.
fn send(
    turn: &mut Turn<'_>,
    sender: usize,
    at: i64,
    recipient: usize,
    to_contact: bool,
    has_media: bool,
) {
    let world = turn.world;
    let me = &world.accounts[sender];
    let message = Message {
        actor_age_seconds: me.age_seconds(at),
        to_contact,
        has_media,
        message_id: random_id(&mut turn.rng, "msg"),
    };
    let event = vocab::message_sent(at, &me.entity, &world.accounts[recipient].entity, message);
    turn.sink.emit(event, me.class, true);
}

/// The recipient's response, seconds to half an hour after reading.
fn react(
    turn: &mut Turn<'_>,
    at: i64,
    recipient: usize,
    sender: usize,
    odds: &Reaction,
    reason: Reason,
) {
    let roll: f64 = turn.rng.random();
    let (block, report) = if roll < odds.both {
        (true, true)
    } else if roll < odds.both + odds.block_only {
        (true, false)
    } else if roll < odds.both + odds.block_only + odds.report_only {
        (false, true)
    } else {
        return;
    };
    let world = turn.world;
    let (me, them) = (&world.accounts[recipient], &world.accounts[sender]);
    let mut when = at + delay_ms(&mut turn.rng, 5 * SECOND_MS, 30 * MINUTE_MS);
    if report {
        let event = vocab::report_filed(when, &me.entity, &them.entity, reason);
        turn.sink.emit(event, me.class, false);
        // Reporting flows offer to block straight after.
        when += delay_ms(&mut turn.rng, 2 * SECOND_MS, MINUTE_MS);
    }
    if block {
        turn.sink.emit(
            vocab::account_blocked(when, &me.entity, &them.entity),
            me.class,
            false,
        );
    }
}
