//! A hostile rule that misuses the host functions, one way per event, picked
//! by the event's `mode` attribute. Each misuse must fail the call with a
//! message that names it.
use enforcer_sdk::*;

/// The rule.
pub struct BadHostCalls;

impl Rule for BadHostCalls {
    fn manifest() -> Manifest {
        Manifest::new("hostile-bad-host-calls", "1.0.0")
            .on("message.sent")
            .counter(CounterSpec::count("sent", &["message.sent"], HOUR))
    }

    fn evaluate(event: &Event, state: &State) -> Verdict {
        let hits = match event.text("mode").as_deref() {
            Some("undeclared-counter") => state.counter(&Subject::Actor, "never-declared", HOUR),
            Some("long-window") => state.counter(&Subject::Actor, "sent", DAY),
            Some("unknown-bank") => state.match_hash("no-such-bank", &[0; 32], 31).len() as u64,
            Some("short-hash") => state.match_hash("known", &[0; 8], 31).len() as u64,
            _ => state.counter(&Subject::Actor, "sent", HOUR),
        };
        Verdict::new(Severity::Allow, 0.0).reason("hits", hits.to_string())
    }
}

rule!(BadHostCalls);
