/* Lead page: the score history chart (Chart.js, vendored). */
(function () {
  "use strict";
  var el = document.getElementById("score-data"), canvas = document.getElementById("chart-score");
  if (!el || !canvas || !window.Chart) return;
  var points = JSON.parse(el.textContent);
  Chart.defaults.animation = false;
  new Chart(canvas, {
    type: "line",
    data: {
      labels: points.map(function (p) { return p.at.slice(0, 10); }),
      datasets: [
        { label: "score", data: points.map(function (p) { return p.score; }), borderColor: "#2457c5", tension: 0.2, pointRadius: 2 },
        { label: "fit", data: points.map(function (p) { return p.fit; }), borderColor: "#1e7a46", borderDash: [4, 3], pointRadius: 0 },
        { label: "engagement", data: points.map(function (p) { return p.eng; }), borderColor: "#c2410c", borderDash: [2, 3], pointRadius: 0 }
      ]
    },
    options: { maintainAspectRatio: false, plugins: { legend: { position: "bottom", labels: { boxWidth: 10 } } }, scales: { y: { min: 0, max: 100 } } }
  });
  canvas.dataset.rendered = "true";
})();
