/* Light or dark before the first paint: the person's choice (localStorage
 * "hydrotherm-theme": "light" | "dark"), else the system's (prefers-color-scheme). */
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
  document.addEventListener("DOMContentLoaded", function () {
    var btn = document.getElementById("theme-toggle");
    if (!btn) return;
    function label() {
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
    }
    btn.addEventListener("click", function () {
      var next = effective() === "dark" ? "light" : "dark";
      try { window.localStorage.setItem(KEY, next); } catch (e) { /* private mode: this page only */ }
      document.documentElement.setAttribute("data-theme", next);
      label();
    });
    label();
  });
})();
