//! Text for the page: HTML escaping, numbers, counts, percentages and times,
//! the two sides (`Who`) and their colours, and small HTML pieces.

use std::fmt::{self, Display};

use super::super::report::{BacktestReport, RunReport};
use crate::verdict::Severity;

/// The candidate's colour, and the baseline's: the blue and orange of the
/// Tableau 10 palette, a pair that stays apart under the common colour
/// vision deficiencies and in greyscale print.
pub(super) const CANDIDATE_COLOUR: &str = "#1f77b4";
/// See [`CANDIDATE_COLOUR`].
pub(super) const BASELINE_COLOUR: &str = "#ff7f0e";

/// Severities in report order (the order of every `[u64; 4]`).
pub(super) const SEVERITIES: [Severity; 4] = [
    Severity::Allow,
    Severity::Review,
    Severity::Limit,
    Severity::Block,
];

/// Which rule set a figure belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Who {
    /// The rule set under test.
    Candidate,
    /// The rule set it is compared with.
    Baseline,
}

impl Who {
    /// Its name on the page.
    pub(super) fn label(self) -> &'static str {
        match self {
            Who::Candidate => "Candidate",
            Who::Baseline => "Baseline",
        }
    }

    /// Its colour in every chart.
    pub(super) fn colour(self) -> &'static str {
        match self {
            Who::Candidate => CANDIDATE_COLOUR,
            Who::Baseline => BASELINE_COLOUR,
        }
    }
}

/// The candidate's run, then the baseline's when there is one.
pub(super) fn runs(r: &BacktestReport) -> impl Iterator<Item = (Who, &RunReport)> {
    std::iter::once((Who::Candidate, &r.candidate))
        .chain(r.baseline.iter().map(|b| (Who::Baseline, b)))
}

/// A small colour square naming a side in HTML text.
pub(super) fn swatch(who: Who) -> String {
    format!(
        "<span class=\"swatch\" style=\"background:{}\"></span>",
        who.colour()
    )
}

/// A class's label as a tag that reads without colour.
pub(super) fn class_tag(abusive: bool) -> &'static str {
    if abusive {
        "<span class=\"tag abusive\">abusive</span>"
    } else {
        "<span class=\"tag benign\">benign</span>"
    }
}

pub(super) use super::super::report::severity_name;

/// Text made safe for HTML element content and quoted attribute values.
pub(super) struct Esc<'a>(&'a str);

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
pub(super) fn esc(s: &str) -> Esc<'_> {
    Esc(s)
}

/// An SVG coordinate: one decimal at most, and 0 for a non-finite value.
pub(super) struct Num(pub(super) f64);

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
pub(super) fn count(n: u64) -> String {
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
pub(super) fn pct(r: f64) -> String {
    if !r.is_finite() {
        return "–".to_owned();
    }
    // `+ 0.0` turns a negative zero into zero, so no "-0.0%".
    format!("{:.1}%", r * 100.0 + 0.0)
}

/// A change of a ratio in percentage points, signed: `+1.2 pp`.
pub(super) fn delta_pp(d: f64) -> String {
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
pub(super) fn pct_tick(v: f64, step: f64) -> String {
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
pub(super) fn score(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "–".to_owned()
    }
}

/// The score range of bin `i` of `bins` and its count, for a tooltip.
pub(super) fn bin_label(i: usize, bins: usize, n: u64) -> String {
    let bins = bins.max(1) as f64;
    format!(
        "{:.2}–{:.2}: {}",
        i as f64 / bins,
        (i + 1) as f64 / bins,
        count(n)
    )
}

/// At most `n` characters of `s`, with an ellipsis when cut.
pub(super) fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut cut: String = s.chars().take(n.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// Milliseconds since the epoch as ISO-8601 UTC, to the millisecond.
pub(super) fn iso_utc(ms: i64) -> String {
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

/// A report float as a number safe to compute with: 0 when not finite.
pub(super) fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}
