// The ops dashboard's charts (Chart.js, vendored in static/vendor/); the figures come in the page's
// #ec-dashboard-data JSON block (no inline script: Content-Security-Policy).
(function () {
  var data = JSON.parse(document.getElementById("ec-dashboard-data").textContent);
  var palette = ["#417690", "#79aec8", "#f5dd5d", "#e57373", "#81c784", "#ba68c8", "#ffb74d", "#90a4ae", "#4db6ac"];
  var percent = function (v) { return v === null ? 0 : Math.round(v * 1000) / 10; };
  function draw(id, config) {
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options || {});
    var chart = new Chart(document.getElementById(id), config);
    document.getElementById(id).dataset.points = String(
      config.data.datasets.reduce(function (n, d) { return n + d.data.filter(function (v) { return v > 0; }).length; }, 0));
    return chart;
  }
  draw("chart-daily-uploads", { type: "bar", data: {
    labels: data.daily_uploads.map(function (d) { return d.date.slice(5); }),
    datasets: [
      { label: "uploads", data: data.daily_uploads.map(function (d) { return d.count; }), backgroundColor: palette[0] },
      { label: "new leads", data: data.daily_leads.map(function (d) { return d.count; }), backgroundColor: palette[1] }
    ] } });
  draw("chart-funnel", { type: "bar", data: {
    labels: data.funnel.map(function (s) { return s.label; }),
    datasets: [{ label: "count", data: data.funnel.map(function (s) { return s.count; }), backgroundColor: palette[0] }] },
    options: { indexAxis: "y", plugins: { legend: { display: false } } } });
  var statuses = Object.keys(data.campaign_status);
  draw("chart-campaign-status", { type: "doughnut", data: {
    labels: statuses, datasets: [{ data: statuses.map(function (s) { return data.campaign_status[s]; }), backgroundColor: palette }] } });
  draw("chart-verification", { type: "bar", data: {
    labels: ["email", "phone", "either"],
    datasets: [{ label: "% verified", data: [percent(data.verification.email), percent(data.verification.phone), percent(data.verification.either)], backgroundColor: palette[4] }] },
    options: { scales: { y: { min: 0, max: 100 } }, plugins: { legend: { display: false } } } });
  document.body.dataset.chartsReady = "1";
})();
