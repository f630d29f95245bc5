"""Serving the dashboard with waitress (a production WSGI server, not Flask's own).

Each open live page holds one waitress thread for as long as it stays open, so
``threads`` comes from ``dashboard.threads`` and the app caps live streams below it.
waitress's ``channel_timeout`` closes connections idle *between* requests (a live stream
is a request in progress, never cut by it) and ``connection_limit`` bounds them all;
``limits.py`` adds a cap per address and a deadline for each request to arrive, so slow
clients cannot exhaust the server.  Request headers and bodies are bounded too.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from flask import Flask
from waitress import create_server, wasyncore
from waitress.server import BaseWSGIServer, MultiSocketServer

from controller.mqtt.client import BrokerAddress, parse_broker_url
from controller.mqtt.fleet import FleetClient
from hydrotherm.config import Config, DashboardConfig, parse_networks

from .app import create_app
from .auth import UserStore, ensure_first_user, load_secret_key
from .context import DemoActions
from .limits import ConnectionGuard, guarded_channel

#: request headers and bodies waitress accepts (the app's own body limit is 16 KiB)
MAX_HEADER_BYTES = 32 * 1024
MAX_BODY_BYTES = 64 * 1024


class DashboardServer:
    """waitress around one app, in a thread: ``start()``, ``url``, ``stop()``."""

    def __init__(self, app: Flask, host: str, port: int, threads: int,
                 limits: DashboardConfig | None = None) -> None:
        """``limits``: the connection settings (default: the app's ``[dashboard]``)."""
        self.app = app
        d = limits or app.extensions["hydrotherm"].cfg.dashboard
        self.guard = ConnectionGuard(d.connections_per_address, d.request_timeout_s,
                                     exempt=parse_networks(d.trusted_proxies))
        # Forwarded headers are judged by the app (proxy.TrustedProxyFix), not waitress.
        self.server: BaseWSGIServer | MultiSocketServer = create_server(
            app, host=host, port=port, threads=threads, channel_timeout=d.channel_timeout_s,
            connection_limit=max(d.connection_limit, threads + 1),
            max_request_header_size=MAX_HEADER_BYTES, max_request_body_size=MAX_BODY_BYTES,
            ident="hydrotherm-dashboard", clear_untrusted_proxy_headers=False)
        channel = guarded_channel(self.guard)
        listeners = getattr(self.server, "map", None)
        servers = [s for s in listeners.values() if isinstance(s, BaseWSGIServer)] \
            if listeners is not None and not isinstance(self.server, BaseWSGIServer) \
            else [self.server]
        for srv in servers:
            srv.channel_class = channel  # type: ignore[union-attr]
        dash = app.extensions.get("hydrotherm")
        if dash is not None:
            dash.metrics.watch_connections(self.guard)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(getattr(self.server, "effective_host", "127.0.0.1"))

    @property
    def port(self) -> int:
        return int(getattr(self.server, "effective_port", 0))

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> DashboardServer:
        self._thread = threading.Thread(target=self.server.run, name="dashboard-http",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """End the live streams, finish the requests in flight, close every socket."""
        dash = self.app.extensions.get("hydrotherm")
        if dash is not None:
            dash.close()
        self.server.task_dispatcher.shutdown(timeout=timeout_s)
        server_map = getattr(self.server, "map", None) or getattr(self.server, "_map", {})
        if self._thread is None or not self._thread.is_alive():
            wasyncore.close_all(server_map, ignore_all=True)
            return
        # Close every socket from inside the server's own loop (its trigger runs thunks
        # there), so the loop never polls a socket closed under it; an empty map ends it.
        trigger = getattr(self.server, "trigger", None)
        if trigger is not None:
            trigger.pull_trigger(lambda: wasyncore.close_all(server_map, ignore_all=True))
        else:  # several listening sockets: no single trigger
            wasyncore.close_all(server_map, ignore_all=True)
        self._thread.join(timeout_s)


def default_broker_url(cfg: Config) -> str:
    """The configured broker, else the embedded one a local controller starts."""
    if cfg.mqtt.broker:
        return cfg.mqtt.broker
    host = cfg.mqtt.embedded_host
    host = f"[{host}]" if ":" in host else host
    return f"mqtt://{host}:{cfg.mqtt.embedded_port}"


def dashboard_address(cfg: Config, url: str, directory: Path) -> BrokerAddress:
    """The broker as the ``dashboard`` account: credentials from the URL or the environment
    if given, else from this installation's MQTT accounts file (controller.mqtt.accounts)."""
    from controller.mqtt.accounts import DASHBOARD, credentials_store

    address = parse_broker_url(url)
    if address.username:
        return address
    password = credentials_store(cfg.mqtt, directory).load().get(DASHBOARD)
    return replace(address, username=DASHBOARD, password=password) if password else address


def serve(cfg: Config, *, broker_url: str | None = None, host: str | None = None,
          port: int | None = None, data_dir: str | Path | None = None, demo: bool = False,
          demo_actions: DemoActions | None = None, secure_cookies: bool = False,
          out: TextIO | None = None, stop: threading.Event | None = None,
          ready: Callable[[DashboardServer], Any] | None = None) -> int:
    """Run the dashboard until SIGINT/SIGTERM (or ``stop`` is set).  Prints the first
    user's password once when it creates the users file, and the URL."""
    out = out or sys.stdout
    directory = Path(data_dir).expanduser() if data_dir else cfg.data_dir
    users = UserStore.for_config(cfg, directory)
    password = ensure_first_user(users)
    if password is not None:
        print(f"created dashboard user 'therapist' with password: {password}\n"
              f"  (shown only this once; stored hashed in {users.path}; change it with "
              "`hydrotherm dashboard set-password therapist`)", file=out, flush=True)
    secret = load_secret_key(directory)
    address = dashboard_address(cfg, broker_url or default_broker_url(cfg), directory)
    fleet = FleetClient(cfg.mqtt, address).start()
    fleet.wait_connected(2.0)
    app = create_app(cfg, fleet, users, secret_key=secret, demo=demo,
                     demo_actions=demo_actions, secure_cookies=secure_cookies)
    server = DashboardServer(app, host or cfg.dashboard.host,
                             cfg.dashboard.port if port is None else port,
                             cfg.dashboard.threads)
    stop = stop or threading.Event()
    installed = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            installed.append((sig, signal.signal(sig, lambda *_: stop.set())))
    server.start()
    try:
        print(f"dashboard on {server.url} (MQTT broker {address.display()}"
              f"{'' if fleet.broker_connected else ': not reachable yet'})", file=out,
              flush=True)
        if ready is not None:
            ready(server)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        fleet.stop()
        for sig, old in installed:
            signal.signal(sig, old)
    print("dashboard stopped", file=out, flush=True)
    return 0
