"""Slow clients against the dashboard's server, before and after issue 12's limits.

Prints figures; asserts nothing.  Run: ``python -m benchmarks.slowloris [--clients 150]
[--seconds 15]`` (about half a minute).

Set-up: a minimal Flask app with ``/healthz`` (no broker needed: the point is the HTTP
server), served by waitress on loopback twice:

* **before**: the settings the dashboard had (``connection_limit = max(100, 2 *
  threads)``, ``channel_timeout = 120``, no per-address cap, no request deadline);
* **after**: ``DashboardServer``'s (``dashboard.connection_limit``,
  ``channel_timeout_s``, ``connections_per_address``, ``request_timeout_s`` from the
  default configuration, through ``limits.GuardedChannel``).

Each time ``--clients`` connections open from distinct loopback addresses (127.0.x.y,
so the per-address cap does not help: the harder case), each sends the start of a
request and then one header byte per connection every 0.5 s for ``--seconds``.
Meanwhile ``/healthz`` is asked once every 0.2 s from 127.0.0.1 with a 3 s timeout;
the figures are how many of those probes answered and their slowest time, and how
many slow connections the server had closed by the end.
"""

from __future__ import annotations

import argparse
import http.client
import socket
import threading
import time
from dataclasses import replace
from typing import Any

from flask import Flask, jsonify
from waitress import create_server

from dashboard.limits import ConnectionGuard, guarded_channel
from hydrotherm.config import Config

THREADS = 64  # dashboard.threads' default


def health_app() -> Flask:
    app = Flask("slowloris-bench")

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok")
    return app


def make_server(after: bool) -> tuple[Any, ConnectionGuard | None]:
    d = Config().dashboard
    if not after:
        return create_server(health_app(), host="127.0.0.1", port=0, threads=THREADS,
                             channel_timeout=120, connection_limit=max(100, 2 * THREADS),
                             clear_untrusted_proxy_headers=True), None
    d = replace(d, threads=THREADS)
    guard = ConnectionGuard(d.connections_per_address, d.request_timeout_s)
    server = create_server(health_app(), host="127.0.0.1", port=0, threads=THREADS,
                           channel_timeout=d.channel_timeout_s,
                           connection_limit=d.connection_limit,
                           clear_untrusted_proxy_headers=False)
    server.channel_class = guarded_channel(guard)
    return server, guard


def probe(port: int) -> float | None:
    t0 = time.monotonic()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
        conn.request("GET", "/healthz")
        ok = conn.getresponse().status == 200
        conn.close()
    except OSError:
        return None
    return time.monotonic() - t0 if ok else None


def attack(port: int, clients: int, seconds: float) -> dict[str, Any]:
    socks = []
    for i in range(clients):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(3)
        s.bind((f"127.0.{1 + i // 200}.{1 + i % 200}", 0))
        try:
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        except OSError:
            pass
        socks.append(s)
    stop = threading.Event()

    def drip() -> None:
        while not stop.wait(0.5):
            for s in socks:
                try:
                    s.send(b"X")
                except OSError:
                    pass
    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    answered: list[float] = []
    asked = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        asked += 1
        t = probe(port)
        if t is not None:
            answered.append(t)
        time.sleep(0.2)
    stop.set()
    dripper.join(2)
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            while s.recv(4096):
                pass
            closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    return {"asked": asked, "answered": len(answered),
            "slowest_ms": round(1000 * max(answered), 1) if answered else None,
            "closed_by_server": closed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=150)
    ap.add_argument("--seconds", type=float, default=15.0)
    args = ap.parse_args()
    for label, after in (("before", False), ("after", True)):
        server, _ = make_server(after)
        t = threading.Thread(target=server.run, daemon=True)
        t.start()
        result = attack(int(server.effective_port), args.clients, args.seconds)
        server.task_dispatcher.shutdown(timeout=2)
        server.close()
        print(f"{label:>6}: {args.clients} slow clients for {args.seconds:g} s: /healthz "
              f"answered {result['answered']} of {result['asked']} (slowest "
              f"{result['slowest_ms']} ms); slow connections closed by the server: "
              f"{result['closed_by_server']} of {args.clients}", flush=True)


if __name__ == "__main__":
    main()
