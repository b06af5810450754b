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

pub mod chunks;
pub mod html;
pub mod input;
pub mod mapping;
pub mod predictions;
pub mod replay;
pub mod report;
pub mod score;

use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::banks::HashBanks;
use crate::event::Event;
use crate::pipeline::PipelineError;
use crate::verdict::Severity;
pub use input::{EntityTruth, Format, InputError, LabelledEvent, Truth};
pub use predictions::Prediction;
pub use replay::RuleSetUnderTest;
pub use report::BacktestReport;

use chunks::Chunks;
use replay::Replay;
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
    /// The events, in replay order (shared by the replays, not copied).
    pub events: Vec<Arc<Event>>,
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
        let (events, truths) = labelled
            .into_iter()
            .map(|l| (Arc::new(l.event), l.truth))
            .unzip();
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
        let (events, truths) = labelled
            .into_iter()
            .map(|l| (Arc::new(l.event), l.truth))
            .unzip();
        History {
            sources: Vec::new(),
            sha256: hex::encode(digest.finalize()),
            events,
            truths,
            entity_truth,
        }
    }
}

/// Told of every batch of events a replay has done, and of how many
/// events each replay has in all.
pub type Progress<'a> = dyn Fn(u64, u64) + Sync + 'a;

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
    /// Also list each entity's prediction by the candidate.
    pub predictions: bool,
}

/// Why a backtest could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// The history could not be read.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A rule set and its policy do not fit together.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

/// Replay `history` through the candidate (and the baseline, beside it on
/// another thread) and score both.
pub fn judge(
    history: &History,
    judging: &Judging<'_>,
    progress: &Progress<'_>,
) -> Result<BacktestReport, PipelineError> {
    let (candidate, baseline) = replay_both(&Chunks::ready(&history.events), judging, progress);
    let (report, _) = score(
        history,
        &candidate?,
        baseline.transpose()?.as_ref(),
        judging,
    );
    Ok(report)
}

/// Read the history in `paths` and judge it as [`judge`] does. JSON lines
/// are replayed while they are parsed (see
/// [`input::stream_json_lines`]), which gives the same report as reading
/// first; CSV is read first.
pub fn read_and_judge(
    paths: &[PathBuf],
    format: &Format,
    entity_truth: Option<&std::path::Path>,
    threads: usize,
    judging: &Judging<'_>,
    progress: &Progress<'_>,
) -> Result<Judged, BacktestError> {
    if let Format::Csv(_) = format {
        let history = History::read(paths, format, entity_truth, threads)?;
        let (candidate, baseline) = replay_both(&Chunks::ready(&history.events), judging, progress);
        let (report, predictions) = score(
            &history,
            &candidate?,
            baseline.transpose()?.as_ref(),
            judging,
        );
        return Ok(Judged {
            history,
            report,
            predictions,
        });
    }
    let mut digest = Sha256::new();
    // Parsing costs about as much as replaying, so parsers run on every
    // core beside the replays: whichever waits, the other has the core.
    let workers = threads;
    let input::Streamed {
        events,
        truths,
        consumed: (candidate, baseline),
    } = input::stream_json_lines(paths, threads, workers, &mut digest, |chunks| {
        replay_both(chunks, judging, progress)
    })?;
    let entity_truth = match entity_truth {
        Some(path) => input::read_entity_truth(path, &mut digest)?,
        None => Vec::new(),
    };
    let history = History {
        sources: paths.iter().map(|p| p.display().to_string()).collect(),
        sha256: hex::encode(digest.finalize()),
        events,
        truths,
        entity_truth,
    };
    let (report, predictions) = score(
        &history,
        &candidate?,
        baseline.transpose()?.as_ref(),
        judging,
    );
    Ok(Judged {
        history,
        report,
        predictions,
    })
}

/// A history read and judged.
pub struct Judged {
    /// The history.
    pub history: History,
    /// The report.
    pub report: BacktestReport,
    /// Each entity's prediction by the candidate, if asked for.
    pub predictions: Vec<Prediction>,
}

/// The candidate's replay, and the baseline's beside it on another thread.
fn replay_both(
    chunks: &Chunks,
    judging: &Judging<'_>,
    progress: &Progress<'_>,
) -> (
    Result<Replay, PipelineError>,
    Option<Result<Replay, PipelineError>>,
) {
    std::thread::scope(|scope| {
        let baseline = judging
            .baseline
            .map(|set| scope.spawn(move || replay::replay(set, judging.banks, chunks, progress)));
        let candidate = replay::replay(judging.candidate, judging.banks, chunks, progress);
        let baseline = baseline.map(|run| run.join().expect("the baseline replay panicked"));
        (candidate, baseline)
    })
}

/// Score the replays of `history` into a report, with each entity's
/// prediction by the candidate when asked for.
fn score(
    history: &History,
    candidate: &Replay,
    baseline: Option<&Replay>,
    judging: &Judging<'_>,
) -> (BacktestReport, Vec<Prediction>) {
    let events = &history.events;
    let entities = Entities::label(events, &history.truths, &history.entity_truth);
    let candidate_report =
        score::run_report(candidate, &history.truths, &entities, judging.positive);
    let comparison = baseline.map(|baseline| {
        score::compare(
            candidate,
            baseline,
            events,
            &history.truths,
            &entities,
            judging.positive,
            judging.top_disagreements,
        )
    });
    let baseline_report =
        baseline.map(|b| score::run_report(b, &history.truths, &entities, judging.positive));
    let predictions = if judging.predictions {
        predictions::predict(candidate, events, &entities)
    } else {
        Vec::new()
    };
    let report = BacktestReport {
        format: REPORT_FORMAT,
        input: summarise(history, candidate, &entities),
        positive: judging.positive,
        candidate: candidate_report,
        baseline: baseline_report,
        comparison,
    };
    (report, predictions)
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
