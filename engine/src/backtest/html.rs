//! Draws a backtest report as one self-contained HTML page: a headline of
//! the figures that matter, inline SVG charts drawn here, and tables of the
//! details.
//!
//! The page fetches nothing (no scripts, fonts or images from elsewhere), so
//! it can be mailed, archived and printed as it is. Every string taken from
//! the report is escaped, because event ids, class and rule names and file
//! names come from input that may be hostile. Every number drawn goes
//! through a formatter that turns a non-finite value into zero (coordinates)
//! or a dash (text), so the page never holds a `NaN`. Nothing but the report
//! feeds the page, so the same report renders to the same bytes.

use std::fmt::{self, Display, Write};

use super::report::{
    BacktestReport, ClassOutcome, Comparison, Confusion, CurvePoint, Disagreement, InputSummary,
    Metrics, RuleStats, RunReport, ScoreDistribution, Side, ratio,
};
use crate::verdict::Severity;

/// The candidate's colour, and the baseline's: the blue and orange of the
/// Tableau 10 palette, a pair that stays apart under the common colour
/// vision deficiencies and in greyscale print.
const CANDIDATE_COLOUR: &str = "#1f77b4";
/// See [`CANDIDATE_COLOUR`].
const BASELINE_COLOUR: &str = "#ff7f0e";

/// Severities in report order (the order of every `[u64; 4]`).
const SEVERITIES: [Severity; 4] = [
    Severity::Allow,
    Severity::Review,
    Severity::Limit,
    Severity::Block,
];

/// Renders `report` as a complete, self-contained HTML document.
pub fn render(report: &BacktestReport) -> String {
    let mut out = String::with_capacity(96 * 1024);
    page(&mut out, report).expect("writing to a String cannot fail");
    out
}

/// The whole document, section by section, in reading order.
fn page(out: &mut String, r: &BacktestReport) -> fmt::Result {
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Backtest report · {} events</title>\n<style>\n{STYLE}</style>\n</head>\n\
         <body>\n<main>\n",
        count(r.input.events)
    )?;
    summary_section(out, r)?;
    outcomes_section(out, r)?;
    scores_section(out, r)?;
    comparison_section(out, r)?;
    rules_section(out, r)?;
    builds_section(out, r)?;
    out.push_str("</main>\n");
    out.push_str(SELF_CHECK);
    out.push_str("</body>\n</html>\n");
    Ok(())
}

// ---------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------

/// The headline: what was replayed, and how well each rule set did.
fn summary_section(out: &mut String, r: &BacktestReport) -> fmt::Result {
    let input = &r.input;
    out.push_str("<header>\n<h1>Backtest report</h1>\n");
    if input.events == 0 {
        out.push_str("<p class=\"note\">No events were replayed.</p>\n");
    } else {
        writeln!(
            out,
            "<p class=\"note\">Events from {} to {} (UTC) · input digest \
             <span class=\"mono\" title=\"{}\">{}</span></p>",
            iso_utc(input.first_ms),
            iso_utc(input.last_ms),
            esc(&input.sha256),
            esc(&clip(&input.sha256, 16)),
        )?;
    }
    out.push_str("</header>\n<section id=\"summary\">\n<div class=\"cards\">\n");
    card(out, "Events", &count(input.events), &event_caveats(input))?;
    card(
        out,
        "Entities",
        &count(input.entities),
        "actors and named entities",
    )?;
    card(
        out,
        "Abusive events",
        &pct(ratio(input.abusive_events, input.events)),
        &format!("{} of {}", count(input.abusive_events), count(input.events)),
    )?;
    card(
        out,
        "Abusive entities",
        &pct(ratio(input.abusive_entities, input.entities)),
        &format!(
            "{} of {}",
            count(input.abusive_entities),
            count(input.entities)
        ),
    )?;
    card(
        out,
        "Positive severity",
        severity_name(r.positive),
        "this or above counts as acting",
    )?;
    if let Some(c) = &r.comparison {
        card(
            out,
            "Events decided differently",
            &count(c.events_differ),
            &format!("{} of events", pct(ratio(c.events_differ, input.events))),
        )?;
    }
    out.push_str("</div>\n");
    headline_table(out, r)?;
    if let Some(c) = &r.comparison {
        entity_split_table(out, c)?;
    } else if r.baseline.is_none() {
        out.push_str("<p class=\"note\">No baseline was given, so nothing is compared.</p>\n");
    }
    out.push_str("</section>\n");
    Ok(())
}

/// What to know about the events counted: repeated ids and events refused
/// as invalid, which are in the count but were decided as allow.
fn event_caveats(input: &InputSummary) -> String {
    match (input.duplicate_ids, input.refused_events) {
        (0, 0) => "no duplicate ids, none refused".to_owned(),
        (d, 0) => format!("{} duplicate ids", count(d)),
        (0, r) => format!("{} refused as invalid", count(r)),
        (d, r) => format!("{} duplicate ids, {} refused", count(d), count(r)),
    }
}

/// One headline figure.
fn card(out: &mut String, key: &str, value: &str, sub: &str) -> fmt::Result {
    writeln!(
        out,
        "<div class=\"card\"><div class=\"k\">{}</div><div class=\"v\">{}</div>\
         <div class=\"s\">{}</div></div>",
        esc(key),
        esc(value),
        esc(sub)
    )
}

/// Precision, recall and F1 of events and entities for each rule set, and
/// the change the candidate brings.
fn headline_table(out: &mut String, r: &BacktestReport) -> fmt::Result {
    out.push_str(
        "<table class=\"headline\">\n<thead><tr><th class=\"l\" rowspan=\"2\">Rule set</th>\
         <th colspan=\"3\" class=\"c\">Events</th><th colspan=\"3\" class=\"c\">Entities</th></tr>\n\
         <tr><th>Precision</th><th>Recall</th><th>F1</th>\
         <th>Precision</th><th>Recall</th><th>F1</th></tr></thead>\n<tbody>\n",
    );
    for (who, run) in runs(r) {
        write!(
            out,
            "<tr><td class=\"l\">{}{}</td>",
            swatch(who),
            who.label()
        )?;
        for m in [&run.events, &run.entities] {
            write!(
                out,
                "<td>{}</td><td>{}</td><td>{}</td>",
                pct(m.precision),
                pct(m.recall),
                pct(m.f1)
            )?;
        }
        out.push_str("</tr>\n");
    }
    if let Some(base) = &r.baseline {
        let cand = &r.candidate;
        out.push_str("<tr class=\"delta\"><td class=\"l\">Change (candidate − baseline)</td>");
        for (c, b) in [
            (&cand.events, &base.events),
            (&cand.entities, &base.entities),
        ] {
            write!(
                out,
                "<td>{}</td><td>{}</td><td>{}</td>",
                delta_pp(c.precision - b.precision),
                delta_pp(c.recall - b.recall),
                delta_pp(c.f1 - b.f1)
            )?;
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    Ok(())
}

/// Entities that only one side acted on, by their label.
fn entity_split_table(out: &mut String, c: &Comparison) -> fmt::Result {
    write!(
        out,
        "<table>\n<thead><tr><th class=\"l\">Entities acted on by one side only</th>\
         <th>Abusive</th><th>Benign</th></tr></thead>\n<tbody>\n\
         <tr><td class=\"l\">{}Only the candidate</td><td>{}</td><td>{}</td></tr>\n\
         <tr><td class=\"l\">{}Only the baseline</td><td>{}</td><td>{}</td></tr>\n\
         </tbody>\n</table>\n",
        swatch(Who::Candidate),
        count(c.candidate_only.abusive),
        count(c.candidate_only.benign),
        swatch(Who::Baseline),
        count(c.baseline_only.abusive),
        count(c.baseline_only.benign),
    )
}

/// Confusion matrices, decisions by severity, metrics by severity and
/// outcomes by class.
fn outcomes_section(out: &mut String, r: &BacktestReport) -> fmt::Result {
    write!(
        out,
        "<section id=\"outcomes\">\n<h2>Outcomes</h2>\n<p class=\"note\">An event counts as \
         acted on when its decision is <b>{0}</b> or above; an entity, when such a decision \
         carried an action on it. Shares are of all events (entities); darker cells hold more.\
         </p>\n",
        severity_name(r.positive)
    )?;
    for unit in ["events", "entities"] {
        part(out, &format!("Confusion matrix of {unit}"), "")?;
        out.push_str("<div class=\"figs\">\n");
        for (who, run) in runs(r) {
            let metrics = if unit == "events" {
                &run.events
            } else {
                &run.entities
            };
            confusion_chart(out, who, unit, &metrics.confusion)?;
        }
        out.push_str("</div>\n");
        part_end(out);
    }
    part(
        out,
        "Decisions by severity",
        "Every event's decision, at the severity it was given.",
    )?;
    decisions_chart(
        out,
        &r.candidate.severities,
        r.baseline.as_ref().map(|b| &b.severities),
    )?;
    part_end(out);
    severity_metrics_table(out, r)?;
    class_table(out, r)?;
    out.push_str("</section>\n");
    Ok(())
}

/// Precision/recall curves and score distributions.
fn scores_section(out: &mut String, r: &BacktestReport) -> fmt::Result {
    out.push_str("<section id=\"scores\">\n<h2>Scores</h2>\n");
    part(
        out,
        "Precision against recall by score threshold",
        "Each point: events whose combined score is at least a threshold count as positive. \
         Point at one for its threshold and counts.",
    )?;
    let base_curve = r.baseline.as_ref().map(|b| b.pr_curve.as_slice());
    if r.candidate.pr_curve.is_empty() && base_curve.is_none_or(<[CurvePoint]>::is_empty) {
        out.push_str("<p class=\"empty\">No curve: no event was scored.</p>\n");
    } else {
        pr_chart(out, &r.candidate.pr_curve, base_curve)?;
    }
    part_end(out);
    part(
        out,
        "Score distributions by class",
        "Events per score bin (bins of 0.05 from 0 to 1) on a log scale, so that a handful of \
         events shows next to thousands. Abusive classes have <b>hatched</b> bars and an \
         <b>abusive</b> tag.",
    )?;
    let classes = distribution_classes(r);
    if classes.is_empty() {
        out.push_str("<p class=\"empty\">No classes: no event was scored.</p>\n");
    } else {
        out.push_str("<div class=\"figs\">\n");
        for (index, (cand, base)) in classes.iter().enumerate() {
            histogram_chart(out, index, *cand, *base)?;
        }
        out.push_str("</div>\n");
    }
    part_end(out);
    out.push_str("</section>\n");
    Ok(())
}

/// Each class's score distribution from both sides: the candidate's classes
/// in its order, then any only the baseline has (both replay the same input,
/// so normally none).
fn distribution_classes(
    r: &BacktestReport,
) -> Vec<(Option<&ScoreDistribution>, Option<&ScoreDistribution>)> {
    let base: &[ScoreDistribution] = r
        .baseline
        .as_ref()
        .map_or(&[], |b| b.score_distributions.as_slice());
    let find =
        |list: &'_ [ScoreDistribution], class: &str| list.iter().position(|d| d.class == class);
    let mut pairs: Vec<_> = r
        .candidate
        .score_distributions
        .iter()
        .map(|c| (Some(c), find(base, &c.class).map(|i| &base[i])))
        .collect();
    for b in base {
        if find(&r.candidate.score_distributions, &b.class).is_none() {
            pairs.push((None, Some(b)));
        }
    }
    pairs
}

/// Where the candidate and the baseline differ; absent without a baseline.
fn comparison_section(out: &mut String, r: &BacktestReport) -> fmt::Result {
    let Some(c) = &r.comparison else {
        return Ok(());
    };
    let total: u64 = c.severity_matrix.iter().flatten().sum();
    out.push_str("<section id=\"comparison\">\n<h2>Candidate against baseline</h2>\n");
    part(
        out,
        "Severity of each event",
        &format!(
            "Rows: the candidate's severity; columns: the baseline's. Outlined cells on the \
             diagonal agree. Shade grows with the log of the count. {} events in all.",
            count(total)
        ),
    )?;
    severity_matrix_chart(out, &c.severity_matrix)?;
    part_end(out);
    part(
        out,
        "Top disagreements",
        "The largest severity gaps first, then the earliest.",
    )?;
    disagreements_table(out, &c.top_disagreements)?;
    part_end(out);
    out.push_str("</section>\n");
    Ok(())
}

/// What each candidate rule did on its own, and how the rules overlap.
fn rules_section(out: &mut String, r: &BacktestReport) -> fmt::Result {
    out.push_str("<section id=\"rules\">\n<h2>Candidate rules</h2>\n");
    let stats = &r.candidate.rule_stats;
    if stats.is_empty() {
        out.push_str("<p class=\"empty\">The candidate has no rules.</p>\n</section>\n");
        return Ok(());
    }
    part(
        out,
        "Fire rate and precision",
        "Fire rate: events a rule fired on (said more than allow) per event routed to it. \
         Precision: of its fires, the share on events labelled abusive.",
    )?;
    rules_chart(out, stats)?;
    part_end(out);
    rule_stats_table(out, stats)?;
    part(
        out,
        "Overlap",
        "Events on which both rules fired; the diagonal is each rule's own fires. Shade: the \
         share of the row rule's fires on which the column rule fired too.",
    )?;
    overlap_chart(out, stats, &r.candidate.overlaps)?;
    part_end(out);
    out.push_str("</section>\n");
    Ok(())
}

/// The rule builds and policies of both sides, and what was replayed.
fn builds_section(out: &mut String, r: &BacktestReport) -> fmt::Result {
    out.push_str("<section id=\"builds\">\n<h2>Rule builds and input</h2>\n<div class=\"figs\">\n");
    for (who, run) in runs(r) {
        write!(
            out,
            "<div class=\"part\"><h3>{}{}</h3>\n<p class=\"note\">Policy version <span class=\"mono\">{}</span>\
             </p>\n",
            swatch(who),
            who.label(),
            esc(&run.policy_version)
        )?;
        if run.rules.is_empty() {
            out.push_str("<p class=\"empty\">No rules.</p>\n</div>\n");
            continue;
        }
        out.push_str(
            "<table>\n<thead><tr><th class=\"l\">Rule</th><th class=\"l\">Version</th>\
             <th class=\"l\">sha256</th></tr></thead>\n<tbody>\n",
        );
        for b in &run.rules {
            writeln!(
                out,
                "<tr><td class=\"l\">{}</td><td class=\"l mono\">{}</td>\
                 <td class=\"l mono\" title=\"{}\">{}</td></tr>",
                esc(&b.name),
                esc(&b.version),
                esc(&b.sha256),
                esc(&clip(&b.sha256, 12))
            )?;
        }
        out.push_str("</tbody>\n</table>\n</div>\n");
    }
    out.push_str("</div>\n");
    input_table(out, r)?;
    out.push_str("</section>\n");
    Ok(())
}

/// The replayed history as the report describes it.
fn input_table(out: &mut String, r: &BacktestReport) -> fmt::Result {
    let input = &r.input;
    part(out, "Input", "")?;
    out.push_str("<table class=\"kv\">\n<tbody>\n");
    out.push_str("<tr><th class=\"l\">Sources</th><td class=\"l mono\">");
    if input.sources.is_empty() {
        out.push('–');
    }
    for (i, source) in input.sources.iter().enumerate() {
        if i > 0 {
            out.push_str("<br>");
        }
        write!(out, "{}", esc(source))?;
    }
    out.push_str("</td></tr>\n");
    let (first, last) = if input.events == 0 {
        ("–".to_owned(), "–".to_owned())
    } else {
        (iso_utc(input.first_ms), iso_utc(input.last_ms))
    };
    for (key, value) in [
        ("Digest (sha256)", input.sha256.clone()),
        ("Events", count(input.events)),
        ("Duplicate ids", count(input.duplicate_ids)),
        ("Refused as invalid", count(input.refused_events)),
        ("Entities", count(input.entities)),
        ("First event", first),
        ("Last event", last),
        ("Report format", count(u64::from(r.format))),
    ] {
        writeln!(
            out,
            "<tr><th class=\"l\">{}</th><td class=\"l mono\">{}</td></tr>",
            esc(key),
            esc(&value)
        )?;
    }
    out.push_str("</tbody>\n</table>\n");
    part_end(out);
    Ok(())
}

/// Opens a subsection: its heading and note, kept on one printed page with
/// what follows (a `div.part` is not split where it fits). `note_html` is
/// fixed markup written by this file, not report data. Closed by
/// [`part_end`].
fn part(out: &mut String, title: &str, note_html: &str) -> fmt::Result {
    writeln!(out, "<div class=\"part\">\n<h3>{}</h3>", esc(title))?;
    if !note_html.is_empty() {
        writeln!(out, "<p class=\"note\">{note_html}</p>")?;
    }
    Ok(())
}

/// Closes a [`part`].
fn part_end(out: &mut String) {
    out.push_str("</div>\n");
}

// ---------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------

/// Precision, recall and F1 with each of review, limit and block taken as
/// the positive severity.
fn severity_metrics_table(out: &mut String, r: &BacktestReport) -> fmt::Result {
    part(out, "Metrics by severity", "")?;
    out.push_str(
        "<table>\n<thead><tr><th class=\"l\" rowspan=\"2\">\
         Positive at</th><th class=\"l\" rowspan=\"2\">Rule set</th><th colspan=\"3\" \
         class=\"c\">Events</th><th colspan=\"3\" class=\"c\">Entities</th></tr>\n\
         <tr><th>Precision</th><th>Recall</th><th>F1</th><th>Precision</th><th>Recall</th>\
         <th>F1</th></tr></thead>\n<tbody>\n",
    );
    let mut rows = 0;
    for severity in SEVERITIES {
        for (who, run) in runs(r) {
            let Some(m) = run.by_severity.iter().find(|m| m.severity == severity) else {
                continue;
            };
            let mark = if severity == r.positive {
                " class=\"pos\""
            } else {
                ""
            };
            write!(
                out,
                "<tr{mark}><td class=\"l\">{}{}</td><td class=\"l\">{}{}</td>",
                severity_name(severity),
                if severity == r.positive {
                    " (positive)"
                } else {
                    ""
                },
                swatch(who),
                who.label()
            )?;
            metric_cells(out, &m.events)?;
            metric_cells(out, &m.entities)?;
            out.push_str("</tr>\n");
            rows += 1;
        }
    }
    if rows == 0 {
        out.push_str("<tr><td class=\"l\" colspan=\"8\">No metrics.</td></tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    part_end(out);
    Ok(())
}

/// Three cells: precision, recall, F1.
fn metric_cells(out: &mut String, m: &Metrics) -> fmt::Result {
    write!(
        out,
        "<td>{}</td><td>{}</td><td>{}</td>",
        pct(m.precision),
        pct(m.recall),
        pct(m.f1)
    )
}

/// How many of each class's events and entities each side acted on.
fn class_table(out: &mut String, r: &BacktestReport) -> fmt::Result {
    let base = r.baseline.as_ref().map(|b| b.classes.as_slice());
    let sides = if base.is_some() { 2 } else { 1 };
    part(
        out,
        "Outcomes by class",
        "For an abusive class a higher acted-on share is better; for a benign class every \
         action is a false positive.",
    )?;
    write!(
        out,
        "<table>\n<thead><tr><th class=\"l\" rowspan=\"2\">Class</th><th rowspan=\"2\">Events\
         </th><th colspan=\"{sides}\" class=\"c\">Events acted on</th><th rowspan=\"2\">\
         Entities</th><th colspan=\"{sides}\" class=\"c\">Entities acted on</th></tr>\n<tr>"
    )?;
    for _ in 0..2 {
        write!(out, "<th>{}Candidate</th>", swatch(Who::Candidate))?;
        if base.is_some() {
            write!(out, "<th>{}Baseline</th>", swatch(Who::Baseline))?;
        }
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let find = |list: &[ClassOutcome], class: &str| list.iter().position(|c| c.class == class);
    let mut rows: Vec<(&ClassOutcome, Option<&ClassOutcome>)> = r
        .candidate
        .classes
        .iter()
        .map(|c| (c, base.and_then(|b| find(b, &c.class).map(|i| &b[i]))))
        .collect();
    // A class only the baseline saw still gets a row, with its own counts.
    for b in base.unwrap_or(&[]) {
        if find(&r.candidate.classes, &b.class).is_none() {
            rows.push((b, Some(b)));
        }
    }
    if rows.is_empty() {
        out.push_str("<tr><td class=\"l\" colspan=\"7\">No classes.</td></tr>\n");
    }
    for (c, b) in rows {
        write!(
            out,
            "<tr><td class=\"l\">{} {}</td><td>{}</td>",
            esc(&c.class),
            class_tag(c.abusive),
            count(c.events)
        )?;
        acted_cells(out, c, b, base.is_some(), |o| (o.events_acted, o.events))?;
        write!(out, "<td>{}</td>", count(c.entities))?;
        acted_cells(out, c, b, base.is_some(), |o| {
            (o.entities_acted, o.entities)
        })?;
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    part_end(out);
    Ok(())
}

/// The candidate's acted-on cell and, with a baseline, the baseline's.
fn acted_cells(
    out: &mut String,
    cand: &ClassOutcome,
    base: Option<&ClassOutcome>,
    with_base: bool,
    pick: fn(&ClassOutcome) -> (u64, u64),
) -> fmt::Result {
    let cell = |o: Option<&ClassOutcome>| match o.map(pick) {
        Some((acted, of)) => format!("{} ({})", count(acted), pct(ratio(acted, of))),
        None => "–".to_owned(),
    };
    write!(out, "<td>{}</td>", cell(Some(cand)))?;
    if with_base {
        write!(out, "<td>{}</td>", cell(base))?;
    }
    Ok(())
}

/// Each candidate rule's counts.
fn rule_stats_table(out: &mut String, stats: &[RuleStats]) -> fmt::Result {
    out.push_str(
        "<table>\n<thead><tr><th class=\"l\">Rule</th><th>Routed</th><th>Fired</th>\
         <th>Fire rate</th><th>On abusive</th><th>Precision</th><th>Recall</th>\
         <th>Fired alone</th><th>Errors</th><th>Review</th><th>Limit</th><th>Block</th>\
         </tr></thead>\n<tbody>\n",
    );
    for s in stats {
        writeln!(
            out,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.name),
            count(s.events),
            count(s.fired),
            pct(s.fire_rate),
            count(s.fired_on_abusive),
            if s.fired == 0 {
                "–".to_owned()
            } else {
                pct(s.events_metrics.precision)
            },
            pct(s.events_metrics.recall),
            count(s.fired_alone),
            count(s.errors),
            count(s.verdicts[1]),
            count(s.verdicts[2]),
            count(s.verdicts[3]),
        )?;
    }
    out.push_str("</tbody>\n</table>\n");
    Ok(())
}

/// Events the two sides decided differently, with both decisions.
fn disagreements_table(out: &mut String, rows: &[Disagreement]) -> fmt::Result {
    if rows.is_empty() {
        out.push_str("<p class=\"empty\">No disagreements.</p>\n");
        return Ok(());
    }
    write!(
        out,
        "<table class=\"wide\">\n<thead><tr><th class=\"l\">Event</th><th class=\"l\">Kind</th>\
         <th class=\"l\">Actor</th><th class=\"l\">Time (UTC)</th><th class=\"l\">Class</th>\
         <th class=\"l\">{}Candidate</th><th class=\"l\">{}Baseline</th></tr></thead>\n<tbody>\n",
        swatch(Who::Candidate),
        swatch(Who::Baseline)
    )?;
    for d in rows {
        write!(
            out,
            "<tr><td class=\"l mono\"><div class=\"id\">{}</div></td><td class=\"l\">{}</td>\
             <td class=\"l mono\"><div class=\"id\">{}</div></td>\
             <td class=\"l nowrap\">{}</td><td class=\"l\">{} {}</td>",
            esc(&d.event_id),
            esc(&d.kind),
            esc(&d.actor),
            iso_utc(d.occurred_at_ms),
            esc(&d.class),
            class_tag(d.abusive)
        )?;
        side_cell(out, &d.candidate)?;
        side_cell(out, &d.baseline)?;
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    Ok(())
}

/// One side's decision: severity and score, then the rules that fired and
/// the actions, each on its own line.
fn side_cell(out: &mut String, s: &Side) -> fmt::Result {
    let list = |items: &[String]| {
        if items.is_empty() {
            "none".to_owned()
        } else {
            items
                .iter()
                .map(|i| esc(i).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    write!(
        out,
        "<td class=\"l\"><span class=\"nowrap\"><b>{}</b> · score {}</span>\
         <div class=\"small\">rules: {}</div>\
         <div class=\"small\">actions: {}</div></td>",
        severity_name(s.severity),
        score(s.score),
        list(&s.fired),
        list(&s.actions)
    )
}

// ---------------------------------------------------------------------------
// Charts
// ---------------------------------------------------------------------------

/// A 2x2 confusion matrix: decision (acted on or not) against label.
fn confusion_chart(out: &mut String, who: Who, unit: &str, c: &Confusion) -> fmt::Result {
    const LEFT: f64 = 104.0;
    const TOP: f64 = 44.0;
    const W: f64 = 116.0;
    const H: f64 = 68.0;
    let total = c.tp + c.fp + c.fn_ + c.tn;
    writeln!(
        out,
        "<figure><figcaption>{}{} · {}</figcaption>",
        swatch(who),
        who.label(),
        esc(unit)
    )?;
    svg_open(
        out,
        LEFT + 2.0 * W + 4.0,
        TOP + 2.0 * H + 4.0,
        &format!("{} confusion matrix of {unit}", who.label()),
    )?;
    text(out, LEFT + W, 14.0, MIDDLE_MUTED, "Label")?;
    text(out, LEFT - 10.0, 34.0, END_MUTED, "Decision")?;
    for (col, name) in ["Abusive", "Benign"].into_iter().enumerate() {
        text(out, LEFT + W * (col as f64 + 0.5), 34.0, MIDDLE_BOLD, name)?;
    }
    for (row, name) in ["Acted on", "Not acted on"].into_iter().enumerate() {
        text(
            out,
            LEFT - 10.0,
            TOP + H * (row as f64 + 0.5) + 4.0,
            END_BOLD,
            name,
        )?;
    }
    let cells = [
        (0.0, 0.0, "TP", "true positives", c.tp),
        (0.0, 1.0, "FP", "false positives", c.fp),
        (1.0, 0.0, "FN", "false negatives", c.fn_),
        (1.0, 1.0, "TN", "true negatives", c.tn),
    ];
    for (row, col, code, long, n) in cells {
        let (x, y) = (LEFT + W * col, TOP + H * row);
        let share = ratio(n, total);
        let tip = format!(
            "{long}: {} of {} {unit} ({})",
            count(n),
            count(total),
            pct(share)
        );
        rect(out, x, y, W - 2.0, H - 2.0, &shade_attrs(share), &tip)?;
        let ink = ink_class(share);
        text(
            out,
            x + 6.0,
            y + 14.0,
            &format!(" class=\"small {ink}\""),
            code,
        )?;
        let big = format!(" text-anchor=\"middle\" class=\"big {ink}\"");
        text(out, x + W / 2.0 - 1.0, y + 38.0, &big, &count(n))?;
        let small = format!(" text-anchor=\"middle\" class=\"{ink}\"");
        text(out, x + W / 2.0 - 1.0, y + 56.0, &small, &pct(share))?;
    }
    out.push_str("</svg></figure>\n");
    Ok(())
}

/// Decisions at each severity, as horizontal bars, one per side.
fn decisions_chart(out: &mut String, cand: &[u64; 4], base: Option<&[u64; 4]>) -> fmt::Result {
    const LEFT: f64 = 70.0;
    const PLOT: f64 = 460.0;
    const BAR: f64 = 16.0;
    let mut series = vec![(Who::Candidate, cand)];
    series.extend(base.map(|b| (Who::Baseline, b)));
    let top = if series.len() > 1 { 30.0 } else { 10.0 };
    let group = series.len() as f64 * (BAR + 3.0) + 12.0;
    let height = top + 4.0 * group + 34.0;
    let max = series.iter().flat_map(|(_, s)| s.iter()).max().copied();
    let scale = nice_ceiling(max.unwrap_or(0).max(5) as f64);
    svg_open(out, LEFT + PLOT + 130.0, height, "Decisions by severity")?;
    let bottom = top + 4.0 * group;
    x_ticks(out, LEFT, PLOT, top, bottom, scale, |v| {
        count(v.round() as u64)
    })?;
    text(
        out,
        LEFT + PLOT / 2.0,
        bottom + 30.0,
        MIDDLE_MUTED,
        "decisions",
    )?;
    if series.len() > 1 {
        legend(
            out,
            LEFT,
            12.0,
            &[
                Key::Bar(Who::Candidate, &fill(CANDIDATE_COLOUR)),
                Key::Bar(Who::Baseline, &fill(BASELINE_COLOUR)),
            ],
        )?;
    }
    for (i, severity) in SEVERITIES.into_iter().enumerate() {
        let y0 = top + group * i as f64 + 6.0;
        let name = severity_name(severity);
        text(out, LEFT - 8.0, y0 + group / 2.0 - 4.0, END_BOLD, name)?;
        for (k, (who, counts)) in series.iter().enumerate() {
            let n = counts[i];
            let total: u64 = counts.iter().sum();
            let y = y0 + k as f64 * (BAR + 3.0);
            let w = PLOT * unit(n as f64 / scale);
            let tip = format!(
                "{}: {} decisions at {name} ({} of its decisions)",
                who.label(),
                count(n),
                pct(ratio(n, total))
            );
            rect(out, LEFT, y, w, BAR, &fill(who.colour()), &tip)?;
            let label = format!("{} ({})", count(n), pct(ratio(n, total)));
            text(out, LEFT + w + 5.0, y + BAR - 4.0, "", &label)?;
        }
    }
    line(out, LEFT, top, LEFT, bottom, "axis")?;
    out.push_str("</svg>\n");
    Ok(())
}

/// Precision (y) against recall (x) as the score threshold moves, one line
/// per side, each point with its threshold in a tooltip.
fn pr_chart(out: &mut String, cand: &[CurvePoint], base: Option<&[CurvePoint]>) -> fmt::Result {
    const LEFT: f64 = 62.0;
    const TOP: f64 = 34.0;
    const SIZE: f64 = 300.0;
    svg_open(
        out,
        LEFT + SIZE + 24.0,
        TOP + SIZE + 50.0,
        "Precision against recall",
    )?;
    let bottom = TOP + SIZE;
    x_ticks(out, LEFT, SIZE, TOP, bottom, 1.0, |v| pct_tick(v, 0.2))?;
    let ticks: Vec<(f64, String)> = linear_ticks(1.0)
        .into_iter()
        .map(|t| (t, pct_tick(t, 0.2)))
        .collect();
    y_ticks(out, LEFT, SIZE, TOP, bottom, &ticks)?;
    text(
        out,
        LEFT + SIZE / 2.0,
        bottom + 34.0,
        MIDDLE_MUTED,
        "Recall",
    )?;
    write!(
        out,
        "<text transform=\"translate(16 {}) rotate(-90)\" text-anchor=\"middle\" \
         class=\"muted\">Precision</text>",
        Num(TOP + SIZE / 2.0)
    )?;
    let mut series = vec![(Who::Candidate, cand)];
    series.extend(base.map(|b| (Who::Baseline, b)));
    if series.len() > 1 {
        legend(
            out,
            LEFT,
            14.0,
            &[Key::Curve(Who::Candidate), Key::Curve(Who::Baseline)],
        )?;
    }
    let at = |p: &CurvePoint| {
        (
            LEFT + SIZE * unit(p.recall),
            bottom - SIZE * unit(p.precision),
        )
    };
    for (who, points) in series {
        if points.len() > 1 {
            let d: Vec<String> = points
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let (x, y) = at(p);
                    format!("{}{} {}", if i == 0 { 'M' } else { 'L' }, Num(x), Num(y))
                })
                .collect();
            write!(
                out,
                "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{}/>",
                d.join(" "),
                who.colour(),
                dash(who)
            )?;
        }
        for p in points {
            let (x, y) = at(p);
            let c = p.confusion;
            let tip = format!(
                "{} · threshold {} · precision {} · recall {} · {} of {} flagged events abusive",
                who.label(),
                score(p.threshold),
                pct(p.precision),
                pct(p.recall),
                count(c.tp),
                count(c.tp + c.fp)
            );
            point(out, who, x, y, &tip)?;
        }
    }
    out.push_str("</svg>\n");
    Ok(())
}

/// One class's score histogram: the candidate's counts as bars (hatched for
/// an abusive class), the baseline's as an outline, on a log scale.
fn histogram_chart(
    out: &mut String,
    index: usize,
    cand: Option<&ScoreDistribution>,
    base: Option<&ScoreDistribution>,
) -> fmt::Result {
    const LEFT: f64 = 50.0;
    const PW: f64 = 270.0;
    const PH: f64 = 110.0;
    let Some(any) = cand.or(base) else {
        return Ok(());
    };
    let cbins = cand.map_or(&[][..], |d| d.bins.as_slice());
    let bbins = base.map_or(&[][..], |d| d.bins.as_slice());
    let events: u64 = cbins.iter().sum();
    writeln!(
        out,
        "<figure><figcaption>{} {} <span class=\"muted\">· {} events</span></figcaption>",
        esc(&any.class),
        class_tag(any.abusive),
        count(if cand.is_some() {
            events
        } else {
            bbins.iter().sum()
        })
    )?;
    let top = if base.is_some() { 28.0 } else { 10.0 };
    let bottom = top + PH;
    svg_open(
        out,
        LEFT + PW + 14.0,
        bottom + 38.0,
        &format!("Score distribution of class {}", any.class),
    )?;
    let hatch = format!("hatch-{index}");
    if any.abusive {
        write!(
            out,
            "<defs><pattern id=\"{hatch}\" width=\"5\" height=\"5\" patternUnits=\"userSpaceOnUse\" \
             patternTransform=\"rotate(45)\"><rect width=\"5\" height=\"5\" fill=\"#c6dbef\"/>\
             <line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"5\" stroke=\"{CANDIDATE_COLOUR}\" \
             stroke-width=\"3\"/></pattern></defs>"
        )?;
    }
    let max = cbins.iter().chain(bbins).copied().max().unwrap_or(0);
    // log(1 + n) keeps a bin of one event visible next to a bin of thousands
    // and puts an empty bin at zero height.
    let y = |n: u64| bottom - PH * log_share(n, max);
    let ticks: Vec<(f64, String)> = log_ticks(max)
        .into_iter()
        .map(|n| (log_share(n, max), count(n)))
        .collect();
    y_ticks(out, LEFT, PW, top, bottom, &ticks)?;
    x_ticks(out, LEFT, PW, top, bottom, 1.0, |v| format!("{v:.1}"))?;
    text(out, LEFT + PW / 2.0, bottom + 32.0, MIDDLE_MUTED, "score")?;
    let fill_attrs = if any.abusive {
        format!(" fill=\"url(#{hatch})\" stroke=\"{CANDIDATE_COLOUR}\" stroke-width=\"0.8\"")
    } else {
        fill(CANDIDATE_COLOUR)
    };
    let width = |bins: &[u64]| PW / bins.len().max(1) as f64;
    for (i, &n) in cbins.iter().enumerate().filter(|(_, n)| **n > 0) {
        let bw = width(cbins);
        let tip = format!("Candidate · score {} events", bin_label(i, cbins.len(), n));
        rect(
            out,
            LEFT + bw * i as f64 + 0.5,
            y(n),
            bw - 1.0,
            bottom - y(n),
            &fill_attrs,
            &tip,
        )?;
    }
    if base.is_some() && !bbins.is_empty() {
        let bw = width(bbins);
        let mut d = format!("M{} {}", Num(LEFT), Num(bottom));
        for (i, &n) in bbins.iter().enumerate() {
            write!(d, " V{} H{}", Num(y(n)), Num(LEFT + bw * (i + 1) as f64))?;
        }
        write!(d, " V{}", Num(bottom))?;
        write!(
            out,
            "<path d=\"{d}\" fill=\"none\" stroke=\"{BASELINE_COLOUR}\" stroke-width=\"2\">\
             <title>Baseline</title></path>"
        )?;
        for (i, &n) in bbins.iter().enumerate().filter(|(_, n)| **n > 0) {
            // A wide invisible target on each bin top, so the baseline's
            // counts have tooltips too.
            let x = LEFT + bw * i as f64;
            let tip = format!("Baseline · score {} events", bin_label(i, bbins.len(), n));
            rect(out, x, y(n) - 3.0, bw, 6.0, " fill=\"transparent\"", &tip)?;
        }
        legend(
            out,
            LEFT,
            12.0,
            &[
                Key::Bar(Who::Candidate, &fill_attrs),
                Key::Outline(Who::Baseline),
            ],
        )?;
    }
    if max == 0 {
        text(
            out,
            LEFT + PW / 2.0,
            top + PH / 2.0,
            MIDDLE_MUTED,
            "no events",
        )?;
    }
    out.push_str("</svg></figure>\n");
    Ok(())
}

/// Each candidate rule's fire rate and precision, as two panels of
/// horizontal bars sharing the rule names.
fn rules_chart(out: &mut String, stats: &[RuleStats]) -> fmt::Result {
    const LABEL: f64 = 190.0;
    const PANEL: f64 = 250.0;
    const BARS: f64 = 190.0;
    const GAP: f64 = 50.0;
    const TOP: f64 = 30.0;
    const ROW: f64 = 24.0;
    let bottom = TOP + ROW * stats.len() as f64;
    let right = LABEL + PANEL + GAP;
    svg_open(
        out,
        right + PANEL,
        bottom + 40.0,
        "Fire rate and precision of each candidate rule",
    )?;
    let max_rate = stats
        .iter()
        .map(|s| finite(s.fire_rate))
        .fold(0.0, f64::max);
    let scale = nice_ceiling(max_rate).min(1.0);
    text(out, LABEL, 16.0, " font-weight=\"600\"", "Fire rate")?;
    text(
        out,
        right,
        16.0,
        " font-weight=\"600\"",
        "Precision of its fires",
    )?;
    x_ticks(out, LABEL, BARS, TOP, bottom, scale, |v| {
        pct_tick(v, scale / 5.0)
    })?;
    x_ticks(out, right, BARS, TOP, bottom, 1.0, |v| pct_tick(v, 0.2))?;
    for (i, s) in stats.iter().enumerate() {
        let y = TOP + ROW * i as f64 + 4.0;
        write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}<title>{}</title></text>",
            Num(LABEL - 10.0),
            Num(y + 12.0),
            esc(&clip(&s.name, 28)),
            esc(&s.name)
        )?;
        let w = BARS * unit(finite(s.fire_rate) / scale);
        let tip = format!(
            "{}: fired on {} of {} routed events ({}), {} of them abusive",
            s.name,
            count(s.fired),
            count(s.events),
            pct(s.fire_rate),
            count(s.fired_on_abusive)
        );
        rect(out, LABEL, y, w, ROW - 8.0, &fill(CANDIDATE_COLOUR), &tip)?;
        text(out, LABEL + w + 5.0, y + 12.0, "", &pct(s.fire_rate))?;
        if s.fired == 0 {
            text(out, right + 4.0, y + 12.0, " class=\"muted\"", "no fires")?;
            continue;
        }
        let p = s.events_metrics.precision;
        let w = BARS * unit(p);
        let tip = format!(
            "{}: {} of its {} fires on abusive events ({})",
            s.name,
            count(s.events_metrics.confusion.tp),
            count(s.fired),
            pct(p)
        );
        rect(out, right, y, w, ROW - 8.0, &fill(CANDIDATE_COLOUR), &tip)?;
        text(out, right + w + 5.0, y + 12.0, "", &pct(p))?;
    }
    line(out, LABEL, TOP, LABEL, bottom, "axis")?;
    line(out, right, TOP, right, bottom, "axis")?;
    out.push_str("</svg>\n");
    Ok(())
}

/// Rules × rules: events on which both fired.
fn overlap_chart(out: &mut String, stats: &[RuleStats], overlaps: &[Vec<u64>]) -> fmt::Result {
    const LEFT: f64 = 200.0;
    const CW: f64 = 64.0;
    const CH: f64 = 30.0;
    const CLIP: usize = 22;
    let n = stats.len();
    let at = |i: usize, j: usize| {
        overlaps
            .get(i)
            .and_then(|row| row.get(j))
            .copied()
            .unwrap_or(0)
    };
    // Column names are written at 40 degrees; leave room above and to the
    // right for the longest.
    let longest = stats
        .iter()
        .map(|s| s.name.chars().count().min(CLIP))
        .max()
        .unwrap_or(0) as f64
        * 6.4;
    let top = 14.0 + longest * 0.65;
    let width = LEFT + CW * n as f64 + (longest * 0.77 - CW / 2.0).max(8.0);
    svg_open(out, width, top + CH * n as f64 + 6.0, "Rule overlap")?;
    for (j, s) in stats.iter().enumerate() {
        let (x, y) = (LEFT + CW * (j as f64 + 0.5), top - 6.0);
        write!(
            out,
            "<text transform=\"translate({} {}) rotate(-40)\">{}<title>{}</title></text>",
            Num(x),
            Num(y),
            esc(&clip(&s.name, CLIP)),
            esc(&s.name)
        )?;
    }
    for (i, row_rule) in stats.iter().enumerate() {
        let y = top + CH * i as f64;
        write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}<title>{}</title></text>",
            Num(LEFT - 8.0),
            Num(y + CH / 2.0 + 4.0),
            esc(&clip(&row_rule.name, 30)),
            esc(&row_rule.name)
        )?;
        let own = at(i, i);
        for (j, col_rule) in stats.iter().enumerate() {
            let x = LEFT + CW * j as f64;
            let both = at(i, j);
            let share = ratio(both, own);
            let tip = if i == j {
                format!("{} fired on {} events", row_rule.name, count(own))
            } else {
                format!(
                    "{} and {} both fired on {} events ({} of {}'s fires)",
                    row_rule.name,
                    col_rule.name,
                    count(both),
                    pct(share),
                    row_rule.name
                )
            };
            let mut attrs = shade_attrs(share);
            if i == j {
                attrs.push_str(" stroke=\"#1b1f24\" stroke-width=\"1.5\"");
            }
            rect(out, x, y, CW - 2.0, CH - 2.0, &attrs, &tip)?;
            let label = format!(" text-anchor=\"middle\" class=\"{}\"", ink_class(share));
            text(
                out,
                x + CW / 2.0 - 1.0,
                y + CH / 2.0 + 3.0,
                &label,
                &count(both),
            )?;
        }
    }
    out.push_str("</svg>\n");
    Ok(())
}

/// The candidate's severity against the baseline's, event by event.
fn severity_matrix_chart(out: &mut String, m: &[[u64; 4]; 4]) -> fmt::Result {
    const LEFT: f64 = 130.0;
    const TOP: f64 = 52.0;
    const CW: f64 = 96.0;
    const CH: f64 = 48.0;
    let total: u64 = m.iter().flatten().sum();
    let max = m.iter().flatten().copied().max().unwrap_or(0);
    svg_open(
        out,
        LEFT + 4.0 * CW + 6.0,
        TOP + 4.0 * CH + 6.0,
        "Severity of the candidate against the baseline",
    )?;
    text(out, LEFT + 2.0 * CW, 16.0, MIDDLE_MUTED, "Baseline →")?;
    text(out, LEFT - 12.0, 38.0, END_MUTED, "Candidate ↓")?;
    for (j, severity) in SEVERITIES.into_iter().enumerate() {
        let x = LEFT + CW * (j as f64 + 0.5);
        text(out, x, 38.0, MIDDLE_BOLD, severity_name(severity))?;
    }
    for (i, row) in m.iter().enumerate() {
        let y = TOP + CH * i as f64;
        let name = severity_name(SEVERITIES[i]);
        text(out, LEFT - 12.0, y + CH / 2.0 + 4.0, END_BOLD, name)?;
        for (j, &n) in row.iter().enumerate() {
            let x = LEFT + CW * j as f64;
            let t = log_share(n, max);
            let mut attrs = shade_attrs(t);
            if i == j {
                attrs.push_str(" stroke=\"#1b1f24\" stroke-width=\"1.5\"");
            }
            let tip = format!(
                "Candidate {name}, baseline {}: {} events ({})",
                severity_name(SEVERITIES[j]),
                count(n),
                pct(ratio(n, total))
            );
            rect(out, x, y, CW - 2.0, CH - 2.0, &attrs, &tip)?;
            let ink = ink_class(t);
            let big = format!(" text-anchor=\"middle\" class=\"strong {ink}\"");
            text(out, x + CW / 2.0 - 1.0, y + 20.0, &big, &count(n))?;
            let small = format!(" text-anchor=\"middle\" class=\"small {ink}\"");
            text(
                out,
                x + CW / 2.0 - 1.0,
                y + 36.0,
                &small,
                &pct(ratio(n, total)),
            )?;
        }
    }
    out.push_str("</svg>\n");
    Ok(())
}

// ---------------------------------------------------------------------------
// SVG helpers
// ---------------------------------------------------------------------------

/// `text-anchor` and class attributes used by several charts.
const MIDDLE_MUTED: &str = " text-anchor=\"middle\" class=\"muted\"";
/// See [`MIDDLE_MUTED`].
const END_MUTED: &str = " text-anchor=\"end\" class=\"muted\"";
/// See [`MIDDLE_MUTED`].
const MIDDLE_BOLD: &str = " text-anchor=\"middle\" font-weight=\"600\"";
/// See [`MIDDLE_MUTED`].
const END_BOLD: &str = " text-anchor=\"end\" font-weight=\"600\"";

/// How much larger than its drawing units a chart shows: charts are laid
/// out in units where text is 11 high, and shown a little larger so that it
/// reads at arm's length on a laptop; a narrow window still shrinks them.
const ZOOM: f64 = 1.15;

/// Opens a chart: every chart is an `svg.chart`, which the self-check counts.
fn svg_open(out: &mut String, width: f64, height: f64, label: &str) -> fmt::Result {
    write!(
        out,
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" \
         width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"{}\">",
        Num(width),
        Num(height),
        Num(width * ZOOM),
        Num(height * ZOOM),
        esc(label),
    )
}

/// A `<text>` at (x, y); `attrs` are fixed attributes written by this file,
/// `content` is escaped.
fn text(out: &mut String, x: f64, y: f64, attrs: &str, content: &str) -> fmt::Result {
    write!(
        out,
        "<text x=\"{}\" y=\"{}\"{attrs}>{}</text>",
        Num(x),
        Num(y),
        esc(content)
    )
}

/// A `<rect>` with a tooltip; `attrs` set its fill, `tip` is escaped.
fn rect(out: &mut String, x: f64, y: f64, w: f64, h: f64, attrs: &str, tip: &str) -> fmt::Result {
    write!(
        out,
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"{attrs}><title>{}</title></rect>",
        Num(x),
        Num(y),
        Num(w.max(0.0)),
        Num(h.max(0.0)),
        esc(tip)
    )
}

/// A `<line>` of the given CSS class (`axis` or `grid`).
fn line(out: &mut String, x1: f64, y1: f64, x2: f64, y2: f64, class: &str) -> fmt::Result {
    write!(
        out,
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" class=\"{class}\"/>",
        Num(x1),
        Num(y1),
        Num(x2),
        Num(y2)
    )
}

/// One point of a curve: a circle for the candidate and a square for the
/// baseline, so that the two differ in shape as well as colour.
fn point(out: &mut String, who: Who, x: f64, y: f64, tip: &str) -> fmt::Result {
    match who {
        Who::Candidate => write!(
            out,
            "<circle cx=\"{}\" cy=\"{}\" r=\"3.5\" fill=\"{}\" stroke=\"#fff\" stroke-width=\"1\">\
             <title>{}</title></circle>",
            Num(x),
            Num(y),
            who.colour(),
            esc(tip)
        ),
        Who::Baseline => rect(
            out,
            x - 3.5,
            y - 3.5,
            7.0,
            7.0,
            &format!("{} stroke=\"#fff\" stroke-width=\"1\"", fill(who.colour())),
            tip,
        ),
    }
}

/// A bottom axis from 0 to `max` over `width`, with gridlines up to `top`
/// and five intervals labelled by `label`.
fn x_ticks(
    out: &mut String,
    left: f64,
    width: f64,
    top: f64,
    bottom: f64,
    max: f64,
    label: impl Fn(f64) -> String,
) -> fmt::Result {
    for t in linear_ticks(1.0) {
        let x = left + width * t;
        line(out, x, top, x, bottom, "grid")?;
        text(
            out,
            x,
            bottom + 15.0,
            " text-anchor=\"middle\" class=\"muted\"",
            &label(t * max),
        )?;
    }
    line(out, left, bottom, left + width, bottom, "axis")
}

/// A left axis with gridlines across `width` at `ticks`: each a height as a
/// share of the plot from its bottom, and its label.
fn y_ticks(
    out: &mut String,
    left: f64,
    width: f64,
    top: f64,
    bottom: f64,
    ticks: &[(f64, String)],
) -> fmt::Result {
    let height = bottom - top;
    for (t, label) in ticks {
        let y = bottom - height * unit(*t);
        line(out, left, y, left + width, y, "grid")?;
        text(out, left - 6.0, y + 4.0, END_MUTED, label)?;
    }
    line(out, left, top, left, bottom, "axis")
}

/// A key to one series, drawn as the series is.
#[derive(Clone, Copy)]
enum Key<'a> {
    /// A bar with these fill attributes.
    Bar(Who, &'a str),
    /// A line with points, as the curves are drawn.
    Curve(Who),
    /// A bare line, as the baseline's histograms are drawn.
    Outline(Who),
}

/// Writes the keys of a two-series chart in a row from (x, y).
fn legend(out: &mut String, x: f64, y: f64, keys: &[Key<'_>]) -> fmt::Result {
    let mut x = x;
    for key in keys {
        let who = match *key {
            Key::Bar(who, attrs) => {
                rect(out, x, y - 9.0, 12.0, 12.0, attrs, who.label())?;
                who
            }
            Key::Curve(who) | Key::Outline(who) => {
                write!(
                    out,
                    "<path d=\"M{} {y}h22\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{}/>",
                    Num(x - 5.0),
                    who.colour(),
                    if matches!(key, Key::Curve(_)) {
                        dash(who)
                    } else {
                        ""
                    },
                    y = Num(y - 3.0)
                )?;
                if matches!(key, Key::Curve(_)) {
                    point(out, who, x + 6.0, y - 3.0, who.label())?;
                }
                who
            }
        };
        text(out, x + 22.0, y + 1.0, "", who.label())?;
        x += 110.0;
    }
    Ok(())
}

/// The baseline's lines are dashed, so they stay apart from the
/// candidate's in greyscale print.
fn dash(who: Who) -> &'static str {
    match who {
        Who::Candidate => "",
        Who::Baseline => " stroke-dasharray=\"6 3\"",
    }
}

/// A solid fill attribute.
fn fill(colour: &str) -> String {
    format!(" fill=\"{colour}\"")
}

/// Fill and outline of a heatmap cell for a share `t` in 0..1: a single-hue
/// purple ramp (ColorBrewer Purples), light to dark, which reads in any
/// colour vision and in print, and is neither side's colour.
fn shade_attrs(t: f64) -> String {
    let t = unit(t);
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    format!(
        " fill=\"#{:02x}{:02x}{:02x}\" stroke=\"#d0d7de\"",
        mix(250.0, 84.0),
        mix(249.0, 39.0),
        mix(252.0, 143.0)
    )
}

/// Light text on dark cells, dark text on light ones.
fn ink_class(t: f64) -> &'static str {
    if unit(t) > 0.55 {
        "on-dark"
    } else {
        "on-light"
    }
}

// ---------------------------------------------------------------------------
// Scales
// ---------------------------------------------------------------------------

/// Tick positions at 0, 0.2, ..., 1 of an axis.
fn linear_ticks(max: f64) -> Vec<f64> {
    (0..=5).map(|i| max * f64::from(i) / 5.0).collect()
}

/// The smallest of 1, 2 and 5 × 10^k at or above `max`, so that five
/// intervals fall on round numbers; 1 for nothing to show.
fn nice_ceiling(max: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&v| v >= max * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude)
}

/// Where `n` falls on a log(1 + n) scale that puts `max` at 1.
fn log_share(n: u64, max: u64) -> f64 {
    if max == 0 {
        0.0
    } else {
        unit((n as f64).ln_1p() / (max as f64).ln_1p())
    }
}

/// Counts worth a tick on a log scale up to `max`: 0, then powers of ten,
/// every other one when there are many. 1 sits too close to 0 to label
/// once there is a 10 to show.
fn log_ticks(max: u64) -> Vec<u64> {
    let first: u64 = if max >= 10 { 10 } else { 1 };
    let powers: Vec<u64> = std::iter::successors(Some(first), |p| p.checked_mul(10))
        .take_while(|&p| p <= max)
        .collect();
    let step = if powers.len() > 5 { 2 } else { 1 };
    std::iter::once(0)
        .chain(powers.into_iter().step_by(step))
        .collect()
}

/// A ratio clamped to 0..1, and 0 for anything not finite: every coordinate
/// computed from report data goes through here.
fn unit(x: f64) -> f64 {
    if x.is_finite() {
        x.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// A report float as a number safe to compute with: 0 when not finite.
fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

// ---------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------

/// Which rule set a figure belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Who {
    /// The rule set under test.
    Candidate,
    /// The rule set it is compared with.
    Baseline,
}

impl Who {
    /// Its name on the page.
    fn label(self) -> &'static str {
        match self {
            Who::Candidate => "Candidate",
            Who::Baseline => "Baseline",
        }
    }

    /// Its colour in every chart.
    fn colour(self) -> &'static str {
        match self {
            Who::Candidate => CANDIDATE_COLOUR,
            Who::Baseline => BASELINE_COLOUR,
        }
    }
}

/// The candidate's run, then the baseline's when there is one.
fn runs(r: &BacktestReport) -> impl Iterator<Item = (Who, &RunReport)> {
    std::iter::once((Who::Candidate, &r.candidate))
        .chain(r.baseline.iter().map(|b| (Who::Baseline, b)))
}

/// A small colour square naming a side in HTML text.
fn swatch(who: Who) -> String {
    format!(
        "<span class=\"swatch\" style=\"background:{}\"></span>",
        who.colour()
    )
}

/// A class's label as a tag that reads without colour.
fn class_tag(abusive: bool) -> &'static str {
    if abusive {
        "<span class=\"tag abusive\">abusive</span>"
    } else {
        "<span class=\"tag benign\">benign</span>"
    }
}

/// A severity as the report spells it.
pub(super) fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Allow => "allow",
        Severity::Review => "review",
        Severity::Limit => "limit",
        Severity::Block => "block",
    }
}

/// Text made safe for HTML element content and quoted attribute values.
struct Esc<'a>(&'a str);

impl Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

/// Escapes `s` for HTML as it is written.
fn esc(s: &str) -> Esc<'_> {
    Esc(s)
}

/// An SVG coordinate: one decimal at most, and 0 for a non-finite value.
struct Num(f64);

impl Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = finite(self.0);
        let tenths = (x * 10.0).round();
        if tenths % 10.0 == 0.0 {
            write!(f, "{}", (tenths / 10.0) as i64)
        } else {
            write!(f, "{:.1}", tenths / 10.0)
        }
    }
}

/// A count with thousands separators: `1,234,567`.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut s = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            s.push(',');
        }
        s.push(c);
    }
    s
}

/// A ratio as a percentage with one decimal; a dash when not finite.
fn pct(r: f64) -> String {
    if !r.is_finite() {
        return "–".to_owned();
    }
    // `+ 0.0` turns a negative zero into zero, so no "-0.0%".
    format!("{:.1}%", r * 100.0 + 0.0)
}

/// A change of a ratio in percentage points, signed: `+1.2 pp`.
fn delta_pp(d: f64) -> String {
    if !d.is_finite() {
        return "–".to_owned();
    }
    let tenths = (d * 1000.0).round();
    if tenths == 0.0 {
        "0.0 pp".to_owned()
    } else if tenths > 0.0 {
        format!("+{:.1} pp", tenths / 10.0)
    } else {
        format!("−{:.1} pp", -tenths / 10.0)
    }
}

/// A percentage tick label with as many decimals as the tick step needs.
fn pct_tick(v: f64, step: f64) -> String {
    let step = step * 100.0;
    let decimals = if step >= 1.0 {
        0
    } else if step >= 0.1 {
        1
    } else {
        2
    };
    format!("{:.*}%", decimals, finite(v) * 100.0 + 0.0)
}

/// A score with three decimals; a dash when not finite.
fn score(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "–".to_owned()
    }
}

/// The score range of bin `i` of `bins` and its count, for a tooltip.
fn bin_label(i: usize, bins: usize, n: u64) -> String {
    let bins = bins.max(1) as f64;
    format!(
        "{:.2}–{:.2}: {}",
        i as f64 / bins,
        (i + 1) as f64 / bins,
        count(n)
    )
}

/// At most `n` characters of `s`, with an ellipsis when cut.
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut cut: String = s.chars().take(n.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// Milliseconds since the epoch as ISO-8601 UTC, to the millisecond.
fn iso_utc(ms: i64) -> String {
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, day_secs) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        day_secs / 3600,
        day_secs % 3600 / 60,
        day_secs % 60
    )
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`): eras of 400 years starting on 1 March, so
/// the leap day falls at the end of a year.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

// ---------------------------------------------------------------------------
// Fixed text
// ---------------------------------------------------------------------------

/// The page's styles. SVG text sizes and fills are set by class, not by
/// attribute, because a stylesheet rule would override an attribute.
const STYLE: &str = r#":root { --ink: #1b1f24; --muted: #57606a; --line: #d0d7de; --panel: #f6f8fa; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; background: #fff; color: var(--ink); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif; font-variant-numeric: tabular-nums; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 22px 0 6px; }
p { margin: 4px 0 10px; }
.note { color: var(--muted); max-width: 90ch; }
.empty { color: var(--muted); font-style: italic; }
.muted { color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; margin: 14px 0 16px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; background: var(--panel); }
.card .k { font-size: 12px; color: var(--muted); }
.card .v { font-size: 22px; font-weight: 600; }
.card .s { font-size: 12px; color: var(--muted); }
table { border-collapse: collapse; margin: 6px 0 14px; font-size: 13px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: right; vertical-align: top; }
thead th { background: var(--panel); font-weight: 600; }
th.l, td.l { text-align: left; }
th.c { text-align: center; }
table.headline { font-size: 15px; }
table.headline td { padding: 6px 14px; }
tr.delta td { font-weight: 600; border-top: 2px solid var(--line); }
tr.pos td { font-weight: 600; }
table.kv th { background: none; }
table.wide { width: 100%; }
/* Ids break anywhere rather than widen the table, but never below a
   typical id's width: a cell's own min-width is ignored by table layout. */
div.id { min-width: 13ch; overflow-wrap: anywhere; }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: 12px; overflow-wrap: anywhere; }
.nowrap { white-space: nowrap; }
.small { font-size: 12px; color: var(--muted); overflow-wrap: anywhere; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
.tag { display: inline-block; font-size: 11px; line-height: 1.3; padding: 0 5px; border-radius: 3px; border: 1px solid; vertical-align: 1px; }
.tag.abusive { color: #8c1c13; border-color: #8c1c13; font-weight: 700; text-transform: uppercase; letter-spacing: 0.03em; }
.tag.benign { color: var(--muted); border-color: var(--line); border-style: dashed; }
.figs { display: flex; flex-wrap: wrap; gap: 16px 28px; align-items: flex-start; }
figure { margin: 0; }
figcaption { font-size: 13px; font-weight: 600; margin: 0 0 4px; }
svg.chart { display: block; max-width: 100%; height: auto; font-size: 11px; fill: var(--ink); }
svg.chart .muted { fill: var(--muted); }
svg.chart .small { font-size: 10px; }
svg.chart .big { font-size: 17px; font-weight: 600; }
svg.chart .strong { font-size: 13px; font-weight: 600; }
svg.chart .on-dark { fill: #fff; }
svg.chart .on-light { fill: var(--ink); }
svg.chart .axis { stroke: var(--muted); stroke-width: 1; }
svg.chart .grid { stroke: #e6e9ec; stroke-width: 1; }
@media print {
  body { font-size: 12px; }
  main { max-width: none; padding: 0; }
  h2, h3, .note { break-after: avoid; }
  .part, figure, table, .cards, svg.chart { break-inside: avoid; }
}
"#;

/// A render self-check that changes nothing visible: it counts the charts
/// that laid out with a size and hold a drawn mark, and records
/// `<drawn>/<total>` on the body for a headless browser to read.
const SELF_CHECK: &str = r#"<script>
addEventListener("load", function () {
  var charts = document.querySelectorAll("svg.chart"), drawn = 0;
  for (var i = 0; i < charts.length; i++) {
    var box = charts[i].getBBox();
    if (box.width > 0 && box.height > 0 && charts[i].querySelector("rect, path, circle, line")) drawn++;
  }
  document.body.dataset.chartsRendered = drawn + "/" + charts.length;
});
</script>
"#;

#[cfg(test)]
mod tests {
    use super::super::report::{
        ClassCount, EntitySplit, REPORT_FORMAT, RuleBuild, SCORE_BINS, SeverityMetrics,
    };
    use super::*;

    const HOSTILE_ID: &str = "<script>alert(1)</script>&\"x\"";

    fn confusion(tp: u64, fp: u64, fn_: u64, tn: u64) -> Confusion {
        Confusion { tp, fp, fn_, tn }
    }

    fn rule_stats(name: &str, fired: u64, tp: u64) -> RuleStats {
        RuleStats {
            name: name.to_owned(),
            events: 1000,
            fired,
            fire_rate: ratio(fired, 1000),
            fired_on_abusive: tp,
            events_metrics: confusion(tp, fired - tp, 100 - tp, 900 - (fired - tp)).metrics(),
            errors: 0,
            verdicts: [1000 - fired, fired, 0, 0],
            fired_alone: fired / 2,
        }
    }

    fn build(name: &str) -> RuleBuild {
        RuleBuild {
            name: name.to_owned(),
            version: "1.0.0".to_owned(),
            sha256: "ab".repeat(32),
        }
    }

    fn run(events: Confusion, rules: &[&str]) -> RunReport {
        let distribution = |class: &str, abusive: bool| ScoreDistribution {
            class: class.to_owned(),
            abusive,
            bins: (0..SCORE_BINS as u64)
                .map(|i| if abusive { i } else { 20 - i })
                .collect(),
        };
        let outcome = |class: &str, abusive: bool, acted: u64| ClassOutcome {
            class: class.to_owned(),
            abusive,
            events: 500,
            events_acted: acted,
            entities: 50,
            entities_acted: acted / 10,
        };
        RunReport {
            rules: rules.iter().map(|n| build(n)).collect(),
            policy_version: "policy-7".to_owned(),
            severities: [900, 60, 30, 10],
            events: events.metrics(),
            entities: confusion(8, 2, 2, 88).metrics(),
            by_severity: [Severity::Review, Severity::Limit, Severity::Block]
                .into_iter()
                .map(|severity| SeverityMetrics {
                    severity,
                    events: events.metrics(),
                    entities: confusion(8, 2, 2, 88).metrics(),
                })
                .collect(),
            pr_curve: (0..5)
                .map(|i| CurvePoint {
                    threshold: f64::from(i) / 4.0,
                    confusion: events,
                    precision: 0.5 + f64::from(i) / 10.0,
                    recall: 1.0 - f64::from(i) / 5.0,
                })
                .collect(),
            score_distributions: vec![
                distribution("benign", false),
                distribution("phishing", true),
                distribution("spam", true),
            ],
            classes: vec![
                outcome("benign", false, 10),
                outcome("phishing", true, 40),
                outcome("spam", true, 30),
            ],
            rule_stats: rules
                .iter()
                .enumerate()
                .map(|(i, n)| rule_stats(n, 40 + 10 * i as u64, 30))
                .collect(),
            overlaps: vec![vec![40, 12], vec![12, 50]],
        }
    }

    fn side(severity: Severity, score: f64) -> Side {
        Side {
            severity,
            score,
            fired: vec!["mass-forwarding".to_owned()],
            actions: vec!["block account:1".to_owned()],
        }
    }

    /// Two rules, a baseline, and a disagreement on a hostile event id.
    fn full_report() -> BacktestReport {
        let rules = ["mass-forwarding", "new-account-burst"];
        BacktestReport {
            format: REPORT_FORMAT,
            input: InputSummary {
                sources: vec!["day-1.jsonl".to_owned(), "<b>evil</b>.jsonl".to_owned()],
                sha256: "cd".repeat(32),
                events: 12_345,
                duplicate_ids: 2,
                refused_events: 3,
                abusive_events: 100,
                entities: 1_000,
                abusive_entities: 10,
                first_ms: 1_700_000_000_000,
                last_ms: 1_700_086_400_000,
                classes: vec![ClassCount {
                    class: "spam".to_owned(),
                    abusive: true,
                    events: 100,
                }],
            },
            positive: Severity::Limit,
            // Precision 40 / 50 = 80.0%.
            candidate: run(confusion(40, 10, 60, 890), &rules),
            // Precision 30 / 60 = 50.0%.
            baseline: Some(run(confusion(30, 30, 70, 870), &rules[..1])),
            comparison: Some(Comparison {
                events_differ: 37,
                severity_matrix: [[880, 5, 0, 0], [3, 50, 2, 0], [0, 1, 28, 1], [0, 0, 0, 30]],
                candidate_only: EntitySplit {
                    abusive: 3,
                    benign: 1,
                },
                baseline_only: EntitySplit {
                    abusive: 0,
                    benign: 2,
                },
                top_disagreements: vec![Disagreement {
                    event_id: HOSTILE_ID.to_owned(),
                    kind: "message_sent".to_owned(),
                    actor: "account:42".to_owned(),
                    occurred_at_ms: 1_700_000_000_123,
                    class: "spam".to_owned(),
                    abusive: true,
                    candidate: side(Severity::Block, 0.93),
                    baseline: side(Severity::Allow, 0.1),
                }],
            }),
        }
    }

    /// No baseline, no events, no rules: everything empty.
    fn empty_report() -> BacktestReport {
        let empty = Confusion::default().metrics();
        BacktestReport {
            format: REPORT_FORMAT,
            input: InputSummary {
                sources: vec![],
                sha256: String::new(),
                events: 0,
                duplicate_ids: 0,
                refused_events: 0,
                abusive_events: 0,
                entities: 0,
                abusive_entities: 0,
                first_ms: 0,
                last_ms: 0,
                classes: vec![],
            },
            positive: Severity::Review,
            candidate: RunReport {
                rules: vec![],
                policy_version: String::new(),
                severities: [0; 4],
                events: empty,
                entities: empty,
                by_severity: vec![],
                pr_curve: vec![],
                score_distributions: vec![],
                classes: vec![],
                rule_stats: vec![],
                overlaps: vec![],
            },
            baseline: None,
            comparison: None,
        }
    }

    fn charts(html: &str) -> usize {
        html.matches("class=\"chart\"").count()
    }

    fn assert_finite_text(html: &str) {
        assert!(!html.contains("NaN"), "NaN in the page");
        assert!(!html.contains("inf"), "inf in the page");
    }

    #[test]
    fn hostile_strings_appear_only_escaped() {
        let html = render(&full_report());
        assert!(!html.contains(HOSTILE_ID));
        assert!(!html.contains("alert(1)</script>"));
        assert!(!html.contains("<b>evil</b>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;x&quot;"));
        assert!(html.contains("&lt;b&gt;evil&lt;/b&gt;.jsonl"));
        // The only script is the self-check.
        assert_eq!(html.matches("<script").count(), 1);
    }

    #[test]
    fn every_chart_of_a_full_report_is_drawn() {
        let html = render(&full_report());
        // 4 confusion matrices, decisions, the PR curve, 3 class
        // histograms, rule bars, rule overlap, the severity matrix.
        assert_eq!(charts(&html), 12);
        for id in [
            "summary",
            "outcomes",
            "scores",
            "comparison",
            "rules",
            "builds",
        ] {
            assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
        }
        assert_eq!(
            html.matches("<circle").count(),
            5 + 1,
            "PR points and legend"
        );
        assert!(html.contains("document.body.dataset.chartsRendered"));
        // Twelve subsections, and each side's rule builds.
        assert_eq!(html.matches("class=\"part\"").count(), 12 + 2);
    }

    #[test]
    fn key_figures_appear() {
        let html = render(&full_report());
        assert!(html.contains("<td>80.0%</td>"), "candidate event precision");
        assert!(html.contains("<td>50.0%</td>"), "baseline event precision");
        assert!(html.contains("<td>+30.0 pp</td>"), "precision change");
        assert!(html.contains("12,345"), "events with a separator");
        assert!(html.contains("2 duplicate ids, 3 refused"), "event caveats");
        assert!(
            html.contains("2023-11-14T22:13:20.123Z"),
            "disagreement time"
        );
        assert!(html.contains("abababababa…"), "short build sha");
    }

    #[test]
    fn no_nan_or_inf_even_from_bad_floats() {
        assert_finite_text(&render(&full_report()));
        let mut report = full_report();
        report.candidate.events.precision = f64::NAN;
        report.candidate.rule_stats[0].fire_rate = f64::INFINITY;
        report.candidate.pr_curve[0].recall = f64::NEG_INFINITY;
        report.candidate.pr_curve[1].precision = f64::NAN;
        if let Some(c) = &mut report.comparison {
            c.top_disagreements[0].candidate.score = f64::NAN;
        }
        assert_finite_text(&render(&report));
    }

    #[test]
    fn an_empty_report_without_baseline_renders() {
        let html = render(&empty_report());
        assert_finite_text(&html);
        // Confusion matrices of events and entities, and decisions.
        assert_eq!(charts(&html), 3);
        assert!(!html.contains("id=\"comparison\""));
        assert!(html.contains("The candidate has no rules."));
        assert!(html.ends_with("</html>\n"));
    }

    #[test]
    fn odd_shapes_do_not_panic() {
        let mut report = full_report();
        report.candidate.pr_curve.truncate(1);
        report.candidate.overlaps = vec![vec![1]];
        report.candidate.score_distributions[0].bins = vec![0; SCORE_BINS];
        report.candidate.score_distributions[1].bins.clear();
        report.baseline = None;
        let html = render(&report);
        assert_finite_text(&html);
        assert!(html.contains("no events"));
        assert_eq!(html.matches("<circle").count(), 1, "the single PR point");
    }

    #[test]
    fn rendering_is_deterministic() {
        assert_eq!(render(&full_report()), render(&full_report()));
    }

    #[test]
    fn formatters() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(pct(0.1234), "12.3%");
        assert_eq!(pct(-0.0), "0.0%");
        assert_eq!(pct(f64::NAN), "–");
        assert_eq!(delta_pp(0.012), "+1.2 pp");
        assert_eq!(delta_pp(-0.012), "−1.2 pp");
        assert_eq!(delta_pp(-0.00001), "0.0 pp");
        assert_eq!(Num(f64::NAN).to_string(), "0");
        assert_eq!(Num(12.0).to_string(), "12");
        assert_eq!(Num(-0.04).to_string(), "0");
        assert_eq!(Num(3.25).to_string(), "3.3");
        assert_eq!(
            esc("a&b<c>\"d'").to_string(),
            "a&amp;b&lt;c&gt;&quot;d&#39;"
        );
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("äöü", 3), "äöü");
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(0.03), 0.05);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(log_ticks(0), vec![0]);
        assert_eq!(log_ticks(5), vec![0, 1]);
        assert_eq!(log_ticks(250), vec![0, 10, 100]);
    }

    #[test]
    fn iso_times() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_utc(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(iso_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso_utc(1_709_210_096_789), "2024-02-29T12:34:56.789Z");
        assert_eq!(iso_utc(4_102_444_800_000), "2100-01-01T00:00:00.000Z");
        // The extremes do not overflow.
        assert!(iso_utc(i64::MIN).ends_with('Z'));
        assert!(iso_utc(i64::MAX).ends_with('Z'));
    }
}
