//! JSON lines round trips, read errors with line numbers, and
//! configurations the simulator refuses.

use std::io::Cursor;

use super::super::{
    ConfigError, SimConfig, Simulator, read_bank, read_jsonl, read_truth, write_bank, write_events,
    write_jsonl, write_truth,
};
use super::simulate;

fn small() -> SimConfig {
    SimConfig {
        seed: 21,
        accounts: 600,
        groups: 40,
        duration_seconds: 1200,
        ..SimConfig::default()
    }
}

#[test]
fn events_truth_and_bank_round_trip() {
    let traffic = simulate(small());
    let (mut events, mut truth, mut bank) = (Vec::new(), Vec::new(), Vec::new());
    write_jsonl(&traffic, &mut events, Some(&mut truth), Some(&mut bank)).expect("in memory");

    assert_eq!(
        read_jsonl(Cursor::new(&events)).expect("valid events"),
        traffic.events
    );
    assert_eq!(
        read_truth(Cursor::new(&truth)).expect("valid truth"),
        traffic.truth
    );
    assert_eq!(
        read_bank(Cursor::new(&bank)).expect("valid bank"),
        traffic.bank
    );

    let lines = events
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert_eq!(lines, traffic.events.len(), "one event a line");
}

#[test]
fn lines_have_the_documented_shape() {
    let traffic = simulate(small());
    let mut events = Vec::new();
    write_events(&traffic, &mut events).expect("in memory");
    let first = events.split(|&b| b == b'\n').next().expect("a line");
    let line: serde_json::Value = serde_json::from_slice(first).expect("JSON");
    assert!(line["event"]["kind"].is_string());
    assert!(line["truth"]["class"].is_string());
    assert!(line["truth"]["abusive"].is_boolean());

    let mut bank = Vec::new();
    write_bank(&traffic, &mut bank).expect("in memory");
    let first = bank.split(|&b| b == b'\n').next().expect("a line");
    let entry: serde_json::Value = serde_json::from_slice(first).expect("JSON");
    let hash = entry["hash"].as_str().expect("hex text");
    assert_eq!(hash.len(), 64);
    assert!(
        hash.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );

    let mut truth = Vec::new();
    write_truth(&traffic, &mut truth).expect("in memory");
    assert!(String::from_utf8_lossy(&truth).contains(r#""class":"csam_ring_member""#));
}

#[test]
fn read_errors_name_the_line() {
    let traffic = simulate(small());
    let mut events = Vec::new();
    write_events(&traffic, &mut events).expect("in memory");
    let mut text: Vec<&[u8]> = events.split(|&b| b == b'\n').take(2).collect();
    text.push(b"");
    text.push(br#"{"event": {"id": "x"}}"#);
    let error = read_jsonl(Cursor::new(text.join(&b'\n'))).expect_err("the fourth line is bad");
    assert_eq!(error.line, 4);
    assert!(error.to_string().starts_with("line 4: "), "{error}");
}

#[test]
fn bad_bank_hashes_are_rejected() {
    let short = r#"{"id": "a", "hash": "abcd"}"#;
    assert!(read_bank(Cursor::new(short)).is_err());
    let not_hex = format!(r#"{{"id": "a", "hash": "{}"}}"#, "zz".repeat(32));
    assert!(read_bank(Cursor::new(not_hex)).is_err());
}

#[test]
fn invalid_configurations_are_refused() {
    let refused = |config: SimConfig| Simulator::new(config).expect_err("refused");
    assert!(matches!(
        refused(SimConfig {
            spammer_share: 1.5,
            ..small()
        }),
        ConfigError::Share {
            name: "spammer_share",
            ..
        }
    ));
    assert!(matches!(
        refused(SimConfig {
            late_share: f64::NAN,
            ..small()
        }),
        ConfigError::Share { .. }
    ));
    assert!(matches!(
        refused(SimConfig {
            spammer_share: 0.6,
            ..small()
        }),
        ConfigError::TooFewOrdinary { .. }
    ));
    assert!(matches!(
        refused(SimConfig {
            accounts: 5,
            ..small()
        }),
        ConfigError::TooFewOrdinary { .. }
    ));
    assert!(matches!(
        refused(SimConfig {
            duration_seconds: 0,
            ..small()
        }),
        ConfigError::Duration(0)
    ));
    assert!(matches!(
        refused(SimConfig {
            bank_size: 0,
            ..small()
        }),
        ConfigError::EmptyBank
    ));
    assert!(matches!(
        refused(SimConfig {
            start_ms: i64::MAX - 1000,
            ..small()
        }),
        ConfigError::StartTooLate(_)
    ));
}

#[test]
fn tiny_populations_still_run() {
    let traffic = simulate(SimConfig {
        accounts: 20,
        groups: 0,
        duration_seconds: 60,
        ..SimConfig::default()
    });
    assert_eq!(traffic.truth.len(), 20);
}
