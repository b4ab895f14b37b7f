// django-import-export's "Select all" box on the export page, bound here instead of an inline onchange handler
// (no inline script under the Content-Security-Policy); onSelectToggleChange is the library's own function.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("input.select-toggle").forEach(function (box) {
    box.addEventListener("change", onSelectToggleChange);
  });
});
