//! SVG primitives the charts are drawn with: elements, axes and ticks,
//! legends, fills and shades, and the scales that place values on them.

use std::fmt::{self, Write};

use super::format::{Num, Who, esc};

/// `text-anchor` and class attributes used by several charts.
pub(super) const MIDDLE_MUTED: &str = " text-anchor=\"middle\" class=\"muted\"";
/// See [`MIDDLE_MUTED`].
pub(super) const END_MUTED: &str = " text-anchor=\"end\" class=\"muted\"";
/// See [`MIDDLE_MUTED`].
pub(super) const MIDDLE_BOLD: &str = " text-anchor=\"middle\" font-weight=\"600\"";
/// See [`MIDDLE_MUTED`].
pub(super) const END_BOLD: &str = " text-anchor=\"end\" font-weight=\"600\"";

/// How much larger than its drawing units a chart shows: charts are laid
/// out in units where text is 11 high, and shown a little larger so that it
/// reads at arm's length on a laptop; a narrow window still shrinks them.
const ZOOM: f64 = 1.15;

/// Opens a chart: every chart is an `svg.chart`, which the self-check counts.
pub(super) fn svg_open(out: &mut String, width: f64, height: f64, label: &str) -> fmt::Result {
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
pub(super) fn text(out: &mut String, x: f64, y: f64, attrs: &str, content: &str) -> fmt::Result {
    write!(
        out,
        "<text x=\"{}\" y=\"{}\"{attrs}>{}</text>",
        Num(x),
        Num(y),
        esc(content)
    )
}

/// A `<rect>` with a tooltip; `attrs` set its fill, `tip` is escaped.
pub(super) fn rect(
    out: &mut String,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    attrs: &str,
    tip: &str,
) -> fmt::Result {
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
pub(super) fn line(
    out: &mut String,
    x1: f64,
    y1: f64,
    x2: f64,
    y2: f64,
    class: &str,
) -> fmt::Result {
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
pub(super) fn point(out: &mut String, who: Who, x: f64, y: f64, tip: &str) -> fmt::Result {
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
pub(super) fn x_ticks(
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
pub(super) fn y_ticks(
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
pub(super) enum Key<'a> {
    /// A bar with these fill attributes.
    Bar(Who, &'a str),
    /// A line with points, as the curves are drawn.
    Curve(Who),
    /// A bare line, as the baseline's histograms are drawn.
    Outline(Who),
}

/// Writes the keys of a two-series chart in a row from (x, y).
pub(super) fn legend(out: &mut String, x: f64, y: f64, keys: &[Key<'_>]) -> fmt::Result {
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
pub(super) fn dash(who: Who) -> &'static str {
    match who {
        Who::Candidate => "",
        Who::Baseline => " stroke-dasharray=\"6 3\"",
    }
}

/// A solid fill attribute.
pub(super) fn fill(colour: &str) -> String {
    format!(" fill=\"{colour}\"")
}

/// Fill and outline of a heatmap cell for a share `t` in 0..1: a single-hue
/// purple ramp (ColorBrewer Purples), light to dark, which reads in any
/// colour vision and in print, and is neither side's colour.
pub(super) fn shade_attrs(t: f64) -> String {
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
pub(super) fn ink_class(t: f64) -> &'static str {
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
pub(super) fn linear_ticks(max: f64) -> Vec<f64> {
    (0..=5).map(|i| max * f64::from(i) / 5.0).collect()
}

/// The smallest of 1, 2 and 5 × 10^k at or above `max`, so that five
/// intervals fall on round numbers; 1 for nothing to show.
pub(super) fn nice_ceiling(max: f64) -> f64 {
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
pub(super) fn log_share(n: u64, max: u64) -> f64 {
    if max == 0 {
        0.0
    } else {
        unit((n as f64).ln_1p() / (max as f64).ln_1p())
    }
}

/// Counts worth a tick on a log scale up to `max`: 0, then powers of ten,
/// every other one when there are many. 1 sits too close to 0 to label
/// once there is a 10 to show.
pub(super) fn log_ticks(max: u64) -> Vec<u64> {
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
pub(super) fn unit(x: f64) -> f64 {
    if x.is_finite() {
        x.clamp(0.0, 1.0)
    } else {
        0.0
    }
}
