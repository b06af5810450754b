//! What runs: for each rule, its active version and at most one candidate
//! version, with the stage the candidate is at (beside the active one in
//! shadow, or enforcing for a slice of entities). The registry builds a
//! [`Deployment`]; the pipeline publishes it as one immutable snapshot.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::event::{Entity, EntityKind};
use crate::policy::Policy;
use crate::rule::Rule;

/// Every rule that runs, and the policy over them: what one snapshot of
/// the engine decides with.
#[derive(Clone)]
pub struct Deployment {
    /// One entry per rule name.
    pub rules: Vec<RuleDeployment>,
    /// How their verdicts combine.
    pub policy: Policy,
}

/// The versions of one rule that run. A rule may be known and run no
/// version (its active version disabled): the policy may still name it.
#[derive(Clone, Default)]
pub struct RuleDeployment {
    /// The rule's name; every version has it.
    pub name: String,
    /// The version that decides, in the rule's mode under the policy.
    pub active: Option<Arc<dyn Rule>>,
    /// A version on trial, if any.
    pub candidate: Option<Candidate>,
}

/// A version on trial.
#[derive(Clone)]
pub struct Candidate {
    /// The build.
    pub rule: Arc<dyn Rule>,
    /// How it runs.
    pub stage: Stage,
}

/// How a candidate version runs beside the active one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// On every event, in shadow: its verdict reaches only the shadow
    /// decision, where it stands in for the active version.
    Shadow,
    /// In place of the active version for `percent` of entities (by
    /// [`in_rollout`]), in the rule's mode under the policy.
    Rollout {
        /// 0 to 100.
        percent: u8,
    },
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stage::Shadow => write!(f, "in shadow"),
            Stage::Rollout { percent } => write!(f, "enforcing for {percent}% of actors"),
        }
    }
}

impl RuleDeployment {
    /// A rule with one version, active.
    pub fn active(rule: Arc<dyn Rule>) -> Self {
        RuleDeployment {
            name: rule.name().to_string(),
            active: Some(rule),
            candidate: None,
        }
    }

    /// Every version that runs: the active one, then the candidate.
    pub fn versions(&self) -> impl Iterator<Item = &Arc<dyn Rule>> {
        self.active
            .iter()
            .chain(self.candidate.as_ref().map(|c| &c.rule))
    }
}

/// Whether `entity` is in a rollout of `percent` of rule `rule`'s
/// entities.
///
/// The choice is stable: the same entity is in or out on every node,
/// after every restart and for every percentage above the one that first
/// took it in, so raising a rollout from 5% to 20% keeps the first 5%. The
/// rule's name is part of the hash so that two rules rolling out at once
/// try their new versions on different entities. The bucket is FNV-1a 64
/// over `rule`, a 0xff byte, the entity kind (`account` or `group`), a 0xff byte and the
/// entity id, mixed by the splitmix64 finaliser, modulo 100.
pub fn in_rollout(rule: &str, entity: &Entity, percent: u8) -> bool {
    percent >= 100 || (percent > 0 && rollout_bucket(rule, entity) < u64::from(percent))
}

/// The entity's bucket, 0 to 99, for rule `rule` (see [`in_rollout`]).
pub fn rollout_bucket(rule: &str, entity: &Entity) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    feed(rule.as_bytes());
    feed(&[0xff]);
    feed(match entity.kind {
        EntityKind::Account => b"account",
        EntityKind::Group => b"group",
    });
    feed(&[0xff]);
    feed(entity.id.as_bytes());
    let mut mixed = hash;
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    mixed ^= mixed >> 31;
    mixed % 100
}

/// What one version of a rule has cost since it was first deployed: kept
/// by the pipeline across snapshots, read by the control plane.
#[derive(Debug, Default)]
pub struct VersionStats {
    calls: AtomicU64,
    errors: AtomicU64,
    fuel: AtomicU64,
    fired: AtomicU64,
}

/// A reading of [`VersionStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VersionCounts {
    /// Calls made (rules skipped by their guards are not called).
    pub calls: u64,
    /// Calls that produced no verdict.
    pub errors: u64,
    /// Fuel used by all calls.
    pub fuel: u64,
    /// Calls whose verdict was above allow.
    pub fired: u64,
}

impl VersionStats {
    /// Count one call.
    pub fn record(&self, fuel: u64, failed: bool, fired: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.fuel.fetch_add(fuel, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        if fired {
            self.fired.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counts so far.
    pub fn read(&self) -> VersionCounts {
        VersionCounts {
            calls: self.calls.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            fuel: self.fuel.load(Ordering::Relaxed),
            fired: self.fired.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollout_takes_about_its_share_and_keeps_it_as_it_grows() {
        let accounts: Vec<Entity> = (0..10_000)
            .map(|i| Entity::account(format!("acct-{i}")))
            .collect();
        let share = |percent| {
            accounts
                .iter()
                .filter(|a| in_rollout("stranger-spray", a, percent))
                .count()
        };
        assert_eq!(share(0), 0);
        assert_eq!(share(100), accounts.len());
        let ten = share(10);
        assert!((800..1200).contains(&ten), "10% took {ten} of 10,000");
        for account in &accounts {
            if in_rollout("stranger-spray", account, 5) {
                assert!(in_rollout("stranger-spray", account, 20));
            }
        }
    }

    #[test]
    fn two_rules_roll_out_to_different_entities() {
        let accounts: Vec<Entity> = (0..2_000)
            .map(|i| Entity::account(format!("acct-{i}")))
            .collect();
        let taken =
            |rule| -> Vec<bool> { accounts.iter().map(|a| in_rollout(rule, a, 50)).collect() };
        let both = taken("a")
            .iter()
            .zip(taken("b"))
            .filter(|(a, b)| **a && *b)
            .count();
        // Independent halves overlap on about a quarter.
        assert!((350..650).contains(&both), "{both}");
    }

    #[test]
    fn the_bucket_is_fixed_by_its_documented_hash() {
        // Pinned, so that a change to the hash (which would move entities
        // in and out of every running rollout) cannot go unnoticed.
        let buckets: Vec<u64> = ["a", "b", "c", "d"]
            .iter()
            .map(|id| rollout_bucket("mass-forwarding", &Entity::account(*id)))
            .collect();
        assert_eq!(buckets, PINNED_BUCKETS);
    }

    // Computed independently of this code, from the description above.
    const PINNED_BUCKETS: [u64; 4] = [20, 82, 81, 33];
}
