// The console's only script: keyboard help; pages add behaviour by data- attributes.
// No inline scripts anywhere (the Content-Security-Policy forbids them).
"use strict";
(function () {
  function typing(event) {
    var t = event.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event)) { return; }
    if (event.key === "?") {
      var help = document.getElementById("help");
      if (help && help.textContent.trim()) { help.hidden = !help.hidden; event.preventDefault(); }
    } else if (event.key === "Escape") {
      var open = document.getElementById("help");
      if (open) { open.hidden = true; }
    }
  });
  window.SOC = { typing: typing };
})();
