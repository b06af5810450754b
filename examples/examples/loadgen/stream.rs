//! Stream mode: events over `EvaluateStream` on one stream per connection,
//! as fast as the server answers or at a rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use enforcer::api::v1;
use enforcer::api::v1::enforcement_client::EnforcementClient;
use futures_util::Stream;
use tonic::transport::Channel;

use crate::args::Args;
use crate::counters::Counters;
use crate::pacer::Pacer;
use crate::progress::{end_progress, progress};
use crate::replay::Replay;
use crate::report::{Report, StreamReport};

/// Where the streams take their events from: one shared sequence, so the
/// connections together send each event of the replay once.
struct Feed {
    replay: Replay,
    next: AtomicU64,
    total: Option<u64>,
    deadline: Instant,
}

impl Feed {
    fn next_request(&self, counters: &Counters) -> Option<v1::EvaluateRequest> {
        if Instant::now() >= self.deadline {
            return None;
        }
        let index = self.next.fetch_add(1, Relaxed);
        if self.total.is_some_and(|total| index >= total) {
            return None;
        }
        let Some(event) = self.replay.event(index) else {
            counters.out_of_traffic.store(true, Relaxed);
            return None;
        };
        counters.sent.fetch_add(1, Relaxed);
        Some(self.replay.request(event))
    }
}

pub(crate) async fn run_stream(
    args: &Args,
    clients: Vec<EnforcementClient<Channel>>,
    replay: Replay,
) -> anyhow::Result<Report> {
    let seconds = args.seconds.unwrap_or(if args.events.is_some() {
        f64::MAX
    } else {
        10.0
    });
    if let Some(events) = args.events {
        let rounds = events.div_ceil(replay.len());
        ensure!(
            rounds <= replay.rounds,
            "--events {events} needs {rounds} rounds of traffic, but only {} fit between the \
             simulator's start and now",
            replay.rounds
        );
    }
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let feed = Arc::new(Feed {
        replay,
        next: AtomicU64::new(0),
        total: args.events,
        deadline: started
            .checked_add(Duration::from_secs_f64(seconds.min(1e9)))
            .unwrap_or(started),
    });
    let progress = (!args.quiet).then(|| progress(counters.clone(), started));
    let per_stream = args.rate.map(|rate| rate / clients.len() as f64);
    let streams: Vec<_> = clients
        .into_iter()
        .map(|client| {
            tokio::spawn(one_stream(
                client,
                feed.clone(),
                counters.clone(),
                per_stream,
            ))
        })
        .collect();
    for stream in streams {
        stream.await.context("a stream's task failed")?;
    }
    let elapsed = started.elapsed();
    end_progress(progress);
    Ok(Report::Stream(StreamReport::new(&counters, elapsed)))
}

/// One `EvaluateStream` call: send from the feed until it runs dry, read
/// every result. A failed stream is counted, not retried: the point is to
/// see failures.
async fn one_stream(
    mut client: EnforcementClient<Channel>,
    feed: Arc<Feed>,
    counters: Arc<Counters>,
    rate: Option<f64>,
) {
    let requests = requests(feed, counters.clone(), rate);
    let mut results = match client.evaluate_stream(requests).await {
        Ok(response) => response.into_inner(),
        Err(status) => return counters.stream_error(&status),
    };
    loop {
        match results.message().await {
            Ok(Some(result)) => count_result(&counters, result),
            Ok(None) => return,
            Err(status) => return counters.stream_error(&status),
        }
    }
}

/// The requests of one stream, paced to `rate` if set. tonic pulls them as
/// HTTP/2 flow control allows, so an unpaced stream sends as fast as the
/// server reads.
fn requests(
    feed: Arc<Feed>,
    counters: Arc<Counters>,
    rate: Option<f64>,
) -> impl Stream<Item = v1::EvaluateRequest> + Send + 'static {
    let state = (feed, counters, Pacer::new(Instant::now(), rate));
    futures_util::stream::unfold(state, |(feed, counters, mut pacer)| async move {
        pacer.wait().await;
        let request = feed.next_request(&counters)?;
        Some((request, (feed, counters, pacer)))
    })
}

fn count_result(counters: &Counters, result: v1::EvaluateStreamResponse) {
    use v1::evaluate_stream_response::Result as R;
    match result.result {
        Some(R::Evaluated(response)) => counters.evaluated(response.duplicate),
        Some(R::Error(error)) => counters.event_error(format!(
            "event error code {}: {}: {}",
            error.code, error.field, error.message
        )),
        None => counters.event_error("a result with neither decision nor error".into()),
    }
}
