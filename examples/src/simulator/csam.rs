//! CSAM rings: groups whose icons and members' profile photos are
//! re-encodings of known images (a few bits from a bank entry; some uploads
//! too low in quality to be trusted), whose descriptions the text
//! classifier flags, whose invite link is posted publicly again and again,
//! and which ring members join in a burst. Ordinary people who stumble on
//! the public link join, and some of them report the group.

use rand::Rng;
use rand::seq::index;

use super::Turn;
use super::media::known_image_copy;
use super::ordinary::Chat;
use super::sample::{DAY_MS, HOUR_MS, MINUTE_MS, Window, delay_ms, log_uniform, random_id};
use super::vocab::{self, Field, Label, Message, Reason, TextEdit};
use super::world::Group;

/// Public link posts per day: the invite-link rule's spike is 20.
const PUBLIC_SHARES_PER_DAY: std::ops::RangeInclusive<usize> = 25..=45;

/// A description the text classifier flags for child sexualization.
fn flagged_description(turn: &mut Turn<'_>) -> TextEdit {
    TextEdit {
        field: Field::Description,
        label: Label::ChildSexualization,
        score: turn.rng.random_range(0.6..=0.99),
    }
}

/// A ring member's whole run: a cover of ordinary chat, and a profile
/// photo that is a known image (sometimes also a low-quality copy).
pub(crate) fn ring_member(turn: &mut Turn<'_>, index: usize) {
    let world = turn.world;
    let me = &world.accounts[index];
    Chat::light(&mut turn.rng).run(turn, index, world.window);

    let at = world.window.head(0.7).pick(&mut turn.rng);
    let photo = known_image_copy(&mut turn.rng, &world.bank, false);
    turn.sink
        .emit(vocab::profile_photo(at, &me.entity, photo), me.class, true);
    if turn.rng.random_bool(0.3) {
        let at = world.window.pick(&mut turn.rng);
        let photo = known_image_copy(&mut turn.rng, &world.bank, true);
        turn.sink
            .emit(vocab::profile_photo(at, &me.entity, photo), me.class, true);
    }
    if turn.rng.random_bool(0.5) {
        let at = world.window.pick(&mut turn.rng);
        let edit = flagged_description(turn);
        turn.sink.emit(
            vocab::profile_updated(at, &me.entity, &edit),
            me.class,
            true,
        );
    }
}

/// A CSAM group's whole run.
pub(crate) fn csam_group(turn: &mut Turn<'_>, index: usize) {
    let group = &turn.world.groups[index];
    if group.members.is_empty() {
        return;
    }
    dress_up(turn, group);
    advertise(turn, group);
    let joined = join_burst(turn, group);
    ring_chat(turn, group, &joined);
    stumblers(turn, group);
}

/// A random founder.
fn founder(turn: &mut Turn<'_>, group: &Group) -> usize {
    group.members[turn.rng.random_range(0..group.members.len())]
}

/// Founders set a flagged description and known images as the icon, early
/// in the run; some icon uploads are low-quality copies.
fn dress_up(turn: &mut Turn<'_>, group: &Group) {
    let world = turn.world;
    for n in 0..turn.rng.random_range(1..=2) {
        let at = world
            .window
            .head(if n == 0 { 0.3 } else { 1.0 })
            .pick(&mut turn.rng);
        let editor = &world.accounts[founder(turn, group)];
        let edit = flagged_description(turn);
        let event = vocab::group_updated(at, &editor.entity, &group.entity, &edit);
        turn.sink.emit(event, editor.class, true);
    }
    let low_quality = turn.rng.random_bool(0.6);
    let icons = turn.rng.random_range(1..=2);
    for n in 0..icons + usize::from(low_quality) {
        let at = world.window.head(0.5).pick(&mut turn.rng);
        let editor = &world.accounts[founder(turn, group)];
        let photo = known_image_copy(&mut turn.rng, &world.bank, n >= icons);
        let event = vocab::group_icon(at, &editor.entity, &group.entity, photo);
        turn.sink.emit(event, editor.class, true);
    }
}

/// Founders post the invite link on public pages 25-45 times a day, and
/// pass it on privately a few times.
fn advertise(turn: &mut Turn<'_>, group: &Group) {
    let world = turn.world;
    let post = |turn: &mut Turn<'_>, at: i64, public: bool| {
        let sharer = &world.accounts[founder(turn, group)];
        let event =
            vocab::invite_link_shared(at, &sharer.entity, &group.entity, public, &group.link_id);
        turn.sink.emit(event, sharer.class, true);
    };
    for day in world.window.buckets(DAY_MS) {
        let count = turn.rng.random_range(PUBLIC_SHARES_PER_DAY);
        for at in day.pick_sorted(&mut turn.rng, count) {
            post(turn, at, true);
        }
    }
    let private = turn.rng.random_range(3..=10);
    for at in world.window.pick_sorted(&mut turn.rng, private) {
        post(turn, at, false);
    }
}

/// The rest of the ring joins through the link within 10-20 minutes.
/// Returns each joiner with the time it joined.
fn join_burst(turn: &mut Turn<'_>, group: &Group) -> Vec<(usize, i64)> {
    let world = turn.world;
    let start = world.window.head(0.5).pick(&mut turn.rng);
    let len = turn.rng.random_range(10 * MINUTE_MS..=20 * MINUTE_MS);
    let burst = Window::new(start, start + len);
    let mut joined = Vec::with_capacity(group.joiners.len());
    for &joiner in &group.joiners {
        let at = burst.pick(&mut turn.rng);
        let account = &world.accounts[joiner];
        let event = vocab::group_joined(at, &account.entity, &group.entity, true);
        turn.sink.emit(event, account.class, true);
        joined.push((joiner, at));
    }
    joined
}

/// Founders and joined members post in the group, mostly media.
fn ring_chat(turn: &mut Turn<'_>, group: &Group, joined: &[(usize, i64)]) {
    let world = turn.world;
    let founders = group.members.iter().map(|&m| (m, world.window.start));
    for (member, since) in founders.chain(joined.iter().copied()) {
        let account = &world.accounts[member];
        let per_hour = log_uniform(&mut turn.rng, 1.0, 10.0);
        for at in world.window.since(since).poisson(&mut turn.rng, per_hour) {
            let message = Message {
                actor_age_seconds: account.age_seconds(at),
                to_contact: true,
                has_media: turn.rng.random_bool(0.6),
                message_id: random_id(&mut turn.rng, "msg"),
            };
            let event = vocab::message_sent(at, &account.entity, &group.entity, message);
            turn.sink.emit(event, account.class, true);
        }
    }
}

/// 8-20 ordinary people follow the public link in the first hours; 4-12 of
/// them report the group for child safety within minutes.
fn stumblers(turn: &mut Turn<'_>, group: &Group) {
    let world = turn.world;
    let count = turn.rng.random_range(8..=20).min(world.ordinary.len());
    let reporters = turn.rng.random_range(4..=12).min(count);
    // Reports stay within hours of each other so that they fall in one day.
    let span = world.window.head(0.6);
    let span = Window::new(span.start, span.end.min(span.start + 6 * HOUR_MS));
    let picked = index::sample(&mut turn.rng, world.ordinary.len(), count);
    for (n, pick) in picked.into_iter().enumerate() {
        let person = &world.accounts[world.ordinary[pick]];
        let at = span.pick(&mut turn.rng);
        let event = vocab::group_joined(at, &person.entity, &group.entity, true);
        turn.sink.emit(event, person.class, false);
        if n < reporters {
            let when = at + delay_ms(&mut turn.rng, MINUTE_MS, 10 * MINUTE_MS);
            let event =
                vocab::report_filed(when, &person.entity, &group.entity, Reason::ChildSafety);
            turn.sink.emit(event, person.class, false);
        }
    }
}
