"""The real dashboard beside the fleet benchmark (issue 12 part 7): its process's CPU and
the fleet page's update latency with every table of the fleet live.

``FleetDashboard`` starts the dashboard as served (``dashboard.server.serve`` in a process
of its own, logged in to the broker as the ``dashboard`` account), and a real headless
Chromium (Playwright, Debian's chromium) on ``/fleet`` with the probe from
``benchmarks.dashboard`` installed before the page's script: it notes ``Date.now()`` as
the page's ``table`` handler is called for a card.  Latency = that moment minus the
state's ``time`` (the controller's wall clock when it built the snapshot; one machine,
one clock): controller -> Mosquitto -> the dashboard's FleetClient -> SSE -> the page.
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.dashboard import (
    CHROMIUM,
    CHROMIUM_ARGS,
    EVENTSOURCE_PROBE,
    PASSWORD,
    login_cookie,
    proc_usage,
    wait_http,
)
from controller.mqtt.broker import free_port
from dashboard.auth import UserStore


class StreamReader(threading.Thread):
    """A Python client of ``/api/stream`` (what the fleet page reads), noting when each
    ``table`` event arrives: the dashboard's part of the latency without the browser's."""

    def __init__(self, port: int, cookie: str) -> None:
        super().__init__(daemon=True)
        self.port, self.cookie = port, cookie
        self.samples: list[tuple[float, float | None]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            conn.request("GET", "/api/stream", headers={"Cookie": self.cookie,
                                                         "Accept": "text/event-stream"})
            resp = conn.getresponse()
            event = ""
            while not self.stop_event.is_set():
                line = resp.readline()
                if not line:
                    return
                text = line.decode().rstrip("\n")
                if text.startswith("event: "):
                    event = text[7:]
                elif text.startswith("data: ") and event == "table":
                    self.samples.append((time.time(), json.loads(text[6:]).get("time")))
        except Exception:  # noqa: BLE001 - fewer samples, shown as such
            return


class FleetDashboard:
    """The dashboard process and a browser on its fleet page, until ``stop``."""

    def __init__(self, broker_url: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="htfd"))
        UserStore(self.dir / "users.toml").set_password("therapist", PASSWORD)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.dashboard", "--serve", broker_url,
             str(self.port), str(self.dir)], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        wait_http(self.base + "/healthz")
        self.ready = threading.Event()
        self._stop = threading.Event()
        self.samples: list[list[float]] = []
        self.error = ""
        self._thread = threading.Thread(target=self._browse, daemon=True)
        self._thread.start()
        self.reader = StreamReader(self.port, login_cookie(self.base))
        self.reader.start()
        self._cpu0 = 0.0
        self._t0 = 0.0

    def _browse(self) -> None:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            self.error = "playwright is not installed (PyPI 'playwright')"
            self.ready.set()
            return
        if not Path(CHROMIUM).exists():
            self.error = "no /usr/bin/chromium (Debian's 'chromium' package)"
            self.ready.set()
            return
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page()
                page.add_init_script(EVENTSOURCE_PROBE)
                page.goto(self.base + "/login")
                page.fill("#username", "therapist")
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_load_state()
                page.goto(self.base + "/fleet")
                page.wait_for_selector("#live-status.ok", timeout=30000)
                self.ready.set()
                self._stop.wait(600)
                self.samples = page.evaluate("() => window.__lat")
                browser.close()
        except Exception as exc:  # noqa: BLE001 - reported in the figures
            self.error = f"{type(exc).__name__}: {exc}"
            self.ready.set()

    def begin(self) -> None:
        """Start of the measured window."""
        self._t0 = time.monotonic()
        self._wall0 = time.time()
        self._cpu0 = proc_usage(self.proc.pid)[0]

    def end(self) -> dict[str, Any]:
        """End of the window: the dashboard's CPU, its memory, the page's latencies."""
        dt = time.monotonic() - self._t0
        cpu, rss = proc_usage(self.proc.pid)
        wall1 = time.time()
        self._stop.set()
        self._thread.join(60)
        lat = [got - made for got, made, _ in self.samples
               if made is not None and self._wall0 <= got <= wall1]
        cards = len({(made, n) for got, made, n in self.samples
                     if self._wall0 <= got <= wall1})
        self.reader.stop_event.set()
        sse_lat = [got - made for got, made in list(self.reader.samples)
                   if made is not None and self._wall0 <= got <= wall1]
        return {"cpu_pct": 100 * (cpu - self._cpu0) / dt, "rss_mb": rss / 2**20,
                "sse_latency_ms": [1000 * x for x in sse_lat],
                "page_error": self.error, "page_updates": len(lat), "page_states": cards,
                "page_latency_ms": [1000 * x for x in lat]}

    def stop(self) -> None:
        self._stop.set()
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

