/* Light or dark before the first paint: the person's choice (localStorage
 * "hydrotherm-theme": "light" | "dark"), else the system's (prefers-color-scheme).
 * Every change after that (the toggle; the system's, when no choice is stored) fires
 * "hydrotherm:theme" on the document, so what is drawn with colours (the chart) follows. */
(function () {
  "use strict";
  var KEY = "hydrotherm-theme";
  function stored() {
    try { return window.localStorage.getItem(KEY); } catch (e) { return null; }
  }
  function effective() {
    var s = stored();
    if (s === "light" || s === "dark") return s;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  function apply() {
    var s = stored();
    if (s === "light" || s === "dark") document.documentElement.setAttribute("data-theme", s);
    else document.documentElement.removeAttribute("data-theme");
  }
  apply();
  // tell the page (the chart, the toggle's label) whenever the effective theme changes
  var label = function () {};
  function changed() {
    label();
    document.dispatchEvent(new CustomEvent("hydrotherm:theme", { detail: { theme: effective() } }));
  }
  var mq = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  if (mq && mq.addEventListener) {
    mq.addEventListener("change", function () {
      var s = stored();
      if (s !== "light" && s !== "dark") changed();  // a stored choice wins over the system
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var btn = document.getElementById("theme-toggle");
    if (!btn) return;
    label = function () {
      var dark = effective() === "dark";
      btn.setAttribute("aria-pressed", dark ? "true" : "false");
      var icon = document.createElement("span");
      icon.setAttribute("aria-hidden", "true");
      icon.textContent = dark ? "☀" : "☾";
      var word = document.createElement("span");
      word.className = "tt-label";
      word.textContent = dark ? " Light" : " Dark";
      btn.replaceChildren(icon, word);
      btn.setAttribute("aria-label", dark ? "Switch to the light theme" : "Switch to the dark theme");
    };
    btn.addEventListener("click", function () {
      var next = effective() === "dark" ? "light" : "dark";
      try { window.localStorage.setItem(KEY, next); } catch (e) { /* private mode: this page only */ }
      document.documentElement.setAttribute("data-theme", next);
      changed();
    });
    label();
  });
})();
