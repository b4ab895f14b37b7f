// The broker dashboard's charts (Chart.js, vendored in static/vendor/).
(function () {
  if (typeof Chart === "undefined") return;
  function data(id) { var el = document.getElementById(id); return el ? JSON.parse(el.textContent) : null; }
  var blue = "#0b4f8a";
  var funnel = data("data-funnel") || [];
  new Chart(document.getElementById("chart-funnel"), {
    type: "bar",
    data: { labels: funnel.map(function (s) { return s.label; }),
            datasets: [{ label: "Leads", data: funnel.map(function (s) { return s.count; }), backgroundColor: blue }] },
    options: { indexAxis: "y", plugins: { legend: { display: false } }, animation: false }
  });
  var status = data("data-status") || {};
  new Chart(document.getElementById("chart-status"), {
    type: "doughnut",
    data: { labels: Object.keys(status), datasets: [{ data: Object.values(status),
            backgroundColor: ["#9aa5b1", "#4c8bd6", blue, "#2f9e44", "#f08c00", "#c92a2a", "#862e9c", "#495057", "#087f5b"] }] },
    options: { animation: false }
  });
  var daily = data("data-daily") || [];
  new Chart(document.getElementById("chart-daily"), {
    type: "line",
    data: { labels: daily.map(function (d) { return d.date; }),
            datasets: [{ label: "New leads", data: daily.map(function (d) { return d.count; }), borderColor: blue, tension: 0.2 }] },
    options: { plugins: { legend: { display: false } }, animation: false, scales: { y: { beginAtZero: true } } }
  });
})();
