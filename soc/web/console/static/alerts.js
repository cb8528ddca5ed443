// The alert queue: keyboard triage, selection, and a poll for new alerts that keeps the
// selection. Everything works without this file (forms and links); it only saves keystrokes.
// j/k move, x selects and moves on, a acknowledges, c asks for a close reason, i opens the
// incident panel, o/Enter opens the alert, / searches, Esc closes a panel (? is console.js's).
"use strict";
(function () {
  var table = document.getElementById("queue");
  var form = document.getElementById("bulk");
  var allBox = document.getElementById("all-matching");
  var counter = document.getElementById("selected-count");
  var current = -1;

  function rows() {
    return table ? Array.prototype.slice.call(table.querySelectorAll("tbody tr.alert-row")) : [];
  }
  function box(row) { return row.querySelector("input.pick"); }
  function chosen() { return rows().filter(function (r) { return box(r) && box(r).checked; }); }

  function refresh() {
    rows().forEach(function (r) { r.classList.toggle("selected", !!(box(r) && box(r).checked)); });
    if (table) { table.classList.toggle("all-selected", !!(allBox && allBox.checked)); }
    if (counter) {
      var n = chosen().length;
      counter.textContent = n ? counter.getAttribute("data-some").replace("{n}", String(n)) : counter.getAttribute("data-none");
    }
  }

  function setCurrent(index) {
    var list = rows();
    if (!list.length) { return; }
    index = Math.max(0, Math.min(list.length - 1, index));
    if (current >= 0 && list[current]) { list[current].classList.remove("current"); list[current].removeAttribute("aria-current"); }
    current = index;
    list[current].classList.add("current");
    list[current].setAttribute("aria-current", "true");
    list[current].scrollIntoView({block: "nearest"});
  }

  function toggleCurrent() {
    var list = rows();
    if (current < 0 || !list[current] || !box(list[current])) { return; }
    box(list[current]).checked = !box(list[current]).checked;
    refresh();
    if (current < list.length - 1) { setCurrent(current + 1); }
  }

  function ensureSelection() {
    // an action without a selection applies to the current alert
    if (allBox && allBox.checked) { return true; }
    if (chosen().length) { return true; }
    var list = rows();
    if (current >= 0 && list[current] && box(list[current])) {
      box(list[current]).checked = true;
      refresh();
      return true;
    }
    return false;
  }

  function submit(action) {
    if (!form || !ensureSelection()) { return; }
    var button = form.querySelector("button[name=action][value=" + action + "]");
    if (button) { form.requestSubmit(button); }
  }

  function openPanel(id, focusId) {
    var panel = document.getElementById(id);
    if (!panel || !ensureSelection()) { return; }
    panel.open = true;
    var field = document.getElementById(focusId);
    if (field) { field.focus(); }
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (event.key === "Escape") {
      Array.prototype.forEach.call(document.querySelectorAll("details.panel[open]"), function (d) { d.open = false; });
      if (window.SOC && window.SOC.typing(event)) { event.target.blur(); }
      return;
    }
    if (event.key === "Enter" && event.target.closest && event.target.closest("details.panel")
        && event.target.tagName !== "BUTTON") {
      // Enter in a panel's field takes the panel's own action (close, assign, incident)
      var buttons = event.target.closest("details.panel").querySelectorAll(".panel-body button[type=submit]");
      var action = Array.prototype.filter.call(buttons, function (b) {
        return event.target.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING;
      })[0];
      if (action && form && ensureSelection()) { event.preventDefault(); form.requestSubmit(action); }
      return;
    }
    if (window.SOC && window.SOC.typing(event)) { return; }
    var list = rows();
    switch (event.key) {
      case "j": setCurrent(current + 1); break;
      case "k": setCurrent(current < 0 ? 0 : current - 1); break;
      case "x": toggleCurrent(); break;
      case "a": submit("ack"); break;
      case "c": openPanel("close-panel", "close-reason"); break;
      case "i": openPanel("incident-panel", "incident-title"); break;
      case "o": case "Enter":
        if (event.key === "Enter" && event.target !== document.body) { return; }
        if (current >= 0 && list[current]) { var link = list[current].querySelector("a.open"); if (link) { link.click(); } }
        break;
      case "/":
        var search = document.getElementById("search");
        if (search) { search.focus(); search.select(); }
        break;
      default: return;
    }
    event.preventDefault();
  });

  if (table) {
    table.addEventListener("change", refresh);
    table.addEventListener("click", function (event) {
      var row = event.target.closest ? event.target.closest("tr.alert-row") : null;
      if (row) { setCurrent(rows().indexOf(row)); }
    });
  }
  if (allBox) { allBox.addEventListener("change", refresh); }
  refresh();

  // New alerts: a count, not a reload -- the selection stays until the analyst follows the link.
  var banner = document.getElementById("new-alerts");
  if (banner && window.fetch) {
    var link = document.getElementById("new-alerts-link");
    var poll = function () {
      var url = banner.getAttribute("data-url") + "&after=" + encodeURIComponent(banner.getAttribute("data-after"));
      fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (answer) { return answer.ok ? answer.json() : null; })
        .then(function (data) {
          if (data && data["new"] > 0) {
            link.textContent = data.label + " — " + banner.getAttribute("data-show");
            banner.hidden = false;
          }
        })
        .catch(function () { /* the next poll tries again */ });
    };
    window.setInterval(poll, 30000);
    window.SOC.pollNewAlerts = poll;  // lets a test (or a console) ask now
  }
})();
