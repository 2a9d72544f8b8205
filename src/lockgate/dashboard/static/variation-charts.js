/* lockgate dashboard: the behavior page's charts per variation (uPlot). No inline script
   (CSP); loaded by the section itself, outside the part that live updates swap. */
(function () {
  "use strict";

  // Evaluations per variation, a guardrail's metric per variation with its threshold, and
  // its estimate inside the interval band. Drawn again when the live section is swapped
  // in; the charts swapped out are destroyed first.
  // A variation keeps its colour in every chart of the page (first seen, first served).
  var drawn = [];
  var variationPalette = ["#1f5fbf", "#2e7d32", "#6a1b9a", "#8d6e00", "#00695c", "#444444"];
  var variationColours = {};
  function colourOf(label) {
    if (!variationColours[label]) {
      var n = Object.keys(variationColours).length;
      variationColours[label] = variationPalette[n % variationPalette.length];
    }
    return variationColours[label];
  }
  function variationSeries(doc, kind) {
    var series = [{ label: "time (UTC)" }], data = [doc.times], band = {};
    doc.series.forEach(function (s, i) {
      var opts = { label: s.label, width: 2, spanGaps: true, points: { size: 6 } };
      if (s.kind === "line") { opts.stroke = colourOf(s.label); }
      if (s.kind === "estimate") { opts.stroke = "#1b1b1b"; }
      if (s.kind === "limit") { opts.stroke = "#9b1c13"; opts.dash = [6, 4]; }
      if (s.kind === "low" || s.kind === "high") { opts.stroke = "#7a8ea8"; opts.width = 1; band[s.kind] = i + 1; }
      if (kind === "exposure") { opts.paths = uPlot.paths.stepped({ align: 1 }); }
      series.push(opts);
      data.push(s.values);
    });
    var bands = band.low && band.high ? [{ series: [band.high, band.low], fill: "rgba(31,95,191,0.16)" }] : [];
    return { series: series, data: data, bands: bands };
  }
  function variationChart(el) {
    var source = document.getElementById(el.getAttribute("data-variation-chart"));
    if (!source || !window.uPlot) { return; }
    var doc = JSON.parse(source.textContent);
    if (!doc.times.length) { el.textContent = "Nothing to chart in this range."; return; }
    var kind = el.getAttribute("data-kind");
    var shape = variationSeries(doc, kind);
    var width = Math.max(320, el.clientWidth || 640);
    // The whole range on the time axis, however few points it has.
    var from = Number(el.getAttribute("data-from")), to = Number(el.getAttribute("data-to"));
    var scales = { x: { time: true, auto: false, range: [from, to] } };
    if (kind === "exposure") { scales.y = { range: function (u, lo, hi) { return [0, Math.max(1, hi)]; } }; }
    drawn.push(new uPlot({ width: width, height: 220, series: shape.series, bands: shape.bands,
      scales: scales, tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      axes: [{}, { label: el.getAttribute("data-y-label") || "" }] }, shape.data, el));
  }
  function drawVariations(root) {
    root.querySelectorAll("[data-variation-chart]").forEach(variationChart);
  }
  function forgetVariations(root) {
    drawn = drawn.filter(function (u) {
      if (root.contains(u.root)) { u.destroy(); return false; }
      return true;
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawVariations(document); });
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "variation-charts") { forgetVariations(target); }
  });
  document.addEventListener("htmx:afterSettle", function () {
    var section = document.getElementById("variation-charts");
    if (section && !section.querySelector(".uplot")) { drawVariations(section); }
  });
})();
