//! Results: printed as text (with the latency percentiles) or as one JSON
//! object.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::args::{Args, Mode};
use crate::counters::Counters;
use crate::soak::SoakReport;
use crate::unary::Latency;

pub(crate) enum Report {
    Stream(StreamReport),
    /// Boxed: its histograms make it large.
    Unary(Box<UnaryReport>),
}

impl Report {
    pub(crate) fn print(
        &self,
        args: &Args,
        addr: &str,
        placement: &str,
        soak: Option<&SoakReport>,
    ) {
        let (json, errors) = match self {
            Report::Stream(r) => (r.json(args), &r.errors),
            Report::Unary(r) => (r.json(args), &r.errors),
        };
        if args.json {
            let mut object = serde_json::json!({
                "addr": addr,
                "server": placement,
                "connections": args.connections,
            });
            if let (Some(object), serde_json::Value::Object(more)) = (object.as_object_mut(), json)
            {
                object.extend(more);
            }
            if let (Some(object), Some(soak)) = (object.as_object_mut(), soak) {
                object.insert("soak".into(), soak.json());
            }
            println!("{object}");
            return;
        }
        println!("{addr} ({placement})");
        match self {
            Report::Stream(r) => r.print(args),
            Report::Unary(r) => r.print(args),
        }
        for (description, count) in errors {
            println!("  {} x {description}", grouped(*count));
        }
        if let Some(soak) = soak {
            soak.print();
        }
    }
}

pub(crate) struct StreamReport {
    sent: u64,
    ok: u64,
    duplicates: u64,
    event_errors: u64,
    stream_errors: u64,
    errors: BTreeMap<String, u64>,
    seconds: f64,
    out_of_traffic: bool,
}

impl StreamReport {
    pub(crate) fn new(counters: &Counters, elapsed: Duration) -> StreamReport {
        StreamReport {
            sent: counters.sent.load(Relaxed),
            ok: counters.ok.load(Relaxed),
            duplicates: counters.duplicates.load(Relaxed),
            event_errors: counters.event_errors.load(Relaxed),
            stream_errors: counters.stream_errors.load(Relaxed),
            errors: counters.error_kinds(),
            seconds: elapsed.as_secs_f64(),
            out_of_traffic: counters.out_of_traffic.load(Relaxed),
        }
    }

    /// Results (decisions and per-event errors alike) per second.
    fn throughput(&self) -> f64 {
        (self.ok + self.event_errors) as f64 / self.seconds
    }

    fn print(&self, args: &Args) {
        let pace = match args.rate {
            Some(rate) => format!("offered {} events/s", grouped(rate as u64)),
            None => "as fast as answered".to_string(),
        };
        println!(
            "EvaluateStream on {} connection(s), {pace}",
            args.connections
        );
        println!(
            "sent {}, decided {} ({} duplicates), event errors {}, stream errors {}",
            grouped(self.sent),
            grouped(self.ok),
            grouped(self.duplicates),
            grouped(self.event_errors),
            grouped(self.stream_errors)
        );
        println!(
            "throughput {} events/s over {:.2} s",
            grouped(self.throughput() as u64),
            self.seconds
        );
        if self.out_of_traffic {
            println!("stopped early: further rounds would be dated in the future");
        }
    }

    fn json(&self, args: &Args) -> serde_json::Value {
        serde_json::json!({
            "mode": "stream",
            "offered_rate": args.rate,
            "sent": self.sent,
            "decided": self.ok,
            "duplicates": self.duplicates,
            "event_errors": self.event_errors,
            "stream_errors": self.stream_errors,
            "errors": self.errors,
            "seconds": self.seconds,
            "events_per_second": self.throughput(),
            "out_of_traffic": self.out_of_traffic,
        })
    }
}

pub(crate) struct UnaryReport {
    offered: f64,
    seconds: f64,
    sent: u64,
    ok: u64,
    duplicates: u64,
    errors_total: u64,
    errors: BTreeMap<String, u64>,
    latency: Latency,
}

impl UnaryReport {
    pub(crate) fn new(
        counters: &Counters,
        latency: Latency,
        offered: f64,
        seconds: f64,
    ) -> UnaryReport {
        UnaryReport {
            offered,
            seconds,
            sent: counters.sent.load(Relaxed),
            ok: counters.ok.load(Relaxed),
            duplicates: counters.duplicates.load(Relaxed),
            errors_total: counters.event_errors.load(Relaxed),
            errors: counters.error_kinds(),
            latency,
        }
    }

    /// Calls answered with a decision per second over the measured part of
    /// the run (the latency histograms hold exactly those calls).
    fn achieved(&self) -> f64 {
        let window = match (self.latency.first_scheduled, self.latency.last_finished) {
            (Some(first), Some(last)) => (last - first).as_secs_f64(),
            _ => 0.0,
        };
        if window > 0.0 {
            self.latency.scheduled.len() as f64 / window
        } else {
            0.0
        }
    }

    /// The histograms reported, by name.
    fn histograms(&self) -> [(&'static str, &Histogram<u64>); 3] {
        [
            ("from scheduled send", &self.latency.scheduled),
            ("from actual send", &self.latency.sent),
            ("send lateness", &self.latency.lag),
        ]
    }

    fn print(&self, args: &Args) {
        let call = if args.mode == Mode::Health {
            "Health/Check (the transport's floor)"
        } else {
            "Evaluate"
        };
        println!(
            "{call} at an offered {} calls/s for {} s (after {} s warm-up), at most {} \
             outstanding, {} connection(s)",
            grouped(self.offered as u64),
            self.seconds,
            args.warmup,
            args.concurrency,
            args.connections
        );
        println!(
            "sent {}, decided {} ({} duplicates), errors {}; achieved {} calls/s",
            grouped(self.sent),
            grouped(self.ok),
            grouped(self.duplicates),
            grouped(self.errors_total),
            grouped(self.achieved() as u64)
        );
        for (name, histogram) in self.histograms() {
            let line: Vec<String> = percentiles(histogram)
                .iter()
                .map(|(p, us)| format!("{p} {}", grouped(*us)))
                .collect();
            println!("{name:<20} µs: {}", line.join("  "));
        }
    }

    fn json(&self, args: &Args) -> serde_json::Value {
        let mut object = serde_json::json!({
            "mode": if args.mode == Mode::Health { "health" } else { "unary" },
            "offered_rate": self.offered,
            "seconds": self.seconds,
            "warmup_seconds": args.warmup,
            "concurrency": args.concurrency,
            "sent": self.sent,
            "decided": self.ok,
            "duplicates": self.duplicates,
            "errors_total": self.errors_total,
            "errors": self.errors,
            "achieved_rate": self.achieved(),
            "measured_calls": self.latency.measured,
        });
        for (name, histogram) in self.histograms() {
            let key = format!("latency_{}_us", name.replace(' ', "_"));
            let values: serde_json::Map<String, serde_json::Value> = percentiles(histogram)
                .iter()
                .map(|(p, us)| (p.to_string(), (*us).into()))
                .collect();
            object[key] = values.into();
        }
        object
    }
}

/// The percentiles reported, and the maximum.
fn percentiles(h: &Histogram<u64>) -> [(&'static str, u64); 5] {
    [
        ("p50", h.value_at_quantile(0.50)),
        ("p90", h.value_at_quantile(0.90)),
        ("p99", h.value_at_quantile(0.99)),
        ("p99.9", h.value_at_quantile(0.999)),
        ("max", h.max()),
    ]
}

/// 1234567 as `1,234,567`.
pub(crate) fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
