//! The page's fixed text: its stylesheet and its render self-check script.

/// The page's styles. SVG text sizes and fills are set by class, not by
/// attribute, because a stylesheet rule would override an attribute.
pub(super) const STYLE: &str = r#":root { --ink: #1b1f24; --muted: #57606a; --line: #d0d7de; --panel: #f6f8fa; }
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
pub(super) const SELF_CHECK: &str = r#"<script>
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
