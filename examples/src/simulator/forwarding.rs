//! Mass-forwarders: established accounts pushing a handful of viral
//! messages, either to 20-250 chats at a time or in so many small forwards
//! that an hour's total passes 300 chats. Around that they chat like anyone.

use rand::Rng;

use super::Turn;
use super::ordinary::{Chat, first_chat};
use super::sample::{HOUR_MS, SimRng, log_uniform, random_id};
use super::vocab::{self, Forward};

/// A mass-forwarder's whole run.
pub(crate) fn mass_forwarder(turn: &mut Turn<'_>, index: usize) {
    let world = turn.world;
    let me = &world.accounts[index];
    Chat::light(&mut turn.rng).run(turn, index, world.window);

    let viral: Vec<String> = (0..turn.rng.random_range(1..=4))
        .map(|_| random_id(&mut turn.rng, "msg"))
        .collect();
    let wide = turn.rng.random_bool(0.5);
    for hour in world.window.buckets(HOUR_MS) {
        let scale = hour.len() as f64 / HOUR_MS as f64;
        let fanouts = if wide {
            wide_fanouts(&mut turn.rng, scale)
        } else {
            many_small_fanouts(&mut turn.rng, scale)
        };
        let times = hour.pick_sorted(&mut turn.rng, fanouts.len());
        for (at, chat_count) in times.into_iter().zip(fanouts) {
            let forward = Forward {
                chat_count,
                message_id: viral[turn.rng.random_range(0..viral.len())].clone(),
                // Viral messages have been forwarded many times already.
                forward_depth: log_uniform(&mut turn.rng, 1.0, 40.0) as i64,
            };
            let first = first_chat(turn, index, at);
            let event = vocab::message_forwarded(at, &me.entity, first, forward);
            turn.sink.emit(event, me.class, true);
        }
    }
}

/// 3-12 forwards an hour, each to 20-250 chats.
fn wide_fanouts(rng: &mut SimRng, scale: f64) -> Vec<i64> {
    let count = ((f64::from(rng.random_range(3..=12u32)) * scale).round() as usize).max(1);
    (0..count)
        .map(|_| log_uniform(rng, 20.0, 250.0).round() as i64)
        .collect()
}

/// Forwards to 2-10 chats each (never 20 at once), until the hour's total
/// reaches 360-900 chats.
fn many_small_fanouts(rng: &mut SimRng, scale: f64) -> Vec<i64> {
    let target = (f64::from(rng.random_range(360..=900u32)) * scale) as i64;
    let mut fanouts = Vec::new();
    let mut total = 0;
    while total < target {
        let chats = rng.random_range(2..=10);
        total += chats;
        fanouts.push(chats);
    }
    fanouts
}
