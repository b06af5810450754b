//! The report's SVG charts, one function per chart: confusion matrix,
//! decisions by severity, precision/recall curve, score histogram, rule
//! bars, rule overlap and severity matrix.

use std::fmt::{self, Write};

use super::super::report::{Confusion, CurvePoint, RuleStats, ScoreDistribution, ratio};
use super::format::{
    BASELINE_COLOUR, CANDIDATE_COLOUR, Num, SEVERITIES, Who, bin_label, class_tag, clip, count,
    esc, finite, pct, pct_tick, score, severity_name, swatch,
};
use super::svg::{
    END_BOLD, END_MUTED, Key, MIDDLE_BOLD, MIDDLE_MUTED, dash, fill, ink_class, legend, line,
    linear_ticks, log_share, log_ticks, nice_ceiling, point, rect, shade_attrs, svg_open, text,
    unit, x_ticks, y_ticks,
};

/// A 2x2 confusion matrix: decision (acted on or not) against label.
pub(super) fn confusion_chart(
    out: &mut String,
    who: Who,
    unit: &str,
    c: &Confusion,
) -> fmt::Result {
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
pub(super) fn decisions_chart(
    out: &mut String,
    cand: &[u64; 4],
    base: Option<&[u64; 4]>,
) -> fmt::Result {
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
pub(super) fn pr_chart(
    out: &mut String,
    cand: &[CurvePoint],
    base: Option<&[CurvePoint]>,
) -> fmt::Result {
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
pub(super) fn histogram_chart(
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
pub(super) fn rules_chart(out: &mut String, stats: &[RuleStats]) -> fmt::Result {
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
pub(super) fn overlap_chart(
    out: &mut String,
    stats: &[RuleStats],
    overlaps: &[Vec<u64>],
) -> fmt::Result {
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
pub(super) fn severity_matrix_chart(out: &mut String, m: &[[u64; 4]; 4]) -> fmt::Result {
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
