//! A short, scripted stretch of platform traffic for `enforcer demo`: an
//! ordinary conversation, a new account spraying strangers until its
//! recipients block and report it, a mass forwarder, a ring sharing known
//! abuse imagery through a group icon and a public invite link, and a
//! client retrying an event it already sent.

use crate::banks::{BankEntry, HashBanks};
use crate::event::{Entity, Event, Value};

/// The bank the known-hash rule matches against.
pub const DEMO_BANK: &str = "known-csam";

/// A hash in the demo bank (a stand-in: real banks hold PDQ hashes of
/// known material).
pub const BANKED_HASH: [u8; 32] = [
    0x3c, 0x91, 0x5e, 0x07, 0xa2, 0xd4, 0x68, 0x1f, 0xc3, 0x7a, 0x0b, 0xe6, 0x54, 0x29, 0x9d, 0xf0,
    0x12, 0x8e, 0x47, 0xb5, 0x6c, 0xd9, 0x30, 0xa1, 0x5f, 0xe8, 0x73, 0x04, 0xcb, 0x96, 0x2d, 0x48,
];

/// The demo's hash banks: one bank with one entry.
pub fn banks() -> HashBanks {
    HashBanks::new().with_entries(
        DEMO_BANK,
        [BankEntry::new("ncmec-demo-0001", BANKED_HASH)
            .from_source("demo hash list", 1_763_000_000_000)],
    )
}

/// The scripted traffic, in arrival order.
pub fn traffic() -> Vec<Event> {
    let start: i64 = 1_764_000_000_000;
    let mut script = Script {
        events: Vec::new(),
        start,
    };
    let alice = Entity::account("alice");
    let bob = Entity::account("bob");
    let spammer = Entity::account("new-7731");
    let forwarder = Entity::account("fwd-2210");
    let ring = Entity::account("ring-0415");
    let group = Entity::group("grp-ring");

    // An ordinary conversation and an ordinary forward.
    script.push(0, "message.sent", &alice, Some(&bob), |e| {
        e.with("to_contact", Value::Bool(true))
            .with("actor_age_seconds", Value::Int(400 * 86_400))
    });
    script.push(5, "message.forwarded", &alice, None, |e| {
        e.with("chat_count", Value::Int(3))
    });

    // A two-hour-old account messages 60 strangers in five minutes.
    for n in 0..60 {
        let to = Entity::account(format!("stranger-{n}"));
        script.push(10 + n * 5, "message.sent", &spammer, Some(&to), |e| {
            e.with("to_contact", Value::Bool(false))
                .with("actor_age_seconds", Value::Int(7_200 + n * 5))
        });
    }
    // Its recipients block it, then report it for spam, and it keeps going.
    for n in 0..16 {
        let by = Entity::account(format!("stranger-{n}"));
        if n < 8 {
            script.push(320 + n, "account.blocked", &by, Some(&spammer), |e| e);
        } else {
            script.push(320 + n, "report.filed", &by, Some(&spammer), |e| {
                e.with("reason", Value::Text("spam".into()))
            });
        }
    }
    let to = Entity::account("stranger-60");
    script.push(345, "message.sent", &spammer, Some(&to), |e| {
        e.with("to_contact", Value::Bool(false))
            .with("actor_age_seconds", Value::Int(7_540))
    });

    // One message forwarded to 45 chats at once.
    script.push(400, "message.forwarded", &forwarder, None, |e| {
        e.with("chat_count", Value::Int(45))
    });

    // A ring member sets a group icon three bits from a banked hash, then
    // posts the group's invite link publicly.
    let mut icon = BANKED_HASH;
    icon[0] ^= 0b0000_0111;
    script.push(500, "media.group_icon", &ring, Some(&group), |e| {
        e.with("pdq_hash", Value::Bytes(icon.to_vec()))
            .with("pdq_quality", Value::Int(92))
            .with("media_id", Value::Text("icon-88ac".into()))
    });
    script.push(560, "group.invite_link_shared", &ring, Some(&group), |e| {
        e.with("public", Value::Bool(true))
            .with("link_id", Value::Text("link-5521".into()))
    });

    // A client retries the icon event: same id, same decision, not counted
    // again.
    let retry = script.events[script.events.len() - 2].clone();
    script.events.push(retry);
    script.events
}

struct Script {
    events: Vec<Event>,
    start: i64,
}

impl Script {
    fn push(
        &mut self,
        second: i64,
        kind: &str,
        actor: &Entity,
        target: Option<&Entity>,
        attributes: impl FnOnce(Event) -> Event,
    ) {
        let id = format!("evt-{:03}", self.events.len());
        let mut event = Event::new(id, kind, self.start + second * 1_000, actor.clone());
        event.target = target.cloned();
        self.events.push(attributes(event));
    }
}
