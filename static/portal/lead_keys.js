// The lead list's keyboard: j/k move between leads, Enter opens the current one, x selects it (ticks the row's
// checkbox when it has one), ? opens the help. Keys typed into a field, or with Ctrl/Alt/Meta, are left alone.
(function () {
  var table = document.getElementById("lead-table");
  if (!table) return;
  var help = document.getElementById("keyboard-help");
  var helpButton = document.getElementById("keyboard-help-button");
  var current = -1;

  function rows() { return Array.prototype.slice.call(table.querySelectorAll("tbody tr[data-lead-row]")); }

  function move(index) {
    var all = rows();
    if (!all.length) return;
    index = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (row, i) {
      row.classList.toggle("kbd-current", i === index);
      if (i === index) row.setAttribute("aria-current", "true"); else row.removeAttribute("aria-current");
    });
    current = index;
    var link = all[index].querySelector("a.lead-link");
    if (link) link.focus({ preventScroll: true });
    all[index].scrollIntoView({ block: "nearest" });
  }

  function toggleSelected() {
    var row = rows()[current];
    if (!row) return;
    var box = row.querySelector("input[type=checkbox]");
    if (box) {
      box.click();  // the row's own checkbox (its listeners see a real change)
      row.setAttribute("aria-selected", box.checked ? "true" : "false");
    } else {
      row.setAttribute("aria-selected", row.getAttribute("aria-selected") === "true" ? "false" : "true");
    }
    row.classList.toggle("selected", row.getAttribute("aria-selected") === "true");
  }

  function openHelp() {
    if (help && !help.open) {
      if (help.showModal) help.showModal(); else help.setAttribute("open", "");
    }
  }

  if (helpButton) helpButton.addEventListener("click", openHelp);

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.altKey || event.metaKey) return;
    var target = event.target;
    var tag = target && target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable)) return;
    if (help && help.open) return;  // the dialog has the keyboard (Escape closes it)
    var key = event.key;
    if (key === "j") { event.preventDefault(); move(current + 1); }
    else if (key === "k") { event.preventDefault(); move(current < 0 ? 0 : current - 1); }
    else if (key === "x" && current >= 0) { event.preventDefault(); toggleSelected(); }
    else if (key === "?") { event.preventDefault(); openHelp(); }
    else if (key === "Enter" && current >= 0 && !(tag === "A" || tag === "BUTTON")) {
      var link = rows()[current].querySelector("a.lead-link");
      if (link) { event.preventDefault(); link.click(); }
    }
  });
})();
