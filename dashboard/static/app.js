/* Hydrotherm dashboard: live updates (Server-Sent Events), the controls, the chart.
 * No build step, no dependencies but the vendored uPlot.  Every text shown about the
 * table (trips, alarms, connection problems) comes from the server, already in words. */
(function () {
  "use strict";

  const dataEl = document.getElementById("page-data");
  const page = dataEl ? JSON.parse(dataEl.textContent) : {};
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  const liveEl = document.getElementById("live-status");

  // --- helpers ------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : String(c));
    }
    return node;
  }

  function setText(node, text) {
    if (node && node.textContent !== text) node.textContent = text;
  }

  async function api(method, url, body) {
    const opts = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.headers["X-CSRFToken"] = csrf;
      opts.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(url, opts);
    } catch (e) {
      return { status: 0, data: { error: "The dashboard server cannot be reached." } };
    }
    let data;
    try {
      data = await resp.json();
    } catch (e) {
      data = { error: "HTTP " + resp.status };
    }
    if (resp.status === 401) {
      window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname);
    }
    return { status: resp.status, data };
  }

  function setLive(ok, text) {
    if (!liveEl) return;
    setText(liveEl, text);
    liveEl.classList.toggle("ok", ok);
    liveEl.classList.toggle("bad", !ok);
  }

  /* One EventSource with visible state; reconnects itself, and after a hard failure
   * checks whether the session has expired (then the api helper goes to the login). */
  let streamOpen = null; // null: first connection not settled yet
  function openStream(url, handlers) {
    let es = null;
    function connect() {
      es = new EventSource(url);
      es.onopen = () => { streamOpen = true; setLive(true, "Live"); };
      es.onerror = () => {
        streamOpen = false;
        if (es.readyState === EventSource.CLOSED) {
          setLive(false, "Live updates stopped: retrying…");
          setTimeout(async () => {
            await api("GET", "/api/tables");
            connect();
          }, 5000);
        } else {
          setLive(false, "Live updates interrupted: reconnecting…");
        }
      };
      for (const [name, fn] of Object.entries(handlers)) {
        es.addEventListener(name, (ev) => {
          let msg;
          try { msg = JSON.parse(ev.data); } catch (e) { return; }
          fn(msg);
        });
      }
    }
    connect();
    window.addEventListener("pagehide", () => es && es.close());
  }

  function renderProblems(box, problems, extra) {
    if (!box) return;
    const all = problems.concat(extra || []);
    const key = JSON.stringify(all);
    if (box.dataset.key === key) return;
    box.dataset.key = key;
    box.replaceChildren(...all.map((p) =>
      el("p", { class: "problem " + p.level, "data-code": p.code }, p.text)));
  }

  // --- the table page -----------------------------------------------------------------

  function tablePage() {
    const tid = page.table_id;
    const step = page.setpoint_step;
    const decimals = Math.max(0, Math.round(-Math.log10(step)));
    const roundStep = (v) => Number((Math.round(v / step) * step).toFixed(decimals));
    const pending = [null, null];
    let view = page.view;
    let lastTable = Date.now();
    const cards = [0, 1].map((i) => document.getElementById("cushion-" + i));
    const part = (i, role) => cards[i].querySelector('[data-role="' + role + '"]');

    const replyTimers = [null, null];
    function clearReply(i) {
      const node = part(i, "reply");
      clearTimeout(replyTimers[i]);
      node.className = "reply";
      node.textContent = "";
    }
    function showReply(i, text, kind) {
      const node = part(i, "reply");
      node.className = "reply " + kind;
      node.textContent = text;
      clearTimeout(replyTimers[i]);
      // a message that no longer applies goes: an answer after a while, a note at once
      // when the cushion's trips change (renderCushion)
      if (kind !== "busy") {
        replyTimers[i] = setTimeout(() => clearReply(i), kind === "refused" ? 20000 : 10000);
      }
    }
    // the typed value goes back to the table's setpoint (a refused "45" must not stay)
    function resetInput(i) {
      const input = part(i, "sp-input");
      delete input.dataset.dirty;
      const c = view && view.cushions[i];
      input.value = c && c.setpoint_c !== null ? c.setpoint_text : "";
    }

    function staleProblems() {
      if (streamOpen === false) {
        return [{ level: "error", code: "stream",
          text: "Live updates interrupted: the dashboard is reconnecting. The values shown may be out of date." }];
      }
      const age = (Date.now() - lastTable) / 1000;
      if (view && view.status === "online" && age > page.stale_after_s) {
        return [{ level: "error", code: "stale",
          text: "No update from the table for " + Math.round(age) + " s: the values shown may be out of date." }];
      }
      return [];
    }

    function render(v) {
      view = v;
      renderProblems(document.getElementById("problems"), v.problems, staleProblems());
      setText(document.getElementById("updated"),
        v.updated_text ? "Last update " + v.updated_text : "No data yet");
      setText(document.getElementById("room"), v.room_text || "");
      document.body.classList.toggle("not-live", !v.live);
      v.cushions.forEach(renderCushion);
      chartAppend(v);
      document.dispatchEvent(new CustomEvent("hydrotherm:table", { detail: v }));
    }

    function renderCushion(c) {
      const i = c.cushion;
      const card = cards[i];
      if (!card) return;
      setText(part(i, "water"), c.water_text);
      setText(part(i, "sensors"), c.sensors_text);
      setText(part(i, "action"), c.action_text);
      setText(part(i, "output"), c.output_text);
      setText(part(i, "ready"), c.ready_text);
      setText(part(i, "setpoint"), c.setpoint_text);
      if (pending[i] !== null && c.setpoint_c !== null && Math.abs(c.setpoint_c - pending[i]) < 1e-6) {
        pending[i] = null;
      }
      const input = part(i, "sp-input");
      if (document.activeElement !== input && !input.dataset.dirty && c.setpoint_c !== null) {
        input.value = c.setpoint_text;
      }
      const base = pending[i] !== null ? pending[i] : c.setpoint_c;
      card.querySelector('[data-action="sp-up"]').disabled = base === null || base >= page.setpoint_max;
      card.querySelector('[data-action="sp-down"]').disabled = base === null || base <= page.setpoint_min;
      const heat = card.querySelector('[data-action="heat"]');
      heat.setAttribute("aria-pressed", c.heat_on ? "true" : "false");
      setText(part(i, "heat"), c.heat_on ? "on" : "off");
      const reset = card.querySelector('[data-action="reset"]');
      reset.disabled = !c.can_reset;
      reset.title = c.reset_note || (c.trips.length ? "" : "No safety trip to reset.");
      setText(part(i, "reset-note"), c.reset_note || "");
      card.classList.toggle("tripped", c.trips.length > 0);
      card.classList.toggle("blocked", c.heat_state === "blocked");
      card.dataset.state = c.heat_state;
      const blocked = part(i, "blocked");
      const bkey = JSON.stringify(c.blocked);
      if (blocked.dataset.key !== bkey) {
        blocked.dataset.key = bkey;
        blocked.replaceChildren(...c.blocked.map((b) => el("li", { "data-reason": b.reason, class: b.dup ? "dup" : null }, b.text)));
      }

      const trips = part(i, "trips");
      const tkey = JSON.stringify(c.trips);
      if (trips.dataset.key !== tkey) {
        // a refusal about the trips that were latched no longer applies once they change
        if (trips.dataset.key !== undefined && part(i, "reply").classList.contains("refused")) clearReply(i);
        trips.dataset.key = tkey;
        trips.replaceChildren(...c.trips.map((t) => el("div", { class: t.service ? "trip service" : "trip", "data-reason": t.reason },
          el("p", { class: "trip-title" }, el("span", { class: "icon", "aria-hidden": "true" }, "⚠"), " ", t.title),
          el("p", { class: "trip-text" }, t.text),
          (t.detail || t.at) ? el("p", { class: "trip-detail" }, (t.at ? "Since " + t.at + ". " : "") + t.detail) : null)));
      }
      const alarms = part(i, "alarms");
      const akey = JSON.stringify(c.alarms);
      if (alarms.dataset.key !== akey) {
        alarms.dataset.key = akey;
        alarms.replaceChildren(...c.alarms.map((a) => el("p", { class: "alarm", "data-name": a.name }, a.text)));
      }
    }

    async function sendSetpoint(i, value) {
      pending[i] = value;
      showReply(i, "Sending setpoint " + value.toFixed(decimals) + " °C…", "busy");
      const r = await api("POST", "/api/tables/" + encodeURIComponent(tid) + "/setpoint", { cushion: i, value });
      if (r.status === 200) {
        showReply(i, r.data.message, "ok");
      } else {
        pending[i] = null;
        showReply(i, r.data.message || r.data.error || ("Error " + r.status), "refused");
        resetInput(i);
      }
      setTimeout(() => { pending[i] = null; }, 10000);
    }

    cards.forEach((card, i) => {
      if (!card) return;
      const input = part(i, "sp-input");
      input.addEventListener("input", () => { input.dataset.dirty = "1"; });
      const stepBy = (dir) => {
        const c = view && view.cushions[i];
        const base = pending[i] !== null ? pending[i] : (c ? c.setpoint_c : null);
        if (base === null || base === undefined) {
          showReply(i, "No setpoint known yet: wait for the table's first update.", "refused");
          return;
        }
        const target = Math.min(page.setpoint_max, Math.max(page.setpoint_min, roundStep(base + dir * page.button_step)));
        if (target === base) return;
        delete input.dataset.dirty;
        sendSetpoint(i, target);
      };
      card.querySelector('[data-action="sp-up"]').addEventListener("click", () => stepBy(1));
      card.querySelector('[data-action="sp-down"]').addEventListener("click", () => stepBy(-1));
      part(i, "sp-form").addEventListener("submit", (ev) => {
        ev.preventDefault();
        const value = Number(input.value.replace(",", "."));
        if (input.value.trim() === "" || !Number.isFinite(value)) {
          showReply(i, "Type a temperature in °C, e.g. 37.5.", "refused");
          resetInput(i);
          return;
        }
        if (value < page.setpoint_min || value > page.setpoint_max) {
          showReply(i, value + " °C is not possible: the setpoint must be between " + page.setpoint_min + " and " + page.setpoint_max + " °C.", "refused");
          resetInput(i);
          return;
        }
        delete input.dataset.dirty;
        sendSetpoint(i, roundStep(value));
      });
      card.querySelector('[data-action="heat"]').addEventListener("click", async () => {
        const c = view && view.cushions[i];
        if (!c) return;
        const on = !c.heat_on;
        showReply(i, "Switching heating " + (on ? "on" : "off") + "…", "busy");
        const r = await api("POST", "/api/tables/" + encodeURIComponent(tid) + "/heat", { cushion: i, on });
        showReply(i, r.data.message || r.data.error || ("Error " + r.status), r.status === 200 ? "ok" : "refused");
      });
      card.querySelector('[data-action="reset"]').addEventListener("click", async () => {
        const name = page.cushion_names[i].toLowerCase();
        if (!window.confirm("Reset the safety trip on the " + name + " cushion?\n\n" +
          "Only reset once the cause has been dealt with. The controller checks again and refuses if it persists.")) {
          return;
        }
        showReply(i, "Asking the controller to reset…", "busy");
        const r = await api("POST", "/api/tables/" + encodeURIComponent(tid) + "/reset", { cushion: i });
        showReply(i, r.data.message || r.data.error || ("Error " + r.status), r.status === 200 ? "ok" : "refused");
      });
    });

    // chart --------------------------------------------------------------------------
    const RANGE_S = { "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800 };
    let range = "1h";
    let chart = null;
    let series = [[], [], [], [], []];
    let chartDirty = false;
    const chartEl = document.getElementById("chart");
    const chartStatus = document.getElementById("chart-status");

    function makeChart() {
      if (!window.uPlot || !chartEl) {
        setText(chartStatus, "The chart library did not load.");
        return;
      }
      const fmt = (u, v) => (v === null || v === undefined ? "—" : v.toFixed(2) + " °C");
      const css = getComputedStyle(document.documentElement);
      const ink = css.getPropertyValue("--ink").trim() || "#15202b";
      const grid = css.getPropertyValue("--line").trim() || "#c9d2db";
      const upper = css.getPropertyValue("--upper").trim() || "#1f5fbf";
      const lower = css.getPropertyValue("--lower").trim() || "#b34700";
      const opts = {
        width: Math.max(280, chartEl.clientWidth),
        height: 300,
        // the x axis always spans the chosen range, ending at the newest point
        scales: { x: { time: true, range: (u, min, max) => [max - RANGE_S[range], max] } },
        series: [
          {},
          { label: page.cushion_names[0] + " water", stroke: upper, width: 2.5, value: fmt },
          { label: page.cushion_names[0] + " setpoint", stroke: upper, width: 1.5, dash: [8, 5], value: fmt },
          { label: page.cushion_names[1] + " water", stroke: lower, width: 2.5, dash: [2, 3], value: fmt },
          { label: page.cushion_names[1] + " setpoint", stroke: lower, width: 1.5, dash: [12, 4, 2, 4], value: fmt },
        ],
        axes: [
          { space: 90, stroke: ink, grid: { stroke: grid }, ticks: { stroke: grid }, values: (u, ticks) => ticks.map((t) => {
            const d = new Date(t * 1000);
            const hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
            return range === "7d" ? d.toLocaleDateString([], { weekday: "short" }) + " " + hm : hm;
          }) },
          { label: "°C", stroke: ink, grid: { stroke: grid }, ticks: { stroke: grid }, values: (u, vals) => vals.map((v) => v.toFixed(1)) },
        ],
      };
      if (chart) chart.destroy();
      chart = new window.uPlot(opts, series, chartEl);
      // what the chart was drawn with, for the theme test (canvas colours cannot be read)
      chartEl.dataset.ink = ink;
      legendSetpoints(view);
      if (window.ResizeObserver && !resized) {
        resized = new ResizeObserver(() => chart && chart.setSize({ width: Math.max(280, chartEl.clientWidth), height: 300 }));
        resized.observe(chartEl);
      }
    }
    let resized = null;
    // uPlot bakes its colours in when it is made: a theme change (the toggle, or the
    // system's light/dark when no choice is stored; static/theme.js) draws it anew
    document.addEventListener("hydrotherm:theme", () => { if (chart) makeChart(); });

    async function loadHistory() {
      setText(chartStatus, "Loading the last " + range + "…");
      const wanted = range;
      const base = "/api/tables/" + encodeURIComponent(tid) + "/history?range=" + wanted + "&cushion=";
      const [a, b] = await Promise.all([api("GET", base + "0"), api("GET", base + "1")]);
      if (wanted !== range) return;
      if (a.status !== 200 || b.status !== 200) {
        setText(chartStatus, "History unavailable: " + ((a.status !== 200 ? a : b).data.error || "error"));
        return;
      }
      const rows = new Map();
      const add = (samples, off) => {
        for (const s of samples) {
          const t = Math.round(s[0]);
          if (!rows.has(t)) rows.set(t, [null, null, null, null]);
          const r = rows.get(t);
          r[off] = s[1];
          r[off + 1] = s[2];
        }
      };
      add(a.data.samples, 0);
      add(b.data.samples, 2);
      const times = Array.from(rows.keys()).sort((x, y) => x - y);
      series = [times, [], [], [], []];
      for (const t of times) {
        const r = rows.get(t);
        for (let k = 0; k < 4; k++) series[k + 1].push(r[k]);
      }
      if (chart) chart.setData(series);
      setText(chartStatus, times.length ? "" : "No history in this range yet.");
    }

    // the legend names each cushion's current setpoint
    function legendSetpoints(v) {
      if (!chart || !v) return;
      const labels = chartEl.querySelectorAll(".u-legend .u-series .u-label");
      [0, 1].forEach((i) => {
        const c = v.cushions[i];
        const node = labels[2 + 2 * i];
        if (!node) return;
        setText(node, page.cushion_names[i] + " setpoint" + (c && c.setpoint_c !== null ? " " + c.setpoint_text + " °C" : ""));
      });
    }

    function chartAppend(v) {
      legendSetpoints(v);
      if (!chart || !v.time || !v.readings_ok || v.cushions.length < 2) return;
      const t = v.time;
      const xs = series[0];
      if (xs.length && t <= xs[xs.length - 1]) return;
      xs.push(t);
      series[1].push(v.cushions[0].water_c);
      series[2].push(v.cushions[0].setpoint_c);
      series[3].push(v.cushions[1].water_c);
      series[4].push(v.cushions[1].setpoint_c);
      const cutoff = t - RANGE_S[range];
      while (xs.length && xs[0] < cutoff) series.forEach((s) => s.shift());
      chartDirty = true;
    }
    setInterval(() => {
      if (chartDirty && chart) {
        chartDirty = false;
        chart.setData(series);
      }
      renderProblems(document.getElementById("problems"), view ? view.problems : [], staleProblems());
    }, 1000);

    document.querySelectorAll(".ranges [data-range]").forEach((btn) => {
      btn.addEventListener("click", () => {
        range = btn.dataset.range;
        document.querySelectorAll(".ranges [data-range]").forEach((b) =>
          b.setAttribute("aria-pressed", b === btn ? "true" : "false"));
        loadHistory();
      });
    });

    // tester panel (demo only) ---------------------------------------------------------
    const tester = document.getElementById("tester-form");
    if (tester) testerPanel(tester, tid);

    if (view) render(view);
    makeChart();
    loadHistory();
    openStream("/api/tables/" + encodeURIComponent(tid) + "/stream", {
      table: (v) => { lastTable = Date.now(); render(v); },
    });
  }

  // --- the tester panel (demo only) -------------------------------------------------

  function testerPanel(form, tid) {
    const reply = document.getElementById("tester-reply");
    const active = document.getElementById("tester-active");
    const pick = form.elements.fault;
    const labels = {};
    Array.from(pick.options).forEach((o) => { labels[o.value] = o.textContent; });
    const cushions = ["upper body", "lower body"];

    function chosen() { return pick.options[pick.selectedIndex]; }
    function wanted() { return (chosen().dataset.params || "").split(",").filter(Boolean); }
    function showFields() {
      const want = wanted();
      form.querySelectorAll("[data-param]").forEach((el) => {
        el.hidden = !want.includes(el.dataset.param);
      });
      const d = chosen().dataset.default;
      want.forEach((k) => {
        if (d && form.elements[k] && form.elements[k].type === "number") form.elements[k].value = d;
      });
    }
    function params(clear) {
      const out = { table_id: tid };
      wanted().forEach((k) => {
        const el = form.elements[k];
        out[k] = el.type === "number" || k === "cushion" ? Number(el.value) : el.value;
      });
      if (clear) out.clear = true;
      return out;
    }
    function say(ok, text) {
      reply.className = "reply " + (ok ? "ok" : "refused");
      reply.textContent = text;
    }
    function describe(f) {
      const bits = [];
      if (f.cushion !== undefined) bits.push(cushions[f.cushion]);
      if (f.sensor) bits.push(f.sensor + " sensor");
      const words = {
        offset_c: (v) => "reads " + (v > 0 ? "+" : "") + v + " °C off",
        kg_per_min: (v) => v + " kg/min",
        error_rate: (v) => +(100 * v).toPrecision(3) + " % of bytes",
        remaining_s: (v) => v + " simulated s left",
      };
      Object.keys(f).forEach((k) => {
        if (!["fault", "cushion", "sensor"].includes(k)) {
          bits.push(words[k] ? words[k](f[k]) : k + " " + f[k]);
        }
      });
      return (labels[f.fault] || f.fault) + (bits.length ? " (" + bits.join(", ") + ")" : "");
    }
    async function refresh() {
      const r = await api("POST", "/api/demo/fault", { name: "status", params: { table_id: tid } });
      active.textContent = "";
      const faults = r.status === 200 ? r.data.result.tables[0].active_faults : null;
      const items = faults === null ? ["unknown (" + (r.data.error || "no answer") + ")"]
        : faults.length ? faults.map(describe) : ["none"];
      items.forEach((t) => {
        const li = document.createElement("li");
        li.textContent = t;
        active.appendChild(li);
      });
    }
    async function send(name, p, what) {
      const r = await api("POST", "/api/demo/fault", { name: name, params: p });
      say(r.status === 200, r.status === 200 ? what + ": done" : (r.data.error || "Error " + r.status));
      refresh();
    }
    pick.addEventListener("change", showFields);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      send(pick.value, params(false), chosen().textContent);
    });
    form.querySelector("[data-action=clear]").addEventListener("click", () =>
      send(pick.value, params(true), "Cleared: " + chosen().textContent));
    form.querySelectorAll("[data-fault]").forEach((btn) => {
      btn.addEventListener("click", () => send(btn.dataset.fault,
        Object.assign(JSON.parse(btn.dataset.params), { table_id: tid }), btn.textContent));
    });
    showFields();
    refresh();
    setInterval(refresh, 3000);
  }

  // --- the fleet page -----------------------------------------------------------------

  function fleetPage() {
    const list = document.getElementById("fleet");
    const empty = document.getElementById("fleet-empty");

    // the next ready time and when heating starts, per cushion (the same words as the
    // table page's schedule box and the server-rendered card: templates/fleet.html)
    function scheduleList(s) {
      const ul = el("ul", { class: "fleet-schedule", "data-role": "schedule" });
      const planned = s && s.known && s.enabled ? s.cushions.filter((c) => c.scheduled) : [];
      if (!s || !s.known) ul.append(el("li", {}, "Schedule unknown"));
      else if (!s.enabled) ul.append(el("li", {}, "Schedule off"));
      else if (!planned.length) ul.append(el("li", {}, "No ready time scheduled"));
      for (const c of planned) {
        const li = el("li", { "data-cushion": c.cushion, class: c.late ? "late" : null },
          c.name + ": " + c.next_text + (c.start_text ? " · " + c.start_text : ""));
        if (c.late_text) li.append(" · ", el("strong", {}, c.late_text));
        ul.append(li);
      }
      return ul;
    }

    function card(v) {
      const problems = v.problems.filter((p) => p.code !== "broker");
      const dl = el("dl", { class: "fleet-cushions", "data-role": "cushions" });
      for (const c of v.cushions) {
        const dd = el("dd", { "data-state": c.heat_state }, el("span", { class: "state-pill" }, c.action_text), " ",
          el("strong", {}, c.water_text + " °C"), " → " + c.setpoint_text + " °C" +
          (c.blocked.length ? ": " + c.blocked.map((b) => b.text).join("; ") : "") +
          (c.ready_text ? " · " + c.ready_text : ""));
        c.trips.forEach((t) => dd.append(" ", el("span", { class: "trip-tag" }, t.title)));
        c.alarms.forEach((a) => dd.append(" ", el("span", { class: "alarm-tag" }, a.title)));
        dl.append(el("dt", {}, c.name), dd);
      }
      return el("li", { class: "fleet-card status-" + v.status + (v.tripped ? " tripped" : ""), "data-table": v.table_id },
        el("h2", {}, el("a", { href: "/tables/" + encodeURIComponent(v.table_id) }, v.table_id), " ",
          el("span", { class: "badge", "data-role": "status" }, v.status)),
        el("ul", { class: "fleet-problems", "data-role": "problems" },
          ...problems.map((p) => el("li", { class: p.level }, p.text))),
        dl,
        scheduleList(v.schedule),
        el("p", { class: "timer-chip", "data-role": "timer", "data-table": v.table_id, hidden: true }),
        el("p", { class: "updated", "data-role": "updated" }, v.updated_text ? "Last update " + v.updated_text : ""));
    }

    openStream("/api/stream", {
      broker: (b) => {
        renderProblems(document.getElementById("problems"), b.connected ? [] : [{ level: "error", code: "broker",
          text: "Broker unreachable: the dashboard cannot reach the MQTT broker" + (b.error ? " (" + b.error + ")" : "") +
            ". The values shown may be out of date." }]);
      },
      table: (v) => {
        const fresh = card(v);
        const old = list.querySelector('[data-table="' + CSS.escape(v.table_id) + '"]');
        if (old) {
          old.replaceWith(fresh);
        } else {
          const after = Array.from(list.children).find((li) => li.dataset.table > v.table_id);
          list.insertBefore(fresh, after || null);
        }
        empty.hidden = true;
        document.dispatchEvent(new CustomEvent("hydrotherm:fleet-card", { detail: { table_id: v.table_id } }));
      },
    });
  }

  // --- the event log page -------------------------------------------------------------

  function eventsPage() {
    const tbody = document.querySelector("#events tbody");
    const f = page.filters || {};
    const kinds = page.filter_kinds || [];
    // a new event joins the newest page only, and only when it matches the filters
    const wanted = (e) => !f.before && (!kinds.length || kinds.includes(e.kind)) &&
      (f.cushion === null || f.cushion === undefined || e.cushion_index === null || e.cushion_index === f.cushion);
    openStream("/api/tables/" + encodeURIComponent(page.table_id) + "/stream", {
      table: (v) => renderProblems(document.getElementById("problems"), v.problems),
      event: (e) => {
        if (!wanted(e)) return;
        const emptyRow = tbody.querySelector("tr.empty");
        if (emptyRow) emptyRow.remove();
        tbody.prepend(el("tr", { class: "ev-" + e.level + " fresh", "data-kind": e.kind },
          el("td", { "data-label": "Time" }, e.time_text), el("td", { "data-label": "Cushion" }, e.cushion),
          el("td", { "data-label": "What" }, e.text), el("td", { "data-label": "Who" }, e.who)));
      },
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (page.page === "table") tablePage();
    else if (page.page === "fleet") fleetPage();
    else if (page.page === "events") eventsPage();
  });
})();
