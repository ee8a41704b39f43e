// Draws each scorecard's trend (performance score, on-time and acceptance rates over 30 days,
// from the daily snapshots) with Chart.js; the data comes from the page's json_script block.
(function () {
  "use strict";
  var source = document.getElementById("scorecard-charts");
  if (!source || typeof Chart === "undefined") { return; }
  var charts = JSON.parse(source.textContent);
  var series = [
    ["performance_score", "Score", "#1d3557"],
    ["on_time_rate", "On time (30 d)", "#2a9d8f"],
    ["acceptance_rate", "Acceptance (30 d)", "#e9c46a"]
  ];
  document.querySelectorAll("canvas.trend").forEach(function (canvas) {
    var points = charts[canvas.dataset.driver] || [];
    new Chart(canvas, {
      type: "line",
      data: {
        labels: points.map(function (p) { return p.day; }),
        datasets: series.map(function (s) {
          return {
            label: s[1],
            data: points.map(function (p) { return p[s[0]]; }),
            borderColor: s[2],
            backgroundColor: s[2],
            spanGaps: true,
            tension: 0.2
          };
        })
      },
      options: {
        animation: false,
        scales: { y: { min: 0, max: 1 } },
        plugins: { legend: { position: "bottom" } }
      }
    });
  });
})();
