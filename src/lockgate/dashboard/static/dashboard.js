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

  // Contracts: a chosen YAML file fills the text box (the form itself posts text).
  function loadInto(input) {
    input.addEventListener("change", function () {
      var target = document.getElementById(input.getAttribute("data-load-into"));
      var file = input.files && input.files[0];
      if (!target || !file) { return; }
      file.text().then(function (text) { target.value = text; });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-load-into]").forEach(loadInto);
    follow();
    tick();
    setInterval(tick, 1000);
    document.querySelectorAll("[data-chart]").forEach(chart);
  });
  document.body && document.body.addEventListener("htmx:afterSwap", tick);
})();
