// The lead list: on a small screen the filter panel starts folded into its bar (one tap opens it), so the
// leads are on the first screen; a status chip applies at once.
(function () {
  var panel = document.getElementById("filter-panel");
  if (panel && window.matchMedia("(max-width: 640px)").matches) {
    panel.open = false;
  }
  var chips = document.getElementById("status-chips");
  if (chips) {
    chips.addEventListener("change", function () {
      var form = document.getElementById("lead-filters");
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
    });
  }
})();
