//! Target (b), the serve configuration: `ServeConfig::parse` on the
//! documented example and a configuration using every table, mutated line
//! by line and byte by byte. A refusal says where (the line, or the
//! `table.key` a checked value is under, and then that key's own line in
//! that table); the same document one line lower gives the same result one
//! line lower; an accepted configuration converts into options.

use enforcer::config::{ConfigError, ServeConfig};
use proptest::prelude::*;

use crate::budget::fuzz;
use crate::mutate::mutated_text;

const EXAMPLE: &str = include_str!("../../engine/enforcer.example.toml");

/// Every table, each with keys that other tables also have.
const FULL: &str = r#"listen = "0.0.0.0:6000"
plugin_dir = "rules"
policy = "policy.toml"

[limits]
max_message_bytes = 65536
max_concurrent_streams = 10
workers = 3
decision_log_capacity = 1000
shutdown_grace_seconds = 5
stream_batch_events = 32
stream_batches_in_flight = 1
max_image_bytes = 1048576
max_image_side = 4096
max_image_pixels = 1000000

[state]
lateness_seconds = 60
idempotency_window_seconds = 120
idempotency_max_remembered = 5000
max_future_skew_seconds = 0
sweep_interval_seconds = 7
shadow_report_minutes = 90
ground_truth_entities = 300
ground_truth_labels = 400

[admin]
listen = "127.0.0.1:7000"
audit_capacity = 100
tokens = [{ name = "ops", token = "0123456789abcdef0123" }]

[rules]
allow_unsigned = true
watch_plugin_dir = false
watch_interval_ms = 250
fast_compile = true

[[banks]]
name = "known"
file = "known.txt"
allow_lists = ["fp"]

[[banks]]
name = "fp"
file = "fp.txt"
kind = "allow"
max_distance = 8

[storage]
mode = "memory"
keep_decisions = 1000
keep_hours = 24
checkpoint_seconds = 30

[nats]
url = "nats://10.0.0.1:4333"
subject_prefix = "t.d"
stream = "S"
in_flight = 8
replicas = 3
ack_timeout_ms = 100
retry_max_ms = 200
shutdown_grace_seconds = 1

[redis]
urls = ["redis://10.0.0.1:7000"]
prefix = "t"
pool_size = 8
timeout_ms = 50

[metrics]
listen = "127.0.0.1:9464"
"#;

const TOKENS: &[&str] = &[
    "0",
    "1",
    "-1",
    "1023",
    "1024",
    "268435456",
    "268435457",
    "9223372036854775807",
    "18446744073709551616",
    "4294967296",
    "1.5",
    "nan",
    "true",
    "\"\"",
    "\"x\"",
    "\"0.0.0.0:99999\"",
    "\"[::1]:1\"",
    "\"nats://\"",
    "\"http://h:1\"",
    "\"redis://\"",
    "\"not a url\"",
    "\"a{b}\"",
    "\"memory\"",
    "\"embedded\"",
    "\"allow\"",
    "[]",
    "[\"redis://a:1\", \"redis://b:1\"]",
    "[\"not-a-key\"]",
    "{}",
    "[{ name = \"\", token = \"0123456789abcdef\" }]",
    "[{ name = \"x\", token = \"short\" }]",
    "[limits]",
    "[state]",
    "[nats]",
    "[redis]",
    "[[banks]]",
    "[admin]",
    "[metrics]",
    "workers = 0",
    "replicas = 0",
    "timeout_ms = 0",
    "shutdown_grace_seconds = 0",
    "unknown_key = 1",
    "'''",
];

/// The table a line of `text` is in: the last `[table]` or `[[table]]`
/// header above it ("" for the top level).
fn table_of_line(text: &str, line: usize) -> String {
    text.lines()
        .take(line)
        .filter_map(|l| {
            let l = l.trim();
            let inner = l.strip_prefix("[[").and_then(|l| l.strip_suffix("]]"));
            inner
                .or_else(|| l.strip_prefix('[').and_then(|l| l.strip_suffix(']')))
                .map(|t| t.trim().to_string())
        })
        .last()
        .unwrap_or_default()
}

fn check_error(text: &str, error: &ConfigError) -> Result<(), TestCaseError> {
    let shown = error.to_string();
    prop_assert!(shown.starts_with("config"), "{shown}");
    prop_assert!(!error.message.trim().is_empty());
    let lines = text.lines().count().max(1);
    // A value refused after parsing names its table and key.
    let checked = error
        .message
        .split_once(": ")
        .and_then(|(path, _)| path.split_once('.'))
        .filter(|(table, key)| {
            [
                "limits", "state", "storage", "admin", "rules", "nats", "redis",
            ]
            .contains(table)
                && !key.is_empty()
                && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        });
    match (error.line, checked) {
        (Some(line), Some((table, key))) => {
            prop_assert!((1..=lines).contains(&line), "{shown}");
            let at = text.lines().nth(line - 1).unwrap_or_default().trim_start();
            prop_assert!(
                at.strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('=')),
                "{shown}: line {line} is {at:?}"
            );
            prop_assert_eq!(
                table_of_line(text, line),
                table,
                "{}: line {} is in another table",
                shown,
                line
            );
        }
        (Some(line), None) => prop_assert!((1..=lines + 1).contains(&line), "{shown}"),
        // A checked value set where no line begins with its key (in an
        // inline table, a dotted or quoted key): the path alone.
        (None, Some(_)) => {}
        (None, None) => prop_assert!(false, "neither a line nor a key: {shown}"),
    }
    Ok(())
}

fn check_config(text: String) -> Result<(), TestCaseError> {
    let result = ServeConfig::parse(&text);
    let lower = ServeConfig::parse(&format!("# one line lower\n{text}"));
    match (&result, &lower) {
        (Err(error), Err(moved)) => {
            check_error(&text, error)?;
            prop_assert_eq!(&moved.message, &error.message);
            prop_assert_eq!(moved.line, error.line.map(|l| l + 1), "{}", error);
        }
        (Ok(config), Ok(moved)) => {
            prop_assert_eq!(moved, config);
            // What serve does with an accepted configuration must not fail.
            prop_assert!(config.check("config").is_ok());
            let server = config.server_options();
            prop_assert_eq!(server.max_message_bytes, config.limits.max_message_bytes);
            let _ = config.pipeline_options();
            let _ = config.redis_settings();
            let _ = config.storage.retention();
            prop_assert!(config.rules.signature_policy().is_ok());
        }
        _ => prop_assert!(
            false,
            "one line lower changed the outcome: {result:?} / {lower:?}"
        ),
    }
    Ok(())
}

#[test]
fn serve_configs_parse_precisely() {
    for seed in [EXAMPLE, FULL] {
        ServeConfig::parse(seed).unwrap();
    }
    let seeds = vec![EXAMPLE.to_string(), FULL.to_string()];
    let cases = fuzz("serve config", mutated_text(seeds, TOKENS, 6), check_config);
    assert!(cases >= 64);
}
