//! The simulation's knobs, their defaults and how they turn into head
//! counts of each class.

use serde::{Deserialize, Serialize};

/// The longest simulation accepted: everything is held in memory, and a month
/// of a large population would not fit.
pub const MAX_DURATION_SECONDS: u64 = 30 * 24 * 3600;

/// The fewest ordinary accounts a run needs: abusive accounts message and are
/// reported by ordinary ones, so there must be enough of them to go round.
pub const MIN_ORDINARY_ACCOUNTS: usize = 10;

/// What to simulate. Shares are fractions of all accounts (or of all
/// groups for `csam_group_share`); a positive share always yields at least one
/// entity, so small populations still contain every class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    /// Seeds every random choice: one seed and config, one output.
    pub seed: u64,
    /// Accounts, of every class.
    pub accounts: usize,
    /// Groups, ordinary and CSAM.
    pub groups: usize,
    /// How long the simulated traffic lasts.
    pub duration_seconds: u64,
    /// When it starts, in milliseconds since the Unix epoch.
    pub start_ms: i64,
    /// Share of accounts that are spammers.
    pub spammer_share: f64,
    /// Share of accounts that are mass-forwarders.
    pub mass_forwarder_share: f64,
    /// Share of accounts that belong to a CSAM ring.
    pub csam_ring_share: f64,
    /// Share of groups that are CSAM groups (at most one per ring member).
    pub csam_group_share: f64,
    /// Share of accounts that are bots created during the run.
    pub new_account_bot_share: f64,
    /// Share of accounts that are ordinary people signing up during the run:
    /// young accounts that must not look like bots (at most a quarter of
    /// the ordinary accounts).
    pub ordinary_signup_share: f64,
    /// Entries in the simulated `known-csam` bank.
    pub bank_size: usize,
    /// Share of events that arrive late (0 turns late arrival off).
    pub late_share: f64,
    /// How late a late event may arrive, in milliseconds (0 to 60,000; 0
    /// turns late arrival off). Late events are 200 ms to this late.
    pub max_lateness_ms: i64,
}

impl SimConfig {
    /// A community of `accounts` accounts and one group per twenty, active
    /// for `minutes`, with the default shares of abuse.
    pub fn community(seed: u64, accounts: usize, minutes: u64) -> SimConfig {
        SimConfig {
            seed,
            accounts,
            groups: (accounts / 20).max(1),
            duration_seconds: minutes * 60,
            ..SimConfig::default()
        }
    }
}

impl Default for SimConfig {
    /// An hour of a 10,000-account community with 500 groups: about 120,000
    /// events, under a tenth of them abusive.
    fn default() -> Self {
        SimConfig {
            seed: 7,
            accounts: 10_000,
            groups: 500,
            duration_seconds: 3600,
            // 2025-11-24T16:00:00Z.
            start_ms: 1_764_000_000_000,
            spammer_share: 0.004,
            mass_forwarder_share: 0.003,
            csam_ring_share: 0.004,
            csam_group_share: 0.01,
            new_account_bot_share: 0.002,
            ordinary_signup_share: 0.005,
            bank_size: 64,
            late_share: 0.01,
            max_lateness_ms: 5_000,
        }
    }
}

/// Why a configuration cannot be simulated.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigError {
    /// A share is not a number in [0, 1].
    Share {
        /// The field.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// The abusive classes leave too few ordinary accounts.
    TooFewOrdinary {
        /// Ordinary accounts left.
        ordinary: usize,
        /// All accounts.
        accounts: usize,
    },
    /// The duration is zero or longer than [`MAX_DURATION_SECONDS`].
    Duration(u64),
    /// `max_lateness_ms` is negative or longer than a minute.
    Lateness(i64),
    /// The run would end after the end of time as `i64` milliseconds.
    StartTooLate(i64),
    /// There are ring members but no bank for their images to come from.
    EmptyBank,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Share { name, value } => {
                write!(f, "{name} must be a number in [0, 1], not {value}")
            }
            ConfigError::TooFewOrdinary { ordinary, accounts } => write!(
                f,
                "only {ordinary} of {accounts} accounts would be ordinary; at least half and at \
                 least {MIN_ORDINARY_ACCOUNTS} must be (add accounts or lower the shares)"
            ),
            ConfigError::Duration(seconds) => write!(
                f,
                "the duration must be between 1 and {MAX_DURATION_SECONDS} seconds, not {seconds}"
            ),
            ConfigError::Lateness(ms) => {
                write!(f, "max_lateness_ms must be in [0, 60000], not {ms}")
            }
            ConfigError::StartTooLate(ms) => write!(f, "start_ms {ms} leaves no room for the run"),
            ConfigError::EmptyBank => {
                f.write_str("a run with CSAM ring members needs a bank_size of at least 1")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// How many entities of each class a run has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Headcount {
    pub spammers: usize,
    pub mass_forwarders: usize,
    pub ring_members: usize,
    pub bots: usize,
    /// Ordinary accounts that exist before the run.
    pub ordinary: usize,
    /// Ordinary accounts created during the run.
    pub signups: usize,
    pub csam_groups: usize,
    pub ordinary_groups: usize,
}

impl SimConfig {
    /// Check the configuration and count each class.
    pub(crate) fn headcount(&self) -> Result<Headcount, ConfigError> {
        self.check_shares()?;
        if self.duration_seconds == 0 || self.duration_seconds > MAX_DURATION_SECONDS {
            return Err(ConfigError::Duration(self.duration_seconds));
        }
        if !(0..=60_000).contains(&self.max_lateness_ms) {
            return Err(ConfigError::Lateness(self.max_lateness_ms));
        }
        // The duration is at most a month, so this only fails near i64::MAX.
        let duration_ms = self.duration_seconds as i64 * 1000;
        if self.start_ms.checked_add(duration_ms + 120_000).is_none() {
            return Err(ConfigError::StartTooLate(self.start_ms));
        }

        let spammers = share_count(self.spammer_share, self.accounts);
        let mass_forwarders = share_count(self.mass_forwarder_share, self.accounts);
        let ring_members = share_count(self.csam_ring_share, self.accounts);
        let bots = share_count(self.new_account_bot_share, self.accounts);
        if ring_members > 0 && self.bank_size == 0 {
            return Err(ConfigError::EmptyBank);
        }
        let abusive = spammers + mass_forwarders + ring_members + bots;
        let ordinary_all = self.accounts.saturating_sub(abusive);
        if ordinary_all < MIN_ORDINARY_ACCOUNTS || ordinary_all * 2 < self.accounts {
            return Err(ConfigError::TooFewOrdinary {
                ordinary: ordinary_all,
                accounts: self.accounts,
            });
        }
        // Keep most ordinary accounts pre-existing: they are everyone's
        // contacts, group members and spam recipients.
        let signups = share_count(self.ordinary_signup_share, self.accounts).min(ordinary_all / 4);
        // A CSAM group needs a ring member to run it.
        let csam_groups = share_count(self.csam_group_share, self.groups).min(ring_members);
        Ok(Headcount {
            spammers,
            mass_forwarders,
            ring_members,
            bots,
            ordinary: ordinary_all - signups,
            signups,
            csam_groups,
            ordinary_groups: self.groups - csam_groups,
        })
    }

    fn check_shares(&self) -> Result<(), ConfigError> {
        let shares = [
            ("spammer_share", self.spammer_share),
            ("mass_forwarder_share", self.mass_forwarder_share),
            ("csam_ring_share", self.csam_ring_share),
            ("csam_group_share", self.csam_group_share),
            ("new_account_bot_share", self.new_account_bot_share),
            ("ordinary_signup_share", self.ordinary_signup_share),
            ("late_share", self.late_share),
        ];
        for (name, value) in shares {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError::Share { name, value });
            }
        }
        Ok(())
    }
}

/// `share` of `total`, rounded, but at least one when the share is positive.
fn share_count(share: f64, total: usize) -> usize {
    if share <= 0.0 || total == 0 {
        return 0;
    }
    // Shares are in [0, 1], so the product fits in usize.
    ((share * total as f64).round() as usize).clamp(1, total)
}
