// The upload page's progress bar: while the upload is received or processing, ask its status endpoint every
// second and move the bar, the label and the counts (no page reload). Stops when the upload is done or failed.
(function () {
  "use strict";
  var box = document.getElementById("upload-progress");
  if (!box) { return; }
  var url = box.dataset.statusUrl;
  var fill = document.getElementById("upload-progress-fill");
  var bar = document.getElementById("upload-progress-bar");
  var label = document.getElementById("upload-progress-label");
  var INTERVAL_MS = 1000;

  function show(status) {
    fill.style.width = status.percent + "%";
    fill.classList.toggle("failed", status.status === "failed");
    bar.setAttribute("aria-valuenow", String(status.percent));
    label.textContent = status.label + (status.running ? "" : " · " + status.duration);
    Object.keys(status.counts).forEach(function (name) {
      var cell = document.querySelector('[data-count="' + name + '"]');
      if (cell) { cell.textContent = status.counts[name]; }
    });
    box.dataset.running = status.running ? "1" : "0";
    box.dataset.polls = String(Number(box.dataset.polls || "0") + 1);
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (status) {
        if (status) { show(status); }
        if (!status || status.running) { window.setTimeout(poll, INTERVAL_MS); }
      })
      .catch(function () { window.setTimeout(poll, INTERVAL_MS * 3); });
  }

  if (box.dataset.running === "1") { window.setTimeout(poll, INTERVAL_MS); }
}());
