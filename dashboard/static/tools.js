/* The therapist's tools: session timers (table page and fleet cards), client presets and
 * the energy estimate (table page).  Every change goes through the JSON API with the
 * page's CSRF token; the server keeps presets and timers and ends a session itself. */
(function () {
  "use strict";
  const dataEl = document.getElementById("page-data");
  const page = dataEl ? JSON.parse(dataEl.textContent) : {};
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  let timers = {};
  let timersAt = Date.now();

  async function api(method, url, body) {
    const opts = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") opts.headers["X-CSRFToken"] = csrf;
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    try {
      const r = await fetch(url, opts);
      let data = {};
      try { data = await r.json(); } catch (e) { data = { error: "HTTP " + r.status }; }
      return { status: r.status, data };
    } catch (e) {
      return { status: 0, data: { error: "The dashboard server cannot be reached." } };
    }
  }

  let replyTimer = null;
  function reply(text, kind) {
    const node = document.getElementById("tools-reply");
    if (!node) return;
    node.className = "reply " + kind;
    node.textContent = text;
    clearTimeout(replyTimer);
    // a message is cleared once it no longer applies
    replyTimer = setTimeout(() => { node.textContent = ""; node.className = "reply"; }, kind === "refused" ? 20000 : 8000);
  }

  function fmtLeft(s) {
    const m = Math.floor(s / 60);
    const sec = Math.floor(s % 60);
    return m >= 1 ? m + " min " + String(sec).padStart(2, "0") + " s" : sec + " s";
  }

  function timerText(t) {
    if (!t) return "";
    if (t.finished) return t.finished.text;
    const left = Math.max(0, t.remaining_s - (Date.now() - timersAt) / 1000);
    return "Session: " + fmtLeft(left) + " left";
  }

  function renderChip(chip) {
    const t = timers[chip.dataset.table];
    const text = timerText(t);
    chip.hidden = !text;
    chip.classList.toggle("finished", !!(t && t.finished));
    if (chip.textContent !== text) chip.textContent = text;
  }

  function renderTimerChips() {
    document.querySelectorAll(".timer-chip[data-table]").forEach(renderChip);
    const status = document.getElementById("timer-status");
    if (status && page.table_id !== undefined) {
      const t = timers[page.table_id];
      const running = t && !t.finished;
      const text = running ? timerText(t) + " · at the end: " + t.action_text + " (started by " + t.user + ")" :
        (t && t.finished ? t.finished.text : "No session timer running.");
      if (status.textContent !== text) status.textContent = text;
      document.getElementById("timer-stop").hidden = !running;
    }
  }

  async function loadTimers() {
    const r = await api("GET", "/api/timers");
    if (r.status === 200) {
      timers = r.data.timers || {};
      timersAt = Date.now();
      renderTimerChips();
    }
  }

  function tableTools() {
    const tid = page.table_id;
    const base = "/api/tables/" + encodeURIComponent(tid);
    const select = document.getElementById("preset-select");
    let presets = [];

    document.getElementById("timer-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const input = document.getElementById("timer-minutes");
      const minutes = Number(input.value);
      if (!Number.isFinite(minutes) || minutes < 1 || minutes > 480) {
        reply("Type the session length in minutes (1–480).", "refused");
        input.value = "60";
        return;
      }
      const r = await api("POST", base + "/timer", { minutes, action: document.getElementById("timer-action").value });
      reply(r.data.message || r.data.error || "Error " + r.status, r.status === 200 ? "ok" : "refused");
      loadTimers();
    });
    document.getElementById("timer-stop").addEventListener("click", async () => {
      const r = await api("DELETE", base + "/timer");
      reply(r.data.message || r.data.error || "Error " + r.status, r.status === 200 ? "ok" : "refused");
      loadTimers();
    });

    async function loadPresets(selected) {
      const r = await api("GET", "/api/presets");
      if (r.status !== 200) return;
      presets = r.data.presets || [];
      const opts = presets.map((p) => {
        const o = document.createElement("option");
        o.value = p.name;
        o.textContent = p.name + " — " + page.cushion_names[0].toLowerCase() + " " + p.setpoints[0].toFixed(1) +
          " °C, " + page.cushion_names[1].toLowerCase() + " " + p.setpoints[1].toFixed(1) + " °C";
        return o;
      });
      if (!opts.length) {
        const o = document.createElement("option");
        o.value = "";
        o.textContent = "(none saved yet)";
        opts.push(o);
      }
      select.replaceChildren(...opts);
      if (selected) select.value = selected;
    }
    document.getElementById("preset-apply-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!select.value) { reply("Save a preset first.", "refused"); return; }
      const r = await api("POST", base + "/preset", { name: select.value });
      reply(r.data.message || r.data.error || "Error " + r.status, r.status === 200 ? "ok" : "refused");
    });
    document.getElementById("preset-delete").addEventListener("click", async () => {
      if (!select.value) return;
      if (!window.confirm("Delete the preset " + select.value + "?")) return;
      const r = await api("DELETE", "/api/presets/" + encodeURIComponent(select.value));
      reply(r.status === 200 ? "Preset deleted." : (r.data.error || "Error " + r.status), r.status === 200 ? "ok" : "refused");
      loadPresets();
    });
    document.getElementById("preset-save-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const nameEl = document.getElementById("preset-name");
      const name = nameEl.value.trim();
      const sps = [0, 1].map((i) => {
        const t = document.querySelector("#cushion-" + i + ' [data-role="setpoint"]').textContent;
        return Number(t);
      });
      if (!name) { reply("Give the preset a name (the client's, for example).", "refused"); return; }
      if (!sps.every(Number.isFinite)) { reply("The setpoints are not known yet.", "refused"); return; }
      const exists = presets.some((p) => p.name === name);
      const r = exists ? await api("PUT", "/api/presets/" + encodeURIComponent(name), { setpoints: sps }) :
        await api("POST", "/api/presets", { name, setpoints: sps });
      if (r.status === 200 || r.status === 201) {
        reply("Preset " + name + (exists ? " updated" : " saved") + ": " + sps.map((v) => v.toFixed(1) + " °C").join(", "), "ok");
        nameEl.value = "";
        loadPresets(name);
      } else {
        reply(r.data.error || "Error " + r.status, "refused");
      }
    });

    async function loadEnergy() {
      const r = await api("GET", base + "/energy");
      const node = document.getElementById("energy");
      if (r.status === 200) {
        const digits = r.data.kwh < 1 ? 3 : 2;
        node.textContent = "≈ " + r.data.kwh.toFixed(digits) + " kWh (" + r.data.cushions.map((c) =>
          page.cushion_names[c.cushion].toLowerCase() + " " + c.kwh.toFixed(digits)).join(", ") + ")";
      } else {
        node.textContent = "Unknown: " + (r.data.error || "error " + r.status);
      }
    }

    loadPresets();
    loadEnergy();
    setInterval(loadEnergy, 60000);
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (page.page === "table" && document.getElementById("tools")) tableTools();
    if (document.querySelector(".timer-chip[data-table]")) {
      loadTimers();
      setInterval(loadTimers, 15000);
      setInterval(renderTimerChips, 1000);
    }
  });
  // the fleet page rebuilds a card on each live update: put back that card's chip only
  // (redrawing all of them made each update's work grow with the fleet: p99 1-3 s at 200)
  document.addEventListener("hydrotherm:fleet-card", (ev) => {
    const id = ev.detail && ev.detail.table_id;
    if (id === undefined) { renderTimerChips(); return; }
    document.querySelectorAll('.timer-chip[data-table="' + CSS.escape(id) + '"]').forEach(renderChip);
  });
})();
