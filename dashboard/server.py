"""Serving the dashboard with waitress (a production WSGI server, not Flask's own).

Each open live page holds one waitress thread for as long as it stays open, so
``threads`` comes from ``dashboard.threads`` and the app caps live streams below it;
the channel timeout is far above the SSE heartbeat so an idle stream is never cut.
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

from controller.fleet import FleetClient
from controller.mqtt_client import BrokerAddress, parse_broker_url
from hydrotherm.config import Config

from .app import HEARTBEAT_S, DemoActions, create_app
from .auth import UserStore, ensure_first_user, load_secret_key

#: waitress closes a connection idle (between requests) this long; streams are not idle
CHANNEL_TIMEOUT_S = int(max(120, 8 * HEARTBEAT_S))


class DashboardServer:
    """waitress around one app, in a thread: ``start()``, ``url``, ``stop()``."""

    def __init__(self, app: Flask, host: str, port: int, threads: int) -> None:
        self.app = app
        self.server: BaseWSGIServer | MultiSocketServer = create_server(
            app, host=host, port=port, threads=threads, channel_timeout=CHANNEL_TIMEOUT_S,
            connection_limit=max(100, 2 * threads), ident="hydrotherm-dashboard",
            clear_untrusted_proxy_headers=True)
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
    if given, else from this installation's MQTT accounts file (controller.mqtt_setup)."""
    from controller.mqtt_accounts import DASHBOARD
    from controller.mqtt_setup import credentials_store

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
