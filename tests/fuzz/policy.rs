//! Target (b), the policy: `Policy::parse` on the example policy and a
//! policy using every setting, mutated line by line and byte by byte. A
//! refusal names a line of the document (one line lower when the document
//! is); an accepted policy, written out again, parses to the same policy.

use enforcer::examples::EXAMPLE_POLICY;
use enforcer::manifest::{Aggregation, CounterFilter, CounterSpec};
use enforcer::policy::{Policy, PolicyError, RulePolicy};
use proptest::prelude::*;

use crate::budget::fuzz;
use crate::mutate::mutated_text;

/// Every setting a policy has, each counter form included.
const FULL: &str = r#"version = "2026-12-03.1"

[combine]
strategy = "weighted_score"
review = 0.3
limit = 0.6
block = 0.95
fail_closed_severity = "limit"

[defaults]
mode = "shadow"
weight = 0.5
failure = "closed"
veto = false

[rules.known-hash-match]
mode = "enforce"
weight = 2.0
failure = "closed"
veto = true

[rules."harmful-text"]
mode = "disabled"

[counters.reports_received]
event_kinds = ["report.filed"]
key = "target"
aggregation = "distinct_actors"
window_seconds = 86400

[counters.bytes_sent]
event_kinds = ["message.sent", "message.forwarded"]
aggregation = "sum"
attribute = "size"
window_seconds = 3600
only_if = "has_media"

[counters.chats]
event_kinds = ["message.sent"]
aggregation = "distinct"
attribute = "chat_id"
window_seconds = 60
only_if_not = "is_reply"

[counters.invites]
event_kinds = ["group.invite_created"]
aggregation = "count"
window_seconds = 2678400
only_if_text = { attribute = "link_kind", equals = "public" }
"#;

/// Values and lines the edits put in: each just inside or outside what
/// the parser accepts.
const TOKENS: &[&str] = &[
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "0.0",
    "-0.0",
    "1",
    "1.0",
    "1.5",
    "100.0",
    "100.5",
    "1e309",
    "4294967296",
    "2678401",
    "\"\"",
    "\"x\"",
    "\"has space\"",
    "\"é\"",
    "\"enforce\"",
    "\"shadow\"",
    "\"disabled\"",
    "\"open\"",
    "\"closed\"",
    "\"allow\"",
    "\"review\"",
    "\"block\"",
    "\"weighted_score\"",
    "\"highest_severity\"",
    "\"actor\"",
    "\"target\"",
    "\"sum\"",
    "\"count\"",
    "\"distinct_targets\"",
    "true",
    "[]",
    "[\"a.b\"]",
    "[\"bad kind\"]",
    "{}",
    "[rules.x]",
    "[counters.c]",
    "[combine]",
    "[defaults]",
    "version = \"v\"",
    "attribute = \"n\"",
    "only_if = \"f\"",
    "key = \"target\"",
    "window_seconds = 0",
    "event_kinds = []",
    "\"\"\"",
    "'''",
    "\"\\u0000\"",
    "x = 1",
];

/// A TOML basic string.
fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c < ' ' || c == '\u{7f}' => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An enum's name as the policy spells it.
fn name(value: impl serde::Serialize) -> String {
    quote(
        serde_json::to_value(value)
            .expect("serialises")
            .as_str()
            .expect("a unit variant"),
    )
}

fn rule_table(out: &mut String, header: &str, rule: &RulePolicy) {
    out.push_str(&format!(
        "\n{header}\nmode = {}\nweight = {:?}\nfailure = {}\nveto = {}\n",
        name(rule.mode),
        rule.weight,
        name(rule.failure),
        rule.veto
    ));
}

fn counter_table(out: &mut String, spec: &CounterSpec) {
    let kinds: Vec<String> = spec.event_kinds.iter().map(|k| quote(k)).collect();
    out.push_str(&format!(
        "\n[counters.{}]\nevent_kinds = [{}]\nkey = {}\nwindow_seconds = {}\n",
        quote(&spec.name),
        kinds.join(", "),
        name(spec.key),
        spec.window_seconds
    ));
    let (aggregation, attribute) = match &spec.aggregation {
        Aggregation::Count => ("count", None),
        Aggregation::Sum(a) => ("sum", Some(a)),
        Aggregation::Distinct(a) => ("distinct", Some(a)),
        Aggregation::DistinctActors => ("distinct_actors", None),
        Aggregation::DistinctTargets => ("distinct_targets", None),
    };
    out.push_str(&format!("aggregation = {}\n", quote(aggregation)));
    if let Some(attribute) = attribute {
        out.push_str(&format!("attribute = {}\n", quote(attribute)));
    }
    match &spec.filter {
        CounterFilter::All => {}
        CounterFilter::IsTrue(a) => out.push_str(&format!("only_if = {}\n", quote(a))),
        CounterFilter::IsFalse(a) => out.push_str(&format!("only_if_not = {}\n", quote(a))),
        CounterFilter::TextEquals(a, v) => out.push_str(&format!(
            "only_if_text = {{ attribute = {}, equals = {} }}\n",
            quote(a),
            quote(v)
        )),
    }
}

/// A policy written out as TOML, every setting explicit.
fn render(policy: &Policy) -> String {
    let mut out = format!("version = {}\n", quote(&policy.version));
    let t = &policy.thresholds;
    out.push_str(&format!(
        "\n[combine]\nstrategy = {}\nreview = {:?}\nlimit = {:?}\nblock = {:?}\nfail_closed_severity = {}\n",
        name(policy.strategy),
        t.review,
        t.limit,
        t.block,
        name(policy.fail_closed_severity)
    ));
    rule_table(&mut out, "[defaults]", &policy.defaults);
    for (rule, (settings, _)) in &policy.rules {
        rule_table(&mut out, &format!("[rules.{}]", quote(rule)), settings);
    }
    for (spec, _) in &policy.counters {
        counter_table(&mut out, spec);
    }
    out
}

/// A policy without the lines its parts were on.
fn without_lines(policy: &Policy) -> (Policy, Vec<usize>) {
    let mut bare = policy.clone();
    let mut lines = Vec::new();
    for (_, line) in bare.rules.values_mut() {
        lines.push(std::mem::take(line));
    }
    for (_, line) in &mut bare.counters {
        lines.push(std::mem::take(line));
    }
    (bare, lines)
}

fn check_error(text: &str, error: &PolicyError) -> Result<(), TestCaseError> {
    prop_assert!(!error.message.trim().is_empty());
    let line = error
        .line
        .ok_or_else(|| TestCaseError::fail(format!("no line: {error}")))?;
    // A document's last line may be unterminated: at most one more.
    let lines = text.lines().count().max(1);
    prop_assert!(
        (1..=lines + 1).contains(&line),
        "line {line} of {lines}: {error}"
    );
    let prefix = format!("policy line {line}: ");
    let shown = error.to_string();
    prop_assert!(shown.starts_with(&prefix), "{shown}");
    Ok(())
}

fn check_policy(text: String) -> Result<(), TestCaseError> {
    let result = Policy::parse(&text);
    let lower = Policy::parse(&format!("# one line lower\n{text}"));
    match (&result, &lower) {
        (Err(error), Err(moved)) => {
            check_error(&text, error)?;
            prop_assert_eq!(&moved.message, &error.message);
            // A key missing from the top level is a mistake of the whole
            // document, which the TOML reader places on its first line.
            let whole_document =
                error.line == Some(1) && error.message.starts_with("missing field");
            if !whole_document {
                prop_assert_eq!(moved.line, error.line.map(|l| l + 1), "{}", error);
            }
        }
        (Ok(policy), Ok(moved)) => {
            let (bare, lines) = without_lines(policy);
            let (moved_bare, moved_lines) = without_lines(moved);
            prop_assert_eq!(&moved_bare, &bare);
            let shifted: Vec<usize> = lines.iter().map(|l| l + 1).collect();
            prop_assert_eq!(moved_lines, shifted);
            // Written out and read again: the same policy.
            let rendered = render(policy);
            let again = Policy::parse(&rendered).map_err(|e| {
                TestCaseError::fail(format!("the rendering does not parse: {e}\n{rendered}"))
            })?;
            prop_assert_eq!(without_lines(&again).0, bare, "{}", rendered);
            // And the lines it names hold what it says is there.
            let rendered_lines: Vec<&str> = rendered.lines().collect();
            for (rule, (_, line)) in &again.rules {
                let header = rendered_lines[line - 1];
                prop_assert!(
                    header.starts_with("[rules.")
                        && header.contains(&quote(rule)[1..quote(rule).len() - 1]),
                    "{header}"
                );
            }
            for (spec, line) in &again.counters {
                prop_assert!(
                    rendered_lines[line - 1].starts_with("[counters."),
                    "{}",
                    spec.name
                );
            }
        }
        _ => prop_assert!(
            false,
            "one line lower changed the outcome: {result:?} / {lower:?}"
        ),
    }
    Ok(())
}

#[test]
fn policies_parse_precisely_and_round_trip() {
    for seed in [EXAMPLE_POLICY, FULL] {
        let policy = Policy::parse(seed).unwrap();
        check_policy(seed.to_string()).unwrap();
        assert_eq!(
            without_lines(&Policy::parse(&render(&policy)).unwrap()).0,
            without_lines(&policy).0
        );
    }
    let seeds = vec![EXAMPLE_POLICY.to_string(), FULL.to_string()];
    let cases = fuzz("policy", mutated_text(seeds, TOKENS, 6), check_policy);
    assert!(cases >= 64);
}
