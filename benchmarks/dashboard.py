"""Benchmarks for issue 5: the dashboard's live path, its load, and the page's weight.

Prints figures; asserts nothing about speed.  Run: ``python -m benchmarks.dashboard
[--json OUT] [--seconds 40] [--clients 50]`` (about a minute and a half).

Set-up: this process runs the embedded broker, a simulated board on a pty, the real
controller and its MQTT bridge (publishing a changed state at most every 0.1 s and at
least every 0.5 s).  The dashboard runs in a *separate* process (waitress, as served),
so its CPU time and resident memory can be read from /proc without the rest mixed in.

Method:

* **Latency, board reading -> browser.**  Each ``state`` message carries ``time``: the
  controller's wall clock when it built the snapshot that holds its newest board reading
  (that reading is at most one telemetry period, 0.2 s, older still).  A real headless
  Chromium (Playwright, Debian's chromium) opens the table page with a wrapper around
  ``EventSource`` installed before the page's own script; the wrapper records
  ``Date.now()`` as the page's ``table`` handler is called.  Latency = that moment minus
  ``time`` (same machine, same wall clock): MQTT broker -> FleetClient -> per-browser
  queue -> SSE over HTTP -> the page's handler.  The same is measured in Python by every
  load client.
* **50 live clients.**  Python clients hold ``/api/tables/table0/stream`` open at once
  (each a logged-in session).  Every ``table`` event carries ``updates``, the FleetClient's
  count of state messages: a client missed an update iff its sequence has a gap.  The
  bridge's own count of states published in the window is the reference.
* **CPU and memory.**  The dashboard process's utime+stime and VmRSS from /proc, idle
  (broker connected, no browser) and under the load.
* **Page weight.**  Bytes of the table page's HTML, CSS and JavaScript (uPlot included)
  as served, and gzipped for reference (waitress itself does not compress).
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

from benchmarks.stats import percentile
from controller.mqtt.broker import free_port
from dashboard.auth import UserStore
from hydrotherm.app.stack import LocalStack
from hydrotherm.config import from_mapping

PASSWORD = "benchmark password"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
CFG = {"plant": {"initial_water_c": 33.0},
       "mqtt": {"state_interval_s": 0.5, "min_interval_s": 0.1}}

# Installed before the page's script: records when the page's `table` handler runs.
EVENTSOURCE_PROBE = """
(() => {
  window.__lat = [];
  const add = EventSource.prototype.addEventListener;
  EventSource.prototype.addEventListener = function (type, fn, opts) {
    if (type !== "table") return add.call(this, type, fn, opts);
    return add.call(this, type, (ev) => {
      try {
        const v = JSON.parse(ev.data);
        window.__lat.push([Date.now() / 1000, v.time, v.updates]);
      } catch (e) { /* not ours */ }
      return fn(ev);
    }, opts);
  };
})();
"""


# --- the dashboard process ----------------------------------------------------------------

def serve_child(broker_url: str, port: int, data_dir: str) -> None:
    """Entry point of the dashboard process (``--serve``)."""
    from dashboard.server import serve

    cfg = from_mapping(CFG)
    sys.exit(serve(cfg, broker_url=broker_url, host="127.0.0.1", port=port,
                   data_dir=data_dir))


def proc_usage(pid: int) -> tuple[float, int]:
    """(CPU seconds used so far, resident memory in bytes) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    return cpu, rss


def wait_http(url: str, timeout_s: float = 20.0) -> None:
    end = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > end:
            raise RuntimeError(f"{url} did not come up")
        time.sleep(0.2)


def login_cookie(base: str) -> str:
    """Log in through the form; return the session cookie as a Cookie header value."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(base + "/login", timeout=5) as resp:
        token = re.search(r'name="csrf_token" value="([^"]+)"', resp.read().decode()).group(1)
    data = urllib.parse.urlencode({"username": "therapist", "password": PASSWORD,
                                   "csrf_token": token}).encode()
    with opener.open(base + "/login", data=data, timeout=10) as resp:
        resp.read()
    return "; ".join(f"{c.name}={c.value}" for c in jar)


# --- load clients -------------------------------------------------------------------------

class StreamClient(threading.Thread):
    """One live client: reads ``table`` events, keeps (receipt time, state time, updates)."""

    def __init__(self, host: str, port: int, cookie: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.host, self.port, self.cookie, self.stop_event = host, port, cookie, stop
        self.samples: list[tuple[float, float | None, int]] = []
        self.error = ""
        self.connected = threading.Event()

    def run(self) -> None:
        try:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            conn.request("GET", "/api/tables/table0/stream",
                         headers={"Cookie": self.cookie, "Accept": "text/event-stream"})
            resp = conn.getresponse()
            if resp.status != 200:
                self.error = f"HTTP {resp.status}"
                return
            self.connected.set()
            event = ""
            while not self.stop_event.is_set():
                line = resp.readline()
                if not line:
                    self.error = "stream ended"
                    return
                text = line.decode().rstrip("\n")
                if text.startswith("event: "):
                    event = text[7:]
                elif text.startswith("data: ") and event == "table":
                    now = time.time()
                    view = json.loads(text[6:])
                    self.samples.append((now, view.get("time"), int(view.get("updates", 0))))
            conn.close()
        except Exception as exc:  # noqa: BLE001 - reported in the figures
            self.error = f"{type(exc).__name__}: {exc}"


def latencies(samples: list[tuple[float, float | None, int]]) -> list[float]:
    """Receipt minus state time for live messages (the first, a snapshot, is skipped;
    repeats of one state from status/readings messages count once)."""
    out = []
    seen: set[int] = set()
    for i, (got, made, updates) in enumerate(samples):
        if i == 0 or made is None or updates in seen:
            seen.add(updates)
            continue
        seen.add(updates)
        out.append(got - made)
    return out


def gaps(samples: list[tuple[float, float | None, int]]) -> tuple[int, int]:
    """(distinct states seen, states missing between the first and the last seen)."""
    seq = sorted({u for _, _, u in samples})
    if not seq:
        return 0, 0
    return len(seq), (seq[-1] - seq[0] + 1) - len(seq)


# --- page weight --------------------------------------------------------------------------

def page_weight(base: str, cookie: str) -> dict[str, Any]:
    def get(path: str) -> bytes:
        req = urllib.request.Request(base + path, headers={"Cookie": cookie})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.read()

    html = get("/tables/table0")
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', html.decode())
    parts = {"/tables/table0": html, **{a: get(a) for a in assets}}
    total = sum(len(b) for b in parts.values())
    return {"files": {k: len(v) for k, v in parts.items()}, "bytes": total,
            "gzip_bytes": sum(len(gzip.compress(b)) for b in parts.values())}


# --- the browser --------------------------------------------------------------------------

def browser_latency(base: str, seconds: float, ready: threading.Event,
                    result: dict[str, Any]) -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        result["error"] = "playwright is not installed (PyPI 'playwright')"
        ready.set()
        return
    if not Path(CHROMIUM).exists():
        result["error"] = "no /usr/bin/chromium (Debian's 'chromium' package)"
        ready.set()
        return
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.add_init_script(EVENTSOURCE_PROBE)
            page.goto(base + "/login")
            page.fill("#username", "therapist")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(re.compile(r"/tables/table0$"))
            page.wait_for_selector("#live-status.ok")
            page.evaluate("() => { window.__lat = []; }")
            ready.set()
            time.sleep(seconds)
            result["samples"] = page.evaluate("() => window.__lat")
            browser.close()
    except Exception as exc:  # noqa: BLE001 - reported in the figures
        result["error"] = f"{type(exc).__name__}: {exc}"
        ready.set()


# --- the run ------------------------------------------------------------------------------

def run(seconds: float = 40.0, n_clients: int = 50) -> dict[str, Any]:
    cfg = from_mapping(CFG)
    out: dict[str, Any] = {"seconds": seconds, "clients": n_clients}
    with tempfile.TemporaryDirectory() as tmp, LocalStack(cfg, Path(tmp) / "stack") as stack:
        data = Path(tmp) / "dash"
        UserStore(data / "users.toml").set_password("therapist", PASSWORD)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        child = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.dashboard", "--serve", stack.broker_url,
             str(port), str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_http(base + "/healthz")
            time.sleep(2.0)
            cpu0, rss_idle = proc_usage(child.pid)
            time.sleep(5.0)
            cpu1, _ = proc_usage(child.pid)
            out["idle_cpu_pct"] = 100 * (cpu1 - cpu0) / 5.0
            out["idle_rss_mb"] = rss_idle / 2**20

            cookies = [login_cookie(base) for _ in range(n_clients)]
            out["page_weight"] = page_weight(base, cookies[0])

            stop = threading.Event()
            clients = [StreamClient("127.0.0.1", port, c, stop) for c in cookies]
            for c in clients:
                c.start()
            for c in clients:
                c.connected.wait(10)
            browser: dict[str, Any] = {}
            ready = threading.Event()
            bt = threading.Thread(target=browser_latency, args=(base, seconds, ready, browser),
                                  daemon=True)
            bt.start()
            ready.wait(60)
            published0 = stack.bridge.counters["state_published"]
            cpu_a, _ = proc_usage(child.pid)
            t_a = time.monotonic()
            rss_peak = 0
            while bt.is_alive() and time.monotonic() - t_a < seconds + 30:
                rss_peak = max(rss_peak, proc_usage(child.pid)[1])
                bt.join(1.0)
            cpu_b, rss_load = proc_usage(child.pid)
            wall = time.monotonic() - t_a
            published = stack.bridge.counters["state_published"] - published0
            stop.set()
            out["load_cpu_pct"] = 100 * (cpu_b - cpu_a) / wall
            out["load_rss_mb"] = max(rss_peak, rss_load) / 2**20
            out["states_published"] = published
            out["window_s"] = wall

            lat_py: list[float] = []
            seen, missing, errors = [], 0, []
            for c in clients:
                if c.error and not c.samples:
                    errors.append(c.error)
                lat_py.extend(latencies(c.samples))
                n, miss = gaps(c.samples)
                seen.append(n)
                missing += miss
            out["python_clients"] = {
                "connected": sum(1 for c in clients if c.samples), "errors": errors[:3],
                "states_seen_min": min(seen) if seen else 0,
                "states_seen_max": max(seen) if seen else 0,
                "missed_updates": missing, "samples": len(lat_py),
                "latency_p50_ms": 1000 * percentile(lat_py, 50),
                "latency_p99_ms": 1000 * percentile(lat_py, 99)}
            if "samples" in browser:
                lat_b = latencies([(a, b, int(c or 0)) for a, b, c in browser["samples"]])
                out["browser"] = {"samples": len(lat_b),
                                  "latency_p50_ms": 1000 * percentile(lat_b, 50),
                                  "latency_p99_ms": 1000 * percentile(lat_b, 99),
                                  "latency_max_ms": 1000 * max(lat_b) if lat_b else None}
            else:
                out["browser"] = {"error": browser.get("error", "no samples")}
            with urllib.request.urlopen(base + "/metrics", timeout=5) as resp:
                metrics = resp.read().decode()
            m = re.search(r"^hydrotherm_dashboard_sse_dropped_messages_total (\S+)$", metrics,
                          re.M)
            out["sse_dropped"] = float(m.group(1)) if m else None
        finally:
            child.terminate()
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--seconds", type=float, default=40.0, help="length of the loaded window")
    ap.add_argument("--clients", type=int, default=50, help="concurrent live clients")
    ap.add_argument("--serve", nargs=3, metavar=("BROKER", "PORT", "DATA_DIR"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve_child(args.serve[0], int(args.serve[1]), args.serve[2])
        return
    res = run(args.seconds, args.clients)
    pw, py, br = res["page_weight"], res["python_clients"], res["browser"]
    print(f"page weight (HTML+CSS+JS, uPlot incl.) {pw['bytes'] / 1024:8.1f} KiB "
          f"({pw['gzip_bytes'] / 1024:.1f} KiB gzipped, {len(pw['files'])} files)")
    if "error" in br:
        print(f"browser latency                        not measured: {br['error']}")
    else:
        print(f"latency state -> browser handler       p50 {br['latency_p50_ms']:.1f} ms, "
              f"p99 {br['latency_p99_ms']:.1f} ms, max {br['latency_max_ms']:.1f} ms "
              f"({br['samples']} updates, with {res['clients']} other clients live)")
    print(f"latency state -> Python SSE clients    p50 {py['latency_p50_ms']:.1f} ms, "
          f"p99 {py['latency_p99_ms']:.1f} ms ({py['samples']} deliveries)")
    print(f"{res['clients']} live clients for {res['window_s']:.0f} s          "
          f"{py['connected']} connected, states published {res['states_published']}, "
          f"seen per client {py['states_seen_min']}–{py['states_seen_max']}, "
          f"missed {py['missed_updates']}, dropped by the server {res['sse_dropped']:.0f}"
          + (f", errors {py['errors']}" if py["errors"] else ""))
    print(f"dashboard process CPU                  idle {res['idle_cpu_pct']:.1f} %, "
          f"with the clients {res['load_cpu_pct']:.1f} % of one core")
    print(f"dashboard process memory (RSS)         idle {res['idle_rss_mb']:.1f} MiB, "
          f"with the clients {res['load_rss_mb']:.1f} MiB")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
