//! The report's HTML tables: the headline figures, metrics by severity,
//! outcomes by class, each rule's counts, the disagreements, and the input.

use std::fmt::{self, Write};

use super::super::report::{
    BacktestReport, ClassOutcome, Comparison, Disagreement, Metrics, RuleStats, Side, ratio,
};
use super::format::{
    SEVERITIES, Who, class_tag, count, delta_pp, esc, iso_utc, pct, runs, score, severity_name,
    swatch,
};
use super::{part, part_end};

/// Precision, recall and F1 of events and entities for each rule set, and
/// the change the candidate brings.
pub(super) fn headline_table(out: &mut String, r: &BacktestReport) -> fmt::Result {
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
            metric_cells(out, m)?;
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
pub(super) fn entity_split_table(out: &mut String, c: &Comparison) -> fmt::Result {
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

/// Precision, recall and F1 with each of review, limit and block taken as
/// the positive severity.
pub(super) fn severity_metrics_table(out: &mut String, r: &BacktestReport) -> fmt::Result {
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
pub(super) fn class_table(out: &mut String, r: &BacktestReport) -> fmt::Result {
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
pub(super) fn rule_stats_table(out: &mut String, stats: &[RuleStats]) -> fmt::Result {
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
pub(super) fn disagreements_table(out: &mut String, rows: &[Disagreement]) -> fmt::Result {
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

/// The replayed history as the report describes it.
pub(super) fn input_table(out: &mut String, r: &BacktestReport) -> fmt::Result {
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
