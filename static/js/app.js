/* LeadCRM pages: live SLA countdowns, keyboard navigation of lists (j/k/enter), and what
   the Content-Security-Policy keeps out of the HTML (no inline handlers, no style=). */
(function () {
  "use strict";

  function pad(n) { return n < 10 ? "0" + n : "" + n; }

  function formatLeft(ms) {
    var late = ms < 0, s = Math.floor(Math.abs(ms) / 1000);
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    var text = d > 0 ? d + "d " + pad(h) + "h" : h > 0 ? h + "h " + pad(m) + "m" : m + "m " + pad(s % 60) + "s";
    return (late ? "−" : "") + text;
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-due]").forEach(function (el) {
      var due = Date.parse(el.dataset.due);
      if (isNaN(due)) return;
      var left = due - now;
      el.textContent = formatLeft(left);
      el.classList.toggle("late", left < 0);
      el.classList.toggle("soon", left >= 0 && left < 3600 * 1000);
    });
  }
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSwap", tick);

  // <select data-autosubmit>: choosing an option submits its form (language, team).
  document.addEventListener("change", function (e) {
    var el = e.target;
    if (el.matches && el.matches("select[data-autosubmit]") && el.form) el.form.submit();
  });

  // data-width="42.5%": bar widths, set through the CSSOM (a style attribute would need
  // 'unsafe-inline'); again on each piece of HTML htmx brings in (the import progress).
  function applyWidths(root) {
    if (root.matches && root.matches("[data-width]")) root.style.width = root.dataset.width;
    root.querySelectorAll("[data-width]").forEach(function (el) { el.style.width = el.dataset.width; });
  }
  document.addEventListener("DOMContentLoaded", function () { applyWidths(document.body); });
  document.addEventListener("htmx:load", function (e) { applyWidths((e.detail && e.detail.elt) || e.target); });

  // Keyboard: j / k move the selection in a [data-keynav] table, enter opens the row.
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("[data-keynav] tbody tr[data-href]")); }
  function select(index) {
    var list = rows();
    if (!list.length) return;
    index = Math.max(0, Math.min(list.length - 1, index));
    list.forEach(function (r) { r.classList.remove("selected"); r.removeAttribute("aria-selected"); });
    list[index].classList.add("selected");
    list[index].setAttribute("aria-selected", "true");
    list[index].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (e) {
    var tag = (e.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || e.ctrlKey || e.metaKey || e.altKey) return;
    var list = rows();
    if (!list.length) return;
    var current = list.findIndex(function (r) { return r.classList.contains("selected"); });
    if (e.key === "j") { select(current + 1); e.preventDefault(); }
    else if (e.key === "k") { select(current < 0 ? 0 : current - 1); e.preventDefault(); }
    else if (e.key === "Enter" && current >= 0) { window.location = list[current].dataset.href; e.preventDefault(); }
  });
})();
