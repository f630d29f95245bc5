/* Trip alerts on every page: a banner for every latched trip of any table, and, until a
 * person acknowledges it, a beep (Web Audio: no sound file), a blinking tab title and a
 * browser notification if this device allows them.  The acknowledgement is sent to the
 * server, which logs who acknowledged which trip (dashboard/alerts.py). */
(function () {
  "use strict";
  const banner = document.getElementById("alert-banner");
  if (!banner) return;
  const POLL_MS = 3000;
  const BEEP_EVERY_MS = 2000;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  const summary = banner.querySelector('[data-role="alert-summary"]');
  const list = banner.querySelector('[data-role="alert-list"]');
  const note = banner.querySelector('[data-role="alert-note"]');
  const ackBtn = document.getElementById("alert-ack");
  const notifyBtn = document.getElementById("alert-notify");
  const baseTitle = document.title;
  const notified = new Set();
  let alerts = [];
  let audio = null;
  let beepTimer = null;
  let blinkTimer = null;
  // for tests and curious people: what the alarm is doing
  const state = window.__hydrothermAlarm = { ringing: false, beeps: 0, audio: "not started" };

  function audioContext() {
    if (audio) return audio;
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) { state.audio = "unsupported"; return null; }
    try { audio = new Ctx(); } catch (e) { state.audio = "failed"; return null; }
    return audio;
  }
  // browsers start audio only after a gesture: unlock it at the first touch or key
  const unlock = () => { const a = audioContext(); if (a && a.state === "suspended") a.resume(); };
  window.addEventListener("pointerdown", unlock, { once: true, capture: true });
  window.addEventListener("keydown", unlock, { once: true, capture: true });

  function beep() {
    const a = audioContext();
    if (!a) return;
    if (a.state === "suspended") a.resume();
    state.audio = a.state;
    const t = a.currentTime;
    // two short tones, loud enough to be heard across a treatment room
    [0, 0.3].forEach((off, k) => {
      const osc = a.createOscillator();
      const gain = a.createGain();
      osc.type = "square";
      osc.frequency.value = k ? 660 : 880;
      gain.gain.setValueAtTime(0.0001, t + off);
      gain.gain.exponentialRampToValueAtTime(0.25, t + off + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + off + 0.25);
      osc.connect(gain).connect(a.destination);
      osc.start(t + off);
      osc.stop(t + off + 0.27);
    });
    state.beeps += 1;
  }

  function ring(on) {
    if (on === state.ringing) return;
    state.ringing = on;
    document.body.classList.toggle("alarm-ringing", on);
    if (on) {
      beep();
      beepTimer = setInterval(beep, BEEP_EVERY_MS);
      let flip = false;
      blinkTimer = setInterval(() => {
        flip = !flip;
        document.title = flip ? "⚠ SAFETY TRIP ⚠" : baseTitle;
      }, 1000);
    } else {
      clearInterval(beepTimer);
      clearInterval(blinkTimer);
      document.title = baseTitle;
    }
  }

  function notify(a) {
    if (notified.has(a.key)) return;
    notified.add(a.key);
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    try {
      const n = new Notification("Safety trip: " + a.table_id, { body: a.text, tag: a.key, requireInteraction: true });
      // a click brings this tab to the front, where the banner and the acknowledgement are
      n.onclick = () => { window.focus(); n.close(); };
    } catch (e) { /* some browsers allow notifications only from a service worker */ }
  }

  function render() {
    const key = JSON.stringify(alerts);
    if (banner.dataset.key === key) return;
    banner.dataset.key = key;
    banner.hidden = alerts.length === 0;
    document.body.classList.toggle("has-alert", alerts.length > 0);
    const open = alerts.filter((a) => !a.acknowledged);
    const tables = new Set(alerts.map((a) => a.table_id));
    summary.textContent = alerts.length === 0 ? "" :
      "Safety trip on " + (tables.size === 1 ? "table " + [...tables][0] : tables.size + " tables") +
      (open.length ? ": heating stopped" : " (alarm acknowledged)");
    list.replaceChildren(...alerts.map((a) => {
      const li = document.createElement("li");
      li.dataset.key = a.key;
      const link = document.createElement("a");
      link.href = "/tables/" + encodeURIComponent(a.table_id);
      link.textContent = "Table " + a.table_id;
      li.append(link, " — " + a.text);
      if (a.acknowledged) li.append(" · acknowledged by " + a.acknowledged_by);
      return li;
    }));
    ackBtn.hidden = open.length === 0;
    banner.classList.toggle("acknowledged", open.length === 0);
    if (notifyBtn) {
      notifyBtn.hidden = !("Notification" in window) || Notification.permission !== "default";
    }
  }

  async function poll() {
    let data = null;
    try {
      const r = await fetch("/api/alerts", { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (r.ok) data = await r.json();
    } catch (e) { data = null; }
    if (data && Array.isArray(data.alerts)) {
      alerts = data.alerts;
      alerts.filter((a) => !a.acknowledged).forEach(notify);
      render();
      ring(alerts.some((a) => !a.acknowledged));
    }
  }

  ackBtn.addEventListener("click", async () => {
    unlock();
    ring(false);
    const open = alerts.filter((a) => !a.acknowledged);
    const failed = [];
    for (const a of open) {
      try {
        const r = await fetch("/api/alerts/ack", {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
          body: JSON.stringify({ key: a.key }),
        });
        if (!r.ok && r.status !== 404) failed.push(a.text);
      } catch (e) { failed.push(a.text); }
    }
    note.textContent = failed.length ? "The acknowledgement could not be saved: " + failed.join("; ") :
      "Alarm acknowledged. The trip stays until it is reset at the table.";
    poll();
  });
  if (notifyBtn) {
    notifyBtn.addEventListener("click", async () => {
      try { await Notification.requestPermission(); } catch (e) { /* refused */ }
      banner.dataset.key = "";
      render();
    });
  }

  poll();
  setInterval(poll, POLL_MS);
})();
