//! The progress line on stderr.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crate::counters::Counters;
use crate::report::grouped;

/// One line on stderr, rewritten every second, until aborted.
pub(crate) fn progress(counters: Arc<Counters>, started: Instant) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let mut last = 0;
        loop {
            tick.tick().await;
            let answered = counters.answered();
            eprint!(
                "\r{:>6.1} s  sent {:>12}  answered {:>9}/s  errors {}   ",
                started.elapsed().as_secs_f64(),
                grouped(counters.sent.load(Relaxed)),
                grouped(answered - last),
                grouped(counters.errors()),
            );
            last = answered;
        }
    })
}

/// Stop the progress line and end it, so results start on a fresh line.
pub(crate) fn end_progress(progress: Option<tokio::task::JoinHandle<()>>) {
    if let Some(progress) = progress {
        progress.abort();
        eprintln!();
    }
}
