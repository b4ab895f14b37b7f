// Bulk selection on the lead list: pick rows one by one, a range with Shift, every row of the page, or every lead
// matching the filter. The chosen ids are kept in sessionStorage per list query, so paging keeps them; on submit
// the ids chosen on other pages are added to the form. Without this script, the page's own checkboxes still work.
(function () {
  var form = document.getElementById("bulk-form");
  if (!form) return;
  var key = "ec-bulk:" + (form.dataset.query || "");
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input.select-lead"));
  var pageBox = document.getElementById("select-page");
  var count = document.getElementById("bulk-count");
  var matching = document.getElementById("bulk-select-matching");
  var clear = document.getElementById("bulk-clear");
  var scope = document.getElementById("bulk-scope");
  var last = null;

  function load() {
    try { return JSON.parse(sessionStorage.getItem(key)) || { ids: [], matching: false }; }
    catch (e) { return { ids: [], matching: false }; }
  }
  var state = load();
  function save() { sessionStorage.setItem(key, JSON.stringify(state)); }

  function render() {
    var chosen = new Set(state.ids);
    boxes.forEach(function (box) { box.checked = state.matching || chosen.has(box.value); });
    var onPage = boxes.filter(function (box) { return box.checked; }).length;
    pageBox.checked = boxes.length > 0 && onPage === boxes.length;
    pageBox.indeterminate = onPage > 0 && onPage < boxes.length;
    if (state.matching) {
      count.textContent = "All " + (form.dataset.totalCapped === "1" ? "about " : "") +
        Number(form.dataset.total).toLocaleString("en-US") + " matching leads selected";
    } else {
      count.textContent = state.ids.length.toLocaleString("en-US") + " selected";
    }
    scope.value = state.matching ? "matching" : "selected";
    if (matching) matching.hidden = state.matching || !(pageBox.checked);
    clear.hidden = !(state.matching || state.ids.length);
  }

  function set(box, on) {
    var index = state.ids.indexOf(box.value);
    if (on && index < 0) state.ids.push(box.value);
    if (!on && index >= 0) state.ids.splice(index, 1);
  }

  boxes.forEach(function (box, position) {
    box.addEventListener("click", function (event) {
      if (state.matching) {  // leaving "all matching": the page's rows stay chosen, but for this one
        state.matching = false;
        state.ids = boxes.map(function (b) { return b.value; });
      }
      if (event.shiftKey && last !== null && last !== position) {
        var from = Math.min(last, position), to = Math.max(last, position);
        for (var i = from; i <= to; i++) set(boxes[i], box.checked);
      } else {
        set(box, box.checked);
      }
      last = position;
      save();
      render();
    });
  });
  pageBox.addEventListener("change", function () {
    if (state.matching && !pageBox.checked) state = { ids: [], matching: false };
    boxes.forEach(function (box) { set(box, pageBox.checked); });
    save();
    render();
  });
  if (matching) {
    matching.addEventListener("click", function () { state.matching = true; save(); render(); });
  }
  clear.addEventListener("click", function () { state = { ids: [], matching: false }; save(); render(); });

  form.addEventListener("submit", function (event) {
    var action = event.submitter ? event.submitter.value : "";
    if (!state.matching && !state.ids.length) {
      event.preventDefault();
      count.textContent = "Select at least one lead first.";
      return;
    }
    form.querySelectorAll("input.carried").forEach(function (input) { input.remove(); });
    if (!state.matching) {
      // The ids chosen on other pages, in ONE field: a field per lead would pass the server's limit on fields.
      var here = new Set(boxes.map(function (box) { return box.value; }));
      var input = document.createElement("input");
      input.type = "hidden"; input.name = "ids"; input.className = "carried";
      input.value = state.ids.filter(function (id) { return !here.has(id); }).join(",");
      form.appendChild(input);
    }
    if (action !== "export") { state = { ids: [], matching: false }; save(); }
  });
  render();
})();
