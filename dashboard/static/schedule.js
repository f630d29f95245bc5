/* The ready-by schedule box of the table page: the plan per cushion, kept live from the
 * page's own stream (app.js dispatches "hydrotherm:table" with each presented view), and
 * a simple editor that PUTs the whole schedule to /api/tables/<id>/schedule.  The words
 * come from the server (dashboard/schedule_view.py); the server and the controller
 * validate every entry and say why one is refused. */
(function () {
  "use strict";
  const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
  const box = document.getElementById("schedule");
  if (!box) return;
  const dataEl = document.getElementById("page-data");
  const page = dataEl ? JSON.parse(dataEl.textContent) : {};
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  const rows = document.getElementById("schedule-rows");
  const reply = document.getElementById("schedule-reply");
  const form = document.getElementById("schedule-form");

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function renderPlan(s) {
    const note = box.querySelector('[data-role="schedule-note"]');
    if (note.textContent !== s.text) note.textContent = s.text;
    const list = box.querySelector('[data-role="schedule-plan"]');
    const key = JSON.stringify(s.cushions);
    if (list.dataset.key === key) return;
    list.dataset.key = key;
    list.replaceChildren(...s.cushions.map((c) => {
      const li = el("li", { "data-cushion": c.cushion, class: c.late ? "late" : null },
        el("strong", {}, c.name + ":"), " ", el("span", { "data-role": "schedule-next" }, c.next_text));
      if (c.start_text) li.append(" · ", el("span", { "data-role": "schedule-start" }, c.start_text));
      if (c.late_text) li.append(" ", el("span", { class: "late-text", "data-role": "schedule-late", role: "alert" }, c.late_text));
      li.append(el("br"), el("span", { class: "why", "data-role": "schedule-why" }, c.why));
      return li;
    }));
  }

  function row(e) {
    e = e || { days: DAYS.slice(0, 5), ready_at: "08:45", setpoint_c: 37.0, cushion: null };
    const tr = el("tr", { class: "sched-row" });
    const days = el("td", { class: "days" });
    for (const d of DAYS) {
      days.append(el("label", {}, el("input", { type: "checkbox", value: d, checked: (e.days || DAYS).includes(d) }), d));
    }
    const sel = el("select", { name: "cushion", "aria-label": "Cushion" },
      el("option", { value: "", selected: e.cushion === null || e.cushion === undefined }, "Both"),
      el("option", { value: "0", selected: e.cushion === 0 }, "Upper body"),
      el("option", { value: "1", selected: e.cushion === 1 }, "Lower body"));
    const remove = el("button", { type: "button", class: "remove", "aria-label": "Remove this ready time" }, "Remove");
    remove.addEventListener("click", () => tr.remove());
    tr.append(days,
      el("td", {}, el("input", { type: "time", name: "ready_at", value: e.ready_at, required: true, "aria-label": "Ready at" })),
      el("td", {}, el("input", { type: "number", name: "setpoint_c", value: e.setpoint_c, step: page.setpoint_step || 0.1,
        min: page.setpoint_min, max: page.setpoint_max, "aria-label": "Setpoint °C" })),
      el("td", {}, sel),
      el("td", {}, el("input", { type: "time", name: "until", value: e.until || "", "aria-label": "Until (optional)" })),
      el("td", {}, el("input", { type: "number", name: "standby_c", value: e.standby_c === null || e.standby_c === undefined ? "" : e.standby_c,
        step: page.setpoint_step || 0.1, "aria-label": "Standby °C (optional; empty: heat off)" })),
      el("td", {}, remove));
    rows.append(tr);
  }

  function collect() {
    const entries = [];
    for (const tr of rows.querySelectorAll("tr.sched-row")) {
      const get = (n) => tr.querySelector('[name="' + n + '"]').value.trim();
      const e = {
        days: Array.from(tr.querySelectorAll(".days input:checked")).map((x) => x.value),
        ready_at: get("ready_at"),
        setpoint_c: get("setpoint_c") === "" ? null : Number(get("setpoint_c").replace(",", ".")),
      };
      const c = get("cushion");
      if (c !== "") e.cushion = Number(c);
      if (get("until")) {
        e.until = get("until");
        if (get("standby_c")) e.standby_c = Number(get("standby_c").replace(",", "."));
      }
      entries.push(e);
    }
    return { enabled: form.querySelector('[name="enabled"]').checked, entries };
  }

  let initial = [];
  try { initial = JSON.parse(rows.dataset.entries || "[]"); } catch (e) { initial = []; }
  initial.forEach(row);
  document.getElementById("schedule-add").addEventListener("click", () => row(null));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    reply.className = "reply busy";
    reply.textContent = "Saving the schedule…";
    let resp, data;
    try {
      resp = await fetch("/api/tables/" + encodeURIComponent(page.table_id) + "/schedule", {
        method: "PUT", credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify(collect()),
      });
      data = await resp.json();
    } catch (e) {
      reply.className = "reply refused";
      reply.textContent = "The dashboard server cannot be reached.";
      return;
    }
    reply.className = "reply " + (resp.status === 200 ? "ok" : "refused");
    reply.textContent = data.message || data.error || ("Error " + resp.status);
  });
  document.addEventListener("hydrotherm:table", (ev) => { if (ev.detail && ev.detail.schedule) renderPlan(ev.detail.schedule); });
})();
