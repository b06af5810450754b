//! A seeded traffic simulator: realistic, labelled event traffic of a
//! messaging platform, for exercising rules and measuring them against the
//! truth.
//!
//! A run draws a population (ordinary accounts and groups, spammers,
//! mass-forwarders, CSAM rings and their groups, new-account bots), lets
//! each entity behave over the configured time, and returns the events in
//! the vocabulary of `plugins/EVENTS.md`, each labelled with its actor's
//! class and whether it is part of abuse, together with the truth about
//! every entity and the simulated `known-csam` hash bank.
//!
//! Ordinary behaviour is capped so that it stays clearly below every
//! example rule's threshold, and every abusive class clearly crosses at
//! least one (the tests check both over the generated events). One seed and
//! config always produce the same traffic, byte for byte.
//!
//! ```
//! use enforcer_examples::simulator::{SimConfig, Simulator};
//!
//! let config = SimConfig { accounts: 300, groups: 20, duration_seconds: 600, ..SimConfig::default() };
//! let traffic = Simulator::new(config)?.run();
//! assert!(!traffic.events.is_empty());
//! # Ok::<(), enforcer_examples::simulator::ConfigError>(())
//! ```
//!
//! Events come in arrival order. With `late_share` above zero, about that
//! share of events arrives up to `max_lateness_ms` after it happened, so
//! `occurred_at_ms` may go backwards by at most that much from one event to
//! a later one; with `late_share: 0.0` it never goes backwards.

mod config;
mod csam;
mod forwarding;
mod groups;
mod jsonl;
mod media;
mod ordinary;
mod sample;
mod sink;
mod spam;
mod summary;
mod truth;
mod vocab;
mod world;

#[cfg(test)]
mod tests;

pub use config::{ConfigError, MAX_DURATION_SECONDS, MIN_ORDINARY_ACCOUNTS, SimConfig};
pub use jsonl::{
    ReadError, ReadErrorSource, read_bank, read_jsonl, read_truth, write_bank, write_events,
    write_jsonl, write_truth,
};
pub use media::{MATCH_DISTANCE, MIN_MATCH_QUALITY, hamming_distance, nearest_bank_entry};
pub use summary::Summary;
pub use truth::{
    BankEntry, Class, EntityTruth, EventTruth, LabelledEvent, Traffic, from_hex, to_hex,
};
pub use vocab::KINDS;

use config::Headcount;
use sample::{SimRng, Stream};
use sink::Sink;
use world::World;

/// Generates traffic for one configuration.
#[derive(Clone, Debug)]
pub struct Simulator {
    config: SimConfig,
    heads: Headcount,
}

impl Simulator {
    /// A simulator for `config`, or why it cannot be simulated.
    pub fn new(config: SimConfig) -> Result<Self, ConfigError> {
        let heads = config.headcount()?;
        Ok(Simulator { config, heads })
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Simulate. Deterministic: the same configuration always returns the
    /// same traffic.
    pub fn run(&self) -> Traffic {
        let seed = self.config.seed;
        let world = World::build(&self.config, &self.heads);
        let mut sink = Sink::new(world.window, world.accounts.len(), world.groups.len());
        for (index, account) in world.accounts.iter().enumerate() {
            let mut turn = Turn::new(&world, Stream::Account(index).rng(seed), &mut sink);
            match account.class {
                Class::Ordinary => ordinary::ordinary_account(&mut turn, index),
                Class::Spammer => spam::spammer(&mut turn, index),
                Class::NewAccountBot => spam::bot(&mut turn, index),
                Class::MassForwarder => forwarding::mass_forwarder(&mut turn, index),
                Class::CsamRingMember => csam::ring_member(&mut turn, index),
                Class::OrdinaryGroup | Class::CsamGroup => {}
            }
        }
        for (index, group) in world.groups.iter().enumerate() {
            let mut turn = Turn::new(&world, Stream::Group(index).rng(seed), &mut sink);
            match group.class {
                Class::CsamGroup => csam::csam_group(&mut turn, index),
                _ => groups::ordinary_group(&mut turn, index),
            }
        }

        let mut lateness = Stream::Lateness.rng(seed);
        let events = sink.finish(
            &mut lateness,
            self.config.late_share,
            self.config.max_lateness_ms,
        );
        let truth = world.truth();
        Traffic {
            events,
            truth,
            bank: world.bank,
        }
    }
}

/// One entity's turn at generating: what it can see, its own generator and
/// where its events go.
pub(crate) struct Turn<'a> {
    world: &'a World,
    rng: SimRng,
    sink: &'a mut Sink,
}

impl<'a> Turn<'a> {
    fn new(world: &'a World, rng: SimRng, sink: &'a mut Sink) -> Self {
        Turn { world, rng, sink }
    }
}
