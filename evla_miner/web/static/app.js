// Keyboard shortcuts for the triage page. No data is read from the page into
// HTML: this script only moves focus, follows links and submits forms the
// server rendered (with their CSRF tokens).
(function () {
  "use strict";

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  function toggleHelp(force) {
    var help = document.getElementById("help");
    if (!help) return;
    help.hidden = force === undefined ? !help.hidden : !force;
  }

  function submitWith(form, buttonSelector) {
    if (!form) return;
    var button = form.querySelector(buttonSelector);
    if (!button || button.disabled) return;
    if (form.requestSubmit) form.requestSubmit(button); else button.click();
  }

  function follow(id) {
    var link = document.getElementById(id) || document.querySelector("[data-key='" + id + "']");
    if (link && link.href) window.location.href = link.href;
  }

  // --- queue page: a selectable list --------------------------------------------
  var selected = -1;
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#queue tr.item")); }
  function select(index) {
    var all = rows();
    if (!all.length) return;
    selected = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (row, i) { row.classList.toggle("selected", i === selected); });
    all[selected].scrollIntoView({ block: "nearest" });
  }
  function current() { return rows()[selected]; }

  function onQueueKey(event) {
    var row;
    switch (event.key) {
      case "j": select(selected + 1); return true;
      case "k": select(selected - 1); return true;
      case "o": case "Enter":
        row = current(); if (row) window.location.href = row.dataset.href; return true;
      case "a": row = current(); if (row) submitWith(row.querySelector("form"), "button.accept"); return true;
      case "r": row = current(); if (row) submitWith(row.querySelector("form"), "button.reject"); return true;
      case "u": submitWith(document.getElementById("undo-last"), "button"); return true;
      case "/": document.getElementById("search").focus(); return true;
      case "b": submitWith(document.getElementById("export-bibtex"), "button"); return true;
      case "m": submitWith(document.getElementById("export-markdown"), "button"); return true;
    }
    return false;
  }

  // --- paper page ---------------------------------------------------------------
  function onPaperKey(event) {
    switch (event.key) {
      case "a": submitWith(document.getElementById("decide"), "#accept"); return true;
      case "r": submitWith(document.getElementById("decide"), "#reject"); return true;
      case "l": document.getElementById("leaf").focus(); return true;
      case "n": document.getElementById("note").focus(); return true;
      case "u": submitWith(document.getElementById("undo") || document.getElementById("undo-last"), "button"); return true;
      case "j": follow("next"); return true;
      case "k": follow("prev"); return true;
      case "q": follow("q"); return true;
      case "o":
        var link = document.querySelector(".links a");
        if (link) window.open(link.href, "_blank", "noopener,noreferrer");
        return true;
    }
    return false;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var page = document.body.dataset.page;
    var helpToggle = document.getElementById("help-toggle");
    if (helpToggle) helpToggle.addEventListener("click", function () { toggleHelp(); });

    rows().forEach(function (row, i) {
      row.addEventListener("click", function (event) {
        if (event.target.closest("a, button, input, select")) return;
        select(i);
      });
    });
    if (page === "queue" && rows().length) select(0);

    // Enter in the note field must not accept by accident: it moves focus back to the page.
    var note = document.getElementById("note");
    if (note) note.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); note.blur(); }
    });

    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.key === "Escape") { toggleHelp(false); if (typing(event.target)) event.target.blur(); return; }
      if (typing(event.target)) return;
      if (event.key === "?") { toggleHelp(); event.preventDefault(); return; }
      var handled = page === "queue" ? onQueueKey(event) : page === "paper" ? onPaperKey(event) : false;
      if (handled) event.preventDefault();
    });
  });
})();
