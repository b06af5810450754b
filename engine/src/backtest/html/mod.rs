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
//!
//! This module holds [`render`], the page skeleton and its sections in
//! reading order. The sections write tables from `tables` and charts from
//! `charts`, which draws on the SVG primitives and scales of `svg`; both
//! write through the escaping and number formatting of `format`, and
//! `style` holds the fixed stylesheet and self-check script.

mod charts;
mod format;
mod style;
mod svg;
mod tables;
#[cfg(test)]
mod tests;

use std::fmt::{self, Write};

use self::charts::{
    confusion_chart, decisions_chart, histogram_chart, overlap_chart, pr_chart, rules_chart,
    severity_matrix_chart,
};
use self::format::{clip, count, esc, iso_utc, pct, runs, severity_name, swatch};
use self::style::{SELF_CHECK, STYLE};
use self::tables::{
    class_table, disagreements_table, entity_split_table, headline_table, input_table,
    rule_stats_table, severity_metrics_table,
};
use super::report::{BacktestReport, CurvePoint, InputSummary, ScoreDistribution, ratio};

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
