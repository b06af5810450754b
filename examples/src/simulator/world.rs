//! The simulated population, drawn once per run before any event: who is
//! what, how old every account is, who has whom as a contact, who is in
//! which group, and the hash bank.

use enforcer::event::Entity;
use rand::Rng;
use rand::seq::SliceRandom;

use super::config::{Headcount, SimConfig};
use super::media::random_hash;
use super::sample::{DAY_MS, HOUR_MS, SimRng, Stream, Window, log_uniform, random_id};
use super::truth::{BankEntry, Class, EntityTruth};

/// How far apart, in the shuffled social order, contacts and fellow group
/// members live: small neighbourhoods make friends of friends likely.
const NEIGHBOURHOOD: usize = 60;

/// One account.
pub(crate) struct Account {
    pub entity: Entity,
    pub class: Class,
    /// When it was created; after the run's start for sign-ups and bots.
    pub created_ms: i64,
    /// Accounts that have this one in their contacts (symmetric here).
    pub contacts: Vec<usize>,
    /// Ordinary groups it belongs to.
    pub groups: Vec<usize>,
}

impl Account {
    pub(crate) fn exists_at(&self, at: i64) -> bool {
        self.created_ms <= at
    }

    /// Seconds since creation at `at`, the `actor_age_seconds` attribute.
    pub(crate) fn age_seconds(&self, at: i64) -> i64 {
        (at - self.created_ms).max(0) / 1000
    }
}

/// One group.
pub(crate) struct Group {
    pub entity: Entity,
    pub class: Class,
    /// Members from before the run.
    pub members: Vec<usize>,
    /// The invite link everyone shares.
    pub link_id: String,
    /// For a CSAM group, ring members who join during the run.
    pub joiners: Vec<usize>,
}

/// Everything behaviours read.
pub(crate) struct World {
    pub window: Window,
    pub accounts: Vec<Account>,
    pub groups: Vec<Group>,
    pub bank: Vec<BankEntry>,
    /// Ordinary accounts from before the run: spam recipients, stumblers,
    /// group joiners.
    pub ordinary: Vec<usize>,
    /// Bots, which message each other.
    pub bots: Vec<usize>,
}

impl World {
    /// Draw the population for `config`.
    pub(crate) fn build(config: &SimConfig, heads: &Headcount) -> World {
        let mut rng = Stream::World.rng(config.seed);
        let duration_ms = config.duration_seconds as i64 * 1000;
        let window = Window::new(config.start_ms, config.start_ms + duration_ms);

        let mut accounts = draw_accounts(&mut rng, heads, window);
        let social = social_order(&mut rng, &accounts);
        link_contacts(&mut rng, &mut accounts, &social);
        let groups = draw_groups(&mut rng, &mut accounts, &social, window, heads);
        let bank = (0..config.bank_size)
            .map(|i| BankEntry {
                id: format!("known-csam-{i:05}"),
                hash: random_hash(&mut rng),
            })
            .collect();
        World {
            window,
            ordinary: indices(&accounts, |a| {
                a.class == Class::Ordinary && a.exists_at(window.start)
            }),
            bots: indices(&accounts, |a| a.class == Class::NewAccountBot),
            accounts,
            groups,
            bank,
        }
    }

    /// The truth about every account, then every group.
    pub(crate) fn truth(&self) -> Vec<EntityTruth> {
        let accounts = self.accounts.iter().map(|a| (&a.entity, a.class));
        let groups = self.groups.iter().map(|g| (&g.entity, g.class));
        accounts
            .chain(groups)
            .map(|(entity, class)| EntityTruth {
                entity: entity.clone(),
                class,
                abusive: class.is_abusive(),
            })
            .collect()
    }

    /// A random pre-existing ordinary account other than `except` (rarely
    /// none, when the draws keep hitting `except`).
    pub(crate) fn random_ordinary(&self, rng: &mut SimRng, except: usize) -> Option<usize> {
        // The pool is pre-existing accounts only, so existence always holds;
        // a few retries avoid `except` without building a filtered copy.
        (0..4)
            .map(|_| self.ordinary[rng.random_range(0..self.ordinary.len())])
            .find(|&candidate| candidate != except)
    }
}

/// The positions of the accounts that pass `keep`.
fn indices(accounts: &[Account], keep: impl Fn(&Account) -> bool) -> Vec<usize> {
    (0..accounts.len())
        .filter(|&i| keep(&accounts[i]))
        .collect()
}

/// Every account with its class and creation time; no contacts or groups yet.
fn draw_accounts(rng: &mut SimRng, heads: &Headcount, window: Window) -> Vec<Account> {
    let classes = shuffled_classes(rng, heads);
    let signups = pick_signups(rng, &classes, heads.signups);
    classes
        .iter()
        .enumerate()
        .map(|(index, &class)| {
            let signup = signups.binary_search(&index).is_ok();
            Account {
                entity: Entity::account(format!("u{index}")),
                class,
                created_ms: created_ms(rng, class, signup, window),
                contacts: Vec::new(),
                groups: Vec::new(),
            }
        })
        .collect()
}

/// Ordinary and CSAM groups in random order, and each account's list of
/// the ordinary groups it is in.
fn draw_groups(
    rng: &mut SimRng,
    accounts: &mut [Account],
    social: &[usize],
    window: Window,
    heads: &Headcount,
) -> Vec<Group> {
    let mut groups = ordinary_groups(rng, accounts, social, window, heads);
    groups.extend(csam_groups(rng, accounts, heads));
    groups.shuffle(rng);
    for (index, group) in groups.iter_mut().enumerate() {
        group.entity = Entity::group(format!("g{index}"));
        if group.class == Class::OrdinaryGroup {
            for &member in &group.members {
                accounts[member].groups.push(index);
            }
        }
    }
    groups
}

/// Every account's class, in random order so that ids say nothing.
fn shuffled_classes(rng: &mut SimRng, heads: &Headcount) -> Vec<Class> {
    let mut classes = Vec::new();
    for (class, count) in [
        (Class::Ordinary, heads.ordinary + heads.signups),
        (Class::Spammer, heads.spammers),
        (Class::MassForwarder, heads.mass_forwarders),
        (Class::CsamRingMember, heads.ring_members),
        (Class::NewAccountBot, heads.bots),
    ] {
        classes.extend(std::iter::repeat_n(class, count));
    }
    classes.shuffle(rng);
    classes
}

/// Which ordinary accounts sign up during the run.
fn pick_signups(rng: &mut SimRng, classes: &[Class], count: usize) -> Vec<usize> {
    let mut ordinary: Vec<usize> = (0..classes.len())
        .filter(|&i| classes[i] == Class::Ordinary)
        .collect();
    ordinary.shuffle(rng);
    ordinary.truncate(count);
    ordinary.sort_unstable();
    ordinary
}

/// When an account was created: ordinary accounts weeks to years before the
/// run, spammers hours to days, bots and sign-ups during it.
fn created_ms(rng: &mut SimRng, class: Class, signup: bool, window: Window) -> i64 {
    let age_ms = |rng: &mut SimRng, low: f64, high: f64| log_uniform(rng, low, high) as i64;
    match class {
        Class::NewAccountBot => window.head(0.5).pick(rng),
        Class::Ordinary if signup => window.head(0.8).pick(rng),
        Class::Spammer => window.start - age_ms(rng, 2.0 * HOUR_MS as f64, 4.0 * DAY_MS as f64),
        Class::Ordinary => window.start - age_ms(rng, 14.0 * DAY_MS as f64, 2200.0 * DAY_MS as f64),
        _ => window.start - age_ms(rng, 7.0 * DAY_MS as f64, 1500.0 * DAY_MS as f64),
    }
}

/// The accounts with a social life (ordinary people, forwarders, ring
/// members), shuffled into a ring along which neighbours know each other.
fn social_order(rng: &mut SimRng, accounts: &[Account]) -> Vec<usize> {
    let mut social: Vec<usize> = (0..accounts.len())
        .filter(|&i| {
            matches!(
                accounts[i].class,
                Class::Ordinary | Class::MassForwarder | Class::CsamRingMember
            )
        })
        .collect();
    social.shuffle(rng);
    social
}

/// Give every social account 2 to 10 contacts of its own choosing among its
/// neighbours, plus those that chose it.
fn link_contacts(rng: &mut SimRng, accounts: &mut [Account], social: &[usize]) {
    let n = social.len();
    if n < 2 {
        return;
    }
    for position in 0..n {
        for _ in 0..rng.random_range(2..=10) {
            let offset = rng.random_range(1..=NEIGHBOURHOOD.min(n - 1));
            let (a, b) = (social[position], social[(position + offset) % n]);
            accounts[a].contacts.push(b);
            accounts[b].contacts.push(a);
        }
    }
    for account in accounts.iter_mut() {
        account.contacts.sort_unstable();
        account.contacts.dedup();
    }
}

/// Ordinary groups: 3 to 150 pre-existing neighbours each.
fn ordinary_groups(
    rng: &mut SimRng,
    accounts: &[Account],
    social: &[usize],
    window: Window,
    heads: &Headcount,
) -> Vec<Group> {
    let residents: Vec<usize> = social
        .iter()
        .copied()
        .filter(|&i| accounts[i].exists_at(window.start))
        .collect();
    (0..heads.ordinary_groups)
        .map(|_| {
            let size = (log_uniform(rng, 3.0, 150.0) as usize).min(residents.len());
            let anchor = rng.random_range(0..residents.len());
            let spread = size * 3;
            let mut members: Vec<usize> = (0..size)
                .map(|_| residents[(anchor + rng.random_range(0..spread)) % residents.len()])
                .collect();
            members.sort_unstable();
            members.dedup();
            Group {
                entity: Entity::group(String::new()),
                class: Class::OrdinaryGroup,
                members,
                link_id: random_id(rng, "link"),
                joiners: Vec::new(),
            }
        })
        .collect()
}

/// CSAM groups: ring members dealt round-robin, a third of each group's
/// share founding it and the rest joining during the run.
fn csam_groups(rng: &mut SimRng, accounts: &[Account], heads: &Headcount) -> Vec<Group> {
    let mut ring: Vec<usize> = (0..accounts.len())
        .filter(|&i| accounts[i].class == Class::CsamRingMember)
        .collect();
    ring.shuffle(rng);
    (0..heads.csam_groups)
        .map(|g| {
            let share: Vec<usize> = ring
                .iter()
                .copied()
                .skip(g)
                .step_by(heads.csam_groups)
                .collect();
            let founders = share.len().div_ceil(3);
            Group {
                entity: Entity::group(String::new()),
                class: Class::CsamGroup,
                members: share[..founders].to_vec(),
                link_id: random_id(rng, "link"),
                joiners: share[founders..].to_vec(),
            }
        })
        .collect()
}
