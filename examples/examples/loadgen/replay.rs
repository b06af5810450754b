//! The traffic: the simulator's events as wire events, replayed in rounds
//! with fresh ids and later dates.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure};
use enforcer::api::v1;
use enforcer_examples::simulator::{SimConfig, Simulator};

use crate::args::Args;

/// The simulator's traffic as wire events, replayed in rounds.
pub(crate) struct Replay {
    events: Vec<v1::Event>,
    /// Each event's time in milliseconds, to shift per round.
    times_ms: Vec<i64>,
    /// How far apart rounds are dated: the traffic's span and a second.
    span_ms: i64,
    /// Rounds that can be dated entirely in the past of the wall clock.
    pub(crate) rounds: u64,
    /// Distinguishes this run's ids from an earlier run's against the same
    /// server, which would otherwise be answered as retries.
    run: String,
    /// The decision view every request asks for.
    view: v1::DecisionView,
}

impl Replay {
    pub(crate) fn simulate(args: &Args) -> anyhow::Result<Replay> {
        let config = SimConfig::community(args.seed, args.accounts, args.minutes);
        let traffic = Simulator::new(config)
            .map_err(|e| anyhow::anyhow!("simulator: {e}"))?
            .run();
        ensure!(
            !traffic.events.is_empty(),
            "the simulator produced no events"
        );
        let times_ms: Vec<i64> = traffic
            .events
            .iter()
            .map(|e| e.event.occurred_at_ms)
            .collect();
        let (first, last) = (times_ms.iter().min(), times_ms.iter().max());
        let (Some(&first), Some(&last)) = (first, last) else {
            bail!("the simulator produced no events");
        };
        let span_ms = last - first + 1_000;
        let now_ms = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
        let rounds = u64::try_from((now_ms - last) / span_ms).unwrap_or(0);
        ensure!(
            rounds > 0,
            "the simulated traffic ends after this machine's clock"
        );
        let events = traffic
            .events
            .iter()
            .map(|e| enforcer::api::event_to_proto(&e.event))
            .collect();
        Ok(Replay {
            events,
            times_ms,
            span_ms,
            rounds,
            run: format!("{now_ms:x}"),
            view: if args.compact {
                v1::DecisionView::Compact
            } else {
                v1::DecisionView::Full
            },
        })
    }

    pub(crate) fn len(&self) -> u64 {
        self.events.len() as u64
    }

    /// A request for `event` in this run's view.
    pub(crate) fn request(&self, event: v1::Event) -> v1::EvaluateRequest {
        v1::EvaluateRequest {
            event: Some(event),
            view: self.view.into(),
        }
    }

    /// The `index`th event of the endless replay, or `None` once it would
    /// be dated after the wall clock.
    pub(crate) fn event(&self, index: u64) -> Option<v1::Event> {
        let round = index / self.len();
        if round >= self.rounds {
            return None;
        }
        let at = (index % self.len()) as usize;
        let mut event = self.events[at].clone();
        let suffix = format!("-{}r{round}", self.run);
        event.id.push_str(&suffix);
        for entity in [event.actor.as_mut(), event.target.as_mut()]
            .into_iter()
            .flatten()
        {
            entity.id.push_str(&suffix);
        }
        let ms = self.times_ms[at] + round as i64 * self.span_ms;
        event.occurred_at = Some(prost_types::Timestamp {
            seconds: ms.div_euclid(1000),
            nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
        });
        Some(event)
    }
}
