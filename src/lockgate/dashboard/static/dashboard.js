/* lockgate dashboard: live updates, countdowns and charts. No inline script (CSP). */
(function () {
  "use strict";

  // Live: the server's audit feed says when anything was audited; regions marked with
  // hx-trigger="lockgate:change from:body" then fetch themselves again.
  var known = parseInt(document.body.getAttribute("data-audit-seq") || "0", 10);
  function follow() {
    if (!window.EventSource || !document.querySelector("header nav")) { return; }
    var source = new EventSource("/live");
    source.addEventListener("open", function () { document.body.setAttribute("data-live", "open"); });
    source.addEventListener("error", function () { document.body.setAttribute("data-live", "reconnecting"); });
    source.addEventListener("change", function (event) {
      var seq = JSON.parse(event.data).seq;
      if (seq > known) {
        known = seq;
        document.body.setAttribute("data-audit-seq", String(seq));
        document.body.dispatchEvent(new CustomEvent("lockgate:change", { detail: { seq: seq } }));
      }
    });
  }

  // Countdowns: "times out in 42 s" for runtime approvals.
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-expires]").forEach(function (el) {
      var left = Math.round((Date.parse(el.getAttribute("data-expires")) - now) / 1000);
      el.textContent = left > 0 ? "in " + left + " s" : "now (timed out)";
    });
  }

  // Exposure over time: one stepped line per environment (share of users, 0–100 %).
  function chart(el) {
    var source = document.getElementById(el.getAttribute("data-chart"));
    if (!source || !window.uPlot) { return; }
    var envs = JSON.parse(source.textContent);
    var times = {};
    envs.forEach(function (e) { e.timeline.forEach(function (p) { times[Date.parse(p.at) / 1000] = true; }); });
    var xs = Object.keys(times).map(Number).sort(function (a, b) { return a - b; });
    if (!xs.length) { el.textContent = "No exposure recorded yet."; return; }
    xs.push(Date.now() / 1000);
    var palette = ["#1f5fbf", "#b3261e", "#2e7d32", "#6a1b9a", "#8d6e00", "#00695c"];
    var series = [{}], data = [xs];
    envs.forEach(function (e, i) {
      var ys = xs.map(function (x) {
        var y = null;
        e.timeline.forEach(function (p) { if (Date.parse(p.at) / 1000 <= x) { y = p.exposure * 100; } });
        return y;
      });
      data.push(ys);
      series.push({ label: e.environment, stroke: palette[i % palette.length], width: 2,
        paths: uPlot.paths.stepped({ align: 1 }) });
    });
    var width = Math.max(320, el.clientWidth || 640);
    new uPlot({ width: width, height: 220, series: series,
      scales: { y: { range: [0, 100] } },
      axes: [{}, { label: "% exposed" }] }, data, el);
  }

  // Per variation (the behavior page): evaluations per variation, a guardrail's metric per
  // variation with its threshold, and its estimate inside the interval band. Drawn again
  // when the live section is swapped in; the charts swapped out are destroyed first.
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

  document.addEventListener("DOMContentLoaded", function () {
    follow();
    tick();
    setInterval(tick, 1000);
    document.querySelectorAll("[data-chart]").forEach(chart);
    drawVariations(document);
  });
  document.body && document.body.addEventListener("htmx:afterSwap", tick);
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "variation-charts") { forgetVariations(target); }
  });
  document.addEventListener("htmx:afterSettle", function () {
    var section = document.getElementById("variation-charts");
    if (section && !section.querySelector(".uplot")) { drawVariations(section); }
  });
})();
