//! Ordinary groups: their invite link passed around mostly in private chats,
//! a trickle of people joining, the odd new name, description or icon. Link
//! shares and joins are capped per bucket of the invite-link rule's windows,
//! so no ordinary group ever looks like a spike.

use rand::Rng;

use super::Turn;
use super::media::ordinary_photo;
use super::ordinary::ordinary_text;
use super::sample::{BucketCap, DAY_MS, HOUR_MS, log_uniform};
use super::vocab::{self, Reason};
use super::world::Group;

/// Link shares per clock hour (threshold: 100 in any hour).
const MAX_SHARES_PER_HOUR: u32 = 12;
/// Public link shares per clock day (threshold: 20 in any day).
const MAX_PUBLIC_SHARES_PER_DAY: u32 = 2;
/// Joins per clock hour (threshold: 200 link joins in any hour).
const MAX_JOINS_PER_HOUR: u32 = 15;

/// An ordinary group's whole run. Its chat is sent by its members.
pub(crate) fn ordinary_group(turn: &mut Turn<'_>, index: usize) {
    let group = &turn.world.groups[index];
    if group.members.is_empty() {
        return;
    }
    share_link(turn, group);
    joins(turn, group);
    edits(turn, group);
    stray_reports(turn, index);
}

/// A random founding member.
fn member(turn: &mut Turn<'_>, group: &Group) -> usize {
    group.members[turn.rng.random_range(0..group.members.len())]
}

/// Members pass the invite link on, rarely on a public page.
fn share_link(turn: &mut Turn<'_>, group: &Group) {
    let world = turn.world;
    let mut hourly = BucketCap::new(world.window.start, HOUR_MS, MAX_SHARES_PER_HOUR);
    let mut public_daily = BucketCap::new(world.window.start, DAY_MS, MAX_PUBLIC_SHARES_PER_DAY);
    let per_hour = log_uniform(&mut turn.rng, 0.05, 3.0);
    for at in world.window.poisson(&mut turn.rng, per_hour) {
        if !hourly.take(at) {
            continue;
        }
        let public = turn.rng.random_bool(0.08) && public_daily.take(at);
        let sharer = &world.accounts[member(turn, group)];
        let event =
            vocab::invite_link_shared(at, &sharer.entity, &group.entity, public, &group.link_id);
        turn.sink.emit(event, sharer.class, false);
    }
}

/// Friends of members join, mostly through the link, some added directly.
fn joins(turn: &mut Turn<'_>, group: &Group) {
    let world = turn.world;
    let mut hourly = BucketCap::new(world.window.start, HOUR_MS, MAX_JOINS_PER_HOUR);
    let per_hour = log_uniform(&mut turn.rng, 0.05, 4.0);
    for at in world.window.poisson(&mut turn.rng, per_hour) {
        let Some(joiner) = world.random_ordinary(&mut turn.rng, usize::MAX) else {
            continue;
        };
        if group.members.binary_search(&joiner).is_ok() || !hourly.take(at) {
            continue;
        }
        let via_link = turn.rng.random_bool(0.6);
        let joiner = &world.accounts[joiner];
        let event = vocab::group_joined(at, &joiner.entity, &group.entity, via_link);
        turn.sink.emit(event, joiner.class, false);
    }
}

/// A new name or description now and then, and more rarely a new icon.
fn edits(turn: &mut Turn<'_>, group: &Group) {
    let world = turn.world;
    for at in world.window.poisson(&mut turn.rng, 0.01) {
        let editor = &world.accounts[member(turn, group)];
        let edit = ordinary_text(&mut turn.rng);
        let event = vocab::group_updated(at, &editor.entity, &group.entity, &edit);
        turn.sink.emit(event, editor.class, false);
    }
    for at in world.window.poisson(&mut turn.rng, 0.008) {
        let editor = &world.accounts[member(turn, group)];
        let photo = ordinary_photo(&mut turn.rng);
        let event = vocab::group_icon(at, &editor.entity, &group.entity, photo);
        turn.sink.emit(event, editor.class, false);
    }
}

/// Very rarely a member reports the group itself (an argument, an
/// over-eager admin), never more than a couple of times.
fn stray_reports(turn: &mut Turn<'_>, index: usize) {
    let world = turn.world;
    let group = &world.groups[index];
    for at in world.window.poisson(&mut turn.rng, 0.001) {
        if !turn.sink.take_stray_report(world.accounts.len() + index) {
            continue;
        }
        let reporter = &world.accounts[member(turn, group)];
        let reason = if turn.rng.random_bool(0.5) {
            Reason::Spam
        } else {
            Reason::Other
        };
        let event = vocab::report_filed(at, &reporter.entity, &group.entity, reason);
        turn.sink.emit(event, reporter.class, false);
    }
}
