//! Backtesting: replay a labelled history through a candidate rule set and
//! policy, and through a baseline, each on a fresh state, and report how
//! each does against the labels and where they part.
//!
//! Deterministic by construction: the history is put in event-time order
//! (ties in input order), each replay runs its events one by one on one
//! thread (state makes every event depend on the ones before), and the
//! report holds only counts over that order. Cores are used where that
//! cannot change a result: parsing the input, and the candidate and the
//! baseline replaying side by side.

pub mod html;
pub mod input;
pub mod mapping;
pub mod predictions;
pub mod replay;
pub mod report;
pub mod score;

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::event::Event;
use crate::pipeline::PipelineError;
use crate::state::HashBanks;
use crate::verdict::Severity;
pub use input::{EntityTruth, Format, InputError, LabelledEvent, Truth};
pub use predictions::Prediction;
pub use replay::RuleSetUnderTest;
pub use report::BacktestReport;

use report::{ClassCount, InputSummary, REPORT_FORMAT};
use score::Entities;

/// Disagreements a report lists unless told otherwise.
pub const DEFAULT_TOP_DISAGREEMENTS: usize = 25;

/// A labelled history, ready to replay.
pub struct History {
    /// The files it came from.
    pub sources: Vec<String>,
    /// sha256 of what was read: each file's length and bytes, in order.
    pub sha256: String,
    /// The events, in replay order.
    pub events: Vec<Event>,
    /// Each event's label, in the same order.
    pub truths: Vec<Truth>,
    /// Entity labels from an entity truth file.
    pub entity_truth: Vec<EntityTruth>,
}

impl History {
    /// Read `paths` in `format` (and an entity truth file, if given) on up
    /// to `threads` threads.
    pub fn read(
        paths: &[PathBuf],
        format: &Format,
        entity_truth: Option<&std::path::Path>,
        threads: usize,
    ) -> Result<Self, InputError> {
        let mut digest = Sha256::new();
        let labelled = input::read_history(paths, format, threads, &mut digest)?;
        let entity_truth = match entity_truth {
            Some(path) => input::read_entity_truth(path, &mut digest)?,
            None => Vec::new(),
        };
        let (events, truths) = labelled.into_iter().map(|l| (l.event, l.truth)).unzip();
        Ok(History {
            sources: paths.iter().map(|p| p.display().to_string()).collect(),
            sha256: hex::encode(digest.finalize()),
            events,
            truths,
            entity_truth,
        })
    }

    /// A history of labelled events in memory, put in replay order; its
    /// digest is of the events and labels as JSON.
    pub fn from_labelled(mut labelled: Vec<LabelledEvent>, entity_truth: Vec<EntityTruth>) -> Self {
        labelled.sort_by_key(|l| l.event.occurred_at_ms);
        let mut digest = Sha256::new();
        for line in &labelled {
            // Serialising our own types cannot fail.
            digest.update(serde_json::to_vec(&(&line.event, &line.truth)).unwrap_or_default());
            digest.update(b"\n");
        }
        let (events, truths) = labelled.into_iter().map(|l| (l.event, l.truth)).unzip();
        History {
            sources: Vec::new(),
            sha256: hex::encode(digest.finalize()),
            events,
            truths,
            entity_truth,
        }
    }
}

/// What to judge a history with.
pub struct Judging<'a> {
    /// The rule set and policy under test.
    pub candidate: &'a RuleSetUnderTest,
    /// What it is compared with.
    pub baseline: Option<&'a RuleSetUnderTest>,
    /// The hash banks rules match against.
    pub banks: &'a HashBanks,
    /// The least decision severity that counts as acting.
    pub positive: Severity,
    /// How many disagreements to list.
    pub top_disagreements: usize,
}

/// Replay `history` through the candidate (and the baseline, beside it on
/// another thread) and score both. `progress` is told of every batch of
/// events replayed, by either run.
pub fn judge(
    history: &History,
    judging: &Judging<'_>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<BacktestReport, PipelineError> {
    judge_and_predict(history, judging, false, progress).map(|(report, _)| report)
}

/// As [`judge`], with each entity's prediction by the candidate (see
/// [`predictions`]) when `predict` is set; an empty list otherwise.
pub fn judge_and_predict(
    history: &History,
    judging: &Judging<'_>,
    predict: bool,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(BacktestReport, Vec<Prediction>), PipelineError> {
    let events = &history.events;
    let (candidate, baseline) = std::thread::scope(|scope| {
        let baseline = judging
            .baseline
            .map(|set| scope.spawn(move || replay::replay(set, judging.banks, events, progress)));
        let candidate = replay::replay(judging.candidate, judging.banks, events, progress);
        let baseline = baseline.map(|run| run.join().expect("the baseline replay panicked"));
        (candidate, baseline)
    });
    let candidate = candidate?;
    let baseline = baseline.transpose()?;

    let entities = Entities::label(events, &history.truths, &history.entity_truth);
    let candidate_report =
        score::run_report(&candidate, &history.truths, &entities, judging.positive);
    let comparison = baseline.as_ref().map(|baseline| {
        score::compare(
            &candidate,
            baseline,
            events,
            &history.truths,
            &entities,
            judging.positive,
            judging.top_disagreements,
        )
    });
    let baseline_report = baseline
        .as_ref()
        .map(|b| score::run_report(b, &history.truths, &entities, judging.positive));
    let predictions = if predict {
        predictions::predict(&candidate, events, &entities)
    } else {
        Vec::new()
    };
    let report = BacktestReport {
        format: REPORT_FORMAT,
        input: summarise(history, &candidate, &entities),
        positive: judging.positive,
        candidate: candidate_report,
        baseline: baseline_report,
        comparison,
    };
    Ok((report, predictions))
}

fn summarise(history: &History, replay: &replay::Replay, entities: &Entities) -> InputSummary {
    let mut classes = std::collections::BTreeMap::<&str, ClassCount>::new();
    for truth in &history.truths {
        classes
            .entry(truth.class_name())
            .or_insert_with(|| ClassCount {
                class: truth.class_name().to_owned(),
                abusive: truth.abusive,
                events: 0,
            })
            .events += 1;
    }
    InputSummary {
        sources: history.sources.clone(),
        sha256: history.sha256.clone(),
        events: history.events.len() as u64,
        duplicate_ids: replay.decided.iter().filter(|d| d.duplicate).count() as u64,
        refused_events: replay.refused,
        abusive_events: history.truths.iter().filter(|t| t.abusive).count() as u64,
        entities: entities.len() as u64,
        abusive_entities: entities.abusive() as u64,
        first_ms: history.events.first().map_or(0, |e| e.occurred_at_ms),
        last_ms: history.events.last().map_or(0, |e| e.occurred_at_ms),
        classes: classes.into_values().collect(),
    }
}
