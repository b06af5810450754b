//! The registry's book of rules: every version of every rule ever admitted,
//! which one is active, which one is on trial, and the history a rollback
//! returns to. Pure bookkeeping: the transitions here decide nothing about
//! bytes or signatures, and a transition that does not apply is refused
//! with the reason before anything changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::deployment::{Candidate, RuleDeployment, Stage};
use crate::rule::Rule;

/// One admitted build of a rule.
#[derive(Clone)]
pub struct Version {
    /// The compiled rule.
    pub rule: Arc<dyn Rule>,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// When it was admitted (Unix milliseconds).
    pub admitted_at_ms: i64,
    /// The id of the key that signed it; `None` when it was admitted
    /// unsigned (development mode) or built in.
    pub signed_by: Option<String>,
    /// How many of its fixtures it passed.
    pub fixtures_passed: usize,
    /// Where it came from: `upload`, `plugin_dir <file>`, `built-in`.
    pub origin: String,
}

/// Where a version stands in its rule's deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// It decides (outside a candidate's rollout).
    Active,
    /// On trial beside the active version.
    Candidate(Stage),
    /// Admitted but not running: a former active version (a rollback
    /// target) or one set aside.
    Inactive,
}

/// Versions kept per rule. Each holds its compiled code, so the history
/// is bounded; a forgotten build uploaded again is compiled again (or read
/// back from the compile cache).
pub const MAX_KEPT_VERSIONS: usize = 8;

/// Every version of one rule and how they are deployed.
#[derive(Clone, Default)]
pub struct RuleHistory {
    /// Every admitted build, in admission order; never removed while the
    /// rule is known, so a rollback or a re-promotion needs no recompiling.
    pub versions: Vec<Version>,
    active: Option<usize>,
    candidate: Option<(usize, Stage)>,
    /// Former active versions, the most recent last: what rollbacks
    /// return to.
    previous: Vec<usize>,
}

/// A transition that does not apply, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// No rule has this name.
    #[error("no rule is named `{0}`")]
    UnknownRule(String),
    /// The rule has no version with this sha256.
    #[error("rule `{rule}` has no version with sha256 {sha256}")]
    UnknownVersion {
        /// The rule.
        rule: String,
        /// The sha256 asked for.
        sha256: String,
    },
    /// The transition makes no sense from where the rule stands.
    #[error("{0}")]
    NotApplicable(String),
}

impl RuleHistory {
    /// The index of the version built as `sha256`, if admitted.
    pub fn find(&self, sha256: &str) -> Option<usize> {
        self.versions.iter().position(|v| v.rule.sha256() == sha256)
    }

    /// Add a version (or find the same build admitted before) and return
    /// its index. Beyond [`MAX_KEPT_VERSIONS`], the oldest version that
    /// neither runs nor is the next rollback target is forgotten first.
    pub fn admit(&mut self, version: Version) -> usize {
        if let Some(index) = self.find(version.rule.sha256()) {
            return index;
        }
        if self.versions.len() >= MAX_KEPT_VERSIONS {
            self.forget_oldest_idle();
        }
        self.versions.push(version);
        self.versions.len() - 1
    }

    /// Forget the oldest version that does not run and is not the next
    /// rollback target, shifting the indices kept of the ones after it.
    fn forget_oldest_idle(&mut self) {
        let next_rollback = self.previous.last().copied();
        let Some(gone) = (0..self.versions.len())
            .find(|&i| self.standing(i) == Standing::Inactive && Some(i) != next_rollback)
        else {
            return;
        };
        self.versions.remove(gone);
        let shift = |i: usize| if i > gone { i - 1 } else { i };
        self.active = self.active.map(shift);
        self.candidate = self.candidate.map(|(i, stage)| (shift(i), stage));
        self.previous.retain(|&i| i != gone);
        for index in &mut self.previous {
            *index = shift(*index);
        }
    }

    /// The versions that do not run.
    pub fn idle_versions(&self) -> impl Iterator<Item = &Version> {
        self.versions
            .iter()
            .enumerate()
            .filter(|(i, _)| self.standing(*i) == Standing::Inactive)
            .map(|(_, version)| version)
    }

    /// Where the version at `index` stands.
    pub fn standing(&self, index: usize) -> Standing {
        match (self.active, self.candidate) {
            (Some(active), _) if active == index => Standing::Active,
            (_, Some((candidate, stage))) if candidate == index => Standing::Candidate(stage),
            _ => Standing::Inactive,
        }
    }

    /// The active version, if any.
    pub fn active(&self) -> Option<&Version> {
        self.active.map(|i| &self.versions[i])
    }

    /// The candidate version and its stage, if any.
    pub fn candidate(&self) -> Option<(&Version, Stage)> {
        self.candidate.map(|(i, stage)| (&self.versions[i], stage))
    }

    /// Whether any version runs.
    pub fn runs(&self) -> bool {
        self.active.is_some() || self.candidate.is_some()
    }

    /// Make the version at `index` active for everyone, at once: the
    /// active one becomes the rollback target. A candidate that is this
    /// version stops being one; another candidate stays on trial.
    pub fn activate(&mut self, index: usize) {
        if self.active == Some(index) {
            return;
        }
        if self.candidate.is_some_and(|(c, _)| c == index) {
            self.candidate = None;
        }
        // A version made active is no longer a rollback target; keeping
        // it in the history would let a rollback land on itself.
        self.previous.retain(|&p| p != index);
        if let Some(old) = self.active.replace(index) {
            self.previous.push(old);
        }
    }

    /// Put the version at `index` on trial at `stage`, replacing any other
    /// candidate (which becomes inactive).
    pub fn try_out(&mut self, index: usize, stage: Stage) -> Result<(), BookError> {
        if self.active == Some(index) {
            return Err(BookError::NotApplicable(format!(
                "version {} is the active version; a candidate must be another build",
                short(self.versions[index].rule.sha256())
            )));
        }
        if let Stage::Rollout { percent } = stage
            && percent > 100
        {
            return Err(BookError::NotApplicable(format!(
                "rollout {percent}% is over 100%"
            )));
        }
        self.candidate = Some((index, stage));
        Ok(())
    }

    /// Stop running the version at `index`. The active version stopped this
    /// way is kept as the rollback target, so a rollback restarts it.
    pub fn disable(&mut self, index: usize) -> Result<(), BookError> {
        if self.candidate.is_some_and(|(c, _)| c == index) {
            self.candidate = None;
            Ok(())
        } else if self.active == Some(index) {
            self.active = None;
            self.previous.push(index);
            Ok(())
        } else {
            Err(BookError::NotApplicable(format!(
                "version {} is not running",
                short(self.versions[index].rule.sha256())
            )))
        }
    }

    /// Make the candidate the active version for everyone.
    pub fn promote(&mut self) -> Result<usize, BookError> {
        let (index, _) = self.candidate.ok_or_else(|| {
            BookError::NotApplicable("there is no candidate version to promote".into())
        })?;
        self.activate(index);
        Ok(index)
    }

    /// Undo the last step in one move: a candidate on trial is withdrawn;
    /// with none, the active version gives way to the one active before it.
    /// Returns the version that decides afterwards.
    pub fn roll_back(&mut self) -> Result<Option<usize>, BookError> {
        if self.candidate.take().is_some() {
            return Ok(self.active);
        }
        let Some(previous) = self.previous.pop() else {
            return Err(BookError::NotApplicable(
                "there is no candidate to withdraw and no earlier version to return to".into(),
            ));
        };
        // The version rolled back from is set aside, not made a rollback
        // target itself: rolling back twice goes further back.
        self.active = Some(previous);
        Ok(self.active)
    }

    /// What the pipeline runs for the rule named `name`: possibly no
    /// version at all, but the rule stays known to the policy.
    pub fn deployment(&self, name: &str) -> RuleDeployment {
        RuleDeployment {
            name: name.to_string(),
            active: self.active.map(|i| self.versions[i].rule.clone()),
            candidate: self.candidate.map(|(i, stage)| Candidate {
                rule: self.versions[i].rule.clone(),
                stage,
            }),
        }
    }
}

/// Where a rule's builds stand, by sha256: what the state directory keeps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Standings {
    /// The active build.
    pub active: Option<String>,
    /// The candidate and its stage.
    pub candidate: Option<(String, Stage)>,
    /// Former active builds, the most recent last.
    pub previous: Vec<String>,
}

impl RuleHistory {
    /// Where its builds stand, by sha256.
    pub fn standings(&self) -> Standings {
        let sha = |i: usize| self.versions[i].rule.sha256().to_string();
        Standings {
            active: self.active.map(sha),
            candidate: self.candidate.map(|(i, stage)| (sha(i), stage)),
            previous: self.previous.iter().map(|&i| sha(i)).collect(),
        }
    }

    /// A history of these versions standing as `standings` says. Refused
    /// if it names a build that is not among them.
    pub fn restore(versions: Vec<Version>, standings: &Standings) -> Result<Self, BookError> {
        let mut history = RuleHistory {
            versions,
            ..RuleHistory::default()
        };
        let index = |sha: &str| {
            history.find(sha).ok_or_else(|| {
                BookError::NotApplicable(format!(
                    "the saved standings name build {sha}, which is not kept"
                ))
            })
        };
        let active = standings.active.as_deref().map(index).transpose()?;
        let candidate = match &standings.candidate {
            Some((sha, stage)) => Some((index(sha)?, *stage)),
            None => None,
        };
        let previous = standings
            .previous
            .iter()
            .map(|sha| index(sha))
            .collect::<Result<_, _>>()?;
        history.active = active;
        history.candidate = candidate;
        history.previous = previous;
        Ok(history)
    }
}

/// Every rule the registry knows, by name.
pub type Book = BTreeMap<String, RuleHistory>;

/// The first 12 hex digits of a sha256, as messages show it.
pub fn short(sha256: &str) -> &str {
    &sha256[..sha256.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::manifest::Manifest;
    use crate::state::StateView;
    use crate::verdict::RuleOutcome;

    struct Fake {
        manifest: Manifest,
        sha256: String,
    }

    impl Rule for Fake {
        fn manifest(&self) -> &Manifest {
            &self.manifest
        }
        fn sha256(&self) -> &str {
            &self.sha256
        }
        fn evaluate(&self, _: &Arc<Event>, _: &Arc<dyn StateView>) -> RuleOutcome {
            unreachable!("bookkeeping never calls a rule")
        }
    }

    fn version(sha: &str) -> Version {
        let manifest = Manifest {
            name: "r".into(),
            version: "1".into(),
            event_kinds: vec!["message.sent".into()],
            counters: Vec::new(),
            guards: Vec::new(),
        };
        Version {
            rule: Arc::new(Fake {
                manifest,
                sha256: sha.repeat(64 / sha.len()),
            }),
            size_bytes: 1,
            admitted_at_ms: 0,
            signed_by: None,
            fixtures_passed: 0,
            origin: "test".into(),
        }
    }

    fn active_sha(history: &RuleHistory) -> Option<char> {
        history
            .active()
            .map(|v| v.rule.sha256().chars().next().unwrap())
    }

    #[test]
    fn promote_then_roll_back_returns_to_the_version_before() {
        let mut history = RuleHistory::default();
        let a = history.admit(version("a"));
        history.activate(a);
        let b = history.admit(version("b"));
        history.try_out(b, Stage::Rollout { percent: 10 }).unwrap();
        assert_eq!(
            history.standing(b),
            Standing::Candidate(Stage::Rollout { percent: 10 })
        );
        history.promote().unwrap();
        assert_eq!(active_sha(&history), Some('b'));
        assert_eq!(history.standing(a), Standing::Inactive);
        assert_eq!(history.roll_back().unwrap(), Some(a));
        assert_eq!(active_sha(&history), Some('a'));
        assert!(history.roll_back().is_err(), "nothing before a");
        assert_eq!(
            active_sha(&history),
            Some('a'),
            "a refused rollback changes nothing"
        );
    }

    #[test]
    fn a_rollback_withdraws_a_candidate_first() {
        let mut history = RuleHistory::default();
        let a = history.admit(version("a"));
        history.activate(a);
        let b = history.admit(version("b"));
        history.try_out(b, Stage::Shadow).unwrap();
        assert_eq!(history.roll_back().unwrap(), Some(a));
        assert!(history.candidate().is_none());
        assert_eq!(active_sha(&history), Some('a'));
    }

    #[test]
    fn the_history_is_bounded_and_keeps_what_runs_and_the_rollback_target() {
        let mut history = RuleHistory::default();
        let shas: Vec<String> = (0..20).map(|i| format!("{i:02}")).collect();
        let first = history.admit(version(&shas[0]));
        history.activate(first);
        for sha in &shas[1..] {
            let index = history.admit(version(sha));
            history.activate(index);
        }
        let shadow = history.admit(version("ss"));
        history.try_out(shadow, Stage::Shadow).unwrap();
        assert_eq!(history.versions.len(), MAX_KEPT_VERSIONS);
        assert_eq!(active_sha(&history), Some('1'), "build 19 is active");
        assert!(history.active().unwrap().rule.sha256().starts_with("19"));
        assert!(
            history
                .candidate()
                .unwrap()
                .0
                .rule
                .sha256()
                .starts_with("ss")
        );
        // Rolling back withdraws the candidate, then walks back through
        // the builds still kept.
        history.roll_back().unwrap();
        history.roll_back().unwrap();
        assert!(history.active().unwrap().rule.sha256().starts_with("18"));
        while history.roll_back().is_ok() {}
        let oldest_kept = history.active().unwrap().rule.sha256().to_string();
        assert!(!oldest_kept.starts_with("00"), "the oldest were forgotten");
    }

    #[test]
    fn standings_survive_a_round_trip() {
        let mut history = RuleHistory::default();
        for sha in ["a", "b", "c"] {
            let index = history.admit(version(sha));
            history.activate(index);
        }
        let d = history.admit(version("d"));
        history.try_out(d, Stage::Rollout { percent: 5 }).unwrap();
        let standings = history.standings();
        let restored = RuleHistory::restore(history.versions.clone(), &standings).unwrap();
        assert_eq!(restored.standings(), standings);
        let mut missing = history.versions.clone();
        missing.remove(0);
        assert!(RuleHistory::restore(missing, &standings).is_err());
    }

    #[test]
    fn the_same_build_is_admitted_once() {
        let mut history = RuleHistory::default();
        assert_eq!(history.admit(version("a")), history.admit(version("a")));
        assert_eq!(history.versions.len(), 1);
    }

    #[test]
    fn refusals_change_nothing() {
        let mut history = RuleHistory::default();
        let a = history.admit(version("a"));
        history.activate(a);
        assert!(history.try_out(a, Stage::Shadow).is_err());
        assert!(history.promote().is_err());
        let b = history.admit(version("b"));
        assert!(history.disable(b).is_err());
        assert!(history.try_out(b, Stage::Rollout { percent: 101 }).is_err());
        assert_eq!(active_sha(&history), Some('a'));
        assert!(history.candidate().is_none());
    }

    #[test]
    fn a_disabled_active_version_is_restored_by_a_rollback() {
        let mut history = RuleHistory::default();
        let a = history.admit(version("a"));
        history.activate(a);
        history.disable(a).unwrap();
        assert!(!history.runs());
        assert_eq!(history.deployment("r").versions().count(), 0);
        history.roll_back().unwrap();
        assert_eq!(active_sha(&history), Some('a'));
    }
}
