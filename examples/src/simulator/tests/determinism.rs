//! One seed, one output; events in order up to the configured lateness;
//! ids unique and in arrival order; every class present.

use std::collections::HashSet;

use super::super::{Class, SimConfig, Summary, write_bank, write_events, write_truth};
use super::{default_traffic, simulate};

fn small(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        accounts: 1_500,
        groups: 80,
        duration_seconds: 1800,
        ..SimConfig::default()
    }
}

/// Everything a run writes, as bytes.
fn output(config: SimConfig) -> Vec<u8> {
    let traffic = simulate(config);
    let mut bytes = Vec::new();
    write_events(&traffic, &mut bytes).expect("writing to memory");
    write_truth(&traffic, &mut bytes).expect("writing to memory");
    write_bank(&traffic, &mut bytes).expect("writing to memory");
    bytes
}

#[test]
fn one_seed_gives_identical_bytes() {
    let first = output(small(3));
    assert!(first.len() > 100_000, "a run writes something substantial");
    assert!(
        first == output(small(3)),
        "the same seed must give the same bytes"
    );
}

#[test]
fn another_seed_gives_other_traffic() {
    assert!(output(small(3)) != output(small(4)));
}

#[test]
fn events_are_in_order_up_to_the_lateness() {
    let config = SimConfig::default();
    let traffic = default_traffic();
    let mut latest = config.start_ms;
    let mut backwards = 0;
    for labelled in &traffic.events {
        let at = labelled.event.occurred_at_ms;
        assert!(
            at >= latest - config.max_lateness_ms,
            "{} goes back {} ms",
            labelled.event.id,
            latest - at
        );
        backwards += usize::from(at < latest);
        latest = latest.max(at);
    }
    // About 1% of events arrive late; each is seen going backwards unless
    // nothing happened in between.
    let share = backwards as f64 / traffic.events.len() as f64;
    assert!(
        (0.003..0.02).contains(&share),
        "{share} of events arrive late"
    );
}

#[test]
fn without_lateness_events_never_go_backwards() {
    let traffic = simulate(SimConfig {
        late_share: 0.0,
        ..small(5)
    });
    assert!(
        traffic
            .events
            .windows(2)
            .all(|pair| pair[0].event.occurred_at_ms <= pair[1].event.occurred_at_ms)
    );
}

#[test]
fn events_stay_inside_the_run() {
    let config = SimConfig::default();
    let end = config.start_ms + config.duration_seconds as i64 * 1000;
    for labelled in &default_traffic().events {
        assert!((config.start_ms..end).contains(&labelled.event.occurred_at_ms));
    }
}

#[test]
fn ids_are_unique_and_numbered_in_arrival_order() {
    for (number, labelled) in default_traffic().events.iter().enumerate() {
        assert_eq!(labelled.event.id, format!("evt-{number}"));
    }
}

#[test]
fn message_media_and_link_ids_do_not_collide_by_accident() {
    // Forwards reuse message ids on purpose; sent messages and media do not.
    let mut seen = HashSet::new();
    for labelled in &default_traffic().events {
        let event = &labelled.event;
        let id = match event.kind.as_str() {
            "message.sent" => super::text(event, "message_id"),
            "media.profile_photo" | "media.group_icon" => super::text(event, "media_id"),
            _ => continue,
        };
        assert!(seen.insert(id), "{id} appears twice");
    }
}

#[test]
fn every_class_is_present_by_default() {
    let traffic = default_traffic();
    let summary = Summary::of(traffic);
    for class in Class::ALL {
        let count = summary.entities.get(&class).copied().unwrap_or(0);
        assert!(count > 0, "no {class} entities");
    }
    // Every account class also acts.
    let acting: HashSet<Class> = traffic.events.iter().map(|l| l.truth.class).collect();
    for class in Class::ALL {
        if !matches!(class, Class::OrdinaryGroup | Class::CsamGroup) {
            assert!(acting.contains(&class), "no events by a {class}");
        }
    }
    // A realistic mix: mostly ordinary, a visible minority of abuse.
    assert!(
        (100_000..300_000).contains(&summary.events),
        "{} events",
        summary.events
    );
    let share = summary.abusive_share();
    assert!((0.03..0.25).contains(&share), "abusive share {share}");
}

#[test]
fn truth_agrees_with_event_labels() {
    let traffic = default_traffic();
    let classes = super::classes(traffic);
    for labelled in &traffic.events {
        let class = classes[&labelled.event.actor];
        assert_eq!(labelled.truth.class, class, "{}", labelled.event.id);
        if labelled.truth.abusive {
            assert!(
                class.is_abusive(),
                "{} is abuse by a {class}",
                labelled.event.id
            );
        }
    }
    for truth in &traffic.truth {
        assert_eq!(truth.abusive, truth.class.is_abusive());
    }
}
