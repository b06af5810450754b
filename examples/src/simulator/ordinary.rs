//! Ordinary accounts: chat with contacts and in their groups in spells of
//! activity, forward now and then to a few chats, edit their profile, and
//! very rarely report someone. Every habit that a rule counts is capped per
//! bucket of the rule's window, so ordinary accounts stay clearly below every
//! threshold whatever the seed.

use enforcer::event::Entity;
use rand::Rng;

use super::Turn;
use super::media::ordinary_photo;
use super::sample::{
    BucketCap, HOUR_MS, MINUTE_MS, SECOND_MS, SimRng, Window, active_spells, delay_ms, log_uniform,
    random_id,
};
use super::vocab::{self, Field, Forward, Label, Message, Reason, TextEdit};

/// Messages to non-contacts per hour of the clock: any sliding hour sees at
/// most twice this, against a stranger-spray threshold of 20.
const MAX_STRANGERS_PER_HOUR: u32 = 3;

/// Forwards per hour of the clock, each to at most 10 chats: at most 60 in
/// any sliding hour, against a review threshold of 100.
const MAX_FORWARDS_PER_HOUR: u32 = 3;

/// How someone chats.
pub(crate) struct Chat {
    /// Messages an hour while active.
    per_active_hour: f64,
    /// Share of messages to someone not in their contacts.
    stranger_share: f64,
    /// Share of messages to one of their groups.
    group_share: f64,
}

impl Chat {
    /// An ordinary person: a few to ~30 messages an hour on average.
    pub(crate) fn ordinary(rng: &mut SimRng) -> Chat {
        Chat {
            per_active_hour: log_uniform(rng, 5.0, 55.0),
            stranger_share: 0.03,
            group_share: 0.35,
        }
    }

    /// Someone new or someone whose main business is elsewhere.
    pub(crate) fn light(rng: &mut SimRng) -> Chat {
        Chat {
            per_active_hour: log_uniform(rng, 1.0, 12.0),
            stranger_share: 0.02,
            group_share: 0.3,
        }
    }

    /// Account `index` chats over `life`. These messages are never abuse,
    /// whoever sends them.
    pub(crate) fn run(&self, turn: &mut Turn<'_>, index: usize, life: Window) {
        let world = turn.world;
        let me = &world.accounts[index];
        let mut strangers = BucketCap::new(world.window.start, HOUR_MS, MAX_STRANGERS_PER_HOUR);
        for spell in active_spells(&mut turn.rng, life) {
            for at in spell.poisson(&mut turn.rng, self.per_active_hour) {
                let Some((recipient, to_contact)) = self.recipient(turn, index, at, &mut strangers)
                else {
                    continue;
                };
                let message = Message {
                    actor_age_seconds: me.age_seconds(at),
                    to_contact,
                    has_media: turn.rng.random_bool(0.15),
                    message_id: random_id(&mut turn.rng, "msg"),
                };
                let event = vocab::message_sent(at, &me.entity, recipient, message);
                turn.sink.emit(event, me.class, false);
            }
        }
    }

    /// Whom the next message goes to, and whether they have the sender as
    /// a contact (group chat counts as contact).
    fn recipient<'w>(
        &self,
        turn: &mut Turn<'w>,
        index: usize,
        at: i64,
        strangers: &mut BucketCap,
    ) -> Option<(&'w Entity, bool)> {
        let world = turn.world;
        let me = &world.accounts[index];
        if turn.rng.random_bool(self.stranger_share) && strangers.take(at) {
            let stranger = world
                .random_ordinary(&mut turn.rng, index)
                .filter(|s| me.contacts.binary_search(s).is_err())?;
            return Some((&world.accounts[stranger].entity, false));
        }
        if turn.rng.random_bool(self.group_share) || me.contacts.is_empty() {
            return pick_group(turn, index).map(|group| (group, true));
        }
        pick_contact(turn, index, at).map(|contact| (contact, true))
    }
}

/// One of the account's ordinary groups.
fn pick_group<'w>(turn: &mut Turn<'w>, index: usize) -> Option<&'w Entity> {
    let world = turn.world;
    let groups = &world.accounts[index].groups;
    if groups.is_empty() {
        return None;
    }
    let group = groups[turn.rng.random_range(0..groups.len())];
    Some(&world.groups[group].entity)
}

/// One of the account's contacts who has already signed up at `at`.
fn pick_contact<'w>(turn: &mut Turn<'w>, index: usize, at: i64) -> Option<&'w Entity> {
    let world = turn.world;
    let contacts = &world.accounts[index].contacts;
    if contacts.is_empty() {
        return None;
    }
    let contact = &world.accounts[contacts[turn.rng.random_range(0..contacts.len())]];
    contact.exists_at(at).then_some(&contact.entity)
}

/// The first chat a forward went to: a group or a contact, if any.
pub(crate) fn first_chat<'w>(turn: &mut Turn<'w>, index: usize, at: i64) -> Option<&'w Entity> {
    if turn.rng.random_bool(0.4) {
        pick_group(turn, index).or_else(|| pick_contact(turn, index, at))
    } else {
        pick_contact(turn, index, at).or_else(|| pick_group(turn, index))
    }
}

/// A profile or group text edit by an ordinary person: the classifier sees
/// nothing (score below 0.3), now and then a borderline spam score.
pub(crate) fn ordinary_text(rng: &mut SimRng) -> TextEdit {
    let field = if rng.random_bool(0.4) {
        Field::Name
    } else {
        Field::Description
    };
    if rng.random_bool(0.03) {
        TextEdit {
            field,
            label: Label::Spam,
            score: rng.random_range(0.5..=0.7),
        }
    } else {
        TextEdit {
            field,
            label: Label::None,
            score: rng.random_range(0.0..0.3),
        }
    }
}

/// An ordinary account's whole run.
pub(crate) fn ordinary_account(turn: &mut Turn<'_>, index: usize) {
    let world = turn.world;
    let account = &world.accounts[index];
    let life = world.window.since(account.created_ms);
    let signed_up = account.created_ms >= world.window.start;
    if signed_up {
        sign_up(turn, index);
    }
    let chat = if signed_up {
        Chat::light(&mut turn.rng)
    } else {
        Chat::ordinary(&mut turn.rng)
    };
    chat.run(turn, index, life);
    forwards(turn, index, life);
    profile_edits(turn, index, life);
    stray_reports(turn, index, life);
}

/// A new account: created, then within minutes a name and usually a photo.
fn sign_up(turn: &mut Turn<'_>, index: usize) {
    let account = &turn.world.accounts[index];
    let created = account.created_ms;
    let emit_ordinary = |turn: &mut Turn<'_>, event| turn.sink.emit(event, account.class, false);
    emit_ordinary(turn, vocab::account_created(created, &account.entity));

    let named = created + delay_ms(&mut turn.rng, 10 * SECOND_MS, 10 * MINUTE_MS);
    let name = TextEdit {
        field: Field::Name,
        label: Label::None,
        score: turn.rng.random_range(0.0..0.2),
    };
    emit_ordinary(turn, vocab::profile_updated(named, &account.entity, &name));
    if turn.rng.random_bool(0.7) {
        let pictured = created + delay_ms(&mut turn.rng, 30 * SECOND_MS, 30 * MINUTE_MS);
        let photo = ordinary_photo(&mut turn.rng);
        emit_ordinary(turn, vocab::profile_photo(pictured, &account.entity, photo));
    }
}

/// Occasional forwards of something funny to 1-5 chats, rarely up to 10.
fn forwards(turn: &mut Turn<'_>, index: usize, life: Window) {
    let world = turn.world;
    let me = &world.accounts[index];
    let mut cap = BucketCap::new(world.window.start, HOUR_MS, MAX_FORWARDS_PER_HOUR);
    let per_hour = log_uniform(&mut turn.rng, 0.05, 1.5);
    for at in life.poisson(&mut turn.rng, per_hour) {
        if !cap.take(at) {
            continue;
        }
        let chat_count = if turn.rng.random_bool(0.9) {
            turn.rng.random_range(1..=5)
        } else {
            turn.rng.random_range(6..=10)
        };
        let forward = Forward {
            chat_count,
            message_id: random_id(&mut turn.rng, "msg"),
            forward_depth: turn.rng.random_range(0..=4),
        };
        let first = first_chat(turn, index, at);
        let event = vocab::message_forwarded(at, &me.entity, first, forward);
        turn.sink.emit(event, me.class, false);
    }
}

/// Now and then a new name, description or photo.
fn profile_edits(turn: &mut Turn<'_>, index: usize, life: Window) {
    let me = &turn.world.accounts[index];
    for at in life.poisson(&mut turn.rng, 0.03) {
        let edit = ordinary_text(&mut turn.rng);
        turn.sink.emit(
            vocab::profile_updated(at, &me.entity, &edit),
            me.class,
            false,
        );
    }
    for at in life.poisson(&mut turn.rng, 0.015) {
        let photo = ordinary_photo(&mut turn.rng);
        turn.sink
            .emit(vocab::profile_photo(at, &me.entity, photo), me.class, false);
    }
}

/// Very rarely, a report of another ordinary account (a quarrel, a
/// misunderstanding), never more than a couple against any one account.
fn stray_reports(turn: &mut Turn<'_>, index: usize, life: Window) {
    let world = turn.world;
    let me = &world.accounts[index];
    for at in life.poisson(&mut turn.rng, 0.002) {
        let Some(target) = world.random_ordinary(&mut turn.rng, index) else {
            continue;
        };
        if !turn.sink.take_stray_report(target) {
            continue;
        }
        let reason = [
            Reason::Harassment,
            Reason::Other,
            Reason::Spam,
            Reason::Scam,
        ][turn.rng.random_range(0..4)];
        let event = vocab::report_filed(at, &me.entity, &world.accounts[target].entity, reason);
        turn.sink.emit(event, me.class, false);
    }
}
