//! Durable state through the whole pipeline: decisions logged to the
//! embedded store while checkpoints are taken concurrently, the process's
//! state dropped without a last checkpoint (a crash), and a fresh pipeline
//! recovered from the data directory alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use enforcer::decision::LabelChange;
use enforcer::durable::{Checkpointing, DataDir, RecoveredLogs, Retention};
use enforcer::examples::EXAMPLE_POLICY;
use enforcer::ground_truth::{GroundTruth, LabelSource, LabelSubject, Truth};
use enforcer::pipeline::{Pipeline, PipelineOptions};
use enforcer::policy::Policy;
use enforcer_examples::native::example_rules;
use enforcer_examples::simulator::{SimConfig, Simulator, Traffic};

fn traffic() -> Traffic {
    let config = SimConfig {
        seed: 5,
        accounts: 1_500,
        groups: 80,
        duration_seconds: 20 * 60,
        ..SimConfig::default()
    };
    Simulator::new(config).expect("valid config").run()
}

fn pipeline(traffic: &Traffic) -> Arc<Pipeline> {
    let options = PipelineOptions {
        banks: traffic.hash_banks(),
        ..PipelineOptions::default()
    };
    let policy = Policy::parse(EXAMPLE_POLICY).unwrap();
    Arc::new(Pipeline::new(example_rules(), policy, options).unwrap())
}

const KEEP_ALL: Retention = Retention {
    max_decisions: u64::MAX,
    max_age_ms: None,
};

#[test]
fn a_crashed_engine_s_state_comes_back_exactly_from_its_data_directory() {
    let traffic = traffic();
    let dir = tempfile::tempdir().unwrap();
    let first = pipeline(&traffic);
    let (expected_live, expected_shadow, checkpoints, decided, overturned) = {
        let data = DataDir::open(dir.path(), 1 << 20).unwrap();
        let RecoveredLogs {
            decisions,
            overturns,
            recovered,
        } = data.recover(&first, 1_000).unwrap();
        assert_eq!(recovered.last_sequence, 0);
        let (log, overturns) = (Arc::new(decisions), Arc::new(overturns));
        let checkpointing = Checkpointing {
            dir: dir.path().to_path_buf(),
            store: data.store.clone(),
            pipeline: first.clone(),
            log: log.clone(),
            overturns: overturns.clone(),
            retention: KEEP_ALL,
        };
        // Two threads evaluate and log, in batches as the server does,
        // while a third checkpoints over and over: images are copied while
        // events are being counted. The last events come after the last
        // checkpoint.
        let (concurrent, after_checkpoints) = traffic.events.split_at(traffic.events.len() - 300);
        let done = AtomicBool::new(false);
        let (checkpoints, decided) = std::thread::scope(|scope| {
            let checkpointer = scope.spawn(|| {
                let mut taken = 0;
                while !done.load(Ordering::Relaxed) {
                    checkpointing.take().unwrap();
                    taken += 1;
                }
                taken
            });
            let workers: Vec<_> = (0..2)
                .map(|worker| {
                    let (events, log, pipeline) = (concurrent, &log, &first);
                    scope.spawn(move || {
                        let mut decided = 0;
                        let mine = events.iter().skip(worker).step_by(2).collect::<Vec<_>>();
                        for batch in mine.chunks(16) {
                            let entries = batch
                                .iter()
                                .map(|labelled| pipeline.evaluate(labelled.event.clone()).unwrap())
                                .filter(|evaluation| !evaluation.duplicate)
                                .map(|evaluation| (evaluation.decision, evaluation.stamps))
                                .collect::<Vec<_>>();
                            decided += log.commit(entries).unwrap().len();
                        }
                        decided
                    })
                })
                .collect();
            let decided: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
            done.store(true, Ordering::Relaxed);
            (checkpointer.join().unwrap(), decided)
        });
        let entries = after_checkpoints
            .iter()
            .map(|labelled| first.evaluate(labelled.event.clone()).unwrap())
            .map(|evaluation| (evaluation.decision, evaluation.stamps))
            .collect();
        let decided = decided + log.commit(entries).unwrap().len();
        // After the last checkpoint, an appeal is won by an account that
        // a kept decision labelled: its labels are cleared.
        let labelled = log
            .read_after(log.last_sequence() - 900, 900)
            .unwrap()
            .into_iter()
            .find_map(|logged| {
                logged
                    .decision
                    .label_changes
                    .iter()
                    .find_map(|change| match change {
                        LabelChange::Set { entity, .. }
                            if logged
                                .decision
                                .outcome
                                .actions
                                .iter()
                                .any(|a| &a.entity == entity) =>
                        {
                            Some(entity.clone())
                        }
                        _ => None,
                    })
            })
            .expect("a recent decision labelled an entity it acted on");
        let appeal = GroundTruth {
            subject: LabelSubject::Entity(labelled.clone()),
            truth: Truth::Benign,
            source: LabelSource::Appeal,
            labelled_at_ms: 0,
            reference: "appeal-1".into(),
        };
        let before = first.live_state().label_records(&labelled);
        let overturned = overturns.overturn(&appeal, &log, first.live_state(), 0);
        assert!(!overturned.is_empty());
        assert_ne!(first.live_state().label_records(&labelled), before);
        // No last checkpoint: the process "dies" here.
        (
            first.live_state().snapshot(),
            first.shadow_state().snapshot(),
            checkpoints,
            decided,
            overturned,
        )
    };
    assert!(
        checkpoints >= 2,
        "only {checkpoints} checkpoints were taken"
    );
    assert_eq!(decided, traffic.events.len());
    let labels: usize = expected_live.values().map(|e| e.labels.len()).sum();
    assert!(
        labels > 0,
        "the traffic set no labels: the test would not cover them"
    );

    let second = pipeline(&traffic);
    let data = DataDir::open(dir.path(), 1 << 20).unwrap();
    let RecoveredLogs {
        decisions: log,
        overturns,
        recovered,
    } = data.recover(&second, 1_000).unwrap();
    assert_eq!(recovered.overturns_replayed, overturned.len() as u64);
    assert_eq!(overturns.last_sequence(), overturned.len() as u64);
    let kept = overturns.read_after(0, 100).unwrap();
    assert_eq!(kept, overturned);
    assert_eq!(recovered.last_sequence, decided as u64);
    let covers = recovered.checkpoint.expect("a checkpoint was saved");
    assert!(covers > 0 && recovered.replayed == decided as u64 - covers);
    assert!(recovered.replayed >= 300, "{recovered:?}");
    assert_eq!(log.last_sequence(), decided as u64);
    assert_eq!(log.len(), 1_000);

    // Counters, distinct counts and labels, entity by entity.
    let live = second.live_state().snapshot();
    assert_eq!(live.len(), expected_live.len());
    for (entity, expected) in &expected_live {
        assert_eq!(live.get(entity), Some(expected), "{entity}");
    }
    assert_eq!(second.shadow_state().snapshot(), expected_shadow);

    // A retry of a recent event gets its logged decision, not a new one.
    let last = traffic.events.last().unwrap().event.clone();
    let retried = second.evaluate(last.clone()).unwrap();
    assert!(retried.duplicate);
    assert_eq!(
        log.get(&retried.decision.id).unwrap().decision.event.id,
        last.id
    );
}
