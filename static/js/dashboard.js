/* Dashboard charts: Chart.js (vendored) fed by the JSON the view renders beside the tables. */
(function () {
  "use strict";
  var el = document.getElementById("dashboard-data");
  if (!el || !window.Chart) return;
  var data = JSON.parse(el.textContent);
  var palette = ["#2457c5", "#1e7a46", "#c2410c", "#7c3aed", "#0e7490", "#9a6700", "#be185d", "#4b5563", "#65a30d", "#b42318"];
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.font.size = 11;
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  window.leadcrmCharts = {};

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas) return;
    window.leadcrmCharts[id] = new Chart(canvas, config);
    canvas.dataset.rendered = "true";
  }

  draw("chart-funnel", {
    type: "bar",
    data: {
      labels: data.funnel.labels,
      datasets: [
        { label: el.dataset.reached || "reached", data: data.funnel.reached, backgroundColor: "#b7c9ef" },
        { label: el.dataset.now || "now", data: data.funnel.now, backgroundColor: "#2457c5" }
      ]
    },
    options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true } } }
  });

  draw("chart-time", {
    type: "bar",
    data: {
      labels: data.over_time.labels,
      datasets: data.over_time.series.map(function (s, i) {
        return { label: s.source, data: s.counts, backgroundColor: palette[i % palette.length], stack: "leads" };
      })
    },
    options: {
      plugins: { legend: { position: "bottom", labels: { boxWidth: 10 } } },
      scales: { x: { stacked: true, ticks: { maxTicksLimit: 12 } }, y: { stacked: true, beginAtZero: true } }
    }
  });

  draw("chart-attribution", {
    type: "doughnut",
    data: {
      labels: data.attribution.labels,
      datasets: [{ data: data.attribution.credit, backgroundColor: palette }]
    },
    options: { plugins: { legend: { position: "right", labels: { boxWidth: 10 } } } }
  });

  draw("chart-cpl", {
    type: "bar",
    data: {
      labels: data.cpl.labels,
      datasets: [{ label: "CPL MCL", data: data.cpl.values, backgroundColor: "#c2410c" }]
    },
    options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true } } }
  });
})();
